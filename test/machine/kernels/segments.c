/*
 * segments: segment limit and type checks on every access (SDM Vol. 3A, 5.3 "Limit Checking",
 * 5.4 "Type Checking", 5.4.1 "Null Segment Selector Checking", 3.4.5.1 "Code- and Data-Segment
 * Descriptor Types" for expand-down segments and the accessed bit), and the checks made when a
 * segment register is loaded (MOV/POP to a segment register in Vol. 2).
 */
#include "lib.h"

#define G_SMALL    (GDT_SCRATCH + 0)   /* data RW, base 0, byte limit 0xFFF */
#define G_PAGE1    (GDT_SCRATCH + 1)   /* data RW, base 0, limit 0 with G=1 (0xFFF) */
#define G_RO       (GDT_SCRATCH + 2)   /* read-only data */
#define G_XO       (GDT_SCRATCH + 3)   /* execute-only code */
#define G_RX       (GDT_SCRATCH + 4)   /* readable code */
#define G_EDOWN    (GDT_SCRATCH + 5)   /* expand-down RW data, B=1, base 0x10000, limit 0x0FFFFF */
#define G_EDOWN16  (GDT_SCRATCH + 6)   /* expand-down RW data, B=0, limit 0x0FFF */
#define G_FRESH    (GDT_SCRATCH + 7)   /* RW data with A=0: the accessed bit test */
#define G_STK3     (GDT_SCRATCH + 8)   /* DPL 3 expand-down stack segment */
#define G_BASED    (GDT_SCRATCH + 9)   /* RW data with base 0x2000 */
#define G_DPL3     (GDT_SCRATCH + 10)  /* RW data DPL 3 */
#define G_FRESH2   (GDT_SCRATCH + 11)  /* another A=0 RW data, for SS */
#define G_FRESHC   (GDT_SCRATCH + 12)  /* A=0 code, for a far jump */
#define G_FRESH3   (GDT_SCRATCH + 13)  /* A=0 RW data, probed with lar/verr only */

static u16 sel_used;
volatile u32 readval, probe_off;
volatile u32 ss_boundary;
extern char some_code[];
__asm__(".text\n some_code: .long 0x12345678\n");
static u32 scratch_word = 0x5A5A5A5A;

/* Read or write a dword at offset probe_off through DS = sel_used (ring 0). */
static void t_read(void *a) {
    __asm__ volatile(AT_FAULT_AFTER("mov %1, %%ds", "movl (%2), %%eax") "mov %3, %%ds\n mov %%eax, readval"
                     :: "a"(0), "r"(sel_used), "r"(probe_off), "r"((u16)SEL_KDATA) : "memory");
}
static void t_read_byte(void *a) {
    __asm__ volatile(AT_FAULT_AFTER("mov %1, %%ds", "movzbl (%2), %%eax") "mov %3, %%ds\n mov %%eax, readval"
                     :: "a"(0), "r"(sel_used), "r"(probe_off), "r"((u16)SEL_KDATA) : "memory");
}
static void t_write(void *a) {
    __asm__ volatile(AT_FAULT_AFTER("mov %0, %%ds", "movl $0x77, (%1)") "mov %2, %%ds"
                     :: "r"(sel_used), "r"(probe_off), "r"((u16)SEL_KDATA) : "memory");
}
static void t_load_ds(void *a) {
    __asm__ volatile(AT_FAULT("mov %0, %%ds") "mov %1, %%ds" :: "r"(sel_used), "r"((u16)SEL_KDATA));
}
static void t_load_ss(void *a) {
    __asm__ volatile("mov %%ss, %%bx\n" AT_FAULT("mov %0, %%ss") "mov %%bx, %%ss" :: "r"(sel_used) : "ebx");
}
#define CS_READ(name, sel) static void name(void *a) { \
    __asm__ volatile("ljmp %0, $1f\n1:\n" AT_FAULT("movl %%cs:some_code, %%eax") "mov %%eax, readval\n ljmp %1, $2f\n2:" \
                     :: "i"(sel), "i"(SEL_KCODE) : "eax", "memory"); }
CS_READ(t_cs_read_rx, SEL(G_RX, 0))
CS_READ(t_cs_read_xo, SEL(G_XO, 0))
static void t_cs_write(void *a) {
    __asm__ volatile(AT_FAULT("movl $0, %%cs:some_code") ::: "memory");
}
static void t_null_read(void *a) {
    __asm__ volatile("mov %1, %%es\n" AT_FAULT("movl %%es:(%0), %%eax") "mov %2, %%es"
                     :: "r"(&scratch_word), "r"((u16)0), "r"((u16)SEL_KDATA) : "eax", "memory");
}
static void t_null_load(void *a) {
    __asm__ volatile("mov %0, %%es\n mov %1, %%es" :: "r"((u16)0), "r"((u16)SEL_KDATA));
}
static void t_fresh_cs(void *a) {
    __asm__ volatile("ljmp %0, $1f\n1: ljmp %1, $2f\n2:" :: "i"(SEL(G_FRESHC, 0)), "i"(SEL_KCODE));
}

/* At ring 3 with SS = an expand-down segment whose lowest valid offset is ss_boundary:
   esp = boundary + 8, three pushes: the third is below the boundary. */
static u32 u_push_below(void) {
    __asm__ volatile("mov %%ss, %%bx\n mov %%esp, %%esi\n mov %0, %%ss\n mov ss_boundary, %%esp\n add $8, %%esp\n"
                     "push $1\n push $2\n" AT_FAULT("push $3") "mov %%bx, %%ss\n mov %%esi, %%esp"
                     :: "r"((u16)SEL(G_STK3, 3)) : "ebx", "esi", "memory");
    return 0;
}
static u32 u_push_above(void) {
    __asm__ volatile("mov %%ss, %%bx\n mov %%esp, %%esi\n mov %0, %%ss\n mov ss_boundary, %%esp\n add $8, %%esp\n"
                     "push $1\n push $2\n pop %%eax\n pop %%eax\n mov %%bx, %%ss\n mov %%esi, %%esp"
                     :: "r"((u16)SEL(G_STK3, 3)) : "eax", "ebx", "esi", "memory");
    return 0;
}
static u32 u_load_ds0(void) { __asm__ volatile(AT_FAULT("mov %0, %%ds") "mov %1, %%ds" :: "r"((u16)SEL_KDATA), "r"((u16)SEL_UDATA)); return 0; }
static u32 u_load_ds_rpl(void) {
    __asm__ volatile(AT_FAULT("mov %0, %%ds") "mov %1, %%ds" :: "r"((u16)SEL(G_DPL3, 3)), "r"((u16)SEL_UDATA));
    return 0;
}
static u32 u_null_ds(void) {
    __asm__ volatile(AT_FAULT_AFTER("mov %0, %%ds", "movl (%1), %%eax") "mov %2, %%ds"
                     :: "r"((u16)0), "r"(&scratch_word), "r"((u16)SEL_UDATA) : "eax", "memory");
    return 0;
}

static void access(const char *desc, void (*fn)(void *), u16 sel, u32 off, int want_vec, u32 want_err) {
    sel_used = sel; probe_off = off;
    int v = try_call(fn, 0);
    expect(desc, v, want_vec, want_err, want_vec >= 0 ? fault_eip : 0, 0, want_vec >= 0 ? SHOW_ERR | SHOW_EIP : 0);
}

int kmain(void) {
    int v;
    gdt_set(G_SMALL, 0, 0xFFF, ACC_P | ACC_S | ACC_RW | ACC_A, FLG_DB);
    gdt_set(G_PAGE1, 0, 0, ACC_P | ACC_S | ACC_RW | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_RO, 0, 0xFFFFF, ACC_P | ACC_S | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_XO, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_RX, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_RW | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_EDOWN, 0x10000, 0x0FFFFF, ACC_P | ACC_S | ACC_RW | ACC_ED | ACC_A, FLG_DB);
    gdt_set(G_EDOWN16, 0, 0x0FFF, ACC_P | ACC_S | ACC_RW | ACC_ED | ACC_A, 0);
    gdt_set(G_FRESH, 0, 0xFFFFF, ACC_P | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(G_FRESH2, 0, 0xFFFFF, ACC_P | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(G_FRESHC, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_RW, FLG_G | FLG_DB);
    gdt_set(G_FRESH3, 0, 0xFFFFF, ACC_P | ACC_S | ACC_RW, FLG_G | FLG_DB);
    ss_boundary = user_stack_top - 0x1000;
    /* the boundary is page aligned and above 1 MiB: a page-granular limit expresses it exactly (a byte
       limit has only 20 bits) */
    gdt_set(G_STK3, 0, (ss_boundary >> 12) - 1, ACC_P | ACC_DPL(3) | ACC_S | ACC_RW | ACC_ED | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_BASED, 0x2000, 0xFFFF, ACC_P | ACC_S | ACC_RW | ACC_A, FLG_DB);
    gdt_set(G_DPL3, 0, 0xFFFFF, ACC_P | ACC_DPL(3) | ACC_S | ACC_RW | ACC_A, FLG_G | FLG_DB);

    /* Expand-up limits: byte granular, and G=1 (limit 0 covers 0..0xFFF). */
    access("limit 0xFFF: dword read at 0xFFC", t_read, SEL(G_SMALL, 0), 0xFFC, NO_TRAP, 0);
    access("limit 0xFFF: byte read at 0xFFF", t_read_byte, SEL(G_SMALL, 0), 0xFFF, NO_TRAP, 0);
    access("limit 0xFFF: dword read at 0xFFD straddles the limit", t_read, SEL(G_SMALL, 0), 0xFFD, V_GP, 0);
    access("limit 0xFFF: byte read at 0x1000", t_read_byte, SEL(G_SMALL, 0), 0x1000, V_GP, 0);
    access("limit 0xFFF: dword write at 0x2000", t_write, SEL(G_SMALL, 0), 0x2000, V_GP, 0);
    access("G=1 limit 0: dword read at 0xFFC", t_read, SEL(G_PAGE1, 0), 0xFFC, NO_TRAP, 0);
    access("G=1 limit 0: byte read at 0x1000", t_read_byte, SEL(G_PAGE1, 0), 0x1000, V_GP, 0);
    /* Expand-down: valid offsets are limit+1 .. 0xFFFFFFFF (B=1) or .. 0xFFFF (B=0). The B=1
       segment's base 0x10000 makes offset 0xFFFFFFFC wrap to linear 0xFFFC, inside RAM. */
    access("expand-down B=1 limit 0xFFFFF: read at 0x100000", t_read, SEL(G_EDOWN, 0), 0x100000, NO_TRAP, 0);
    access("expand-down B=1 limit 0xFFFFF: read at 0xFFFFFFFC", t_read, SEL(G_EDOWN, 0), 0xFFFFFFFC, NO_TRAP, 0);
    access("expand-down B=1 limit 0xFFFFF: read at 0xFFFFF", t_read_byte, SEL(G_EDOWN, 0), 0xFFFFF, V_GP, 0);
    access("expand-down B=1 limit 0xFFFFF: read at 0x1000", t_read, SEL(G_EDOWN, 0), 0x1000, V_GP, 0);
    access("expand-down B=0 limit 0xFFF: read at 0x1000", t_read, SEL(G_EDOWN16, 0), 0x1000, NO_TRAP, 0);
    access("expand-down B=0 limit 0xFFF: read at 0xFFFC", t_read, SEL(G_EDOWN16, 0), 0xFFFC, NO_TRAP, 0);
    access("expand-down B=0 limit 0xFFF: dword read at 0xFFFE", t_read, SEL(G_EDOWN16, 0), 0xFFFE, V_GP, 0);
    access("expand-down B=0 limit 0xFFF: read at 0x10000", t_read_byte, SEL(G_EDOWN16, 0), 0x10000, V_GP, 0);
    access("expand-down B=0 limit 0xFFF: read at 0xFFF", t_read_byte, SEL(G_EDOWN16, 0), 0xFFF, V_GP, 0);
    /* Stack limit at ring 3 (the handler gets a fresh ring-0 stack). */
    v = run_ring(3, u_push_above, 0);
    expect("expand-down SS: pushes at and above the lowest valid offset", v, NO_TRAP, 0, 0, 0, 0);
    v = run_ring(3, u_push_below, 0);
    expect("expand-down SS: push below the lowest valid offset", v, V_SS, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* Segment base. */
    *(volatile u32 *)0x2010 = 0xB0B0CAFE;
    sel_used = SEL(G_BASED, 0); probe_off = 0x10;
    v = try_call(t_read, 0);
    check3("base 0x2000: read at offset 0x10 reads linear 0x2010", "result=%d value=0x%x%s", v, readval, (u32)"", -1, 0xB0B0CAFE, (u32)"");

    /* Type checks on access. */
    access("read through read-only data", t_read, SEL(G_RO, 0), (u32)&scratch_word, NO_TRAP, 0);
    access("write through read-only data", t_write, SEL(G_RO, 0), (u32)&scratch_word, V_GP, 0);
    v = try_call(t_cs_read_rx, 0);
    check3("read through CS = readable code", "result=%d value=0x%x%s", v, readval, (u32)"", -1, 0x12345678, (u32)"");
    v = try_call(t_cs_read_xo, 0);
    expect("read through CS = execute-only code", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_cs_write, 0);
    expect("write through CS (code segment)", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    /* Type checks on segment register loads. */
    access("mov ds, read-only data", t_load_ds, SEL(G_RO, 0), 0, NO_TRAP, 0);
    access("mov ds, readable code", t_load_ds, SEL(G_RX, 0), 0, NO_TRAP, 0);
    access("mov ds, execute-only code", t_load_ds, SEL(G_XO, 0), 0, V_GP, SEL(G_XO, 0));
    access("mov ds, the TSS (system segment)", t_load_ds, SEL_TSS, 0, V_GP, SEL_TSS);
    access("read through DS = readable code", t_read, SEL(G_RX, 0), (u32)&scratch_word, NO_TRAP, 0);
    access("write through DS = readable code", t_write, SEL(G_RX, 0), (u32)&scratch_word, V_GP, 0);
    access("mov ss, read-only data", t_load_ss, SEL(G_RO, 0), 0, V_GP, SEL(G_RO, 0));
    access("mov ss, readable code", t_load_ss, SEL(G_RX, 0), 0, V_GP, SEL(G_RX, 0));
    access("mov ss, DPL 3 data at CPL 0", t_load_ss, SEL(G_DPL3, 0), 0, V_GP, SEL(G_DPL3, 0));
    access("mov ss, RPL 3 selector at CPL 0", t_load_ss, SEL_KDATA | 3, 0, V_GP, SEL_KDATA);
    access("mov ss, null selector", t_load_ss, 0, 0, V_GP, 0);
    v = run_ring(3, u_load_ds0, 0);
    expect("mov ds, DPL 0 data at CPL 3", v, V_GP, SEL_KDATA, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_load_ds_rpl, 0);
    expect("mov ds, DPL 3 data RPL 3 at CPL 3", v, NO_TRAP, 0, 0, 0, 0);

    /* Null selectors: loading DS/ES with 0 is fine, using them is #GP(0). */
    v = try_call(t_null_load, 0);
    expect("mov es, null selector at CPL 0", v, NO_TRAP, 0, 0, 0, 0);
    v = try_call(t_null_read, 0);
    expect("read through ES = null", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_null_ds, 0);
    expect("read through DS = null at CPL 3", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* The accessed bit: set in the descriptor by a segment load, not by lar/verr. */
    sel_used = SEL(G_FRESH, 0);
    try_call(t_load_ds, 0);
    check3("mov ds sets the descriptor's accessed bit", "access=0x%x%s%s", gdt[G_FRESH].access, (u32)"", (u32)"",
           ACC_P | ACC_S | ACC_RW | ACC_A, (u32)"", (u32)"");
    sel_used = SEL(G_FRESH2, 0);
    try_call(t_load_ss, 0);
    check3("mov ss sets the descriptor's accessed bit", "access=0x%x%s%s", gdt[G_FRESH2].access, (u32)"", (u32)"",
           ACC_P | ACC_S | ACC_RW | ACC_A, (u32)"", (u32)"");
    try_call(t_fresh_cs, 0);
    check3("ljmp sets the code descriptor's accessed bit", "access=0x%x%s%s", gdt[G_FRESHC].access, (u32)"", (u32)"",
           ACC_P | ACC_S | ACC_CODE | ACC_RW | ACC_A, (u32)"", (u32)"");
    {
        u32 r; u8 z;
        __asm__ volatile("lar %2, %0\n verr %w2\n setz %1" : "=r"(r), "=q"(z) : "r"(SEL(G_FRESH3, 0)));
        check3("lar/verr leave the accessed bit clear", "access=0x%x%s%s", gdt[G_FRESH3].access, (u32)"", (u32)"",
               ACC_P | ACC_S | ACC_RW, (u32)"", (u32)"");
    }
    return 0;
}

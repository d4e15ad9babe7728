/*
 * exceptions: every exception vector that software can raise in protected mode, with its error
 * code and saved EIP (SDM Vol. 3A, chapter 6 "Interrupt and Exception Handling", and chapter 17
 * for the debug exceptions), the error-code format of selector faults (EXT/IDT/TI bits), and
 * double-fault generation (Table 6-5 "Conditions for Generating a Double Fault").
 */
#include "lib.h"

#define GDT_NOTPRESENT   (GDT_SCRATCH + 0)   /* data segment, P = 0 */
#define GDT_SMALLSS      (GDT_SCRATCH + 1)   /* writable data, limit 2 MiB - 1 */
#define GDT_CONF0        (GDT_SCRATCH + 2)   /* conforming code, DPL 0 */
#define GDT_NP_CODE      (GDT_SCRATCH + 3)   /* code segment, P = 0 */
#define GDT_SMALLDS      (GDT_SCRATCH + 4)   /* writable data, limit 0xFFF */
#define TS_MAGIC 0x54535453

int bounds[2] = { 0, 10 };
volatile u32 watched;

static void t_de(void *a) { __asm__ volatile("xor %%ecx, %%ecx\n" AT_FAULT("divl %%ecx") ::: "eax", "ecx", "edx"); }
static void t_bp(void *a) { __asm__ volatile(AT_TRAP("int3")); }
static void t_of(void *a) { __asm__ volatile("mov $0x7fffffff, %%eax\nadd $1, %%eax\n" AT_TRAP("into") ::: "eax"); }
static void t_of_clear(void *a) { __asm__ volatile("xor %%eax, %%eax\n into" ::: "eax"); }
static void t_br(void *a) { __asm__ volatile("mov $11, %%eax\n" AT_FAULT("bound %%eax, bounds") ::: "eax"); }
static void t_br_in(void *a) { __asm__ volatile("mov $10, %%eax\n bound %%eax, bounds" ::: "eax"); }
static void t_ud(void *a) { __asm__ volatile(AT_FAULT("ud2")); }
static void t_fnop(void *a) { __asm__ volatile(AT_FAULT("fnop")); }
static void t_wait(void *a) { __asm__ volatile(AT_FAULT("fwait")); }
static void t_int40(void *a) { __asm__ volatile(AT_FAULT("int $0x40")); }
static void t_int42(void *a) { __asm__ volatile(AT_FAULT("int $0x42")); }
static void t_int43(void *a) { __asm__ volatile(AT_FAULT("int $0x43")); }
static void t_int90(void *a) { __asm__ volatile(AT_FAULT("int $0x90")); }
static void t_single_step(void *a) {
    __asm__ volatile("movl $1f, fault_eip\n pushf\n orl $0x100, (%%esp)\n popf\n nop\n1: nop" ::: "memory", "cc");
}
static void t_ibp(void *a) { __asm__ volatile(".globl ibp_here\n nop\n ibp_here: nop\n nop"); }
extern char ibp_here[];
static void t_dbp(void *a) { __asm__ volatile(AT_TRAP("movl $5, watched") ::: "memory"); }

static void load_ds(u16 sel) {
    __asm__ volatile("movl $1f, fault_eip\n1: mov %0, %%ds\n mov %1, %%ds" :: "r"(sel), "r"((u16)SEL_KDATA));
}
static void t_ds_np(void *a) { load_ds(SEL(GDT_NOTPRESENT, 0)); }
static void t_ds_beyond(void *a) { load_ds(GDT_ENTRIES * 8); }
static void t_ds_ldt(void *a) { load_ds(0x0C); }
static void t_ds_code_exec_only(void *a) { load_ds(SEL(GDT_NP_CODE, 0)); }
static void t_ss_np(void *a) {
    __asm__ volatile("mov %%ss, %%bx\n" AT_FAULT("mov %0, %%ss") "mov %%bx, %%ss" :: "r"((u16)SEL(GDT_NOTPRESENT, 0)) : "ebx");
}
static void t_ss_limit(void *a) {
    __asm__ volatile("mov %%ss, %%bx\n mov %0, %%ss\n" AT_FAULT("movl %%ss:0x200000, %%eax") "mov %%bx, %%ss"
                     :: "r"((u16)SEL(GDT_SMALLSS, 0)) : "eax", "ebx");
}
static void t_ds_limit(void *a) {
    __asm__ volatile(AT_FAULT_AFTER("mov %0, %%ds", "movl 0xFFE, %%eax") "mov %1, %%ds"
                     :: "r"((u16)SEL(GDT_SMALLDS, 0)), "r"((u16)SEL_KDATA) : "eax");
}
static void t_jmp_np(void *a) { __asm__ volatile(AT_FAULT("ljmp %0, $0") :: "i"(SEL(GDT_NP_CODE, 0))); }
static void t_jmp_data(void *a) { __asm__ volatile(AT_FAULT("ljmp %0, $0") :: "i"(SEL_KDATA)); }
static u32 u_hlt(void) { __asm__ volatile(AT_FAULT("hlt")); return 0; }
static u32 u_cr0(void) { u32 v; __asm__ volatile(AT_FAULT("mov %%cr0, %0") : "=r"(v)); return v; }
static u32 u_lgdt(void) { static u32 z[2]; __asm__ volatile(AT_FAULT("lgdt %0") :: "m"(z)); return 0; }
static u32 u_int41(void) { __asm__ volatile(AT_FAULT("int $0x41")); return 0; }
static u32 u_ud(void) { __asm__ volatile(AT_FAULT("ud2")); return 0; }
static u32 u_syscall(void) { __asm__ volatile(AT_FAULT("int $0x80") :: "a"(0)); return 0; }
static u32 u_misaligned(void) {
    u32 v;
    __asm__ volatile(AT_FAULT("movl 1(%%esp), %0") : "=r"(v));
    return v;
}
static u32 u_aligned(void) { u32 v; __asm__ volatile("movl (%%esp), %0" : "=r"(v)); return v; }

/* The #TS handler: a gate to a conforming DPL-0 code segment, so it runs at CPL 3 on the user
   stack without needing TSS.ss0 (the broken thing). It records the error code, repairs ss0 and
   goes back to the kernel through int 0x80 with eax = TS_MAGIC. */
volatile u32 ts_err, ts_eip;
extern char ts_handler[];
__asm__(".text\n ts_handler:\n popl ts_err\n popl ts_eip\n movl $0x10, tss+8\n"
        " mov $0x54535453, %eax\n int $0x80\n 2: jmp 2b\n");

static void set_np(int vec, int present) {
    idt[vec].type_attr = (u8)((idt[vec].type_attr & 0x7F) | (present ? 0x80 : 0));
}

int kmain(void) {
    int v;
    gdt_set(GDT_NOTPRESENT, 0, 0xFFFFF, ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(GDT_SMALLSS, 0, 0x1FF, ACC_P | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(GDT_CONF0, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_CONF | ACC_RW, FLG_G | FLG_DB);
    gdt_set(GDT_NP_CODE, 0, 0xFFFFF, ACC_S | ACC_CODE, FLG_G | FLG_DB);
    gdt_set(GDT_SMALLDS, 0, 0xFFF, ACC_P | ACC_S | ACC_RW, FLG_DB);

    /* Benign and contributory exceptions, each with its error code and saved EIP. */
    v = try_call(t_de, 0);
    expect("#DE divide by zero (fault)", v, V_DE, 0, fault_eip, 0, SHOW_EIP);
    write_dr6(0);
    v = try_call(t_single_step, 0);
    expect("#DB single step after popf;nop (trap)", v, V_DB, 0, fault_eip, 0, SHOW_EIP);
    check3("#DB single step DR6 (BS) and saved TF", "dr6&0xe00f=0x%x tf=0x%x%s", last.dr6 & 0xE00F, last.eflags & EFLAGS_TF, (u32)"",
           0x4000, EFLAGS_TF, (u32)"");
    write_dr6(0);
    write_dr0((u32)ibp_here);
    write_dr7(0x00000001);                       /* L0, RW0 = 00 (execute), LEN0 = 00 */
    v = try_call(t_ibp, 0);
    write_dr7(0);
    expect("#DB instruction breakpoint DR0/DR7 (fault)", v, V_DB, 0, (u32)ibp_here, 0, SHOW_EIP);
    check3("#DB instruction breakpoint DR6 (B0)", "dr6&0xe00f=0x%x%s%s", last.dr6 & 0xE00F, (u32)"", (u32)"", 0x0001, (u32)"", (u32)"");
    write_dr6(0);
    write_dr0((u32)&watched);
    write_dr7(0x000D0001);                       /* L0, RW0 = 01 (write), LEN0 = 11 (4 bytes) */
    v = try_call(t_dbp, 0);
    write_dr7(0);
    expect("#DB data write breakpoint (trap)", v, V_DB, 0, fault_eip, 0, SHOW_EIP);
    check3("#DB data breakpoint DR6 (B0) and the write done", "dr6&0xe00f=0x%x watched=%u%s", last.dr6 & 0xE00F, watched, (u32)"",
           0x0001, 5, (u32)"");
    write_dr6(0);
    v = try_call(t_bp, 0);
    expect("#BP int3 (trap)", v, V_BP, 0, fault_eip, 0, SHOW_EIP);
    v = try_call(t_of, 0);
    expect("#OF into with OF=1 (trap)", v, V_OF, 0, fault_eip, 0, SHOW_EIP);
    v = try_call(t_of_clear, 0);
    expect("into with OF=0", v, NO_TRAP, 0, 0, 0, 0);
    v = try_call(t_br, 0);
    expect("#BR bound 11 outside [0,10] (fault)", v, V_BR, 0, fault_eip, 0, SHOW_EIP);
    v = try_call(t_br_in, 0);
    expect("bound 10 inside [0,10]", v, NO_TRAP, 0, 0, 0, 0);
    v = try_call(t_ud, 0);
    expect("#UD ud2 (fault)", v, V_UD, 0, fault_eip, 0, SHOW_EIP);

    u32 cr0 = read_cr0();
    write_cr0(cr0 | CR0_TS);
    v = try_call(t_fnop, 0);
    expect("#NM fnop with CR0.TS=1", v, V_NM, 0, fault_eip, 0, SHOW_EIP);
    v = try_call(t_wait, 0);
    expect("fwait with CR0.TS=1 MP=0", v, NO_TRAP, 0, 0, 0, 0);
    write_cr0(cr0 | CR0_TS | CR0_MP);
    v = try_call(t_wait, 0);
    expect("#NM fwait with CR0.TS=1 MP=1", v, V_NM, 0, fault_eip, 0, SHOW_EIP);
    __asm__ volatile("clts");
    check3("clts clears CR0.TS", "cr0.ts=%u%s%s", (read_cr0() & CR0_TS) != 0, (u32)"", (u32)"", 0, (u32)"", (u32)"");
    write_cr0((cr0 & ~CR0_TS) | CR0_EM);
    v = try_call(t_fnop, 0);
    expect("#NM fnop with CR0.EM=1", v, V_NM, 0, fault_eip, 0, SHOW_EIP);
    write_cr0(cr0);

    /* Segment-not-present, stack and general-protection faults with selector error codes. */
    v = try_call(t_ds_np, 0);
    expect("#NP mov ds, not-present data segment", v, V_NP, SEL(GDT_NOTPRESENT, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_jmp_np, 0);
    expect("#NP ljmp to not-present code segment", v, V_NP, SEL(GDT_NP_CODE, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ss_np, 0);
    expect("#SS mov ss, not-present data segment", v, V_SS, SEL(GDT_NOTPRESENT, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ss_limit, 0);
    expect("#SS ss: access beyond the SS limit", v, V_SS, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ds_limit, 0);
    expect("#GP ds: dword at 0xFFE beyond limit 0xFFF", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ds_beyond, 0);
    expect("#GP mov ds, selector beyond the GDT limit (TI=0)", v, V_GP, GDT_ENTRIES * 8, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ds_ldt, 0);
    expect("#GP mov ds, LDT selector 0x0C with a null LDTR (TI=1)", v, V_GP, 0x0C, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = try_call(t_ds_code_exec_only, 0);
    gdt[GDT_NP_CODE].access |= ACC_P;
    v = try_call(t_ds_code_exec_only, 0);
    expect("#GP mov ds, execute-only code segment", v, V_GP, SEL(GDT_NP_CODE, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    gdt[GDT_NP_CODE].access &= (u8)~ACC_P;
    v = try_call(t_jmp_data, 0);
    expect("#GP ljmp to a data segment", v, V_GP, SEL_KDATA, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    /* Not tested: mov to CR4 with a reserved bit set (#GP(0)); QEMU 7.2 loops there (README). */
    v = run_ring(3, u_hlt, 0);
    expect("#GP hlt at CPL 3", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_cr0, 0);
    expect("#GP mov from cr0 at CPL 3", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_lgdt, 0);
    expect("#GP lgdt at CPL 3", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_int41, 0);
    expect("#GP int 0x41 (gate DPL 0) at CPL 3: IDT bit", v, V_GP, 0x41 * 8 + 2, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* IDT-referencing error codes: IDT bit (1), EXT bit (0) for int n and int3, 1 for exceptions. */
    set_np(0x40, 0);
    v = try_call(t_int40, 0);
    expect("#NP int 0x40, gate not present: EXT=0 IDT=1", v, V_NP, 0x40 * 8 + 2, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    set_np(0x40, 1);
    set_np(V_BP, 0);
    v = try_call(t_bp, 0);
    set_np(V_BP, 1);
    expect("#NP int3, gate not present: EXT=0 IDT=1", v, V_NP, V_BP * 8 + 2, fault_eip - 1, 0, SHOW_ERR | SHOW_EIP);
    set_np(V_UD, 0);
    v = try_call(t_ud, 0);
    set_np(V_UD, 1);
    expect("#NP during #UD delivery (benign then contributory): EXT=1", v, V_NP, V_UD * 8 + 3, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    idt_set(0x42, (u32)trap_stubs + 16 * 0x42, SEL_KCODE, 0x00, 0, 1);   /* present, type 0 */
    v = try_call(t_int42, 0);
    expect("#GP int 0x42, gate of type 0: EXT=0 IDT=1", v, V_GP, 0x42 * 8 + 2, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    idt_default(0x42);
    idt[0x43] = idt[0x42];
    idt[0x43].sel = GDT_ENTRIES * 8;   /* gate selector beyond the GDT */
    v = try_call(t_int43, 0);
    expect("#GP int 0x43, gate CS beyond the GDT: EXT=0 TI=0", v, V_GP, GDT_ENTRIES * 8, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    idt_default(0x43);
    idt[V_UD].sel = GDT_ENTRIES * 8;
    v = try_call(t_ud, 0);
    expect("#GP #UD gate CS beyond the GDT: EXT=1", v, V_GP, GDT_ENTRIES * 8 + 1, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    idt[V_UD].sel = 0x0C;
    v = try_call(t_ud, 0);
    expect("#GP #UD gate CS is LDT selector 0x0C: EXT=1 TI=1", v, V_GP, 0x0D, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    idt_default(V_UD);
    load_idt_limit(0x81 * 8 - 1);
    v = try_call(t_int90, 0);
    load_idt_limit(sizeof idt - 1);
    expect("#GP int 0x90 beyond the IDT limit", v, V_GP, 0x90 * 8 + 2, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* #TS: an inter-privilege interrupt finds a TSS.ss0 whose DPL is not the new CPL. */
    idt_set(V_TS, (u32)ts_handler, SEL(GDT_CONF0, 0), GATE_INT32, 0, 1);
    ts_err = 0xDEAD;
    tss.ss0 = SEL_UDATA & ~3;
    v = run_ring(3, u_syscall, 0);
    check3("#TS int 0x80 from CPL 3 with TSS.ss0=0x20 (DPL 3): EXT=0", "vector=0x%x magic=0x%x err=0x%x",
           v, last.eax, ts_err, V_SYSCALL, TS_MAGIC, SEL_UDATA & ~3);
    ts_err = 0xDEAD;
    tss.ss0 = SEL_UDATA & ~3;
    v = run_ring(3, u_ud, 0);
    check3("#TS #UD at CPL 3 with TSS.ss0=0x20: EXT=1", "vector=0x%x magic=0x%x err=0x%x",
           v, last.eax, ts_err, V_SYSCALL, TS_MAGIC, (SEL_UDATA & ~3) | 1);
    tss.ss0 = SEL_KDATA;
    idt_default(V_TS);

    /* #DF: a contributory exception while delivering a contributory one (or a #PF). */
    set_np(V_DE, 0);
    v = try_call(t_de, 0);
    set_np(V_DE, 1);
    expect("#DF #NP while delivering #DE (both contributory)", v, V_DF, 0, 0, 0, SHOW_ERR);
    set_np(V_GP, 0);
    v = try_call(t_jmp_data, 0);
    set_np(V_GP, 1);
    expect("#DF #NP while delivering #GP (both contributory)", v, V_DF, 0, 0, 0, SHOW_ERR);
    set_np(V_BR, 0);
    v = try_call(t_br, 0);
    set_np(V_BR, 1);
    expect("no #DF: #NP while delivering #BR (benign)", v, V_NP, V_BR * 8 + 3, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* #AC: CR0.AM=1, EFLAGS.AC=1, CPL 3, a misaligned dword load. */
    write_cr0(read_cr0() | CR0_AM);
    v = run_ring(3, u_aligned, EFLAGS_AC);
    expect("aligned load at CPL 3 with AM=1 AC=1", v, NO_TRAP, 0, 0, 0, 0);
    v = run_ring(3, u_misaligned, EFLAGS_AC);
    expect("#AC misaligned load at CPL 3 with AM=1 AC=1", v, V_AC, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    v = run_ring(3, u_misaligned, 0);
    expect("misaligned load at CPL 3 with AM=1 AC=0", v, NO_TRAP, 0, 0, 0, 0);
    write_cr0(read_cr0() & ~CR0_AM);
    v = run_ring(3, u_misaligned, EFLAGS_AC);
    expect("misaligned load at CPL 3 with AM=0 AC=1", v, NO_TRAP, 0, 0, 0, 0);
    return 0;
}

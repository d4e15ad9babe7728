/*
 * rings: privilege-level changes (SDM Vol. 3A, 5.8 "Privilege Level Checking When Transferring
 * Program Control Between Code Segments", 6.12.1 "Exception- or Interrupt-Handler Procedures",
 * and the IRET pseudo-code in Vol. 2): iret from ring 0 to rings 1-3, interrupts from outer rings
 * with the TSS ss0/esp0, ss1/esp1, ss2/esp2 stacks, data segment registers nulled by an iret to
 * an outer level, call gates with parameter copy, far call/ret, conforming code segments, and
 * lar/lsl/verr/verw/arpl/sgdt/sidt/sldt/str/smsw.
 */
#include "lib.h"

#define G_CONF0    (GDT_SCRATCH + 0)   /* conforming readable code, DPL 0 */
#define G_CALL0    (GDT_SCRATCH + 1)   /* call gate DPL 3 -> ring 0, 3 parameters */
#define G_CALL1    (GDT_SCRATCH + 2)   /* call gate DPL 3 -> ring 1, 2 parameters */
#define G_XONLY    (GDT_SCRATCH + 3)   /* execute-only code, DPL 0, accessed */
#define G_RODATA   (GDT_SCRATCH + 4)   /* read-only data, DPL 0, byte limit 0x1234, accessed */
#define G_RWDATA3  (GDT_SCRATCH + 5)   /* writable data, DPL 3, G=1, accessed */
#define G_CODE0A   (GDT_SCRATCH + 6)   /* readable code, DPL 0, G=1, accessed */
/* Task gates and TSS descriptors (none of them may ever start a task switch: each check faults first). */
#define G_TSS_NP   (GDT_SCRATCH + 10)  /* available 32-bit TSS, not present */
#define G_TSS_BUSY (GDT_SCRATCH + 11)  /* busy 32-bit TSS, present */
#define G_TGATE_NP (GDT_SCRATCH + 12)  /* task gate, not present, -> G_TSS_NP */
#define G_TGATE_NT (GDT_SCRATCH + 13)  /* task gate DPL 0, present, -> G_TSS_NP */
#define G_TGATE_BT (GDT_SCRATCH + 14)  /* task gate, present, -> G_TSS_BUSY */
#define G_TGATE_LT (GDT_SCRATCH + 15)  /* task gate, present, -> a selector in the LDT */
#define G_TSS_AV0  (GDT_SCRATCH + 16)  /* available 32-bit TSS, present, DPL 0 (used from ring 3 only) */
#define V_TG_NP    0x60                /* IDT: task gate, not present */
#define V_TG_TSSNP 0x61                /* IDT: task gate -> G_TSS_NP */
#define V_TG_BUSY  0x62                /* IDT: task gate -> G_TSS_BUSY */
#define TSS_TYPE_AVAIL32 0x09
#define TSS_TYPE_BUSY32  0x0B
#define V_TO_RING1 0x51                /* int gate DPL 3 -> ring 1 code */
#define V_TO_RING2 0x52                /* int gate DPL 3 -> ring 2 code */
#define INNER_MAGIC 0x494E4E52

static void set_call_gate(int idx, u32 target, u16 sel, int params, int dpl) {
    struct gate *g = (struct gate *)&gdt[idx];
    g->off_lo = target & 0xFFFF; g->off_hi = target >> 16; g->sel = sel;
    g->zero = (u8)params; g->type_attr = (u8)(0x80 | (dpl << 5) | GATE_CALL32);
}

static void set_task_gate(int idx, u16 tss_sel, int dpl, int present) {
    struct gate *g = (struct gate *)&gdt[idx];
    g->off_lo = 0; g->off_hi = 0; g->sel = tss_sel; g->zero = 0;
    g->type_attr = (u8)((present ? 0x80 : 0) | (dpl << 5) | GATE_TASK);
}

/* Far transfers to task gates and TSS descriptors: `far_sel` is the selector used. */
static volatile u32 far_sel;
static void t_ljmp_far(void *a) {
    struct { u32 off; u16 sel; } __attribute__((packed)) fp = { 0, (u16)far_sel };
    __asm__ volatile(AT_FAULT("ljmp *%0") :: "m"(fp) : "memory");
}
static void t_lcall_far(void *a) {
    struct { u32 off; u16 sel; } __attribute__((packed)) fp = { 0, (u16)far_sel };
    __asm__ volatile(AT_FAULT("lcall *%0") :: "m"(fp) : "memory");
}
static u32 u_ljmp_far(void) { t_ljmp_far(0); return 0; }
static void t_int_tg_np(void *a) { __asm__ volatile(AT_FAULT("int $0x60") ::: "memory"); }
static void t_int_tg_tssnp(void *a) { __asm__ volatile(AT_FAULT("int $0x61") ::: "memory"); }
static void t_int_tg_busy(void *a) { __asm__ volatile(AT_FAULT("int $0x62") ::: "memory"); }

static void far_case(const char *desc, void (*fn)(void *), u32 sel, int want_vec, u32 want_err) {
    far_sel = sel;
    int v = try_call(fn, 0);
    expect(desc, v, want_vec, want_err, fault_eip, 0, SHOW_ERR | SHOW_EIP);
}

/* What the inner-ring handlers and call-gate targets saw: their CS, SS, ESP and the words on
   their stack. */
volatile u32 in_cs, in_ss, in_esp, in_w[8];

/* Interrupt handler running at ring 1 or 2 (gate to SEL_R1CODE/SEL_R2CODE): it copies the frame
   and goes on to ring 0 with int 0x80, eax = INNER_MAGIC. */
extern char inner_handler[], cg_target0[], cg_target1[], far_target[];
__asm__(".text\n inner_handler:\n"
        " mov %cs, in_cs\n mov %ss, in_ss\n mov %esp, in_esp\n"
        " mov 0(%esp), %eax\n mov %eax, in_w\n mov 4(%esp), %eax\n mov %eax, in_w+4\n"
        " mov 8(%esp), %eax\n mov %eax, in_w+8\n mov 12(%esp), %eax\n mov %eax, in_w+12\n"
        " mov 16(%esp), %eax\n mov %eax, in_w+16\n"
        " mov $0x494E4E52, %eax\n int $0x80\n 1: jmp 1b\n"
        /* call-gate targets: record and return with lret $4*params */
        "cg_target0:\n mov %cs, in_cs\n mov %ss, in_ss\n mov %esp, in_esp\n"
        " mov $0, %ecx\n 2: mov (%esp,%ecx,4), %eax\n mov %eax, in_w(,%ecx,4)\n inc %ecx\n cmp $7, %ecx\n jne 2b\n"
        " lret $12\n"
        "cg_target1:\n mov %cs, in_cs\n mov %ss, in_ss\n mov %esp, in_esp\n"
        " mov $0, %ecx\n 3: mov (%esp,%ecx,4), %eax\n mov %eax, in_w(,%ecx,4)\n inc %ecx\n cmp $6, %ecx\n jne 3b\n"
        " lret $8\n"
        "far_target:\n mov %cs, in_cs\n mov (%esp), %eax\n mov %eax, in_w\n mov 4(%esp), %eax\n mov %eax, in_w+4\n lret\n");

static u32 u_cpl(void) { return (read_cs() & 3) | ((read_ss() & 3) << 4); }
static u32 u_segs(void) {
    u16 ds, es, fs, gs;
    __asm__ volatile("mov %%ds, %0\n mov %%es, %1\n mov %%fs, %2\n mov %%gs, %3" : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
    in_w[0] = ds; in_w[1] = es; in_w[2] = fs; in_w[3] = gs;
    return 0;
}
volatile u32 user_esp_before, user_esp_after;
static u32 u_int_ring1(void) { __asm__ volatile("mov %%esp, user_esp_before\n" AT_TRAP("int $0x51") ::: "eax", "memory"); return 0; }
static u32 u_int_ring2(void) { __asm__ volatile("mov %%esp, user_esp_before\n" AT_TRAP("int $0x52") ::: "eax", "memory"); return 0; }
static u32 u_syscall(void) { __asm__ volatile("mov %%esp, user_esp_before\n" AT_TRAP("int $0x80") :: "a"(0) : "memory"); return 0; }
static u32 u_callgate0(void) {
    __asm__ volatile("mov %%esp, user_esp_before\n push $0x33333333\n push $0x22222222\n push $0x11111111\n"
                     AT_TRAP("lcall %0, $0") "mov %%esp, user_esp_after\n"
                     :: "i"(SEL(G_CALL0, 3)) : "eax", "ecx", "memory");
    return read_cs();
}
static u32 u_callgate1(void) {
    __asm__ volatile("mov %%esp, user_esp_before\n push $0xbbbbbbbb\n push $0xaaaaaaaa\n"
                     AT_TRAP("lcall %0, $0") "mov %%esp, user_esp_after\n"
                     :: "i"(SEL(G_CALL1, 3)) : "eax", "ecx", "memory");
    return read_cs();
}
static u32 u_call_conforming(void) {
    __asm__ volatile(AT_TRAP("lcall %0, $far_target") :: "i"(SEL(G_CONF0, 0)) : "eax", "memory");
    return read_cs();
}
static u32 u_call_nonconforming(void) {
    __asm__ volatile(AT_FAULT("lcall %0, $far_target") :: "i"(SEL_KCODE) : "eax", "memory");
    return 0;
}
static void k_far_call(void *a) {
    __asm__ volatile(AT_TRAP("lcall %0, $far_target") :: "i"(SEL_KCODE) : "eax", "memory");
}

/* lar/lsl/verr/verw results: value and ZF. */
static u32 lar(u32 sel, u32 *zf) { u32 v = 0xEEEEEEEE; u8 z; __asm__ volatile("lar %2, %0\n setz %1" : "+r"(v), "=q"(z) : "r"(sel)); *zf = z; return v; }
static u32 lsl(u32 sel, u32 *zf) { u32 v = 0xEEEEEEEE; u8 z; __asm__ volatile("lsl %2, %0\n setz %1" : "+r"(v), "=q"(z) : "r"(sel)); *zf = z; return v; }
static u32 verr(u16 sel) { u8 z; __asm__ volatile("verr %1\n setz %0" : "=q"(z) : "r"(sel)); return z; }
static u32 verw(u16 sel) { u8 z; __asm__ volatile("verw %1\n setz %0" : "=q"(z) : "r"(sel)); return z; }
static void check_lar(const char *what, u32 sel, int want_zf, u32 want) {
    char d[96]; u32 zf; u32 v = lar(sel, &zf);
    ksprintf(d, "lar %s (0x%x)", what, sel);
    /* bits 19:16 of the result are undefined (SDM: masked by 00FxFF00H) */
    check3(d, "zf=%u value&0x00f0ff00=0x%08x%s", zf, zf ? v & 0x00F0FF00 : 0xEEEEEEEE, (u32)"", want_zf, want_zf ? want : 0xEEEEEEEE, (u32)"");
}
static void check_lsl(const char *what, u32 sel, int want_zf, u32 want) {
    char d[96]; u32 zf; u32 v = lsl(sel, &zf);
    ksprintf(d, "lsl %s (0x%x)", what, sel);
    check3(d, "zf=%u value=0x%08x%s", zf, zf ? v : 0xEEEEEEEE, (u32)"", want_zf, want_zf ? want : 0xEEEEEEEE, (u32)"");
}
/* The same at CPL 3. */
static volatile u32 u_sel, u_res[4];
static u32 u_probe(void) {
    u32 zf;
    u_res[0] = verr((u16)u_sel); u_res[1] = verw((u16)u_sel);
    u32 v = lar(u_sel, &zf); u_res[2] = zf ? v & 0x00F0FF00 : 0xEEEEEEEE;
    u_res[3] = zf;
    return 0;
}

int kmain(void) {
    int v;
    char g[128], w[128];
    gdt_set(G_CONF0, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_CONF | ACC_RW | ACC_A, FLG_G | FLG_DB);
    set_call_gate(G_CALL0, (u32)cg_target0, SEL_KCODE, 3, 3);
    set_call_gate(G_CALL1, (u32)cg_target1, SEL_R1CODE, 2, 3);
    gdt_set(G_XONLY, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_RODATA, 0x10000, 0x1234, ACC_P | ACC_S | ACC_A, FLG_DB);
    gdt_set(G_RWDATA3, 0, 0xFFFFF, ACC_P | ACC_DPL(3) | ACC_S | ACC_RW | ACC_A, FLG_G | FLG_DB);
    gdt_set(G_CODE0A, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_RW | ACC_A, FLG_G | FLG_DB);
    idt_set(V_TO_RING1, (u32)inner_handler, SEL_R1CODE, GATE_INT32, 3, 1);
    idt_set(V_TO_RING2, (u32)inner_handler, SEL_R2CODE, GATE_INT32, 3, 1);

    /* iret from ring 0 to rings 3, 2, 1; back with int 0x80 through TSS ss0/esp0. */
    for (int r = 3; r >= 1; r--) {
        char d[64];
        v = run_ring(r, u_cpl, 0);
        ksprintf(d, "iret to ring %d: CPL and SS.RPL", r);
        check3(d, "result=%d cpl=%u ss.rpl=%u", v, last.ebx & 3, last.ebx >> 4, -1, r, r);
        v = run_ring(r, u_syscall, 0);
        ksprintf(d, "int 0x80 from ring %d: frame on TSS ss0:esp0", r);
        ksprintf(g, "vector=0x%x cs=0x%x ss=0x%x esp=0x%x eip=0x%x frame_top=0x%x", v, last.cs, last.ss, last.esp, last.eip, last.frame_top);
        ksprintf(w, "vector=0x%x cs=0x%x ss=0x%x esp=0x%x eip=0x%x frame_top=0x%x", V_SYSCALL, ring_cs[r], ring_ds[r],
                 user_esp_before, fault_eip, tss.esp0);
        check(d, g, w);
    }
    /* Interrupts from ring 3 into ring 1 and ring 2 handlers use ss1:esp1 and ss2:esp2. */
    for (int r = 1; r <= 2; r++) {
        char d[64];
        v = run_ring(3, r == 1 ? u_int_ring1 : u_int_ring2, 0);
        ksprintf(d, "int 0x%x from ring 3 to a ring %d handler: TSS ss%d:esp%d", r == 1 ? V_TO_RING1 : V_TO_RING2, r, r, r);
        ksprintf(g, "back=0x%x magic=0x%x cs=0x%x ss=0x%x esp=0x%x frame=%x,%x,%x,%x,%x", v, last.eax, in_cs, in_ss, in_esp,
                 in_w[0], in_w[1], in_w[2] & ~0x8D5u, in_w[3], in_w[4]);
        ksprintf(w, "back=0x%x magic=0x%x cs=0x%x ss=0x%x esp=0x%x frame=%x,%x,%x,%x,%x", V_SYSCALL, INNER_MAGIC, ring_cs[r],
                 r == 1 ? tss.ss1 : tss.ss2, (r == 1 ? tss.esp1 : tss.esp2) - 20,
                 fault_eip, SEL_UCODE, EFLAGS_FIXED, user_esp_before, SEL_UDATA);
        check(d, g, w);
        ksprintf(d, "int 0x80 from the ring %d handler: frame", r);
        check3(d, "cs=0x%x ss=0x%x frame_top=0x%x", last.cs, last.ss, last.frame_top, ring_cs[r], r == 1 ? tss.ss1 : tss.ss2, tss.esp0);
    }

    /* iret to an outer level nulls data segment registers whose DPL < new CPL (not conforming
       code segments). */
    v = run_ring_segs(3, u_segs, 0, SEL_UDATA, SEL_KDATA, SEL(G_CONF0, 0), SEL(G_RWDATA3, 3));
    ksprintf(g, "result=%d ds=0x%x es=0x%x fs=0x%x gs=0x%x", v, in_w[0], in_w[1], in_w[2], in_w[3]);
    ksprintf(w, "result=%d ds=0x%x es=0x%x fs=0x%x gs=0x%x", -1, SEL_UDATA, 0, SEL(G_CONF0, 0), SEL(G_RWDATA3, 3));
    check("iret to ring 3: es=DPL0 data nulled, fs=conforming code kept", g, w);
    v = run_ring_segs(2, u_segs, 0, SEL_R2DATA, SEL_R1DATA, SEL_UDATA, SEL_KDATA);
    ksprintf(g, "result=%d ds=0x%x es=0x%x fs=0x%x gs=0x%x", v, in_w[0], in_w[1], in_w[2], in_w[3]);
    ksprintf(w, "result=%d ds=0x%x es=0x%x fs=0x%x gs=0x%x", -1, SEL_R2DATA, 0, SEL_UDATA, 0);
    check("iret to ring 2: DPL1 and DPL0 data nulled, DPL3 kept", g, w);

    /* Call gates with a privilege change and parameter copy; lret $n back to ring 3. */
    v = run_ring(3, u_callgate0, 0);
    ksprintf(g, "result=%d cs=0x%x ss=0x%x esp=0x%x stack=%x,%x,%x,%x,%x,%x,%x back_cs=0x%x esp_after=0x%x", v, in_cs, in_ss, in_esp,
             in_w[0], in_w[1], in_w[2], in_w[3], in_w[4], in_w[5], in_w[6], last.ebx, user_esp_after);
    ksprintf(w, "result=%d cs=0x%x ss=0x%x esp=0x%x stack=%x,%x,%x,%x,%x,%x,%x back_cs=0x%x esp_after=0x%x", -1, SEL_KCODE, SEL_KDATA,
             tss.esp0 - 28, fault_eip, SEL_UCODE, 0x11111111, 0x22222222, 0x33333333, user_esp_before - 12, SEL_UDATA,
             SEL_UCODE, user_esp_before);
    check("lcall through a call gate ring 3 -> 0, 3 parameters", g, w);
    v = run_ring(3, u_callgate1, 0);
    ksprintf(g, "result=%d cs=0x%x ss=0x%x esp=0x%x stack=%x,%x,%x,%x,%x,%x back_cs=0x%x esp_after=0x%x", v, in_cs, in_ss, in_esp,
             in_w[0], in_w[1], in_w[2], in_w[3], in_w[4], in_w[5], last.ebx, user_esp_after);
    ksprintf(w, "result=%d cs=0x%x ss=0x%x esp=0x%x stack=%x,%x,%x,%x,%x,%x back_cs=0x%x esp_after=0x%x", -1, SEL_R1CODE, SEL_R1DATA,
             tss.esp1 - 24, fault_eip, SEL_UCODE, 0xaaaaaaaa, 0xbbbbbbbb, user_esp_before - 8, SEL_UDATA,
             SEL_UCODE, user_esp_before);
    check("lcall through a call gate ring 3 -> 1, 2 parameters", g, w);

    /* Far call/ret at the same level; conforming and non-conforming targets from ring 3. */
    v = try_call(k_far_call, 0);
    check3("lcall/lret ring 0 -> ring 0", "result=%d cs=0x%x pushed=0x%x", v, in_cs, in_w[1], -1, SEL_KCODE, SEL_KCODE);
    check3("lcall pushed return eip", "eip=0x%x%s%s", in_w[0], (u32)"", (u32)"", fault_eip, (u32)"", (u32)"");
    v = run_ring(3, u_call_conforming, 0);
    check3("lcall ring 3 -> conforming DPL 0 code: CPL stays 3", "result=%d cs=0x%x back_cs=0x%x", v, in_cs, last.ebx,
           -1, SEL(G_CONF0, 3), SEL_UCODE);
    v = run_ring(3, u_call_nonconforming, 0);
    expect("lcall ring 3 -> non-conforming DPL 0 code", v, V_GP, SEL_KCODE, fault_eip, 0, SHOW_ERR | SHOW_EIP);

    /* Task gates and TSS descriptors: the checks before a task switch (SDM JMP/CALL TASK-GATE and
       TASK-STATE-SEGMENT, INT n TASK-GATE). Every case faults before any switch would start. */
    gdt_set(G_TSS_NP, (u32)&tss, 0x67, (u8)(ACC_DPL(0) | TSS_TYPE_AVAIL32), 0);
    gdt_set(G_TSS_BUSY, (u32)&tss, 0x67, (u8)(ACC_P | ACC_DPL(0) | TSS_TYPE_BUSY32), 0);
    gdt_set(G_TSS_AV0, (u32)&tss, 0x67, (u8)(ACC_P | ACC_DPL(0) | TSS_TYPE_AVAIL32), 0);
    set_task_gate(G_TGATE_NP, SEL(G_TSS_NP, 0), 3, 0);
    set_task_gate(G_TGATE_NT, SEL(G_TSS_NP, 0), 0, 1);
    set_task_gate(G_TGATE_BT, SEL(G_TSS_BUSY, 0), 3, 1);
    set_task_gate(G_TGATE_LT, 0x14, 3, 1);
    idt_set(V_TG_NP, 0, SEL(G_TSS_NP, 0), GATE_TASK, 0, 0);
    idt_set(V_TG_TSSNP, 0, SEL(G_TSS_NP, 0), GATE_TASK, 0, 1);
    idt_set(V_TG_BUSY, 0, SEL(G_TSS_BUSY, 0), GATE_TASK, 0, 1);
    far_case("ljmp to a not-present TSS", t_ljmp_far, SEL(G_TSS_NP, 0), V_NP, SEL(G_TSS_NP, 0));
    far_case("lcall to a not-present TSS", t_lcall_far, SEL(G_TSS_NP, 0), V_NP, SEL(G_TSS_NP, 0));
    far_case("ljmp to a busy TSS", t_ljmp_far, SEL(G_TSS_BUSY, 0), V_GP, SEL(G_TSS_BUSY, 0));
    far_case("lcall to the current (busy) TSS", t_lcall_far, SEL_TSS, V_GP, SEL_TSS);
    far_case("ljmp to a not-present task gate", t_ljmp_far, SEL(G_TGATE_NP, 0), V_NP, SEL(G_TGATE_NP, 0));
    far_case("lcall through a task gate to a not-present TSS", t_lcall_far, SEL(G_TGATE_NT, 0), V_NP, SEL(G_TSS_NP, 0));
    far_case("ljmp through a task gate to a busy TSS", t_ljmp_far, SEL(G_TGATE_BT, 0), V_GP, SEL(G_TSS_BUSY, 0));
    far_case("ljmp through a task gate naming an LDT selector", t_ljmp_far, SEL(G_TGATE_LT, 0), V_GP, 0x14);
    far_sel = SEL(G_TGATE_NT, 3);
    v = run_ring(3, u_ljmp_far, 0);
    expect("ljmp at ring 3 to a DPL 0 task gate", v, V_GP, SEL(G_TGATE_NT, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    far_sel = SEL(G_TSS_AV0, 3);
    v = run_ring(3, u_ljmp_far, 0);
    expect("ljmp at ring 3 to a DPL 0 available TSS", v, V_GP, SEL(G_TSS_AV0, 0), fault_eip, 0, SHOW_ERR | SHOW_EIP);
    far_case("int through a not-present task gate", t_int_tg_np, 0, V_NP, V_TG_NP * 8 + 2);
    far_case("int through a task gate to a not-present TSS", t_int_tg_tssnp, 0, V_NP, SEL(G_TSS_NP, 0));
    far_case("int through a task gate to a busy TSS", t_int_tg_busy, 0, V_GP, SEL(G_TSS_BUSY, 0));

    /* lar, lsl, verr, verw at ring 0. */
    check_lar("flat code DPL 0 accessed", SEL(G_CODE0A, 0), 1, 0x00C09B00);
    check_lar("execute-only code", SEL(G_XONLY, 0), 1, 0x00C09900);
    check_lar("read-only data byte-granular", SEL(G_RODATA, 0), 1, 0x00409100);
    check_lar("busy TSS", SEL_TSS, 1, 0x00008B00);
    check_lar("call gate (offset bits 23:20 show)", SEL(G_CALL0, 0), 1, ((u32)cg_target0 & 0x00F00000) | 0xEC00);
    check_lar("null selector", 0, 0, 0);
    check_lar("beyond the GDT limit", GDT_ENTRIES * 8, 0, 0);
    check_lsl("flat G=1 data", SEL_KDATA, 1, 0xFFFFFFFF);
    check_lsl("byte-granular limit 0x1234", SEL(G_RODATA, 0), 1, 0x1234);
    check_lsl("TSS", SEL_TSS, 1, TSS_IOMAP_OFF - 1);
    check_lsl("call gate (no limit)", SEL(G_CALL0, 0), 0, 0);
    check3("verr/verw readable code", "verr=%u verw=%u%s", verr(SEL(G_CODE0A, 0)), verw(SEL(G_CODE0A, 0)), (u32)"", 1, 0, (u32)"");
    check3("verr/verw execute-only code", "verr=%u verw=%u%s", verr(SEL(G_XONLY, 0)), verw(SEL(G_XONLY, 0)), (u32)"", 0, 0, (u32)"");
    check3("verr/verw read-only data", "verr=%u verw=%u%s", verr(SEL(G_RODATA, 0)), verw(SEL(G_RODATA, 0)), (u32)"", 1, 0, (u32)"");
    check3("verr/verw writable data", "verr=%u verw=%u%s", verr(SEL_KDATA), verw(SEL_KDATA), (u32)"", 1, 1, (u32)"");
    check3("verr/verw TSS (system segment)", "verr=%u verw=%u%s", verr(SEL_TSS), verw(SEL_TSS), (u32)"", 0, 0, (u32)"");
    /* ... and at CPL 3: DPL 0 segments are invisible unless conforming. */
    static const struct { const char *what; u32 sel, verr, verw, lar_zf, lar; } u_cases[] = {
        { "DPL 0 data", SEL_KDATA, 0, 0, 0, 0xEEEEEEEE },
        { "DPL 3 data", SEL(G_RWDATA3, 3), 1, 1, 1, 0x00C0F300 },
        { "conforming DPL 0 code", SEL(G_CONF0, 3), 1, 0, 1, 0x00C09F00 },
        { "DPL 0 data with RPL 3", SEL(GDT_SCRATCH + 4, 3), 0, 0, 0, 0xEEEEEEEE },
    };
    for (unsigned i = 0; i < sizeof u_cases / sizeof u_cases[0]; i++) {
        char d[96];
        u_sel = u_cases[i].sel;
        v = run_ring(3, u_probe, 0);
        ksprintf(d, "verr/verw/lar at CPL 3: %s (0x%x)", u_cases[i].what, u_cases[i].sel);
        ksprintf(g, "result=%d verr=%u verw=%u lar_zf=%u lar&0x00f0ff00=0x%08x", v, u_res[0], u_res[1], u_res[3], u_res[2]);
        ksprintf(w, "result=%d verr=%u verw=%u lar_zf=%u lar&0x00f0ff00=0x%08x", -1, u_cases[i].verr, u_cases[i].verw, u_cases[i].lar_zf, u_cases[i].lar);
        check(d, g, w);
    }
    /* arpl */
    {
        u16 dst = 0x0010; u8 z;
        __asm__ volatile("arpl %2, %0\n setz %1" : "+r"(dst), "=q"(z) : "r"((u16)0x0023));
        check3("arpl 0x10, 0x23: raise RPL", "dst=0x%x zf=%u%s", dst, z, (u32)"", 0x13, 1, (u32)"");
        dst = 0x0023;
        __asm__ volatile("arpl %2, %0\n setz %1" : "+r"(dst), "=q"(z) : "r"((u16)0x0010));
        check3("arpl 0x23, 0x10: unchanged", "dst=0x%x zf=%u%s", dst, z, (u32)"", 0x23, 0, (u32)"");
    }
    /* sgdt/sidt/sldt/str/smsw */
    {
        struct { u16 limit; u32 base; } __attribute__((packed)) gd, id;
        u16 ldt = 0xFFFF, tr = 0, msw = 0;
        u32 tr32 = 0xFFFFFFFF;
        __asm__ volatile("sgdt %0\n sidt %1\n sldt %2\n str %3\n smsw %4" : "=m"(gd), "=m"(id), "=r"(ldt), "=r"(tr), "=r"(msw));
        __asm__ volatile("str %0" : "+r"(tr32));
        check3("sgdt", "limit=0x%x base=0x%x%s", gd.limit, gd.base, (u32)"", GDT_ENTRIES * 8 - 1, (u32)gdt, (u32)"");
        check3("sidt", "limit=0x%x base=0x%x%s", id.limit, id.base, (u32)"", 0x7FF, (u32)idt, (u32)"");
        check3("sldt/str", "ldtr=0x%x tr=0x%x%s", ldt, tr, (u32)"", 0, SEL_TSS, (u32)"");
        check3("str r32 zero-extends", "tr=0x%x%s%s", tr32, (u32)"", (u32)"", SEL_TSS, (u32)"", (u32)"");
        check3("smsw = CR0 bits 15:0", "msw=0x%x%s%s", msw, (u32)"", (u32)"", read_cr0() & 0xFFFF, (u32)"", (u32)"");
    }
    return 0;
}

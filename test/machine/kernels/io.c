/*
 * io: I/O permission (SDM Vol. 1, 19.5 "Protected-Mode I/O": 19.5.1 "I/O Privilege Level",
 * 19.5.2 "I/O Permission Bit Map") and the IF/IOPL rules of CLI, STI and POPF (their pages in
 * Vol. 2), plus IF on entry through interrupt and trap gates (Vol. 3A, 6.12.1.3 "Flag Usage By
 * Exception- or Interrupt-Handler Procedure").
 */
#include "lib.h"

#define PORT_OK1   0x80     /* bitmap bit clear */
#define PORT_OK2   0x81     /* bitmap bit clear */
#define PORT_DENY  0x82     /* bitmap bit set */
#define V_TRAPGATE 0x60
#define PIC1_DATA  0x21
#define PIC2_DATA  0xA1

static void set_tss_limit(u32 limit) {
    gdt_set(SEL_TSS >> 3, (u32)&tss, limit, ACC_P | 0x09, 0);   /* available (not busy) */
    __asm__ volatile("ltr %w0" :: "r"(SEL_TSS));
}

#define IO_FN(name, insn) static u32 name(void) { __asm__ volatile(AT_FAULT(insn) ::: "eax", "edx", "memory"); return 0; }
IO_FN(u_in80, "inb $0x80, %%al")
IO_FN(u_out81, "mov $0x81, %%dx\n outb %%al, %%dx")
IO_FN(u_in82, "inb $0x82, %%al")
IO_FN(u_inw80, "inw $0x80, %%ax")
IO_FN(u_inw81, "inw $0x81, %%ax")
IO_FN(u_inl80, "inl $0x80, %%eax")
IO_FN(u_in78, "inb $0x78, %%al")
IO_FN(u_cli, "cli")
IO_FN(u_sti, "sti")
IO_FN(u_int60, "int $0x60")
IO_FN(u_int80, "xor %%eax, %%eax\n int $0x80")

/* popf trying to set IF and IOPL=3 (and clear them when they are set): returns the flags before
   and after in in_flags[]. */
volatile u32 in_flags[2];
static u32 u_popf_flip(void) {
    u32 before, after;
    __asm__ volatile("pushf\n pop %0\n mov %0, %1\n xor $0x3200, %1\n push %1\n popf\n pushf\n pop %1"
                     : "=&r"(before), "=&r"(after) :: "cc");
    in_flags[0] = before; in_flags[1] = after;
    return 0;
}

static volatile u32 handler_if;
static int hook_if(struct frame *f) { handler_if = read_eflags() & EFLAGS_IF; return 0; }

static void io_case(const char *desc, int ring, u32 eflags, u32 (*fn)(void), int allowed) {
    int v = run_ring(ring, fn, eflags);
    if (allowed) expect(desc, v, NO_TRAP, 0, 0, 0, 0);
    else expect(desc, v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
}

static void popf_case(const char *desc, int ring, u32 eflags, u32 want_mask) {
    char g[64], w[64];
    int v = run_ring(ring, u_popf_flip, eflags);
    u32 changed = (in_flags[0] ^ in_flags[1]) & 0x3200;
    ksprintf(g, "result=%d changed=0x%x", v, changed);
    ksprintf(w, "result=%d changed=0x%x", -1, want_mask);
    check(desc, g, w);
}

int kmain(void) {
    outb(PIC1_DATA, 0xFF);             /* mask every PIC line: IF=1 below must see no interrupt */
    outb(PIC2_DATA, 0xFF);

    /* No bitmap inside the TSS limit: every port is denied at CPL 3 with IOPL 0. */
    io_case("TSS limit 103 (no bitmap): in 0x80 at CPL 3 IOPL 0", 3, 0, u_in80, 0);
    /* Full bitmap: ports 0x80 and 0x81 allowed, the rest denied. */
    tss.iomap[PORT_OK1 / 8] &= (u8)~(1 << (PORT_OK1 % 8));
    tss.iomap[PORT_OK2 / 8] &= (u8)~(1 << (PORT_OK2 % 8));
    set_tss_limit(TSS_IOMAP_OFF + 8192);
    io_case("bitmap: in 0x80 (allowed) at CPL 3 IOPL 0", 3, 0, u_in80, 1);
    io_case("bitmap: out 0x81 via dx (allowed) at CPL 3 IOPL 0", 3, 0, u_out81, 1);
    io_case("bitmap: in 0x82 (denied) at CPL 3 IOPL 0", 3, 0, u_in82, 0);
    io_case("bitmap: inw 0x80 (0x80-0x81 allowed)", 3, 0, u_inw80, 1);
    io_case("bitmap: inw 0x81 (0x82 denied)", 3, 0, u_inw81, 0);
    io_case("bitmap: inl 0x80 (0x82-0x83 denied)", 3, 0, u_inl80, 0);
    io_case("bitmap: in 0x82 at CPL 1 IOPL 1 (CPL <= IOPL)", 1, EFLAGS_IOPL(1), u_in82, 1);
    io_case("bitmap: in 0x82 at CPL 2 IOPL 1 (bitmap denies)", 2, EFLAGS_IOPL(1), u_in82, 0);
    io_case("bitmap: in 0x80 at CPL 2 IOPL 1 (bitmap allows)", 2, EFLAGS_IOPL(1), u_in80, 1);
    io_case("IOPL 3: in 0x82 at CPL 3", 3, EFLAGS_IOPL(3), u_in82, 1);
    io_case("IOPL 3: inl 0x80 at CPL 3", 3, EFLAGS_IOPL(3), u_inl80, 1);
    /* The processor reads two bitmap bytes: both must lie within the TSS limit. */
    tss.iomap[0x78 / 8] = 0; tss.iomap[0x80 / 8] = 0;
    set_tss_limit(TSS_IOMAP_OFF + 0x10);
    io_case("limit = bitmap + 0x10: in 0x78 (bytes 0x0F-0x10 inside)", 3, 0, u_in78, 1);
    io_case("limit = bitmap + 0x10: in 0x80 (byte 0x11 outside)", 3, 0, u_in80, 0);
    tss.iomap_base = 0x3000;
    set_tss_limit(TSS_IOMAP_OFF + 8192);
    io_case("I/O map base beyond the TSS limit: in 0x80", 3, 0, u_in80, 0);
    tss.iomap_base = TSS_IOMAP_OFF;
    set_tss_limit(TSS_IOMAP_OFF + 8192);

    /* CLI/STI: allowed when CPL <= IOPL, #GP(0) otherwise. */
    io_case("cli at CPL 3 IOPL 0", 3, 0, u_cli, 0);
    io_case("sti at CPL 3 IOPL 0", 3, 0, u_sti, 0);
    io_case("cli at CPL 3 IOPL 3", 3, EFLAGS_IOPL(3), u_cli, 1);
    io_case("sti at CPL 3 IOPL 3", 3, EFLAGS_IOPL(3), u_sti, 1);
    io_case("cli at CPL 1 IOPL 1", 1, EFLAGS_IOPL(1), u_cli, 1);
    io_case("cli at CPL 2 IOPL 1", 2, EFLAGS_IOPL(1), u_cli, 0);
    /* POPF: IF changes only when CPL <= IOPL, IOPL only at CPL 0; no fault either way. */
    popf_case("popf at CPL 3 IOPL 0: IF and IOPL kept", 3, 0, 0);
    popf_case("popf at CPL 3 IOPL 3 IF=1: IF changes, IOPL kept", 3, EFLAGS_IOPL(3) | EFLAGS_IF, EFLAGS_IF);
    popf_case("popf at CPL 1 IOPL 1: IF changes, IOPL kept", 1, EFLAGS_IOPL(1), EFLAGS_IF);
    popf_case("popf at CPL 2 IOPL 1 IF=1: IF and IOPL kept", 2, EFLAGS_IOPL(1) | EFLAGS_IF, 0);
    {
        u32 before, after;
        __asm__ volatile("pushf\n pop %0\n mov %0, %1\n xor $0x3000, %1\n push %1\n popf\n pushf\n pop %1\n push %0\n popf"
                         : "=&r"(before), "=&r"(after) :: "cc");
        check3("popf at CPL 0: IOPL changes", "changed=0x%x%s%s", (before ^ after) & 0x3200, (u32)"", (u32)"", 0x3000, (u32)"", (u32)"");
    }

    /* IF on entry: an interrupt gate clears it, a trap gate leaves it. */
    idt_set(V_TRAPGATE, (u32)trap_stubs + 16 * V_TRAPGATE, SEL_KCODE, GATE_TRAP32, 3, 1);
    hooks[V_TRAPGATE] = hook_if;
    hooks[V_SYSCALL] = hook_if;
    handler_if = 0xFF;
    int v = run_ring(3, u_int60, EFLAGS_IF);
    check3("int 0x60 (trap gate) from CPL 3 with IF=1: IF in handler, saved IF", "vector=0x%x if=0x%x saved_if=0x%x", v, handler_if,
           last.eflags & EFLAGS_IF, V_TRAPGATE, EFLAGS_IF, EFLAGS_IF);
    handler_if = 0xFF;
    v = run_ring(3, u_int80, EFLAGS_IF);
    check3("int 0x80 (interrupt gate) from CPL 3 with IF=1: IF in handler, saved IF", "vector=0x%x if=0x%x saved_if=0x%x", v,
           handler_if, last.eflags & EFLAGS_IF, V_SYSCALL, 0, EFLAGS_IF);
    hooks[V_TRAPGATE] = 0;
    hooks[V_SYSCALL] = 0;
    return 0;
}

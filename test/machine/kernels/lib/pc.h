/* Helpers of the PC device test kernels (intr, ports, apic, toy): port I/O, CMOS, checks of numbers. */
#ifndef PC_H
#define PC_H
#include "lib.h"

static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline u32 rdmsr_lo(u32 n) { u32 a, d; __asm__ volatile("rdmsr" : "=a"(a), "=d"(d) : "c"(n)); return a; }
static inline void wrmsr_lo(u32 n, u32 lo) { __asm__ volatile("wrmsr" :: "a"(lo), "d"(0), "c"(n)); }
static inline u8 cmos_read(u8 r) { outb(0x70, r); return inb(0x71); }
static inline void cmos_write(u8 r, u8 v) { outb(0x70, r); outb(0x71, v); }

/* check() of one hex number */
static inline void checkx(const char *desc, u32 got, u32 want) {
    char g[16], w[16];
    ksprintf(g, "0x%x", got); ksprintf(w, "0x%x", want);
    check(desc, g, w);
}
/* check() of a yes/no property */
static inline void checkb(const char *desc, int got) { check(desc, got ? "yes" : "no", "yes"); }

/* Program both 8259s: vectors base1/base2, cascade on IRQ 2, 8086 mode, then the masks. */
static inline void pic_init(u8 base1, u8 base2, u8 mask1, u8 mask2) {
    outb(0x20, 0x11); outb(0xA0, 0x11);
    outb(0x21, base1); outb(0xA1, base2);
    outb(0x21, 0x04); outb(0xA1, 0x02);
    outb(0x21, 0x01); outb(0xA1, 0x01);
    outb(0x21, mask1); outb(0xA1, mask2);
}

/* Spin (interrupts on, halting) until *flag becomes nonzero or `rounds` halts passed; returns *flag. */
static inline u32 wait_for(volatile u32 *flag, u32 rounds) {
    while (!*flag && rounds--) __asm__ volatile("sti; hlt; cli" ::: "memory");
    return *flag;
}
#endif

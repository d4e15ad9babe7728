/*
 * pitbench: a CPU-bound loop, with the PIT interrupting at 1 kHz when CMOS byte 0x50 is nonzero (the
 * benchmark sets it on the machine before booting; under QEMU it reads 0: no timer). For the cost of a
 * 1 kHz timer (bench/README.md): the same work with and without it.
 */
#include "pc.h"

static volatile u32 ticks;
static int tick_hook(struct frame *f) { ticks++; outb(0x20, 0x20); return 1; }
static u32 data[4096];

int kmain(void) {
    int timer = cmos_read(0x50) != 0;
    pic_init(0x20, 0x28, timer ? 0xFE : 0xFF, 0xFF);
    hooks[0x20] = tick_hook;
    u32 div = 1193182 / 1000;
    outb(0x43, 0x34); outb(0x40, (u8)div); outb(0x40, (u8)(div >> 8));
    sti();
    u32 sum = 0;
    for (u32 round = 0; round < 3000; round++)
        for (u32 i = 0; i < 4096; i++) { data[i] = data[i] * 1103515245u + i + round; sum ^= data[i] >> 7; }
    cli();
    kprintf("pitbench: sum %x, %s\n", sum, timer ? "timer on" : "timer off");
    kprintf("ticks: %u\n", ticks);
    exit_qemu(0);
}

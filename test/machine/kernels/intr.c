/*
 * intr: the 8259A pair, the 8254 PIT and the CMOS RTC's interrupts, as SeaBIOS leaves them under QEMU's
 * -kernel and as a kernel reprograms them: masks, IRR/ISR reads, EOI, spurious IRQ 7, auto-EOI, the
 * PIT's modes, latch and read-back, channel 2 on port 0x61, the RTC's periodic and update interrupts
 * on IRQ 8 through the cascade, and the CPU's interrupt shadow after STI.
 */
#include "pc.h"

static volatile u32 hits[256];
static volatile u32 order[8], norder;
static int count_hook(struct frame *f) { hits[f->vector]++; if (norder < 8) order[norder++] = f->vector; return 1; }
static int eoi_hook(struct frame *f) {
    hits[f->vector]++;
    if (norder < 8) order[norder++] = f->vector;
    if (f->vector >= 0x28) outb(0xA0, 0x20);
    outb(0x20, 0x20);
    return 1;
}
static int rtc_hook(struct frame *f) { hits[f->vector]++; cmos_read(0x0C); outb(0xA0, 0x20); outb(0x20, 0x20); return 1; }

static void handoff_state(void) {
    checkx("PIC masks at hand-off (master)", inb(0x21), 0xB8);
    checkx("PIC masks at hand-off (slave)", inb(0xA1), 0x8E);
    checkx("ELCR at hand-off (slave: IRQ 10, 11 level)", inb(0x4D1), 0x0C);
    outb(0x43, 0xE2);   /* read-back: status of channel 0 */
    checkx("PIT channel 0 status at hand-off (mode 2, lobyte/hibyte)", inb(0x40) & 0x3F, 0x34);
    outb(0x43, 0xE8);   /* read-back: status of channel 2 */
    checkx("PIT channel 2 status at hand-off (mode 3, no access mode yet)", inb(0x42) & 0x3F, 0x06);
    checkx("port 0x61 at hand-off: gate 2 off, speaker off", inb(0x61) & 0x03, 0x00);
}

static void pic_checks(void) {
    pic_init(0x20, 0x28, 0xFF, 0xFF);
    for (int v = 0x20; v < 0x30; v++) hooks[v] = count_hook;
    checkx("IMR reads back (master)", inb(0x21), 0xFF);
    outb(0x21, 0x5A); checkx("IMR 0x5A reads back", inb(0x21), 0x5A); outb(0x21, 0xFF);
    /* the PIT's IRQ 0 sets IRR even while masked */
    outb(0x43, 0x34); outb(0x40, 0x00); outb(0x40, 0x10);   /* mode 2, 4096 (about 3.4 ms) */
    u32 spins = 0;
    outb(0x20, 0x0A);
    while (!(inb(0x20) & 1) && spins < 10000000) spins++;
    checkx("IRR bit 0 set by the PIT while masked (OCW3 read IRR)", inb(0x20) & 1, 1);
    outb(0x20, 0x0B);
    checkx("ISR empty (OCW3 read ISR)", inb(0x20), 0);
    outb(0x20, 0x0A);
    /* unmask: the interrupt is taken right after STI's shadow, ISR holds it until EOI */
    norder = 0;
    outb(0x21, 0xFE);
    sti(); __asm__ volatile("nop"); cli();
    checkx("IRQ 0 taken as vector 0x20 after sti", hits[0x20], 1);
    outb(0x20, 0x0B);
    checkx("ISR bit 0 set while unacknowledged", inb(0x20), 1);
    /* no EOI: a second IRQ 0 waits behind the first */
    u32 before = hits[0x20];
    sti(); for (volatile int i = 0; i < 200000; i++) ; cli();
    checkx("no second IRQ 0 before EOI", hits[0x20] - before, 0);
    outb(0x20, 0x20);   /* non-specific EOI */
    checkx("ISR clear after EOI", inb(0x20), 0);
    hooks[0x20] = eoi_hook;
    before = hits[0x20];
    for (int i = 0; i < 3; i++) { u32 h = hits[0x20]; while (hits[0x20] == h) __asm__ volatile("sti; hlt; cli"); }
    checkx("three more IRQ 0 with EOI (hlt wakes)", hits[0x20] - before, 3);
    /* specific EOI */
    hooks[0x20] = count_hook;
    { u32 h = hits[0x20]; while (hits[0x20] == h) __asm__ volatile("sti; hlt; cli"); }
    outb(0x20, 0x0B);
    checkx("ISR bit 0 set again", inb(0x20), 1);
    outb(0x20, 0x62);   /* specific EOI for IRQ 2: nothing to end */
    checkx("specific EOI of another IRQ leaves ISR", inb(0x20), 1);
    outb(0x20, 0x60);   /* specific EOI for IRQ 0 */
    checkx("specific EOI of IRQ 0 clears ISR", inb(0x20), 0);
    /* auto-EOI */
    outb(0x21, 0xFF);
    pic_init(0x20, 0x28, 0xFF, 0xFF);
    outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x03); outb(0x21, 0xFE);
    { u32 h = hits[0x20]; while (hits[0x20] == h) __asm__ volatile("sti; hlt; cli"); }
    outb(0x20, 0x0B);
    checkx("auto-EOI: ISR stays clear", inb(0x20), 0);
    { u32 h = hits[0x20]; while (hits[0x20] == h) __asm__ volatile("sti; hlt; cli"); }
    checkb("auto-EOI: the next IRQ 0 comes without EOI", 1);
    outb(0x21, 0xFF);
    pic_init(0x20, 0x28, 0xFF, 0xFF);
    /* poll mode: OCW3 with P, the next read is the poll word */
    outb(0x43, 0x30); outb(0x40, 0x00); outb(0x40, 0x01);   /* mode 0, 256: one edge */
    spins = 0; outb(0x20, 0x0A);
    while (!(inb(0x20) & 1) && spins < 10000000) spins++;
    outb(0x21, 0xFE);
    outb(0x20, 0x0C);
    checkx("poll: IRQ 0 pending (0x80 | 0)", inb(0x20), 0x80);
    outb(0x20, 0x0B);
    checkx("poll acknowledged it (ISR bit 0)", inb(0x20), 1);
    outb(0x20, 0x20);
    outb(0x21, 0xFF);
}

static void pit_checks(void) {
    outb(0x43, 0x34); outb(0x40, 0xFF); outb(0x40, 0xFF);
    outb(0x43, 0x00); u32 a = inb(0x40); a |= inb(0x40) << 8;   /* latch */
    for (volatile int i = 0; i < 20000; i++) ;
    outb(0x43, 0x00); u32 b = inb(0x40); b |= inb(0x40) << 8;
    checkb("PIT channel 0 counts down (two latched reads)", a > b && a <= 0xFFFF);
    outb(0x43, 0x00); outb(0x43, 0x34 & 0x00); /* a second latch while one is pending is ignored */
    u32 c = inb(0x40); c |= inb(0x40) << 8;
    checkb("latched count is a 16-bit value", c <= 0xFFFF);
    outb(0x43, 0xC2);   /* read-back count and status of channel 0 */
    checkx("read-back status: mode 2, lobyte/hibyte, binary", inb(0x40) & 0x3F, 0x34);
    inb(0x40); inb(0x40);
    outb(0x43, 0xB6); outb(0x42, 0x00); outb(0x42, 0x10);   /* channel 2 mode 3 */
    outb(0x43, 0xE8);
    checkx("channel 2 status: mode 3", inb(0x42) & 0x3F, 0x36);
    outb(0x61, (inb(0x61) & ~3) | 1);   /* gate on, speaker off */
    u32 highs = 0, lows = 0;
    for (int i = 0; i < 200000 && !(highs && lows); i++) { if (inb(0x61) & 0x20) highs++; else lows++; }
    checkb("channel 2 output on port 0x61 bit 5 toggles with the gate on", highs && lows);
    checkx("port 0x61 bit 0 reads the gate", inb(0x61) & 1, 1);
    outb(0x61, inb(0x61) & ~3);
    /* mode 0 one-shot: output goes high at terminal count and stays */
    outb(0x43, 0xB0); outb(0x42, 0x10); outb(0x42, 0x00);
    outb(0x61, (inb(0x61) & ~3) | 1);
    u32 n = 0; while (!(inb(0x61) & 0x20) && n < 10000000) n++;
    checkx("mode 0: output high after terminal count", (inb(0x61) >> 5) & 1, 1);
    outb(0x61, inb(0x61) & ~3);
}

static void rtc_checks(void) {
    pic_init(0x20, 0x28, 0xFB, 0xFE);   /* cascade and IRQ 8 only */
    hooks[0x28] = rtc_hook;
    checkx("RTC register A at hand-off", cmos_read(0x0A) & 0x7F, 0x26);
    checkx("RTC register B at hand-off (24 h, BCD)", cmos_read(0x0B), 0x02);
    checkx("RTC register D: valid RAM and time", cmos_read(0x0D), 0x80);
    u8 s = cmos_read(0x00);
    checkb("seconds are BCD", (s & 0x0F) <= 9 && (s >> 4) <= 5);
    u8 h = cmos_read(0x04);
    checkb("hours are BCD 0-23", (h & 0x0F) <= 9 && h <= 0x23);
    checkx("century byte 0x32", cmos_read(0x32), 0x20);
    cmos_read(0x0C);
    /* periodic interrupt at 1024 Hz (rate 6) */
    cmos_write(0x0A, 0x26);
    cmos_write(0x0B, cmos_read(0x0B) | 0x40);
    wait_for(&hits[0x28], 1000000);
    for (u32 k = hits[0x28]; hits[0x28] < k + 4; ) __asm__ volatile("sti; hlt; cli");
    checkb("periodic interrupts arrive on IRQ 8 (vector 0x28, through the cascade)", hits[0x28] >= 5);
    cmos_write(0x0B, cmos_read(0x0B) & ~0x40);
    cmos_read(0x0C);
    /* binary mode */
    cmos_write(0x0B, 0x06);
    u8 m = cmos_read(0x02);
    checkb("binary mode: minutes 0-59", m <= 59);
    cmos_write(0x0B, 0x02);
    /* update-ended interrupt: once a second */
    hits[0x28] = 0;
    cmos_write(0x0B, 0x12);
    wait_for(&hits[0x28], 100000000);
    checkb("update-ended interrupt within a second", hits[0x28] >= 1);
    cmos_write(0x0B, 0x02);
    cmos_read(0x0C);
    /* UIP is seen set at some point within a second */
    u32 uip = 0;
    for (u32 i = 0; i < 50000000 && !uip; i++) uip = cmos_read(0x0A) & 0x80;
    checkb("UIP (register A bit 7) is set before an update", uip);
    outb(0x21, 0xFF); outb(0xA1, 0xFF);
}

static void spurious_check(void) {
    /* IRQ 7 spurious: an interrupt request that goes away before the acknowledge */
    pic_init(0x20, 0x28, 0xFF, 0xFF);
    hooks[0x27] = count_hook;
    outb(0x43, 0x30); outb(0x40, 0x00); outb(0x40, 0x01);
    u32 spins = 0; outb(0x20, 0x0A);
    while (!(inb(0x20) & 1) && spins < 10000000) spins++;
    u32 before = hits[0x27] + hits[0x20];
    outb(0x21, 0xFE);          /* INTR goes high ... */
    outb(0x21, 0xFF);          /* ... and the request is masked before the CPU takes it */
    sti(); __asm__ volatile("nop"); cli();
    checkx("no interrupt when the request is masked before STI", hits[0x27] + hits[0x20] - before, 0);
}

int kmain(void) {
    handoff_state();
    pic_checks();
    pit_checks();
    rtc_checks();
    spurious_check();
    return 0;
}

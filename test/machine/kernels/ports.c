/*
 * ports: the byte-wide PC devices without timers: the 16550A UART on COM1 (registers, divisor latch,
 * loopback, FIFO, interrupt identification, IRQ 4), the 8042 and its keyboard, QEMU's fw_cfg, the
 * CMOS memory-size bytes, and what a kernel reads from ports nothing answers.
 */
#include "pc.h"

#define COM1 0x3F8
static volatile u32 irq4;
static int com_hook(struct frame *f) { irq4++; inb(COM1 + 2); outb(0x20, 0x20); return 1; }

static void uart_checks(void) {
    checkx("COM1 IER at hand-off", inb(COM1 + 1), 0x00);
    checkx("COM1 IIR at hand-off (no interrupt)", inb(COM1 + 2), 0x01);
    checkx("COM1 LCR at hand-off", inb(COM1 + 3), 0x00);
    checkx("COM1 MCR at hand-off (OUT2)", inb(COM1 + 4), 0x08);
    checkx("COM1 LSR at hand-off (THRE, TEMT)", inb(COM1 + 5), 0x60);
    checkx("COM1 MSR at hand-off (DCD, DSR, CTS)", inb(COM1 + 6), 0xB0);
    outb(COM1 + 7, 0x5A); checkx("scratch register", inb(COM1 + 7), 0x5A);
    outb(COM1 + 3, 0x80);
    checkx("divisor latch at hand-off (9600 baud)", inb(COM1) | inb(COM1 + 1) << 8, 12);
    outb(COM1, 0x01); outb(COM1 + 1, 0x00);
    checkx("divisor latch 1 (115200)", inb(COM1) | inb(COM1 + 1) << 8, 1);
    outb(COM1 + 3, 0x03);
    checkx("LCR 8N1", inb(COM1 + 3), 0x03);
    /* loopback: what is sent comes back */
    outb(COM1 + 4, 0x1B);
    checkx("loopback MSR mirrors MCR (DTR RTS OUT2 -> DSR CTS DCD)", inb(COM1 + 6) & 0xF0, 0xB0);
    outb(COM1, 'x');
    checkx("loopback: data ready", inb(COM1 + 5) & 1, 1);
    checkx("loopback: the byte", inb(COM1), 'x');
    checkx("loopback: data ready clear after reading", inb(COM1 + 5) & 1, 0);
    outb(COM1, 'a'); outb(COM1, 'b');
    checkx("no FIFO: a second byte overruns (OE)", inb(COM1 + 5) & 0x03, 0x03);
    checkx("OE clears when LSR is read", inb(COM1 + 5) & 0x02, 0);
    inb(COM1);
    /* FIFO */
    outb(COM1 + 2, 0xC7);   /* enable, clear both, trigger 14 */
    checkx("IIR with FIFOs enabled", inb(COM1 + 2), 0xC1);
    for (int i = 0; i < 5; i++) outb(COM1, '0' + i);
    char got[8]; int n = 0;
    while ((inb(COM1 + 5) & 1) && n < 7) got[n++] = (char)inb(COM1);
    got[n] = 0;
    check("FIFO: five bytes in order", got, "01234");
    /* interrupts: received data (trigger 1) and THRE, on IRQ 4 */
    outb(COM1 + 2, 0x07);   /* trigger 1 */
    outb(COM1 + 1, 0x01);
    outb(COM1, 'q');
    checkx("IIR: received data available", inb(COM1 + 2) & 0x0F, 0x04);
    inb(COM1);
    checkx("IIR: none after reading it", inb(COM1 + 2) & 0x0F, 0x01);
    outb(COM1 + 1, 0x02);
    checkx("IIR: THR empty once enabled", inb(COM1 + 2) & 0x0F, 0x02);
    checkx("IIR: THRE cleared by reading IIR", inb(COM1 + 2) & 0x0F, 0x01);
    outb(COM1 + 1, 0x00);
    pic_init(0x20, 0x28, 0xEF, 0xFF);   /* IRQ 4 only */
    hooks[0x24] = com_hook;
    outb(COM1 + 1, 0x01);
    outb(COM1, 'z');
    wait_for(&irq4, 1000);
    checkx("IRQ 4 for received data (vector 0x24)", irq4, 1);
    inb(COM1);
    outb(COM1 + 1, 0x00);
    outb(0x21, 0xFF); outb(0xA1, 0xFF);
    outb(COM1 + 4, 0x0B);   /* loopback off */
    outb(COM1 + 2, 0x00);
}

static int kbd_wait_out(void) { for (int i = 0; i < 100000; i++) if (inb(0x64) & 1) return 1; return 0; }

static void ps2_checks(void) {
    checkx("8042 status at hand-off", inb(0x64) & 0xFD, 0x1C);
    outb(0x64, 0x20); kbd_wait_out();
    checkx("8042 command byte at hand-off", inb(0x60), 0x61);
    outb(0x64, 0xAA); kbd_wait_out();
    checkx("8042 self test", inb(0x60), 0x55);
    outb(0x64, 0xAB); kbd_wait_out();
    checkx("keyboard port test", inb(0x60), 0x00);
    outb(0x64, 0x60); outb(0x60, 0x60);   /* interrupts off, translation on, keyboard on */
    outb(0x64, 0x20); kbd_wait_out();
    checkx("command byte written", inb(0x60), 0x60);
    outb(0x64, 0xD2); outb(0x60, 0x9C);
    kbd_wait_out();
    checkx("0xD2: a byte as if from the keyboard", inb(0x60), 0x9C);
    outb(0x60, 0xEE); kbd_wait_out();
    checkx("keyboard echo", inb(0x60), 0xEE);
    outb(0x60, 0xF2); kbd_wait_out();
    u32 a = inb(0x60); kbd_wait_out(); u32 b = inb(0x60); kbd_wait_out(); u32 c = inb(0x60);
    checkx("keyboard identify (FA AB 41)", a << 16 | b << 8 | c, 0xFAAB41);
    outb(0x60, 0xF4); kbd_wait_out();
    checkx("keyboard enable: ACK", inb(0x60), 0xFA);
    checkx("output buffer empty", inb(0x64) & 1, 0);
    outb(0x64, 0x60); outb(0x60, 0x61);
}

static u32 fw_read(u16 sel, int n) { outw(0x510, sel); u32 v = 0; for (int i = 0; i < n; i++) v |= (u32)inb(0x511) << (8 * i); return v; }
static u32 be32(void) { u32 v = 0; for (int i = 0; i < 4; i++) v = v << 8 | inb(0x511); return v; }

static void fwcfg_checks(void) {
    outw(0x510, 0);
    char sig[5]; for (int i = 0; i < 4; i++) sig[i] = (char)inb(0x511); sig[4] = 0;
    check("fw_cfg signature", sig, "QEMU");
    checkx("fw_cfg ID: traditional interface", fw_read(1, 4) & 1, 1);
    checkx("fw_cfg CPU count", fw_read(5, 2), 1);
    checkx("fw_cfg RAM size (low word)", fw_read(3, 4), 32 << 20);
    outw(0x510, 0x19);
    u32 n = be32(), found = 0, size = 0;
    for (u32 i = 0; i < n && i < 64; i++) {
        u32 sz = be32(); inb(0x511); inb(0x511); inb(0x511); inb(0x511);
        char name[57]; for (int k = 0; k < 56; k++) name[k] = (char)inb(0x511); name[56] = 0;
        const char *w = "etc/e820"; int eq = 1; for (int k = 0; k < 9; k++) if (name[k] != w[k]) eq = 0;
        if (eq) { found = 1; size = sz; }
    }
    checkb("fw_cfg file directory lists etc/e820", found);
    checkb("etc/e820 holds 20-byte entries", size && size % 20 == 0);
    outw(0x510, 0x7FFF);
    checkx("fw_cfg: an unknown item reads 0", inb(0x511), 0);
}

static void cmos_checks(void) {
    checkx("CMOS extended memory 0x17/0x18 (KiB above 1 MiB)", cmos_read(0x17) | cmos_read(0x18) << 8, 31 * 1024);
    checkx("CMOS 0x30/0x31 the same", cmos_read(0x30) | cmos_read(0x31) << 8, 31 * 1024);
    checkx("CMOS 0x34/0x35 (64 KiB above 16 MiB)", cmos_read(0x34) | cmos_read(0x35) << 8, 256);
    checkx("CMOS base memory 0x15/0x16 (640 KiB)", cmos_read(0x15) | cmos_read(0x16) << 8, 640);
    checkx("CMOS equipment byte", cmos_read(0x14), 0x06);
    cmos_write(0x40, 0xA5);
    checkx("CMOS RAM byte 0x40 keeps a value", cmos_read(0x40), 0xA5);
    checkx("a port nothing answers (0x2F8, no COM2) reads 0xFF", inb(0x2F8), 0xFF);
}

int kmain(void) {
    uart_checks();
    ps2_checks();
    fwcfg_checks();
    cmos_checks();
    return 0;
}

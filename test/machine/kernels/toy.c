/*
 * toy: a kernel in the style of the OSDev wiki's tutorials, written for `qemu-system-i386 -kernel`:
 * "hello" in VGA text memory, its own GDT and IDT, the 8259s remapped to 0x20/0x28, the PIT at 100 Hz
 * (mode 3, as the tutorials program it), three tasks switched round-robin by the timer interrupt, and
 * the keyboard (IRQ 1, scan code set 1) echoed for half a second. Every character goes to COM1 and to
 * port 0xE9 (so it prints under QEMU and Bochs alike), and to the screen. It ends through
 * isa-debug-exit with 0 (status 1) when everything happened in order.
 */
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }

/* ---- console: COM1, port 0xE9 and the VGA text screen ---- */
static volatile u16 *const vga = (u16 *)0xB8000;
static int row, col;

static void vga_putc(char c) {
    if (c == '\n') { col = 0; row++; }
    else { vga[row * 80 + col] = (u16)(0x0700 | (u8)c); if (++col == 80) { col = 0; row++; } }
    if (row == 25) {
        for (int i = 0; i < 24 * 80; i++) vga[i] = vga[i + 80];
        for (int i = 24 * 80; i < 25 * 80; i++) vga[i] = 0x0720;
        row = 24;
    }
    u16 pos = (u16)(row * 80 + col);
    outb(0x3D4, 0x0F); outb(0x3D5, (u8)pos);
    outb(0x3D4, 0x0E); outb(0x3D5, (u8)(pos >> 8));
}

static void putc(char c) {
    while (!(inb(0x3FD) & 0x20)) ;
    outb(0x3F8, (u8)c);
    outb(0xE9, (u8)c);
    vga_putc(c);
}
static void puts(const char *s) { while (*s) putc(*s++); }
static void putu(u32 v) { char b[12]; int n = 0; do b[n++] = (char)('0' + v % 10); while (v /= 10); while (n) putc(b[--n]); }

/* ---- descriptors ---- */
static u32 gdt[6] __attribute__((aligned(8))) = { 0, 0, 0x0000FFFF, 0x00CF9A00, 0x0000FFFF, 0x00CF9200 };
struct gate { u16 lo, sel; u8 zero, attr; u16 hi; } __attribute__((packed));
static struct gate idt[256] __attribute__((aligned(8)));
extern char irq0_entry[], irq1_entry[], exc_stubs[];

static void set_gate(int v, void *fn) {
    u32 a = (u32)fn;
    idt[v] = (struct gate){ (u16)a, 0x08, 0, 0x8E, (u16)(a >> 16) };
}

static void load_tables(void) {
    struct { u16 limit; u32 base; } __attribute__((packed)) g = { sizeof gdt - 1, (u32)gdt }, i = { sizeof idt - 1, (u32)idt };
    __asm__ volatile("lgdt %0\n ljmp $0x08, $1f\n1: mov $0x10, %%ax\n mov %%ax, %%ds\n mov %%ax, %%es\n mov %%ax, %%ss\n"
                     "mov %%ax, %%fs\n mov %%ax, %%gs" :: "m"(g) : "eax", "memory");
    for (int v = 0; v < 32; v++) set_gate(v, exc_stubs + 8 * v);
    set_gate(0x20, irq0_entry);
    set_gate(0x21, irq1_entry);
    __asm__ volatile("lidt %0" :: "m"(i));
}

static void finish(int code) { outb(0xF4, (u8)code); for (;;) __asm__ volatile("cli; hlt"); }

void exception(u32 vec) {
    puts("toy: exception "); putu(vec); putc('\n');
    finish(1);
}

/* ---- keyboard ---- */
static const char keymap[0x3A] = {
    0, 27, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', '\b', '\t',
    'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n', 0, 'a', 's',
    'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0, '\\', 'z', 'x', 'c', 'v',
    'b', 'n', 'm', ',', '.', '/', 0, '*', 0, ' ',
};
static volatile char keys[64];
static volatile u32 khead, ktail;
static int shift;

void kbd_isr(void) {
    u8 sc = inb(0x60);
    if (sc == 0x2A || sc == 0x36) shift = 1;
    else if (sc == 0xAA || sc == 0xB6) shift = 0;
    else if (sc < 0x3A && keymap[sc]) {
        char c = keymap[sc];
        if (shift && c >= 'a' && c <= 'z') c = (char)(c - 32);
        if (khead - ktail < 64) keys[khead++ % 64] = c;
    }
    outb(0x20, 0x20);
}

/* ---- timer and tasks ---- */
static volatile u32 ticks;
#define NTASKS 4   /* 0 = kmain, 1-3 = A, B, C */
static u32 task_esp[NTASKS];
static int current, running;
static volatile int done[NTASKS];
static u32 stacks[NTASKS][1024];

u32 timer_isr(u32 esp) {
    ticks++;
    outb(0x20, 0x20);
    if (!running) return esp;
    task_esp[current] = esp;
    current = (current + 1) % NTASKS;
    return task_esp[current];
}

static void task(int id) {
    for (int i = 0; i < 3; i++) {
        puts("task "); putc((char)('A' + id - 1)); puts(": step "); putu((u32)i); putc('\n');
        u32 t = ticks;
        while (ticks == t) __asm__ volatile("hlt");   /* until the next tick preempts us */
    }
    done[id] = 1;
    for (;;) __asm__ volatile("hlt");
}
static void task_a(void) { task(1); }
static void task_b(void) { task(2); }
static void task_c(void) { task(3); }

static void start_task(int id, void (*fn)(void)) {
    u32 *sp = &stacks[id][1024];
    *--sp = 0x202;          /* EFLAGS: IF */
    *--sp = 0x08;           /* CS */
    *--sp = (u32)fn;        /* EIP */
    for (int i = 0; i < 8; i++) *--sp = 0;   /* pusha frame */
    task_esp[id] = (u32)sp;
}

void kmain(void) {
    /* COM1: 115200 8N1, FIFOs on */
    outb(0x3F9, 0x00); outb(0x3FB, 0x80); outb(0x3F8, 0x01); outb(0x3F9, 0x00); outb(0x3FB, 0x03);
    outb(0x3FA, 0xC7); outb(0x3FC, 0x0B);
    for (int i = 0; i < 80 * 25; i++) vga[i] = 0x0720;
    puts("Hello from the toy kernel (VGA text, COM1 and port 0xE9)\n");
    load_tables();
    /* 8259s: vectors 0x20 and 0x28, only the timer and the keyboard */
    outb(0x20, 0x11); outb(0xA0, 0x11); outb(0x21, 0x20); outb(0xA1, 0x28);
    outb(0x21, 0x04); outb(0xA1, 0x02); outb(0x21, 0x01); outb(0xA1, 0x01);
    outb(0x21, 0xFC); outb(0xA1, 0xFF);
    while (inb(0x64) & 1) inb(0x60);   /* flush the keyboard */
    /* PIT channel 0: mode 3, 100 Hz */
    u32 div = 1193182 / 100;
    outb(0x43, 0x36); outb(0x40, (u8)div); outb(0x40, (u8)(div >> 8));
    __asm__ volatile("sti");
    while (ticks < 10) __asm__ volatile("hlt");
    puts("10 timer ticks\n");
    start_task(1, task_a); start_task(2, task_b); start_task(3, task_c);
    current = 0;
    running = 1;
    while (!(done[1] && done[2] && done[3])) __asm__ volatile("hlt");
    running = 0;
    puts("all three tasks done\n");
    puts("keyboard echo for half a second:\n");
    u32 end = ticks + 50;
    while (ticks < end) {
        __asm__ volatile("hlt");
        while (ktail != khead) putc(keys[ktail++ % 64]);
    }
    puts("\nbye\n");
    finish(0);
}

/*
 * apic: the local APIC (xAPIC at IA32_APIC_BASE) and the I/O APIC as QEMU wires them: the MSR, ID and
 * version, the spurious vector register, TPR and PPR, self IPIs through the ICR, ISR/IRR/TMR, EOI, the
 * error status register, the LVT timer one-shot and periodic with its divider and current count,
 * LINT0 in ExtINT mode passing the 8259's interrupts, and ISA IRQ 0 (the PIT) on I/O APIC pin 2.
 */
#include "pc.h"

#define LAPIC ((volatile u32 *)0xFEE00000)
#define R(off) LAPIC[(off) / 4]
#define IOAPIC ((volatile u32 *)0xFEC00000)
static u32 io_read(u32 r) { IOAPIC[0] = r; return IOAPIC[4]; }
static void io_write(u32 r, u32 v) { IOAPIC[0] = r; IOAPIC[4] = v; }

static volatile u32 hits[256];
static volatile u32 isr_seen;
static int apic_hook(struct frame *f) { hits[f->vector]++; R(0xB0) = 0; return 1; }
static int noeoi_hook(struct frame *f) { hits[f->vector]++; isr_seen = R(0x100 + 0x10 * (f->vector >> 5)); return 1; }
static int pic_hook(struct frame *f) { hits[f->vector]++; outb(0x20, 0x20); return 1; }

static void lapic_checks(void) {
    u32 base = rdmsr_lo(0x1B);
    checkx("IA32_APIC_BASE: 0xFEE00000, BSP, enabled", base, 0xFEE00900);
    u32 a, b, c, d; __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1));
    checkx("CPUID.1:EDX.APIC", (d >> 9) & 1, 1);
    checkx("local APIC ID", R(0x20) >> 24, 0);
    checkx("local APIC version (0x14, 6 LVT entries)", R(0x30) & 0xFF00FF, 0x50014);
    checkx("SVR at hand-off (enabled, vector 0xFF)", R(0xF0), 0x1FF);
    checkx("LVT LINT0 at hand-off (ExtINT)", R(0x350), 0x8700);
    checkx("LVT LINT1 at hand-off (NMI)", R(0x360), 0x8400);
    checkx("LVT timer at hand-off (masked)", R(0x320), 0x10000);
    R(0x80) = 0x20;
    checkx("TPR reads back", R(0x80), 0x20);
    checkx("PPR follows TPR", R(0xA0), 0x20);
    R(0x80) = 0;
    for (int v = 0x40; v < 0x60; v++) hooks[v] = apic_hook;
    /* a fixed self IPI */
    R(0x310) = 0; R(0x300) = 0x40 | (1 << 18);
    sti(); __asm__ volatile("nop"); cli();
    checkx("self IPI (shorthand self) delivered as vector 0x40", hits[0x40], 1);
    checkx("ICR delivery status idle", (R(0x300) >> 12) & 1, 0);
    /* TPR blocks a class at or below it */
    R(0x80) = 0x50;
    R(0x300) = 0x45 | (1 << 18);
    sti(); __asm__ volatile("nop"); cli();
    checkx("TPR 0x50 holds vector 0x45 back", hits[0x45], 0);
    checkx("IRR bit 0x45 set meanwhile", (R(0x200 + 0x20) >> 5) & 1, 1);
    R(0x80) = 0;
    sti(); __asm__ volatile("nop"); cli();
    checkx("lowering TPR lets it in", hits[0x45], 1);
    /* ISR while in service; PPR = the in-service class */
    hooks[0x51] = noeoi_hook;
    R(0x300) = 0x51 | (1 << 18);
    sti(); __asm__ volatile("nop"); cli();
    checkx("ISR bit of 0x51 while in service", (isr_seen >> (0x51 & 31)) & 1, 1);
    checkx("PPR = in-service class", R(0xA0), 0x50);
    R(0x300) = 0x52 | (1 << 18);
    sti(); __asm__ volatile("nop"); cli();
    checkx("same class waits for EOI", hits[0x52], 0);
    R(0xB0) = 0;
    sti(); __asm__ volatile("nop"); cli();
    checkx("after EOI it comes", hits[0x52], 1);
    /* physical destination 0 (this CPU), no shorthand */
    R(0x310) = 0; R(0x300) = 0x46;
    sti(); __asm__ volatile("nop"); cli();
    checkx("IPI to physical destination 0", hits[0x46], 1);
    /* illegal vector: send error */
    R(0x280) = 0; R(0x280) = 0;
    R(0x300) = 0x05 | (1 << 18);
    R(0x280) = 0;
    checkx("ESR: send illegal vector", R(0x280) & 0x20, 0x20);
    hooks[0x05] = apic_hook;
    sti(); __asm__ volatile("nop"); cli();
    checkx("an IPI with an illegal vector (5) is not delivered", hits[0x05], 0);
    /* software disable masks the LVT */
    R(0xF0) = 0xFF;
    R(0x320) = 0x47;
    checkx("software disabled: LVT writes stay masked", R(0x320), 0x10047);
    R(0xF0) = 0x1FF;
    R(0x350) = 0x8700;   /* unmask LINT0 again (software disabling masked it) */
}

static void timer_checks(void) {
    R(0x3E0) = 0x0B;   /* divide by 1 */
    R(0x320) = 0x48;   /* one-shot */
    R(0x380) = 5000000;   /* 5 ms at QEMU's 1 GHz: long enough to read it running on a busy host */
    u32 c1 = R(0x390);
    checkb("current count below the initial count", c1 <= 5000000 && c1 > 0);
    wait_for(&hits[0x48], 100000);
    checkx("one-shot timer fired once", hits[0x48], 1);
    checkx("current count 0 after a one-shot", R(0x390), 0);
    for (volatile int i = 0; i < 100000; i++) ;
    checkx("one-shot does not repeat", hits[0x48], 1);
    R(0x3E0) = 0x03;   /* divide by 16 */
    checkx("divide configuration reads back", R(0x3E0), 0x03);
    R(0x320) = 0x49 | (1 << 17);   /* periodic */
    R(0x380) = 20000;
    while (hits[0x49] < 5) __asm__ volatile("sti; hlt; cli");
    checkb("periodic timer fires again and again", hits[0x49] >= 5);
    R(0x320) = 0x10049;
    R(0x380) = 0;
    checkx("initial count 0 stops the timer", R(0x390), 0);
}

static void ioapic_checks(void) {
    checkx("I/O APIC version (0x20, 24 pins)", io_read(1), 0x170020);
    checkx("redirection entry 2 at hand-off (masked)", io_read(0x14), 0x10000);
    io_write(0x15, 0);
    io_write(0x14, 0x10050);
    checkx("redirection entry writes back", io_read(0x14), 0x10050);
    /* the PIT on pin 2: mask the 8259, route the I/O APIC's pin 2 to vector 0x50 */
    outb(0x21, 0xFF); outb(0xA1, 0xFF);
    hooks[0x50] = apic_hook;
    outb(0x43, 0x34); outb(0x40, 0x00); outb(0x40, 0x10);
    io_write(0x14, 0x50);
    while (hits[0x50] < 3) __asm__ volatile("sti; hlt; cli");
    checkb("PIT IRQ 0 through I/O APIC pin 2 as vector 0x50", hits[0x50] >= 3);
    io_write(0x14, 0x10050);
    /* and through the 8259 via LINT0 (ExtINT) */
    pic_init(0x30, 0x38, 0xFE, 0xFF);
    hooks[0x30] = pic_hook;
    while (hits[0x30] < 2) __asm__ volatile("sti; hlt; cli");
    checkb("the 8259's IRQ 0 through LINT0 (ExtINT)", hits[0x30] >= 2);
    R(0x350) = 0x18700;   /* mask LINT0: the 8259 no longer reaches the CPU */
    u32 before = hits[0x30];
    for (int i = 0; i < 3; i++) { sti(); for (volatile int k = 0; k < 300000; k++) ; cli(); }
    checkx("LINT0 masked: no 8259 interrupts", hits[0x30] - before, 0);
    R(0x350) = 0x8700;
    outb(0x21, 0xFF);
}

static u32 scan(const char *sig, u32 n) {
    for (u32 a = 0xE0000; a < 0x100000; a += 16) {
        u32 k = 0; while (k < n && ((volatile char *)a)[k] == sig[k]) k++;
        if (k == n) return a;
    }
    return 0;
}
static u8 sum(u32 a, u32 n) { u8 s = 0; for (u32 i = 0; i < n; i++) s += ((volatile u8 *)a)[i]; return s; }

static void table_checks(void) {
    u32 rsdp = scan("RSD PTR ", 8);
    checkb("ACPI RSDP found in 0xE0000-0xFFFFF, checksum valid", rsdp && sum(rsdp, 20) == 0);
    if (!rsdp) return;
    u32 rsdt = *(volatile u32 *)(rsdp + 16), madt = 0;
    for (u32 p = rsdt + 36; p < rsdt + *(volatile u32 *)(rsdt + 4); p += 4) {
        u32 t = *(volatile u32 *)p;
        if (*(volatile u32 *)t == 0x43495041) madt = t;   /* "APIC" */
    }
    checkb("the RSDT lists a MADT", madt != 0);
    if (!madt) return;
    u32 len = *(volatile u32 *)(madt + 4), lapics = 0, ioapic = 0, iso0 = 0;
    for (u32 p = madt + 44; p < madt + len; p += ((volatile u8 *)p)[1]) {
        volatile u8 *e = (volatile u8 *)p;
        if (e[0] == 0 && (e[4] & 1)) lapics++;
        if (e[0] == 1) ioapic = *(volatile u32 *)(p + 4);
        if (e[0] == 2 && e[3] == 0) iso0 = *(volatile u32 *)(p + 4);
    }
    checkx("MADT: enabled local APICs", lapics, 1);
    checkx("MADT: the I/O APIC's address", ioapic, 0xFEC00000);
    checkx("MADT: ISA IRQ 0 overridden to GSI", iso0, 2);
    checkx("MADT: local APIC address", *(volatile u32 *)(madt + 36), 0xFEE00000);
}

int kmain(void) {
    pic_init(0x20, 0x28, 0xFF, 0xFF);   /* the 8259 masked: only the APICs interrupt */
    table_checks();
    lapic_checks();
    timer_checks();
    ioapic_checks();
    return 0;
}

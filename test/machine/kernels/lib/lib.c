/* The bare-mode test kernels' runtime: console on port 0xE9, checks, GDT/IDT/TSS, trap dispatch. */
#include "lib.h"
#include <stdarg.h>

#define PORT_DEBUGCON 0xE9
#define PORT_EXIT     0xF4

struct desc gdt[GDT_ENTRIES] __attribute__((aligned(8)));
struct gate idt[256] __attribute__((aligned(8)));
struct tss tss __attribute__((aligned(128)));
trap_hook hooks[256];
volatile struct trap_info last;
volatile u32 fault_eip;
volatile int catch_active;
volatile u32 catch_esp;
static int checks, failures;

static char trap_stack[16384] __attribute__((aligned(4096)));
static char user_stack[16384] __attribute__((aligned(4096)));
static char ring1_stack[8192] __attribute__((aligned(4096)));
static char ring2_stack[8192] __attribute__((aligned(4096)));
#define TOP(s) ((u32)(s) + sizeof(s))
const u32 user_stack_top = TOP(user_stack);

void *memset(void *d, int c, u32 n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, u32 n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }

void putc_e9(char c) { outb(PORT_DEBUGCON, (u8)c); }
void puts_e9(const char *s) { while (*s) putc_e9(*s++); }

static int fmt_num(char *out, u32 v, int base, int width, char pad) {
    char tmp[12]; int n = 0, len = 0;
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (n + len < width) out[len++] = pad;
    while (n) out[len++] = tmp[--n];
    return len;
}

static int kvsprintf(char *buf, const char *fmt, va_list ap) {
    char *o = buf;
    for (; *fmt; fmt++) {
        if (*fmt != '%') { *o++ = *fmt; continue; }
        fmt++;
        char pad = ' '; int width = 0;
        if (*fmt == '0') { pad = '0'; fmt++; }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 'u': o += fmt_num(o, va_arg(ap, u32), 10, width, pad); break;
        case 'd': { s32 v = va_arg(ap, s32); if (v < 0) { *o++ = '-'; v = -v; }
                    o += fmt_num(o, (u32)v, 10, width, pad); break; }
        case 'x': o += fmt_num(o, va_arg(ap, u32), 16, width, pad); break;
        case 's': { const char *s = va_arg(ap, const char *); while (*s) *o++ = *s++; break; }
        case 'c': *o++ = (char)va_arg(ap, int); break;
        default: *o++ = *fmt;
        }
    }
    *o = 0;
    return o - buf;
}

int ksprintf(char *buf, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); int n = kvsprintf(buf, fmt, ap); va_end(ap); return n;
}

void kprintf(const char *fmt, ...) {
    char buf[256]; va_list ap; va_start(ap, fmt); kvsprintf(buf, fmt, ap); va_end(ap); puts_e9(buf);
}

void note(const char *fmt, ...) {
    char buf[256]; va_list ap; va_start(ap, fmt); kvsprintf(buf, fmt, ap); va_end(ap);
    puts_e9("note: "); puts_e9(buf); putc_e9('\n');
}

static int streq(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }

void check(const char *desc, const char *got, const char *want) {
    checks++;
    puts_e9(desc); puts_e9(": "); puts_e9(got);
    if (streq(got, want)) puts_e9(" ok\n");
    else { failures++; puts_e9(" FAIL (want "); puts_e9(want); puts_e9(")\n"); }
}

void check3(const char *desc, const char *fmt, u32 g1, u32 g2, u32 g3, u32 w1, u32 w2, u32 w3) {
    char g[160], w[160];
    ksprintf(g, fmt, g1, g2, g3);
    ksprintf(w, fmt, w1, w2, w3);
    check(desc, g, w);
}

void exit_qemu(int v) {
    outb(PORT_EXIT, (u8)v);
    for (;;) __asm__ volatile("cli; hlt");
}

void finish(int status) {
    (void)status;
    kprintf("summary: %u checks, %u failed\n", checks, failures);
    exit_qemu(failures ? 1 : 0);
}

void gdt_set(int idx, u32 base, u32 limit, u8 access, u8 flags) {
    struct desc *d = &gdt[idx];
    d->limit_lo = limit & 0xFFFF;
    d->base_lo = base & 0xFFFF;
    d->base_mid = (base >> 16) & 0xFF;
    d->access = access;
    d->flags_limit_hi = (u8)((flags << 4) | ((limit >> 16) & 0xF));
    d->base_hi = base >> 24;
}

void idt_set(int vec, u32 handler, u16 sel, u8 type, u8 dpl, int present) {
    struct gate *g = &idt[vec];
    g->off_lo = handler & 0xFFFF;
    g->off_hi = handler >> 16;
    g->sel = sel;
    g->zero = 0;
    g->type_attr = (u8)((present ? 0x80 : 0) | (dpl << 5) | type);
}

void idt_default(int vec) { idt_set(vec, (u32)trap_stubs + 16 * vec, SEL_KCODE, GATE_INT32, 0, 1); }

void load_gdt(void) {
    struct { u16 limit; u32 base; } __attribute__((packed)) p = { sizeof gdt - 1, (u32)gdt };
    __asm__ volatile("lgdt %0" :: "m"(p));
}

void load_idt_limit(u16 limit) {
    struct { u16 limit; u32 base; } __attribute__((packed)) p = { limit, (u32)idt };
    __asm__ volatile("lidt %0" :: "m"(p));
}

/* Called from trap_common for every trap. */
void trap_dispatch(struct frame *f) {
    last.vector = f->vector;
    last.err = f->err;
    last.eip = f->eip;
    last.cs = f->cs;
    last.eflags = f->eflags;
    last.ring_change = (f->cs & 3) != 0;
    last.esp = last.ring_change ? f->esp : 0;
    last.ss = last.ring_change ? f->ss : 0;
    last.cr2 = read_cr2();
    last.dr6 = read_dr6();
    last.eax = f->eax;
    last.ebx = f->ebx;
    last.ds = f->ds & 0xFFFF;
    last.es = f->es & 0xFFFF;
    last.frame_top = (u32)&f->esp + (last.ring_change ? 8 : 0);
    if (hooks[f->vector] && hooks[f->vector](f)) return;
    if (catch_active) catch_longjmp((int)f->vector);
    kprintf("unexpected trap: vector=%u err=0x%x eip=0x%08x cs=0x%x\n", f->vector, f->err, f->eip, f->cs);
    failures++;
    finish(1);
}

struct user_entry { u32 fn, ds, cs, ss, esp, eflags, es, fs, gs; };
extern void enter_user(void *);
const u16 ring_cs[4] = { SEL_KCODE, SEL_R1CODE, SEL_R2CODE, SEL_UCODE };
const u16 ring_ds[4] = { SEL_KDATA, SEL_R1DATA, SEL_R2DATA, SEL_UDATA };

int run_ring(int ring, u32 (*fn)(void), u32 eflags) {
    return run_ring_segs(ring, fn, eflags, ring_ds[ring], ring_ds[ring], ring_ds[ring], ring_ds[ring]);
}

int run_ring_segs(int ring, u32 (*fn)(void), u32 eflags, u16 ds, u16 es, u16 fs, u16 gs) {
    struct user_entry e = { (u32)fn, ds, ring_cs[ring], ring_ds[ring], user_stack_top, EFLAGS_FIXED | eflags,
                            es, fs, gs };
    int v = try_call(enter_user, &e);
    if (v == V_SYSCALL && last.eax == SYS_RETURN) return -1;
    return v;
}

void lib_init(u32 magic, u32 mbi) {
    (void)mbi;
    gdt_set(1, 0, 0xFFFFF, ACC_P | ACC_S | ACC_CODE | ACC_RW, FLG_G | FLG_DB);
    gdt_set(2, 0, 0xFFFFF, ACC_P | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(3, 0, 0xFFFFF, ACC_P | ACC_DPL(3) | ACC_S | ACC_CODE | ACC_RW, FLG_G | FLG_DB);
    gdt_set(4, 0, 0xFFFFF, ACC_P | ACC_DPL(3) | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(5, (u32)&tss, TSS_IOMAP_OFF - 1, ACC_P | 0x09, 0);
    gdt_set(6, 0, 0xFFFFF, ACC_P | ACC_DPL(1) | ACC_S | ACC_CODE | ACC_RW, FLG_G | FLG_DB);
    gdt_set(7, 0, 0xFFFFF, ACC_P | ACC_DPL(1) | ACC_S | ACC_RW, FLG_G | FLG_DB);
    gdt_set(8, 0, 0xFFFFF, ACC_P | ACC_DPL(2) | ACC_S | ACC_CODE | ACC_RW, FLG_G | FLG_DB);
    gdt_set(9, 0, 0xFFFFF, ACC_P | ACC_DPL(2) | ACC_S | ACC_RW, FLG_G | FLG_DB);
    load_gdt();
    __asm__ volatile("ljmp %0, $1f\n1:\n"
                     "mov %1, %%ax\nmov %%ax, %%ds\nmov %%ax, %%es\nmov %%ax, %%fs\nmov %%ax, %%gs\nmov %%ax, %%ss"
                     :: "i"(SEL_KCODE), "i"(SEL_KDATA) : "eax", "memory");
    tss.ss0 = SEL_KDATA; tss.esp0 = TOP(trap_stack);
    tss.ss1 = SEL_R1DATA; tss.esp1 = TOP(ring1_stack);
    tss.ss2 = SEL_R2DATA; tss.esp2 = TOP(ring2_stack);
    tss.iomap_base = TSS_IOMAP_OFF;
    memset(tss.iomap, 0xFF, sizeof tss.iomap);
    __asm__ volatile("ltr %w0" :: "r"(SEL_TSS));
    __asm__ volatile("lldt %w0" :: "r"(0));   /* LDTR still holds its reset state: make it null */
    for (int v = 0; v < 256; v++) idt_default(v);
    idt_set(V_SYSCALL, (u32)trap_stubs + 16 * V_SYSCALL, SEL_KCODE, GATE_INT32, 3, 1);
    load_idt_limit(sizeof idt - 1);
    if (magic != 0x2BADB002) { kprintf("bad multiboot magic 0x%x\n", magic); exit_qemu(1); }
}

static const char *const vec_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP",
    "#PF", "v15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "v22", "v23", "v24", "v25", "v26", "v27",
    "v28", "v29", "v30", "v31" };

static char *trap_fmt(char *o, int vec, u32 err, u32 eip, u32 cr2, int show) {
    if (vec < 0) { ksprintf(o, "no trap"); return o; }
    char *p = o;
    if (vec < 32) p += ksprintf(p, "vector=%u(%s)", (u32)vec, vec_names[vec]);
    else p += ksprintf(p, "vector=0x%x", (u32)vec);
    if (show & SHOW_ERR) p += ksprintf(p, " err=0x%x", err);
    if (show & SHOW_EIP) p += ksprintf(p, " eip=0x%08x", eip);
    if (show & SHOW_CR2) p += ksprintf(p, " cr2=0x%08x", cr2);
    return o;
}

void expect(const char *desc, int vec, int want_vec, u32 want_err, u32 want_eip, u32 want_cr2, int show) {
    char g[128], w[128];
    trap_fmt(g, vec, last.err, last.eip, last.cr2, show);
    trap_fmt(w, want_vec, want_err, want_eip, want_cr2, show);
    check(desc, g, w);
}

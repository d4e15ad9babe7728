/* The small runtime of the bare-mode test kernels: console, checks, descriptors, traps. */
#ifndef LIB_H
#define LIB_H

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef unsigned long long u64;
typedef int s32;

/* Selectors of the common GDT (lib.c). Entries from GDT_SCRATCH on belong to the tests. */
#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_UCODE   0x1B
#define SEL_UDATA   0x23
#define SEL_TSS     0x28
#define SEL_R1CODE  0x31
#define SEL_R1DATA  0x39
#define SEL_R2CODE  0x42
#define SEL_R2DATA  0x4A
#define GDT_SCRATCH 10
#define GDT_ENTRIES 32

/* Descriptor access bytes. */
#define ACC_P       0x80
#define ACC_DPL(d)  ((d) << 5)
#define ACC_S       0x10
#define ACC_CODE    0x08
#define ACC_CONF    0x04   /* code: conforming */
#define ACC_ED      0x04   /* data: expand-down */
#define ACC_RW      0x02   /* code: readable, data: writable */
#define ACC_A       0x01
#define FLG_G       0x8
#define FLG_DB      0x4

/* Gate types. */
#define GATE_INT32   0x0E
#define GATE_TRAP32  0x0F
#define GATE_CALL32  0x0C
#define GATE_TASK    0x05

/* Vectors. */
enum { V_DE = 0, V_DB, V_NMI, V_BP, V_OF, V_BR, V_UD, V_NM, V_DF, V_CSO, V_TS, V_NP, V_SS, V_GP,
       V_PF, V_RES15, V_MF, V_AC, V_MC, V_XM };
#define V_SYSCALL 0x80
#define SYS_RETURN 0x52455455

#define EFLAGS_CF   0x00000001
#define EFLAGS_FIXED 0x00000002
#define EFLAGS_TF   0x00000100
#define EFLAGS_IF   0x00000200
#define EFLAGS_IOPL(n) ((n) << 12)
#define EFLAGS_NT   0x00004000
#define EFLAGS_RF   0x00010000
#define EFLAGS_AC   0x00040000

#define CR0_PE 0x00000001
#define CR0_MP 0x00000002
#define CR0_EM 0x00000004
#define CR0_TS 0x00000008
#define CR0_WP 0x00010000
#define CR0_AM 0x00040000
#define CR0_PG 0x80000000
#define CR4_PSE 0x00000010
#define CR4_PAE 0x00000020
#define CR4_PGE 0x00000080

struct desc { u16 limit_lo, base_lo; u8 base_mid, access, flags_limit_hi, base_hi; };
struct gate { u16 off_lo, sel; u8 zero, type_attr; u16 off_hi; };
struct tss {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi,
        edi, es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap_base;
    u8 iomap[8192 + 1];
};

/* What trap_common pushes, lowest address first. */
struct frame {
    u32 gs, fs, es, ds, edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
    u32 vector, err, eip, cs, eflags, esp, ss;   /* esp/ss only on a privilege change */
};

/* The last trap seen by trap_dispatch. */
struct trap_info {
    u32 vector, err, eip, cs, eflags, esp, ss, cr2, dr6, eax, ebx, ds, es;
    u32 frame_top;                 /* the address just above the pushed frame */
    int ring_change;
};
extern volatile struct trap_info last;
extern volatile u32 fault_eip;     /* set by tests to the address they expect in the frame */

/* A hook may inspect/modify the frame; returning nonzero resumes the trapped code with iret. */
typedef int (*trap_hook)(struct frame *f);
extern trap_hook hooks[256];

extern struct desc gdt[GDT_ENTRIES];
extern struct gate idt[256];
extern struct tss tss;
extern char trap_stubs[];
extern char boot_stack_top[];

/* Console and checks. */
void putc_e9(char c);
void puts_e9(const char *s);
int ksprintf(char *buf, const char *fmt, ...);
void kprintf(const char *fmt, ...);
/* Prints "desc: got ok" or "desc: got FAIL (want want)"; counts failures. */
void check(const char *desc, const char *got, const char *want);
/* check() with both sides formatted by fmt from three values each. */
void check3(const char *desc, const char *fmt, u32 g1, u32 g2, u32 g3, u32 w1, u32 w2, u32 w3);
void note(const char *fmt, ...);
/* Compares the trap try_call/run_ring returned (vec, -1 = none) and `last` with the wanted one;
   show selects the fields printed besides the vector. */
#define SHOW_ERR 1
#define SHOW_EIP 2
#define SHOW_CR2 4
void expect(const char *desc, int vec, int want_vec, u32 want_err, u32 want_eip, u32 want_cr2, int show);
#define NO_TRAP (-1)
/* Inline-asm helpers: record the address of the next instruction (a fault's EIP) or of the one
   after it (a trap's EIP) in fault_eip. */
#define AT_FAULT(insn) "movl $1f, fault_eip\n1: " insn "\n"
#define AT_TRAP(insn)  "movl $1f, fault_eip\n" insn "\n1:\n"
/* Like AT_FAULT, but fault_eip is stored before `prep` runs: for a prep that loads DS with the
   segment under test, after which the store itself (through DS) would fault on a machine that
   checks data-segment limits and types. */
#define AT_FAULT_AFTER(prep, insn) "movl $1f, fault_eip\n" prep "\n1: " insn "\n"
void finish(int status) __attribute__((noreturn));
void exit_qemu(int v) __attribute__((noreturn));

/* Descriptors. */
void gdt_set(int idx, u32 base, u32 limit, u8 access, u8 flags);
void idt_set(int vec, u32 handler, u16 sel, u8 type, u8 dpl, int present);
void idt_default(int vec);                 /* the stub, ring 0 interrupt gate, DPL 0 */
void load_gdt(void);
void load_idt_limit(u16 limit);

/* Traps. try_call returns -1 if fn(arg) returned, else the vector it trapped with. */
int try_call(void (*fn)(void *), void *arg);
void catch_longjmp(int result) __attribute__((noreturn));
/* Run fn at ring `ring` with the given extra eflags; returns -1 if it finished with the
   SYS_RETURN system call (its return value is in last.ebx), else the vector it trapped with. */
int run_ring(int ring, u32 (*fn)(void), u32 eflags);
/* run_ring with the data segment registers given (ss is the ring's data segment). */
int run_ring_segs(int ring, u32 (*fn)(void), u32 eflags, u16 ds, u16 es, u16 fs, u16 gs);
extern const u32 user_stack_top;
extern const u16 ring_cs[4], ring_ds[4];
static inline u16 read_cs(void) { u16 v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v; }
static inline u16 read_ss(void) { u16 v; __asm__ volatile("mov %%ss, %0" : "=r"(v)); return v; }

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
#define RDCR(n) static inline u32 read_cr##n(void) { u32 v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
                static inline void write_cr##n(u32 v) { __asm__ volatile("mov %0, %%cr" #n :: "r"(v) : "memory"); }
RDCR(0) RDCR(2) RDCR(3) RDCR(4)
static inline u32 read_dr6(void) { u32 v; __asm__ volatile("mov %%dr6, %0" : "=r"(v)); return v; }
static inline void write_dr6(u32 v) { __asm__ volatile("mov %0, %%dr6" :: "r"(v)); }
static inline void write_dr7(u32 v) { __asm__ volatile("mov %0, %%dr7" :: "r"(v)); }
static inline void write_dr0(u32 v) { __asm__ volatile("mov %0, %%dr0" :: "r"(v)); }
static inline u32 read_eflags(void) { u32 v; __asm__ volatile("pushf; pop %0" : "=r"(v)); return v; }
static inline void invlpg(u32 a) { __asm__ volatile("invlpg (%0)" :: "r"(a) : "memory"); }
void *memset(void *d, int c, u32 n);
void *memcpy(void *d, const void *s, u32 n);

#define SEL(idx, rpl) (((idx) << 3) | (rpl))
#define TSS_IOMAP_OFF 104u

#endif

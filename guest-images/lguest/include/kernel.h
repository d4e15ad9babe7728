/* kernel.h: the guest runtime's interface (the files of runtime/), used by the guests in guests/.
 *
 * The runtime is a tiny paravirtualized kernel for lguest-ts: it boots through LGUEST_INIT, talks to the
 * Host only through hypercalls and lguest_data, and offers consoles, traps, virtual interrupts, a clock,
 * page tables and ring-3 tasks. Guests provide guest_main(). */
#ifndef KERNEL_H
#define KERNEL_H

#include "lguest_abi.h"
#include "format.h"
#include "user_abi.h"

#define NULL ((void *)0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define barrier() asm volatile("" ::: "memory")
#define __pa(va) ((u32)(va) - PAGE_OFFSET)
#define __va(pa) ((void *)((u32)(pa) + PAGE_OFFSET))
#define noreturn __attribute__((noreturn))

/* ---- boot.c ---- */
extern struct lguest_data lguest_data;
extern struct boot_params *boot_params;   /* the zero page, through the linear map */
extern u64 boot_mem_size;                  /* e820_map[0].size */
extern const char *boot_cmdline;           /* NUL-terminated, through the linear map */
void guest_main(void);                     /* provided by each guest */
void lguest_pre_init(void);                /* weak: runs before LGUEST_INIT (misbehave only) */
const char *cmdline_value(const char *key, char *buf, u32 size); /* "key=value" from the command line */

/* ---- hcall.c: one wrapper per hypercall of the seed / v3x table; ring.c: the async ring ---- */
u32  hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
/* The same, returning EDX:EAX: for plug-in hypercalls (LHCALL_EXPERIMENT_FIRST..LAST) with 64-bit results. */
u64  hcall64(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
void async_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
void lazy_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
extern u32 hcall_async_queued, hcall_async_full; /* ring.c statistics */
void lazy_mode_begin(void);                /* page-table updates go to the async ring ... */
void lazy_mode_end(void);                  /* ... until here, which flushes the ring */
void hcall_flush_async(void);
void hcall_lguest_init(u32 lguest_data_phys);
noreturn void hcall_shutdown(const char *msg, u32 how);
void hcall_new_pgtable(u32 pgdir_phys);
void hcall_flush_tlb(u32 kernel_too);
void hcall_load_idt_entry(u32 vector, u32 lo, u32 hi);
void hcall_set_stack(u32 ss, u32 esp, u32 pages);
void hcall_ts(u32 ts);
void hcall_set_clockevent(u32 ns);
void hcall_halt(void);
void hcall_set_pmd(u32 pmd_phys, u32 index);
void hcall_set_pte(u32 pgdir_phys, u32 va, pte_t pte);
void hcall_set_pgd(u32 pgdir_phys, u32 index);
void hcall_load_tls(u32 descs_phys);
void hcall_notify(u32 addr_phys);
void hcall_load_gdt_entry(u32 index, u32 lo, u32 hi);
void hcall_send_interrupts(void);

/* ---- console.c ---- */
int  printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_write(const char *s, u32 len);
noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void power_off(void);             /* prints nothing; SHUTDOWN(POWEROFF, "Power down") */
/* A self-check: prints "check: WHAT: ok", or "FAIL: WHAT" and shuts down with that message. */
void check(int ok, const char *what, ...) __attribute__((format(printf, 2, 3)));

/* ---- string.c ---- */
void *memset(void *d, int c, u32 n);
void *memcpy(void *d, const void *s, u32 n);
void *memmove(void *d, const void *s, u32 n);
int   memcmp(const void *a, const void *b, u32 n);
u32   strlen(const char *s);
int   strcmp(const char *a, const char *b);
int   strncmp(const char *a, const char *b, u32 n);

/* ---- irq.c: virtual interrupt flag and trap dispatch ---- */
struct trap_frame {
	u32 gs, fs, es, ds;                      /* pushed by the entry stub */
	u32 edi, esi, ebp, esp_unused, ebx, edx, ecx, eax; /* pushal */
	u32 vector, errcode;                     /* stub (errcode 0 if the trap has none) */
	u32 eip, cs, eflags;                     /* pushed on injection */
	u32 user_esp, user_ss;                   /* only when coming from ring 3 */
};
typedef void (*trap_handler_t)(struct trap_frame *f);

static inline void irq_disable(void) { lguest_data.irq_enabled = 0; barrier(); }
void irq_enable(void);                      /* with SEND_INTERRUPTS if irq_pending */
static inline u32 irq_save(void) { u32 f = lguest_data.irq_enabled & X86_EFLAGS_IF; irq_disable(); return f; }
static inline void irq_restore(u32 flags) { if (flags & X86_EFLAGS_IF) irq_enable(); else irq_disable(); }
static inline int irqs_enabled(void) { return (lguest_data.irq_enabled & X86_EFLAGS_IF) != 0; }
void irq_block(u32 irq);                   /* blocked_interrupts bit */
void irq_unblock(u32 irq);
void set_trap_handler(u32 vector, trap_handler_t h);
void trap_dispatch(struct trap_frame *f);  /* called by the entry stubs */
static inline u32 read_cr2(void) { return *(volatile u32 *)&lguest_data.cr2; }
const char *trap_name(u32 vector);
extern void (*exit_to_user_hook)(struct trap_frame *f); /* task.c: runs before returning to ring 3 */
extern void (*user_fault_hook)(struct trap_frame *f);   /* task.c: an exception from ring 3 with no handler */

/* ---- desc.c: GDT and IDT through hypercalls ---- */
void gdt_init(void);
void idt_init(void);
void make_segment(u32 base, u32 last_byte, u32 type, u32 dpl, u32 desc[2]);
#define SEG_TYPE_CODE_RX 0xA
#define SEG_TYPE_DATA_RW 0x2
void idt_set_gate(u32 vector, u32 handler, u32 type, u32 dpl);
void idt_clear_gate(u32 vector);
void load_tls(const u32 desc[GDT_ENTRY_TLS_ENTRIES * 2]); /* LOAD_TLS; desc must be in kernel memory */
extern u32 trap_stub_table[64];            /* entry.S: stubs for vectors 0..63 */
void syscall_stub(void);                   /* entry.S: vector 0x80 */

/* ---- clock.c ---- */
void clock_init(void);                      /* IRQ 0 handler; unblocks the timer */
void clock_set_periodic(u32 ns);            /* 0 = stop */
void clock_oneshot(u32 ns);
void clock_cancel(void);
extern volatile u32 clock_ticks;
extern void (*clock_tick_hook)(struct trap_frame *f);
void halt(void);                            /* HALT until an interrupt was delivered */
u32  lguest_time_us(void);                  /* lguest_data.time in microseconds (wraps) */

/* ---- mm.c: page tables that keep the Host informed ---- */
struct mm {
	u32 pgd_phys;                            /* what NEW_PGTABLE and SET_PTE name */
	void *pgd;                               /* the same page through the linear map */
};
extern struct mm kernel_mm;
extern u32 mm_mapped_bytes;                 /* RAM mapped at PAGE_OFFSET */
void  mm_init(void);                        /* builds kernel_mm and switches to it */
void *page_alloc(void);                     /* one zeroed page (linear-map address) */
void *pages_alloc(u32 n);                   /* n contiguous zeroed pages */
void  mm_create_user(struct mm *mm);        /* new top level with the kernel part of kernel_mm */
void  mm_map(struct mm *mm, u32 va, u64 pa, u32 flags);
void  mm_unmap(struct mm *mm, u32 va);
pte_t mm_get_pte(struct mm *mm, u32 va);    /* 0 if no table */
pte_t *mm_pte_slot(struct mm *mm, u32 va); /* the PTE's place, NULL if no table (for writing it silently) */
void  mm_set_pte(struct mm *mm, u32 va, pte_t pte);   /* raw: any value */
void  mm_set_table_entry(struct mm *mm, u32 va, u64 entry); /* raw PDE (2-level) / PMD entry (PAE) */
void  mm_switch(struct mm *mm);
extern struct mm *current_mm;

/* ---- task.c: ring-3 tasks, round-robin scheduler, system calls ---- */

#define TASK_OUTPUT_MAX 1024
struct task {
	u32 id;                                  /* pid; 0 = the idle (boot) task */
	int state;
	u32 saved_esp;                           /* kernel stack pointer while switched out */
	u32 kstack_top;
	struct mm mm;
	u32 tls[GDT_ENTRY_TLS_ENTRIES * 2];
	u32 preemptions;
	int exit_code;
	u32 out_len;
	char out[TASK_OUTPUT_MAX];               /* what the task wrote, printed at the end */
};
enum { TASK_RUNNABLE = 1, TASK_EXITED = 2 };
#define TASK_KSTACK_PAGES 2
extern struct task *current;
void tasks_init(u32 tick_ns);
struct task *task_create_user(const void *image, u32 image_size, u32 entry, u32 arg);
void tasks_run_all(void);                   /* idles until every task has exited */
noreturn void task_exit(int code);
void task_printf(struct task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
u32 task_count(void);
struct task *task_get(u32 i);               /* i = 1..task_count() */
/* Called by the scheduler on every switch, inside its batch of hypercalls (the fpu guest sets TS here). */
extern void (*task_switch_hook)(struct task *prev, struct task *next);

/* ---- vcpu.c, vcpu_entry.S: secondary vCPUs (the lguest-ts SMP extension, lguest_abi.h) ----
 * Linked only by the guests that list them (LGUEST_EXTRA_smp in lguest.mk). The rest of the runtime is
 * uniprocessor and belongs to vCPU 0: code running on a secondary must not use printk, check, panic,
 * the irq_*() helpers, the async ring or the lazy_hcall wrappers (hcall_set_stack, hcall_load_tls,
 * hcall_flush_tlb, ...), nor allocate pages. It has what is below instead, plain hcall(), the string and
 * format functions, make_segment and gdt_init/idt_set_gate (synchronous, no state). vCPU 0 sets up, and
 * owns, everything else (page tables included). */
#define VCPU_STACK_SIZE 8192
struct vcpu_page {                          /* a secondary's lguest_data, alone in its page */
	struct lguest_data data;
	u8 pad[PAGE_SIZE - sizeof(struct lguest_data)];
} __attribute__((aligned(PAGE_SIZE)));
extern struct vcpu_page vcpu_pages[LGUEST_MAX_VCPUS];  /* [id] for id >= 1; [0] unused (vCPU 0: lguest_data) */
extern u8 vcpu_stacks[LGUEST_MAX_VCPUS][VCPU_STACK_SIZE];
extern volatile u32 vcpu_start_eax[LGUEST_MAX_VCPUS];   /* EAX each secondary found at its first instruction */
/* An interrupt handler on a secondary: runs with its interrupts off, on its stack. */
typedef void (*vcpu_irq_handler_t)(u32 id, u32 irq, struct trap_frame *f);
extern vcpu_irq_handler_t vcpu_irq_handlers[LGUEST_IRQS]; /* shared by every secondary; set them before starting */

u32  hcall_vcpu_start(u32 id, u32 eip, u32 esp);       /* VCPU_START_OK or VCPU_START_NO_SUCH_VCPU */
void hcall_send_ipi(u32 id, u32 irq);                  /* from any vCPU */
/* Prepare vCPU id's lguest_data and stack and start it (VCPU_START); it runs fn(id) once set up (its
 * own IDT, GDT user entries, SET_STACK), with interrupts off, and parks if fn returns. */
u32  vcpu_start(u32 id, void (*fn)(u32 id));
void vcpu_entry(void);                                  /* vcpu_entry.S: where VCPU_START points */
u32  vcpu_self(void);                                   /* this secondary's id, from its stack; 0 elsewhere */
static inline struct lguest_data *vcpu_data(u32 id) { return &vcpu_pages[id].data; }
static inline void vcpu_irq_disable(u32 id) { vcpu_data(id)->irq_enabled = 0; barrier(); }
void vcpu_irq_enable(u32 id);                           /* with SEND_INTERRUPTS if irq_pending */
void vcpu_irq_block(u32 id, u32 irq);                   /* call with its interrupts off */
void vcpu_irq_unblock(u32 id, u32 irq);
void vcpu_halt(void);                                   /* HALT (interrupts off); returns after a delivery */
extern char vcpu_halt_resume[];                          /* the EIP an interrupt that ends vcpu_halt sees */
void vcpu_load_tls(const u32 desc[GDT_ENTRY_TLS_ENTRIES * 2]); /* GS = 0, then a synchronous LOAD_TLS */
noreturn void vcpu_shutdown(u32 id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
noreturn void vcpu_park(u32 id);                        /* every IRQ blocked, HALT for ever */

/* ---- entry.S ---- */
void switch_to(u32 *prev_esp, u32 next_esp);
void ret_from_trap(void);
void lguest_iret(void);
extern char lguest_noirq_start[], lguest_noirq_end[];
extern char boot_stack_top[];
extern char _end[], __bss_start[], __bss_end[];

#endif /* KERNEL_H */

/* qhost: a throwaway lguest Host that runs ONE guest image under QEMU, to exercise the guests of
 * guest-images/lguest before the real (TypeScript) Host exists. It is a test double, not a model of
 * lguest-ts: it implements the guest-visible ABI of docs/abi.md (hypercalls, async ring,
 * lguest_data, interrupt delivery and reflection, the noirq window, boot tables, boot_params) on real
 * (emulated) hardware at ring 0, but WITHOUT shadow paging: the guest's own page tables are loaded into
 * CR3, with qhost's 4 MiB pages (itself at 64 MiB, and a window onto guest RAM) planted in every
 * guest top level. Validation the real Host does on demand (check_gpte/gpgd) is done here when the
 * guest reports the change (SET_PTE/SET_PGD/SET_PMD) instead. Built twice: 2-level (qhost.elf) and
 * PAE (qhost-pae.elf, -DCONFIG_PAE; qhost's 2 MiB pages then go into the PMD under PGD entry 0, a
 * private PMD page if the guest's top level has none there).
 *
 * qemu-system-i386 -kernel qhost.elf -initrd GUEST.elf -append "guest command line" -debugcon stdio
 *   -device isa-debug-exit,iobase=0xf4,iosize=4
 * prints the guest's console and finally "qhost: guest died: <reason>". */
#include "lguest_abi.h"

#define GUEST_MEM        (32u << 20)
#define HOST_BASE        0x4000000u
#define WINDOW           0x4400000u     /* guest-physical 0.. at this address */
#define HOST_PDE         (HOST_BASE >> 22)
#define WINDOW_PDES      (GUEST_MEM >> 22)
#define TIMER_VECTOR     0xF0
#define PSE_FLAG         0x80
#define CR0_PG           0x80000000u
#define CR0_WP           0x00010000u
#define CR4_PSE          0x10
#define CR4_PAE          0x20

static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }

/* ---- console and exit ---- */
static void putc(char c) { outb(0xE9, (u8)c); }
static void puts(const char *s) { while (*s) putc(*s++); }
static void putx(u32 v) { for (int i = 28; i >= 0; i -= 4) putc("0123456789abcdef"[(v >> i) & 15]); }
static void putu(u32 v) { char b[12]; int i = 11; b[i] = 0; do { b[--i] = '0' + v % 10; v /= 10; } while (v); puts(b + i); }
static void qemu_exit(u32 code) { asm volatile("outl %0, %1" :: "a"(code), "Nd"((u16)0xF4)); for (;;) asm volatile("cli; hlt"); }

static void die(const char *a, u32 x, int hex, const char *b)
{
	puts("\nqhost: guest died: ");
	puts(a);
	if (hex == 1) { puts("0x"); putx(x); }
	else if (hex == 0) putu(x);
	if (b) puts(b);
	puts("\n");
	qemu_exit(1);
}
#define KILL(msg) die(msg, 0, -1, 0)
#define KILLX(msg, x) die(msg, x, 1, 0)
#define KILLU(msg, x) die(msg, x, 0, 0)

/* ---- descriptor tables ---- */
struct tss {
	u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
	u32 es, cs, ss, ds, fs, gs, ldt;
	u16 trap, iomap;
} __attribute__((packed));

static u32 gdt[GDT_ENTRIES][2] __attribute__((aligned(8)));
static u32 idt[IDT_ENTRIES][2] __attribute__((aligned(8)));
static u32 guest_idt[IDT_ENTRIES][2];
static struct tss tss;
extern u32 host_stub_table[256];
extern void timer_stub(void);
extern void run_guest(void);
struct lguest_regs guest_regs __attribute__((aligned(16)));
u32 host_saved_esp;

/* ---- guest state ---- */
static u32 pfn_limit = GUEST_MEM / PAGE_SIZE;
static struct lguest_data *ld;          /* NULL until LGUEST_INIT */
static u32 boot_pgdir, current_cr3;
static u32 pending_irqs, halted, hcall_pending;
static u32 next_hcall;
static volatile u32 ticks_ms;
static u32 clock_deadline;              /* 0 = none */

static void *gpa(u32 addr, u32 len)
{
	if (addr + len < addr || addr + len > GUEST_MEM)
		KILLX("bad guest-physical address ", addr);
	return (void *)(WINDOW + addr);
}

/* set_cr3, guest_walk, check_* and the boot tables: the paging block below. */
static void set_cr3(u32 pgdir);
static int guest_walk(u32 va, int write, u32 *pa);

static u32 guest_pa(u32 va, int write)
{
	u32 pa;
	if (!guest_walk(va, write, &pa))
		KILLX("guest_pa: no mapping for ", va);
	return pa;
}

static void push_guest(u32 *esp, u32 v)
{
	*esp -= 4;
	*(u32 *)gpa(guest_pa(*esp, 1), 4) = v;
}

static void time_now(void)
{
	if (!ld)
		return;
	ld->time.tv_sec = ticks_ms / 1000;
	ld->time.tv_nsec = (ticks_ms % 1000) * 1000000;
}

/* ---- the real IDT and GDT from the guest's entries ---- */
static int direct_trap(u32 v)
{
	if (v >= 32)
		return v == LGUEST_SYSCALL_VECTOR;
	return v != 6 && v != 7 && v != 13 && v != 14 && v != LGUEST_TRAP_ENTRY;
}

static void set_real_gate(u32 v)
{
	u32 *g = guest_idt[v];
	if (v == TIMER_VECTOR) {
		u32 h = (u32)timer_stub;
		idt[v][0] = (0x50 << 16) | (h & 0xFFFF);
		idt[v][1] = (h & 0xFFFF0000) | 0x8E00;
		return;
	}
	if ((g[1] & 0x8000) && ((g[1] >> 8) & 0xF) == 0xF && direct_trap(v)) {
		idt[v][0] = g[0];
		idt[v][1] = g[1];
		return;
	}
	u32 dpl = v == LGUEST_TRAP_ENTRY ? 1 : (g[1] >> 13) & 3;
	u32 h = host_stub_table[v];
	idt[v][0] = (0x50 << 16) | (h & 0xFFFF);
	idt[v][1] = (h & 0xFFFF0000) | 0x8E00 | (dpl << 13);
}

static void fixup_gdt_entry(u32 i, u32 lo, u32 hi)
{
	if (!(hi & 0x6000))
		hi |= 1 << 13;
	hi |= 0x100;
	gdt[i][0] = lo;
	gdt[i][1] = hi;
}

/* ---- reflection (abi 4.6) ---- */
static int has_err(u32 v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17;
}

static void set_guest_interrupt(u32 lo, u32 hi, int with_err)
{
	u32 esp, ss;
	u32 old_ss = guest_regs.ss & 0xFFFF;
	if ((old_ss & 3) != 1) {
		ss = tss.ss1;
		esp = tss.esp1;
		push_guest(&esp, old_ss);
		push_guest(&esp, guest_regs.esp);
	} else {
		ss = old_ss;
		esp = guest_regs.esp;
	}
	u32 eflags = guest_regs.eflags;
	if (!(ld->irq_enabled & X86_EFLAGS_IF))
		eflags &= ~X86_EFLAGS_IF;
	push_guest(&esp, eflags);
	push_guest(&esp, guest_regs.cs & 0xFFFF);
	push_guest(&esp, guest_regs.eip);
	if (with_err)
		push_guest(&esp, guest_regs.errcode);
	guest_regs.ss = ss;
	guest_regs.esp = esp;
	guest_regs.cs = KERNEL_CS;
	guest_regs.eip = (lo & 0xFFFF) | (hi & 0xFFFF0000);
	if (((hi >> 8) & 0xF) == 0xE)
		ld->irq_enabled = 0;
}

static void reflect_trap(u32 v)
{
	if (!ld || !(guest_idt[v][1] & 0x8000)) {
		puts("\nqhost: guest died: unhandled trap ");
		putu(v);
		puts(" at 0x");
		putx(guest_regs.eip);
		puts(" (0x");
		putx(guest_regs.errcode);
		puts(")\n");
		qemu_exit(1);
	}
	set_guest_interrupt(guest_idt[v][0], guest_idt[v][1], has_err(v));
}

/* ---- interrupts (abi 4.7) ---- */
static int deliverable(void)
{
	return ld && (pending_irqs & ~ld->blocked_interrupts[0]);
}

static void maybe_deliver_interrupt(void)
{
	if (!deliverable())
		return;
	u32 pend = pending_irqs & ~ld->blocked_interrupts[0], irq = 0;
	while (!(pend & (1u << irq)))
		irq++;
	if (guest_regs.eip >= ld->noirq_start && guest_regs.eip < ld->noirq_end)
		return;
	if (halted) {
		ld->irq_enabled = X86_EFLAGS_IF;
		halted = 0;
	} else if (!(ld->irq_enabled & X86_EFLAGS_IF)) {
		ld->irq_pending = X86_EFLAGS_IF;
		return;
	}
	u32 v = FIRST_EXTERNAL_VECTOR + irq;
	if (guest_idt[v][1] & 0x8000) {
		pending_irqs &= ~(1u << irq);
		set_guest_interrupt(guest_idt[v][0], guest_idt[v][1], 0);
	}
	time_now();
	if (!(pending_irqs & ~ld->blocked_interrupts[0]))
		ld->irq_pending = 0;
}

void host_timer_tick(void)
{
	ticks_ms++;
	if (clock_deadline && (int)(ticks_ms - clock_deadline) >= 0) {
		clock_deadline = 0;
		pending_irqs |= 1u << LGUEST_TIMER_IRQ;
	}
	outb(0x20, 0x20);
}

/* ---- paging: 2-level or PAE ---- */
#ifdef CONFIG_PAE
static u64 host_pdpt[4] __attribute__((aligned(32)));
static u64 host_pmd[512] __attribute__((aligned(4096)));       /* qhost's own tables */
static u64 guest_low_pmd[512] __attribute__((aligned(4096)));  /* for guest tables with no PGD 0 */
#define HOST_PMD_INDEX   (HOST_BASE >> 21)
#define WINDOW_PMD_INDEX (WINDOW >> 21)

static void plant_host_pmds(u64 *pmd)
{
	pmd[HOST_PMD_INDEX] = HOST_BASE | 0x83;
	pmd[HOST_PMD_INDEX + 1] = (HOST_BASE + (2u << 20)) | 0x83;
	for (u32 i = 0; i < GUEST_MEM >> 21; i++)
		pmd[WINDOW_PMD_INDEX + i] = ((u64)i << 21) | 0x83;
}

static void set_cr3(u32 pgdir)
{
	u64 *pdpt = gpa(pgdir, 32);
	if (!(pdpt[0] & 1))
		pdpt[0] = (u32)guest_low_pmd | 1;
	u32 pmd_pa = (u32)(pdpt[0] & ~0xFFFull);
	plant_host_pmds(pmd_pa == (u32)guest_low_pmd ? guest_low_pmd : gpa(pmd_pa, PAGE_SIZE));
	current_cr3 = pgdir;
	asm volatile("movl %0, %%cr3" :: "r"(pgdir) : "memory");
}

static int guest_walk(u32 va, int write, u32 *pa)
{
	u64 pgd = ((u64 *)gpa(current_cr3, 32))[va >> 30];
	if (!(pgd & 1) || (u32)(pgd & ~0xFFFull) == (u32)guest_low_pmd)
		return 0;
	u64 pmd = *(u64 *)gpa((u32)(pgd & ~0xFFFull) + ((va >> 21) & 511) * 8, 8);
	if (!(pmd & 1) || (pmd & PSE_FLAG))
		return 0;
	u64 pte = *(u64 *)gpa((u32)(pmd & ~0xFFFull) + ((va >> 12) & 511) * 8, 8);
	if (!(pte & 1) || (write && !(pte & 2)) || (pte >> 32))
		return 0;
	*pa = ((u32)pte & ~0xFFFu) | (va & 0xFFF);
	return 1;
}

static void check_pte(u32 lo, u32 hi)
{
	u64 pte = ((u64)hi << 32) | lo;
	if ((pte & 1) && ((pte & PSE_FLAG) || ((pte & 0x000FFFFFFFFFF000ull) >> 12) >= pfn_limit))
		KILLX("bad page table entry ", lo);
}

static void check_pgd(u32 pgdir, u32 index)
{
	u64 e = ((u64 *)gpa(pgdir, 32))[index];
	if ((e & 1) && ((e & 0xFFE) || (e >> 12) >= pfn_limit))
		KILLX("bad page directory entry ", (u32)e);
}

static void check_pmd(u32 pmd_page, u32 index)
{
	u64 e = *(u64 *)gpa(pmd_page + index * 8, 8);
	if ((e & 1) && ((e & 0xFFF & ~(u64)_PAGE_TABLE) || (e >> 12) >= pfn_limit))
		KILLX("bad page middle directory entry ", (u32)e);
}

static int bad_kernel_address(u32 ka)
{
	return (ka >> 30) == 3 && ((ka >> 21) & 511) == 511;
}

static void setup_boot_pagetables(void)
{
	/* abi 3.5, PAE: top level at mem - 4096, the linear PTE pages below it, one PMD page below them. */
	u32 pages = GUEST_MEM / PAGE_SIZE, linear = (pages + 511) / 512;
	boot_pgdir = GUEST_MEM - PAGE_SIZE;
	u32 ptes = boot_pgdir - linear * PAGE_SIZE, pmd = ptes - PAGE_SIZE;
	u64 *pt = gpa(ptes, linear * PAGE_SIZE), *pm = gpa(pmd, PAGE_SIZE), *pd = gpa(boot_pgdir, PAGE_SIZE);
	for (u32 i = 0; i < pages; i++)
		pt[i] = ((u64)i << 12) | 7;
	for (u32 j = 0; j < linear; j++)
		pm[j] = (ptes + j * PAGE_SIZE) | 7;
	pd[0] = pmd | 1;
	pd[3] = pmd | 1;
}

static void enable_host_paging(void)
{
	plant_host_pmds(host_pmd);
	host_pdpt[0] = (u32)host_pmd | 1;
	asm volatile("movl %%cr4, %%eax\n\torl %0, %%eax\n\tmovl %%eax, %%cr4\n\t"
		     "movl %1, %%cr3\n\t"
		     "movl %%cr0, %%eax\n\torl %2, %%eax\n\tmovl %%eax, %%cr0"
		     :: "i"(CR4_PSE | CR4_PAE), "r"(host_pdpt), "i"(CR0_PG | CR0_WP) : "eax", "memory");
}
#else
static u32 host_pd[1024] __attribute__((aligned(4096)));

static void set_cr3(u32 pgdir)
{
	u32 *pd = gpa(pgdir, PAGE_SIZE);
	pd[HOST_PDE] = HOST_BASE | 0x83;
	for (u32 i = 0; i < WINDOW_PDES; i++)
		pd[(WINDOW >> 22) + i] = (i << 22) | 0x83;
	current_cr3 = pgdir;
	asm volatile("movl %0, %%cr3" :: "r"(pgdir) : "memory");
}

static int guest_walk(u32 va, int write, u32 *pa)
{
	u32 pde = *(u32 *)gpa(current_cr3 + (va >> 22) * 4, 4);
	if (!(pde & 1) || (pde & PSE_FLAG))
		return 0;
	u32 pte = *(u32 *)gpa((pde & ~0xFFFu) + ((va >> 12) & 1023) * 4, 4);
	if (!(pte & 1) || (write && !(pte & 2)))
		return 0;
	*pa = (pte & ~0xFFFu) | (va & 0xFFF);
	return 1;
}

static void check_pte(u32 pte, u32 hi)
{
	(void)hi;
	if ((pte & 1) && ((pte & PSE_FLAG) || (pte >> 12) >= pfn_limit))
		KILLX("bad page table entry ", pte);
}

static void check_pgd(u32 pgdir, u32 index)
{
	u32 pgd = *(u32 *)gpa(pgdir + index * 4, 4);
	if ((pgd & 1) && ((pgd & 0xFFF & ~(u32)_PAGE_TABLE) || (pgd >> 12) >= pfn_limit))
		KILLX("bad page directory entry ", pgd);
}

static int bad_kernel_address(u32 ka)
{
	return (ka >> 22) >= SWITCHER_PGD_INDEX;
}

static void setup_boot_pagetables(void)
{
	/* abi 3.5, 2-level: top level at mem - 4096, linear PTE pages below it. */
	u32 pages = GUEST_MEM / PAGE_SIZE, linear = (pages + 1023) / 1024;
	boot_pgdir = GUEST_MEM - PAGE_SIZE;
	u32 ptes = boot_pgdir - linear * PAGE_SIZE;
	u32 *pt = gpa(ptes, linear * PAGE_SIZE), *pd = gpa(boot_pgdir, PAGE_SIZE);
	for (u32 i = 0; i < pages; i++)
		pt[i] = (i << 12) | 7;
	for (u32 k = 0; k < linear; k++) {
		pd[k] = (ptes + k * PAGE_SIZE) | 7;
		pd[768 + k] = (ptes + k * PAGE_SIZE) | 7;
	}
}

static void enable_host_paging(void)
{
	host_pd[HOST_PDE] = HOST_BASE | 0x83;
	for (u32 i = 0; i < WINDOW_PDES; i++)
		host_pd[(WINDOW >> 22) + i] = (i << 22) | 0x83;
	asm volatile("movl %%cr4, %%eax\n\torl %0, %%eax\n\tmovl %%eax, %%cr4\n\t"
		     "movl %1, %%cr3\n\t"
		     "movl %%cr0, %%eax\n\torl %2, %%eax\n\tmovl %%eax, %%cr0"
		     :: "i"(CR4_PSE), "r"(host_pd), "i"(CR0_PG | CR0_WP) : "eax", "memory");
}
#endif

/* ---- hypercalls (abi 1.3) ---- */
static u32 stack_pages;

static void do_hcall(struct hcall_args *a)
{
	u32 n = a->arg0;
	if (!ld && n != LHCALL_LGUEST_INIT)
		die("hypercall ", n, 0, " before INIT");
	switch (n) {
	case LHCALL_FLUSH_ASYNC:
	case LHCALL_SEND_INTERRUPTS:
	case LHCALL_TS:
		break;
	case LHCALL_LGUEST_INIT: {
		if (ld)
			KILL("already have lguest_data");
		if (a->arg1 + sizeof(*ld) < a->arg1 || (a->arg1 + sizeof(*ld)) / PAGE_SIZE >= pfn_limit)
			KILLX("bad lguest_data address ", a->arg1);
		ld = gpa(a->arg1, sizeof(*ld));
		ld->tsc_khz = 0;
		if (ld->syscall_vec != LGUEST_SYSCALL_VECTOR)
			KILLU("bad syscall vector ", ld->syscall_vec);
		time_now();
		ld->reserve_mem = LGUEST_RESERVE_MEM;
		ld->pgdir = boot_pgdir;
		if (bad_kernel_address(ld->kernel_address))
			KILLX("bad kernel address ", ld->kernel_address);
		next_hcall = 0;
		break;
	}
	case LHCALL_SHUTDOWN: {
		char msg[128];
		const char *src = gpa(a->arg1, 128);
		for (int i = 0; i < 128; i++)
			msg[i] = src[i];
		msg[127] = 0;
		if (a->arg2 == LGUEST_SHUTDOWN_RESTART)
			die("restart requested: ", 0, -1, msg);
		die("CRASH: ", 0, -1, msg);
		break;
	}
	case LHCALL_NEW_PGTABLE:
		if (a->arg1 & 0xFFF)
			KILLX("bad pgdir ", a->arg1);
		set_cr3(a->arg1);
		break;
	case LHCALL_FLUSH_TLB:
		set_cr3(current_cr3);
		break;
	case LHCALL_LOAD_IDT_ENTRY: {
		u32 v = a->arg1, lo = a->arg2, hi = a->arg3;
		if (v >= IDT_ENTRIES)
			KILLU("bad IDT vector ", v);
		if (v == 2 || v == 8 || v == 15 || v == LGUEST_TRAP_ENTRY)
			break;
		if (!(hi & 0x8000)) {
			guest_idt[v][0] = guest_idt[v][1] = 0;
		} else {
			u32 type = (hi >> 8) & 0xF;
			if (type != 0xE && type != 0xF)
				KILLU("bad IDT type ", type);
			guest_idt[v][0] = (KERNEL_CS << 16) | (lo & 0xFFFF);
			guest_idt[v][1] = hi & 0xFFFFEF00;
		}
		set_real_gate(v);
		break;
	}
	case LHCALL_SET_STACK:
		if ((a->arg1 & 3) != GUEST_PL)
			KILLU("bad stack segment ", a->arg1);
		if (a->arg3 > 2)
			KILLU("bad stack pages ", a->arg3);
		tss.ss1 = a->arg1;
		tss.esp1 = a->arg2;
		stack_pages = a->arg3;
		for (u32 i = 0; i < stack_pages; i++) {
			u32 pa;
			if (!guest_walk(a->arg2 - 1 - i * PAGE_SIZE, 1, &pa))
				KILLX("bad stack page ", a->arg2 - 1 - i * PAGE_SIZE);
		}
		break;
	case LHCALL_SET_CLOCKEVENT:
		clock_deadline = a->arg1 ? ticks_ms + (a->arg1 + 999999) / 1000000 : 0;
		if (clock_deadline == 0 && a->arg1)
			clock_deadline = 1;
		break;
	case LHCALL_HALT:
		halted = 1;
		break;
	case LHCALL_SET_PTE:
		if (a->arg2 >= SWITCHER_ADDR)
			KILL("attempt to access switcher pages");
		check_pte(a->arg3, a->arg4);
		set_cr3(current_cr3);
		break;
	case LHCALL_SET_PGD:
		if (a->arg2 >= SWITCHER_PGD_INDEX)
			break;
		check_pgd(a->arg1, a->arg2);
		set_cr3(current_cr3);
		break;
#ifdef CONFIG_PAE
	case LHCALL_SET_PMD:
		if (a->arg2 >= 512)
			KILLU("bad PMD index ", a->arg2);
		check_pmd(a->arg1, a->arg2);
		set_cr3(current_cr3);
		break;
#endif
	case LHCALL_LOAD_TLS: {
		u32 *d = gpa(a->arg1, 24);
		for (int i = 0; i < 3; i++)
			fixup_gdt_entry(GDT_ENTRY_TLS_MIN + i, d[2 * i], d[2 * i + 1]);
		break;
	}
	case LHCALL_NOTIFY: {
		if (a->arg1 >= GUEST_MEM)
			KILLX("Bad NOTIFY ", a->arg1);
		const char *s = gpa(a->arg1, 1);
		for (u32 i = 0; a->arg1 + i < GUEST_MEM && s[i]; i++)
			putc(s[i]);
		break;
	}
	case LHCALL_LOAD_GDT_ENTRY:
		if (a->arg1 >= GDT_ENTRIES)
			KILLU("too many gdt entries ", a->arg1);
		if (a->arg1 == GDT_ENTRY_TSS || a->arg1 == GDT_ENTRY_LGUEST_CS || a->arg1 == GDT_ENTRY_LGUEST_DS ||
		    a->arg1 == GDT_ENTRY_DOUBLEFAULT_TSS)
			break;
		fixup_gdt_entry(a->arg1, a->arg2, a->arg3);
		break;
	default:
		KILLU("Bad hypercall ", n);
	}
}

static void do_hypercalls(void)
{
	struct hcall_args sync = { guest_regs.eax, guest_regs.ebx, guest_regs.ecx, guest_regs.edx, guest_regs.esi };
	if (ld) {
		u8 st[LHCALL_RING_SIZE];
		for (int i = 0; i < LHCALL_RING_SIZE; i++)
			st[i] = ld->hcall_status[i];
		for (int i = 0; i < LHCALL_RING_SIZE; i++) {
			u32 slot = next_hcall;
			if (st[slot] == 0xFF)
				break;
			next_hcall = (next_hcall + 1) % LHCALL_RING_SIZE;
			struct hcall_args copy = ld->hcalls[slot];
			do_hcall(&copy);
			ld->hcall_status[slot] = 0xFF;
		}
	}
	do_hcall(&sync);
}

/* ---- #GP: in/out emulation (abi 4.2, without the IN quirks) ---- */
static int emulate_insn(void)
{
	if ((guest_regs.cs & 3) != GUEST_PL)
		return 0;
	u32 eip = guest_regs.eip, len = 0, wide16 = 0, in = 0;
	u8 op = *(u8 *)gpa(guest_pa(eip, 0), 1);
	if (op == 0x66) {
		wide16 = 1;
		len = 1;
		op = *(u8 *)gpa(guest_pa(eip + 1, 0), 1);
	}
	switch (op & 0xFE) {
	case 0xE4: len += 2; in = 1; break;
	case 0xEC: len += 1; in = 1; break;
	case 0xE6: len += 2; break;
	case 0xEE: len += 1; break;
	default: return 0;
	}
	if (in) {
		if (!(op & 1))
			guest_regs.eax |= 0xFF;
		else if (wide16)
			guest_regs.eax |= 0xFFFF;
		else
			guest_regs.eax = 0xFFFFFFFF;
	}
	guest_regs.eip += len;
	return 1;
}

/* ---- boot ---- */
struct mb_info { u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr; };
struct mb_mod { u32 start, end, string, reserved; };
struct elf_hdr { u8 ident[16]; u16 type, machine; u32 version, entry, phoff, shoff, flags; u16 ehsize, phentsize, phnum; };
struct elf_phdr { u32 type, offset, vaddr, paddr, filesz, memsz, flags, align; };

void host_main(u32 magic, struct mb_info *mbi)
{
	(void)magic;
	puts("qhost: starting\n");
	if (!(mbi->flags & 8) || mbi->mods_count < 1)
		KILL("no guest module (use -initrd)");
	/* The multiboot info, the module list and the command line may sit in low memory, which we are
	 * about to clear: take what we need first. QEMU passes "KERNEL-PATH ARGS"; the guest gets ARGS. */
	struct mb_mod *mod = (struct mb_mod *)mbi->mods_addr;
	u32 image = mod->start;
	static char cmdline[1024];
	if (mbi->flags & 4) {
		const char *c = (const char *)mbi->cmdline;
		while (*c && *c != ' ')
			c++;
		while (*c == ' ')
			c++;
		for (u32 i = 0; c[i] && i < sizeof(cmdline) - 1; i++)
			cmdline[i] = c[i];
	}
	struct elf_hdr *eh = (struct elf_hdr *)image;
	if (eh->ident[0] != 0x7F || eh->type != 2 || eh->machine != 3)
		KILL("guest module is not an i386 ET_EXEC ELF");
	u32 entry = eh->entry;
	if (image < GUEST_MEM)
		KILL("the guest module was loaded inside guest RAM");

	/* Physical memory is identity-mapped until paging is on: load the guest and boot_params now. */
	u8 *ram = 0;
	for (u32 i = 0; i < GUEST_MEM; i += 4)
		*(volatile u32 *)(ram + i) = 0;
	struct elf_phdr *ph = (struct elf_phdr *)(image + eh->phoff);
	for (u32 i = 0; i < eh->phnum; i++) {
		if (ph[i].type != 1)
			continue;
		for (u32 j = 0; j < ph[i].filesz; j++)
			ram[ph[i].paddr + j] = ((u8 *)image)[ph[i].offset + j];
	}
	struct boot_params *bp = (struct boot_params *)ram;
	bp->e820_entries = 1;
	bp->e820_map[0].addr = 0;
	bp->e820_map[0].size = GUEST_MEM;
	bp->e820_map[0].type = E820_RAM;
	bp->version = 0x207;
	bp->loadflags |= KEEP_SEGMENTS;
	bp->cmd_line_ptr = BOOT_CMDLINE_PHYS;
	bp->hardware_subarch = HARDWARE_SUBARCH_LGUEST;
	for (u32 i = 0; cmdline[i]; i++)
		ram[BOOT_CMDLINE_PHYS + i] = cmdline[i];

	/* GDT: qhost at 10/11, guest kernel 12/13 at DPL 1, TSS 16. */
	gdt[GDT_ENTRY_LGUEST_CS][0] = 0x0000FFFF; gdt[GDT_ENTRY_LGUEST_CS][1] = 0x00CF9B00;
	gdt[GDT_ENTRY_LGUEST_DS][0] = 0x0000FFFF; gdt[GDT_ENTRY_LGUEST_DS][1] = 0x00CF9300;
	gdt[GDT_ENTRY_KERNEL_CS][0] = 0x0000FFFF; gdt[GDT_ENTRY_KERNEL_CS][1] = 0x00CFBB00;
	gdt[GDT_ENTRY_KERNEL_DS][0] = 0x0000FFFF; gdt[GDT_ENTRY_KERNEL_DS][1] = 0x00CFB300;
	u32 tb = (u32)&tss;
	gdt[GDT_ENTRY_TSS][0] = (tb << 16) | (sizeof(tss) - 1);
	gdt[GDT_ENTRY_TSS][1] = (tb & 0xFF000000) | 0x8900 | ((tb >> 16) & 0xFF);
	tss.ss0 = 0x58;
	tss.esp0 = (u32)(&guest_regs + 1);
	tss.iomap = sizeof(tss);
	struct { u16 limit; u32 base; } __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (u32)gdt },
		idtr = { sizeof(idt) - 1, (u32)idt };
	asm volatile("lgdt %0\n\t"
		     "ljmp $0x50, $1f\n"
		     "1:\tmovl $0x58, %%eax\n\t"
		     "movl %%eax, %%ds\n\tmovl %%eax, %%es\n\tmovl %%eax, %%ss\n\t"
		     "xorl %%eax, %%eax\n\tmovl %%eax, %%fs\n\tmovl %%eax, %%gs\n\t"
		     "movw $0x80, %%ax\n\tltr %%ax" :: "m"(gdtr) : "eax", "memory");
	for (u32 v = 0; v < IDT_ENTRIES; v++)
		set_real_gate(v);
	asm volatile("lidt %0" :: "m"(idtr));

	/* Paging: qhost and the RAM window as 4 MiB pages; then the guest's boot tables. */
	enable_host_paging();
	setup_boot_pagetables();
	set_cr3(boot_pgdir);

	/* PIT at 1 kHz on vector 0xF0 (PIC remapped), only IRQ 0 unmasked. */
	outb(0x20, 0x11); outb(0xA0, 0x11); outb(0x21, TIMER_VECTOR); outb(0xA1, TIMER_VECTOR + 8);
	outb(0x21, 4); outb(0xA1, 2); outb(0x21, 1); outb(0xA1, 1); outb(0x21, 0xFE); outb(0xA1, 0xFF);
	outb(0x43, 0x34); outb(0x40, 1193 & 0xFF); outb(0x40, 1193 >> 8);

	/* abi 3.6 */
	guest_regs.cs = KERNEL_CS;
	guest_regs.ds = guest_regs.es = guest_regs.ss = KERNEL_DS;
	guest_regs.eflags = INITIAL_EFLAGS;
	guest_regs.eip = entry;
	puts("qhost: running guest\n");

	for (;;) {
		if (hcall_pending) {
			hcall_pending = 0;
			do_hypercalls();
		}
		maybe_deliver_interrupt();
		if (halted) {
			asm volatile("sti; hlt; cli" ::: "memory");
			continue;
		}
		guest_regs.trapnum = 256;
		run_guest();
		u32 v = guest_regs.trapnum;
		switch (v) {
		case LGUEST_TRAP_ENTRY:
			hcall_pending = 1;
			break;
		case TIMER_VECTOR:
			host_timer_tick();
			break;
		case 14: {
			u32 cr2;
			asm volatile("movl %%cr2, %0" : "=r"(cr2));
			if (cr2 >= SWITCHER_ADDR)
				KILL("attempt to access switcher pages");
			if (ld)
				ld->cr2 = cr2;
			reflect_trap(14);
			break;
		}
		case 13:
			if (guest_regs.errcode == 0 && emulate_insn())
				break;
			reflect_trap(13);
			break;
		default:
			if (v >= 32)
				die("unexpected vector ", v, 0, 0);
			reflect_trap(v);
		}
	}
}

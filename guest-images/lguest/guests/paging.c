/* paging: shadow paging end to end, self-checking.
 *
 * NSPACES ring-3 address spaces (more than the Host's 4 cached shadow top levels) each run a tiny ring-3
 * "agent" (position-independent code below, one shared read-only frame mapped at AGENT_VA in every
 * space). The kernel drives it one command at a time: ucall() switches to the space, enters ring 3 with
 * the command in registers, and the agent's `int $0x80` (or a page fault we do not fix) comes straight
 * back to ucall() through switch_to. So every check is plain sequential C.
 *
 * What is checked (one "check: ...: ok" line each):
 * - the agent runs in every space and a ring-3 read of a kernel page faults (error 5);
 * - accessed/dirty: the Host writes A (reads) and A|D (writes) back into our PTEs, user and kernel, and
 *   sets D again after we cleared it (so a clean entry was installed read-only);
 * - copy-on-write: one frame shared read-only by every space; a ring-3 write faults into our handler,
 *   which copies the page, remaps it writable with SET_PTE and resumes; each space then sees its own data;
 * - large mappings: LARGE_PAGES pages (several MiB) written from ring 3, checked through the linear map,
 *   read through a read-only alias in another space, and again after every other space ran;
 * - rounds over all spaces in a changing order, each checking its private pages, data word and COW page
 *   after the others ran (so shadows are evicted and rebuilt all the time);
 * - kernel-mapping changes: SET_PTE of a kernel PTE (named through kernel_mm and through a user space)
 *   seen by every space, cached shadows first; unmapping (faults, error 0); RW -> RO (write faults,
 *   error 3); a silent change followed by FLUSH_TLB(1); PAE: kernel SET_PMD replacing a PTE page;
 * - user unmapping (SET_PTE 0: ring-3 read faults, error 4) and RW -> RO (ring-3 write faults, error 7)
 *   in one space while the others keep theirs; a directory-level change (2-level SET_PGD, PAE SET_PMD);
 *   a silent user PTE change followed by FLUSH_TLB(0).
 * Ends with "paging: done" and power off. */
#include "kernel.h"

#define NSPACES        10
#define ROUNDS         6

#define AGENT_VA       0x00400000u   /* the agent's code: one shared frame, read-only */
#define DATA_VA        0x00500000u   /* one private page per space (word 0: its data word) */
#define COW_VA         0x00700000u   /* copy-on-write page, shared read-only until written */
#define PRIV_VA        0x00BF8000u   /* PRIV_PAGES private pages across the directory boundary below */
#define PRIV_SPLIT     0x00C00000u   /* a 4 MiB (2-level) and 2 MiB (PAE) boundary */
#define PRIV_PAGES     16
#define AD_VA          0x01000000u   /* accessed/dirty test pages */
#define AD_PAGES       4
#define LARGE_VA       0x10200000u   /* the large mapping in space 0 */
#define LARGE_ALIAS_VA 0x20300000u   /* the same frames, read-only, in space 1 */
#define LARGE_PAGES    1536          /* 6 MiB */

#define KTEST_VA       0xD0000000u   /* a kernel page we change under every space */
#define KAD_VA         0xD0001000u   /* a kernel page for the accessed/dirty test */
#define KPMD_VA        0xD0400000u   /* PAE: a kernel PMD entry we set and replace */

#define USER_RW        (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)
#define USER_RO        (_PAGE_PRESENT | _PAGE_USER)
#define KERN_RW_AD     (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

#define PF_PROT  1
#define PF_WRITE 2
#define PF_USER  4

#define COW_SHARED_MAGIC 0xC0C0CAFEu
#define K1_MAGIC         0x4B31AAAAu
#define K2_MAGIC         0x4B32BBBBu
#define FAULTED          0xDEADDEADu

enum { CMD_READ = 1, CMD_WRITE, CMD_FILL, CMD_VERIFY };

/* The ring-3 agent. EAX = command, EBX = address, ECX = value or page count, EDX = seed; the result goes
 * back in EAX through int $0x80. FILL writes, for page n, v = seed + n * 4096 to its first word and ~v to
 * its last; VERIFY counts the words that differ. Relative jumps only: it runs wherever it is mapped. */
asm(".pushsection .text\n"
    ".globl agent_start, agent_end\n"
    "agent_start:\n\t"
    "cmpl $1, %eax\n\tje 1f\n\t"
    "cmpl $2, %eax\n\tje 2f\n\t"
    "cmpl $3, %eax\n\tje 3f\n\t"
    "cmpl $4, %eax\n\tje 4f\n\t"
    "movl $0xFFFFFFFF, %eax\n\tjmp 9f\n"
    "1:\tmovl (%ebx), %eax\n\tjmp 9f\n"
    "2:\tmovl %ecx, (%ebx)\n\txorl %eax, %eax\n\tjmp 9f\n"
    "3:\ttestl %ecx, %ecx\n\tjz 38f\n"
    "31:\tmovl %edx, (%ebx)\n\t"
    "movl %edx, %eax\n\tnotl %eax\n\tmovl %eax, 4092(%ebx)\n\t"
    "addl $4096, %edx\n\taddl $4096, %ebx\n\tdecl %ecx\n\tjnz 31b\n"
    "38:\txorl %eax, %eax\n\tjmp 9f\n"
    "4:\txorl %esi, %esi\n\ttestl %ecx, %ecx\n\tjz 48f\n"
    "41:\tcmpl %edx, (%ebx)\n\tje 42f\n\tincl %esi\n"
    "42:\tmovl %edx, %eax\n\tnotl %eax\n\tcmpl %eax, 4092(%ebx)\n\tje 43f\n\tincl %esi\n"
    "43:\taddl $4096, %edx\n\taddl $4096, %ebx\n\tdecl %ecx\n\tjnz 41b\n"
    "48:\tmovl %esi, %eax\n"
    "9:\tint $0x80\n\tjmp 9b\n"
    "agent_end:\n"
    ".popsection\n");
extern const char agent_start[], agent_end[];

/* Kernel probes (ring 1): a load or store that may fault; the page-fault handler then skips it. */
asm(".pushsection .text\n"
    ".globl probe_read, probe_read_insn, probe_read_done, probe_write, probe_write_insn, probe_write_done\n"
    "probe_read:\n\t"
    "movl 4(%esp), %ecx\n"
    "probe_read_insn:\n\t"
    "movl (%ecx), %eax\n"
    "probe_read_done:\n\t"
    "ret\n"
    "probe_write:\n\t"
    "movl 4(%esp), %ecx\n\t"
    "movl 8(%esp), %eax\n"
    "probe_write_insn:\n\t"
    "movl %eax, (%ecx)\n"
    "probe_write_done:\n\t"
    "ret\n"
    ".popsection\n");
u32 probe_read(u32 va);
void probe_write(u32 va, u32 v);
extern const char probe_read_insn[], probe_read_done[], probe_write_insn[], probe_write_done[];

struct space {
	struct mm mm;
	u32 id;
	u32 data_pa;          /* frame at DATA_VA */
	u32 data;             /* what its data word should hold */
	u32 priv_pa[PRIV_PAGES];
	u32 priv_seed;        /* FILL seed of its private pages (from PRIV_VA) */
	u32 cow_pa;           /* frame at COW_VA: the shared one until its first write */
	u32 cow_val;          /* what word 0 of its COW page should hold */
};

static struct space spaces[NSPACES];
static u32 agent_pa, cow_shared_pa, k1_pa, k2_pa;
static u8 *ukstack;                      /* the kernel stack for traps from ring 3 (SET_STACK) */
#define UKSTACK_PAGES 2

/* ucall state: the kernel context parked while ring 3 runs, and what came back. */
static u32 kernel_esp, abandoned_esp;
static volatile u32 ures, ufaulted, ufault_err, ufault_cr2;
static volatile u32 cow_faults, cow_bad;
static volatile u32 kfaulted, kfault_err, kfault_cr2;
static struct space *running;            /* the space whose agent runs */

static u32 page_seed(u32 id, u32 round)
{
	return 0x10000000u * (id + 1) + 0x01000000u * round + 0x51;
}

/* ---- page-table access of our own (the runtime writes and tells; these read, or write silently,
 * through mm_pte_slot) ---- */

static u32 pte_flags(struct mm *mm, u32 va)
{
	pte_t *p = mm_pte_slot(mm, va);
	return p ? (u32)*(volatile pte_t *)p & 0xFFF : 0;
}

/* Change a PTE without telling the Host (only the low word: our frames are all below 4 GiB). */
static void silent_set_pte(struct mm *mm, u32 va, u32 pte)
{
	pte_t *p = mm_pte_slot(mm, va);
	if (!p)
		panic("silent_set_pte: no table for %08x", va);
	*(volatile u32 *)p = pte;
}

/* ---- entering ring 3 ---- */

static void enter(struct space *s)
{
	if (current_mm != &s->mm)
		mm_switch(&s->mm);
}

static void enter_kernel_mm(void)
{
	if (current_mm != &kernel_mm)
		mm_switch(&kernel_mm);
}

/* Run one agent command in space s at ring 3; returns its result, or FAULTED (with ufaulted set) if it
 * took a page fault we did not fix. */
static u32 ucall(struct space *s, u32 cmd, u32 addr, u32 a1, u32 a2)
{
	enter(s);
	running = s;
	u32 top = (u32)ukstack + UKSTACK_PAGES * PAGE_SIZE;
	struct trap_frame *f = (struct trap_frame *)(top - sizeof(*f));
	memset(f, 0, sizeof(*f));
	f->ds = f->es = USER_DS;
	f->eax = cmd;
	f->ebx = addr;
	f->ecx = a1;
	f->edx = a2;
	f->eip = AGENT_VA;
	f->cs = USER_CS;
	f->eflags = INITIAL_EFLAGS;
	f->user_esp = 0;           /* the agent uses no stack */
	f->user_ss = USER_DS;
	u32 *sw = (u32 *)f - 5;    /* edi, esi, ebx, ebp, return address: what switch_to pops */
	memset(sw, 0, 4 * sizeof(u32));
	sw[4] = (u32)ret_from_trap;
	ufaulted = 0;
	ures = 0;
	switch_to(&kernel_esp, (u32)sw);
	irq_disable();
	running = NULL;
	return ures;
}

static noreturn void back_to_kernel(void)
{
	switch_to(&abandoned_esp, kernel_esp);
	panic("abandoned ring-3 context resumed");
}

static void on_syscall(struct trap_frame *f)
{
	ures = f->eax;
	back_to_kernel();
}

/* Copy-on-write: a ring-3 write to the shared COW page of the running space. */
static int try_cow(struct trap_frame *f, u32 cr2)
{
	struct space *s = running;
	if (!s || (cr2 & ~(PAGE_SIZE - 1)) != COW_VA || s->cow_pa != cow_shared_pa)
		return 0;
	if (f->errcode != (PF_PROT | PF_WRITE | PF_USER))
		cow_bad++;
	u8 *copy = page_alloc();
	memcpy(copy, __va(cow_shared_pa), PAGE_SIZE);
	s->cow_pa = __pa(copy);
	mm_map(&s->mm, COW_VA, s->cow_pa, USER_RW);   /* SET_PTE, then retry the write */
	cow_faults++;
	return 1;
}

static void on_page_fault(struct trap_frame *f)
{
	u32 cr2 = read_cr2();
	if ((f->cs & 3) == 3) {
		if (try_cow(f, cr2))
			return;
		ufaulted = 1;
		ufault_err = f->errcode;
		ufault_cr2 = cr2;
		ures = FAULTED;
		back_to_kernel();
	}
	if (f->eip == (u32)probe_read_insn || f->eip == (u32)probe_write_insn) {
		kfaulted++;
		kfault_err = f->errcode;
		kfault_cr2 = cr2;
		f->eax = FAULTED;
		f->eip = f->eip == (u32)probe_read_insn ? (u32)probe_read_done : (u32)probe_write_done;
		return;
	}
	panic("unexpected page fault at eip %08x, error %x, cr2 %08x", f->eip, f->errcode, cr2);
}

/* Ring-1 probes in space s (NULL: kernel_mm). */
static u32 kread(struct space *s, u32 va)
{
	if (s)
		enter(s);
	else
		enter_kernel_mm();
	kfaulted = 0;
	return probe_read(va);
}

static void kwrite(struct space *s, u32 va, u32 v)
{
	if (s)
		enter(s);
	else
		enter_kernel_mm();
	kfaulted = 0;
	probe_write(va, v);
}

static void fill_frame(u32 pa, u32 v)
{
	u32 *p = __va(pa);
	p[0] = v;
	p[PAGE_SIZE / 4 - 1] = ~v;
}

/* Mismatches of the FILL pattern in n frames at pa[] (or contiguous from pa0 if pa == NULL). */
static u32 check_frames(const u32 *pa, u32 pa0, u32 n, u32 seed)
{
	u32 bad = 0;
	for (u32 i = 0; i < n; i++) {
		u32 *p = __va(pa ? pa[i] : pa0 + i * PAGE_SIZE);
		u32 v = seed + i * PAGE_SIZE;
		bad += (p[0] != v) + (p[PAGE_SIZE / 4 - 1] != ~v);
	}
	return bad;
}

/* ---- setup ---- */

static void setup(void)
{
	ukstack = pages_alloc(UKSTACK_PAGES);
	hcall_set_stack(KERNEL_DS, (u32)ukstack + UKSTACK_PAGES * PAGE_SIZE, UKSTACK_PAGES);
	set_trap_handler(LGUEST_SYSCALL_VECTOR, on_syscall);
	set_trap_handler(14, on_page_fault);

	u8 *agent = page_alloc();
	memcpy(agent, agent_start, agent_end - agent_start);
	agent_pa = __pa(agent);
	u32 *cow = page_alloc();
	for (u32 i = 0; i < PAGE_SIZE / 4; i++)
		cow[i] = COW_SHARED_MAGIC ^ i;
	cow_shared_pa = __pa(cow);
	u32 *k1 = page_alloc(), *k2 = page_alloc();
	k1[0] = K1_MAGIC;
	k2[0] = K2_MAGIC;
	k1_pa = __pa(k1);
	k2_pa = __pa(k2);

	/* Kernel test pages first, so every space's copy of the kernel part holds their table. */
	mm_map(&kernel_mm, KTEST_VA, k1_pa, _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
	mm_map(&kernel_mm, KAD_VA, __pa(page_alloc()), _PAGE_RW);

	for (u32 i = 0; i < NSPACES; i++) {
		struct space *s = &spaces[i];
		s->id = i;
		mm_create_user(&s->mm);
		lazy_mode_begin();
		mm_map(&s->mm, AGENT_VA, agent_pa, USER_RO);
		u32 *data = page_alloc();
		s->data_pa = __pa(data);
		s->data = 0xDA7A0000u + i;
		data[0] = s->data;
		mm_map(&s->mm, DATA_VA, s->data_pa, USER_RW);
		s->cow_pa = cow_shared_pa;
		s->cow_val = COW_SHARED_MAGIC;
		mm_map(&s->mm, COW_VA, cow_shared_pa, USER_RO);
		for (u32 n = 0; n < PRIV_PAGES; n++) {
			s->priv_pa[n] = __pa(page_alloc());
			mm_map(&s->mm, PRIV_VA + n * PAGE_SIZE, s->priv_pa[n], USER_RW);
		}
		lazy_mode_end();
	}
	printk("paging: %s, %u address spaces, agent %u bytes\n",
#ifdef CONFIG_PAE
	       "PAE",
#else
	       "2-level",
#endif
	       NSPACES, (u32)(agent_end - agent_start));
}

/* ---- the checks ---- */

static void test_basics(void)
{
	u32 bad = 0;
	for (u32 i = 0; i < NSPACES; i++) {
		struct space *s = &spaces[i];
		s->priv_seed = page_seed(i, 0);
		bad += ucall(s, CMD_READ, DATA_VA, 0, 0) != s->data || ufaulted;
		bad += ucall(s, CMD_FILL, PRIV_VA, PRIV_PAGES, s->priv_seed) != 0 || ufaulted;
	}
	check(bad == 0, "ring-3 agent reads its data and fills its pages in %u address spaces", NSPACES);
	u32 frames_bad = 0;
	for (u32 i = 0; i < NSPACES; i++)
		frames_bad += check_frames(spaces[i].priv_pa, 0, PRIV_PAGES, spaces[i].priv_seed);
	check(frames_bad == 0, "ring-3 writes reached each space's own frames (%u wrong)", frames_bad);

	u32 r = ucall(&spaces[0], CMD_READ, KTEST_VA, 0, 0);
	check(r == FAULTED && ufault_err == (PF_PROT | PF_USER) && ufault_cr2 == KTEST_VA,
	      "ring-3 read of a kernel page faults (error %x, cr2 %08x)", ufault_err, ufault_cr2);
}

static void test_accessed_dirty(void)
{
	struct space *s = &spaces[0];
	lazy_mode_begin();
	for (u32 n = 0; n < AD_PAGES; n++)
		mm_map(&s->mm, AD_VA + n * PAGE_SIZE, __pa(page_alloc()), USER_RW);
	lazy_mode_end();
	u32 ad = _PAGE_ACCESSED | _PAGE_DIRTY;
	u32 before = 0;
	for (u32 n = 0; n < AD_PAGES; n++)
		before |= pte_flags(&s->mm, AD_VA + n * PAGE_SIZE) & ad;
	ucall(s, CMD_READ, AD_VA, 0, 0);                       /* page 0: read */
	ucall(s, CMD_WRITE, AD_VA + PAGE_SIZE, 1, 0);          /* page 1: write */
	ucall(s, CMD_READ, AD_VA + 2 * PAGE_SIZE, 0, 0);       /* page 2: read, then write */
	u32 f2r = pte_flags(&s->mm, AD_VA + 2 * PAGE_SIZE);
	ucall(s, CMD_WRITE, AD_VA + 2 * PAGE_SIZE, 2, 0);
	u32 f0 = pte_flags(&s->mm, AD_VA), f1 = pte_flags(&s->mm, AD_VA + PAGE_SIZE);
	u32 f2 = pte_flags(&s->mm, AD_VA + 2 * PAGE_SIZE), f3 = pte_flags(&s->mm, AD_VA + 3 * PAGE_SIZE);
	check(before == 0 && (f0 & ad) == _PAGE_ACCESSED && (f1 & ad) == ad && (f2r & ad) == _PAGE_ACCESSED &&
	      (f2 & ad) == ad && (f3 & _PAGE_DIRTY) == 0,
	      "user PTEs: read sets A, write sets A|D, read then write ends A|D (%x %x %x/%x %x)",
	      f0, f1, f2r, f2, f3);

	/* Clear A on page 0 and D on page 1 (telling the Host): the next read sets A again, the next write
	 * D again, so the Host must have installed the clean page 1 read-only. */
	mm_set_pte(&s->mm, AD_VA, (pte_t)(mm_get_pte(&s->mm, AD_VA) & ~(pte_t)ad));
	mm_set_pte(&s->mm, AD_VA + PAGE_SIZE, (pte_t)(mm_get_pte(&s->mm, AD_VA + PAGE_SIZE) & ~(pte_t)_PAGE_DIRTY));
	u32 c0 = pte_flags(&s->mm, AD_VA) & ad, c1 = pte_flags(&s->mm, AD_VA + PAGE_SIZE) & ad;
	u32 v = ucall(s, CMD_READ, AD_VA + PAGE_SIZE, 0, 0);
	u32 r1 = pte_flags(&s->mm, AD_VA + PAGE_SIZE) & ad;
	ucall(s, CMD_READ, AD_VA, 0, 0);
	ucall(s, CMD_WRITE, AD_VA + PAGE_SIZE, 3, 0);
	u32 g0 = pte_flags(&s->mm, AD_VA) & ad, g1 = pte_flags(&s->mm, AD_VA + PAGE_SIZE) & ad;
	check(c0 == 0 && c1 == _PAGE_ACCESSED && v == 1 && r1 == _PAGE_ACCESSED && g0 == _PAGE_ACCESSED && g1 == ad,
	      "user PTEs: A and D come back after the guest cleared them (%x %x)", g0, g1);

	/* Kernel page mapped P|RW without A/D, touched at ring 1 from a user space. */
	u32 k0 = pte_flags(&kernel_mm, KAD_VA) & ad;
	kread(&spaces[1], KAD_VA);
	u32 k1 = pte_flags(&kernel_mm, KAD_VA) & ad;
	kwrite(&spaces[1], KAD_VA, 0x1234);
	u32 k2 = pte_flags(&kernel_mm, KAD_VA) & ad;
	mm_set_pte(&kernel_mm, KAD_VA, (pte_t)(mm_get_pte(&kernel_mm, KAD_VA) & ~(pte_t)_PAGE_DIRTY));
	kwrite(&spaces[2], KAD_VA, 0x5678);
	u32 k3 = pte_flags(&kernel_mm, KAD_VA) & ad;
	check(k0 == 0 && k1 == _PAGE_ACCESSED && k2 == ad && k3 == ad && kfaulted == 0 &&
	      *(volatile u32 *)__va(mm_get_pte(&kernel_mm, KAD_VA) & 0xFFFFF000u) == 0x5678,
	      "kernel PTE: read sets A, write sets D, D comes back after clearing (%x %x %x %x)", k0, k1, k2, k3);
}

static void test_cow(void)
{
	struct space *a = &spaces[0], *b = &spaces[1];
	u32 bad = 0;
	for (u32 i = 0; i < NSPACES; i++)
		bad += ucall(&spaces[i], CMD_READ, COW_VA, 0, 0) != COW_SHARED_MAGIC;
	check(bad == 0, "%u spaces read the shared copy-on-write frame", NSPACES);

	u32 r = ucall(a, CMD_WRITE, COW_VA, 0xAAAA0001u, 0);
	a->cow_val = 0xAAAA0001u;
	check(r == 0 && !ufaulted && cow_faults == 1 && cow_bad == 0 && a->cow_pa != cow_shared_pa,
	      "a ring-3 write to the shared page faulted (error 7), was copied and resumed");
	u32 ra = ucall(a, CMD_READ, COW_VA, 0, 0), rb = ucall(b, CMD_READ, COW_VA, 0, 0);
	u32 w1 = ucall(a, CMD_READ, COW_VA + 4, 0, 0);
	check(ra == 0xAAAA0001u && rb == COW_SHARED_MAGIC && w1 == (COW_SHARED_MAGIC ^ 1) &&
	      ((u32 *)__va(cow_shared_pa))[0] == COW_SHARED_MAGIC && ((u32 *)__va(a->cow_pa))[0] == 0xAAAA0001u,
	      "after the copy the writer sees its data, the others the shared frame (%08x %08x)", ra, rb);

	r = ucall(b, CMD_WRITE, COW_VA, 0xBBBB0002u, 0);
	b->cow_val = 0xBBBB0002u;
	ra = ucall(a, CMD_READ, COW_VA, 0, 0);
	rb = ucall(b, CMD_READ, COW_VA, 0, 0);
	u32 rc = ucall(&spaces[2], CMD_READ, COW_VA, 0, 0);
	check(r == 0 && cow_faults == 2 && cow_bad == 0 && ra == 0xAAAA0001u && rb == 0xBBBB0002u &&
	      rc == COW_SHARED_MAGIC && a->cow_pa != b->cow_pa,
	      "a second space copies too: each of the two sees its own data, a third the shared frame");
	/* A second write by the first writer does not fault into us again. */
	ucall(a, CMD_WRITE, COW_VA, 0xAAAA0003u, 0);
	a->cow_val = 0xAAAA0003u;
	check(cow_faults == 2 && ucall(a, CMD_READ, COW_VA, 0, 0) == 0xAAAA0003u,
	      "the copied page is writable without further faults");
}

static u32 large_pa;
static u32 large_seed = 0x4C000000u;

static void test_large(void)
{
	struct space *a = &spaces[0], *b = &spaces[1];
	u8 *frames = pages_alloc(LARGE_PAGES);
	large_pa = __pa(frames);
	lazy_mode_begin();
	for (u32 n = 0; n < LARGE_PAGES; n++) {
		mm_map(&a->mm, LARGE_VA + n * PAGE_SIZE, large_pa + n * PAGE_SIZE, USER_RW);
		mm_map(&b->mm, LARGE_ALIAS_VA + n * PAGE_SIZE, large_pa + n * PAGE_SIZE, USER_RO);
	}
	lazy_mode_end();
	u32 r = ucall(a, CMD_FILL, LARGE_VA, LARGE_PAGES, large_seed);
	u32 bad = check_frames(NULL, large_pa, LARGE_PAGES, large_seed);
	check(r == 0 && !ufaulted && bad == 0, "%u KiB mapped at %08x, written from ring 3, right frames (%u wrong)",
	      LARGE_PAGES * 4, LARGE_VA, bad);
	r = ucall(a, CMD_VERIFY, LARGE_VA, LARGE_PAGES, large_seed);
	u32 r2 = ucall(b, CMD_VERIFY, LARGE_ALIAS_VA, LARGE_PAGES, large_seed);
	check(r == 0 && r2 == 0 && !ufaulted, "read back in place and through a read-only alias in another space");
	u32 w = ucall(b, CMD_WRITE, LARGE_ALIAS_VA + 100 * PAGE_SIZE, 0, 0);
	check(w == FAULTED && ufault_err == (PF_PROT | PF_WRITE | PF_USER) &&
	      ufault_cr2 == LARGE_ALIAS_VA + 100 * PAGE_SIZE, "a write through the read-only alias faults (error %x)",
	      ufault_err);
	u32 wrong = 0;
	for (u32 n = 0; n < LARGE_PAGES; n++) {
		u32 fa = pte_flags(&a->mm, LARGE_VA + n * PAGE_SIZE), fb = pte_flags(&b->mm, LARGE_ALIAS_VA + n * PAGE_SIZE);
		wrong += (fa & (_PAGE_ACCESSED | _PAGE_DIRTY)) != (_PAGE_ACCESSED | _PAGE_DIRTY);
		wrong += (fb & (_PAGE_ACCESSED | _PAGE_DIRTY)) != _PAGE_ACCESSED;
	}
	check(wrong == 0, "every written page is A|D, every aliased read-only page A only (%u wrong)", wrong);
}

/* One visit: everything space s owns must be as it left it; then it changes its data word. */
static u32 visit(struct space *s, u32 round)
{
	u32 bad = 0;
	bad += ucall(s, CMD_VERIFY, PRIV_VA, PRIV_PAGES, s->priv_seed) != 0;
	bad += ucall(s, CMD_READ, DATA_VA, 0, 0) != s->data;
	bad += ucall(s, CMD_READ, COW_VA, 0, 0) != s->cow_val;
	bad += kread(s, KTEST_VA) != K1_MAGIC || kfaulted;
	s->data = 0xDA7A0000u + (round << 8) + s->id;
	bad += ucall(s, CMD_WRITE, DATA_VA, s->data, 0) != 0;
	if (round == 1 && s->cow_pa == cow_shared_pa) {       /* every remaining space copies its COW page */
		s->cow_val = 0xC0E00000u + s->id;
		bad += ucall(s, CMD_WRITE, COW_VA, s->cow_val, 0) != 0;
	}
	bad += ufaulted;
	return bad;
}

static void test_rounds(void)
{
	u32 bad = 0, visits = 0;
	for (u32 r = 0; r < ROUNDS; r++) {
		for (u32 k = 0; k < NSPACES; k++) {
			struct space *s = &spaces[(k * 3 + r * 7) % NSPACES];
			bad += visit(s, r);
			visits++;
		}
	}
	check(bad == 0, "%u visits over %u rounds: each space's pages, data and COW page intact after the others ran",
	      visits, ROUNDS);
	u32 frames_bad = 0, cow_wrong = 0;
	for (u32 i = 0; i < NSPACES; i++) {
		frames_bad += ((u32 *)__va(spaces[i].data_pa))[0] != spaces[i].data;
		cow_wrong += ((u32 *)__va(spaces[i].cow_pa))[0] != spaces[i].cow_val || spaces[i].cow_pa == cow_shared_pa;
	}
	check(frames_bad == 0 && cow_wrong == 0 && cow_faults == NSPACES && cow_bad == 0 &&
	      ((u32 *)__va(cow_shared_pa))[0] == COW_SHARED_MAGIC,
	      "every space has its own COW copy (%u faults), the shared frame is unchanged", cow_faults);
}

/* Visit the spaces so that the last four (cached by the Host) are checked first, while still cached. */
static u32 order[NSPACES];
static void prime_all(void)
{
	for (u32 i = 0; i < NSPACES; i++)
		kread(&spaces[i], KTEST_VA);
	for (u32 i = 0; i < NSPACES; i++)
		order[i] = NSPACES - 1 - i;
}

/* How many spaces read magic at va (0: expect a fault with error err there). */
static u32 all_read(u32 va, u32 magic, u32 err)
{
	u32 good = 0;
	for (u32 k = 0; k < NSPACES; k++) {
		u32 v = kread(&spaces[order[k]], va);
		if (magic)
			good += v == magic && !kfaulted;
		else
			good += kfaulted == 1 && kfault_err == err && kfault_cr2 == va;
	}
	return good;
}

static void test_kernel_mappings(void)
{
	prime_all();
	mm_set_pte(&kernel_mm, KTEST_VA, (pte_t)k2_pa | KERN_RW_AD);
	u32 n = all_read(KTEST_VA, K2_MAGIC, 0);
	check(n == NSPACES, "kernel SET_PTE (through kernel_mm) seen by %u of %u spaces", n, NSPACES);

	prime_all();
	mm_set_pte(&spaces[3].mm, KTEST_VA, (pte_t)k1_pa | KERN_RW_AD);
	n = all_read(KTEST_VA, K1_MAGIC, 0);
	check(n == NSPACES, "kernel SET_PTE (through a user top level) seen by %u of %u spaces", n, NSPACES);

	prime_all();
	mm_unmap(&kernel_mm, KTEST_VA);
	n = all_read(KTEST_VA, 0, 0);
	check(n == NSPACES, "an unmapped kernel page faults (error 0) in %u of %u spaces", n, NSPACES);

	prime_all();
	mm_set_pte(&kernel_mm, KTEST_VA, (pte_t)k1_pa | _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY);
	u32 rd = all_read(KTEST_VA, K1_MAGIC, 0);
	u32 wr = 0;
	for (u32 k = 0; k < NSPACES; k++) {
		kwrite(&spaces[order[k]], KTEST_VA, 0x66666666);
		wr += kfaulted == 1 && kfault_err == (PF_PROT | PF_WRITE) && kfault_cr2 == KTEST_VA;
	}
	check(rd == NSPACES && wr == NSPACES && ((u32 *)__va(k1_pa))[0] == K1_MAGIC,
	      "kernel RW -> RO: %u spaces read it, %u writes fault (error 3)", rd, wr);

	/* Back to RW, writes from every space (each shadow now holds it writable), then a silent change to
	 * the other frame and FLUSH_TLB(1). */
	prime_all();
	mm_set_pte(&kernel_mm, KTEST_VA, (pte_t)k1_pa | KERN_RW_AD);
	for (u32 k = 0; k < NSPACES; k++)
		kwrite(&spaces[order[k]], KTEST_VA, K1_MAGIC);
	silent_set_pte(&kernel_mm, KTEST_VA, k2_pa | KERN_RW_AD);
	hcall_flush_tlb(1);
	n = all_read(KTEST_VA, K2_MAGIC, 0);
	check(n == NSPACES, "silent kernel PTE change + FLUSH_TLB(1) seen by %u of %u spaces", n, NSPACES);
	mm_set_pte(&kernel_mm, KTEST_VA, (pte_t)k1_pa | KERN_RW_AD);
	n = all_read(KTEST_VA, K1_MAGIC, 0);
	check(n == NSPACES, "and back with SET_PTE in %u of %u spaces", n, NSPACES);

#ifdef CONFIG_PAE
	/* The kernel PMD page is shared by every top level: point entry KPMD_VA at a PTE page, then at
	 * another, each time with SET_PMD. Every cached shadow must drop its stale entry. */
	u32 magic[2] = { 0x504D4441u, 0x504D4442u };
	u32 got[2];
	for (u32 t = 0; t < 2; t++) {
		pte_t *pt = page_alloc();
		u32 *frame = page_alloc();
		frame[0] = magic[t];
		pt[0] = (pte_t)__pa(frame) | KERN_RW_AD;
		prime_all();
		for (u32 i = 0; i < NSPACES; i++)
			if (t)
				kread(&spaces[i], KPMD_VA);         /* every shadow holds the first table's page */
		mm_set_table_entry(&kernel_mm, KPMD_VA, (u64)__pa(pt) | _KERNPG_TABLE);
		got[t] = all_read(KPMD_VA, magic[t], 0);
	}
	check(got[0] == NSPACES && got[1] == NSPACES,
	      "kernel SET_PMD: a new PTE page seen by %u, its replacement by %u of %u spaces", got[0], got[1], NSPACES);
	prime_all();
	mm_set_table_entry(&kernel_mm, KPMD_VA, 0);
	n = all_read(KPMD_VA, 0, 0);
	check(n == NSPACES, "kernel SET_PMD clearing the entry: %u of %u spaces fault", n, NSPACES);
#endif
	enter_kernel_mm();
}

static void test_user_changes(void)
{
	struct space *s = &spaces[2], *o = &spaces[3];
	/* Unmap: the page was read and written, so its shadow is present and writable. */
	ucall(s, CMD_READ, DATA_VA, 0, 0);
	mm_unmap(&s->mm, DATA_VA);
	u32 r = ucall(s, CMD_READ, DATA_VA, 0, 0);
	u32 ro = ucall(o, CMD_READ, DATA_VA, 0, 0);
	check(r == FAULTED && ufault_err == PF_USER && ufault_cr2 == DATA_VA && ro == o->data,
	      "unmapped user page faults (error %x), the same address in another space still works", ufault_err);
	mm_map(&s->mm, DATA_VA, s->data_pa, USER_RW);
	r = ucall(s, CMD_READ, DATA_VA, 0, 0);
	check(r == s->data, "mapped again, it reads %08x", r);

	/* RW -> RO: write it first so the shadow holds it writable. */
	ucall(s, CMD_WRITE, DATA_VA, s->data, 0);
	mm_set_pte(&s->mm, DATA_VA, (pte_t)s->data_pa | USER_RO | _PAGE_ACCESSED | _PAGE_DIRTY);
	u32 w = ucall(s, CMD_WRITE, DATA_VA, 0x0BAD0BAD, 0);
	u32 werr = ufault_err, wcr2 = ufault_cr2;
	r = ucall(s, CMD_READ, DATA_VA, 0, 0);
	u32 wo = ucall(o, CMD_WRITE, DATA_VA, o->data, 0);
	check(w == FAULTED && werr == (PF_PROT | PF_WRITE | PF_USER) && wcr2 == DATA_VA && r == s->data && wo == 0,
	      "user RW -> RO: the write faults (error %x), reads still work, other spaces still write", werr);
	mm_set_pte(&s->mm, DATA_VA, (pte_t)s->data_pa | USER_RW | _PAGE_ACCESSED);
	s->data ^= 0xFFFF;
	w = ucall(s, CMD_WRITE, DATA_VA, s->data, 0);
	check(w == 0 && !ufaulted && ucall(s, CMD_READ, DATA_VA, 0, 0) == s->data &&
	      (pte_flags(&s->mm, DATA_VA) & _PAGE_DIRTY), "RO -> RW: writable again, D set");

	/* Directory level: replace the table for PRIV_SPLIT (the second half of the private pages) with a
	 * new one mapping other frames (2-level SET_PGD, PAE SET_PMD). */
	struct space *t = &spaces[4];
	u32 half = PRIV_PAGES / 2, seed2 = 0x7AB10000u;
	u32 before = ucall(t, CMD_VERIFY, PRIV_VA, PRIV_PAGES, t->priv_seed);
	pte_t *pt = page_alloc();
	for (u32 n = 0; n < half; n++) {
		u32 pa = __pa(page_alloc());
		fill_frame(pa, seed2 + n * PAGE_SIZE);
		pt[n] = (pte_t)pa | USER_RW;
	}
	mm_set_table_entry(&t->mm, PRIV_SPLIT, (u64)__pa(pt) | _PAGE_TABLE);
	u32 lo = ucall(t, CMD_VERIFY, PRIV_VA, half, t->priv_seed);
	u32 hi = ucall(t, CMD_VERIFY, PRIV_SPLIT, half, seed2);
	u32 other = ucall(&spaces[5], CMD_VERIFY, PRIV_VA, PRIV_PAGES, spaces[5].priv_seed);
	check(before == 0 && lo == 0 && hi == 0 && other == 0 && !ufaulted,
#ifdef CONFIG_PAE
	      "user SET_PMD: a new PTE page for %08x is used, the rest unchanged", PRIV_SPLIT
#else
	      "user SET_PGD: a new PTE page for %08x is used, the rest unchanged", PRIV_SPLIT
#endif
	);
	/* Keep the space consistent for the final round: its private pages now have two seeds. */
	for (u32 n = 0; n < half; n++)
		t->priv_pa[half + n] = (u32)pt[n] & 0xFFFFF000u;
	u32 f = ucall(t, CMD_FILL, PRIV_VA, PRIV_PAGES, t->priv_seed);
	check(f == 0 && check_frames(t->priv_pa, 0, PRIV_PAGES, t->priv_seed) == 0,
	      "ring-3 writes through the new table reach its frames");

	/* Silent user PTE change + FLUSH_TLB(0) in the current space. */
	struct space *u = &spaces[5];
	u32 *fresh = page_alloc();
	fresh[0] = 0xF1005ED0u;
	ucall(u, CMD_READ, DATA_VA, 0, 0);          /* shadow holds the old frame; u is current */
	silent_set_pte(&u->mm, DATA_VA, __pa(fresh) | USER_RW);
	hcall_flush_tlb(0);
	r = ucall(u, CMD_READ, DATA_VA, 0, 0);
	check(r == 0xF1005ED0u && !ufaulted, "silent user PTE change + FLUSH_TLB(0) reads the new frame (%08x)", r);
	silent_set_pte(&u->mm, DATA_VA, u->data_pa | USER_RW);
	hcall_flush_tlb(0);
	r = ucall(u, CMD_READ, DATA_VA, 0, 0);
	check(r == u->data, "and back (%08x)", r);
}

static void test_final(void)
{
	u32 bad = 0;
	for (u32 r = 0; r < 2; r++)
		for (u32 k = 0; k < NSPACES; k++)
			bad += visit(&spaces[(k * 7 + r) % NSPACES], ROUNDS + r);
	u32 l1 = ucall(&spaces[0], CMD_VERIFY, LARGE_VA, LARGE_PAGES, large_seed);
	u32 l2 = ucall(&spaces[1], CMD_VERIFY, LARGE_ALIAS_VA, LARGE_PAGES, large_seed);
	check(bad == 0 && l1 == 0 && l2 == 0, "after everything, all %u spaces and the large mapping are intact",
	      NSPACES);
}

void guest_main(void)
{
	setup();
	test_basics();
	test_accessed_dirty();
	test_cow();
	test_large();
	test_rounds();
	test_kernel_mappings();
	test_user_changes();
	test_final();
	enter_kernel_mm();
	printk("paging: done\n");
	power_off();
}

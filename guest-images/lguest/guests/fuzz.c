/* fuzz: a guest that does random things, for the Host's fuzz test (test/property/guest-fuzz.test.ts).
 *
 * The command line chooses "seed=N" (decimal) and "mode=M"; after a normal LGUEST_INIT the guest makes
 * STEPS random moves chosen by the seed and powers off, unless the Host kills it first (which is the
 * point). The test checks only the Host: every run must end in a known fate. Modes:
 *   hcall   random hypercalls (numbers 0..25 and now and then any number, random arguments in the
 *           registers and through the async ring)
 *   paging  random PTE/PGD/PMD changes through SET_PTE/SET_PGD/SET_PMD and raw writes to our own page
 *           tables, NEW_PGTABLE and FLUSH_TLB, and touches of random addresses
 *   mix     hcall and paging moves interleaved
 *   code    random bytes run as code at ring 1 (each trap or a stuck round starts the next round)
 *   user    random bytes run as code at ring 3 in their own address space
 * A trap in our own kernel code during hcall/paging moves resumes after the touching instruction.
 *
 * Before each move the guest says on the console which kind of act it is about to make, on a line of its
 * own: "@@fz v0 fatal KIND" (hcall_N for hypercall N, tame_N for one with arguments meant to be accepted,
 * ring for a batch through the async ring, pg_* for
 * the page-table moves, code and user for a round of random code). The test checks that a kill's
 * reason belongs to the act announced last, or (for what shows only later, as a fault) to one made
 * before: test/property/guest-fuzz.test.ts has the table. */
#include "kernel.h"

#define STEPS        2000
#define CODE_ROUNDS  200
#define TICK_NS      1000000u
#define STUCK_TICKS  3
#define SCRATCH_VA   0xE0000000u
#define FUZZ_STACK_PAGES 4

static u32 rng_state = 1;
static u32 wild_1_in = 1;      /* one move in this many is a wild one (the others mostly acceptable) */
static char mode[16];
static u32 pgtable_pages[8];
static struct mm user_mm;
volatile u32 resume_eip;
static volatile u32 traps_seen, round_ticks, rounds;
static volatile int in_code;
static u8 *code_page;          /* linear-map address of the page the random code runs from */
static u32 code_va;            /* where it runs (code: the same; user: USER_BASE) */
u32 fuzz_stack_top;
u32 fuzz_regs[8];              /* eax ecx edx ebx (esp) ebp esi edi for the next ring-1 round */

static u32 rnd(void)
{
	u32 s = rng_state;
	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return rng_state = s;
}

static u32 rnd_below(u32 n) { return n ? rnd() % n : 0; }

/* The act we are about to make, on the console (one NOTIFY of our own line; nothing else uses it). */
static char act_line[48];
static void announce(const char *kind, u32 n)
{
	if (n == ~0u)
		snprintf(act_line, sizeof(act_line), "\n@@fz v0 fatal %s\n", kind);
	else
		snprintf(act_line, sizeof(act_line), "\n@@fz v0 fatal %s_%u\n", kind, n);
	hcall(LHCALL_NOTIFY, __pa(act_line), 0, 0, 0);
}

static u32 parse_u32(const char *s)
{
	u32 v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (u32)(*s++ - '0');
	return v;
}

/* A random value biased towards the interesting: small numbers, guest-physical and kernel addresses,
 * page-table-looking entries, the Switcher, all ones. */
static u32 rnd_arg(void)
{
	u32 mem = (u32)boot_mem_size;
	switch (rnd_below(10)) {
	case 0: return rnd_below(64);
	case 1: return rnd_below(mem + 0x10000) & ~0xFFFu;
	case 2: return rnd_below(mem + 0x10000);
	case 3: return PAGE_OFFSET + rnd_below(mem);
	case 4: return (rnd_below(mem >> PAGE_SHIFT) << PAGE_SHIFT) | (rnd() & 0x1FF);
	case 5: return SWITCHER_ADDR + rnd_below(0x400000);
	case 6: return 0xFFFFFFFFu - rnd_below(16);
	case 7: return rnd_below(IDT_ENTRIES + 4);
	default: return rnd();
	}
}

/* ---- traps ---- */

extern char fuzz_ring1_restart[];

static void new_code(void)
{
	static const u8 snippets[][4] = {
		{ 0xCD, LGUEST_TRAP_ENTRY }, { 0xCD, 0x80 }, { 0xCC }, { 0x0F, 0x0B }, { 0xF4 }, { 0xFA },
		{ 0xFB }, { 0xCF }, { 0x0F, 0x22, 0xD8 }, { 0x0F, 0x20, 0xC0 }, { 0xE4, 0x40 }, { 0xEC },
		{ 0x0F, 0x01, 0x10 }, { 0x8E, 0xE8 }, { 0x9D }, { 0x17 }, { 0x0F, 0x00, 0xD8 }, { 0xCA, 0, 0 },
		{ 0x0F, 0x30 }, { 0x0F, 0xA2 },
	};
	for (u32 i = 0; i < PAGE_SIZE; i++)
		code_page[i] = (u8)rnd();
	u32 n = rnd_below(64);
	for (u32 k = 0; k < n; k++) {
		const u8 *s = snippets[rnd_below(ARRAY_SIZE(snippets))];
		u32 at = rnd_below(PAGE_SIZE - 4);
		for (u32 j = 0; j < 4 && (j == 0 || s[j]); j++)
			code_page[at + j] = s[j];
	}
	if (rnd_below(2)) {
		/* Start with a few loads of random registers, so the code uses interesting values. */
		code_page[0] = 0xB8 + (u8)rnd_below(8);
		u32 v = rnd_arg();
		for (u32 j = 0; j < 4; j++)
			code_page[1 + j] = (u8)(v >> (8 * j));
	}
	for (u32 r = 0; r < 8; r++)
		fuzz_regs[r] = rnd_arg();
	round_ticks = 0;
	rounds++;
}

static noreturn void finish(void)
{
	printk("fuzz: done, %u traps, %u rounds\n", traps_seen, rounds);
	power_off();
}

/* Called by fuzz_ring1_restart on a fresh stack: the next round of ring-1 code, or the end. */
void fuzz_next_ring1(void)
{
	if (rounds >= CODE_ROUNDS)
		finish();
	new_code();
	announce("code", ~0u);
	in_code = 1;
	asm volatile("movl fuzz_regs+4, %%ecx\n\t"
		     "movl fuzz_regs+8, %%edx\n\t"
		     "movl fuzz_regs+12, %%ebx\n\t"
		     "movl fuzz_regs+20, %%ebp\n\t"
		     "movl fuzz_regs+24, %%esi\n\t"
		     "movl fuzz_regs+28, %%edi\n\t"
		     "movl fuzz_regs, %%eax\n\t"
		     "jmp *%0" :: "m"(code_va) : "memory");
	__builtin_unreachable();
}

asm(".text\n"
    ".globl fuzz_ring1_restart\n"
    "fuzz_ring1_restart:\n\t"
    "movl fuzz_stack_top, %esp\n\t"
    "call fuzz_next_ring1\n\t"
    "ud2\n");

/* The next round at ring 3: rewrite the frame so that returning enters the fresh code. */
static void next_user_round(struct trap_frame *f)
{
	if (rounds >= CODE_ROUNDS)
		finish();
	new_code();
	announce("user", ~0u);
	f->eax = fuzz_regs[0]; f->ecx = fuzz_regs[1]; f->edx = fuzz_regs[2]; f->ebx = fuzz_regs[3];
	f->ebp = fuzz_regs[5]; f->esi = fuzz_regs[6]; f->edi = fuzz_regs[7];
	f->ds = f->es = USER_DS;
	f->fs = 0;
	f->gs = rnd_below(2) ? USER_DS : 0;
	f->eip = code_va + (rnd_below(4) ? 0 : rnd_below(PAGE_SIZE));
	f->cs = USER_CS;
	f->eflags = INITIAL_EFLAGS | (rnd() & 0xCD5);
	f->user_esp = USER_STACK_TOP - rnd_below(64);
	f->user_ss = USER_DS;
}

static void redirect_ring1(struct trap_frame *f)
{
	if (rounds >= CODE_ROUNDS)
		finish();
	f->eip = (u32)fuzz_ring1_restart;
	f->cs = KERNEL_CS;
	f->ds = f->es = KERNEL_DS;
	f->fs = f->gs = 0;
	f->eflags = INITIAL_EFLAGS;
}

static void on_trap(struct trap_frame *f)
{
	traps_seen++;
	if (!strcmp(mode, "user") && (f->cs & 3) == 3) {
		if (f->vector == LGUEST_SYSCALL_VECTOR && rnd_below(4)) {
			f->eax = rnd_arg();
			return;
		}
		next_user_round(f);
		return;
	}
	if (in_code && strcmp(mode, "user")) {
		redirect_ring1(f);
		return;
	}
	if (resume_eip) {
		f->eip = resume_eip;
		resume_eip = 0;
		return;
	}
	/* A trap we did not expect (our own kernel hit something we broke): give up. */
	printk("fuzz: unexpected trap %u at %08x, error %x, cr2 %08x\n", f->vector, f->eip, f->errcode,
	       read_cr2());
	hcall_shutdown("fuzz: unexpected trap", LGUEST_SHUTDOWN_POWEROFF);
}

static void on_tick(struct trap_frame *f)
{
	if (!in_code)
		return;
	if (++round_ticks < STUCK_TICKS)
		return;
	if (strcmp(mode, "user"))
		redirect_ring1(f);
	else if ((f->cs & 3) == 3)
		next_user_round(f);
}

/* ---- hypercall and paging moves ---- */

static void touch(u32 va, int write)
{
	if (write)
		asm volatile("movl $1f, resume_eip\n\t"
			     "movl %%eax, (%0)\n"
			     "1:\tmovl $0, resume_eip" :: "r"(va), "a"(rnd()) : "memory");
	else
		asm volatile("movl $1f, resume_eip\n\t"
			     "movl (%0), %%eax\n"
			     "1:\tmovl $0, resume_eip" :: "r"(va) : "eax", "memory");
}

static void paging_move(void);

static u32 rnd_call(void)
{
	static const u8 common[] = {
		LHCALL_FLUSH_ASYNC, LHCALL_NEW_PGTABLE, LHCALL_FLUSH_TLB, LHCALL_LOAD_IDT_ENTRY,
		LHCALL_SET_STACK, LHCALL_TS, LHCALL_SET_CLOCKEVENT, LHCALL_HALT,
#ifdef CONFIG_PAE
		LHCALL_SET_PMD,
#endif
		LHCALL_SET_PTE, LHCALL_SET_PGD, LHCALL_LOAD_TLS, LHCALL_NOTIFY, LHCALL_LOAD_GDT_ENTRY,
		LHCALL_SEND_INTERRUPTS,
	};
	u32 r = rnd_below(100);
	if (r < 2)
		return rnd_below(2) ? LHCALL_LGUEST_INIT : LHCALL_SHUTDOWN;
	if (r < 6)
		return rnd_below(26);
	if (r < 7)
		return rnd();
	return common[rnd_below(ARRAY_SIZE(common))];
}

/* A hypercall with arguments the Host should accept, mostly, so that a run goes on long enough to
 * combine many calls. */
static void tame_hcall(u32 call)
{
	static char text[64];
	static u32 tls[GDT_ENTRY_TLS_ENTRIES * 2];
	u32 d[2];
	if (call != LHCALL_SET_PTE && call != LHCALL_SET_PGD && call != LHCALL_SET_PMD)
		announce("tame", call);
	switch (call) {
	case LHCALL_NEW_PGTABLE:
		mm_switch(rnd_below(2) ? &kernel_mm : &user_mm);
		break;
	case LHCALL_LOAD_IDT_ENTRY:
		idt_set_gate(64 + rnd_below(IDT_ENTRIES - 64), trap_stub_table[rnd_below(64)],
			     rnd_below(2) ? GATE_TYPE_INTERRUPT : GATE_TYPE_TRAP, rnd_below(4));
		break;
	case LHCALL_SET_STACK:
		hcall_set_stack(KERNEL_DS, fuzz_stack_top - rnd_below(2) * PAGE_SIZE, 1 + rnd_below(2));
		break;
	case LHCALL_SET_CLOCKEVENT:
		hcall_set_clockevent(LG_CLOCK_MIN_DELTA + rnd_below(2000000));
		break;
	case LHCALL_LOAD_TLS:
		for (u32 i = 0; i < GDT_ENTRY_TLS_ENTRIES; i++)
			make_segment(rnd_arg(), rnd_arg(), rnd_below(16), rnd_below(4), &tls[2 * i]);
		hcall(LHCALL_LOAD_TLS, __pa(tls), 0, 0, 0);
		break;
	case LHCALL_NOTIFY:
		for (u32 i = 0; i < sizeof(text) - 1; i++)
			text[i] = (char)(rnd_below(2) ? 'a' + rnd_below(26) : rnd());
		text[sizeof(text) - 1] = 0;
		hcall_notify(__pa(text));
		break;
	case LHCALL_LOAD_GDT_ENTRY: {
		static const u8 idx[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 15, 17, 20, 31 };
		make_segment(rnd_arg(), rnd_arg(), rnd_below(16), rnd_below(4), d);
		if (rnd_below(4) == 0)
			d[1] ^= rnd() & 0x00F0F000;
		hcall_load_gdt_entry(idx[rnd_below(sizeof(idx))], d[0], d[1]);
		break;
	}
	case LHCALL_SET_PTE: case LHCALL_SET_PGD: case LHCALL_SET_PMD:
		paging_move();
		return;
	case LHCALL_LGUEST_INIT: case LHCALL_SHUTDOWN:
		if (rnd_below(2))
			break;
		/* fall through */
	default:
		hcall(call, rnd_below(3), 0, 0, 0);
		break;
	}
}

static void hcall_move(void)
{
	u32 call = rnd_call();
	if (rnd_below(wild_1_in)) {
		while (call == LHCALL_LGUEST_INIT || call == LHCALL_SHUTDOWN || call > LHCALL_SEND_INTERRUPTS)
			call = rnd_call();
		tame_hcall(call);
		return;
	}
	if (call == LHCALL_HALT && rnd_below(4))
		call = LHCALL_SEND_INTERRUPTS;   /* a HALT with the clock cancelled sleeps till the timeout */
	if (rnd_below(4) == 0) {
		/* Through the async ring: a few random slots, maybe with a random status, then a flush. */
		u32 n = 1 + rnd_below(4);
		announce("ring", ~0u);
		for (u32 k = 0; k < n; k++) {
			u32 i = rnd_below(LHCALL_RING_SIZE);
			struct hcall_args *a = &lguest_data.hcalls[i];
			a->arg0 = k ? rnd_call() : call;
			a->arg1 = rnd_arg(); a->arg2 = rnd_arg(); a->arg3 = rnd_arg(); a->arg4 = rnd_arg();
			barrier();
			lguest_data.hcall_status[i] = rnd_below(8) ? LHCALL_STATUS_PENDING : (u8)rnd();
		}
		hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
		return;
	}
	announce("hcall", call);
	if (call == LHCALL_NOTIFY && rnd_below(8))
		hcall(call, rnd_below((u32)boot_mem_size), 0, 0, 0);   /* mostly a console write */
	else if (call == LHCALL_FLUSH_TLB || call == LHCALL_TS || call == LHCALL_SEND_INTERRUPTS)
		hcall(call, rnd_below(3), rnd_arg(), rnd_arg(), rnd_arg());
	else
		hcall(call, rnd_arg(), rnd_arg(), rnd_arg(), rnd_arg());
}

static u32 rnd_va(void)
{
	switch (rnd_below(6)) {
	case 0: return SCRATCH_VA + (rnd_below(1024) << PAGE_SHIFT);
	case 1: return USER_BASE + (rnd_below(1024) << PAGE_SHIFT);
	case 2: return rnd_below(0x800000) & ~3u;
	case 3: return PAGE_OFFSET + (rnd_below((u32)boot_mem_size) & ~3u);
	case 4: return SWITCHER_ADDR + (rnd_below(0x400000) & ~3u);
	default: return rnd() & ~3u;
	}
}

static u64 rnd_entry(void)
{
	u32 pfn_top = (u32)(boot_mem_size >> PAGE_SHIFT) + 4;
	u64 e;
	if (rnd_below(4))
		e = ((u64)rnd_below(pfn_top) << PAGE_SHIFT) | (rnd() & 0x1FF);
	else if (rnd_below(2))
		e = ((u64)(rnd() & ~0xFFFu) | _PAGE_PRESENT);
	else
		e = rnd();
#ifdef CONFIG_PAE
	if (rnd_below(8) == 0)
		e |= (u64)rnd() << 32;
#endif
	return e;
}

static struct mm *rnd_mm(void)
{
	return rnd_below(3) ? &kernel_mm : &user_mm;
}

static void paging_move(void)
{
	struct mm *mm = rnd_mm();
	if (rnd_below(wild_1_in)) {
		/* Tame: map, unmap and touch in the scratch area and the user part, switch, flush. */
		u32 va = rnd_below(2) ? SCRATCH_VA + (rnd_below(1024) << PAGE_SHIFT) : USER_BASE + (rnd_below(1024) << PAGE_SHIFT);
		announce("pg_tame", ~0u);
		switch (rnd_below(6)) {
		case 0: case 1:
			mm_map(mm, va, (u64)rnd_below((u32)boot_mem_size) & ~0xFFFull,
			       rnd() & (_PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY));
			break;
		case 2: mm_unmap(mm, va); break;
		case 3: mm_switch(mm); break;
		case 4: hcall_flush_tlb(rnd_below(2)); break;
		default: touch(va, rnd_below(2)); break;
		}
		return;
	}
	static const char *const pg_kinds[12] = {
		"pg_set_pte", "pg_set_pte", "pg_table_entry", "pg_raw", "pg_hcall_pte", "pg_hcall_pgd", "pg_hcall_pmd",
		"pg_switch", "pg_flush", "pg_map", "pg_touch", "pg_touch",
	};
	u32 move = rnd_below(12);
	announce(pg_kinds[move], ~0u);
	switch (move) {
	case 0: case 1:
		mm_set_pte(mm, rnd_va(), (pte_t)rnd_entry());
		break;
	case 2:
		mm_set_table_entry(mm, rnd_va(), rnd_entry());
		break;
	case 3: {
		/* A raw write to a top-level or a page-table page, the Host not told. */
		u32 *p;
		if (rnd_below(2))
			p = (u32 *)mm->pgd;
		else
			p = (u32 *)__va(pgtable_pages[rnd_below(ARRAY_SIZE(pgtable_pages))]);
		p[rnd_below(PAGE_SIZE / 4)] = (u32)rnd_entry();
		break;
	}
	case 4: {
		u64 e = rnd_entry();
		hcall(LHCALL_SET_PTE, rnd_below(4) ? mm->pgd_phys : rnd_arg(), rnd_va(), (u32)e, (u32)(e >> 32));
		break;
	}
	case 5:
		hcall(LHCALL_SET_PGD, rnd_below(4) ? mm->pgd_phys : rnd_arg(),
		      rnd_below(4) ? rnd_below(PTRS_PER_PGD + 2) : rnd(), 0, 0);
		break;
	case 6:
#ifndef CONFIG_PAE
		if (rnd_below(8))
			break;
#endif
		hcall(LHCALL_SET_PMD, rnd_below(2) ? mm_get_pte(mm, SCRATCH_VA) & ~0xFFFu : rnd_arg(),
		      rnd_below(4) ? rnd_below(512 + 2) : rnd(), 0, 0);
		break;
	case 7:
		if (rnd_below(4))
			mm_switch(mm);
		else
			hcall(LHCALL_NEW_PGTABLE, rnd_arg(), 0, 0, 0);
		break;
	case 8:
		hcall(LHCALL_FLUSH_TLB, rnd_below(3), 0, 0, 0);
		break;
	case 9:
		mm_map(mm, rnd_va() & ~0xFFFu, (u64)rnd_below((u32)boot_mem_size) & ~0xFFFull,
		       rnd() & (_PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL));
		break;
	default:
		touch(rnd_va(), rnd_below(2));
		break;
	}
}

/* ---- set-up ---- */

static void enter_user(void)
{
	/* Our own address space: the code page at USER_BASE and a stack, user-accessible. */
	mm_create_user(&user_mm);
	code_page = page_alloc();
	code_va = USER_BASE;
	mm_map(&user_mm, USER_BASE, __pa(code_page), _PAGE_PRESENT | _PAGE_RW | _PAGE_USER);
	mm_map(&user_mm, USER_STACK_TOP - PAGE_SIZE, __pa(page_alloc()), _PAGE_PRESENT | _PAGE_RW | _PAGE_USER);
	mm_switch(&user_mm);
	u8 *kstack = pages_alloc(2);
	u32 top = (u32)kstack + 2 * PAGE_SIZE;
	hcall_set_stack(KERNEL_DS, top, 2);
	struct trap_frame *f = (struct trap_frame *)(top - sizeof(*f));
	memset(f, 0, sizeof(*f));
	irq_disable();
	in_code = 1;
	next_user_round(f);
	asm volatile("movl %0, %%esp\n\tjmp ret_from_trap" :: "r"(f) : "memory");
	__builtin_unreachable();
}

void guest_main(void)
{
	char buf[16];
	rng_state = cmdline_value("seed", buf, sizeof(buf)) ? parse_u32(buf) : 1;
	rng_state = rng_state * 2654435761u + 0x9E3779B9u;
	if (!rng_state)
		rng_state = 1;
	if (!cmdline_value("mode", mode, sizeof(mode))) {
		static const char *const modes[] = { "hcall", "paging", "mix", "code", "user" };
		const char *m = modes[rnd_below(ARRAY_SIZE(modes))];
		memcpy(mode, m, strlen(m) + 1);
	}
	static const u32 wildness[] = { 1, 4, 16, 64, 1000 };
	wild_1_in = wildness[rnd_below(ARRAY_SIZE(wildness))];
	printk("fuzz: seed %s, mode %s\n", cmdline_value("seed", buf, sizeof(buf)) ? buf : "1", mode);

	for (u32 v = 0; v < 64; v++)
		if (v != LGUEST_TRAP_ENTRY && (v < FIRST_EXTERNAL_VECTOR || v >= FIRST_EXTERNAL_VECTOR + LGUEST_IRQS))
			set_trap_handler(v, on_trap);
	set_trap_handler(LGUEST_SYSCALL_VECTOR, on_trap);
	clock_init();
	clock_tick_hook = on_tick;
	clock_set_periodic(TICK_NS);

	u8 *stack = pages_alloc(FUZZ_STACK_PAGES);
	fuzz_stack_top = (u32)stack + FUZZ_STACK_PAGES * PAGE_SIZE;

	if (!strcmp(mode, "code")) {
		code_page = page_alloc();
		code_va = (u32)code_page;
		asm volatile("jmp fuzz_ring1_restart");
		__builtin_unreachable();
	}
	if (!strcmp(mode, "user"))
		enter_user();

	/* hcall / paging / mix: the page-table pages under kernel_mm's top level, to scribble on. */
	mm_create_user(&user_mm);
	mm_map(&kernel_mm, SCRATCH_VA, __pa(page_alloc()), _PAGE_RW);
	u32 npt = 0, mem = (u32)boot_mem_size;
#ifdef CONFIG_PAE
	const u64 *top = kernel_mm.pgd;
#else
	const u32 *top = kernel_mm.pgd;
#endif
	for (u32 i = 0; i < PTRS_PER_PGD && npt < ARRAY_SIZE(pgtable_pages); i++) {
		u32 e = (u32)top[i];
		if ((e & _PAGE_PRESENT) && (e & ~0xFFFu) < mem)
			pgtable_pages[npt++] = e & ~0xFFFu;
	}
	while (npt < ARRAY_SIZE(pgtable_pages))
		pgtable_pages[npt++] = __pa(page_alloc());
	int hc = !strcmp(mode, "hcall"), pg = !strcmp(mode, "paging");
	for (u32 step = 0; step < STEPS; step++) {
		if (hc || (!pg && rnd_below(2)))
			hcall_move();
		else
			paging_move();
	}
	finish();
}

/* fuzz-soak: a guest that attacks the Host as fast as it can, for the soak (test/soak/) and the
 * fuzz tests (test/property/guest-fuzz-soak.test.ts).
 *
 * Command line: "seed=N acts=N mode=soak|fatal [act=KIND] [tssjmp=1]".
 *
 * mode=soak: a loop of hostile acts the Host must survive (lguest rejects them by reflecting a fault or
 * ignores them), until `acts` of them were made, then a tally and power-off. No kill is acceptable in
 * this mode: every act below is one a correct Host survives. vCPU 0 runs a ring-3 program of
 * privileged, faulting and forbidden instructions (each trap reflected back to us, checked against the
 * vectors the i386 raises for it), and from its system call a batch of kernel acts: hypercalls with
 * bad-but-survivable arguments, the async ring filled with garbage, page-table entries of a scratch
 * area rewritten (told and untold) and touched, IPIs, VCPU_START of vCPUs that do not exist, chains on
 * the virtio entropy device's ring (with --rng). Every secondary vCPU (--cpus N) at the same time
 * makes hypercalls, writes garbage into its own and the other vCPUs' async rings, rewrites the scratch
 * area's page-table entries under vCPU 0, touches them and sends IPIs.
 *
 * mode=fatal: a few soak acts, then one potentially fatal act of kind `act` (or one chosen by the
 * seed), announced on the console first; the test checks the Host's kill reason against the act.
 *
 * Console protocol (lines the tests parse; every line starts on a fresh line):
 *   @@fz v<id> fatal <KIND>      before a potentially fatal act, on the vCPU that does it
 *   @@fz v<id> survived <KIND>   after it, when the Host let it pass
 *   @@fz tally <name> <count>    at the end of a soak: acts made, by kind
 *   @@fz FAIL <what>             a check of ours failed (the Host misbehaved without killing us)
 *
 * Acts that find Host bugs not fixed yet are chosen only by the tests that know them (act=smp_regs:
 * another vCPU's regs page written from a secondary; act=pae_stack_regs: SET_STACK onto the Switcher's
 * regs page; act=pool_pressure: sparse mappings in four address spaces, shadow pool exhaustion; tssjmp=1:
 * a ring-3 far jump to the kernel's DPL-0 TSS, which must raise #GP and today ends the run). */
#include "kernel.h"
#include "virtio.h"

#define SCRATCH_VA   0xE0000000u   /* one page table's worth of scratch mappings (kernel part) */
#define SCRATCH_N    64            /* pages of it we play with */
#define HOLE_VA      0xE0800000u   /* a region whose directory entry the fatal acts break */
#define NSAC         16            /* sacrificial frames: the only ones scratch maps writable */
#define USER_SLOTS   24
#define FUZZ_IRQ     20            /* the IPI everybody sends (a vector nobody else uses) */
#define ROUND_ACTS   24
#define MAGIC_ROUND  0x50AC0000u

/* ---- counters: one row per vCPU, summed at the end ---- */
enum {
	C_HCALL,        /* synchronous hypercalls with bad-but-survivable arguments (survived) */
	C_RING,         /* garbage slots of our own async ring, run by the Host (survived) */
	C_XRING,        /* garbage slots written into another vCPU's ring (survived) */
	C_PTE,          /* scratch page-table entries rewritten, told or untold (survived) */
	C_TOUCH_OK,     /* touches of scratch that went through (survived) */
	C_TOUCH_PF,     /* touches that faulted, reflected to us (reflected) */
	C_USER_TRAP,    /* ring-3 misbehaviour reflected by the Host (#GP, #UD, #PF, #NM) (reflected) */
	C_USER_DIRECT,  /* ring-3 traps the Host routes straight to us (#BP, #DE, int 0x80) */
	C_USER_QUIET,   /* ring-3 slots that raised nothing (popf of IOPL, rdtsc, ...) */
	C_IPI,          /* IPIs sent (survived) */
	C_VSTART,       /* VCPU_START of a vCPU that does not exist (survived) */
	C_VQ,           /* chains handed to the entropy device (survived) */
	C_IRQ,          /* IPIs received */
	NCOUNT
};
static const char *const count_names[NCOUNT] = {
	"hcall", "ring", "xring", "pte", "touch_ok", "touch_pf", "user_trap", "user_direct", "user_quiet",
	"ipi", "vstart", "vq", "irq_in",
};
static volatile u32 counts[LGUEST_MAX_VCPUS][NCOUNT];

static u32 ncpus = 1, target_acts = 100000, pae_mode;
static char mode[16], act_name[24];
static u32 tss_jmp;           /* tssjmp=1: the ring-3 far jump to the TSS (a known emulator bug) */
static u32 xring0_ok;          /* secondaries may write garbage into vCPU 0's ring (soak mode only) */
static volatile u32 stop_flag, fatal_for;      /* fatal_for: vCPU that must do act_name (0: none) */
static volatile u32 sec_running[LGUEST_MAX_VCPUS], sec_done[LGUEST_MAX_VCPUS];
static volatile u32 fatal_done;
static u32 seeds[LGUEST_MAX_VCPUS];

static u8 *sac[NSAC];
static u32 sac_pa[NSAC];
static struct mm user_mm;
static u8 *user_code;
static u32 trap_stack_top;
volatile u32 resume_eip;
static volatile u32 in_touch;
static u32 mem_bytes;

/* ---- random numbers: one xorshift state per vCPU ---- */
static u32 rnd_id(u32 id)
{
	u32 s = seeds[id];
	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return seeds[id] = s;
}
#define rnd() rnd_id(0)
static u32 below_id(u32 id, u32 n) { return n ? rnd_id(id) % n : 0; }
#define below(n) below_id(0, n)

static u32 parse_u32(const char *s)
{
	u32 v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (u32)(*s++ - '0');
	return v;
}

/* ---- the console protocol: a NOTIFY of our own buffer, from any vCPU ---- */
static char say_buf[LGUEST_MAX_VCPUS][96];

static void say(u32 id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(u32 id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say_buf[id][0] = '\n';
	vsnprintf(say_buf[id] + 1, sizeof(say_buf[id]) - 2, fmt, ap);
	va_end(ap);
	u32 n = strlen(say_buf[id]);
	say_buf[id][n] = '\n';
	say_buf[id][n + 1] = 0;
	hcall(LHCALL_NOTIFY, __pa(say_buf[id]), 0, 0, 0);
}

static noreturn void fail(u32 id, const char *what)
{
	say(id, "@@fz FAIL v%u %s", id, what);
	static const char msg[] = "fuzz-soak: a check failed";
	for (;;)
		hcall(LHCALL_SHUTDOWN, __pa(msg), LGUEST_SHUTDOWN_POWEROFF, 0, 0);
}

/* ---- scratch page-table entries: only sacrificial frames writable ---- */
static u64 scratch_entry(u32 id)
{
	u32 flags = rnd_id(id) & (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD | _PAGE_ACCESSED |
				   _PAGE_DIRTY | _PAGE_GLOBAL);
	switch (below_id(id, 4)) {
	case 0: case 1:
		return sac_pa[below_id(id, NSAC)] | flags;
	case 2:
		return ((below_id(id, mem_bytes >> PAGE_SHIFT)) << PAGE_SHIFT) | (flags & ~_PAGE_RW);
	default: {
		u64 e = rnd_id(id) & ~(u32)_PAGE_PRESENT;
#ifdef CONFIG_PAE
		e |= (u64)(rnd_id(id) & 0x7FFFFFFF) << 32;   /* not present: the rest is the guest's */
#endif
		return e;
	}
	}
}

static pte_t *scratch_slot(u32 i)
{
	return mm_pte_slot(&kernel_mm, SCRATCH_VA + i * PAGE_SIZE);
}

static void pte_act(u32 id)
{
	u32 i = below_id(id, SCRATCH_N);
	u64 e = scratch_entry(id);
	pte_t *p = scratch_slot(i);
	*p = (pte_t)e;
	barrier();
	switch (below_id(id, 4)) {
	case 0: case 1:
		hcall(LHCALL_SET_PTE, kernel_mm.pgd_phys, SCRATCH_VA + i * PAGE_SIZE, (u32)e, (u32)(e >> 32));
		break;
	case 2:
		hcall(LHCALL_FLUSH_TLB, 0, 0, 0, 0);
		break;
	default:
		break;   /* untold: the shadow may keep the old entry, which maps a frame as safe as this one */
	}
	counts[id][C_PTE]++;
}

/* ---- touches that may fault (vCPU 0: through the runtime's handler; secondaries: fz_sec_pf) ---- */
volatile u32 sec_resume[LGUEST_MAX_VCPUS];

static void touch0(u32 va, int write)
{
	u32 before = counts[0][C_TOUCH_PF];
	in_touch = 1;
	if (write)
		asm volatile("movl $1f, resume_eip\n\t"
			     "movl %%eax, (%0)\n"
			     "1:\tmovl $0, resume_eip" :: "r"(va), "a"(rnd()) : "memory");
	else
		asm volatile("movl $1f, resume_eip\n\t"
			     "movl (%0), %%eax\n"
			     "1:\tmovl $0, resume_eip" :: "r"(va) : "eax", "memory");
	in_touch = 0;
	if (counts[0][C_TOUCH_PF] == before)
		counts[0][C_TOUCH_OK]++;
}

/* A secondary's page-fault gate: resume at sec_resume[id] (the id from the stack we are on). */
extern char fz_sec_pf[];
asm(".text\n"
    ".globl fz_sec_pf\n"
    "fz_sec_pf:\n\t"
    "pushl %eax\n\t"
    "pushl %edx\n\t"
    "movl %esp, %eax\n\t"
    "subl $vcpu_stacks, %eax\n\t"
    "shrl $13, %eax\n\t"
    "incl counts_pf_sec(,%eax,4)\n\t"
    "movl sec_resume(,%eax,4), %edx\n\t"
    "movl %edx, 12(%esp)\n\t"
    "popl %edx\n\t"
    "popl %eax\n\t"
    "addl $4, %esp\n\t"
    "iret\n");
volatile u32 counts_pf_sec[LGUEST_MAX_VCPUS];

static void touch_sec(u32 id, u32 va, int write)
{
	u32 before = counts_pf_sec[id];
	if (write)
		asm volatile("movl $1f, sec_resume(,%1,4)\n\t"
			     "movl %%eax, (%0)\n"
			     "1:" :: "r"(va), "r"(id), "a"(rnd_id(id)) : "memory");
	else
		asm volatile("movl $1f, sec_resume(,%1,4)\n\t"
			     "movl (%0), %%eax\n"
			     "1:" :: "r"(va), "r"(id) : "eax", "memory");
	if (counts_pf_sec[id] == before)
		counts[id][C_TOUCH_OK]++;
	else
		counts[id][C_TOUCH_PF]++;
}

/* ---- hypercalls the Host must survive ---- */
static u32 odd(u32 id) { return rnd_id(id) | 1; }   /* never a page-table address */

/* A ring slot's call: survivable with ANY arguments (another vCPU may tear the slot), a1 odd. */
static u32 ring_call(u32 id)
{
	static const u8 calls[] = { LHCALL_FLUSH_ASYNC, LHCALL_SEND_INTERRUPTS, LHCALL_TS, LHCALL_SET_CLOCKEVENT,
				    LHCALL_SET_PGD, LHCALL_SET_PGD, LHCALL_TS };
	if (below_id(id, 64) == 0)
		return LHCALL_FLUSH_TLB;
	return calls[below_id(id, sizeof(calls))];
}

static void fill_ring(u32 id, struct lguest_data *d, u32 n, u32 counter)
{
	for (u32 k = 0; k < n; k++) {
		u32 i = below_id(id, LHCALL_RING_SIZE);
		struct hcall_args *a = &d->hcalls[i];
		a->arg1 = odd(id);
		a->arg2 = rnd_id(id);
		a->arg3 = rnd_id(id);
		a->arg4 = rnd_id(id);
		a->arg0 = ring_call(id);
		barrier();
		d->hcall_status[i] = (u8)(below_id(id, 4) ? LHCALL_STATUS_PENDING : below_id(id, 0xFF));
		counts[id][counter]++;
	}
}

static struct lguest_data *data_of(u32 id)
{
	return id == 0 ? &lguest_data : vcpu_data(id);
}

/* The whole ring of garbage, then a flush; alone, we can check the Host ran every slot. */
static void ring_act(u32 id)
{
	struct lguest_data *d = data_of(id);
	for (u32 i = 0; i < LHCALL_RING_SIZE; i++) {
		struct hcall_args *a = &d->hcalls[i];
		a->arg1 = odd(id);
		a->arg2 = rnd_id(id);
		a->arg3 = rnd_id(id);
		a->arg4 = rnd_id(id);
		a->arg0 = ring_call(id);
		barrier();
		d->hcall_status[i] = (u8)(below_id(id, 4) ? LHCALL_STATUS_PENDING : below_id(id, 0xFF));
	}
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
	counts[id][C_RING] += LHCALL_RING_SIZE;
	if (ncpus == 1)
		for (u32 i = 0; i < LHCALL_RING_SIZE; i++)
			if (d->hcall_status[i] != LHCALL_STATUS_FREE)
				fail(id, "the Host left a pending async slot after FLUSH_ASYNC");
}

static u32 tls_buf[LGUEST_MAX_VCPUS][GDT_ENTRY_TLS_ENTRIES * 2];
static const u8 gdt_free[] = { 1, 2, 3, 4, 5, 9, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30 };
static const u8 idt_host[] = { 2, 8, 15, LGUEST_TRAP_ENTRY };   /* NMI, double fault, spurious, ours */

static void hcall_act(u32 id)
{
	u32 r = below_id(id, 16);
	switch (r) {
	case 0: hcall(LHCALL_FLUSH_ASYNC, rnd_id(id), rnd_id(id), rnd_id(id), rnd_id(id)); break;
	case 1: hcall(LHCALL_SEND_INTERRUPTS, rnd_id(id), rnd_id(id), rnd_id(id), rnd_id(id)); break;
	case 2: hcall(LHCALL_TS, rnd_id(id), 0, 0, 0); break;
	case 3: hcall(LHCALL_SET_CLOCKEVENT, 1 + below_id(id, 3000000), rnd_id(id), 0, 0); break;
	case 4: hcall(LHCALL_FLUSH_TLB, below_id(id, 16) ? 0 : odd(id), rnd_id(id), 0, 0); break;
	case 5:   /* a top level nobody shadows, any entry, user half: ignored */
		hcall(LHCALL_SET_PTE, odd(id), below_id(id, PAGE_OFFSET), rnd_id(id), rnd_id(id));
		break;
	case 6:
		hcall(LHCALL_SET_PGD, odd(id), rnd_id(id), rnd_id(id), 0);
		break;
	case 7:   /* our own top level, but an index at or past the Switcher's: ignored */
		hcall(LHCALL_SET_PGD, kernel_mm.pgd_phys, PTRS_PER_PGD - 1 + below_id(id, 1000), 0, 0);
		break;
	case 8:   /* the vectors that are the Host's: ignored whatever the gate says */
		hcall(LHCALL_LOAD_IDT_ENTRY, idt_host[below_id(id, sizeof(idt_host))], rnd_id(id), rnd_id(id), 0);
		break;
	case 9: { /* an unused vector: cleared, or a gate to anywhere that never fires */
		u32 hi = rnd_id(id) & ~0x1F00u & ~(3u << 13);
		if (below_id(id, 2))
			hi |= 0x8000 | ((below_id(id, 2) ? GATE_TYPE_INTERRUPT : GATE_TYPE_TRAP) << GATE_TYPE_SHIFT);
		else
			hi &= ~0x8000u;
		hcall(LHCALL_LOAD_IDT_ENTRY, 0x90 + below_id(id, 0x60), rnd_id(id), hi, 0);
		break;
	}
	case 10:
		hcall(LHCALL_LOAD_GDT_ENTRY, gdt_free[below_id(id, sizeof(gdt_free))], rnd_id(id), rnd_id(id), 0);
		break;
	case 11:
		for (u32 i = 0; i < GDT_ENTRY_TLS_ENTRIES * 2; i++)
			tls_buf[id][i] = rnd_id(id);
		hcall(LHCALL_LOAD_TLS, __pa(tls_buf[id]), 0, 0, 0);
		break;
	case 12:
#ifdef CONFIG_PAE
		hcall(LHCALL_SET_PMD, odd(id), rnd_id(id), 0, 0);
#else
		hcall(LHCALL_SEND_INTERRUPTS, 0, 0, 0, 0);
#endif
		break;
	case 13: {
		u32 v = ncpus + below_id(id, 300);
		if (below_id(id, 4) == 0)
			v = rnd_id(id) | 0x100;
		if (hcall(LHCALL_VCPU_START, v, rnd_id(id), rnd_id(id), 0) != VCPU_START_NO_SUCH_VCPU)
			fail(id, "VCPU_START of a vCPU that does not exist did not say so");
		counts[id][C_VSTART]++;
		return;
	}
	case 14:
		hcall(LHCALL_SEND_IPI, below_id(id, ncpus), FUZZ_IRQ, rnd_id(id), 0);
		counts[id][C_IPI]++;
		return;
	default:  /* an empty console write: the early console at an address holding a NUL */
		hcall(LHCALL_NOTIFY, __pa(&say_buf[id][95]), 0, 0, 0);
		break;
	}
	counts[id][C_HCALL]++;
}

/* ---- the virtio entropy device (--rng): survivable chains of writable sacrificial buffers ---- */
static struct vq rngq;
static volatile u8 *rng_desc;
static u32 rng_desc_phys, desc_page_phys;

static void rng_irq(struct trap_frame *f) { (void)f; rngq.irqs++; }

static void rng_init(void)
{
	desc_page_phys = (u32)boot_mem_size;
	virtio_map_phys(desc_page_phys, 1);
	volatile u8 *page = (volatile u8 *)__va(desc_page_phys);
	for (u32 off = 0; off + LGUEST_DEVICE_DESC_SIZE <= PAGE_SIZE && page[off]; off += virtio_record_size(page + off)) {
		if (page[off] == VIRTIO_ID_RNG) {
			rng_desc = page + off;
			break;
		}
	}
	if (!rng_desc)
		return;
	rng_desc_phys = desc_page_phys + (u32)(rng_desc - page);
	struct lguest_vqconfig cfg;
	memcpy(&cfg, (const void *)(rng_desc + LGUEST_DEVICE_DESC_SIZE), sizeof(cfg));
	vq_setup(&rngq, &cfg, rng_irq);
	for (u8 s = 1; s <= 7; s = (u8)(s * 2 + 1)) {
		rng_desc[4] = s & 7;
		barrier();
		hcall_notify(rng_desc_phys);
	}
}

static void vq_act(void)
{
	if (!rng_desc)
		return;
	struct vq *q = &rngq;
	u32 n = 1 + below(8);
	u32 head = below(q->num - n);
	for (u32 k = 0; k < n; k++) {
		struct vring_desc *d = &q->desc[head + k];
		u32 len = below(4) ? below(64) : below(PAGE_SIZE + 1);
		d->addr = sac_pa[below(NSAC)] + below(PAGE_SIZE - len + 1);
		d->len = len;
		d->flags = VRING_F_WRITE | (k + 1 < n ? VRING_F_NEXT : 0);
		d->next = (u16)(head + k + 1);
	}
	if (below(2))
		q->avail[0] = (u16)below(2);   /* NO_INTERRUPT or not */
	publish(q, head);
	hcall_notify(q->ring_phys);
	counts[0][C_VQ]++;
}

/* ---- vCPU 0's kernel acts (from its system call handler, or directly) ---- */
static void kernel_act(void)
{
	u32 r = below(32);
	if (r < 12)
		hcall_act(0);
	else if (r < 13)
		ring_act(0);
	else if (r < 18)
		pte_act(0);
	else if (r < 26)
		touch0(SCRATCH_VA + below(SCRATCH_N) * PAGE_SIZE + (below(PAGE_SIZE) & ~3u), below(2));
	else if (r < 28)
		vq_act();
	else if (r < 30 && ncpus > 1)
		fill_ring(0, data_of(1 + below(ncpus - 1)), 1 + below(4), C_XRING);
	else
		hcall_act(0);
}

static u32 total_acts(void)
{
	u32 t = 0;
	for (u32 v = 0; v < ncpus; v++)
		for (u32 c = 0; c < NCOUNT; c++)
			if (c != C_IRQ && c != C_USER_DIRECT && c != C_USER_QUIET)
				t += counts[v][c];
	return t;
}

/* ---- secondaries ---- */
static void sec_ipi(u32 id, u32 irq, struct trap_frame *f)
{
	(void)irq; (void)f;
	counts[id][C_IRQ]++;
}

static void sec_fatal(u32 id);

static void secondary(u32 id)
{
	/* Our own page-fault gate (the runtime's would shut us down), then acts until vCPU 0 says stop. */
	hcall(LHCALL_LOAD_IDT_ENTRY, 14, ((u32)fz_sec_pf & 0xFFFF),
	      ((u32)fz_sec_pf & 0xFFFF0000) | 0x8000 | (GATE_TYPE_TRAP << GATE_TYPE_SHIFT), 0);
	vcpu_irq_unblock(id, FUZZ_IRQ);
	sec_running[id] = 1;
	while (!stop_flag) {
		if (fatal_for == id) {
			sec_fatal(id);
			fatal_for = 0;
			fatal_done = 1;
		}
		u32 r = below_id(id, 48);
		if (r < 18)
			hcall_act(id);
		else if (r < 19)
			ring_act(id);
		else if (r < 22)
			fill_ring(id, data_of(xring0_ok ? below_id(id, ncpus) : 1 + below_id(id, ncpus - 1)), 1 + below_id(id, 4), C_XRING);
		else if (r < 31)
			pte_act(id);
		else if (r < 45)
			touch_sec(id, SCRATCH_VA + below_id(id, SCRATCH_N) * PAGE_SIZE + (below_id(id, PAGE_SIZE) & ~3u),
				  below_id(id, 2));
		else {
			vcpu_irq_enable(id);
			asm volatile("nop; nop; nop; nop");
			vcpu_irq_disable(id);
		}
	}
	sec_done[id] = 1;
}

/* ---- ring 3: a program of misbehaving slots; each traps (or not) and we skip it ---- */
struct slot_kind {
	u8 len;
	u8 bytes[7];
	u32 vectors;        /* bit v: vector v is what the i386 raises here; bit 31: nothing */
	u8 patch;           /* 1: bytes 1..4 are a random address to patch in (kernel or Switcher) */
};
#define V(n) (1u << (n))
#define NONE (1u << 31)
#define SYSC (1u << 30)
static const struct slot_kind slot_kinds[] = {
	{ 1, { 0xFA }, V(13), 0 },                          /* cli */
	{ 1, { 0xFB }, V(13), 0 },                          /* sti */
	{ 1, { 0xF4 }, V(13), 0 },                          /* hlt */
	{ 1, { 0xEC }, V(13), 0 },                          /* in al, dx */
	{ 1, { 0xEE }, V(13), 0 },                          /* out dx, al */
	{ 2, { 0xE4, 0x40 }, V(13), 0 },                    /* in al, 0x40 */
	{ 2, { 0x0F, 0x0B }, V(6), 0 },                     /* ud2 */
	{ 2, { 0xCD, LGUEST_TRAP_ENTRY }, V(13), 0 },       /* a hypercall from ring 3 */
	{ 2, { 0xCD, 0x21 }, V(13), 0 },                    /* int 0x21: a DPL-0 gate */
	{ 2, { 0xCD, 0x0E }, V(13), 0 },                    /* int 14 by hand */
	{ 3, { 0x0F, 0x22, 0xD8 }, V(13), 0 },              /* mov cr3, eax */
	{ 3, { 0x0F, 0x20, 0xC0 }, V(13), 0 },              /* mov eax, cr0 */
	{ 3, { 0x0F, 0x01, 0x10 }, V(13) | V(14), 0 },      /* lgdt [eax] */
	{ 3, { 0x0F, 0x01, 0x38 }, V(13) | V(14), 0 },      /* invlpg [eax] */
	{ 2, { 0x0F, 0x30 }, V(13), 0 },                    /* wrmsr */
	{ 2, { 0x0F, 0x32 }, V(13), 0 },                    /* rdmsr */
	{ 2, { 0x0F, 0x06 }, V(13), 0 },                    /* clts */
	{ 2, { 0x0F, 0x09 }, V(13), 0 },                    /* wbinvd */
	{ 2, { 0xF0, 0x90 }, V(6), 0 },                     /* lock nop */
	{ 2, { 0xDB, 0xE3 }, V(7) | V(6) | NONE, 0 },       /* fninit (x87 or not, TS or not) */
	{ 5, { 0xA1, 0, 0, 0, 0 }, V(14), 1 },              /* mov eax, [kernel or Switcher] */
	{ 5, { 0xA3, 0, 0, 0, 0 }, V(14), 1 },              /* mov [kernel or Switcher], eax */
	{ 5, { 0xE8, 0, 0, 0, 0 }, V(14), 2 },              /* call into the kernel */
	{ 1, { 0xCC }, V(3), 0 },                           /* int3: a direct trap */
	{ 4, { 0x31, 0xC9, 0xF7, 0xF1 }, V(0), 0 },         /* xor ecx, ecx; div ecx */
	{ 6, { 0x68, 0x00, 0x32, 0x00, 0x00, 0x9D }, NONE, 0 },  /* push 0x3200; popf: no IOPL for us */
	{ 2, { 0x0F, 0x31 }, NONE | V(13), 0 },             /* rdtsc */
	{ 5, { 0xB8, 0x37, 0x13, 0, 0 }, NONE, 0 },         /* mov eax, junk (before int 0x80) */
	{ 2, { 0xCD, 0x80 }, SYSC | NONE, 0 }, /* a junk system call */
	{ 7, { 0x9A, 0, 0, 0, 0, KERNEL_CS, 0 }, V(13), 0 },        /* lcall KERNEL_CS:0 */
	{ 7, { 0xEA, 0, 0, 0, 0, GDT_ENTRY_TSS << 3, 0 }, V(13), 4 }, /* ljmp to the DPL-0 TSS (tssjmp=1) */
	{ 6, { 0x66, 0xB8, KERNEL_DS, 0, 0x8E, 0xD0 }, V(13), 0 },  /* mov ss, KERNEL_DS */
	{ 6, { 0x66, 0xB8, KERNEL_DS, 0, 0x8E, 0xD8 }, V(13), 0 },  /* mov ds, KERNEL_DS */
	{ 2, { 0x0F, 0x34 }, V(6) | V(13), 0 },                     /* sysenter */
	{ 2, { 0x0F, 0x05 }, V(6) | V(13), 0 },                     /* syscall */
	{ 2, { 0x0F, 0x00, }, V(13) | V(6) | NONE, 3 },             /* ltr/lldt/verr... on a random selector */
};
#define NKINDS ARRAY_SIZE(slot_kinds)
static u8 slot_kind_of[USER_SLOTS];
static u32 slot_end[USER_SLOTS];

static u32 kernel_target(void)
{
	switch (below(4)) {
	case 0: return SWITCHER_ADDR + below(0x3000);
	case 1: return PAGE_OFFSET + below(mem_bytes);
	case 2: return SCRATCH_VA + below(SCRATCH_N * PAGE_SIZE);
	default: return USER_BASE + 0x100000 + below(0x100000);   /* unmapped user space */
	}
}

static void new_program(void)
{
	u8 *p = user_code;
	for (u32 s = 0; s < USER_SLOTS; s++) {
		u32 k = below(NKINDS);
		while (slot_kinds[k].patch == 4 && !tss_jmp)
			k = below(NKINDS);
		const struct slot_kind *sk = &slot_kinds[k];
		slot_kind_of[s] = (u8)k;
		*p++ = 0xBD;                              /* mov ebp, s: the handler finds the slot by it */
		memcpy(p, &s, 4);
		p += 4;
		u8 *start = p;
		memcpy(p, sk->bytes, sk->len);
		p += sk->len;
		if (sk->patch == 1) {
			u32 a = kernel_target();
			memcpy(start + 1, &a, 4);
		} else if (sk->patch == 3) {
			/* 0F 00 /r with a register operand: sldt, str (quiet), lldt, ltr (#GP), verr, verw (quiet) */
			static const u8 regs[] = { 0, 1, 2, 3, 6, 7 };   /* never esp or ebp */
			*p++ = (u8)(0xC0 | (below(6) << 3) | regs[below(sizeof(regs))]);
		} else if (sk->patch == 2) {
			u32 rel = kernel_target() - (USER_BASE + (u32)(p - user_code));
			memcpy(start + 1, &rel, 4);
		}
		slot_end[s] = USER_BASE + (u32)(p - user_code);
	}
	/* mov eax, MAGIC; int 0x80; jmp to the start */
	*p++ = 0xB8;
	u32 m = MAGIC_ROUND;
	memcpy(p, &m, 4);
	p += 4;
	*p++ = 0xCD; *p++ = 0x80;
	*p++ = 0xE9;
	u32 rel = USER_BASE - (USER_BASE + (u32)(p + 4 - user_code));
	memcpy(p, &rel, 4);
	/* the Host must notice the new code: it is written through the linear map, run at USER_BASE */
}

static noreturn void finish_soak(void);
static u32 rounds;

static void user_round_start(struct trap_frame *f)
{
	f->eip = USER_BASE;
	f->cs = USER_CS;
	f->ds = f->es = USER_DS;
	f->fs = f->gs = 0;
	f->eflags = INITIAL_EFLAGS;
	f->user_esp = USER_STACK_TOP - 16;
	f->user_ss = USER_DS;
	f->eax = rnd(); f->ebx = rnd(); f->ecx = rnd(); f->edx = rnd(); f->esi = rnd(); f->edi = rnd();
}

/* Every trap comes here: from ring 3 (a slot, or the round's system call), or a touch in the kernel. */
static void on_trap(struct trap_frame *f)
{
	u32 v = f->vector;
	if ((f->cs & 3) != 3) {
		if (v == 14 && resume_eip && in_touch) {
			counts[0][C_TOUCH_PF]++;
			f->eip = resume_eip;
			resume_eip = 0;
			return;
		}
		say(0, "@@fz FAIL v0 unexpected kernel trap %u at %08x error %x cr2 %08x", v, f->eip, f->errcode,
		    read_cr2());
		fail(0, "unexpected kernel trap");
	}
	if (v == LGUEST_SYSCALL_VECTOR && f->eax == MAGIC_ROUND) {
		/* The end of one pass over the program: a batch of kernel acts, maybe a new program. */
		rounds++;
		for (u32 i = 0; i < ROUND_ACTS; i++)
			kernel_act();
		if (total_acts() >= target_acts)
			finish_soak();
		if (below(8) == 0) {
			new_program();
			hcall(LHCALL_FLUSH_TLB, 0, 0, 0, 0);
		}
		user_round_start(f);
		return;
	}
	u32 s = f->ebp;
	if (s >= USER_SLOTS) {
		say(0, "@@fz FAIL v0 ring-3 trap %u at %08x with slot %u", v, f->eip, s);
		fail(0, "ring-3 trap outside the program");
	}
	const struct slot_kind *sk = &slot_kinds[slot_kind_of[s]];
	u32 bit = v == LGUEST_SYSCALL_VECTOR ? SYSC : v < 30 ? V(v) : 0;
	if (!(sk->vectors & bit)) {
		say(0, "@@fz FAIL v0 ring-3 slot kind %u raised trap %u (error %x) at %08x", slot_kind_of[s], v, f->errcode,
		    f->eip);
		fail(0, "ring-3 trap of the wrong kind");
	}
	if (v == 13 || v == 6 || v == 14 || v == 7)
		counts[0][C_USER_TRAP]++;
	else
		counts[0][C_USER_DIRECT]++;
	if (v == 7)
		hcall(LHCALL_TS, 0, 0, 0, 0);   /* as a kernel would: clear TS, let the instruction run again */
	f->eip = slot_end[s];
	if (v == LGUEST_SYSCALL_VECTOR)
		f->eax = rnd();
}

static void on_irq(struct trap_frame *f) { (void)f; counts[0][C_IRQ]++; }

/* ---- set-up ---- */
static void setup_common(void)
{
	for (u32 v = 0; v < 32; v++)
		if (v != LGUEST_TRAP_ENTRY && v != 2 && v != 8)
			set_trap_handler(v, on_trap);
	set_trap_handler(LGUEST_SYSCALL_VECTOR, on_trap);
	set_trap_handler(FIRST_EXTERNAL_VECTOR + FUZZ_IRQ, on_irq);
	irq_unblock(FUZZ_IRQ);
	clock_init();
	clock_set_periodic(2000000);
	for (u32 i = 0; i < NSAC; i++) {
		sac[i] = page_alloc();
		sac_pa[i] = __pa(sac[i]);
	}
	/* The scratch page table: present in kernel_mm (and so in every address space made after). */
	mm_map(&kernel_mm, SCRATCH_VA, sac_pa[0], _PAGE_RW);
	for (u32 i = 1; i < SCRATCH_N; i++)
		mm_map(&kernel_mm, SCRATCH_VA + i * PAGE_SIZE, sac_pa[i % NSAC], _PAGE_RW);
	rng_init();   /* before user_mm, which copies the kernel part (the ring's mapping) from kernel_mm */
	mm_create_user(&user_mm);
	user_code = page_alloc();
	mm_map(&user_mm, USER_BASE, __pa(user_code), _PAGE_PRESENT | _PAGE_USER);
	mm_map(&user_mm, USER_STACK_TOP - PAGE_SIZE, __pa(page_alloc()), _PAGE_PRESENT | _PAGE_RW | _PAGE_USER);
	u8 *kstack = pages_alloc(2);
	trap_stack_top = (u32)kstack + 2 * PAGE_SIZE;
	/* Start every secondary there is (VCPU_START says when there is none). */
	for (u32 id = 1; id < LGUEST_MAX_VCPUS; id++) {
		seeds[id] = seeds[0] * (id + 7) + 0x9E3779B9u * id;
		if (!seeds[id])
			seeds[id] = id;
		vcpu_irq_handlers[FUZZ_IRQ] = sec_ipi;
		if (vcpu_start(id, secondary) != VCPU_START_OK)
			break;
		ncpus = id + 1;
	}
	for (u32 id = 1; id < ncpus; id++) {
		for (u32 spin = 0; !sec_running[id]; spin++)
			if (spin > 100000000u)
				fail(0, "a secondary vCPU never started");
	}
}

static void stop_secondaries(void)
{
	stop_flag = 1;
	for (u32 id = 1; id < ncpus; id++)
		for (u32 spin = 0; !sec_done[id]; spin++) {
			if (spin > 200000000u)
				fail(0, "a secondary vCPU never stopped");
			asm volatile("" ::: "memory");
		}
}

static noreturn void finish_soak(void)
{
	stop_secondaries();
	/* Fold the secondaries' counters in, then the tally. */
	for (u32 c = 0; c < NCOUNT; c++) {
		u32 t = 0;
		for (u32 v = 0; v < ncpus; v++)
			t += counts[v][c];
		say(0, "@@fz tally %s %u", count_names[c], t);
	}
	say(0, "@@fz tally rounds %u", rounds);
	say(0, "@@fz tally vcpus %u", ncpus);
	say(0, "@@fz done");
	power_off();
}

static noreturn void enter_user(void)
{
	new_program();
	mm_switch(&user_mm);
	hcall_set_stack(KERNEL_DS, trap_stack_top, 2);
	struct trap_frame *f = (struct trap_frame *)(trap_stack_top - sizeof(*f));
	memset(f, 0, sizeof(*f));
	irq_disable();
	user_round_start(f);
	asm volatile("movl %0, %%esp\n\tjmp ret_from_trap" :: "r"(f) : "memory");
	__builtin_unreachable();
}

/* ---- the potentially fatal acts ---- */
static const char *const fatal_kinds[] = {
	"bad_hcall", "reinit", "gdt_num", "idt_vector", "idt_type", "stack_seg", "stack_pages", "stack_addr",
	"pgtable_addr", "pte_frame", "pte_pse", "dir_flags", "dir_frame", "switcher_pte", "switcher_write",
	"notify_limit", "vcpu_start_self", "vcpu_start_async", "ipi_cpu", "ipi_irq", "tls_addr", "async_bad",
	"shutdown_addr", "set_pmd", "vq_addr", "vq_len", "vq_loop", "vq_head", "vq_idx", "vq_indirect",
	"vq_readable", "vq_next", "sec_bad_hcall", "sec_vcpu_start", "sec_ipi_cpu", "sec_pte_frame",
	"smp_regs", "pae_stack_regs", "pool_pressure",
};

static void pte_bad(u32 id, u64 e)
{
	u32 i = below_id(id, SCRATCH_N);
	*scratch_slot(i) = (pte_t)e;
	barrier();
	hcall(LHCALL_SET_PTE, kernel_mm.pgd_phys, SCRATCH_VA + i * PAGE_SIZE, (u32)e, (u32)(e >> 32));
	if (id == 0)
		touch0(SCRATCH_VA + i * PAGE_SIZE, 1);
	else
		touch_sec(id, SCRATCH_VA + i * PAGE_SIZE, 1);
}

static void sec_fatal(u32 id)
{
	say(id, "@@fz v%u fatal %s", id, act_name);
	if (!strcmp(act_name, "sec_bad_hcall"))
		hcall(34 + below_id(id, 1000), 0, 0, 0, 0);
	else if (!strcmp(act_name, "sec_vcpu_start"))
		hcall(LHCALL_VCPU_START, below_id(id, ncpus), rnd_id(id), rnd_id(id), 0);
	else if (!strcmp(act_name, "sec_ipi_cpu"))
		hcall(LHCALL_SEND_IPI, ncpus + below_id(id, 100), 1, 0, 0);
	else if (!strcmp(act_name, "sec_pte_frame"))
		pte_bad(id, ((u64)(mem_bytes + 0x10000000u + below_id(id, 0x1000000)) & ~0xFFFull) |
			    _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
	else if (!strcmp(act_name, "smp_regs")) {
		/* vCPU 0's saved registers, from here: its regs page is not ours to write. */
		volatile u32 *regs = (volatile u32 *)(SWITCHER_ADDR + 2 * PAGE_SIZE - 72);
		sec_resume[id] = (u32)&&after;
		for (u32 i = 0; i < 18; i++)
			regs[i] = rnd_id(id);
after:
		;
	}
	say(id, "@@fz v%u survived %s", id, act_name);
}

static void vq_bad(const char *kind)
{
	struct vq *q = &rngq;
	u32 head = below(q->num - 4);
	struct vring_desc *d = &q->desc[head];
	d->addr = sac_pa[0];
	d->len = 16;
	d->flags = VRING_F_WRITE;
	d->next = 0;
	if (!strcmp(kind, "vq_addr"))
		d->addr = mem_bytes + 0x10000000u + below(0x10000000);
	else if (!strcmp(kind, "vq_len"))
		d->len = 0xFFFFF000u + below(0x1000);
	else if (!strcmp(kind, "vq_loop")) {
		d->flags |= VRING_F_NEXT;
		d->next = (u16)head;
	} else if (!strcmp(kind, "vq_indirect"))
		d->flags |= VRING_F_INDIRECT;
	else if (!strcmp(kind, "vq_readable"))
		d->flags = 0;
	else if (!strcmp(kind, "vq_next")) {
		d->flags |= VRING_F_NEXT;
		d->next = (u16)(q->num + below(1000));
	}
	if (!strcmp(kind, "vq_head")) {
		q->avail[2 + (q->next_avail % q->num)] = (u16)(q->num + below(60000));
		q->next_avail++;
		q->avail[1] = q->next_avail;
	} else if (!strcmp(kind, "vq_idx")) {
		q->next_avail = (u16)(q->next_avail + q->num + 1 + below(1000));
		q->avail[1] = q->next_avail;
	} else {
		publish(q, head);
	}
	hcall_notify(q->ring_phys);
}

static noreturn void fatal_mode(void)
{
	u32 warm = below(200);
	for (u32 i = 0; i < warm; i++)
		kernel_act();
	const char *k = act_name;
	if (!strncmp(k, "sec_", 4) || !strcmp(k, "smp_regs")) {
		if (ncpus < 2) {
			say(0, "@@fz skipped %s (one vCPU)", k);
			stop_secondaries();
			power_off();
		}
		fatal_for = 1 + below(ncpus - 1);
		for (u32 spin = 0; !fatal_done; spin++) {
			kernel_act();
			if (spin > 10000000u)
				fail(0, "the secondary never did its act");
		}
		stop_secondaries();
		power_off();
	}
	if (!strncmp(k, "vq_", 3) && !rng_desc) {
		say(0, "@@fz skipped %s (no --rng)", k);
		stop_secondaries();
		power_off();
	}
#ifndef CONFIG_PAE
	if (!strcmp(k, "pae_stack_regs")) {
		say(0, "@@fz skipped %s (2-level)", k);
		stop_secondaries();
		power_off();
	}
#endif
	say(0, "@@fz v0 fatal %s", k);
	u32 good_pte = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
	if (!strcmp(k, "bad_hcall")) {
		static const u32 gaps[] = { 3, 11, 12, 20, 21, 31, 34, 35, 100, 0xFFFFFFFF };
		u32 nr = below(2) ? gaps[below(ARRAY_SIZE(gaps))] : 34 + (rnd() >> 1);
		hcall(nr, rnd(), rnd(), rnd(), rnd());
	} else if (!strcmp(k, "reinit"))
		hcall(LHCALL_LGUEST_INIT, __pa(&lguest_data), 0, 0, 0);
	else if (!strcmp(k, "gdt_num"))
		hcall(LHCALL_LOAD_GDT_ENTRY, GDT_ENTRIES + below(below(2) ? 100 : 0x7FFFFFFF), rnd(), rnd(), 0);
	else if (!strcmp(k, "idt_vector"))
		hcall(LHCALL_LOAD_IDT_ENTRY, IDT_ENTRIES + below(0x7FFFFFFF), rnd(), rnd() | 0x8000, 0);
	else if (!strcmp(k, "idt_type")) {
		u32 type = below(14);   /* 0..13: never an interrupt or trap gate */
		hcall(LHCALL_LOAD_IDT_ENTRY, 0x90 + below(0x60), rnd(), 0x8000 | (type << GATE_TYPE_SHIFT), 0);
	} else if (!strcmp(k, "stack_seg"))
		hcall(LHCALL_SET_STACK, (rnd() & ~3u) | (below(2) ? 0 : below(2) ? 2 : 3), trap_stack_top, 1, 0);
	else if (!strcmp(k, "stack_pages"))
		hcall(LHCALL_SET_STACK, KERNEL_DS, trap_stack_top, 3 + below(1000), 0);
	else if (!strcmp(k, "stack_addr"))
		hcall(LHCALL_SET_STACK, KERNEL_DS, HOLE_VA + 0x1000 + below(0x100000), 1, 0);
	else if (!strcmp(k, "pgtable_addr"))
		hcall(LHCALL_NEW_PGTABLE, 0xF0000000u + (below(0x0FFF0000) & ~0xFFFu), 0, 0, 0);
	else if (!strcmp(k, "pte_frame"))
		pte_bad(0, ((u64)(mem_bytes + 0x10000000u + below(0x1000000)) & ~0xFFFull) | good_pte);
	else if (!strcmp(k, "pte_pse"))
		pte_bad(0, sac_pa[0] | good_pte | _PAGE_PSE);
	else if (!strcmp(k, "dir_flags") || !strcmp(k, "dir_frame")) {
		u64 e = !strcmp(k, "dir_flags")
			? sac_pa[1] | _PAGE_TABLE | (below(2) ? _PAGE_GLOBAL : _PAGE_PWT | _PAGE_PCD)
			: ((u64)(mem_bytes + 0x10000000u) & ~0xFFFull) | _PAGE_TABLE;
		mm_set_table_entry(&kernel_mm, HOLE_VA, e);
		touch0(HOLE_VA + below(0x200000), 0);
	} else if (!strcmp(k, "switcher_pte"))
		hcall(LHCALL_SET_PTE, kernel_mm.pgd_phys, SWITCHER_ADDR + below(0x1FFFFF), sac_pa[0] | good_pte, 0);
	else if (!strcmp(k, "switcher_write")) {
		/* The Switcher's code page, read-only: a write must fault (and the Host kill us), never land. */
		volatile u32 *p = (volatile u32 *)(SWITCHER_ADDR + (below(PAGE_SIZE) & ~3u));
		u32 before = *p, faults = counts[0][C_TOUCH_PF];
		touch0((u32)p, 1);
		if (counts[0][C_TOUCH_PF] == faults || *p != before)
			fail(0, "a write to the Switcher's code page went through");
	}
	else if (!strcmp(k, "notify_limit"))
		hcall(LHCALL_NOTIFY, 0xF0000000u + below(0x0FFFFFFF), 0, 0, 0);
	else if (!strcmp(k, "vcpu_start_self"))
		hcall(LHCALL_VCPU_START, 0, rnd(), rnd(), 0);
	else if (!strcmp(k, "vcpu_start_async") || !strcmp(k, "async_bad")) {
		u32 i = below(LHCALL_RING_SIZE);
		lguest_data.hcalls[i].arg0 = !strcmp(k, "async_bad") ? 34 + below(1000) : LHCALL_VCPU_START;
		lguest_data.hcalls[i].arg1 = ncpus + 1;
		barrier();
		for (u32 j = 0; j < LHCALL_RING_SIZE; j++)
			if (lguest_data.hcall_status[j] == LHCALL_STATUS_FREE && j != i) {
				lguest_data.hcalls[j].arg0 = LHCALL_FLUSH_ASYNC;
				lguest_data.hcall_status[j] = LHCALL_STATUS_PENDING;
			}
		lguest_data.hcall_status[i] = LHCALL_STATUS_PENDING;
		hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
	} else if (!strcmp(k, "ipi_cpu"))
		hcall(LHCALL_SEND_IPI, ncpus + below(1000), 1, 0, 0);
	else if (!strcmp(k, "ipi_irq"))
		hcall(LHCALL_SEND_IPI, 0, LGUEST_IRQS + below(1000), 0, 0);
	else if (!strcmp(k, "tls_addr"))
		hcall(LHCALL_LOAD_TLS, 0xF0000000u + below(0x0FFFFFF0), 0, 0, 0);
	else if (!strcmp(k, "shutdown_addr"))
		hcall(LHCALL_SHUTDOWN, 0xF0000000u + below(0x0FFFFF00), LGUEST_SHUTDOWN_POWEROFF, 0, 0);
	else if (!strcmp(k, "set_pmd"))
		hcall(LHCALL_SET_PMD, odd(0), rnd(), 0, 0);
	else if (!strncmp(k, "vq_", 3))
		vq_bad(k);
	else if (!strcmp(k, "pae_stack_regs"))
		hcall(LHCALL_SET_STACK, KERNEL_DS, SWITCHER_ADDR + 2 * PAGE_SIZE - 72, 1, 0);
	else if (!strcmp(k, "pool_pressure")) {
		/* Many sparse 4 MiB (2 MiB) regions in four address spaces: a valid guest the Host must keep. */
		static struct mm spaces[4];
		for (u32 s = 0; s < 4; s++) {
			mm_create_user(&spaces[s]);
			mm_switch(&spaces[s]);
			for (u32 r = 0; r < 190; r++) {
				u32 va = (r + 1) * (PAGE_SIZE * PTRS_PER_PTE) + below(PTRS_PER_PTE) * PAGE_SIZE;
				if (va >= PAGE_OFFSET)
					break;
				mm_map(&spaces[s], va, sac_pa[below(NSAC)], _PAGE_RW);
				touch0(va, 0);
			}
		}
		mm_switch(&kernel_mm);
	} else {
		say(0, "@@fz FAIL v0 unknown act %s", k);
	}
	say(0, "@@fz v0 survived %s", k);
	stop_secondaries();
	power_off();
}

void guest_main(void)
{
	char buf[24];
	seeds[0] = cmdline_value("seed", buf, sizeof(buf)) ? parse_u32(buf) : 1;
	seeds[0] = seeds[0] * 2654435761u + 0x9E3779B9u;
	if (!seeds[0])
		seeds[0] = 1;
	if (cmdline_value("acts", buf, sizeof(buf)))
		target_acts = parse_u32(buf);
	if (!cmdline_value("mode", mode, sizeof(mode)))
		memcpy(mode, "soak", 5);
	mem_bytes = (u32)boot_mem_size;
	tss_jmp = cmdline_value("tssjmp", buf, sizeof(buf)) && buf[0] == '1';
#ifdef CONFIG_PAE
	pae_mode = 1;
#endif
	(void)pae_mode;
	setup_common();
	say(0, "@@fz start mode %s vcpus %u rng %u", mode, ncpus, rng_desc ? 1 : 0);
	if (!strcmp(mode, "fatal")) {
		if (!cmdline_value("act", act_name, sizeof(act_name))) {
			const char *k = fatal_kinds[below(ARRAY_SIZE(fatal_kinds))];
			memcpy(act_name, k, strlen(k) + 1);
		}
		fatal_mode();
	}
	xring0_ok = 1;
	enter_user();
}

/* smp-stress: the Host's shared shadow paging under contention, checked by the guest itself. Run with
 * `lguest-ts run guest-images/build/smp-stress.elf --cpus N --cmdline "seed=S rounds=M"` (test:
 * test/property/smp-stress.test.ts).
 *
 * vCPU 0 counts its vCPUs (VCPU_START 1, 2, ... as the smp guest does), gives every vCPU NSPACES top
 * levels of its own (mm_create_user: each shares kernel_mm's kernel part), so N vCPUs keep 3N + 1 top
 * levels in use, far more than the Host's 4 cached shadows, and evictions happen while other vCPUs run on
 * other top levels. Then every vCPU, vCPU 0 too, runs M rounds at once. Each round is a fixed set of
 * operations in an order (and with targets, flags and lengths) chosen by the seed and the vCPU's id:
 *   SWITCH   NEW_PGTABLE to one of its own top levels (synchronous or through its async ring)
 *   REMAP    a private page to another frame with SET_PTE (mm_map), the pattern written through the new
 *            mapping and checked in the frame, or written in the frame and read through the mapping
 *   UNMAP    the same, unmapped first (mm_unmap); on vCPU 0 a read in between must fault
 *   ASYNC    ASYNC_PAGES remaps (of the current or another own top level, maybe after a NEW_PGTABLE)
 *            through the vCPU's own async ring, one FLUSH_ASYNC, then read back
 *   SILENTU  a private PTE changed without telling the Host, then FLUSH_TLB(0)
 *   SILENTK  the vCPU's own kernel page changed without telling the Host, then FLUSH_TLB(1)
 *   TABLE    the page table under TBL_VA replaced whole (2-level SET_PGD, PAE SET_PMD) after every page
 *            in it was read, so the old one is in the shadow
 *   VISIT    switch to another own top level and check every page of it
 *   BURST    read the shared pages in a tight loop, no hypercall, checking every read
 *   SHARED   (the owner of shared page k, k % N) remap it to its next frame (SET_PTE of a kernel address,
 *            synchronous or through the ring) and publish the new version
 *   SHTBL    (rounds r with r % N == id, one vCPU at a time) replace the page table under SHTBL_VA, shared
 *            by every top level (PAE: one SET_PMD on the kernel PMD page every top level shares; 2-level:
 *            the entry in every top level, a SET_PGD for each, see op_shtbl), and publish
 *            the new version
 * After every operation the vCPU reads every shared page and one page of its current top level; at the
 * end of each round, every page of it. A pattern encodes (vCPU, top level, region, page, sequence), so a
 * stale or crossed translation names whose page it found. A shared page holds its version: a read between
 * two reads of the published version v1 and v2 must find v1 <= version <= v2 + 1 (the remap to v2 + 1 may
 * be under way); older means a vCPU still used a translation the Host had promised gone.
 *
 * Totals go into locked counters (lock xadd) and a spinlock-protected one, and each vCPU keeps its own;
 * at the end vCPU 0 compares them, checks the final versions and, on each top level in turn, every page
 * of every vCPU. It prints only lines that depend on N, the seed and M, never on timing. Any failure
 * shuts the guest down with "FAIL: smp-stress: vCPU V round R: WHAT" (vCPU 0 prints it too), WHAT naming
 * the page, what was read and, for a pattern, whose page that is (e.g. "priv 3 of space 1 via VA:
 * 21003017/17 = vCPU 2 space 1 priv 3; want 11003042/42").
 *
 * Expected output (smp-stress-pae.elf: "paging: PAE", and SET_PMD for SET_PGD), with N vCPUs (1..8; the
 * Host's 4 cached shadows need N <= 4, test/property/smp-stress.test.ts), seed S and M rounds:
 *   smp-stress: shadow paging from every vCPU at once (paging: 2-level)
 *   smp-stress: vcpus: N, seed: S, rounds: M
 *   check: every secondary came up, waiting for the others to be set up: ok
 *   smp-stress: N vCPUs x 3 top levels + kernel_mm = (3N + 1) top levels for the Host's 4 cached shadows
 *   check: private pages: (4NM) remaps (SET_PTE), (2NM) unmapped first, (8NM) via the async ring, (NM) silent + FLUSH_TLB(0): ok
 *   check: page tables replaced under live mappings: (NM) with SET_PGD: ok
 *   check: own kernel pages: (NM) silent changes + FLUSH_TLB(1), seen at once: ok
 *   check: address-space switches: (3NM) NEW_PGTABLE, (NM) visits checking a whole top level: ok
 *   check: shared pages: (8M) remaps (SET_PTE), (M) tables replaced (SET_PGD); no read older than the last published: ok
 *   check: locked counters: every total equals the sum of the vCPUs' own counts: ok
 *   check: afterwards, every page of the (3N) top levels read back on vCPU 0: ok
 *   smp-stress: done
 * (numbers in parentheses computed), then SHUTDOWN "Power down" from vCPU 0, the secondaries parked.
 * Command line: seed=S (default 1), rounds=M (default 8, at most 100000). */
#include "kernel.h"

#define MAX_CPUS         LGUEST_MAX_VCPUS
#define NSPACES          3             /* top levels per vCPU */

#define PRIV_VA          0x00BF8000u   /* PRIV_PAGES private pages across a 4 MiB (and 2 MiB) boundary */
#define PRIV_PAGES       16
#define TBL_VA           0x01000000u   /* TBL_PAGES private pages in one page table, replaced whole */
#define TBL_PAGES        8
#define POOL_FRAMES      48            /* frames per top level: PRIV_PAGES + TBL_PAGES mapped, the rest free */

#define SHARED_VA        0xD0000000u   /* NSHARED kernel pages, page k remapped by vCPU k % N */
#define NSHARED          4
#define SH_FRAMES        4             /* frames each shared page cycles through */
#define SH_REMAPS        2             /* remaps per shared page per round of its owner */
#define SHTBL_VA         0xD0400000u   /* NSHTBL kernel pages in one page table, replaced whole */
#define NSHTBL           4
#define SHTBL_SETS       3             /* page tables (each with its frames) the shared table cycles through */
#define KPRIV_VA         0xD0800000u   /* one kernel page per vCPU: silent change + FLUSH_TLB(1) */

#define ASYNC_PAGES      4
#define BURST_MIN        256
#define BURST_SPAN       1024

#define USER_RW          (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)
#define KERN_RW_AD       (_PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

#define GO_IRQ           5             /* vCPU 0 -> a secondary: start the rounds */
#define DONE_IRQ         6             /* a secondary -> vCPU 0: finished */
#define WATCHDOG_NS      1000000000u   /* vCPU 0's wait: a 1 s tick ... */
#define WATCHDOG_TICKS   20            /* ... and it gives up after this many without progress */
#define SPIN_LIMIT       (1u << 28)

#define DEFAULT_ROUNDS   8
#define MAX_ROUNDS       100000

#define STR2(x) #x
#define STR(x) STR2(x)

enum { OP_SWITCH, OP_REMAP, OP_UNMAP, OP_ASYNC, OP_SILENT_USER, OP_SILENT_KERNEL, OP_TABLE, OP_VISIT, OP_BURST,
       OP_SHARED, OP_SHTBL, OP_TYPES };
/* Operations of each kind in every round of every vCPU (SHARED and SHTBL depend on what it owns). */
static const u8 per_round[OP_TYPES] = { 3, 4, 2, 2, 1, 1, 1, 1, 2, 0, 0 };
#define OPS_MAX          (3 + 4 + 2 + 2 + 1 + 1 + 1 + 1 + 2 + NSHARED * SH_REMAPS + 1)

enum { REGION_PRIV, REGION_TBL, REGION_KPRIV };

struct page_state {
	u32 frame;                     /* guest-physical */
	u32 w0, w1;                    /* what its first two words hold (its last holds ~w0) */
};

struct space {
	struct mm mm;
	struct page_state priv[PRIV_PAGES];
	struct page_state tbl[TBL_PAGES];
	u32 tbl_pt[2];                 /* the two page tables under TBL_VA (guest-physical) */
	u32 tbl_cur;                   /* which one is hooked */
	u32 free[POOL_FRAMES];
	u32 nfree;
};

struct cpu {
	struct space sp[NSPACES];
	u32 cur;                       /* the top level in use (index into sp) */
	u32 rng;
	volatile u32 round;            /* the round it is in (vCPU 0's watchdog watches the sum) */
	u32 seq, seq_base;             /* patterns written (seq_base of them by the setup) */
	u32 ops[OP_TYPES];             /* operations done, by kind */
	u32 reads;                     /* shared-page reads checked */
	u32 ring_next;                 /* a secondary's async ring cursor */
	u32 ring_queued, ring_full;
	u32 faults_seen;               /* vCPU 0: reads of an unmapped page that faulted */
	struct page_state kpriv;
	u32 kpriv_frames[2];
	u32 kpriv_cur;
	volatile u32 up, go_seen, finished;
	u8 ops_list[OPS_MAX];
	char msg[LGUEST_SHUTDOWN_MSG_MAX];
};

static struct cpu cpus[MAX_CPUS];
static u32 ncpus = 1, rounds = DEFAULT_ROUNDS, seed = 1;
static volatile u32 go;

/* Shared pages: frames and published versions. */
static u32 sh_frames[NSHARED][SH_FRAMES];
static volatile u32 sh_ver[NSHARED];
static u32 shtbl_pt[SHTBL_SETS];
static u32 shtbl_frames[SHTBL_SETS][NSHTBL];
static volatile u32 shtbl_ver, shtbl_lock;

/* Locked totals, and one kept under a spinlock with plain arithmetic. */
static volatile u32 tot_ops[OP_TYPES], tot_reads, tot_seq;
static volatile u32 spin_total, spin_total_lock;

/* ---- atomics (as in smp.c: locked instructions are atomic across vCPUs) ---- */
static inline u32 xadd(volatile u32 *p, u32 v)
{
	asm volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

static inline u32 xchg(volatile u32 *p, u32 v)
{
	asm volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

static inline void publish(volatile u32 *p, u32 v) { xchg(p, v); }
static inline u32 locked_read(volatile u32 *p) { return xadd(p, 0); }

static u32 self_id(void) { return vcpu_self(); }

/* ---- failing: the reason names the vCPU and its round ---- */
static noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static noreturn void fail(const char *fmt, ...)
{
	u32 id = self_id();
	struct cpu *c = &cpus[id];
	char what[LGUEST_SHUTDOWN_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->msg, sizeof(c->msg), "FAIL: smp-stress: vCPU %u round %u: %s", id, c->round, what);
	if (id == 0)
		printk("%s\n", c->msg);
	for (;;)
		hcall(LHCALL_SHUTDOWN, __pa(c->msg), LGUEST_SHUTDOWN_POWEROFF, 0, 0);
}

static void spin_lock(volatile u32 *lock)
{
	while (xchg(lock, 1)) {
		u32 spins = 0;
		while (*lock)
			if (++spins == SPIN_LIMIT)
				fail("a spinlock stayed taken for %u spins", SPIN_LIMIT);
	}
}

static void spin_unlock(volatile u32 *lock)
{
	asm volatile("movl $0, %0" : "=m"(*lock) :: "memory");
}

/* ---- random numbers: one xorshift32 per vCPU, from the seed and its id ---- */
static u32 rnd(struct cpu *c)
{
	u32 s = c->rng;
	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return c->rng = s;
}

static u32 rnd_below(struct cpu *c, u32 n) { return n ? rnd(c) % n : 0; }

static u32 parse_u32(const char *s)
{
	u32 v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (u32)(*s++ - '0');
	return v;
}

/* ---- page tables of our own: the runtime's mm.c writes and tells; we also write silently (finding the
 * PTE with mm_pte_slot), and fill tables not hooked in yet ---- */
/* A present entry: the high half first (PAE), so it is never present with a stale high half. */
static void write_pte(pte_t *slot, pte_t v)
{
#ifdef CONFIG_PAE
	volatile u32 *w = (volatile u32 *)slot;
	w[1] = (u32)(v >> 32);
	barrier();
	w[0] = (u32)v;
#else
	*(volatile pte_t *)slot = v;
#endif
	barrier();
}

static u32 table_index(u32 va) { return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1); }

/* ---- hypercalls from any vCPU ---- */

/* One call into this vCPU's async ring (vCPU 0: the runtime's; a secondary: its own lguest_data's, with
 * its own cursor, as ring.c does it). A full ring makes the call synchronously. */
static void ring_call(struct cpu *c, u32 id, u32 call, u32 a1, u32 a2, u32 a3, u32 a4)
{
	if (id == 0) {
		async_hcall(call, a1, a2, a3, a4);
		c->ring_queued++;
		return;
	}
	struct lguest_data *d = vcpu_data(id);
	u32 n = c->ring_next;
	volatile u8 *status = &d->hcall_status[n];
	if (*status != LHCALL_STATUS_FREE) {
		c->ring_full++;
		hcall(call, a1, a2, a3, a4);
		return;
	}
	struct hcall_args *slot = &d->hcalls[n];
	slot->arg0 = call;
	slot->arg1 = a1;
	slot->arg2 = a2;
	slot->arg3 = a3;
	slot->arg4 = a4;
	barrier();
	*status = LHCALL_STATUS_PENDING;
	c->ring_next = (n + 1) % LHCALL_RING_SIZE;
	c->ring_queued++;
}

static void ring_set_pte(struct cpu *c, u32 id, u32 pgd_phys, u32 va, pte_t pte)
{
#ifdef CONFIG_PAE
	ring_call(c, id, LHCALL_SET_PTE, pgd_phys, va, (u32)pte, (u32)(pte >> 32));
#else
	ring_call(c, id, LHCALL_SET_PTE, pgd_phys, va, pte, 0);
#endif
}

static void flush_ring(void) { hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0); }

static void switch_to_space(struct cpu *c, u32 t)
{
	hcall(LHCALL_NEW_PGTABLE, c->sp[t].mm.pgd_phys, 0, 0, 0);
	c->cur = t;
}

/* ---- patterns ---- */
static void count_op(struct cpu *c, u32 op)
{
	c->ops[op]++;
	xadd(&tot_ops[op], 1);
	spin_lock(&spin_total_lock);
	asm volatile("movl %0, %%eax\n\t"
		     "incl %%eax\n\t"
		     "movl %%eax, %0"
		     : "+m"(spin_total) :: "eax", "memory");
	spin_unlock(&spin_total_lock);
}

static void new_pattern(struct cpu *c, u32 id, u32 space, u32 region, u32 page, struct page_state *p)
{
	c->seq++;
	xadd(&tot_seq, 1);
	p->w0 = (id << 28) | (space << 24) | (region << 20) | (page << 12) | (c->seq & 0xFFF);
	p->w1 = c->seq;
}

static void fill_frame(const struct page_state *p)
{
	volatile u32 *w = __va(p->frame);
	w[0] = p->w0;
	w[1] = p->w1;
	w[PAGE_SIZE / 4 - 1] = ~p->w0;
}

static void write_through(u32 va, const struct page_state *p)
{
	volatile u32 *w = (volatile u32 *)va;
	w[0] = p->w0;
	w[1] = p->w1;
	w[PAGE_SIZE / 4 - 1] = ~p->w0;
}

static const char *region_name(u32 r)
{
	return r == REGION_PRIV ? "priv" : r == REGION_TBL ? "tbl" : r == REGION_KPRIV ? "kernel" : "?";
}

/* Check the three words at w (a mapping, or the frame through the linear map) against p. The reason fits
 * the SHUTDOWN message: what was read, and whose page that pattern is. */
static void check_words(volatile u32 *w, const struct page_state *p, const char *how, u32 region, u32 space,
			u32 page)
{
	u32 a = w[0], b = w[1], z = w[PAGE_SIZE / 4 - 1];
	if (a == p->w0 && b == p->w1 && z == ~p->w0)
		return;
	if (a == p->w0 && b == p->w1)
		fail("%s %u of space %u %s: last word %08x, want %08x", region_name(region), page, space, how, z, ~p->w0);
	fail("%s %u of space %u %s: %08x/%x = vCPU %u space %u %s %u; want %08x/%x", region_name(region), page, space,
	     how, a, b, a >> 28, (a >> 24) & 15, region_name((a >> 20) & 15), (a >> 12) & 255, p->w0, p->w1);
}

static u32 priv_va(u32 page) { return PRIV_VA + page * PAGE_SIZE; }
static u32 tbl_va(u32 page) { return TBL_VA + page * PAGE_SIZE; }

static void check_va(u32 va, const struct page_state *p, u32 region, u32 space, u32 page)
{
	check_words((volatile u32 *)va, p, "via VA", region, space, page);
}

static void check_frame(const struct page_state *p, u32 region, u32 space, u32 page)
{
	check_words(__va(p->frame), p, "in frame", region, space, page);
}

/* Every page of top level t (which must be the current one). */
static void check_space(struct cpu *c, u32 t)
{
	struct space *s = &c->sp[t];
	for (u32 n = 0; n < PRIV_PAGES; n++)
		check_va(priv_va(n), &s->priv[n], REGION_PRIV, t, n);
	for (u32 n = 0; n < TBL_PAGES; n++)
		check_va(tbl_va(n), &s->tbl[n], REGION_TBL, t, n);
}

static void check_one(struct cpu *c)
{
	struct space *s = &c->sp[c->cur];
	u32 n = rnd_below(c, PRIV_PAGES + TBL_PAGES);
	if (n < PRIV_PAGES)
		check_va(priv_va(n), &s->priv[n], REGION_PRIV, c->cur, n);
	else
		check_va(tbl_va(n - PRIV_PAGES), &s->tbl[n - PRIV_PAGES], REGION_TBL, c->cur, n - PRIV_PAGES);
}

/* ---- frames of a top level ---- */
static u32 take_frame(struct cpu *c, struct space *s)
{
	if (!s->nfree)
		fail("no free frame");
	u32 i = rnd_below(c, s->nfree);
	u32 f = s->free[i];
	s->free[i] = s->free[--s->nfree];
	return f;
}

static void give_frame(struct space *s, u32 f)
{
	if (s->nfree >= POOL_FRAMES)
		fail("frame pool overflow");
	s->free[s->nfree++] = f;
}

/* User flags: sometimes with A (SET_PTE installs at once, read-only) or A|D (writable at once). */
static u32 user_flags(struct cpu *c)
{
	switch (rnd_below(c, 3)) {
	case 0: return USER_RW;
	case 1: return USER_RW | _PAGE_ACCESSED;
	default: return USER_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
	}
}

/* ---- shared pages ---- */
static u32 sh_word(u32 k, u32 ver) { return 0x5A000000u | (k << 20) | (ver & 0xFFFFF); }
static u32 shtbl_word(u32 j, u32 ver) { return 0x7B000000u | (j << 20) | (ver & 0xFFFFF); }

static void write_shared_frame(u32 frame, u32 w)
{
	volatile u32 *p = __va(frame);
	p[0] = w;
	p[PAGE_SIZE / 4 - 1] = ~w;
}

/* One read of a shared page between two reads of its version. */
static void read_shared(struct cpu *c, volatile u32 *ver, u32 va, u32 magic, u32 k, const char *what)
{
	u32 v1 = locked_read(ver);
	volatile u32 *p = (volatile u32 *)va;
	u32 x = p[0], z = p[PAGE_SIZE / 4 - 1];
	u32 v2 = locked_read(ver);
	c->reads++;
	if ((x & 0xFFF00000u) != (magic | (k << 20)) || z != ~x)
		fail("%s page %u read %08x %08x: not one of its frames (version %u)", what, k, x, z, v1);
	u32 g = x & 0xFFFFF;
	if (g < (v1 & 0xFFFFF))
		fail("%s page %u read version %u after version %u was published: a stale translation", what, k, g, v1);
	if (g > ((v2 + 1) & 0xFFFFF))
		fail("%s page %u read version %u, but only %u was published after the read", what, k, g, v2);
}

static void read_all_shared(struct cpu *c)
{
	for (u32 k = 0; k < NSHARED; k++)
		read_shared(c, &sh_ver[k], SHARED_VA + k * PAGE_SIZE, 0x5A000000u, k, "shared");
	for (u32 j = 0; j < NSHTBL; j++)
		read_shared(c, &shtbl_ver, SHTBL_VA + j * PAGE_SIZE, 0x7B000000u, j, "shared-table");
}

/* ---- vCPU 0: a read that may fault (paging.c's probe) ---- */
asm(".pushsection .text\n"
    ".globl stress_probe_read, stress_probe_insn, stress_probe_done\n"
    "stress_probe_read:\n\t"
    "movl 4(%esp), %ecx\n"
    "stress_probe_insn:\n\t"
    "movl (%ecx), %eax\n"
    "stress_probe_done:\n\t"
    "ret\n"
    ".popsection\n");
u32 stress_probe_read(u32 va);
extern const char stress_probe_insn[], stress_probe_done[];
#define PROBE_FAULTED 0xDEADDEADu
static volatile u32 probe_faults, probe_err, probe_cr2;

static void on_page_fault(struct trap_frame *f)
{
	if (f->eip != (u32)stress_probe_insn)
		fail("unexpected page fault at eip %08x, error %x, cr2 %08x", f->eip, f->errcode, read_cr2());
	probe_faults++;
	probe_err = f->errcode;
	probe_cr2 = read_cr2();
	f->eax = PROBE_FAULTED;
	f->eip = (u32)stress_probe_done;
}

/* ---- the operations ---- */

static void op_switch(struct cpu *c, u32 id)
{
	u32 t = rnd_below(c, NSPACES);
	if (rnd_below(c, 3) == 0) {
		ring_call(c, id, LHCALL_NEW_PGTABLE, c->sp[t].mm.pgd_phys, 0, 0, 0);
		flush_ring();
		c->cur = t;
	} else {
		switch_to_space(c, t);
	}
	check_one(c);
	check_one(c);
	count_op(c, OP_SWITCH);
}

/* Remap private page n of the current top level to a fresh frame; unmap first if asked. */
static void op_remap(struct cpu *c, u32 id, int unmap_first)
{
	u32 t = c->cur;
	struct space *s = &c->sp[t];
	u32 n = rnd_below(c, PRIV_PAGES);
	struct page_state *p = &s->priv[n];
	u32 va = priv_va(n);
	check_va(va, p, REGION_PRIV, t, n);        /* the old translation is cached now */
	if (unmap_first) {
		mm_unmap(&s->mm, va);
		if (id == 0) {
			u32 before = probe_faults;
			u32 v = stress_probe_read(va);
			if (probe_faults != before + 1 || v != PROBE_FAULTED || probe_err != 0 || probe_cr2 != va)
				fail("unmapped priv %u read %08x (faults %u, error %x, cr2 %08x)", n, v,
				     probe_faults - before, probe_err, probe_cr2);
			c->faults_seen++;
		}
	}
	u32 old = p->frame;
	p->frame = take_frame(c, s);
	new_pattern(c, id, t, REGION_PRIV, n, p);
	if (rnd_below(c, 2)) {
		fill_frame(p);
		mm_map(&s->mm, va, p->frame, user_flags(c));
		check_va(va, p, REGION_PRIV, t, n);
	} else {
		mm_map(&s->mm, va, p->frame, user_flags(c));
		write_through(va, p);
		check_frame(p, REGION_PRIV, t, n);
		check_va(va, p, REGION_PRIV, t, n);
	}
	give_frame(s, old);
	count_op(c, unmap_first ? OP_UNMAP : OP_REMAP);
}

/* ASYNC_PAGES remaps through the ring, of the current top level or (half the time) another one, which
 * the batch may also switch to first. */
static void op_async(struct cpu *c, u32 id)
{
	u32 t = rnd_below(c, 2) ? c->cur : rnd_below(c, NSPACES);
	struct space *s = &c->sp[t];
	int switch_first = t != c->cur && rnd_below(c, 2);
	u32 pages[ASYNC_PAGES], olds[ASYNC_PAGES];
	if (t == c->cur)
		for (u32 i = 0; i < ASYNC_PAGES; i++)
			check_one(c);
	if (switch_first)
		ring_call(c, id, LHCALL_NEW_PGTABLE, s->mm.pgd_phys, 0, 0, 0);
	for (u32 i = 0; i < ASYNC_PAGES; i++) {
		u32 n;
		for (;;) {
			n = rnd_below(c, PRIV_PAGES);
			u32 k;
			for (k = 0; k < i && pages[k] != n; k++)
				;
			if (k == i)
				break;
		}
		pages[i] = n;
		struct page_state *p = &s->priv[n];
		olds[i] = p->frame;
		p->frame = take_frame(c, s);
		new_pattern(c, id, t, REGION_PRIV, n, p);
		fill_frame(p);
		pte_t pte = (pte_t)p->frame | user_flags(c);
		pte_t *slot = mm_pte_slot(&s->mm, priv_va(n));
		if (!slot)
			fail("no page table for private page %u of top level %u", n, t);
		write_pte(slot, pte);
		ring_set_pte(c, id, s->mm.pgd_phys, priv_va(n), pte);
	}
	flush_ring();
	if (switch_first)
		c->cur = t;
	else if (t != c->cur)
		switch_to_space(c, t);
	for (u32 i = 0; i < ASYNC_PAGES; i++) {
		check_va(priv_va(pages[i]), &s->priv[pages[i]], REGION_PRIV, t, pages[i]);
		give_frame(s, olds[i]);
	}
	count_op(c, OP_ASYNC);
}

/* A private PTE changed behind the Host's back, then FLUSH_TLB(0) (maybe through the ring). */
static void op_silent_user(struct cpu *c, u32 id)
{
	u32 t = c->cur;
	struct space *s = &c->sp[t];
	u32 n = rnd_below(c, PRIV_PAGES);
	struct page_state *p = &s->priv[n];
	check_va(priv_va(n), p, REGION_PRIV, t, n);
	u32 old = p->frame;
	p->frame = take_frame(c, s);
	new_pattern(c, id, t, REGION_PRIV, n, p);
	fill_frame(p);
	write_pte(mm_pte_slot(&s->mm, priv_va(n)), (pte_t)p->frame | user_flags(c));
	if (rnd_below(c, 2)) {
		ring_call(c, id, LHCALL_FLUSH_TLB, 0, 0, 0, 0);
		flush_ring();
	} else {
		hcall(LHCALL_FLUSH_TLB, 0, 0, 0, 0);
	}
	check_va(priv_va(n), p, REGION_PRIV, t, n);
	give_frame(s, old);
	count_op(c, OP_SILENT_USER);
}

/* The vCPU's own kernel page (in the kernel page table every top level shares) changed behind the
 * Host's back, then FLUSH_TLB(1). */
static void op_silent_kernel(struct cpu *c, u32 id)
{
	u32 va = KPRIV_VA + id * PAGE_SIZE;
	struct page_state *p = &c->kpriv;
	check_va(va, p, REGION_KPRIV, 0, id);
	c->kpriv_cur ^= 1;
	p->frame = c->kpriv_frames[c->kpriv_cur];
	new_pattern(c, id, 0, REGION_KPRIV, id, p);
	fill_frame(p);
	write_pte(mm_pte_slot(&kernel_mm, va), (pte_t)p->frame | _PAGE_PRESENT | KERN_RW_AD);
	hcall(LHCALL_FLUSH_TLB, 1, 0, 0, 0);
	check_va(va, p, REGION_KPRIV, 0, id);
	count_op(c, OP_SILENT_KERNEL);
}

/* Replace the page table under TBL_VA of the current top level with the other one, filled with fresh
 * frames (2-level SET_PGD, PAE SET_PMD). */
static void op_table(struct cpu *c, u32 id)
{
	u32 t = c->cur;
	struct space *s = &c->sp[t];
	for (u32 n = 0; n < TBL_PAGES; n++)
		check_va(tbl_va(n), &s->tbl[n], REGION_TBL, t, n);
	u32 olds[TBL_PAGES];
	u32 next = s->tbl_cur ^ 1;
	pte_t *pt = __va(s->tbl_pt[next]);
	memset(pt, 0, PAGE_SIZE);
	for (u32 n = 0; n < TBL_PAGES; n++) {
		struct page_state *p = &s->tbl[n];
		olds[n] = p->frame;
		p->frame = take_frame(c, s);
		new_pattern(c, id, t, REGION_TBL, n, p);
		fill_frame(p);
		pt[table_index(tbl_va(n))] = (pte_t)p->frame | user_flags(c);
	}
	barrier();
	mm_set_table_entry(&s->mm, TBL_VA, (u64)s->tbl_pt[next] | _PAGE_TABLE);
	s->tbl_cur = next;
	for (u32 n = 0; n < TBL_PAGES; n++) {
		check_va(tbl_va(n), &s->tbl[n], REGION_TBL, t, n);
		give_frame(s, olds[n]);
	}
	count_op(c, OP_TABLE);
}

static void op_visit(struct cpu *c)
{
	u32 t = (c->cur + 1 + rnd_below(c, NSPACES - 1)) % NSPACES;
	switch_to_space(c, t);
	check_space(c, t);
	count_op(c, OP_VISIT);
}

static void op_burst(struct cpu *c)
{
	u32 n = BURST_MIN + rnd_below(c, BURST_SPAN);
	for (u32 i = 0; i < n; i++) {
		u32 k = rnd_below(c, NSHARED + NSHTBL);
		if (k < NSHARED)
			read_shared(c, &sh_ver[k], SHARED_VA + k * PAGE_SIZE, 0x5A000000u, k, "shared");
		else
			read_shared(c, &shtbl_ver, SHTBL_VA + (k - NSHARED) * PAGE_SIZE, 0x7B000000u, k - NSHARED,
				    "shared-table");
	}
	count_op(c, OP_BURST);
}

/* The owner remaps shared page k to its next frame and publishes the version it holds. */
static void op_shared(struct cpu *c, u32 id, u32 k)
{
	u32 ver = sh_ver[k] + 1;
	u32 frame = sh_frames[k][ver % SH_FRAMES];
	u32 va = SHARED_VA + k * PAGE_SIZE;
	write_shared_frame(frame, sh_word(k, ver));
	if (rnd_below(c, 3) == 0) {
		pte_t pte = (pte_t)frame | _PAGE_PRESENT | KERN_RW_AD;
		write_pte(mm_pte_slot(&kernel_mm, va), pte);
		ring_set_pte(c, id, kernel_mm.pgd_phys, va, pte);
		flush_ring();
	} else {
		mm_map(&kernel_mm, va, frame, KERN_RW_AD);
	}
	publish(&sh_ver[k], ver);
	count_op(c, OP_SHARED);
}

/* Replace the page table under SHTBL_VA, shared by every top level, and publish its version. */
static void op_shtbl(struct cpu *c)
{
	spin_lock(&shtbl_lock);
	u32 ver = shtbl_ver + 1;
	u32 set = ver % SHTBL_SETS;
	pte_t *pt = __va(shtbl_pt[set]);
	memset(pt, 0, PAGE_SIZE);
	for (u32 j = 0; j < NSHTBL; j++) {
		write_shared_frame(shtbl_frames[set][j], shtbl_word(j, ver));
		pt[table_index(SHTBL_VA + j * PAGE_SIZE)] = (pte_t)shtbl_frames[set][j] | _PAGE_PRESENT | KERN_RW_AD;
	}
	barrier();
#ifdef CONFIG_PAE
	/* The kernel PMD page is shared by every top level: one SET_PMD reaches every shadow of it. */
	mm_set_table_entry(&kernel_mm, SHTBL_VA, (u64)shtbl_pt[set] | _KERNPG_TABLE);
#else
	/* Every top level has its own copy of the kernel entries: change each, and tell the Host of each.
	 * While we do, the top levels disagree (abi 6.2 says they are "identical across all Guest page
	 * tables"): another vCPU switching to a top level we already did may get the reused slot of one we
	 * have not done yet. An SMP Host therefore never keeps a reused slot's kernel part (switcher/README.md),
	 * and the SET_PGDs are all it needs: no FLUSH_TLB(1) here. */
	u32 e = shtbl_pt[set] | _KERNPG_TABLE, idx = SHTBL_VA >> PGDIR_SHIFT;
	mm_set_table_entry(&kernel_mm, SHTBL_VA, e);
	for (u32 v = 0; v < ncpus; v++)
		for (u32 t = 0; t < NSPACES; t++) {
			struct mm *mm = &cpus[v].sp[t].mm;
			((volatile u32 *)mm->pgd)[idx] = e;
			hcall(LHCALL_SET_PGD, mm->pgd_phys, idx, 0, 0);
		}
#endif
	publish(&shtbl_ver, ver);
	spin_unlock(&shtbl_lock);
	count_op(c, OP_SHTBL);
}

/* ---- one vCPU's rounds ---- */

static u32 build_round(struct cpu *c, u32 id, u32 r)
{
	u32 n = 0;
	for (u32 op = 0; op < OP_TYPES; op++)
		for (u32 i = 0; i < per_round[op]; i++)
			c->ops_list[n++] = (u8)op;
	for (u32 k = 0; k < NSHARED; k++)
		if (k % ncpus == id)
			for (u32 i = 0; i < SH_REMAPS; i++)
				c->ops_list[n++] = (u8)(OP_SHARED + 0x10 * (k + 1));
	if (r % ncpus == id)
		c->ops_list[n++] = OP_SHTBL;
	for (u32 i = n - 1; i > 0; i--) {
		u32 j = rnd_below(c, i + 1);
		u8 x = c->ops_list[i];
		c->ops_list[i] = c->ops_list[j];
		c->ops_list[j] = x;
	}
	return n;
}

static void run_rounds(u32 id)
{
	struct cpu *c = &cpus[id];
	switch_to_space(c, rnd_below(c, NSPACES));
	check_space(c, c->cur);
	for (u32 r = 0; r < rounds; r++) {
		c->round = r;
		u32 n = build_round(c, id, r);
		for (u32 i = 0; i < n; i++) {
			u32 op = c->ops_list[i] & 0xF, k = (c->ops_list[i] >> 4) - 1;
			switch (op) {
			case OP_SWITCH: op_switch(c, id); break;
			case OP_REMAP: op_remap(c, id, 0); break;
			case OP_UNMAP: op_remap(c, id, 1); break;
			case OP_ASYNC: op_async(c, id); break;
			case OP_SILENT_USER: op_silent_user(c, id); break;
			case OP_SILENT_KERNEL: op_silent_kernel(c, id); break;
			case OP_TABLE: op_table(c, id); break;
			case OP_VISIT: op_visit(c); break;
			case OP_BURST: op_burst(c); break;
			case OP_SHARED: op_shared(c, id, k); break;
			case OP_SHTBL: op_shtbl(c); break;
			}
			read_all_shared(c);
			check_one(c);
		}
		check_space(c, c->cur);
	}
	c->round = rounds;
	/* Every own top level, one last time. */
	for (u32 t = 0; t < NSPACES; t++) {
		switch_to_space(c, t);
		check_space(c, t);
	}
	xadd(&tot_reads, c->reads);
}

/* ---- a secondary ---- */
static void secondary_irq(u32 id, u32 irq, struct trap_frame *f)
{
	(void)irq;
	(void)f;
	cpus[id].go_seen++;
}

static void secondary_main(u32 id)
{
	struct cpu *c = &cpus[id];
	vcpu_irq_unblock(id, GO_IRQ);
	publish(&c->up, 1);
	hcall_send_ipi(0, DONE_IRQ);
	for (;;) {
		vcpu_irq_disable(id);
		if (locked_read(&go))
			break;
		vcpu_halt();
	}
	vcpu_irq_block(id, GO_IRQ);
	run_rounds(id);
	publish(&c->finished, 1);
	hcall_send_ipi(0, DONE_IRQ);
	vcpu_park(id);
}

/* ---- vCPU 0 ---- */

static u32 progress(void)
{
	u32 sum = 0;
	for (u32 id = 0; id < ncpus; id++)
		sum += cpus[id].round + cpus[id].finished + cpus[id].up + cpus[id].ops[OP_SWITCH];
	return sum;
}

/* Wait, halted, until cond() holds (the secondaries wake us with DONE_IRQ). A 1 s tick wakes us too;
 * after WATCHDOG_TICKS of them with no progress by any vCPU we give up and say what we waited for. */
static void wait_for(int (*cond)(void), const char *what)
{
	if (cond())
		return;
	u32 start = clock_ticks, last = progress();
	clock_set_periodic(WATCHDOG_NS);
	for (;;) {
		irq_disable();
		if (cond())
			break;
		u32 now = progress();
		if (now != last) {
			last = now;
			start = clock_ticks;
		}
		if (clock_ticks - start >= WATCHDOG_TICKS) {
			clock_cancel();
			irq_enable();
			for (u32 id = 1; id < ncpus; id++)
				printk("smp-stress: vCPU %u: up %u, round %u, finished %u\n", id, cpus[id].up, cpus[id].round,
				       cpus[id].finished);
			fail("timed out waiting for %s", what);
		}
		halt();
	}
	clock_cancel();
	irq_enable();
}

static int all_up(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (!cpus[id].up)
			return 0;
	return 1;
}

static int all_finished(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (!cpus[id].finished)
			return 0;
	return 1;
}

static u32 start_secondaries(void)
{
	u32 n = 1;
	for (u32 id = 1; id < MAX_CPUS; id++) {
		u32 r = vcpu_start(id, secondary_main);
		if (r == VCPU_START_NO_SUCH_VCPU)
			break;
		if (r != VCPU_START_OK)
			fail("VCPU_START of vCPU %u returned %u", id, r);
		n++;
	}
	return n;
}

static void map_kernel_page(u32 va, u32 frame)
{
	mm_map(&kernel_mm, va, frame, KERN_RW_AD);
}

/* Everything the rounds use, allocated and mapped by vCPU 0 before any of them starts: the kernel
 * tables first (so every top level's copy of the kernel part has them), then the top levels. */
static void setup(void)
{
	lazy_mode_begin();
	for (u32 k = 0; k < NSHARED; k++) {
		for (u32 f = 0; f < SH_FRAMES; f++)
			sh_frames[k][f] = __pa(page_alloc());
		write_shared_frame(sh_frames[k][0], sh_word(k, 0));
		map_kernel_page(SHARED_VA + k * PAGE_SIZE, sh_frames[k][0]);
	}
	for (u32 set = 0; set < SHTBL_SETS; set++) {
		if (set)                                /* set 0's is the one mm.c makes below */
			shtbl_pt[set] = __pa(page_alloc());
		for (u32 j = 0; j < NSHTBL; j++)
			shtbl_frames[set][j] = __pa(page_alloc());
	}
	for (u32 j = 0; j < NSHTBL; j++) {
		write_shared_frame(shtbl_frames[0][j], shtbl_word(j, 0));
		map_kernel_page(SHTBL_VA + j * PAGE_SIZE, shtbl_frames[0][j]);
	}
	lazy_mode_end();
	shtbl_pt[0] = __pa((u32)mm_pte_slot(&kernel_mm, SHTBL_VA) & ~(PAGE_SIZE - 1));

	for (u32 id = 0; id < ncpus; id++) {
		struct cpu *c = &cpus[id];
		c->rng = (seed * 2654435761u) ^ (0x9E3779B9u * (id + 1));
		if (!c->rng)
			c->rng = 1;
		for (u32 i = 0; i < 8; i++)
			rnd(c);
		for (u32 i = 0; i < 2; i++)
			c->kpriv_frames[i] = __pa(page_alloc());
		c->kpriv.frame = c->kpriv_frames[0];
		new_pattern(c, id, 0, REGION_KPRIV, id, &c->kpriv);
		fill_frame(&c->kpriv);
		map_kernel_page(KPRIV_VA + id * PAGE_SIZE, c->kpriv.frame);
	}

	for (u32 id = 0; id < ncpus; id++) {
		struct cpu *c = &cpus[id];
		for (u32 t = 0; t < NSPACES; t++) {
			struct space *s = &c->sp[t];
			mm_create_user(&s->mm);
			for (u32 f = 0; f < POOL_FRAMES; f++)
				s->free[s->nfree++] = __pa(page_alloc());
			lazy_mode_begin();
			for (u32 n = 0; n < PRIV_PAGES; n++) {
				struct page_state *p = &s->priv[n];
				p->frame = take_frame(c, s);
				new_pattern(c, id, t, REGION_PRIV, n, p);
				fill_frame(p);
				mm_map(&s->mm, priv_va(n), p->frame, user_flags(c));
			}
			for (u32 n = 0; n < TBL_PAGES; n++) {
				struct page_state *p = &s->tbl[n];
				p->frame = take_frame(c, s);
				new_pattern(c, id, t, REGION_TBL, n, p);
				fill_frame(p);
				mm_map(&s->mm, tbl_va(n), p->frame, user_flags(c));
			}
			lazy_mode_end();
			pte_t *slot = mm_pte_slot(&s->mm, TBL_VA);
			s->tbl_pt[0] = __pa((u32)slot & ~(PAGE_SIZE - 1));
			s->tbl_pt[1] = __pa(page_alloc());
			s->tbl_cur = 0;
		}
		c->seq_base = c->seq;   /* setup's patterns do not count */
	}
	tot_seq = 0;
}

static void print_header(void)
{
#ifdef CONFIG_PAE
	printk("smp-stress: shadow paging from every vCPU at once (paging: PAE)\n");
#else
	printk("smp-stress: shadow paging from every vCPU at once (paging: 2-level)\n");
#endif
}

/* vCPU 0 on each top level of every vCPU in turn: every page where the owner left it. */
static u32 check_everything(void)
{
	u32 pages = 0;
	for (u32 id = 0; id < ncpus; id++) {
		struct cpu *c = &cpus[id];
		for (u32 t = 0; t < NSPACES; t++) {
			struct space *s = &c->sp[t];
			hcall(LHCALL_NEW_PGTABLE, s->mm.pgd_phys, 0, 0, 0);
			for (u32 n = 0; n < PRIV_PAGES; n++, pages++) {
				check_frame(&s->priv[n], REGION_PRIV, t, n);
				check_va(priv_va(n), &s->priv[n], REGION_PRIV, t, n);
			}
			for (u32 n = 0; n < TBL_PAGES; n++, pages++) {
				check_frame(&s->tbl[n], REGION_TBL, t, n);
				check_va(tbl_va(n), &s->tbl[n], REGION_TBL, t, n);
			}
		}
		check_va(KPRIV_VA + id * PAGE_SIZE, &c->kpriv, REGION_KPRIV, 0, id);
	}
	hcall(LHCALL_NEW_PGTABLE, kernel_mm.pgd_phys, 0, 0, 0);
	return pages;
}

static void final_checks(void)
{
	u32 n = ncpus, m = rounds;
	u32 sum[OP_TYPES] = { 0 };
	u32 reads = 0, seqs = 0, totals_ok = 1;
	for (u32 id = 0; id < n; id++) {
		for (u32 op = 0; op < OP_TYPES; op++)
			sum[op] += cpus[id].ops[op];
		reads += cpus[id].reads;
		seqs += cpus[id].seq - cpus[id].seq_base;
	}
	u32 all = 0;
	for (u32 op = 0; op < OP_TYPES; op++) {
		u32 want = op == OP_SHARED ? NSHARED * SH_REMAPS * m : op == OP_SHTBL ? m : per_round[op] * n * m;
		if (sum[op] != tot_ops[op] || sum[op] != want) {
			printk("smp-stress: operation %u: %u done, locked total %u, expected %u\n", op, sum[op], tot_ops[op],
			       want);
			totals_ok = 0;
		}
		all += sum[op];
	}
	if (reads != tot_reads || seqs != tot_seq || spin_total != all || spin_total_lock != 0) {
		printk("smp-stress: reads %u (locked %u), patterns %u (locked %u), operations %u (spinlocked %u)\n", reads,
		       tot_reads, seqs, tot_seq, all, spin_total);
		totals_ok = 0;
	}
	for (u32 id = 0; id < n; id++)
		if (cpus[id].round != m)
			fail("vCPU %u ended in round %u", id, cpus[id].round);

	/* The deterministic lines. */
	/* (vCPU 0 also read each page it unmapped, and each read faulted.) */
	check(cpus[0].faults_seen == cpus[0].ops[OP_UNMAP] && probe_faults == cpus[0].faults_seen,
	      "private pages: %u remaps (SET_PTE), %u unmapped first, %u via the async ring, %u silent + FLUSH_TLB(0)",
	      sum[OP_REMAP], sum[OP_UNMAP], sum[OP_ASYNC] * ASYNC_PAGES, sum[OP_SILENT_USER]);
#ifdef CONFIG_PAE
	check(1, "page tables replaced under live mappings: %u with SET_PMD", sum[OP_TABLE]);
#else
	check(1, "page tables replaced under live mappings: %u with SET_PGD", sum[OP_TABLE]);
#endif
	check(1, "own kernel pages: %u silent changes + FLUSH_TLB(1), seen at once", sum[OP_SILENT_KERNEL]);
	check(1, "address-space switches: %u NEW_PGTABLE, %u visits checking a whole top level", sum[OP_SWITCH],
	      sum[OP_VISIT]);
	int versions_ok = shtbl_ver == m;
	for (u32 k = 0; k < NSHARED; k++)
		versions_ok &= sh_ver[k] == m * SH_REMAPS;
	read_all_shared(&cpus[0]);
	for (u32 k = 0; k < NSHARED; k++)
		versions_ok &= *(volatile u32 *)(SHARED_VA + k * PAGE_SIZE) == sh_word(k, m * SH_REMAPS);
	for (u32 j = 0; j < NSHTBL; j++)
		versions_ok &= *(volatile u32 *)(SHTBL_VA + j * PAGE_SIZE) == shtbl_word(j, m);
	if (!versions_ok)
		fail("final shared versions %u %u %u %u / %u, expected %u / %u", sh_ver[0], sh_ver[1], sh_ver[2], sh_ver[3],
		     shtbl_ver, m * SH_REMAPS, m);
#ifdef CONFIG_PAE
	check(1, "shared pages: %u remaps (SET_PTE), %u tables replaced (SET_PMD); no read older than the last published",
	      sum[OP_SHARED], sum[OP_SHTBL]);
#else
	check(1, "shared pages: %u remaps (SET_PTE), %u tables replaced (SET_PGD); no read older than the last published",
	      sum[OP_SHARED], sum[OP_SHTBL]);
#endif
	if (!totals_ok)
		fail("the locked counters disagree with the vCPUs' own counts");
	check(1, "locked counters: every total equals the sum of the vCPUs' own counts");
	u32 pages = check_everything();
	check(pages == n * NSPACES * (PRIV_PAGES + TBL_PAGES),
	      "afterwards, every page of the %u top levels read back on vCPU 0", n * NSPACES);
}

void guest_main(void)
{
	char buf[16];
	print_header();
	if (cmdline_value("seed", buf, sizeof(buf)))
		seed = parse_u32(buf);
	if (cmdline_value("rounds", buf, sizeof(buf)))
		rounds = parse_u32(buf);
	if (rounds == 0 || rounds > MAX_ROUNDS)
		fail("rounds=%u: give 1 to %u", rounds, MAX_ROUNDS);
	clock_init();                                   /* wait_for's watchdog */
	irq_unblock(DONE_IRQ);                          /* it only wakes us: no handler */
	irq_enable();
	set_trap_handler(14, on_page_fault);
	vcpu_irq_handlers[GO_IRQ] = secondary_irq;

	ncpus = start_secondaries();
	printk("smp-stress: vcpus: %u, seed: %u, rounds: %u\n", ncpus, seed, rounds);
	wait_for(all_up, "every secondary to come up");
	check(1, "every secondary came up, waiting for the others to be set up");
	setup();
	printk("smp-stress: %u vCPU%s x %u top levels + kernel_mm = %u top levels for the Host's 4 cached shadows\n",
	       ncpus, ncpus == 1 ? "" : "s", NSPACES, ncpus * NSPACES + 1);

	publish(&go, 1);
	for (u32 id = 1; id < ncpus; id++)
		hcall_send_ipi(id, GO_IRQ);
	run_rounds(0);
	wait_for(all_finished, "every vCPU to finish its rounds");
	final_checks();
	printk("smp-stress: done\n");
	power_off();
}

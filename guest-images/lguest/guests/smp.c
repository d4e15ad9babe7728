/* smp: the lguest-ts SMP extension end to end (VCPU_START, SEND_IPI, per-vCPU lguest_data, IDT, GDT and
 * clock, atomic instructions across vCPUs, TLB shootdown). Run with `lguest-ts run smp --cpus N`.
 *
 * vCPU 0 counts its vCPUs by starting 1, 2, ... until VCPU_START says there is no such vCPU; each
 * secondary runs secondary_main() on its own stack through runtime/vcpu.c, then waits for commands:
 * vCPU 0 writes one into its `struct secondary`, bumps `seq` and sends it IPI_IRQ; it wakes from HALT,
 * takes the IPI, runs the command with interrupts off, writes `done = seq` and sends vCPU 0 IPI_TO0_IRQ.
 * vCPU 0 waits with HALT too (wait_for, with a watchdog that names what it waited for), so no vCPU spins
 * while it waits for another, except where the spin is the test (the TLB readers, the spinlock, which
 * gives up after SPIN_LIMIT spins). Only vCPU 0 prints; the secondaries report through `struct
 * secondary` (or, if one faults, in its SHUTDOWN reason), and every line is the same whatever N >= 2 is,
 * apart from "smp: vcpus: N".
 *
 * Expected output, 2-level (smp.elf); smp-pae.elf says "paging: PAE" and "SET_PMD" for "SET_PGD":
 *   smp: VCPU_START, SEND_IPI, atomics and TLB shootdown (paging: 2-level)
 *   smp: vcpus: N
 * then with --cpus 1:
 *   smp: one vCPU: nothing to check across vCPUs
 * or with --cpus 2..8:
 *   check: every secondary came up: LGUEST_INIT with its own lguest_data, its id in EAX: ok
 *   check: every secondary took one tick of its own clock through its own IDT (time written): ok
 *   check: lock xaddl: 10000 adds per vCPU, total exact, old values sum to 0+1+...+(total-1): ok
 *   check: lock incl: 10000 per vCPU, total exact: ok
 *   check: lock cmpxchgl retry loop: 10000 increments per vCPU, total exact: ok
 *   check: xchg spinlock around a plain read-increment-write: 10000 per vCPU, total exact: ok
 *   check: IPIs: 5 rounds; each IPI woke its secondary from HALT and ran its handler once: ok
 *   check: an IPI to a blocked IRQ waited, and was delivered once unblocked: ok
 *   check: TLB shootdown (SET_PTE): no secondary read the old frame after the remap; all read the new: ok
 *   check: TLB shootdown (SET_PGD): no secondary read the old frame after the remap; all read the new: ok
 *   check: per-vCPU GDT: every vCPU's TLS segment (%gs:0) is its own: ok
 *   check: cross-modifying code: every secondary ran the instructions vCPU 0 rewrote, not its old copy: ok
 *   check: every secondary parked: ok
 * and always
 *   smp: done
 * and then SHUTDOWN (power off, "Power down") from vCPU 0, the secondaries parked.
 *
 * Misbehaving (`--cmdline smp=NAME`, see README.md): the guest does one forbidden act, which must end
 * it; a Host that lets it pass sees "FAIL: smp: survived smp=NAME". */
#include "kernel.h"

#define IPI_IRQ          5          /* vCPU 0 -> a secondary: a command is waiting (and the IPI test) */
#define IPI_TO0_IRQ      6          /* a secondary -> vCPU 0: a command is done */
#define IPI_BLOCKED_IRQ  7          /* sent to a secondary while blocked there */
#define WORK_ITERS       10000      /* per vCPU, for each atomic counter */
#define IPI_ROUNDS       5
#define TICK_NS          1000000u   /* a secondary's clock test: one 1 ms event */
#define WATCHDOG_NS      1000000000u /* vCPU 0's wait: a 1 s tick ... */
#define WATCHDOG_TICKS   10         /* ... and it gives up after 10 */
#define LINGER_TICKS     3          /* misbehave: seconds to wait for a kill made on another vCPU */
#define SHOOT_VA         0xD0000000u /* a kernel page above the linear map (which ends below it) */
#define SHOOT_FRAMES     3
#define STALE_LIMIT      1000       /* TLB reader: give up after this many wrong reads after the remap */
#define SPIN_LIMIT       (1u << 26) /* spinlock: give up after this many spins on a taken lock */
#define TLS_MAGIC        0x7150C000u
#define KERN_RW_AD       (_PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

#define STR2(x) #x
#define STR(x) STR2(x)

enum { CMD_NONE, CMD_WORK, CMD_IPI, CMD_BLOCKED, CMD_TLB, CMD_TLS, CMD_XCODE, CMD_PARK, CMD_FAULT, CMD_BADHCALL };

/* What vCPU 0 and one secondary share. [0] is vCPU 0's own (its work results and TLS word). */
struct secondary {
	volatile u32 seq;                 /* vCPU 0: bumped with each command */
	volatile u32 cmd, arg;
	volatile u32 done;                /* the secondary: seq of the last command it finished */
	volatile u32 up;                  /* set up and took its clock tick */
	volatile u32 time_written;        /* the Host wrote the time into its lguest_data */
	volatile u32 irqs[LGUEST_IRQS];   /* interrupts taken, by IRQ */
	volatile u32 irqs_not_from_halt;  /* ... whose frame was not at vcpu_halt_resume */
	volatile u32 blocked_early;       /* CMD_BLOCKED: IPI_BLOCKED_IRQs taken while it was blocked */
	volatile u32 tlb_ready;           /* CMD_TLB: it has read the old frame through V */
	volatile u32 old_reads, stale_reads, odd_reads, saw_new;
	volatile u32 tls_value;           /* CMD_TLS: what %gs:0 read */
	volatile u32 xcode_value[2];      /* CMD_XCODE: what the rewritten function returned, before and after */
	volatile u32 cas_retries;
	volatile u64 xadd_sum;            /* sum of the old values lock xaddl returned it */
	u32 ipis_sent;                    /* vCPU 0: IPI_IRQs sent to it */
	u32 tls_desc[GDT_ENTRY_TLS_ENTRIES * 2];
};
static struct secondary sec[LGUEST_MAX_VCPUS];
/* CMD_XCODE: a page of code that vCPU 0 writes and the secondaries run ("movl $imm32, %eax; ret"). */
static u8 xcode_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static volatile u32 tls_word[LGUEST_MAX_VCPUS];
static u32 ncpus = 1;

/* ---- atomic operations (i486 instructions: lguest-ts emulates them, and LOCK makes them atomic across
 * vCPUs) ---- */
static inline u32 xadd(volatile u32 *p, u32 v)
{
	asm volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

static inline void locked_inc(volatile u32 *p)
{
	asm volatile("lock incl %0" : "+m"(*p) :: "memory");
}

static inline u32 cmpxchg(volatile u32 *p, u32 old, u32 new)
{
	u32 prev;
	asm volatile("lock cmpxchgl %2, %1" : "=a"(prev), "+m"(*p) : "r"(new), "0"(old) : "memory");
	return prev;
}

/* XCHG with memory is locked without a prefix. */
static inline u32 xchg(volatile u32 *p, u32 v)
{
	asm volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

/* Publishing a flag another vCPU acts on, and reading one: locked instructions, so they are ordered with
 * everything around them on any Host (a plain store and load would do on x86 itself). */
static inline void publish(volatile u32 *p, u32 v) { xchg(p, v); }
static inline u32 locked_read(volatile u32 *p) { return xadd(p, 0); }

/* A lock that stays taken this long was lost (a release overwritten: XCHG not atomic?): say so instead
 * of spinning for ever. About two seconds of spinning at 100 MIPS, far beyond any holder's time slice. */
static noreturn void lock_stuck(void)
{
	u32 id = vcpu_self();
	if (id)
		vcpu_shutdown(id, "smp: vCPU %u: the spinlock stayed taken for %u spins", id, SPIN_LIMIT);
	check(0, "smp: the spinlock stayed taken for %u spins", SPIN_LIMIT);
	power_off();
}

static void spin_lock(volatile u32 *lock)
{
	while (xchg(lock, 1)) {
		u32 spins = 0;
		while (*lock)
			if (++spins == SPIN_LIMIT)
				lock_stuck();
	}
}

static void spin_unlock(volatile u32 *lock)
{
	asm volatile("movl $0, %0" : "=m"(*lock) :: "memory");
}

/* ---- the counters (check 3, 4): every vCPU runs this, vCPU 0 included ---- */
static volatile u32 count_xadd, count_inc, count_cas, count_locked, count_lock;

static void do_work(struct secondary *me)
{
	u64 sum = 0;
	u32 retries = 0;
	for (u32 i = 0; i < WORK_ITERS; i++) {
		sum += xadd(&count_xadd, 1);
		locked_inc(&count_inc);
		for (;;) {
			u32 old = count_cas;
			if (cmpxchg(&count_cas, old, old + 1) == old)
				break;
			retries++;
		}
		spin_lock(&count_lock);
		/* A plain read, increment and write: only the lock keeps two vCPUs out of it. */
		asm volatile("movl %0, %%eax\n\t"
			     "incl %%eax\n\t"
			     "movl %%eax, %0"
			     : "+m"(count_locked) :: "eax", "memory");
		spin_unlock(&count_lock);
	}
	me->xadd_sum = sum;
	me->cas_retries = retries;
}

/* ---- the TLB shootdown reader (check 6) ---- */
static volatile u32 remapped;

static u32 fill_word(u32 round)
{
	return 0x41414141u + round * 0x01010101u;   /* "AAAA", "BBBB", "CCCC" */
}

/* Read V in a loop, so the translation stays cached in this vCPU's TLB, until vCPU 0 has remapped it:
 * the flag first, then V. Once the flag is set the new frame must show; the old one would mean the
 * remap had not reached this TLB when the hypercall that made it returned. We flush nothing ourselves,
 * and make no hypercall after the first read of the old frame. */
static void tlb_reader(struct secondary *me, u32 round)
{
	volatile u32 *va = (volatile u32 *)SHOOT_VA;
	u32 oldv = fill_word(round), newv = fill_word(round + 1);
	u32 old_reads = 0, stale = 0, odd = 0, saw_new = 0, told = 0;
	for (;;) {
		u32 flag = locked_read(&remapped);
		u32 x = *va;
		if (!flag) {
			if (x == oldv)
				old_reads++;
			else if (x != newv)   /* the new frame may show before the flag: fine */
				odd++;
		} else {
			if (x == newv) {
				saw_new = 1;
				break;
			}
			if (x == oldv)
				stale++;
			else
				odd++;
		}
		if (stale + odd >= STALE_LIMIT)
			break;
		if (!told && (old_reads || odd)) {
			told = 1;
			publish(&me->tlb_ready, 1);
			hcall_send_ipi(0, IPI_TO0_IRQ);
		}
	}
	me->old_reads = old_reads;
	me->stale_reads = stale;
	me->odd_reads = odd;
	me->saw_new = saw_new;
	if (!told)
		publish(&me->tlb_ready, 1);
}

/* ---- a secondary ---- */

/* Every interrupt a secondary takes: count it, and note whether it ended a HALT. */
static void secondary_irq(u32 id, u32 irq, struct trap_frame *f)
{
	struct secondary *me = &sec[id];
	me->irqs[irq]++;
	if (f->eip != (u32)vcpu_halt_resume)
		me->irqs_not_from_halt++;
}

static void load_own_tls(u32 id, u32 desc[GDT_ENTRY_TLS_ENTRIES * 2])
{
	tls_word[id] = TLS_MAGIC + id;
	memset(desc, 0, GDT_ENTRY_TLS_ENTRIES * 2 * sizeof(u32));
	make_segment((u32)&tls_word[id], sizeof(u32) - 1, SEG_TYPE_DATA_RW, 3, desc);
}

static u32 read_gs0(void)
{
	u32 v;
	asm volatile("movl %%gs:0, %0" : "=r"(v) :: "memory");
	return v;
}

static void load_gs_tls(void)
{
	asm volatile("movl %0, %%gs" :: "r"(TLS_SEL(0)) : "memory");
}

static void run_command(u32 id, struct secondary *me, u32 cmd, u32 arg)
{
	switch (cmd) {
	case CMD_WORK:
		do_work(me);
		break;
	case CMD_IPI:        /* the handler counted it */
		break;
	case CMD_BLOCKED: {  /* IPI_BLOCKED_IRQ was sent before IPI_IRQ: it must wait until unblocked */
		u32 before = me->irqs[IPI_BLOCKED_IRQ];
		me->blocked_early = before;
		vcpu_irq_unblock(id, IPI_BLOCKED_IRQ);
		while (me->irqs[IPI_BLOCKED_IRQ] == before) {
			vcpu_halt();
			vcpu_irq_disable(id);
		}
		vcpu_irq_block(id, IPI_BLOCKED_IRQ);
		break;
	}
	case CMD_TLB:
		tlb_reader(me, arg);
		break;
	case CMD_TLS:
		me->tls_value = read_gs0();
		break;
	case CMD_XCODE:
		me->xcode_value[arg] = ((u32 (*)(void))xcode_page)();
		break;
	case CMD_FAULT:
		asm volatile("xorl %%ecx, %%ecx\n\tdivl %%ecx" ::: "eax", "ecx", "edx");
		break;
	case CMD_BADHCALL:
		hcall(99, 0, 0, 0, 0);
		break;
	}
}

/* G:smp-secondary What each secondary runs once vcpu.c has set it up (interrupts off): its own TLS
 * entry, one tick of its own clock, then commands until it is parked. */
static void secondary_main(u32 id)
{
	struct secondary *me = &sec[id];
	load_own_tls(id, me->tls_desc);
	vcpu_load_tls(me->tls_desc);
	load_gs_tls();

	vcpu_irq_unblock(id, LGUEST_TIMER_IRQ);
	hcall(LHCALL_SET_CLOCKEVENT, TICK_NS, 0, 0, 0);
	while (!me->irqs[LGUEST_TIMER_IRQ]) {
		vcpu_halt();
		vcpu_irq_disable(id);
	}
	vcpu_irq_block(id, LGUEST_TIMER_IRQ);
	volatile struct lguest_timespec *t = &vcpu_data(id)->time;
	me->time_written = t->tv_sec || t->tv_nsec;

	vcpu_irq_unblock(id, IPI_IRQ);
	publish(&me->up, 1);
	hcall_send_ipi(0, IPI_TO0_IRQ);

	/* Interrupts are on only inside vcpu_halt, so every IPI ends a HALT. A command runs once its IPI has
	 * been taken (not merely once seq moved), so the count is final before the command is done; vCPU 0
	 * sends one IPI per command, after publishing it, and none before the last one is done. */
	u32 taken = 0, seen = 0;
	for (;;) {
		vcpu_irq_disable(id);
		if (me->irqs[IPI_IRQ] == taken) {
			vcpu_halt();
			continue;
		}
		taken = me->irqs[IPI_IRQ];
		u32 seq = me->seq;
		if (seq == seen)      /* an IPI with no new command: the IPI check will count it */
			continue;
		seen = seq;
		u32 cmd = me->cmd;
		if (cmd == CMD_PARK) {
			publish(&me->done, seq);
			hcall_send_ipi(0, IPI_TO0_IRQ);
			vcpu_park(id);
		}
		run_command(id, me, cmd, me->arg);
		publish(&me->done, seq);
		hcall_send_ipi(0, IPI_TO0_IRQ);
	}
}

/* A start address whose first hypercall is not LGUEST_INIT (FLUSH_TLB): misbehave's `noinit`, and what
 * a vCPU that should not exist is started at. */
asm(".pushsection .text\n"
    ".globl smp_noinit_entry\n"
    "smp_noinit_entry:\n\t"
    "movl $" STR(LHCALL_FLUSH_TLB) ", %eax\n\t"
    "movl $1, %ebx\n\t"
    "int $" STR(LGUEST_TRAP_ENTRY) "\n"
    "1:\tjmp 1b\n"
    ".popsection\n");
extern const char smp_noinit_entry[];
static u32 spare_stack[64];

/* ---- vCPU 0 ---- */

static noreturn void fail_timeout(const char *what)
{
	for (u32 id = 1; id < ncpus; id++) {
		struct secondary *s = &sec[id];
		printk("smp: vCPU %u: up %u, seq %u, done %u, IPIs sent %u, taken %u, TLB ready %u\n", id, s->up,
		       s->seq, s->done, s->ipis_sent, s->irqs[IPI_IRQ], s->tlb_ready);
	}
	check(0, "smp: timed out waiting for %s", what);
	power_off();
}

/* G:smp-wait Wait, halted, until cond() holds: the secondaries wake us with IPI_TO0_IRQ. A 1 s tick
 * wakes us too, and after WATCHDOG_TICKS of them we give up and say what we were waiting for. */
static void wait_for(int (*cond)(void), const char *what)
{
	if (cond())
		return;
	u32 start = clock_ticks;
	clock_set_periodic(WATCHDOG_NS);
	for (;;) {
		irq_disable();
		if (cond())
			break;
		if (clock_ticks - start >= WATCHDOG_TICKS) {
			clock_cancel();
			irq_enable();
			fail_timeout(what);
		}
		halt();
	}
	clock_cancel();
	irq_enable();
}

static void send_cmd(u32 id, u32 cmd, u32 arg)
{
	struct secondary *s = &sec[id];
	s->cmd = cmd;
	s->arg = arg;
	publish(&s->seq, s->seq + 1);
	s->ipis_sent++;
	hcall_send_ipi(id, IPI_IRQ);
}

static void send_all(u32 cmd, u32 arg)
{
	for (u32 id = 1; id < ncpus; id++)
		send_cmd(id, cmd, arg);
}

static int all_up(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (!sec[id].up)
			return 0;
	return 1;
}

static int all_done(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (sec[id].done != sec[id].seq)
			return 0;
	return 1;
}

static int all_tlb_ready(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (!sec[id].tlb_ready)
			return 0;
	return 1;
}

/* Check 1: start 1, 2, ... until the Host says there is no such vCPU. One beyond what we have room for
 * is asked at a start address that would get it killed, so a Host that says yes is caught either way. */
static u32 start_secondaries(void)
{
	u32 n = 1;
	for (u32 id = 1;; id++) {
		u32 r;
		if (id < LGUEST_MAX_VCPUS)
			r = vcpu_start(id, secondary_main);
		else
			r = hcall_vcpu_start(id, (u32)smp_noinit_entry, (u32)&spare_stack[ARRAY_SIZE(spare_stack)]);
		if (r == VCPU_START_NO_SUCH_VCPU)
			break;
		if (r != VCPU_START_OK || id >= LGUEST_MAX_VCPUS)
			check(0, "smp: VCPU_START of vCPU %u returned %u", id, r);
		n++;
	}
	return n;
}

static void check_bringup(void)
{
	wait_for(all_up, "every secondary to come up");
	int ok = 1, ticked = 1;
	for (u32 id = 1; id < ncpus; id++) {
		ok &= vcpu_start_eax[id] == id;
		ticked &= sec[id].irqs[LGUEST_TIMER_IRQ] == 1 && sec[id].time_written;
	}
	check(ok, "every secondary came up: LGUEST_INIT with its own lguest_data, its id in EAX");
	check(ticked, "every secondary took one tick of its own clock through its own IDT (time written)");
}

static void check_counters(void)
{
	send_all(CMD_WORK, 0);
	do_work(&sec[0]);
	wait_for(all_done, "the counters");
	u32 total = ncpus * WORK_ITERS;
	u64 sum = 0;
	for (u32 id = 0; id < ncpus; id++)
		sum += sec[id].xadd_sum;
	check(count_xadd == total && sum == ((u64)total * (total - 1)) / 2,
	      "lock xaddl: %u adds per vCPU, total exact, old values sum to 0+1+...+(total-1)", WORK_ITERS);
	check(count_inc == total, "lock incl: %u per vCPU, total exact", WORK_ITERS);
	check(count_cas == total, "lock cmpxchgl retry loop: %u increments per vCPU, total exact", WORK_ITERS);
	check(count_locked == total && count_lock == 0,
	      "xchg spinlock around a plain read-increment-write: %u per vCPU, total exact", WORK_ITERS);
}

/* Check 5: each round sends every secondary one IPI and waits until all have answered, so no two IPIs
 * to one vCPU are ever outstanding (they would merge into one pending bit) and each must run the
 * handler exactly once, at vcpu_halt_resume. */
static void check_ipis(void)
{
	for (u32 r = 0; r < IPI_ROUNDS; r++) {
		send_all(CMD_IPI, r);
		wait_for(all_done, "IPI answers");
	}
	int ok = 1;
	for (u32 id = 1; id < ncpus; id++)
		ok &= sec[id].irqs[IPI_IRQ] == sec[id].ipis_sent && sec[id].irqs_not_from_halt == 0;
	check(ok, "IPIs: %u rounds; each IPI woke its secondary from HALT and ran its handler once", IPI_ROUNDS);

	for (u32 id = 1; id < ncpus; id++) {
		hcall_send_ipi(id, IPI_BLOCKED_IRQ);
		send_cmd(id, CMD_BLOCKED, 0);
	}
	wait_for(all_done, "the blocked IPI");
	ok = 1;
	for (u32 id = 1; id < ncpus; id++)
		ok &= sec[id].blocked_early == 0 && sec[id].irqs[IPI_BLOCKED_IRQ] == 1 &&
		      sec[id].irqs_not_from_halt == 0;
	check(ok, "an IPI to a blocked IRQ waited, and was delivered once unblocked");
}

/* Check 6: round 0 remaps V from frame 0 to frame 1 with SET_PTE; round 1 from frame 1 to frame 2 by
 * replacing the page table above it (2-level SET_PGD, PAE SET_PMD). */
static void *shoot_frame[SHOOT_FRAMES];

static void tlb_round(u32 round, const char *how)
{
	publish(&remapped, 0);
	for (u32 id = 1; id < ncpus; id++)
		sec[id].tlb_ready = 0;
	send_all(CMD_TLB, round);
	wait_for(all_tlb_ready, "the TLB readers");
	void *next = shoot_frame[round + 1];
	if (round == 0) {
		mm_map(&kernel_mm, SHOOT_VA, __pa(next), KERN_RW_AD);
	} else {
		pte_t *table = page_alloc();
		table[(SHOOT_VA >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)] = __pa(next) | _PAGE_PRESENT | KERN_RW_AD;
		mm_set_table_entry(&kernel_mm, SHOOT_VA, __pa(table) | _KERNPG_TABLE);
	}
	publish(&remapped, 1);
	u32 mine = *(volatile u32 *)SHOOT_VA;
	wait_for(all_done, "the TLB readers to see the remap");
	int ok = mine == fill_word(round + 1);
	for (u32 id = 1; id < ncpus; id++) {
		struct secondary *s = &sec[id];
		ok &= s->old_reads > 0 && s->stale_reads == 0 && s->odd_reads == 0 && s->saw_new;
		if (s->stale_reads || s->odd_reads)
			printk("smp: vCPU %u read the old frame %u times and others %u times after the %s remap\n",
			       id, s->stale_reads, s->odd_reads, how);
	}
	check(ok, "TLB shootdown (%s): no secondary read the old frame after the remap; all read the new", how);
}

static void check_tlb(void)
{
	for (u32 i = 0; i < SHOOT_FRAMES; i++) {
		shoot_frame[i] = page_alloc();
		memset(shoot_frame[i], 'A' + i, PAGE_SIZE);
	}
	mm_map(&kernel_mm, SHOOT_VA, __pa(shoot_frame[0]), KERN_RW_AD);
	tlb_round(0, "SET_PTE");
#ifdef CONFIG_PAE
	tlb_round(1, "SET_PMD");
#else
	tlb_round(1, "SET_PGD");
#endif
}

static void check_tls(void)
{
	send_all(CMD_TLS, 0);
	wait_for(all_done, "the TLS reads");
	int ok = read_gs0() == TLS_MAGIC;
	for (u32 id = 1; id < ncpus; id++)
		ok &= sec[id].tls_value == TLS_MAGIC + id;
	check(ok, "per-vCPU GDT: every vCPU's TLS segment (%%gs:0) is its own");
}

/* Cross-modifying code: vCPU 0 writes a function (so its TLB holds a writable entry for the page before
 * anyone ran code there), the secondaries run it, vCPU 0 rewrites its immediate, the secondaries run it
 * again after the IPI (an interrupt and IRET serialize, as the SDM asks of the executing CPU) and must see
 * the new instructions, not the blocks they decoded the first time. */
static void check_xcode(void)
{
	static const u8 fn[] = { 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3 }; /* movl $1, %eax; ret */
	memcpy(xcode_page, fn, sizeof(fn));
	send_all(CMD_XCODE, 0);
	wait_for(all_done, "the first run of the written code");
	*(volatile u32 *)&xcode_page[1] = 2;                            /* movl $2, %eax */
	send_all(CMD_XCODE, 1);
	wait_for(all_done, "the run of the rewritten code");
	int ok = 1;
	for (u32 id = 1; id < ncpus; id++)
		ok &= sec[id].xcode_value[0] == 1 && sec[id].xcode_value[1] == 2;
	check(ok, "cross-modifying code: every secondary ran the instructions vCPU 0 rewrote, not its old copy");
}

static void park_all(void)
{
	send_all(CMD_PARK, 0);
	wait_for(all_done, "the secondaries to park");
	check(1, "every secondary parked");
}

/* ---- misbehaving (`smp=NAME`) ---- */
struct smp_case {
	const char *name;
	u32 need_cpus;   /* vCPUs the act needs */
	int async;       /* the kill comes from another vCPU: give it time */
	const char *what;
};

static const struct smp_case cases[] = {
	{ "bad-start", 2, 0, "VCPU_START of vCPU 1 a second time" },
	{ "start0",    1, 0, "VCPU_START of vCPU 0" },
	{ "bad-ipi",   1, 0, "SEND_IPI to vCPU 99" },
	{ "bad-irq",   1, 0, "SEND_IPI of IRQ 32" },
	{ "noinit",    2, 1, "vCPU 1's first hypercall is FLUSH_TLB, not LGUEST_INIT" },
	{ "sec-hcall", 2, 1, "vCPU 1 makes hypercall 99" },
	{ "sec-fault", 2, 1, "vCPU 1 divides by zero (its handler shuts the guest down)" },
};

static char case_name[32];

static const struct smp_case *find_case(void)
{
	if (!cmdline_value("smp", case_name, sizeof(case_name)))
		return NULL;
	for (u32 i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, case_name))
			return &cases[i];
	printk("smp: unknown smp=%s; cases:", case_name);
	for (u32 i = 0; i < ARRAY_SIZE(cases); i++)
		printk(" %s", cases[i].name);
	printk("\n");
	hcall_shutdown("FAIL: smp: unknown smp= case", LGUEST_SHUTDOWN_POWEROFF);
}

static noreturn void survived(const struct smp_case *c)
{
	if (c->async) {
		u32 start = clock_ticks;
		clock_set_periodic(WATCHDOG_NS);
		irq_disable();
		while (clock_ticks - start < LINGER_TICKS) {
			halt();
			irq_disable();
		}
	}
	char msg[64];
	snprintf(msg, sizeof(msg), "FAIL: smp: survived smp=%s", c->name);
	printk("%s\n", msg);
	hcall_shutdown(msg, LGUEST_SHUTDOWN_POWEROFF);
}

static noreturn void misbehave(const struct smp_case *c)
{
	if (ncpus < c->need_cpus) {
		char msg[64];
		snprintf(msg, sizeof(msg), "FAIL: smp: smp=%s needs --cpus %u or more", c->name, c->need_cpus);
		printk("%s\n", msg);
		hcall_shutdown(msg, LGUEST_SHUTDOWN_POWEROFF);
	}
	printk("smp: misbehave %s: %s\n", c->name, c->what);
	if (!strcmp(c->name, "bad-start"))
		hcall_vcpu_start(1, (u32)vcpu_entry, (u32)(vcpu_stacks[1] + VCPU_STACK_SIZE));
	else if (!strcmp(c->name, "start0"))
		hcall_vcpu_start(0, (u32)smp_noinit_entry, (u32)&spare_stack[ARRAY_SIZE(spare_stack)]);
	else if (!strcmp(c->name, "bad-ipi"))
		hcall_send_ipi(99, IPI_IRQ);
	else if (!strcmp(c->name, "bad-irq"))
		hcall_send_ipi(0, LGUEST_IRQS);
	else if (!strcmp(c->name, "sec-hcall"))
		send_cmd(1, CMD_BADHCALL, 0);
	else if (!strcmp(c->name, "sec-fault"))
		send_cmd(1, CMD_FAULT, 0);
	survived(c);
}

void guest_main(void)
{
#ifdef CONFIG_PAE
	printk("smp: VCPU_START, SEND_IPI, atomics and TLB shootdown (paging: PAE)\n");
#else
	printk("smp: VCPU_START, SEND_IPI, atomics and TLB shootdown (paging: 2-level)\n");
#endif
	const struct smp_case *c = find_case();
	clock_init();                                   /* wait_for's watchdog */
	irq_unblock(IPI_TO0_IRQ);                       /* it only wakes us: no handler */
	irq_enable();
	/* A secondary takes these three; any other interrupt there shuts the guest down (vcpu.c). */
	vcpu_irq_handlers[LGUEST_TIMER_IRQ] = secondary_irq;
	vcpu_irq_handlers[IPI_IRQ] = secondary_irq;
	vcpu_irq_handlers[IPI_BLOCKED_IRQ] = secondary_irq;

	/* vCPU 0's own TLS entry before any secondary loads one: with one GDT for all, it would be lost. */
	load_own_tls(0, sec[0].tls_desc);
	load_tls(sec[0].tls_desc);
	load_gs_tls();

	if (c && !strcmp(c->name, "noinit")) {
		printk("smp: misbehave %s: %s\n", c->name, c->what);
		if (hcall_vcpu_start(1, (u32)smp_noinit_entry, (u32)&spare_stack[ARRAY_SIZE(spare_stack)]) !=
		    VCPU_START_OK) {
			printk("FAIL: smp: smp=noinit needs --cpus 2 or more\n");
			hcall_shutdown("FAIL: smp: smp=noinit needs --cpus 2 or more", LGUEST_SHUTDOWN_POWEROFF);
		}
		survived(c);
	}

	ncpus = start_secondaries();
	printk("smp: vcpus: %u\n", ncpus);
	if (ncpus > 1)
		check_bringup();
	if (c)
		misbehave(c);
	if (ncpus == 1) {
		printk("smp: one vCPU: nothing to check across vCPUs\n");
	} else {
		check_counters();
		check_ipis();
		check_tlb();
		check_tls();
		check_xcode();
		park_all();
	}
	printk("smp: done\n");
	power_off();
}

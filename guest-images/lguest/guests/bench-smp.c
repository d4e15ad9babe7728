/* bench-smp: the CPU-bound benchmark workload (bench/workload/workload.c) on every vCPU at once, to measure
 * how the lguest-ts SMP extension scales (bench/run.ts's bench-smp rows). Run with
 *
 *   lguest-ts run bench-smp --cpus N --cmdline iters=I
 *
 * Every vCPU, vCPU 0 included, runs I iterations of the workload (default WORKLOAD_DEFAULT_ITERATIONS),
 * independently and concurrently, with interrupts off. The workload is not reentrant: it keeps its list
 * pool, matrices and parse buffer in static arrays. So each vCPU runs its own copy of it: vCPU 0 the very
 * object bench-lguest and the bare bench.elf link (build/obj/workload/workload.o), vCPU n >= 1 a copy of
 * that object made by objcopy (lguest.mk: its entry renamed workload_run_vcpuN, everything else made
 * local), so the same instructions on data of its own. Each vCPU has its own stack (vCPU 0 the boot
 * stack, the secondaries vcpu.c's) and its own struct vcpu_result.
 *
 * vCPU 0 starts vCPUs 1, 2, ... (runtime/vcpu.c) until VCPU_START says there is no such vCPU, runs its own
 * share, then waits with HALT until every secondary has published its result and sent it IPI_DONE_IRQ (no
 * spinning, as in smp.c; no watchdog either: a run may take minutes, and the Launcher's --timeout is
 * there). A finished secondary parks (every IRQ blocked, HALT). Then vCPU 0 checks that every vCPU's
 * checksum equals the reference for I iterations (the workload's own table; for a count with no
 * reference, vCPU 0's) and that every self-check passed, prints one line per vCPU and powers off.
 *
 * Expected output for --cpus 2 --cmdline iters=10 (bench-smp-pae.elf the same but "paging: PAE"):
 *   bench-smp: the lguest-ts CPU workload on every vCPU at once (paging: 2-level)
 *   bench-smp: vcpus: 2, iterations: 10 each
 *   bench-smp: vCPU 0: checksum 0x061e6e72, self-checks 210 passed, 0 failed
 *   bench-smp: vCPU 1: checksum 0x061e6e72, self-checks 210 passed, 0 failed
 *   check: every vCPU's checksum is the reference for 10 iterations (0x061e6e72): ok
 *   check: every vCPU passed its self-checks: ok
 *   bench-smp: done
 * A count with no reference says "check: every vCPU's checksum is vCPU 0's (no reference for I
 * iterations): ok". A failed check shuts down with "FAIL: WHAT" (runtime/console.c). */
#include "bench.h"
#include "workload.h"

#define IPI_DONE_IRQ 6   /* a secondary -> vCPU 0: its result is published */

/* vCPU n's copy of the workload (n = 1 .. LGUEST_MAX_VCPUS - 1, made by lguest.mk). */
typedef void workload_run_fn(uint32_t iterations, struct workload_result *r);
extern workload_run_fn workload_run_vcpu1, workload_run_vcpu2, workload_run_vcpu3, workload_run_vcpu4,
	workload_run_vcpu5, workload_run_vcpu6, workload_run_vcpu7;
_Static_assert(LGUEST_MAX_VCPUS == 8, "lguest.mk makes one workload copy per secondary: 1..7");
static workload_run_fn *const run_on[LGUEST_MAX_VCPUS] = {
	workload_run, workload_run_vcpu1, workload_run_vcpu2, workload_run_vcpu3, workload_run_vcpu4,
	workload_run_vcpu5, workload_run_vcpu6, workload_run_vcpu7,
};

/* One per vCPU, each in its own 64-byte line: a vCPU writes only its own. */
struct vcpu_result {
	struct workload_result r;
	volatile u32 done;
} __attribute__((aligned(64)));
static struct vcpu_result results[LGUEST_MAX_VCPUS];
static u32 iterations;   /* written by vCPU 0 before it starts anyone; read-only afterwards */
static u32 ncpus = 1;

/* XCHG with memory is locked without a prefix: it orders the result's stores before the flag, on any
 * Host, and the flag's read in all_done() after them (as smp.c's publish and locked_read). */
static inline u32 xchg(volatile u32 *p, u32 v)
{
	asm volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

static inline u32 locked_read(volatile u32 *p)
{
	u32 v = 0;
	asm volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

void workload_print(const char *s)
{
	console_write(s, strlen(s));
}

/* What each secondary runs (vcpu.c: interrupts off, its own stack); it parks when this returns. */
static void secondary_main(u32 id)
{
	run_on[id](iterations, &results[id].r);
	xchg(&results[id].done, 1);
	hcall_send_ipi(0, IPI_DONE_IRQ);
}

static int all_done(void)
{
	for (u32 id = 1; id < ncpus; id++)
		if (!locked_read(&results[id].done))
			return 0;
	return 1;
}

void guest_main(void)
{
#ifdef CONFIG_PAE
	printk("bench-smp: the lguest-ts CPU workload on every vCPU at once (paging: PAE)\n");
#else
	printk("bench-smp: the lguest-ts CPU workload on every vCPU at once (paging: 2-level)\n");
#endif
	iterations = bench_option("iters", WORKLOAD_DEFAULT_ITERATIONS);
	/* IPI_DONE_IRQ only ends vCPU 0's HALT (an IRQ with no handler is ignored); interrupts stay off
	 * (irq_enabled 0 since boot) except inside that HALT. */
	irq_unblock(IPI_DONE_IRQ);
	barrier();
	for (u32 id = 1; id < LGUEST_MAX_VCPUS; id++) {
		u32 r = vcpu_start(id, secondary_main);
		if (r == VCPU_START_NO_SUCH_VCPU)
			break;
		if (r != VCPU_START_OK)
			check(0, "bench-smp: VCPU_START of vCPU %u returned %u", id, r);
		ncpus++;
	}
	printk("bench-smp: vcpus: %u, iterations: %u each\n", ncpus, iterations);

	run_on[0](iterations, &results[0].r);

	for (;;) {
		irq_disable();
		if (all_done())
			break;
		halt();   /* returns after an interrupt was delivered, with interrupts on */
	}
	irq_disable();

	u32 expected;
	int known = workload_reference(iterations, &expected);
	if (!known)
		expected = results[0].r.checksum;
	int same = 1, passed = 1;
	for (u32 id = 0; id < ncpus; id++) {
		struct workload_result *r = &results[id].r;
		printk("bench-smp: vCPU %u: checksum 0x%08x, self-checks %u passed, %u failed\n", id, r->checksum,
		       r->checks_passed, r->checks_failed);
		same &= r->iterations == iterations && r->checksum == expected;
		passed &= r->checks_failed == 0 && r->checks_passed == results[0].r.checks_passed;
	}
	if (known)
		check(same, "every vCPU's checksum is the reference for %u iterations (0x%08x)", iterations, expected);
	else
		check(same, "every vCPU's checksum is vCPU 0's (no reference for %u iterations)", iterations);
	check(passed, "every vCPU passed its self-checks");
	printk("bench-smp: done\n");
	power_off();
}

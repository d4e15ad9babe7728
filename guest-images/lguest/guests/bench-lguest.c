/* bench-lguest: the CPU-bound benchmark workload (bench/workload/workload.c) as an lguest guest, the
 * same source (and the same object file) as the bare kernel build/bench.elf, so the two run the same
 * instruction stream and bench/run.ts can compare lguest mode with the bare machine.
 *
 *   lguest-ts run bench-lguest --cmdline iters=N
 *
 * Reads iters=N from the command line (default WORKLOAD_DEFAULT_ITERATIONS), runs the workload with
 * interrupts off (no timer: nothing but the workload runs), prints its report (checksum, PASS/FAIL)
 * and powers off; a FAIL shuts down with the message "FAIL: bench-lguest". */
#include "bench.h"
#include "workload.h"

void workload_print(const char *s)
{
	console_write(s, strlen(s));
}

void guest_main(void)
{
	struct workload_result result;
	u32 iterations = bench_option("iters", WORKLOAD_DEFAULT_ITERATIONS);
	printk("bench: the lguest-ts CPU workload, lguest guest\n");
	workload_run(iterations, &result);
	if (workload_report(&result) != 0)
		hcall_shutdown("FAIL: bench-lguest", LGUEST_SHUTDOWN_POWEROFF);
	power_off();
}

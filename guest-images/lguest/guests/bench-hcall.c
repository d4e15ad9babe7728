/* bench-hcall: hypercall round trips for bench/run.ts. Makes N synchronous SEND_INTERRUPTS hypercalls
 * (the cheapest: the Host does nothing but the exit itself, draining the empty async ring and looking
 * for interrupts), one after another, then powers off.
 *
 *   lguest-ts run bench-hcall --cmdline calls=N        (default 10000)
 *
 * The Host counts them (--stats-json: hypercalls.SEND_INTERRUPTS); bench/run.ts times a run with N and
 * one with 0 and divides. */
#include "bench.h"

void guest_main(void)
{
	u32 calls = bench_option("calls", 10000);
	printk("bench-hcall: %u synchronous SEND_INTERRUPTS hypercalls\n", calls);
	for (u32 i = 0; i < calls; i++)
		hcall(LHCALL_SEND_INTERRUPTS, 0, 0, 0, 0);
	check(lguest_data.irq_enabled == 0, "interrupts still off after %u hypercalls", calls);
	printk("bench-hcall: done\n");
	power_off();
}

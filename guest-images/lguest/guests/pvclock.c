/* pvclock: the paravirtual-clock experiment (examples/plugins/host-clock.mjs, `lguest-ts run pvclock
 * --plugin examples/plugins/host-clock.mjs`). The plug-in serves two hypercalls of the experiment range:
 *   HOST_TIME_NS (0x1000): the Host's wall clock in nanoseconds since the epoch, 64 bits in EDX:EAX;
 *   SET_TICK (0x1001): arg1 = period in microseconds; from then on the plug-in raises virtual IRQ 0 every
 *                     period (it watches the world switches out of the guest and compares the Host's
 *                     clock, so the guest polls the clock while it waits: a HALTed guest makes none).
 * The guest checks that the 64-bit clock is monotonic and agrees with lguest_data.time, which the Host
 * writes itself, and that ticks arrive. Without the plug-in the first call kills the guest ("Bad hypercall
 * 4096"): the experiment range belongs to plug-ins. */
#include "kernel.h"

#define HOST_TIME_NS 0x1000
#define SET_TICK     0x1001

static volatile u32 ticks;

static void on_tick(struct trap_frame *f)
{
	(void)f;
	ticks++;
}

void guest_main(void)
{
	printk("pvclock: the Host's clock through a plug-in hypercall\n");
	u64 t0 = hcall64(HOST_TIME_NS, 0, 0, 0, 0);
	u64 t1 = hcall64(HOST_TIME_NS, 0, 0, 0, 0);
	check(t0 > 1600000000ull * 1000000000ull, "HOST_TIME_NS is a 64-bit time after 2020 (%llu s)",
	      udivmod64(t0, 1000000000u, 0));
	check(t1 >= t0, "HOST_TIME_NS is monotonic (%llu ns between two calls)", t1 - t0);
	/* lguest_data.time is written by the Host at LGUEST_INIT and at each interrupt: the same clock. */
	u32 sec = lguest_data.time.tv_sec;
	u64 t1s = udivmod64(t1, 1000000000u, 0);
	check(t1s >= sec && t1s - sec < 60, "agrees with lguest_data.time (%u s) within a minute", sec);

	set_trap_handler(FIRST_EXTERNAL_VECTOR + LGUEST_TIMER_IRQ, on_tick);
	irq_unblock(LGUEST_TIMER_IRQ);
	irq_enable();
	hcall(SET_TICK, 2000, 0, 0, 0); /* every 2 ms */
	u64 start = hcall64(HOST_TIME_NS, 0, 0, 0, 0);
	while (ticks < 5) {
		if (hcall64(HOST_TIME_NS, 0, 0, 0, 0) - start > 5000000000ull)
			break;
	}
	hcall(SET_TICK, 0, 0, 0, 0);
	check(ticks >= 5, "the plug-in's tick arrived %u times as virtual IRQ 0", ticks);
	printk("pvclock: done\n");
	power_off();
}

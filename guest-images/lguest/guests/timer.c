/* timer: clock events (SET_CLOCKEVENT), halting until an interrupt (HALT), the virtual interrupt flag
 * with irq_pending and SEND_INTERRUPTS, and blocked_interrupts. Ends with "timer: done".
 *
 * Every check is independent of how fast the Host runs: times are compared only as lower bounds
 * (a tick re-armed for P ns cannot arrive sooner than P ns after the previous one, and the Host writes
 * lguest_data.time at each delivery), and spins only give the Host a chance to misbehave. */
#include "kernel.h"

#define TICK_NS      1000000u    /* 1 ms */
#define TICKS        10
#define SHORT_NS     10000000u   /* 10 ms: an event we cancel or replace right after arming it */
#define LONG_NS      50000000u   /* 50 ms */
#define SPIN_LIMIT   (1u << 26)  /* iterations we wait for the Host to mark an interrupt pending */
#define SHORT_SPIN   (1u << 20)

static volatile u32 tick_time_us[TICKS];
static volatile u32 recorded;

/* Runs in the timer interrupt after the handler re-armed the clock: note the time, and stop the
 * periodic tick from inside the handler once we have TICKS of them, so no further tick can arrive
 * before the test looks at the count. */
static void record_tick_time(struct trap_frame *f)
{
	(void)f;
	if (recorded < ARRAY_SIZE(tick_time_us))
		tick_time_us[recorded++] = lguest_time_us();
	if (recorded == TICKS)
		clock_cancel();
}

static void test_periodic(void)
{
	u32 start = clock_ticks, halts = 0, empty_halts = 0;
	recorded = 0;
	clock_tick_hook = record_tick_time;
	irq_disable();
	clock_set_periodic(TICK_NS);
	while (clock_ticks - start < TICKS) {
		u32 before = clock_ticks;
		halt();              /* returns with interrupts on, after a delivery */
		halts++;
		empty_halts += clock_ticks == before;
		irq_disable();
	}
	irq_enable();
	clock_tick_hook = NULL;
	u32 elapsed = tick_time_us[TICKS - 1] - tick_time_us[0];
	check(clock_ticks - start == TICKS, "%u timer interrupts counted", TICKS);
	/* Usually one tick per HALT; on a slow Host the next tick may also land between the return from
	 * HALT and our irq_disable, so only "no HALT returned without an interrupt" is certain. */
	check(empty_halts == 0 && halts <= TICKS, "every HALT returned after a timer interrupt");
	if (elapsed < (TICKS - 1) * (TICK_NS / 1000))
		printk("timer: %u ticks spanned only %u us\n", TICKS, elapsed);
	check(elapsed >= (TICKS - 1) * (TICK_NS / 1000),
	      "lguest_data.time advanced at least %u us over %u ticks of %u us", (TICKS - 1) * (TICK_NS / 1000),
	      TICKS, TICK_NS / 1000);
}

static void test_irq_pending(void)
{
	u32 before = clock_ticks, spins = 0;
	irq_disable();
	clock_oneshot(TICK_NS);
	while (!*(volatile u32 *)&lguest_data.irq_pending && spins < SPIN_LIMIT)
		spins++;
	u32 pending = *(volatile u32 *)&lguest_data.irq_pending;
	u32 during = clock_ticks - before;
	irq_enable();        /* sees irq_pending: SEND_INTERRUPTS */
	u32 after = clock_ticks - before;
	check(pending == X86_EFLAGS_IF, "Host set irq_pending while interrupts were off");
	check(during == 0, "no interrupt delivered while irq_enabled was 0");
	check(after == 1, "enabling interrupts delivered the pending tick (SEND_INTERRUPTS)");
	check(lguest_data.irq_pending == 0, "irq_pending cleared after delivery");
}

static void test_blocked(void)
{
	u32 before = clock_ticks;
	irq_block(LGUEST_TIMER_IRQ);
	clock_oneshot(TICK_NS);
	for (volatile u32 i = 0; i < SHORT_SPIN; i++)
		;
	hcall_send_interrupts();   /* an exit: the Host could deliver now, if it ignored the mask */
	check(clock_ticks == before, "blocked IRQ 0 not delivered");
	irq_disable();
	irq_unblock(LGUEST_TIMER_IRQ);
	halt();                    /* the tick is (or soon will be) pending and now deliverable */
	check(clock_ticks == before + 1, "IRQ 0 delivered once unblocked");
}

static void test_cancel_and_rearm(void)
{
	u32 before = clock_ticks;
	clock_oneshot(SHORT_NS);
	clock_cancel();
	for (volatile u32 i = 0; i < SHORT_SPIN; i++)
		;
	hcall_send_interrupts();
	check(clock_ticks == before, "cancelled clock event did not fire");

	/* Take one tick so lguest_data.time is fresh (the Host writes it at each delivery), then arm a
	 * 10 ms event and replace it at once with a 50 ms one: only the long one may fire. (The margin
	 * only has to cover the time between two hypercalls, on however slow a Host.) */
	irq_disable();
	clock_oneshot(TICK_NS);
	halt();
	before = clock_ticks;
	u32 t0 = lguest_time_us();
	irq_disable();
	clock_oneshot(SHORT_NS);
	clock_oneshot(LONG_NS);
	halt();
	u32 elapsed = lguest_time_us() - t0;
	check(clock_ticks == before + 1, "one interrupt for two arms");
	if (elapsed < LONG_NS / 1000)
		printk("timer: woke after only %u us\n", elapsed);
	check(elapsed >= LONG_NS / 1000, "re-arming replaced the earlier event (woke after >= %u us)",
	      LONG_NS / 1000);
}

void guest_main(void)
{
	printk("timer: clock events, HALT and virtual interrupts\n");
	check(lguest_data.blocked_interrupts[0] & (1u << LGUEST_TIMER_IRQ), "IRQ 0 blocked at boot");
	clock_init();
	check(!(lguest_data.blocked_interrupts[0] & (1u << LGUEST_TIMER_IRQ)), "IRQ 0 unblocked by clock_init");
	irq_enable();
	test_periodic();
	test_irq_pending();
	test_blocked();
	test_cancel_and_rearm();
	printk("timer: done\n");
	power_off();
}

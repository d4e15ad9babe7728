/* timer: clock events (SET_CLOCKEVENT), halting until an interrupt (HALT), the virtual interrupt flag
 * with irq_pending and SEND_INTERRUPTS, and blocked_interrupts. Ends with "timer: done".
 *
 * Every check is independent of how fast the Host runs: times are compared only as lower bounds
 * (a tick re-armed for P ns cannot arrive sooner than P ns after the previous one, and the Host writes
 * lguest_data.time at each delivery), and spins only give the Host a chance to misbehave. */
#include "kernel.h"

#define TICK_NS      1000000u    /* 1 ms */
#define TICKS        10
#define LONG_NS      30000000u   /* 30 ms */
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
	u32 start = clock_ticks, halts = 0;
	recorded = 0;
	clock_tick_hook = record_tick_time;
	irq_disable();
	clock_set_periodic(TICK_NS);
	while (clock_ticks - start < TICKS) {
		halt();              /* returns with interrupts on, after one delivery */
		halts++;
		irq_disable();
	}
	irq_enable();
	clock_tick_hook = NULL;
	u32 elapsed = tick_time_us[TICKS - 1] - tick_time_us[0];
	check(clock_ticks - start == TICKS, "%u timer interrupts counted", TICKS);
	check(halts == TICKS, "each HALT returned after exactly one timer interrupt (%u halts)", TICKS);
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
	clock_oneshot(TICK_NS);
	clock_cancel();
	for (volatile u32 i = 0; i < SHORT_SPIN; i++)
		;
	hcall_send_interrupts();
	check(clock_ticks == before, "cancelled clock event did not fire");

	/* Take one tick so lguest_data.time is fresh (the Host writes it at each delivery), then arm a
	 * short event and replace it with a long one: only the long one may fire. */
	irq_disable();
	clock_oneshot(TICK_NS);
	halt();
	before = clock_ticks;
	u32 t0 = lguest_time_us();
	irq_disable();
	clock_oneshot(TICK_NS);
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

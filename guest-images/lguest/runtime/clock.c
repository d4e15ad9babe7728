/* clock.c: the clock event device (SET_CLOCKEVENT), the timer interrupt, halt, and lguest_data.time.
 *
 * G:clock The Host offers one one-shot timer: SET_CLOCKEVENT(ns) raises virtual IRQ 0 (vector 32) that
 * many nanoseconds of wall-clock time later; 0 cancels it. For a periodic tick we re-arm it from the
 * interrupt handler. IRQ 0 starts blocked in lguest_data.blocked_interrupts (boot.c) and clock_init
 * unblocks it. */
#include "kernel.h"

volatile u32 clock_ticks;
void (*clock_tick_hook)(struct trap_frame *f);
static u32 period_ns;

static void timer_interrupt(struct trap_frame *f)
{
	clock_ticks++;
	if (period_ns)
		hcall_set_clockevent(period_ns);
	if (clock_tick_hook)
		clock_tick_hook(f);
}

void clock_init(void)
{
	set_trap_handler(FIRST_EXTERNAL_VECTOR + LGUEST_TIMER_IRQ, timer_interrupt);
	irq_unblock(LGUEST_TIMER_IRQ);
}

void clock_set_periodic(u32 ns)
{
	if (ns && ns < LG_CLOCK_MIN_DELTA)
		ns = LG_CLOCK_MIN_DELTA;
	period_ns = ns;
	hcall_set_clockevent(ns);
}

void clock_oneshot(u32 ns)
{
	if (ns < LG_CLOCK_MIN_DELTA)
		ns = LG_CLOCK_MIN_DELTA;
	period_ns = 0;
	hcall_set_clockevent(ns);
}

void clock_cancel(void)
{
	period_ns = 0;
	hcall_set_clockevent(0);
}

/* G:halt HALT sleeps until the Host can deliver an interrupt, and it delivers it as if we had done
 * "sti; hlt": interrupts come back on. Call it with interrupts off after deciding there is nothing to
 * do, so an interrupt that arrives between the decision and the HALT is not lost (the Host sees it
 * pending and does not sleep). On return the interrupt has been handled and interrupts are on. */
void halt(void)
{
	hcall_halt();
}

/* The Host rewrites lguest_data.time at LGUEST_INIT and on every interrupt delivery. Read it twice so
 * a delivery in the middle cannot tear it. */
u32 lguest_time_us(void)
{
	volatile struct lguest_timespec *t = &lguest_data.time;
	u32 sec, nsec;
	do {
		sec = t->tv_sec;
		nsec = t->tv_nsec;
	} while (sec != t->tv_sec);
	return sec * 1000000u + nsec / 1000u;
}

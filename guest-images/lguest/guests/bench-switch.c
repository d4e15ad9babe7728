/* bench-switch: context switches between ring-3 tasks, for bench/run.ts. Eight tasks (more address
 * spaces than the Host's cache of four shadow page tables, so every switch is a cache miss and each task
 * faults its pages back in) each yield Y times; round robin makes every yield a switch to another
 * address space. There is no timer tick: only the yields switch.
 *
 *   lguest-ts run bench-switch --cmdline switches=N    (default 4000; Y = N / 8)
 *
 * Each task checks after every yield that its private memory and getpid() are still its own, and exits
 * with 0 when they were. The switches are the Host's NEW_PGTABLE hypercalls too (--stats-json): a run
 * also makes one per task start and exit and one at boot. */
#include "bench.h"

#define TASKS 8

extern const char user_image[], user_image_end[];

void guest_main(void)
{
	u32 switches = bench_option("switches", 4000);
	u32 yields = switches / TASKS;
	u32 size = user_image_end - user_image;
	printk("bench-switch: %u tasks, %u yields each: %u switches between address spaces\n", TASKS, yields,
	       TASKS * yields);
	tasks_init(0);
	for (u32 i = 0; i < TASKS; i++)
		task_create_user(user_image, size, USER_BASE, yields);
	tasks_run_all();
	u32 ok = 0;
	for (u32 i = 1; i <= task_count(); i++)
		ok += task_get(i)->exit_code == 0;
	check(ok == TASKS, "%u of %u tasks kept their memory and pid across every switch", ok, TASKS);
	printk("bench-switch: done\n");
	power_off();
}

/* usermode: eight ring-3 tasks, each with its own page tables (more address spaces than the Host's
 * cache of four shadow page tables), making system calls, preempted by a 1 ms timer tick and scheduled
 * round robin. Six well-behaved tasks check that their private memory, TLS and pid survive every
 * switch; one reads kernel memory and one tries a hypercall, and each is killed by the fault.
 *
 * The tasks write into their own output buffers; when all have exited the kernel prints the buffers
 * in task order and checks the exit codes, so the console output is the same however the timer fell.
 * Ends with "usermode: done". */
#include "kernel.h"

#define TICK_NS      1000000u
#define NORMAL_TASKS 6
#define TASKS        8

extern const char user_image[], user_image_end[];

void guest_main(void)
{
	u32 size = user_image_end - user_image;
	printk("usermode: %u tasks, program of %u bytes at %08x\n", TASKS, size, USER_BASE);
	tasks_init(TICK_NS);
	for (u32 role = 0; role < TASKS; role++)
		task_create_user(user_image, size, USER_BASE, role);
	tasks_run_all();

	for (u32 i = 1; i <= task_count(); i++) {
		struct task *t = task_get(i);
		console_write(t->out, t->out_len);
	}
	for (u32 i = 1; i <= task_count(); i++) {
		struct task *t = task_get(i);
		u32 role = i - 1;
		if (role < NORMAL_TASKS) {
			check(t->exit_code == 10 + (int)role, "task %u exited with %d", i, 10 + (int)role);
			check(t->preemptions > 0, "task %u was preempted by the timer", i);
		} else {
			u32 vector = role == NORMAL_TASKS ? 14 : 13;
			check(t->exit_code == 128 + (int)vector, "task %u killed by %s", i, trap_name(vector));
		}
	}
	printk("usermode: done\n");
	power_off();
}

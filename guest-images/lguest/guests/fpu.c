/* fpu: lguest's lazy FPU switching, seen from a guest kernel. FPU_TASKS ring-3 tasks run the x87 loop of
 * fpu_work.h at the same time, preempted by a 1 ms tick, each with its own rounding control. The kernel
 * switches the FPU lazily, as Linux did on lguest: every task switch asks the Host for CR0.TS (the TS
 * hypercall, in the scheduler's batch); the next x87 instruction then raises #NM, which the Host reflects
 * to us; the handler clears TS (hypercall), FNSAVEs the previous owner's state and FRSTORs the new
 * owner's (FNINIT for a task's first use). Checks: every task's results are exact (integer sums and
 * squares against the integer arithmetic, the series' double bits against a native run
 * (tools/fpu-expect.c), FSQRT of a perfect square, its own control word), every task was preempted, and
 * #NM came more often than there are tasks (a Host that ignored TS would give none).
 * With --cpus 2 or more, vCPU 1 runs the same loop (role 2's) SECONDARY_ROUNDS times in its kernel, with
 * its TS never set, while vCPU 0's tasks run: each vCPU's FPU is its own (no #NM there, exact results).
 * Ends with "fpu: done". */
#include "kernel.h"
#include "fpu_work.h"
#include "fpu_tasks.h"

#define TICK_NS 1000000u
#define FNSAVE_SIZE 108

extern const char user_image[], user_image_end[];

/* tools/fpu-expect.c's output: the series' double bits per role (they depend on its rounding control). */
static const unsigned long long expected_series[FPU_TASKS] = {
	0x3ffa4eeb90fe2424ull,
	0x3f44d69115a494cfull,
	0x3f3060bb3fc5a6c0ull,
	0x3f22b83c2a0692fcull,
};

static u8 fpu_state[FPU_TASKS + 1][FNSAVE_SIZE] __attribute__((aligned(16)));
static u8 fpu_used[FPU_TASKS + 1];
static struct task *fpu_owner;      /* whose state the FPU registers hold */
static u32 nm_count, nm_switches, ts_sets;

#define SECONDARY_ROLE   2
#define SECONDARY_ROUNDS 3
static struct fpu_result secondary_result[SECONDARY_ROUNDS];
static volatile u32 secondary_done;

static void secondary_main(u32 id)
{
	(void)id;
	for (u32 k = 0; k < SECONDARY_ROUNDS; k++) {
		fpu_work(FPU_BASE(SECONDARY_ROLE), FPU_N(SECONDARY_ROLE), FPU_CW(SECONDARY_ROLE),
			 FPU_SQUARE(SECONDARY_ROLE), &secondary_result[k]);
		barrier();
	}
	secondary_done = 1;
}

static void switch_hook(struct task *prev, struct task *next)
{
	(void)prev;
	(void)next;
	hcall_ts(1);                    /* queued in the scheduler's batch */
	ts_sets++;
}

static void nm_handler(struct trap_frame *f)
{
	nm_count++;
	if ((f->cs & 3) != 3)
		panic("#NM in the kernel at %08x", f->eip);
	hcall_ts(0);
	if (fpu_owner == current)
		return;
	if (fpu_owner)
		asm volatile("fnsave %0" : "=m"(*(u8 (*)[FNSAVE_SIZE])fpu_state[fpu_owner->id]));
	if (fpu_used[current->id])
		asm volatile("frstor %0" :: "m"(*(u8 (*)[FNSAVE_SIZE])fpu_state[current->id]));
	else
		asm volatile("fninit");
	fpu_used[current->id] = 1;
	fpu_owner = current;
	nm_switches++;
}

void guest_main(void)
{
	u32 size = user_image_end - user_image;
	printk("fpu: %u ring-3 tasks using the x87 at once, lazy switching on #NM\n", FPU_TASKS);
	tasks_init(TICK_NS);
	set_trap_handler(7, nm_handler);
	task_switch_hook = switch_hook;
	for (u32 role = 0; role < FPU_TASKS; role++)
		task_create_user(user_image, size, USER_BASE, role);
	u32 secondary = vcpu_start(1, secondary_main) == VCPU_START_OK;
	printk("fpu: vCPU 1 %s\n", secondary ? "runs the loop in its kernel at the same time" : "absent (--cpus 1)");
	tasks_run_all();

	printk("fpu: #NM handled %u times, %u of them switched the FPU; TS set on %u task switches\n", nm_count,
	       nm_switches, ts_sets);
	check(nm_count > FPU_TASKS, "the Host reflected #NM (lazy switching happened)");

	for (u32 i = 1; i <= task_count(); i++) {
		struct task *t = task_get(i);
		u32 role = i - 1;
		struct fpu_result r;
		check(t->exit_code == 10 + (int)role && t->out_len == sizeof(r), "task %u finished its work", i);
		memcpy(&r, t->out, sizeof(r));
		u64 sum = 0, squares = 0;
		for (u32 k = 1; k <= FPU_N(role); k++) {
			u64 x = FPU_BASE(role) + k;
			sum += x;
			squares += x * x;
		}
		check(r.sum == (long long)sum, "task %u: sum %u", i, (u32)sum);
		check(r.squares == (long long)squares, "task %u: sum of squares %08x%08x", i, (u32)(squares >> 32),
		      (u32)squares);
		check(r.series == expected_series[role], "task %u: series bits %08x%08x (rounding control %u)", i,
		      (u32)(r.series >> 32), (u32)r.series, role & 3);
		check(r.cw == FPU_CW(role), "task %u: control word %04x kept", i, r.cw);
		check(r.root == (int)FPU_ROOT(role), "task %u: fsqrt(%u) = %d", i, FPU_SQUARE(role), r.root);
		check(t->preemptions > 0, "task %u was preempted by the timer", i);
	}
	if (secondary) {
		while (!secondary_done)
			barrier();
		int ok = 1;
		for (u32 k = 0; k < SECONDARY_ROUNDS; k++) {
			struct fpu_result *r = &secondary_result[k];
			ok &= r->series == expected_series[SECONDARY_ROLE] && r->cw == FPU_CW(SECONDARY_ROLE) &&
			      r->root == (int)FPU_ROOT(SECONDARY_ROLE) && r->sum == 6001000 &&
			      r->squares == 18672667000ll;
		}
		check(ok, "vCPU 1: %u rounds of the loop exact, beside vCPU 0's tasks", SECONDARY_ROUNDS);
	}
	printk("fpu: done\n");
	power_off();
}

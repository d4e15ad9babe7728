/* task.c: ring-3 tasks, each with its own page tables, a round-robin scheduler driven by the timer,
 * and the system calls.
 *
 * G:tasks A task's user address space: its program copied to USER_BASE, a TLS page, and a stack below
 * USER_STACK_TOP, all private pages, under its own top-level table whose kernel part is kernel_mm's.
 * It runs at ring 3 (CS 0x73, SS/DS 0x7B, GS = TLS entry 6) and enters the kernel by "int $0x80"
 * (delivered directly by the CPU through our DPL-3 trap gate onto the kernel stack we gave SET_STACK),
 * by exceptions and by interrupts (both through the Host). Task 0 is the boot thread, which idles. */
#include "kernel.h"

#define MAX_TASKS        16
#define USER_PAGE_FLAGS  (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)

struct task *current;
void (*task_switch_hook)(struct task *prev, struct task *next);
static struct task tasks[MAX_TASKS + 1];
static u32 ntasks, live_tasks;
static volatile int need_resched;
static u32 tick_period_ns;

u32 task_count(void)
{
	return ntasks;
}

struct task *task_get(u32 i)
{
	return i >= 1 && i <= ntasks ? &tasks[i] : NULL;
}

static void task_out_putc(void *ctx, char c)
{
	struct task *t = ctx;
	if (t->out_len < TASK_OUTPUT_MAX - 1)
		t->out[t->out_len++] = c;
}

void task_printf(struct task *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(task_out_putc, t, fmt, ap);
	va_end(ap);
}

/* G:schedule Round robin: the next runnable task after the current one, or the idle task when none is
 * left. Switching tells the Host three things in one batch (one exit instead of three): the new top
 * level (NEW_PGTABLE), the new kernel stack for traps from ring 3 (SET_STACK), and the new TLS
 * entries (LOAD_TLS). Called with interrupts off. */
static struct task *pick_next(void)
{
	for (u32 k = 1; k <= ntasks; k++) {
		struct task *t = &tasks[(current->id + k - 1) % ntasks + 1];
		if (t->state == TASK_RUNNABLE)
			return t;
	}
	return &tasks[0];
}

static void schedule(void)
{
	struct task *prev = current, *next = pick_next();
	need_resched = 0;
	if (next == prev)
		return;
	lazy_mode_begin();
	mm_switch(&next->mm);
	hcall_set_stack(KERNEL_DS, next->kstack_top, TASK_KSTACK_PAGES);
	load_tls(next->tls);
	if (task_switch_hook)
		task_switch_hook(prev, next);
	lazy_mode_end();
	current = next;
	switch_to(&prev->saved_esp, next->saved_esp);
}

noreturn void task_exit(int code)
{
	irq_disable();
	current->exit_code = code;
	current->state = TASK_EXITED;
	live_tasks--;
	schedule();
	panic("exited task %u was scheduled again", current->id);
}

/* The timer asks for a reschedule; it happens on the way back to ring 3 (we never switch tasks in the
 * middle of kernel code). */
static void tick(struct trap_frame *f)
{
	(void)f;
	if (current != &tasks[0])
		need_resched = 1;
}

static void before_user_return(struct trap_frame *f)
{
	(void)f;
	if (need_resched) {
		current->preemptions++;
		schedule();
	}
}

/* An exception from ring 3 that no handler claimed kills the task, with a line in its output. */
static void user_fault(struct trap_frame *f)
{
	task_printf(current, "task %u: killed by %s (vector %u) at eip %08x, error %x", current->id,
		    trap_name(f->vector), f->vector, f->eip, f->errcode);
	if (f->vector == 14)
		task_printf(current, ", address %08x", read_cr2());
	task_printf(current, "\n");
	task_exit(128 + (int)f->vector);
}

/* A user buffer is acceptable if it lies below PAGE_OFFSET and every page of it is mapped for user
 * access in the task's own tables. */
static int user_range_ok(u32 addr, u32 len)
{
	if (addr >= PAGE_OFFSET || len > PAGE_OFFSET - addr)
		return 0;
	for (u32 p = addr & ~(PAGE_SIZE - 1); p < addr + len; p += PAGE_SIZE) {
		pte_t pte = mm_get_pte(&current->mm, p);
		if ((pte & (_PAGE_PRESENT | _PAGE_USER)) != (_PAGE_PRESENT | _PAGE_USER))
			return 0;
	}
	return 1;
}

/* G:syscall EAX = number, EBX/ECX/EDX = arguments, result in EAX. */
static void syscall(struct trap_frame *f)
{
	struct task *t = current;
	u32 ret;
	switch (f->eax) {
	case SYS_EXIT:
		task_exit((int)f->ebx);
	case SYS_WRITE:   /* write(fd, buf, len): appends to the task's output */
		if (f->edx > TASK_OUTPUT_MAX || !user_range_ok(f->ecx, f->edx)) {
			ret = -EFAULT;
			break;
		}
		for (u32 i = 0; i < f->edx; i++)
			task_out_putc(t, ((const char *)f->ecx)[i]);
		ret = f->edx;
		break;
	case SYS_GETPID:
		ret = t->id;
		break;
	case SYS_YIELD:
		schedule();
		ret = 0;
		break;
	case SYS_PREEMPTIONS:
		ret = t->preemptions;
		break;
	default:
		ret = -ENOSYS;
		break;
	}
	f->eax = ret;
}

void tasks_init(u32 tick_ns)
{
	struct task *idle = &tasks[0];
	idle->id = 0;
	idle->state = TASK_RUNNABLE;
	idle->mm = kernel_mm;
	idle->kstack_top = (u32)boot_stack_top;
	current = idle;
	set_trap_handler(LGUEST_SYSCALL_VECTOR, syscall);
	exit_to_user_hook = before_user_return;
	user_fault_hook = user_fault;
	clock_init();
	clock_tick_hook = tick;
	tick_period_ns = tick_ns;
}

/* Map fresh pages at va (copying len bytes of src into them); returns the first page. */
static void *map_private(struct mm *mm, u32 va, u32 pages, const void *src, u32 len)
{
	void *first = NULL;
	for (u32 i = 0; i < pages; i++) {
		u8 *page = page_alloc();
		u32 off = i * PAGE_SIZE;
		if (src && off < len)
			memcpy(page, (const u8 *)src + off, len - off < PAGE_SIZE ? len - off : PAGE_SIZE);
		mm_map(mm, va + off, __pa(page), USER_PAGE_FLAGS);
		if (!first)
			first = page;
	}
	return first;
}

/* G:newtask A new task: address space, private copy of the program (image_size includes its .bss),
 * TLS page with the pid at the TLS base (base = USER_TLS_VA + 16 * pid, so a stale TLS entry reads
 * the wrong place), user stack, and a kernel stack holding the frame of a trap from ring 3 that
 * "returns" to the program's entry with EAX = arg, under the registers switch_to pops. */
struct task *task_create_user(const void *image, u32 image_size, u32 entry, u32 arg)
{
	if (ntasks == MAX_TASKS)
		panic("too many tasks");
	struct task *t = &tasks[++ntasks];
	t->id = ntasks;
	mm_create_user(&t->mm);
	lazy_mode_begin();
	map_private(&t->mm, USER_BASE, (image_size + PAGE_SIZE - 1) / PAGE_SIZE, image, image_size);
	u32 tls_base = USER_TLS_VA + 16 * t->id;
	u32 *tls_page = map_private(&t->mm, USER_TLS_VA, 1, NULL, 0);
	map_private(&t->mm, USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE, USER_STACK_PAGES, NULL, 0);
	lazy_mode_end();
	tls_page[(tls_base - USER_TLS_VA) / 4] = t->id;
	make_segment(tls_base, 0xFFF, SEG_TYPE_DATA_RW, 3, &t->tls[0]);

	u8 *kstack = pages_alloc(TASK_KSTACK_PAGES);
	t->kstack_top = (u32)kstack + TASK_KSTACK_PAGES * PAGE_SIZE;
	struct trap_frame *f = (struct trap_frame *)(t->kstack_top - sizeof(*f));
	memset(f, 0, sizeof(*f));
	f->gs = TLS_SEL(0);
	f->ds = f->es = USER_DS;
	f->eax = arg;
	f->eip = entry;
	f->cs = USER_CS;
	f->eflags = INITIAL_EFLAGS;
	f->user_esp = USER_STACK_TOP;
	f->user_ss = USER_DS;
	u32 *sw = (u32 *)f - 5;           /* edi, esi, ebx, ebp, return address */
	memset(sw, 0, 4 * sizeof(u32));
	sw[4] = (u32)ret_from_trap;
	t->saved_esp = (u32)sw;
	t->state = TASK_RUNNABLE;
	live_tasks++;
	return t;
}

/* G:idle The boot thread starts the tick and then idles: it schedules the tasks and halts while none
 * is runnable, until all have exited. */
void tasks_run_all(void)
{
	clock_set_periodic(tick_period_ns);
	irq_disable();
	while (live_tasks) {
		schedule();
		if (!live_tasks)
			break;
		halt();
		irq_disable();
	}
	clock_set_periodic(0);
	irq_enable();
}

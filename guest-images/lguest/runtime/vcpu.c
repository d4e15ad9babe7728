/* vcpu.c: secondary vCPUs, the C half (the lguest-ts SMP extension, lguest_abi.h; vcpu_entry.S is the
 * assembler half). Linked only by guests that list it (LGUEST_EXTRA_smp in lguest.mk).
 *
 * G:smp The runtime is uniprocessor: lguest_data, the async ring, the console and the trap handlers are
 * vCPU 0's. A secondary vCPU gets a small path of its own instead: its lguest_data page, its stack, its
 * IDT (pointing at vcpu_entry.S's stubs), its copy of the iret tail with its own no-interrupt window, and
 * the handful of helpers below that name it by id. vCPU 0 prepares all of it before VCPU_START; the
 * secondary registers its lguest_data (LGUEST_INIT), loads its IDT and GDT entries and its trap stack,
 * and runs the function it was given. It reports through shared memory, never through the console. */
#include "kernel.h"

_Static_assert(sizeof(struct vcpu_page) == PAGE_SIZE, "vcpu_entry.S indexes vcpu_pages by page");

struct vcpu_page vcpu_pages[LGUEST_MAX_VCPUS];
u8 vcpu_stacks[LGUEST_MAX_VCPUS][VCPU_STACK_SIZE] __attribute__((aligned(PAGE_SIZE)));
volatile u32 vcpu_start_eax[LGUEST_MAX_VCPUS];
vcpu_irq_handler_t vcpu_irq_handlers[LGUEST_IRQS];
static char vcpu_shutdown_msg[LGUEST_MAX_VCPUS][LGUEST_SHUTDOWN_MSG_MAX];

/* vcpu_entry.S */
extern const u32 vcpu_trap_stub_table[64];
extern const u32 vcpu_iret_table[LGUEST_MAX_VCPUS];
extern const u32 vcpu_noirq_start_table[LGUEST_MAX_VCPUS];
extern const u32 vcpu_noirq_end_table[LGUEST_MAX_VCPUS];

/* 32 (lguest-ts): start vCPU id at eip with esp; EAX says whether there was such a vCPU. */
u32 hcall_vcpu_start(u32 id, u32 eip, u32 esp)
{
	return hcall(LHCALL_VCPU_START, id, eip, esp, 0);
}

/* 33 (lguest-ts): raise virtual IRQ irq on vCPU id. */
void hcall_send_ipi(u32 id, u32 irq)
{
	hcall(LHCALL_SEND_IPI, id, irq, 0, 0);
}

/* G:smp-start The secondary's lguest_data starts as boot.c's static one does (abi 2.4): interrupts off,
 * every IRQ blocked, every ring slot free, our PAGE_OFFSET and syscall vector, and its own window. Its
 * stack holds the id and the function for vcpu_entry. */
u32 vcpu_start(u32 id, void (*fn)(u32 id))
{
	if (id == 0 || id >= LGUEST_MAX_VCPUS)
		panic("vcpu_start: no room for vCPU %u", id);
	struct lguest_data *d = vcpu_data(id);
	memset(d, 0, sizeof(*d));
	d->irq_enabled = 0;
	d->blocked_interrupts[0] = 0xFFFFFFFF;
	memset(d->hcall_status, LHCALL_STATUS_FREE, sizeof(d->hcall_status));
	d->noirq_start = vcpu_noirq_start_table[id];
	d->noirq_end = vcpu_noirq_end_table[id];
	d->kernel_address = PAGE_OFFSET;
	d->syscall_vec = LGUEST_SYSCALL_VECTOR;

	u32 *sp = (u32 *)(vcpu_stacks[id] + VCPU_STACK_SIZE) - 4;
	sp[0] = id;
	sp[1] = (u32)fn;
	sp[2] = sp[3] = 0;
	vcpu_start_eax[id] = 0xFFFFFFFF;
	barrier();
	return hcall_vcpu_start(id, (u32)vcpu_entry, (u32)sp);
}

/* vcpu_entry calls this after LGUEST_INIT: the id in EAX is recorded for the guest to check. Interrupt
 * gates for 0..63 (not the hypercall vector), breakpoint and overflow at DPL 3 like idt_init; no system
 * call gate (a secondary runs no ring-3 code). */
noreturn void vcpu_secondary_start(u32 eax, u32 id, void (*fn)(u32 id))
{
	vcpu_start_eax[id] = eax;
	gdt_init();
	for (u32 v = 0; v < ARRAY_SIZE(vcpu_trap_stub_table); v++) {
		if (v == LGUEST_TRAP_ENTRY)
			continue;
		u32 dpl = (v == 3 || v == 4) ? 3 : 0;
		idt_set_gate(v, vcpu_trap_stub_table[v], GATE_TYPE_INTERRUPT, dpl);
	}
	hcall(LHCALL_SET_STACK, KERNEL_DS, (u32)vcpu_stacks[id] + VCPU_STACK_SIZE, VCPU_STACK_SIZE / PAGE_SIZE, 0);
	fn(id);
	vcpu_park(id);
}

u32 vcpu_self(void)
{
	u32 sp;
	asm volatile("movl %%esp, %0" : "=r"(sp));
	u32 off = sp - (u32)vcpu_stacks;
	if (off >= sizeof(vcpu_stacks))
		return 0;
	return off / VCPU_STACK_SIZE;
}

void vcpu_irq_enable(u32 id)
{
	struct lguest_data *d = vcpu_data(id);
	d->irq_enabled = X86_EFLAGS_IF;
	barrier();
	if (*(volatile u32 *)&d->irq_pending)
		hcall(LHCALL_SEND_INTERRUPTS, 0, 0, 0, 0);
}

void vcpu_irq_block(u32 id, u32 irq)
{
	vcpu_data(id)->blocked_interrupts[irq / 32] |= 1u << (irq % 32);
	barrier();
}

void vcpu_irq_unblock(u32 id, u32 irq)
{
	vcpu_data(id)->blocked_interrupts[irq / 32] &= ~(1u << (irq % 32));
	barrier();
}

void vcpu_load_tls(const u32 desc[GDT_ENTRY_TLS_ENTRIES * 2])
{
	asm volatile("movl %0, %%gs" :: "r"(0) : "memory");
	hcall(LHCALL_LOAD_TLS, __pa(desc), 0, 0, 0);
}

/* A secondary cannot print: the message goes to the Host as the SHUTDOWN reason, from its own buffer. */
noreturn void vcpu_shutdown(u32 id, const char *fmt, ...)
{
	char *msg = vcpu_shutdown_msg[id < LGUEST_MAX_VCPUS ? id : 0];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, LGUEST_SHUTDOWN_MSG_MAX, fmt, ap);
	va_end(ap);
	for (;;)
		hcall(LHCALL_SHUTDOWN, __pa(msg), LGUEST_SHUTDOWN_POWEROFF, 0, 0);
}

noreturn void vcpu_park(u32 id)
{
	vcpu_irq_disable(id);
	for (u32 i = 0; i < LGUEST_IRQS / 32; i++)
		vcpu_data(id)->blocked_interrupts[i] = 0xFFFFFFFF;
	barrier();
	for (;;)
		vcpu_halt();
}

/* G:smp-dispatch Every secondary's trap stub lands here. The vCPU is the one whose stack we are on (a
 * trap on any other stack means the Host used a secondary's IDT for vCPU 0: shut down). An IRQ goes to
 * its handler; an IRQ with no handler or an exception is reported as the SHUTDOWN reason. Like
 * trap_dispatch, a waiting interrupt is let in before returning to interrupts-on code. Returns the
 * address of this vCPU's iret stub, which the assembler jumps to. */
u32 vcpu_trap_dispatch(struct trap_frame *f)
{
	u32 id = vcpu_self();
	if (id == 0) {
		static const char msg[] = "vcpu: a trap through a secondary vCPU's IDT, not on a secondary's stack";
		for (;;)
			hcall(LHCALL_SHUTDOWN, __pa(msg), LGUEST_SHUTDOWN_POWEROFF, 0, 0);
	}
	u32 v = f->vector;
	if (v >= FIRST_EXTERNAL_VECTOR && v < FIRST_EXTERNAL_VECTOR + LGUEST_IRQS) {
		u32 irq = v - FIRST_EXTERNAL_VECTOR;
		if (!vcpu_irq_handlers[irq])
			vcpu_shutdown(id, "vCPU %u: interrupt %u with no handler at eip %08x", id, irq, f->eip);
		vcpu_irq_handlers[irq](id, irq, f);
	} else {
		vcpu_shutdown(id, "vCPU %u: unexpected trap %u (%s) at eip %08x, error %x, cr2 %08x", id, v,
			      trap_name(v), f->eip, f->errcode, *(volatile u32 *)&vcpu_data(id)->cr2);
	}
	if ((f->eflags & X86_EFLAGS_IF) && *(volatile u32 *)&vcpu_data(id)->irq_pending) {
		vcpu_irq_enable(id);
		vcpu_irq_disable(id);
	}
	return vcpu_iret_table[id];
}

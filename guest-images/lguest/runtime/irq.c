/* irq.c: the virtual interrupt flag, IRQ masking, and trap dispatch.
 *
 * G:irqflag We cannot really disable interrupts (cli is privileged, and the CPU's IF stays 1 while we
 * run). Instead lguest_data.irq_enabled says whether the Host may deliver one: 0x200 on, 0 off. Turning
 * it off is a plain store. Turning it on is a store too, but an interrupt that arrived while it was off
 * is left waiting with irq_pending set, and nothing would make the Host look again until our next trap;
 * so if irq_pending is set we make a SEND_INTERRUPTS hypercall, whose exit lets the Host deliver it. */
#include "kernel.h"

void (*exit_to_user_hook)(struct trap_frame *f);
void (*user_fault_hook)(struct trap_frame *f);
static trap_handler_t trap_handlers[IDT_ENTRIES];

void irq_enable(void)
{
	lguest_data.irq_enabled = X86_EFLAGS_IF;
	barrier();
	if (*(volatile u32 *)&lguest_data.irq_pending)
		hcall_send_interrupts();
}

/* blocked_interrupts: bit n set = the Host must not deliver virtual IRQ n. */
void irq_block(u32 irq)
{
	u32 flags = irq_save();
	lguest_data.blocked_interrupts[irq / 32] |= 1u << (irq % 32);
	irq_restore(flags);
}

void irq_unblock(u32 irq)
{
	u32 flags = irq_save();
	lguest_data.blocked_interrupts[irq / 32] &= ~(1u << (irq % 32));
	irq_restore(flags);
}

void set_trap_handler(u32 vector, trap_handler_t h)
{
	trap_handlers[vector] = h;
}

const char *trap_name(u32 vector)
{
	static const char *const names[] = {
		"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
		"invalid opcode", "device not available", "double fault", "coprocessor overrun",
		"invalid TSS", "segment not present", "stack fault", "general protection",
		"page fault", "reserved", "x87 error", "alignment check", "machine check", "SIMD error",
	};
	if (vector < ARRAY_SIZE(names))
		return names[vector];
	if (vector == LGUEST_SYSCALL_VECTOR)
		return "system call";
	if (vector >= FIRST_EXTERNAL_VECTOR && vector < FIRST_EXTERNAL_VECTOR + LGUEST_IRQS)
		return "interrupt";
	return "reserved";
}

/* G:dispatch Every stub in entry.S lands here with the saved frame. The system call arrives through a
 * trap gate, which leaves irq_enabled alone, so we turn interrupts off for it as an interrupt gate
 * would have. A handler registered for the vector runs; an exception from ring 3 with no handler goes
 * to the task code (which kills the task); an IRQ with no handler is ignored; anything else is a
 * panic. Before going back to ring 3 the task code may switch tasks. */
void trap_dispatch(struct trap_frame *f)
{
	u32 v = f->vector;
	int from_user = (f->cs & 3) == 3;
	if (v == LGUEST_SYSCALL_VECTOR)
		irq_disable();
	if (trap_handlers[v])
		trap_handlers[v](f);
	else if (v >= FIRST_EXTERNAL_VECTOR && v < FIRST_EXTERNAL_VECTOR + LGUEST_IRQS)
		;
	else if (from_user && user_fault_hook)
		user_fault_hook(f);
	else
		panic("unexpected trap %u (%s) at eip %08x, cs %x, error %x, cr2 %08x", v, trap_name(v),
		      f->eip, f->cs & 0xFFFF, f->errcode, read_cr2());
	/* lguest_iret will turn interrupts back on without looking at irq_pending, and the Host would
	 * then deliver a waiting interrupt only at its next exit. A system call arrives without any exit
	 * (direct trap gate), so a task that makes system calls often could keep meeting the timer while
	 * interrupts are off and never see it. So if interrupts were on where we return to and one is
	 * waiting, let it in now (it nests on this stack, and returns here). */
	if ((f->eflags & X86_EFLAGS_IF) && *(volatile u32 *)&lguest_data.irq_pending) {
		irq_enable();
		irq_disable();
	}
	if (from_user && exit_to_user_hook)
		exit_to_user_hook(f);
}

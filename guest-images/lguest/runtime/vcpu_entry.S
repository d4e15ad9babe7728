/* vcpu_entry.S: the entry, trap stubs, iret windows and HALT of the secondary vCPUs (the lguest-ts SMP
 * extension, lguest_abi.h). Linked only by guests that list it (LGUEST_EXTRA_smp in lguest.mk); vcpu.c is
 * the C half.
 *
 * Everything here is per vCPU or shared read-only: vCPU n (1 <= n < LGUEST_MAX_VCPUS) has its own
 * lguest_data (vcpu_pages[n], one page each), its own stack (vcpu_stacks[n]) and its own copy of the
 * lguest_iret tail, whose two instructions are the no-interrupt window it registers at its LGUEST_INIT. */
#include "lguest_abi.h"

#define VCPU_PAGE_SIZE PAGE_SIZE   /* sizeof(struct vcpu_page): vcpu.c asserts it */

/* G:smp-entry VCPU_START puts a secondary here at ring 1, on the starter's page tables, with EAX = its id
 * and ESP = what vcpu_start() prepared: 0(%esp) = the id vcpu_start meant, 4(%esp) = the function to
 * run. Its first hypercall must be LGUEST_INIT with its own lguest_data; we compute that from the id on
 * the stack (ours), not from EAX (the Host's), and let vcpu_secondary_start(eax, id, fn) compare them. */
	.text
	.globl vcpu_entry
vcpu_entry:
	cld
	movl	(%esp), %ebx            /* the id vcpu_start meant */
	pushl	%eax                    /* the id the Host says (an argument, below) */
	shll	$PAGE_SHIFT, %ebx
	addl	$(vcpu_pages - PAGE_OFFSET), %ebx
	movl	$LHCALL_LGUEST_INIT, %eax
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	int	$LGUEST_TRAP_ENTRY
	call	vcpu_secondary_start    /* (eax, id, fn): never returns */
1:	jmp	1b

/* G:smp-iret One copy of lguest_iret per secondary vCPU: the same two instructions (copy the EFLAGS being
 * returned to into irq_enabled, iret), but storing into that vCPU's own lguest_data. vcpu_start() puts
 * the labels around the last two into the vCPU's noirq_start/noirq_end. Index 0 of the tables is
 * vCPU 0's, which uses the runtime's own lguest_iret and window. */
	.macro	vcpu_iret_stub id
vcpu_iret_\id:
	pushl	8(%esp)                 /* the frame is eip, cs, eflags: copy eflags */
vcpu_noirq_start_\id:
	popl	%ss:vcpu_pages + \id * VCPU_PAGE_SIZE + LGUEST_DATA_irq_enabled
	iret
vcpu_noirq_end_\id:
	.endm
	.macro	vcpu_table_entry label, id
	.long	\label\id
	.endm
	.macro	vcpu_table name, label, vcpu0
	.globl	\name
\name:
	.long	\vcpu0
	.set	vcpu_n, 1
	.rept	LGUEST_MAX_VCPUS - 1
	vcpu_table_entry \label, %vcpu_n
	.set	vcpu_n, vcpu_n + 1
	.endr
	.endm

	.altmacro
	.text
	.set	vcpu_n, 1
	.rept	LGUEST_MAX_VCPUS - 1
	vcpu_iret_stub %vcpu_n
	.set	vcpu_n, vcpu_n + 1
	.endr
	.section .rodata
	.p2align 2
	vcpu_table vcpu_iret_table, vcpu_iret_, lguest_iret
	vcpu_table vcpu_noirq_start_table, vcpu_noirq_start_, lguest_noirq_start
	vcpu_table vcpu_noirq_end_table, vcpu_noirq_end_, lguest_noirq_end
	.noaltmacro

/* G:smp-stubs Trap and interrupt stubs for vectors 0..63, as entry.S's, but joining vcpu_trap_common:
 * a secondary's IDT points here (vcpu.c loads it), vCPU 0's at the runtime's. */
	.section .rodata
	.p2align 2
	.globl vcpu_trap_stub_table
vcpu_trap_stub_table:
	.set	vec, 0
	.rept	64
	.text
	.p2align 3
9:
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17)
	pushl	$vec
	.else
	pushl	$0
	pushl	$vec
	.endif
	jmp	vcpu_trap_common
	.section .rodata
	.long	9b
	.set	vec, vec + 1
	.endr

/* Save a struct trap_frame (kernel.h) and call vcpu_trap_dispatch(frame), which returns the address of
 * this vCPU's iret stub. That goes into the frame's error-code slot, so after restoring the registers
 * and dropping the vector, "ret" jumps to the stub with ESP at eip, cs, eflags: no register is needed
 * to carry it. Interrupts stay off (the Host turned irq_enabled off delivering through an interrupt gate)
 * until the stub's window. */
	.text
vcpu_trap_common:
	pushal
	pushl	%ds
	pushl	%es
	pushl	%fs
	pushl	%gs
	movl	$KERNEL_DS, %eax
	movl	%eax, %ds
	movl	%eax, %es
	pushl	%esp
	call	vcpu_trap_dispatch
	addl	$4, %esp
	movl	%eax, 52(%esp)          /* struct trap_frame's errcode */
	popl	%gs
	popl	%fs
	popl	%es
	popl	%ds
	popal
	addl	$4, %esp                /* the vector */
	ret                             /* to vcpu_iret_N */

/* G:smp-halt HALT for a secondary, with the return address labelled: an interrupt that ends the HALT is
 * delivered with its frame's EIP at vcpu_halt_resume, so a handler can tell it woke the vCPU from HALT.
 * Call it with interrupts off after deciding there is nothing to do (like the runtime's halt()); it
 * returns after a delivery, with interrupts on. */
	.globl vcpu_halt, vcpu_halt_resume
vcpu_halt:
	pushl	%ebx
	pushl	%esi
	movl	$LHCALL_HALT, %eax
	xorl	%ebx, %ebx
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	int	$LGUEST_TRAP_ENTRY
vcpu_halt_resume:
	popl	%esi
	popl	%ebx
	ret

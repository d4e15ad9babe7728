/* entry.S: the guest's first instructions, the trap and interrupt entry stubs, lguest_iret and the
 * kernel-stack switch.
 *
 * G:entry The Launcher loaded us at our physical addresses (p_paddr, from 1 MiB) and the Host starts us
 * at e_entry, which is the PHYSICAL address of lguest_entry, with paging already on: the Host's initial
 * page tables (abi 3.5) map guest-physical 0..mem both at 0 and at PAGE_OFFSET. We run at ring 1 with
 * CS = 0x61, DS = ES = SS = 0x69, ESI = 0 (boot_params), ESP = 0 and EFLAGS = 0x202. */
#include "lguest_abi.h"

#define BOOT_STACK_SIZE 8192

	.section .text.entry, "ax"
	.globl lguest_entry
lguest_entry:
	/* Jump to our linked (virtual) address: from here on we never run at the identity mapping. */
	movl	$1f, %eax
	jmp	*%eax
1:
	movl	$boot_stack_top, %esp

	/* The Launcher gives us zeroed memory, but clear .bss anyway (it holds the boot stack, which is
	 * still empty). */
	cld
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	shrl	$2, %ecx
	xorl	%eax, %eax
	rep stosl

	/* A hook for misbehave's pre-INIT cases; the runtime's default does nothing. */
	call	lguest_pre_init

	/* G:init Register lguest_data with the Host. The argument is its guest-physical address: the
	 * symbol's value minus PAGE_OFFSET. From here on the Host writes tsc_khz, time, reserve_mem and
	 * pgdir into it and reads noirq_start/end, kernel_address and syscall_vec. */
	movl	$LHCALL_LGUEST_INIT, %eax
	movl	$(lguest_data - PAGE_OFFSET), %ebx
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	int	$LGUEST_TRAP_ENTRY

	/* And into C, at its virtual address; it never returns. */
	call	lguest_start
2:	jmp	2b

/* G:iret Returning from a trap or interrupt. The CPU's real IF is always 1 while we run (and iret at
 * ring 1 with IOPL 0 cannot change it), so the interrupt flag we return to lives in
 * lguest_data.irq_enabled: we copy the EFLAGS word being returned to into it and then iret. Between
 * those two instructions an interrupt would find interrupts "on" but our stack still holding this
 * frame; the Host delivers nothing while EIP is in [noirq_start, noirq_end), which lguest_data
 * advertises (see boot.c). The copy is a pop with an SS override because SS is the one segment sure to
 * be our kernel data segment here (DS may already hold a user selector). The whole EFLAGS word is
 * stored; the Host tests only bit 0x200. */
	.text
	.globl lguest_iret, lguest_noirq_start, lguest_noirq_end
lguest_iret:
	pushl	8(%esp)                 /* the frame is eip, cs, eflags: copy eflags */
lguest_noirq_start:
	popl	%ss:lguest_data + LGUEST_DATA_irq_enabled
	iret
lguest_noirq_end:

/* G:stubs One stub per vector 0..63: push a zero error code if the CPU (or the Host injecting the
 * trap) pushed none (vectors 8, 10-14 and 17 have one), push the vector, and join trap_common. */
	.section .rodata
	.p2align 2
	.globl trap_stub_table
trap_stub_table:
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
	jmp	trap_common
	.section .rodata
	.long	9b
	.set	vec, vec + 1
	.endr

	.text
/* The system call vector, reached through a DPL-3 trap gate: the CPU delivers it straight to us at
 * ring 1 on the SET_STACK stack, without the Host, and leaves irq_enabled as it was. */
	.globl syscall_stub
syscall_stub:
	pushl	$0
	pushl	$LGUEST_SYSCALL_VECTOR
	jmp	trap_common

/* Save everything as a struct trap_frame (kernel.h), switch to kernel data segments, and call
 * trap_dispatch(frame). Returning restores the frame and leaves through lguest_iret. A new task starts
 * at ret_from_trap with a hand-built frame (task.c). */
trap_common:
	pushal
	pushl	%ds
	pushl	%es
	pushl	%fs
	pushl	%gs
	movl	$KERNEL_DS, %eax
	movl	%eax, %ds
	movl	%eax, %es
	pushl	%esp
	call	trap_dispatch
	addl	$4, %esp
	.globl ret_from_trap
ret_from_trap:
	popl	%gs
	popl	%fs
	popl	%es
	popl	%ds
	popal
	addl	$8, %esp                /* vector and error code */
	jmp	lguest_iret

/* switch_to(&prev->saved_esp, next->saved_esp): save the callee-saved registers on this kernel stack,
 * park it, and resume the other one where it parked (or, for a new task, at ret_from_trap). */
	.globl switch_to
switch_to:
	movl	4(%esp), %eax
	movl	8(%esp), %edx
	pushl	%ebp
	pushl	%ebx
	pushl	%esi
	pushl	%edi
	movl	%esp, (%eax)
	movl	%edx, %esp
	popl	%edi
	popl	%esi
	popl	%ebx
	popl	%ebp
	ret

	.section .bss
	.p2align 12
	.globl boot_stack, boot_stack_top
boot_stack:
	.skip	BOOT_STACK_SIZE
boot_stack_top:

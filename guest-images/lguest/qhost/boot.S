/* boot.S: entry, trap stubs and the world switch of qhost (see host.c).
 *
 * The switch works like lguest's Switcher: the guest's registers live in one struct lguest_regs
 * (guest_regs); the TSS's ring-0 stack pointer is the END of that struct, so when the guest traps the
 * CPU pushes ss/esp/eflags/cs/eip (and an error code) into its tail, the stub pushes the vector and the
 * rest, and the struct is complete. run_guest() pops it and irets; a trap "returns" from run_guest. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000002   /* memory info */

	.section .multiboot, "a"
	.p2align 2
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.globl _start
_start:
	cli
	movl	$host_stack_top, %esp
	pushl	%ebx
	pushl	%eax
	call	host_main
1:	hlt
	jmp	1b

/* 256 stubs: [error code if the CPU pushed none], vector, then the common switch back. */
	.section .rodata
	.p2align 2
	.globl host_stub_table
host_stub_table:
	.set	vec, 0
	.rept	256
	.text
	.p2align 3
9:
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17)
	pushl	$vec
	.else
	pushl	$0
	pushl	$vec
	.endif
	jmp	switch_to_host
	.section .rodata
	.long	9b
	.set	vec, vec + 1
	.endr

	.text
switch_to_host:
	pushl	%es
	pushl	%ds
	pushl	%fs
	pushl	%gs
	pushl	%ebp
	pushl	%edi
	pushl	%esi
	pushl	%edx
	pushl	%ecx
	pushl	%ebx
	pushl	%eax
	movl	$0x58, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	host_saved_esp, %esp
	popl	%ebp
	popl	%edi
	popl	%esi
	popl	%ebx
	ret

	.globl run_guest
run_guest:
	pushl	%ebx
	pushl	%esi
	pushl	%edi
	pushl	%ebp
	movl	%esp, host_saved_esp
	movl	$guest_regs, %esp
	popl	%eax
	popl	%ebx
	popl	%ecx
	popl	%edx
	popl	%esi
	popl	%edi
	popl	%ebp
	popl	%gs
	popl	%fs
	popl	%ds
	popl	%es
	addl	$8, %esp
	iret

/* The PIT interrupt: from the guest it goes through the normal switch (vector 0xF0); while the host
 * itself waits in hlt (CPL 0) it is handled on the host stack. */
	.globl timer_stub
timer_stub:
	testl	$3, 4(%esp)
	jz	1f
	pushl	$0
	pushl	$0xF0
	jmp	switch_to_host
1:	pushal
	call	host_timer_tick
	popal
	iret

	.section .bss
	.p2align 12
	.skip	65536
	.globl host_stack_top
host_stack_top:

/* toy: entry and interrupt stubs of the OSDev-style toy kernel (toy.c). */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003
        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .text
        .globl _start
_start:
        cli
        mov $stack_top, %esp
        call kmain
1:      cli
        hlt
        jmp 1b

/* IRQ 0: save the running task's registers on its stack, let the scheduler pick the next stack. */
        .globl irq0_entry
irq0_entry:
        pusha
        push %esp
        call timer_isr
        mov %eax, %esp
        popa
        iret

        .globl irq1_entry
irq1_entry:
        pusha
        call kbd_isr
        popa
        iret

/* Exceptions 0-31: push the vector and report it. */
        .globl exc_stubs
exc_stubs:
        .set vec, 0
        .rept 32
        .align 8
        push $vec
        jmp exc_common
        .set vec, vec + 1
        .endr
exc_common:
        call exception
1:      hlt
        jmp 1b

        .bss
        .align 16
        .space 16384
stack_top:
        .section .note.GNU-stack, "", @progbits

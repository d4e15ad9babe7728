/*
 * Entry point, trap stubs and the try/catch trampoline shared by the bare-mode test kernels.
 * The kernel is entered as QEMU's -kernel enters a Multiboot v1 image: protected mode, flat
 * segments, paging off, CPL 0, EAX = 0x2BADB002, EBX = the multiboot info.
 */
#define KCODE 0x08
#define KDATA 0x10
#define SYS_RETURN 0x52455455   /* "RETU": user code finished normally */

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003
        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .text
        .globl _start
_start:
        cli
        cld
        mov $boot_stack_top, %esp
        push %ebx
        push %eax
        call lib_init
        add $8, %esp
        call kmain
        push %eax
        call finish
1:      hlt
        jmp 1b

/* 256 trap stubs, 16 bytes apart: stub v is at trap_stubs + 16 * v. Vectors that carry an
   error code when raised as exceptions (8, 10-14, 17, 21) do not push a dummy one. */
        .align 16
        .globl trap_stubs
trap_stubs:
        .set vec, 0
        .rept 256
        .align 16
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21)
        .else
        pushl $0
        .endif
        pushl $vec
        jmp trap_common
        .set vec, vec + 1
        .endr

trap_common:
        pusha
        push %ds
        push %es
        push %fs
        push %gs
        mov $KDATA, %ax
        mov %ax, %ds
        mov %ax, %es
        cld
        push %esp
        call trap_dispatch
        add $4, %esp
        .globl trap_return
trap_return:
        pop %gs
        pop %fs
        pop %es
        pop %ds
        popa
        add $8, %esp
        iret

/* int try_call(void (*fn)(void *), void *arg): runs fn(arg) at ring 0; returns -1 if it
   returned, or the vector of the trap that trap_dispatch caught (via catch_longjmp). */
        .globl try_call
try_call:
        push %ebp
        push %ebx
        push %esi
        push %edi
        mov %esp, catch_esp
        movl $1, catch_active
        pushl 24(%esp)
        call *24(%esp)
        add $4, %esp
        movl $0, catch_active
        mov $-1, %eax
        pop %edi
        pop %esi
        pop %ebx
        pop %ebp
        ret

/* void catch_longjmp(int result): back to the try_call frame at ring 0. */
        .globl catch_longjmp
catch_longjmp:
        mov 4(%esp), %eax
        mov $KDATA, %dx
        mov %dx, %ss
        mov catch_esp, %esp
        mov %dx, %ds
        mov %dx, %es
        mov %dx, %fs
        mov %dx, %gs
        pushl $2
        popf
        movl $0, catch_active
        pop %edi
        pop %esi
        pop %ebx
        pop %ebp
        ret

/* void enter_user(struct user_entry *e): iret to e->cs:user_trampoline with e->ss:e->esp,
   e->eflags and data segments e->ds, es, fs, gs; the trampoline calls e->fn and returns with int 0x80. */
        .globl enter_user
enter_user:
        mov 4(%esp), %ebx
        mov 4(%ebx), %eax        /* ds */
        pushl 12(%ebx)           /* ss */
        pushl 16(%ebx)           /* esp */
        pushl 20(%ebx)           /* eflags */
        pushl 8(%ebx)            /* cs */
        pushl $user_trampoline
        mov %ax, %ds
        mov 24(%ebx), %ax        /* es, fs, gs */
        mov %ax, %es
        mov 28(%ebx), %ax
        mov %ax, %fs
        mov 32(%ebx), %ax
        mov %ax, %gs
        iret

        .globl user_trampoline
user_trampoline:
        call *(%ebx)
        mov %eax, %ebx
        mov $SYS_RETURN, %eax
        int $0x80
1:      jmp 1b

        .bss
        .align 4096
        .space 16384
boot_stack_top:
        .globl boot_stack_top

        .section .note.GNU-stack, "", @progbits

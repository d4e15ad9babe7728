/* boot.S: the Multiboot v1 header and the entry point of a bare kernel (see bare.h).
 *
 * The loader (QEMU -kernel, GRUB, lguest-ts run --bare) finds the header in the first 8 KiB of the
 * file, loads us at 1 MiB and jumps to _start in 32-bit protected mode with paging off, EAX = 0x2BADB002
 * and EBX = the multiboot info. We have no stack yet and must not trust the GDT/IDT registers. */

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_PAGE_ALIGN   (1 << 0)
#define MULTIBOOT_MEMORY_INFO  (1 << 1)
#define MULTIBOOT_AOUT_KLUDGE  (1 << 16)
#define MULTIBOOT_HEADER_FLAGS (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_AOUT_KLUDGE)

#define STACK_SIZE 16384

/* The header: magic, flags, checksum (the three sum to 0 mod 2^32), then the a.out-kludge address
 * fields, which flag bit 16 tells the loader to use instead of the ELF headers. link.ld makes both
 * descriptions agree, so it does not matter which one a loader reads. */
    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MULTIBOOT_HEADER_MAGIC
    .long MULTIBOOT_HEADER_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_HEADER_FLAGS)
    .long multiboot_header      /* header_addr: where this header ends up in memory */
    .long __load_start          /* load_addr: first byte loaded (the header's own address) */
    .long __load_end            /* load_end_addr: end of the bytes copied from the file */
    .long __bss_end             /* bss_end_addr: zero from load_end_addr up to here */
    .long _start                /* entry_addr */

    .section .text.entry, "ax"
    .globl _start
    .type _start, @function
_start:
    /* Keep the loader's EAX (magic) and EBX (info) out of the way of rep stosb. */
    movl %eax, %esi
    movl %ebx, %ebp

    /* Zero the .bss, which also holds our stack. */
    cld
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    movl $boot_stack_top, %esp
    pushl $0                    /* a known EFLAGS: IF, DF and the arithmetic flags clear */
    popfl

    pushl %ebp                  /* bare_init(magic, mbi) */
    pushl %esi
    call bare_init
    addl $8, %esp               /* (a callee may overwrite its argument slots: push them again) */

    pushl %ebp                  /* kmain(magic, mbi) */
    pushl %esi
    call kmain
    addl $8, %esp

    pushl %eax                  /* exit_qemu(kmain's return value): does not return */
    call exit_qemu
1:  cli
    hlt
    jmp 1b
    .size _start, . - _start

    .section .bss
    .p2align 4
boot_stack:
    .skip STACK_SIZE
boot_stack_top:

    .section .note.GNU-stack, "", @progbits

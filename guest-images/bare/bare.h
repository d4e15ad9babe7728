/* bare.h: the freestanding runtime for bare Multiboot v1 kernels (lguest-ts `run --bare`, QEMU -kernel).
 *
 * What the loader gives us (Multiboot v1, section 3.2 of the spec, and docs/design.md "Two ways to boot"):
 * 32-bit protected mode, flat 4 GiB code and data segments, paging off, interrupts off, CPL 0,
 * EAX = 0x2BADB002 and EBX = the physical address of the multiboot info. The GDTR and IDTR may be
 * anything, so the runtime never reloads a segment register and never enables interrupts. There is no FPU
 * in lguest-ts's CPU: build with -mno-80387 so any floating point fails to link instead of trapping.
 *
 * Start-up (boot.S): _start clears the .bss (the loader should have, this is cheap insurance), loads a
 * 16 KiB stack from the .bss, clears EFLAGS, then calls
 *     bare_init(magic, mbi);              runtime set-up (command line, console selection)
 *     code = kmain(magic, mbi);           the kernel's own entry, which you write
 *     exit_qemu(code);                    isa-debug-exit; if that port does nothing, hlt forever
 *
 * Devices used (PC test devices, the whole device model of lguest-ts's bare mode):
 *   port 0xE9  (QEMU isa-debugcon / Bochs port E9 hack): out a byte, it appears on the console
 *   port 0x3F8 (COM1 16550 THR) and 0x3FD (LSR): the transmit path, polled on LSR bit 5 (THRE)
 *   port 0xF4  (QEMU isa-debug-exit, iobase=0xf4): a 32-bit out of v ends the run with exit status
 *              (v << 1) | 1, so exit_qemu(0) gives status 1, exit_qemu(1) gives 3.
 * The console goes to port 0xE9 only unless the command line says otherwise (console=com1 or
 * console=both): lguest-ts prints both ports on one console, so writing to both would double the text.
 */
#ifndef BARE_H
#define BARE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Multiboot v1 ---------------------------------------------------------------------------- */

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002u  /* in the kernel's header */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u  /* in EAX at entry */

/* Header flags we request (boot.S). */
#define MULTIBOOT_PAGE_ALIGN  (1u << 0)   /* modules page-aligned */
#define MULTIBOOT_MEMORY_INFO (1u << 1)   /* fill mem_lower/mem_upper */
#define MULTIBOOT_AOUT_KLUDGE (1u << 16)  /* the header's address fields are valid */

/* Info flags: which fields of struct multiboot_info the loader filled. */
#define MULTIBOOT_INFO_MEMORY  (1u << 0)  /* mem_lower, mem_upper */
#define MULTIBOOT_INFO_CMDLINE (1u << 2)  /* cmdline */
#define MULTIBOOT_INFO_MODS    (1u << 3)  /* mods_count, mods_addr */
#define MULTIBOOT_INFO_MMAP    (1u << 6)  /* mmap_length, mmap_addr */

/* The multiboot information structure, as far as we use it (offsets from the spec). */
struct multiboot_info {
    uint32_t flags;        /*  0: MULTIBOOT_INFO_* */
    uint32_t mem_lower;    /*  4: KiB of memory from 0 (at most 640) */
    uint32_t mem_upper;    /*  8: KiB of memory from 1 MiB up to the first hole */
    uint32_t boot_device;  /* 12 */
    uint32_t cmdline;      /* 16: physical address of a NUL-terminated string */
    uint32_t mods_count;   /* 20 */
    uint32_t mods_addr;    /* 24 */
    uint32_t syms[4];      /* 28: a.out or ELF symbol information */
    uint32_t mmap_length;  /* 44 */
    uint32_t mmap_addr;    /* 48 */
};

/* ---- start-up and the kernel's entry --------------------------------------------------------- */

/* You write this. magic is EAX at entry, mbi is EBX (only meaningful if magic is
 * MULTIBOOT_BOOTLOADER_MAGIC). The return value is handed to exit_qemu(). */
int kmain(uint32_t magic, const struct multiboot_info *mbi);

/* Called by boot.S before kmain. */
void bare_init(uint32_t magic, const struct multiboot_info *mbi);

/* The multiboot info, or NULL if the loader did not hand us one (wrong magic). */
const struct multiboot_info *bare_mbi(void);

/* The command line exactly as the loader passed it ("" if none). QEMU and GRUB put the kernel's own file
 * name first, then the user's text (QEMU: "<-kernel path> <-append text>"). */
const char *bare_cmdline(void);

/* The value of option NAME on the command line (a word NAME=VALUE, words separated by spaces): copies
 * VALUE into buf (at most size-1 bytes, NUL-terminated) and returns 1, or returns 0 if absent. A bare word
 * NAME counts as present with the value "". */
int bare_option(const char *name, char *buf, size_t size);

/* Like bare_option but parses the value as an unsigned decimal (or 0x-prefixed hex) number; returns
 * fallback if the option is absent or not a number. */
uint32_t bare_option_u32(const char *name, uint32_t fallback);

/* Memory size from the multiboot info in KiB (mem_lower + mem_upper), 0 if not provided. */
uint32_t bare_mem_kib(void);

/* ---- ports ----------------------------------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

#define PORT_DEBUGCON  0xE9   /* isa-debugcon */
#define PORT_COM1      0x3F8  /* 16550: THR (write) */
#define UART_LSR       5      /* line status register, COM1 + 5 */
#define UART_LSR_THRE  0x20   /* transmit holding register empty */
#define PORT_DEBUG_EXIT 0xF4  /* isa-debug-exit */

/* ---- console --------------------------------------------------------------------------------- */

#define CONSOLE_E9   (1u << 0)
#define CONSOLE_COM1 (1u << 1)

/* Where console output goes: CONSOLE_E9 by default, set from console=e9|com1|both by bare_init, and
 * writable by the kernel. */
extern uint32_t bare_console;

void console_putc(char c);             /* one byte to every selected console; "\n" is sent as is */
void console_write(const char *s, size_t n);
void console_puts(const char *s);      /* no newline added */
void e9_putc(char c);                  /* port 0xE9 only */
void com1_putc(char c);                /* COM1 only: waits (bounded) for LSR.THRE, then writes THR */

/* A small printf: %d %i %u %x %X %p %s %c %%, with an optional '-' (left-justify), '0' (zero pad), a
 * decimal width and an ignored 'l' (int and long are both 32 bits here). %p prints 0x%08x. Returns the
 * number of bytes written. No floating point. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
/* Same, into buf (at most size-1 bytes plus the NUL); returns the length it would have had. */
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- leaving --------------------------------------------------------------------------------- */

/* Writes code to isa-debug-exit (a 32-bit out to port 0xF4): the run ends with status (code << 1) | 1.
 * If nothing is listening there, halts forever with interrupts off. */
__attribute__((noreturn)) void exit_qemu(uint32_t code);

/* ---- the few libc functions the compiler may call on its own --------------------------------- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif

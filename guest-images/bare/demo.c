/* demo.c: the kernel `npm start` boots (lguest-ts run --bare demo).
 *
 * It says what it is, shows what the loader handed it (the Multiboot magic, the command line, the memory
 * size), computes something you can see (the primes below 200 by a sieve, and the Mandelbrot set in
 * ASCII with 4.12 fixed-point integers: lguest-ts's CPU has no FPU), then leaves through isa-debug-exit
 * with code 0. About a million instructions in all. */
#include "bare.h"

#define SIEVE_LIMIT 200

/* Mandelbrot: 60 x 20 characters over re in [-2.1, 0.9), im in [-1.2, 1.2), 4.12 fixed point. */
#define MANDEL_COLS  60
#define MANDEL_ROWS  20
#define FIX_SHIFT    12
#define FIX_ONE      (1 << FIX_SHIFT)
#define FIX(n, d)    ((int32_t)((n) * FIX_ONE / (d)))   /* the fraction n/d, in fixed point */
#define MANDEL_ITERS 30

static void print_primes(void)
{
    static uint8_t composite[SIEVE_LIMIT];
    int count = 0;

    printf("Primes below %d (sieve of Eratosthenes):\n ", SIEVE_LIMIT);
    for (int n = 2; n < SIEVE_LIMIT; n++) {
        if (composite[n])
            continue;
        for (int m = n * n; m < SIEVE_LIMIT; m += n)
            composite[m] = 1;
        printf(" %d", n);
        if (++count % 16 == 0)
            printf("\n ");
    }
    printf("\n  (%d primes)\n\n", count);
}

/* How many iterations z -> z*z + c takes to leave the circle of radius 2, or MANDEL_ITERS. */
static int escape_time(int32_t cr, int32_t ci)
{
    int32_t zr = 0, zi = 0;
    int i;

    for (i = 0; i < MANDEL_ITERS; i++) {
        int32_t rr = (zr * zr) >> FIX_SHIFT;
        int32_t ii = (zi * zi) >> FIX_SHIFT;
        if (rr + ii > 4 * FIX_ONE)
            break;
        zi = ((zr * zi) >> (FIX_SHIFT - 1)) + ci;   /* 2 * zr * zi + ci */
        zr = rr - ii + cr;
    }
    return i;
}

static void print_mandelbrot(void)
{
    static const char shades[] = " .,:;-=+*%#";   /* by escape time; '@' for "never escaped" */
    const int nshades = (int)sizeof shades - 1;

    printf("The Mandelbrot set, %dx%d, %d iterations, integer fixed point (no FPU needed):\n",
           MANDEL_COLS, MANDEL_ROWS, MANDEL_ITERS);
    for (int row = 0; row < MANDEL_ROWS; row++) {
        int32_t ci = FIX(-12, 10) + row * FIX(24, 10 * MANDEL_ROWS);
        console_putc(' ');
        for (int col = 0; col < MANDEL_COLS; col++) {
            int32_t cr = FIX(-21, 10) + col * FIX(30, 10 * MANDEL_COLS);
            int n = escape_time(cr, ci);
            console_putc(n == MANDEL_ITERS ? '@' : shades[n * nshades / MANDEL_ITERS]);
        }
        console_putc('\n');
    }
    console_putc('\n');
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    uint32_t mem = bare_mem_kib();

    printf("\n");
    printf("Hello from a bare Multiboot kernel!\n");
    printf("-----------------------------------\n");
    printf("lguest-ts's i386 interpreter loaded this ELF at 1 MiB and jumped to it in 32-bit\n");
    printf("protected mode: flat segments, paging off, ring 0, no Host and no hypervisor.\n");
    printf("It talks to the outside world through three I/O ports: 0xE9 (this console),\n");
    printf("0x3F8 (a 16550 serial transmitter) and 0xF4 (isa-debug-exit, to stop the machine).\n\n");

    if (magic == MULTIBOOT_BOOTLOADER_MAGIC)
        printf("Boot magic in EAX:  %08X (a Multiboot loader)\n", magic);
    else
        printf("Boot magic in EAX:  %08X (not Multiboot: no boot information)\n", magic);
    printf("Command line:       \"%s\"\n", bare_cmdline());
    if (mem)
        printf("Memory:             %u KiB below 1 MiB, %u KiB above (%u MiB in all)\n",
               mbi->mem_lower, mbi->mem_upper, (mem + 1023) / 1024);
    else
        printf("Memory:             not reported by the loader\n");
    printf("\n");

    print_primes();
    print_mandelbrot();

    printf("Done. Writing 0 to port 0xF4 to power off: goodbye!\n");
    return 0;
}

/* bare-main.c: the workload as a bare Multiboot kernel (guest-images/build/bench.elf).
 *
 *   qemu-system-i386 -kernel bench.elf -append "iters=N" ...   (or lguest-ts run --bare bench.elf)
 *
 * Reads iters=N from the command line (default WORKLOAD_DEFAULT_ITERATIONS), runs the workload, prints
 * the report and leaves through isa-debug-exit with 0 for PASS and 1 for FAIL. */
#include "bare.h"
#include "workload.h"

void workload_print(const char *s) { console_puts(s); }

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    struct workload_result result;
    uint32_t iterations = bare_option_u32("iters", WORKLOAD_DEFAULT_ITERATIONS);

    (void)magic;
    (void)mbi;
    console_puts("bench: the lguest-ts CPU workload, bare Multiboot kernel\n");
    workload_run(iterations, &result);
    return workload_report(&result);
}

/* workload.h: the CPU-bound, self-checking benchmark workload (see README.md).
 *
 * workload.c is one freestanding C file: integers only (no floating point), no libc, no globals that
 * need a constructor. The runtime that links it (a bare Multiboot kernel, a Linux program, an lguest
 * guest) supplies one function, workload_print, and calls workload_run then workload_report. */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <stdint.h>

/* Supplied by the runtime: write a NUL-terminated string to its console (no newline added). */
void workload_print(const char *s);

struct workload_result {
    uint32_t iterations;
    uint32_t checksum;        /* the CRC-32 chain of every iteration's checksum */
    uint32_t checks_passed;   /* internal consistency checks (sortedness, parse results, matrix sums) */
    uint32_t checks_failed;
};

/* The default iteration count of the bare kernel (bench.elf without iters=N). */
#define WORKLOAD_DEFAULT_ITERATIONS 1000

/* One iteration: the list, matrix, state-machine and CRC kernels on inputs derived from index.
 * Returns the iteration's checksum and counts its self-checks in r. */
uint32_t workload_iteration(uint32_t index, struct workload_result *r);

/* Runs iterations 0 .. iterations-1 and fills r. */
void workload_run(uint32_t iterations, struct workload_result *r);

/* The reference checksum for this iteration count, if known: returns 1 and sets *checksum, else 0. */
int workload_reference(uint32_t iterations, uint32_t *checksum);

/* Prints the result through workload_print and returns 0 for PASS, 1 for FAIL. PASS means every
 * self-check passed and, if a reference checksum is known for this count, the checksum matches it. */
int workload_report(const struct workload_result *r);

#endif

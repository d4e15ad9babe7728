/* native-main.c: the workload as a 32-bit Linux program (bench/workload/native), to time it on the
 * real CPU.   usage: native [ITERATIONS]   (default WORKLOAD_DEFAULT_ITERATIONS) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "workload.h"

void workload_print(const char *s) { fputs(s, stdout); }

int main(int argc, char **argv)
{
    struct workload_result result;
    struct timespec start, end;
    unsigned long iterations = WORKLOAD_DEFAULT_ITERATIONS;
    double seconds;
    int status;

    if (argc > 2 || (argc == 2 && sscanf(argv[1], "%lu", &iterations) != 1)) {
        fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    workload_run((uint32_t)iterations, &result);
    clock_gettime(CLOCK_MONOTONIC, &end);
    seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;

    status = workload_report(&result);
    printf("iterations=%lu checksum=0x%08lx seconds=%.6f\n", iterations,
           (unsigned long)result.checksum, seconds);
    return status;
}

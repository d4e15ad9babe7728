/* fpu-expect: prints the double bits of the fpu guest's series for each task (guests/fpu.c's
 * expected_series), by running fpu_work.h's instructions natively. A 64-bit host program, run by hand
 * (never by the build): gcc -O2 -o /tmp/fpu-expect lguest/tools/fpu-expect.c && /tmp/fpu-expect */
#include <stdio.h>
#include "../guests/fpu_work.h"
#include "../guests/fpu_tasks.h"

int main(void)
{
	for (unsigned int t = 0; t < FPU_TASKS; t++) {
		struct fpu_result r;
		fpu_work(FPU_BASE(t), FPU_N(t), FPU_CW(t), FPU_SQUARE(t), &r);
		printf("\t0x%016llxull, /* task role %u: sum %lld squares %lld cw %04x root %d */\n", r.series, t,
		       r.sum, r.squares, r.cw, r.root);
	}
	return 0;
}

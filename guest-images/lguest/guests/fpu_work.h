/* fpu_work.h: the x87 work of one fpu guest task (fpu_user.c), shared with tools/fpu-expect.c, which runs
 * the very same instructions natively (x87 behaves the same in 64-bit mode) to print the expected bits of
 * the inexact series. Only inline assembly touches the FPU: the guest build has no x87 code generation
 * (-mno-80387), so the compiler never uses or clobbers the x87 stack between the statements below, and
 * the accumulators live in ST(0)-ST(2) across the whole loop (and so across every preemption). */
#ifndef FPU_WORK_H
#define FPU_WORK_H

struct fpu_result {
	long long sum, squares;     /* sum of x, sum of x*x (exact) */
	unsigned long long series;  /* the bits of sum of 1/(x*x) as a double */
	unsigned short cw;          /* FNSTCW at the end: the task's own control word */
	int root;                   /* FSQRT of a perfect square, stored as an integer */
};

/* x = base + 1 .. base + n; cw: the control word the task runs with (its rounding control is its own). */
static inline void fpu_work(unsigned int base, unsigned int n, unsigned short cw, int square,
			    struct fpu_result *r)
{
	asm volatile("fninit\n\tfldcw %0" :: "m"(cw));
	asm volatile("fldz\n\tfldz\n\tfldz");                 /* R (series), Q (squares), S (sum) */
	for (unsigned int i = 1; i <= n; i++) {
		int x = (int)(base + i);
		asm volatile("fildl %0\n\t"                  /* x, S, Q, R */
			     "fld %%st(0)\n\t"               /* x, x, S, Q, R */
			     "fmul %%st(0), %%st(0)\n\t"     /* x2, x, S, Q, R */
			     "fadd %%st(0), %%st(3)\n\t"     /* Q += x2 */
			     "fld1\n\t"                      /* 1, x2, x, S, Q, R */
			     "fdiv %%st(1), %%st(0)\n\t"     /* 1/x2, x2, x, S, Q, R */
			     "faddp %%st(0), %%st(5)\n\t"    /* R += 1/x2: x2, x, S, Q, R */
			     "fstp %%st(0)\n\t"              /* x, S, Q, R */
			     "faddp %%st(0), %%st(1)"        /* S += x: S, Q, R */
			     :: "m"(x));
	}
	asm volatile("fistpll %0" : "=m"(r->sum));
	asm volatile("fistpll %0" : "=m"(r->squares));
	asm volatile("fstpl %0" : "=m"(r->series));
	asm volatile("fnstcw %0" : "=m"(r->cw));
	asm volatile("fildl %1\n\tfsqrt\n\tfistpl %0" : "=m"(r->root) : "m"(square));
}

#endif

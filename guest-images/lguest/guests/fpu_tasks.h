/* fpu_tasks.h: what each fpu guest task computes (role t = 0..FPU_TASKS-1), shared by the kernel (the
 * checks), the ring-3 program and tools/fpu-expect.c. */
#ifndef FPU_TASKS_H
#define FPU_TASKS_H
#define FPU_TASKS      4
#define FPU_BASE(t)    (1000u * (t))                  /* x = base + 1 .. base + n */
#define FPU_N(t)       (1500u + 250u * (t))
#define FPU_CW(t)      ((unsigned short)(0x037F | ((t) & 3) << 10))  /* all masked, 64-bit, RC = t */
#define FPU_ROOT(t)    (12345 + 1111 * (t))
#define FPU_SQUARE(t)  (FPU_ROOT(t) * FPU_ROOT(t))
#endif

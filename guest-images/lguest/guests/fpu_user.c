/* fpu_user: the ring-3 program of every fpu guest task (linked at USER_BASE by user.ld). The kernel
 * starts it with EAX = its role; it runs fpu_work.h's loop (accumulators in the x87 stack across every
 * preemption, its own rounding control), writes the results into the kernel-visible result block with
 * SYS_WRITE (the bytes of a struct fpu_result) and exits with 10 + role. The kernel checks the values. */
#include "user_abi.h"
#include "fpu_work.h"
#include "fpu_tasks.h"

typedef unsigned int u32;

static u32 sys3(u32 nr, u32 a, u32 b, u32 c)
{
	asm volatile("int $0x80" : "+a"(nr) : "b"(a), "c"(b), "d"(c) : "memory");
	return nr;
}

static struct fpu_result result;

void umain(u32 role)
{
	fpu_work(FPU_BASE(role), FPU_N(role), FPU_CW(role), FPU_SQUARE(role), &result);
	sys3(SYS_WRITE, 1, (u32)&result, sizeof(result));
	sys3(SYS_EXIT, 10 + role, 0, 0);
}

/* The entry point (first in .text): EAX = role; there is nothing to return to. */
asm(".section .text.entry, \"ax\"\n"
    ".globl _start\n"
    "_start:\n\t"
    "pushl %eax\n\t"
    "call umain\n"
    "0:\tjmp 0b\n\t"
    ".previous");

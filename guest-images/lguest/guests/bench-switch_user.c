/* bench-switch_user: the ring-3 program of every bench-switch task (linked at USER_BASE by user.ld).
 * The kernel starts it with EAX = how many times to yield. After each yield it checks that its private
 * word and getpid() are still its own; exit(0) if they always were, exit(1) otherwise. */
#include "user_abi.h"

typedef unsigned int u32;

static volatile u32 mine;   /* in this task's private copy of the program */

static u32 sys1(u32 nr, u32 a)
{
	asm volatile("int $0x80" : "+a"(nr) : "b"(a) : "memory");
	return nr;
}

void umain(u32 yields)
{
	u32 pid = sys1(SYS_GETPID, 0), bad = 0;
	mine = pid * 0x9E3779B9u;
	for (u32 i = 0; i < yields; i++) {
		sys1(SYS_YIELD, 0);
		bad |= mine != pid * 0x9E3779B9u || sys1(SYS_GETPID, 0) != pid;
	}
	sys1(SYS_EXIT, bad != 0);
}

/* The entry point (first in .text): EAX = the number of yields; there is nothing to return to. */
asm(".section .text.entry, \"ax\"\n"
    ".globl _start\n"
    "_start:\n\t"
    "pushl %eax\n\t"
    "call umain\n"
    "0:\tjmp 0b\n\t"
    ".previous");

/* user_abi.h: what a ring-3 program of the usermode guest and the runtime's task code agree on: where
 * the program is linked and mapped, its stack and TLS, and the system calls ("int $0x80", EAX = number,
 * EBX/ECX/EDX = arguments, result in EAX; Linux's numbers where Linux has the call). This is our own
 * convention, not part of the lguest ABI. */
#ifndef USER_ABI_H
#define USER_ABI_H

#define USER_BASE        0x00400000   /* program (text, data, bss), entry point at its start */
#define USER_TLS_VA      0x00600000   /* TLS page; task n's TLS base is USER_TLS_VA + 16 * n */
#define USER_STACK_TOP   0x00800000
#define USER_STACK_PAGES 2

#define SYS_EXIT         1            /* exit(code) */
#define SYS_WRITE        4            /* write(fd, buf, len): appended to the task's output */
#define SYS_GETPID       20           /* getpid() */
#define SYS_YIELD        158          /* sched_yield() */
#define SYS_PREEMPTIONS  500          /* ours: times the caller was preempted by the timer */

#define ENOSYS           38
#define EFAULT           14

#endif

/* usermode_user: the ring-3 program every task of the usermode guest runs (linked at USER_BASE by
 * user.ld, copied privately into each task). The kernel starts it with EAX = its role:
 *   roles 0..5  compute a checksum whose size depends on the role, keep running until the timer has
 *               preempted them at least once, yield a few times, and after every switch check that
 *               their private memory, their TLS segment (%gs:0 = pid) and getpid() are still theirs;
 *               exit(10 + role)
 *   role 6      reads kernel memory and is killed by the page fault
 *   role 7      tries a hypercall (int $0x1f) from ring 3 and is killed by the #GP
 * Everything a task prints goes into its own output buffer (SYS_WRITE), so the guest's console output
 * does not depend on where the timer happened to preempt. */
#include "format.h"
#include "user_abi.h"

#define DATA_WORDS    2048          /* 8 KiB of private data, spanning pages */
#define PREEMPT_LIMIT (1u << 24)    /* give up waiting for the timer after this many iterations */

static u32 data[DATA_WORDS];

static int sys3(u32 nr, u32 a, u32 b, u32 c)
{
	asm volatile("int $0x80" : "+a"(nr) : "b"(a), "c"(b), "d"(c) : "memory");
	return (int)nr;
}

static void uprintf(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	sys3(SYS_WRITE, 1, (u32)buf, n);
}

static void uexit(int code)
{
	sys3(SYS_EXIT, code, 0, 0);
}

static u32 read_tls_word(void)
{
	u32 v;
	asm volatile("movl %%gs:0, %0" : "=r"(v));
	return v;
}

static u32 current_ring(void)
{
	u32 cs;
	asm volatile("movl %%cs, %0" : "=r"(cs));
	return cs & 3;
}

static u32 pattern(u32 pid, u32 i)
{
	return (pid * 0x01010101u) ^ (i * 2654435761u);
}

static int private_state_ok(u32 pid)
{
	for (u32 i = 0; i < DATA_WORDS; i++)
		if (data[i] != pattern(pid, i))
			return 0;
	return read_tls_word() == pid && (u32)sys3(SYS_GETPID, 0, 0, 0) == pid;
}

static void worker(u32 role)
{
	u32 pid = sys3(SYS_GETPID, 0, 0, 0);
	int ok = 1;
	uprintf("task %u: role %u, running at ring %u\n", pid, role, current_ring());

	for (u32 i = 0; i < DATA_WORDS; i++)
		data[i] = pattern(pid, i);
	if (read_tls_word() != pid) {
		uprintf("FAIL: task %u: %%gs:0 reads %u\n", pid, read_tls_word());
		ok = 0;
	}

	/* A fixed amount of work, so the result does not depend on timing; it also rewrites our data
	 * (to the same values) all along, so stores happen across preemptions. */
	u32 x = pid, iterations = 20000 + 5000 * role;
	for (u32 i = 0; i < iterations; i++) {
		x = x * 1103515245u + 12345u;
		data[i % DATA_WORDS] = pattern(pid, i % DATA_WORDS);
	}
	uprintf("task %u: checksum of %u steps: %08x\n", pid, iterations, x);

	/* Then run until the timer has taken the CPU from us at least once. */
	u32 spins = 0;
	while (sys3(SYS_PREEMPTIONS, 0, 0, 0) == 0 && spins < PREEMPT_LIMIT)
		for (u32 k = 0; k < 1000; k++, spins++)
			x = x * 1103515245u + 12345u;
	int preempted = sys3(SYS_PREEMPTIONS, 0, 0, 0) > 0;
	if (!preempted) {
		uprintf("FAIL: task %u: never preempted\n", pid);
		ok = 0;
	}
	if (!private_state_ok(pid)) {
		uprintf("FAIL: task %u: private memory, TLS or pid changed while preempted\n", pid);
		ok = 0;
	}

	for (int i = 0; i < 3; i++) {
		sys3(SYS_YIELD, 0, 0, 0);
		if (!private_state_ok(pid)) {
			uprintf("FAIL: task %u: private memory, TLS or pid changed across yield %d\n", pid, i);
			ok = 0;
		}
	}
	uprintf("task %u: preempted: %s, memory/tls/pid intact across switches: %s\n", pid,
		preempted ? "yes" : "no", ok ? "yes" : "no");
	uexit(ok ? 10 + (int)role : 1);
}

void umain(u32 role)
{
	u32 pid = sys3(SYS_GETPID, 0, 0, 0);
	if (role == 6) {
		uprintf("task %u: reading kernel memory at %08x\n", pid, 0xC0100000u);
		uprintf("task %u: read %08x (FAIL: should have faulted)\n", pid, *(volatile u32 *)0xC0100000);
		uexit(1);
	}
	if (role == 7) {
		uprintf("task %u: trying a hypercall from ring 3\n", pid);
		asm volatile("int $0x1f" :: "a"(2), "b"(0), "c"(1) : "memory");
		uprintf("task %u: FAIL: the hypercall returned\n", pid);
		uexit(1);
	}
	worker(role);
}

/* The entry point (first in .text): EAX = role; there is nothing to return to. */
asm(".section .text.entry, \"ax\"\n"
    ".globl _start\n"
    "_start:\n\t"
    "pushl %eax\n\t"
    "call umain\n\t"
    "movl $" "1" ", %eax\n\t"   /* SYS_EXIT, in case umain returns */
    "movl $1, %ebx\n\t"
    "int $0x80\n"
    "0:\tjmp 0b\n\t"
    ".previous");

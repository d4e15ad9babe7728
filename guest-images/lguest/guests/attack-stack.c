/* attack-stack: SET_STACK with a kernel stack inside the Switcher's region (issue 10, defect 5). The
 * Host must refuse every such stack in both paging modes, with one reason ("bad stack page ADDR in the
 * Switcher's pages"): were the Switcher's regs page accepted as the ring-1 stack, the CPU would push trap
 * frames from ring 3 over the registers the Switcher saves and restores. `--cmdline where=NAME`:
 *   regs   the top of this vCPU's own regs page (mapped writable into this vCPU's shadow: PAE's walk of the
 *          shadow found it writable and took it)
 *   ro     the top of this vCPU's read-only Switcher page (IDT, GDT, TSS)
 *   code   the top of the Switcher's code page
 *   other  the top of where vCPU 1's regs page would be (not mapped for vCPU 0)
 *   end    the last page of the address space (an ESP of 0 wraps to it)
 * A Host that accepts the stack lets the guest go on: it prints "FAIL: attack-stack: SET_STACK on ADDR
 * accepted" and shuts down with that message. */
#include "kernel.h"

static const struct { const char *name; u32 top; } places[] = {
	{ "regs",  SWITCHER_ADDR + 2 * PAGE_SIZE },
	{ "ro",    SWITCHER_ADDR + 3 * PAGE_SIZE },
	{ "code",  SWITCHER_ADDR + 1 * PAGE_SIZE },
	{ "other", SWITCHER_ADDR + 4 * PAGE_SIZE },
	{ "end",   0 },
};

void guest_main(void)
{
	char buf[16];
	const char *where = cmdline_value("where", buf, sizeof(buf));
	for (u32 i = 0; i < ARRAY_SIZE(places); i++) {
		if (!where || strcmp(where, places[i].name))
			continue;
		printk("attack-stack: SET_STACK on the %s page, esp %08x\n", places[i].name, places[i].top);
		hcall_set_stack(KERNEL_DS, places[i].top, 1);
		check(0, "attack-stack: SET_STACK on %08x accepted", places[i].top);
	}
	panic("attack-stack: where=regs|ro|code|other|end");
}

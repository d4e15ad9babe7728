/* boot.c: lguest_data, boot_params, and the C half of the boot (after entry.S's LGUEST_INIT). */
#include "kernel.h"

/* G:data The page we share with the Host, statically initialised the way abi 2.4 describes: every ring
 * slot free (0xFF), the no-interrupt window around lguest_iret's last two instructions, our
 * PAGE_OFFSET, the syscall vector, and the timer interrupt blocked until clock_init sets the clock up.
 * We block the device IRQs (1..31) too: these guests drive no devices, and a stray console interrupt
 * must not wake a HALT the timer test is counting. irq_enabled starts at 0: no interrupts until we
 * have an IDT. It is page aligned only so it is easy to find in a dump. */
struct lguest_data lguest_data __attribute__((aligned(PAGE_SIZE))) = {
	.irq_enabled = 0,
	.blocked_interrupts = { 0xFFFFFFFF },
	.hcall_status = { [0 ... LHCALL_RING_SIZE - 1] = LHCALL_STATUS_FREE },
	.noirq_start = (u32)lguest_noirq_start,
	.noirq_end = (u32)lguest_noirq_end,
	.kernel_address = PAGE_OFFSET,
	.syscall_vec = LGUEST_SYSCALL_VECTOR,
};

struct boot_params *boot_params;
u64 boot_mem_size;
const char *boot_cmdline;

#define CMDLINE_MAX 1024
static char cmdline_copy[CMDLINE_MAX];

/* The default pre-INIT hook: nothing (misbehave overrides it). */
__attribute__((weak)) void lguest_pre_init(void)
{
}

/* Find "key=value" among the space-separated words of the command line; copies the value. */
const char *cmdline_value(const char *key, char *buf, u32 size)
{
	u32 klen = strlen(key);
	const char *p = boot_cmdline ? boot_cmdline : "";
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			const char *v = p + klen + 1;
			u32 n = 0;
			while (v[n] && v[n] != ' ' && n + 1 < size) {
				buf[n] = v[n];
				n++;
			}
			buf[n] = '\0';
			return buf;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

/* Read what the Launcher left in the zero page. The zero page and the command line are in RAM, so
 * the linear map reaches them; the command line is copied because page-table pages may later be
 * allocated from low memory. */
static void read_boot_params(void)
{
	boot_params = (struct boot_params *)__va(BOOT_PARAMS_PHYS);
	boot_mem_size = boot_params->e820_entries ? boot_params->e820_map[0].size : 0;
	u32 ptr = boot_params->cmd_line_ptr;
	if (ptr && ptr < boot_mem_size) {
		const char *src = __va(ptr);
		u32 n = 0;
		while (src[n] && n + 1 < CMDLINE_MAX) {
			cmdline_copy[n] = src[n];
			n++;
		}
		cmdline_copy[n] = '\0';
	}
	boot_cmdline = cmdline_copy;
}

/* G:start entry.S calls this once LGUEST_INIT has returned: set up the boot_params view, our GDT and
 * IDT entries, the kernel stack for traps from ring 3, and our own kernel page tables, then run the
 * guest. */
void lguest_start(void)
{
	read_boot_params();
	gdt_init();
	idt_init();
	hcall_set_stack(KERNEL_DS, (u32)boot_stack_top, 2);
	mm_init();
	guest_main();
	power_off();
}

/* hello: the first guest to boot. Prints a greeting, the command line and the memory size the Launcher
 * passed in boot_params, checks what the Host wrote into lguest_data at LGUEST_INIT, exercises the
 * async hypercall ring (including the ring-full fallback), and powers off.
 *
 * Expected output (the command line and memory size vary with the Launcher's options):
 *   hello: Hello from an lguest-ts guest!
 *   hello: command line: "..."
 *   hello: memory: N bytes (M MiB)
 *   check: ...: ok            (one line per check)
 *   hello: done
 * and the Host reports "CRASH: Power down". */
#include "kernel.h"

#define ASYNC_CALLS 100

static void check_async_ring(void)
{
	u32 queued = hcall_async_queued, full = hcall_async_full;
	/* Interrupts are off (we never turned them on), so nothing else makes a hypercall in this loop:
	 * the first 64 calls fill the ring, the 65th finds slot next_call still pending and goes
	 * synchronously (the Host drains all 64 first), the remaining 35 are queued again. TS(0) does
	 * nothing visible. */
	for (u32 i = 0; i < ASYNC_CALLS; i++)
		async_hcall(LHCALL_TS, 0, 0, 0, 0);
	queued = hcall_async_queued - queued;
	full = hcall_async_full - full;
	hcall_flush_async();
	u32 busy = 0;
	for (u32 i = 0; i < LHCALL_RING_SIZE; i++)
		busy += ((volatile u8 *)lguest_data.hcall_status)[i] != LHCALL_STATUS_FREE;
	check(queued == ASYNC_CALLS - 1 && full == 1,
	      "async ring: %u calls queued, %u made synchronously when the ring was full", queued, full);
	check(busy == 0, "async ring: every slot free again after FLUSH_ASYNC (%u busy)", busy);
}

void guest_main(void)
{
	struct boot_params *bp = boot_params;
	printk("hello: Hello from an lguest-ts guest!\n");
	printk("hello: command line: \"%s\"\n", boot_cmdline);
	printk("hello: memory: %llu bytes (%llu MiB)\n", boot_mem_size, boot_mem_size >> 20);
#ifdef CONFIG_PAE
	printk("hello: paging: PAE\n");
#else
	printk("hello: paging: 2-level\n");
#endif
	printk("hello: format: [%d] [%u] [%x] [%08X] [%s] [%c] [%lld] [%llx] [%-6s] [%5d] [%05d] [%%]\n",
	       -42, 3000000000u, 0xbeef, 0xC0FFEEu, "str", 'c', -1234567890123ll, 0x123456789abcdefull,
	       "left", 77, -12);

	check(bp->hardware_subarch == HARDWARE_SUBARCH_LGUEST, "boot_params hardware_subarch is 1 (lguest)");
	check(bp->e820_entries >= 1 && bp->e820_map[0].addr == 0 && bp->e820_map[0].type == E820_RAM,
	      "e820 entry 0 is RAM starting at 0");
	check(bp->cmd_line_ptr == BOOT_CMDLINE_PHYS, "cmd_line_ptr is 0x%x", BOOT_CMDLINE_PHYS);
	check(lguest_data.reserve_mem == LGUEST_RESERVE_MEM, "lguest_data.reserve_mem is %u MiB",
	      LGUEST_RESERVE_MEM >> 20);
	u32 pgdir = lguest_data.pgdir;
	check(pgdir && !(pgdir & (PAGE_SIZE - 1)) && pgdir < boot_mem_size,
	      "lguest_data.pgdir is a page-aligned RAM address");
	check(lguest_data.kernel_address == PAGE_OFFSET && lguest_data.syscall_vec == LGUEST_SYSCALL_VECTOR,
	      "kernel_address and syscall_vec as we set them");
	check(lguest_data.noirq_end - lguest_data.noirq_start == (u32)(lguest_noirq_end - lguest_noirq_start),
	      "noirq window covers lguest_iret's last two instructions");
	check(current_mm == &kernel_mm, "running on our own kernel page tables");
	check_async_ring();
	printk("hello: done\n");
	power_off();
}

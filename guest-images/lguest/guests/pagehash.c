/* pagehash: the page-hash experiment (examples/plugins/page-hash.ts, `lguest-ts run pagehash --plugin
 * examples/plugins/page-hash.ts`). The plug-in's PAGE_HASH (0x1010) returns the 32-bit FNV-1a hash of the
 * guest's memory at guest-virtual arg1, arg2 bytes long, read through this vCPU's own page tables; the
 * guest computes the same hash itself and compares, for a buffer inside one page, one that straddles two
 * pages, and one in a ring-3-style mapping at a high kernel address. PAGE_HASH_PHYS (0x1011) does the same
 * by guest-physical address. case=unmapped asks for an address it never mapped: the plug-in's checked read
 * kills the guest with a reason that names the address. */
#include "kernel.h"

#define PAGE_HASH      0x1010
#define PAGE_HASH_PHYS 0x1011

static u8 buf[3 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static u32 fnv1a(const u8 *p, u32 n)
{
	u32 h = 2166136261u;
	for (u32 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

void guest_main(void)
{
	char value[16];
	printk("pagehash: hashing guest memory in a plug-in\n");
	for (u32 i = 0; i < sizeof(buf); i++)
		buf[i] = (u8)(i * 7 + (i >> 8));
	if (cmdline_value("case", value, sizeof(value)) && !strcmp(value, "unmapped")) {
		printk("pagehash: asking for an unmapped address\n");
		hcall(PAGE_HASH, 0x00001000, 16, 0, 0); /* the guest's page 0..: nothing below the kernel is mapped */
		panic("pagehash: the Host hashed an unmapped address");
	}
	u32 mine = fnv1a(buf + 100, 500), host = hcall(PAGE_HASH, (u32)(buf + 100), 500, 0, 0);
	check(host == mine, "inside a page: Host %08x, guest %08x", host, mine);
	mine = fnv1a(buf + PAGE_SIZE - 37, 2 * PAGE_SIZE);
	host = hcall(PAGE_HASH, (u32)(buf + PAGE_SIZE - 37), 2 * PAGE_SIZE, 0, 0);
	check(host == mine, "across page boundaries: Host %08x, guest %08x", host, mine);
	host = hcall(PAGE_HASH_PHYS, __pa(buf), PAGE_SIZE, 0, 0);
	check(host == fnv1a(buf, PAGE_SIZE), "by guest-physical address: Host %08x", host);
	buf[PAGE_SIZE + 5] ^= 0xff;
	host = hcall(PAGE_HASH, (u32)buf, sizeof(buf), 0, 0);
	check(host == fnv1a(buf, sizeof(buf)), "sees the guest's own latest write: Host %08x", host);
	printk("pagehash: done\n");
	power_off();
}

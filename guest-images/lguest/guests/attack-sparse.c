/* attack-sparse: a valid guest with a huge, sparse set of mappings (issue 10, defect 8). SPACES address
 * spaces (default 4), each mapping PER pages (default 190, so 760 in all) 4 MiB apart below the kernel,
 * every page a frame of its own: every mapping needs a shadow page-table page of its own (2-level: one
 * per 4 MiB; PAE: one per 2 MiB), more than the Host pool holds for a 16 MiB guest. ROUNDS times
 * (default 3) it switches through every address space and writes, then reads back, a tag in each page.
 * A Host whose fixed pool kills it ("out of memory allocating a shadow page") fails it; one that evicts
 * shadow pages runs it to the end:
 *   attack-sparse: 4 address spaces x 190 sparse 4 MiB mappings (paging: 2-level|PAE)
 *   check: round 1: every page of every address space holds its own tag: ok
 *   ... (ROUNDS lines)
 *   attack-sparse: done
 * `--cmdline spaces=N per=M rounds=R` changes the numbers (N <= 8, M <= 760). */
#include "kernel.h"

#define MAX_SPACES   8
#define MAX_PER      760
#define STRIDE       (4u << 20)
#define SPARSE_BASE    0x00400000u

static struct mm spaces[MAX_SPACES];

static u32 arg(const char *key, u32 dflt, u32 max)
{
	char buf[16];
	const char *v = cmdline_value(key, buf, sizeof(buf));
	u32 n = 0;
	if (!v || !*v)
		return dflt;
	for (; *v >= '0' && *v <= '9'; v++)
		n = n * 10 + (u32)(*v - '0');
	return n == 0 || n > max ? dflt : n;
}

static u32 va_of(u32 i)
{
	return SPARSE_BASE + i * STRIDE;
}

static u32 tag(u32 s, u32 i, u32 round)
{
	return 0x5A000000u ^ (s << 20) ^ (i << 8) ^ round;
}

void guest_main(void)
{
	u32 nspaces = arg("spaces", 4, MAX_SPACES), per = arg("per", 190, MAX_PER), rounds = arg("rounds", 3, 100);
#ifdef CONFIG_PAE
	const char *paging = "PAE";
#else
	const char *paging = "2-level";
#endif
	printk("attack-sparse: %u address spaces x %u sparse 4 MiB mappings (paging: %s)\n", nspaces, per, paging);
	if (va_of(per - 1) >= PAGE_OFFSET)
		panic("attack-sparse: per=%u does not fit below the kernel", per);
	for (u32 s = 0; s < nspaces; s++) {
		mm_create_user(&spaces[s]);
		lazy_mode_begin();
		for (u32 i = 0; i < per; i++)
			mm_map(&spaces[s], va_of(i), __pa(page_alloc()), _PAGE_RW | _PAGE_USER);
		lazy_mode_end();
	}
	for (u32 r = 1; r <= rounds; r++) {
		u32 bad = 0, bad_s = 0, bad_i = 0;
		for (u32 s = 0; s < nspaces; s++) {
			mm_switch(&spaces[s]);
			for (u32 i = 0; i < per; i++)
				*(volatile u32 *)va_of(i) = tag(s, i, r);
		}
		for (u32 s = 0; s < nspaces; s++) {
			mm_switch(&spaces[s]);
			for (u32 i = 0; i < per; i++) {
				if (*(volatile u32 *)va_of(i) != tag(s, i, r) && !bad++) {
					bad_s = s;
					bad_i = i;
				}
			}
		}
		if (bad)
			printk("attack-sparse: round %u: %u pages wrong, the first in space %u, mapping %u\n", r, bad, bad_s,
			       bad_i);
		check(bad == 0, "round %u: every page of every address space holds its own tag", r);
	}
	mm_switch(&kernel_mm);
	printk("attack-sparse: done\n");
	power_off();
}

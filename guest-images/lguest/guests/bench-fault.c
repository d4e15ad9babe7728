/* bench-fault: page faults the Host fixes, for bench/run.ts. Maps a window of 4096 kernel pages at
 * 0xD0000000 present and writable but neither accessed nor dirty (so the Host has nothing it may install
 * in advance: each first touch is a fault that its shadow paging fixes, and pre-faulting skips them),
 * writes one word to each page, and starts the window over until N pages were touched.
 *
 *   lguest-ts run bench-fault --cmdline faults=N       (default 10000)
 *
 * The window's pages share 64 frames (aliases cost the Host nothing extra and keep the guest small).
 * Its PTE pages are filled in memory and handed to the Host with one SET_PGD (PAE: SET_PMD) per table,
 * which drops the shadow of that table: a new round faults again without a SET_PTE per page. The Host
 * counts the faults it fixed (--stats-json: host.faultsFixed). */
#include "bench.h"

#define FAULT_VA      0xD0000000u
#define WINDOW_PAGES  4096u
#define WINDOW_TABLES (WINDOW_PAGES / PTRS_PER_PTE)
#define FRAMES        64u
#define WORDS_PER_PAGE (PAGE_SIZE / 4)

static pte_t *window_ptes;   /* WINDOW_TABLES contiguous PTE pages */
static u32 *frames;          /* FRAMES contiguous pages */

/* Fresh PTEs for the whole window (A and D clear), then tell the Host table by table. */
static void reset_window(void)
{
	for (u32 i = 0; i < WINDOW_PAGES; i++)
		window_ptes[i] = (pte_t)(__pa(frames) + (i % FRAMES) * PAGE_SIZE) | _PAGE_PRESENT | _PAGE_RW;
	for (u32 t = 0; t < WINDOW_TABLES; t++)
		mm_set_table_entry(&kernel_mm, FAULT_VA + t * PTRS_PER_PTE * PAGE_SIZE,
				   (u64)__pa(&window_ptes[t * PTRS_PER_PTE]) | _KERNPG_TABLE);
}

void guest_main(void)
{
	u32 faults = bench_option("faults", 10000);
	printk("bench-fault: touching %u fresh pages (a window of %u pages at %08x)\n", faults, WINDOW_PAGES,
	       FAULT_VA);
	window_ptes = pages_alloc(WINDOW_TABLES);
	frames = pages_alloc(FRAMES);
	u32 round_start = 0;
	for (u32 i = 0; i < faults; i++) {
		u32 k = i % WINDOW_PAGES;
		if (k == 0) {
			reset_window();
			round_start = i;
		}
		/* A write (not a read-modify-write): one fault per page, which the Host fixes writable. */
		volatile u32 *page = (volatile u32 *)(FAULT_VA + k * PAGE_SIZE);
		page[(k / FRAMES) % WORDS_PER_PAGE] = i;
	}
	/* Every write of the last round reached the frame its PTE named (read back through the linear map). */
	u32 bad = 0;
	for (u32 i = round_start; i < faults; i++) {
		u32 k = i % WINDOW_PAGES;
		bad += frames[(k % FRAMES) * WORDS_PER_PAGE + (k / FRAMES) % WORDS_PER_PAGE] != i;
	}
	check(bad == 0, "every write of the last round is in its frame (%u wrong)", bad);
	printk("bench-fault: done\n");
	power_off();
}

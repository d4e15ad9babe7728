/* mm.c: physical pages and page tables (2-level, or PAE with -DCONFIG_PAE).
 *
 * G:mm The Host keeps shadow page tables built from ours, so it must hear about every change: SET_PTE
 * for each page-table entry we write (the top level it belongs to, the virtual address, the value),
 * SET_PGD for a top-level entry, SET_PMD (PAE) for a middle-level entry, NEW_PGTABLE to switch, and
 * FLUSH_TLB when we want everything re-read. Batches of updates go through the async ring (lazy mode)
 * and are flushed before we depend on them.
 *
 * Layout: we start on the Host's boot tables (RAM mapped at 0 and at PAGE_OFFSET, every page USER and
 * writable). mm_init builds kernel_mm, which maps RAM at PAGE_OFFSET only, for the kernel only, and
 * switches to it; the identity map disappears, so a stray low pointer faults. User address spaces copy
 * kernel_mm's top-level kernel entries, so all of them share the kernel's lower-level tables. */
#include "kernel.h"

/* We map at most this much RAM (plenty for our guests; well clear of the Switcher's slot). */
#define MAX_LINEAR_MAP (256u * 1024 * 1024)

#define PTE_ADDR_MASK 0xFFFFF000u

struct mm kernel_mm;
struct mm *current_mm;
u32 mm_mapped_bytes;

static u32 next_free_phys, free_limit_phys;

/* G:alloc A bump allocator over RAM between the end of our image and the first page of the Host's boot
 * page tables (which sit just below the initrd at the top of RAM, abi 3.5: the top level, and below it
 * the PTE pages, and on PAE one PMD page). Pages are never freed. */
void *pages_alloc(u32 n)
{
	u32 pa = next_free_phys;
	if (n == 0 || n > (free_limit_phys - pa) / PAGE_SIZE)
		panic("out of memory (%u pages wanted at %08x, limit %08x)", n, pa, free_limit_phys);
	next_free_phys += n * PAGE_SIZE;
	memset(__va(pa), 0, n * PAGE_SIZE);
	return __va(pa);
}

void *page_alloc(void)
{
	return pages_alloc(1);
}

static void alloc_init(void)
{
	u32 mem = boot_mem_size > MAX_LINEAR_MAP ? MAX_LINEAR_MAP : (u32)boot_mem_size;
	u32 boot_pgdir = lguest_data.pgdir;
	u32 ram_pages = (u32)(boot_mem_size >> PAGE_SHIFT);
	u32 linear_pages = (ram_pages + PTRS_PER_PTE - 1) / PTRS_PER_PTE;
#ifdef CONFIG_PAE
	u32 boot_tables = boot_pgdir - (linear_pages + 1) * PAGE_SIZE;
#else
	u32 boot_tables = boot_pgdir - linear_pages * PAGE_SIZE;
#endif
	if (!boot_pgdir || (boot_pgdir & (PAGE_SIZE - 1)))
		panic("the Host reported no usable boot page table (pgdir %08x)", boot_pgdir);
	mm_mapped_bytes = mem & PTE_ADDR_MASK;
	next_free_phys = ((u32)__pa(_end) + PAGE_SIZE - 1) & PTE_ADDR_MASK;
	free_limit_phys = boot_tables < mm_mapped_bytes ? boot_tables : mm_mapped_bytes;
	if (free_limit_phys <= next_free_phys)
		panic("no free memory: image ends at %08x, limit %08x", next_free_phys, free_limit_phys);
}

static int is_kernel_va(u32 va)
{
	return va >= PAGE_OFFSET;
}

#ifdef CONFIG_PAE
/* PAE: a 4-entry top level (we give it a whole page), 512-entry PMD pages, 512-entry PTE pages.
 * A top-level (PDPT) entry may hold only PRESENT; the PMD entries carry the table flags. */
typedef u64 pgd_entry_t;

static u32 pgd_index(u32 va) { return va >> PGDIR_SHIFT; }
static u32 pmd_index(u32 va) { return (va >> PMD_SHIFT) & (PTRS_PER_PMD - 1); }
static u32 pte_index(u32 va) { return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1); }

static void write_pte(pte_t *slot, pte_t v)
{
	/* Present entries: high half first, so the entry is never present with a stale high half. */
	volatile u32 *w = (volatile u32 *)slot;
	if ((u32)v & _PAGE_PRESENT) {
		w[1] = (u32)(v >> 32);
		barrier();
		w[0] = (u32)v;
	} else {
		w[0] = (u32)v;
		barrier();
		w[1] = (u32)(v >> 32);
	}
}

static u64 *pmd_table(struct mm *mm, u32 va, int alloc)
{
	pgd_entry_t *pgd = mm->pgd;
	u32 i = pgd_index(va);
	if (!(pgd[i] & _PAGE_PRESENT)) {
		if (!alloc)
			return NULL;
		write_pte(&pgd[i], (u64)__pa(page_alloc()) | PAE_PGD_FLAGS);
		hcall_set_pgd(mm->pgd_phys, i);
	}
	return __va((u32)pgd[i] & PTE_ADDR_MASK);
}

static pte_t *pte_slot(struct mm *mm, u32 va, int alloc)
{
	u64 *pmd = pmd_table(mm, va, alloc);
	if (!pmd)
		return NULL;
	u32 j = pmd_index(va);
	if (!(pmd[j] & _PAGE_PRESENT)) {
		if (!alloc)
			return NULL;
		u32 flags = is_kernel_va(va) ? _KERNPG_TABLE : _PAGE_TABLE;
		write_pte(&pmd[j], (u64)__pa(page_alloc()) | flags);
		hcall_set_pmd(__pa(pmd), j);
	}
	pte_t *ptes = __va((u32)pmd[j] & PTE_ADDR_MASK);
	return &ptes[pte_index(va)];
}

/* The raw middle-level entry for va (misbehave uses it to plant a 2 MiB PSE entry). */
void mm_set_table_entry(struct mm *mm, u32 va, u64 entry)
{
	u64 *pmd = pmd_table(mm, va, 1);
	write_pte(&pmd[pmd_index(va)], entry);
	hcall_set_pmd(__pa(pmd), pmd_index(va));
}

#else
/* 2-level: 1024-entry top level, 1024-entry PTE pages. */
typedef u32 pgd_entry_t;

static u32 pgd_index(u32 va) { return va >> PGDIR_SHIFT; }
static u32 pte_index(u32 va) { return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1); }

static void write_pte(pte_t *slot, pte_t v)
{
	*(volatile pte_t *)slot = v;
}

static pte_t *pte_slot(struct mm *mm, u32 va, int alloc)
{
	pgd_entry_t *pgd = mm->pgd;
	u32 i = pgd_index(va);
	if (!(pgd[i] & _PAGE_PRESENT)) {
		if (!alloc)
			return NULL;
		u32 flags = is_kernel_va(va) ? _KERNPG_TABLE : _PAGE_TABLE;
		write_pte(&pgd[i], __pa(page_alloc()) | flags);
		hcall_set_pgd(mm->pgd_phys, i);
	}
	pte_t *ptes = __va(pgd[i] & PTE_ADDR_MASK);
	return &ptes[pte_index(va)];
}

/* The raw top-level entry for va (misbehave uses it to plant a 4 MiB PSE entry). */
void mm_set_table_entry(struct mm *mm, u32 va, u64 entry)
{
	pgd_entry_t *pgd = mm->pgd;
	write_pte(&pgd[pgd_index(va)], (u32)entry);
	hcall_set_pgd(mm->pgd_phys, pgd_index(va));
}
#endif

/* The kernel part of an address space: kernel_mm's top-level entries from PAGE_OFFSET up, so every
 * space shares the kernel's lower-level tables (2-level: its PTE pages; PAE: its one kernel PMD page,
 * top-level index 3 for our 3G/1G split). The Switcher's slot is never filled, so never copied. */
static void copy_kernel_part(struct mm *mm)
{
	pgd_entry_t *dst = mm->pgd, *src = kernel_mm.pgd;
	for (u32 i = pgd_index(PAGE_OFFSET); i < PTRS_PER_PGD; i++) {
		if (!(src[i] & _PAGE_PRESENT))
			continue;
		write_pte(&dst[i], src[i]);
		hcall_set_pgd(mm->pgd_phys, i);
	}
}

/* Write one PTE and tell the Host (for this top level; for a kernel address the Host updates every
 * shadow it has). */
void mm_set_pte(struct mm *mm, u32 va, pte_t pte)
{
	pte_t *slot = pte_slot(mm, va, 1);
	write_pte(slot, pte);
	hcall_set_pte(mm->pgd_phys, va, pte);
}

void mm_map(struct mm *mm, u32 va, u64 pa, u32 flags)
{
	mm_set_pte(mm, va, (pte_t)(pa & ~(u64)PAGE_FLAGS_MASK) | flags | _PAGE_PRESENT);
}

void mm_unmap(struct mm *mm, u32 va)
{
	pte_t *slot = pte_slot(mm, va, 0);
	if (!slot)
		return;
	write_pte(slot, 0);
	hcall_set_pte(mm->pgd_phys, va, 0);
}

pte_t *mm_pte_slot(struct mm *mm, u32 va)
{
	return pte_slot(mm, va, 0);
}

pte_t mm_get_pte(struct mm *mm, u32 va)
{
	pte_t *slot = pte_slot(mm, va, 0);
	return slot ? *(volatile pte_t *)slot : 0;
}

void mm_switch(struct mm *mm)
{
	current_mm = mm;
	hcall_new_pgtable(mm->pgd_phys);
}

void mm_create_user(struct mm *mm)
{
	mm->pgd = page_alloc();
	mm->pgd_phys = __pa(mm->pgd);
	lazy_mode_begin();
	copy_kernel_part(mm);
	lazy_mode_end();
}

/* G:kernelmm Build kernel_mm: every RAM page we use at PAGE_OFFSET + its address, present, writable,
 * supervisor only, accessed and dirty already (so the Host may install each entry at once). Thousands
 * of SET_PTEs go through the async ring. Then switch to it and ask for a full flush: the Host's
 * shadows of kernel addresses were made from the boot tables (which had USER set). */
void mm_init(void)
{
	alloc_init();
	kernel_mm.pgd = page_alloc();
	kernel_mm.pgd_phys = __pa(kernel_mm.pgd);
	lazy_mode_begin();
	for (u32 pa = 0; pa < mm_mapped_bytes; pa += PAGE_SIZE)
		mm_map(&kernel_mm, PAGE_OFFSET + pa, pa, _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
	lazy_mode_end();
	mm_switch(&kernel_mm);
	hcall_flush_tlb(1);
}

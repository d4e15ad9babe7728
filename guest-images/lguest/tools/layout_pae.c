/* layout_pae.c: the paging constants of lguest_abi.h as the PAE variant sees them (see layout.c). */
#define CONFIG_PAE
#include "lguest_abi.h"

void print_constant(const char *name, unsigned long long value, int *first_const);
void print_paging_constants_pae(void);

#define CONST(name) print_constant(#name, (unsigned long long)(name), &fc)

void print_paging_constants_pae(void)
{
	int fc = 1;
	CONST(SWITCHER_ADDR);
	CONST(SWITCHER_PGD_INDEX);
	CONST(LGUEST_RESERVE_MEM);
	CONST(PTRS_PER_PTE);
	CONST(PTRS_PER_PGD);
	CONST(PGDIR_SHIFT);
	print_constant("PTE_SIZE", sizeof(pte_t), &fc);
	CONST(PTRS_PER_PMD);
	CONST(PMD_SHIFT);
	CONST(PAE_PGD_FLAGS);
}

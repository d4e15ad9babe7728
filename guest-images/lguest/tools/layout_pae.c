/* layout_pae.c: the paging constants of lguest_abi.h as the PAE variant sees them (see layout.c). */
#define CONFIG_PAE
#include "lguest_abi.h"
#include "layout.h"

void paging_constants_pae(void);

void paging_constants_pae(void)
{
	PAGING_CONSTANTS_COMMON();
	CONST(PTRS_PER_PMD);
	CONST(PMD_SHIFT);
	CONST(PAE_PGD_FLAGS);
}

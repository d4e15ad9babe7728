/* layout.h: the marker macros of layout.c and layout_pae.c (see layout.c for the scheme). Each macro is
 * an asm statement whose operands are compile-time constants ("i"), printed bare by the %c modifier. */
#ifndef LAYOUT_H
#define LAYOUT_H

#define LAYOUT_MARK(text, a, b) \
	__asm__ volatile("\n@@LAYOUT " text " %c0 %c1" : : "i"((unsigned)(a)), "i"((unsigned)(b)))

#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)

#define STRUCT(type, name) LAYOUT_MARK("S " name, sizeof(type), 0)
#define FIELD(type, f) LAYOUT_MARK("F " #f, __builtin_offsetof(type, f), FIELD_SIZE(type, f))
#define END_STRUCT() LAYOUT_MARK("E", 0, 0)
#define GROUP(name) LAYOUT_MARK("G " name, 0, 0)
#define CONST(name) LAYOUT_MARK("C " #name, (name), 0)
#define CONST_VALUE(name, value) LAYOUT_MARK("C " name, (value), 0)

/* The paging constants, which differ between the 2-level and the PAE variant of the header. */
#define PAGING_CONSTANTS_COMMON() do { \
	CONST(SWITCHER_ADDR); \
	CONST(SWITCHER_PGD_INDEX); \
	CONST(LGUEST_RESERVE_MEM); \
	CONST(PTRS_PER_PTE); \
	CONST(PTRS_PER_PGD); \
	CONST(PGDIR_SHIFT); \
	CONST_VALUE("PTE_SIZE", sizeof(pte_t)); \
} while (0)

#endif

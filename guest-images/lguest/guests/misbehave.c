/* misbehave: one forbidden act per run, chosen by "case=NAME" on the command line; the Host must kill
 * us for it, each time with its own reason. If we are still alive after the act we print
 * "FAIL: misbehave: survived case NAME" and shut down with that message, so a Host that lets the act
 * pass is caught. The cases and the reasons expected are listed in lguest/README.md and below.
 *
 * Cases marked pre-INIT run from lguest_pre_init, before entry.S registers lguest_data; they cannot
 * print (the console is a hypercall, and any hypercall before INIT is itself fatal). The others print
 * "misbehave: case NAME: what" first. */
#include "kernel.h"

#define SCRATCH_VA    0xE0000000   /* kernel addresses above our linear map (which ends below 0xD0000000) */
#define BAD_HCALL     99
#define BAD_IRQ_VEC   (FIRST_EXTERNAL_VECTOR + 8)
#define TASK_GATE     0x5
#define UNMAPPED_VA   0xD0002000

#ifdef CONFIG_PAE
#define BEYOND_PA     0x100000000ull  /* pfn 0x100000: needs the PTE's high word (SET_PTE arg4) */
#else
#define BEYOND_PA     0xFFFFF000ull   /* pfn 0xFFFFF */
#endif

struct misbehave_case {
	const char *name;
	int pre_init;
	const char *what;
	void (*act)(void);
};

static void touch(u32 va)
{
	*(volatile u32 *)va = 0x0BADF00D;
	(void)*(volatile u32 *)va;
}

/* ---- pre-INIT ---- */
static void act_preinit(void)
{
	hcall(LHCALL_FLUSH_TLB, 1, 0, 0, 0);
}

static void act_kaddr(void)
{
	lguest_data.kernel_address = SWITCHER_ADDR;   /* its top-level slot is the Switcher's */
}

static void act_syscallvec(void)
{
	lguest_data.syscall_vec = LGUEST_SYSCALL_VECTOR + 1;
}

static void act_initaddr(void)
{
	hcall(LHCALL_LGUEST_INIT, 0xFFFFF000, 0, 0, 0);
}

/* ---- after INIT ---- */
static void act_switcher(void)
{
	mm_map(&kernel_mm, SWITCHER_ADDR, 0, _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
	touch(SWITCHER_ADDR);
}

static void act_pse(void)
{
	/* 2-level: a 4 MiB top-level entry; PAE: a 2 MiB middle-level entry. */
	mm_set_table_entry(&kernel_mm, SCRATCH_VA,
			   _PAGE_PRESENT | _PAGE_RW | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY);
	touch(SCRATCH_VA);
}

static void act_pte_pse(void)
{
	mm_set_pte(&kernel_mm, SCRATCH_VA,
		   PAGE_SIZE | _PAGE_PRESENT | _PAGE_RW | _PAGE_PSE | _PAGE_ACCESSED | _PAGE_DIRTY);
	touch(SCRATCH_VA);
}

static void act_beyond(void)
{
	mm_map(&kernel_mm, SCRATCH_VA, BEYOND_PA, _PAGE_RW);
	touch(SCRATCH_VA);
}

static void act_badhcall(void)
{
	hcall(BAD_HCALL, 0, 0, 0, 0);
}

static void act_idtgate(void)
{
	idt_set_gate(BAD_IRQ_VEC, trap_stub_table[BAD_IRQ_VEC], TASK_GATE, 0);
}

static void act_idtvec(void)
{
	idt_set_gate(IDT_ENTRIES, trap_stub_table[0], GATE_TYPE_INTERRUPT, 0);
}

static void act_stack3(void)
{
	hcall_set_stack(KERNEL_DS, (u32)boot_stack_top, 3);
}

static void act_stackrpl(void)
{
	hcall_set_stack(KERNEL_DS & ~3u, (u32)boot_stack_top, 1);
}

static void act_stackpage(void)
{
	hcall_set_stack(KERNEL_DS, UNMAPPED_VA + PAGE_SIZE, 1);
}

static void act_init2(void)
{
	hcall_lguest_init(__pa(&lguest_data));
}

static void act_gdt32(void)
{
	u32 d[2];
	make_segment(0, 0xFFFFFFFF, SEG_TYPE_DATA_RW, 3, d);
	hcall_load_gdt_entry(GDT_ENTRIES, d[0], d[1]);
}

static void act_notrap(void)
{
	idt_clear_gate(0);
	asm volatile("xorl %%ecx, %%ecx\n\tdivl %%ecx" ::: "eax", "ecx", "edx");
}

static void act_notify(void)
{
	hcall_notify(0xFFFFF000);
}

static void act_crash(void)
{
	hcall_shutdown("misbehave: crash requested", LGUEST_SHUTDOWN_POWEROFF);
}

static void act_restart(void)
{
	hcall_shutdown("misbehave: restart requested", LGUEST_SHUTDOWN_RESTART);
}

static const struct misbehave_case cases[] = {
	{ "preinit",    1, "FLUSH_TLB before LGUEST_INIT", act_preinit },
	{ "kaddr",      1, "kernel_address in the Switcher's top-level slot", act_kaddr },
	{ "syscallvec", 1, "syscall_vec 0x81", act_syscallvec },
	{ "initaddr",   1, "LGUEST_INIT with lguest_data beyond memory", act_initaddr },
	{ "switcher",   0, "map and write the Switcher address", act_switcher },
	{ "pse",        0, "a large-page (PSE) entry in a page directory", act_pse },
	{ "pte-pse",    0, "a PTE with the PSE bit", act_pte_pse },
	{ "beyond",     0, "map a frame beyond the memory limit", act_beyond },
	{ "badhcall",   0, "hypercall 99", act_badhcall },
	{ "idtgate",    0, "IDT entry with gate type 5 (task gate)", act_idtgate },
	{ "idtvec",     0, "IDT entry for vector 256", act_idtvec },
	{ "stack3",     0, "SET_STACK with 3 pages", act_stack3 },
	{ "stackrpl",   0, "SET_STACK with segment 0x68 (RPL 0)", act_stackrpl },
	{ "stackpage",  0, "SET_STACK on an unmapped stack", act_stackpage },
	{ "init2",      0, "a second LGUEST_INIT", act_init2 },
	{ "gdt32",      0, "LOAD_GDT_ENTRY index 32", act_gdt32 },
	{ "notrap",     0, "divide error with no IDT entry for vector 0", act_notrap },
	{ "notify",     0, "NOTIFY an address beyond guest memory", act_notify },
	{ "crash",      0, "SHUTDOWN (power off) with a message", act_crash },
	{ "restart",    0, "SHUTDOWN (restart)", act_restart },
};

static char case_name[32];

static const struct misbehave_case *find_case(void)
{
	if (!cmdline_value("case", case_name, sizeof(case_name)))
		return NULL;
	for (u32 i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, case_name))
			return &cases[i];
	return NULL;
}

/* Before LGUEST_INIT: only the boot tables and boot_params. The command line is read in place (the
 * Host's boot tables map it at PAGE_OFFSET + 0x1000). */
void lguest_pre_init(void)
{
	struct boot_params *bp = (struct boot_params *)__va(BOOT_PARAMS_PHYS);
	boot_cmdline = bp->cmd_line_ptr ? __va(bp->cmd_line_ptr) : "";
	const struct misbehave_case *c = find_case();
	if (c && c->pre_init)
		c->act();
	boot_cmdline = NULL;
}

static noreturn void survived(const char *name)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FAIL: misbehave: survived case %s", name);
	printk("%s\n", msg);
	hcall_shutdown(msg, LGUEST_SHUTDOWN_POWEROFF);
}

void guest_main(void)
{
	const struct misbehave_case *c = find_case();
	if (!c) {
		printk("misbehave: no known case=NAME on the command line \"%s\"; cases:", boot_cmdline);
		for (u32 i = 0; i < ARRAY_SIZE(cases); i++)
			printk(" %s", cases[i].name);
		printk("\n");
		hcall_shutdown("FAIL: misbehave: unknown case", LGUEST_SHUTDOWN_POWEROFF);
	}
	if (c->pre_init)
		survived(c->name);
	printk("misbehave: case %s: %s\n", c->name, c->what);
	c->act();
	survived(c->name);
}

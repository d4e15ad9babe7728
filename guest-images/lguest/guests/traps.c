/* traps: exceptions reflected by the Host into our IDT handlers, each checked and then recovered from.
 *
 * Each test arms `resume_eip` (where the handler should send us; 0 = return normally) and
 * `fault_eip` (the instruction expected to trap), runs one faulting instruction in inline assembly,
 * and checks what the handler recorded: the vector, the error code, the EIP in the frame, and for page
 * faults the address, which the Host leaves in lguest_data.cr2. One page fault is recovered from by
 * mapping the page in the handler and retrying the instruction. The I/O instructions are emulated by
 * the Host (abi 4.2) and must not reach us at all. Ends with "traps: done" and power off. */
#include "kernel.h"

#define UNMAPPED_VA  0xD0000000   /* beyond our linear map: never mapped */
#define READONLY_VA  0xD0001000   /* mapped present, not writable */
#define DEMAND_VA    0xD0002000   /* mapped by the page-fault handler on first touch */
#define DEMAND_MAGIC 0x5A17C0DE

#define PF_PROT  1   /* page-fault error code bits */
#define PF_WRITE 2
#define PF_USER  4

volatile u32 resume_eip, fault_eip;
static volatile u32 seen_count, seen_vector, seen_err, seen_eip, seen_cr2;
static volatile u32 demand_maps;

static void reset(void)
{
	seen_count = seen_vector = seen_err = seen_eip = seen_cr2 = 0;
	seen_vector = 0xFFFFFFFF;
}

static void record_trap(struct trap_frame *f)
{
	seen_count++;
	seen_vector = f->vector;
	seen_err = f->errcode;
	seen_eip = f->eip;
	if (f->vector == 14)
		seen_cr2 = read_cr2();
	if (f->vector == 14 && seen_cr2 == DEMAND_VA && !demand_maps) {
		/* Recovery by mapping: give the address a page and retry the same instruction. */
		u32 *page = page_alloc();
		page[0] = DEMAND_MAGIC;
		mm_map(current_mm, DEMAND_VA, __pa(page), _PAGE_RW);
		demand_maps++;
		return;
	}
	if (resume_eip) {
		f->eip = resume_eip;
		resume_eip = 0;
	}
}

static void expect(const char *what, u32 vector, u32 err, u32 cr2)
{
	int ok = seen_count == 1 && seen_vector == vector && seen_eip == fault_eip && seen_err == err &&
		 (vector != 14 || seen_cr2 == cr2);
	if (!ok)
		printk("traps: %s: saw %u trap(s), vector %d, eip %08x (expected %08x), error %x, cr2 %08x\n",
		       what, seen_count, (int)seen_vector, seen_eip, fault_eip, seen_err, seen_cr2);
	check(ok, "%s: vector %u at the faulting instruction, error %x%s", what, vector, err,
	      vector == 14 ? ", cr2 right" : "");
}

static void test_divide_error(void)
{
	reset();
	asm volatile("movl $1f, resume_eip\n\t"
		     "movl $0f, fault_eip\n\t"
		     "movl $1, %%eax\n\t"
		     "xorl %%edx, %%edx\n\t"
		     "xorl %%ecx, %%ecx\n"
		     "0:\tdivl %%ecx\n"
		     "1:" ::: "eax", "ecx", "edx", "memory");
	expect("divide error", 0, 0, 0);
}

static void test_breakpoint(void)
{
	reset();
	/* int3 is a trap: the frame's EIP is the next instruction, where we simply return. */
	asm volatile("movl $0f, fault_eip\n\t"
		     "int3\n"
		     "0:" ::: "memory");
	expect("breakpoint", 3, 0, 0);
}

static void test_invalid_opcode(void)
{
	reset();
	asm volatile("movl $1f, resume_eip\n\t"
		     "movl $0f, fault_eip\n"
		     "0:\tud2\n"
		     "1:" ::: "memory");
	expect("invalid opcode", 6, 0, 0);
}

static void test_general_protection(void)
{
	reset();
	/* cli at ring 1 with IOPL 0 is #GP(0); the Host does not emulate it and reflects it. */
	asm volatile("movl $1f, resume_eip\n\t"
		     "movl $0f, fault_eip\n"
		     "0:\tcli\n"
		     "1:" ::: "memory");
	expect("general protection (cli)", 13, 0, 0);
}

static void test_page_fault_read(const char *what, u32 va)
{
	reset();
	asm volatile("movl $1f, resume_eip\n\t"
		     "movl $0f, fault_eip\n"
		     "0:\tmovl (%0), %%eax\n"
		     "1:" :: "r"(va) : "eax", "memory");
	expect(what, 14, 0, va);
}

static void test_page_fault_write(void)
{
	mm_map(current_mm, READONLY_VA, __pa(page_alloc()), _PAGE_ACCESSED);
	u32 before = *(volatile u32 *)READONLY_VA;   /* reading is fine */
	reset();
	asm volatile("movl $1f, resume_eip\n\t"
		     "movl $0f, fault_eip\n"
		     "0:\tmovl $1, (%0)\n"
		     "1:" :: "r"(READONLY_VA) : "memory");
	expect("page fault (write to read-only page)", 14, PF_PROT | PF_WRITE, READONLY_VA);
	check(*(volatile u32 *)READONLY_VA == before, "read-only page unchanged");
}

static void test_page_fault_demand(void)
{
	u32 value;
	reset();
	asm volatile("movl $0f, fault_eip\n"
		     "0:\tmovl (%1), %0\n" : "=r"(value) : "r"(DEMAND_VA) : "memory");
	expect("page fault fixed by mapping the page", 14, 0, DEMAND_VA);
	check(value == DEMAND_MAGIC && demand_maps == 1, "retried load read the new page (%08x)", value);

	/* Unmapping must reach the Host's shadow (SET_PTE with 0): the next touch faults again. */
	mm_unmap(current_mm, DEMAND_VA);
	test_page_fault_read("page fault after unmapping", DEMAND_VA);
}

static void test_io_emulation(void)
{
	u32 a = 0x12345678, b = 0x12345678, c = 0x12345678;
	reset();
	asm volatile("inb $0x80, %%al" : "+a"(a));
	asm volatile("inw %%dx, %%ax" : "+a"(b) : "d"(0x3F8));
	asm volatile("inl $0x70, %%eax" : "+a"(c));
	asm volatile("outb %%al, $0x80" :: "a"(0));
	check(seen_count == 0, "in/out emulated by the Host without reaching us");
	check(a == 0x123456FF && b == 0x1234FFFF && c == 0xFFFFFFFF,
	      "IN reads all ones in the operand's width only (%08x %08x %08x)", a, b, c);
}

void guest_main(void)
{
	printk("traps: exceptions reflected to our handlers\n");
	set_trap_handler(0, record_trap);
	set_trap_handler(3, record_trap);
	set_trap_handler(6, record_trap);
	set_trap_handler(13, record_trap);
	set_trap_handler(14, record_trap);

	test_divide_error();
	test_breakpoint();
	test_invalid_opcode();
	test_general_protection();
	test_page_fault_read("page fault (read of an unmapped address)", UNMAPPED_VA);
	test_page_fault_read("page fault (NULL pointer: no identity map)", 0);
	test_page_fault_write();
	test_page_fault_demand();
	test_io_emulation();
	/* And once more after all that: the handlers still work and we carry on. */
	test_divide_error();
	printk("traps: done\n");
	power_off();
}

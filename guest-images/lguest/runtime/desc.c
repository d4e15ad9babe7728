/* desc.c: our GDT and IDT entries, which live in the Host (we cannot load GDTR/IDTR at ring 1).
 *
 * G:gdt The Host's initial GDT already has the kernel code and data entries (12, 13) at DPL 1; we add
 * the user code and data entries (14, 15) at DPL 3 with LOAD_GDT_ENTRY, and the three TLS entries
 * (6..8) come and go with LOAD_TLS. The Host sets the accessed bit of every entry and raises DPL 0 to
 * 1, so what we pass is an ordinary descriptor. */
#include "kernel.h"

#define SEG_PRESENT   0x8000
#define SEG_S         0x1000   /* code/data, not system */
#define SEG_DB        0x400000 /* 32-bit */
#define SEG_G         0x800000 /* limit in 4 KiB units */

void make_segment(u32 base, u32 last_byte, u32 type, u32 dpl, u32 desc[2])
{
	u32 limit = last_byte, g = 0;
	if (limit > 0xFFFFF) {
		limit >>= PAGE_SHIFT;
		g = SEG_G;
	}
	desc[0] = (base << 16) | (limit & 0xFFFF);
	desc[1] = (base & 0xFF000000) | g | SEG_DB | (limit & 0xF0000) | SEG_PRESENT | (dpl << 13) |
		  SEG_S | (type << 8) | ((base >> 16) & 0xFF);
}

void gdt_init(void)
{
	u32 d[2];
	make_segment(0, 0xFFFFFFFF, SEG_TYPE_CODE_RX, 3, d);
	hcall_load_gdt_entry(GDT_ENTRY_USER_CS, d[0], d[1]);
	make_segment(0, 0xFFFFFFFF, SEG_TYPE_DATA_RW, 3, d);
	hcall_load_gdt_entry(GDT_ENTRY_USER_DS, d[0], d[1]);
}

/* The Host reads the 24 bytes at the given address when it runs the call, which may be later (from
 * the async ring in lazy mode), so desc must be memory that stays put: a task's own array.
 * GS first: on every entry the Host reloads our segment registers from the saved ones, and a GS still
 * holding the previous task's TLS selector may not fit the new entries (the idle task's are empty),
 * which would fault inside the Switcher and kill us. The kernel does not use GS; a task's own GS comes
 * back from its trap frame when it returns to ring 3. */
void load_tls(const u32 desc[GDT_ENTRY_TLS_ENTRIES * 2])
{
	asm volatile("movl %0, %%gs" :: "r"(0) : "memory");
	hcall_load_tls(__pa(desc));
}

/* G:idt A gate is the handler's offset split around the selector and the type/DPL/present bits. The
 * Host forces the selector to 0x61 anyway and checks the type is an interrupt (0xE) or trap (0xF)
 * gate. */
void idt_set_gate(u32 vector, u32 handler, u32 type, u32 dpl)
{
	u32 lo = ((u32)KERNEL_CS << 16) | (handler & 0xFFFF);
	u32 hi = (handler & 0xFFFF0000) | GATE_PRESENT | (dpl << GATE_DPL_SHIFT) | (type << GATE_TYPE_SHIFT);
	hcall_load_idt_entry(vector, lo, hi);
}

void idt_clear_gate(u32 vector)
{
	hcall_load_idt_entry(vector, 0, 0);
}

/* Exceptions and the 32 virtual IRQ vectors get interrupt gates (the Host turns irq_enabled off as it
 * delivers through one). Breakpoint and overflow are DPL 3 so "int3"/"into" work from any ring; the
 * rest are DPL 0 so "int $n" cannot fake them. The hypercall vector is the Host's, not ours. The system
 * call vector is a DPL-3 trap gate: the Host may let the CPU deliver it directly. */
void idt_init(void)
{
	for (u32 v = 0; v < ARRAY_SIZE(trap_stub_table); v++) {
		if (v == LGUEST_TRAP_ENTRY)
			continue;
		u32 dpl = (v == 3 || v == 4) ? 3 : 0;
		idt_set_gate(v, trap_stub_table[v], GATE_TYPE_INTERRUPT, dpl);
	}
	idt_set_gate(LGUEST_SYSCALL_VECTOR, (u32)syscall_stub, GATE_TYPE_TRAP, 3);
}

/* attack-task: far JMP/CALL to TSS descriptors and task gates, and a task gate in the IDT (issue 10,
 * defect 9). lguest stores every system descriptor a guest loads into its GDT as not present (and the
 * Host's own TSS is busy and DPL 0), so each transfer must raise what an i386 raises for it, reflected
 * to our handler like any fault, instead of ending the run with "task switching is not supported":
 *   far jmp  to an available 32-bit TSS (GDT 20, selector 0xa1): #NP, error 0xa0 (TSS not present)
 *   far call to the same TSS:                                  #NP, error 0xa0
 *   far jmp  to a task gate (GDT 21, selector 0xa9):             #NP, error 0xa8 (gate not present)
 *   far call to a busy 32-bit TSS (GDT 22, selector 0xb1):       #GP, error 0xb0 (not available)
 *   far jmp  to the Host's TSS (GDT 16, selector 0x81):          #GP, error 0x80 (busy, DPL 0)
 * Each prints "attack-task: WHAT: #NP|#GP, error 0xNN"; then "attack-task: done" and power off.
 * `--cmdline case=idt` instead loads a present task gate into IDT entry 0x21: the Host must kill us for
 * it ("bad IDT type 5"); surviving prints "FAIL: attack-task: a task gate in the IDT was accepted". */
#include "kernel.h"

#define TSS_SEL        ((20 << 3) | GUEST_PL)
#define GATE_SEL       ((21 << 3) | GUEST_PL)
#define BUSY_SEL       ((22 << 3) | GUEST_PL)
#define HOST_TSS_SEL   ((16 << 3) | GUEST_PL)
#define TYPE_TSS32     0x9
#define TYPE_TSS32_BUSY 0xB
#define TYPE_TASK_GATE 0x5
#define DESC_P         (1u << 15)

static volatile u32 seen_vector, seen_err, seen_count;
static u8 fake_tss[104] __attribute__((aligned(16)));

extern char after_ljmp[], after_lcall[];

static void on_fault(struct trap_frame *f)
{
	seen_count++;
	seen_vector = f->vector;
	seen_err = f->errcode;
}

static volatile struct { u32 off; u16 sel; } __attribute__((packed)) farptr;
static volatile u32 resume_at;

/* Resume after the far transfer (the fault's EIP is the transfer itself). */
static void on_fault_resume(struct trap_frame *f)
{
	on_fault(f);
	f->eip = resume_at;
}

static __attribute__((noinline)) void far_jmp(u32 sel)
{
	farptr.off = 0;
	farptr.sel = sel;
	resume_at = (u32)after_ljmp;
	asm volatile("ljmp *%0\n.globl after_ljmp\nafter_ljmp:" :: "m"(farptr) : "memory");
}

static __attribute__((noinline)) void far_call(u32 sel)
{
	farptr.off = 0;
	farptr.sel = sel;
	resume_at = (u32)after_lcall;
	asm volatile("lcall *%0\n.globl after_lcall\nafter_lcall:" :: "m"(farptr) : "memory");
}

static void system_desc(u32 index, u32 lo, u32 type)
{
	hcall_load_gdt_entry(index, lo, DESC_P | (GUEST_PL << 13) | (type << 8) | ((u32)fake_tss & 0xFF000000) |
			     (((u32)fake_tss >> 16) & 0xFF));
}

static void attempt(const char *what, void (*xfer)(u32), u32 sel)
{
	u32 before = seen_count;
	xfer(sel);
	if (seen_count == before)
		check(0, "attack-task: %s: no fault", what);
	printk("attack-task: %s: %s, error 0x%x\n", what, seen_vector == 11 ? "#NP" : seen_vector == 13 ? "#GP" : "?",
	       seen_err);
}

void guest_main(void)
{
	char buf[16];
	const char *c = cmdline_value("case", buf, sizeof(buf));
	if (c && !strcmp(c, "idt")) {
		printk("attack-task: a present task gate in IDT entry 0x21\n");
		hcall_load_idt_entry(0x21, (u32)TSS_SEL << 16, DESC_P | (TYPE_TASK_GATE << 8));
		check(0, "attack-task: a task gate in the IDT was accepted");
	}
	set_trap_handler(11, on_fault_resume);
	set_trap_handler(13, on_fault_resume);
	u32 tss_lo = (((u32)fake_tss & 0xFFFF) << 16) | (sizeof(fake_tss) - 1);
	system_desc(20, tss_lo, TYPE_TSS32);
	system_desc(21, (u32)(TSS_SEL & ~3) << 16, TYPE_TASK_GATE);
	system_desc(22, tss_lo, TYPE_TSS32_BUSY);
	attempt("far jmp to an available TSS (0xa1)", far_jmp, TSS_SEL);
	attempt("far call to an available TSS (0xa1)", far_call, TSS_SEL);
	attempt("far jmp to a task gate (0xa9)", far_jmp, GATE_SEL);
	attempt("far call to a busy TSS (0xb1)", far_call, BUSY_SEL);
	attempt("far jmp to the Host's TSS (0x81)", far_jmp, HOST_TSS_SEL);
	printk("attack-task: done\n");
	power_off();
}

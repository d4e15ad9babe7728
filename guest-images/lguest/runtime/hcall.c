/* hcall.c: hypercalls, one wrapper per call of the seed / v3x table (abi 1.2). The asynchronous ring
 * (abi 1.4) and lazy mode are in ring.c.
 *
 * G:hcall A hypercall is "int $0x1f" with the call number in EAX and up to four arguments in EBX, ECX,
 * EDX and ESI. The Host never returns a result: a call either happens or the Host kills us. */
#include "kernel.h"

#define STR2(x) #x
#define STR(x) STR2(x)

u32 hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4)
{
	asm volatile("int $" STR(LGUEST_TRAP_ENTRY)
		     : "+a"(call)
		     : "b"(arg1), "c"(arg2), "d"(arg3), "S"(arg4)
		     : "memory");
	return call;
}

/* A plug-in hypercall's 64-bit result comes back in EDX:EAX; EDX carries arg3 in, so it is an in/out. */
u64 hcall64(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4)
{
	u32 lo = call, hi = arg3;
	asm volatile("int $" STR(LGUEST_TRAP_ENTRY)
		     : "+a"(lo), "+d"(hi)
		     : "b"(arg1), "c"(arg2), "S"(arg4)
		     : "memory");
	return ((u64)hi << 32) | lo;
}

/* 0: nothing to do; the exit itself makes the Host run the ring. */
void hcall_flush_async(void)
{
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
}

/* 1: register lguest_data (guest-physical address). The entry stub makes this call itself; this wrapper
 * exists for misbehave's second INIT. */
void hcall_lguest_init(u32 lguest_data_phys)
{
	hcall(LHCALL_LGUEST_INIT, lguest_data_phys, 0, 0, 0);
}

/* 2: the Host reads 128 bytes of message at arg1 and kills us with "CRASH: <msg>"; arg2 = power off
 * or restart. The message is copied to a static buffer first so it is NUL-terminated within the 128
 * bytes and sits at a linear-map address whatever the caller passed. */
noreturn void hcall_shutdown(const char *msg, u32 how)
{
	static char shutdown_msg[LGUEST_SHUTDOWN_MSG_MAX];
	u32 i;
	for (i = 0; i < sizeof(shutdown_msg) - 1 && msg[i]; i++)
		shutdown_msg[i] = msg[i];
	shutdown_msg[i] = '\0';
	for (;;)
		hcall(LHCALL_SHUTDOWN, __pa(shutdown_msg), how, 0, 0);
}

/* 4: switch to the top-level table at this guest-physical address (our "CR3 load"). */
void hcall_new_pgtable(u32 pgdir_phys)
{
	lazy_hcall(LHCALL_NEW_PGTABLE, pgdir_phys, 0, 0, 0);
}

/* 5: drop the Host's shadow entries: the user part of the current table (0) or everything (1). */
void hcall_flush_tlb(u32 kernel_too)
{
	lazy_hcall(LHCALL_FLUSH_TLB, kernel_too, 0, 0, 0);
}

/* 6: install IDT gate `vector` from its two descriptor words. */
void hcall_load_idt_entry(u32 vector, u32 lo, u32 hi)
{
	hcall(LHCALL_LOAD_IDT_ENTRY, vector, lo, hi, 0);
}

/* 7: the ring-1 stack the CPU switches to on a trap from ring 3: segment (RPL 1), top, 1 or 2 pages. */
void hcall_set_stack(u32 ss, u32 esp, u32 pages)
{
	lazy_hcall(LHCALL_SET_STACK, ss, esp, pages, 0);
}

/* 8: our view of CR0.TS (we have no FPU state, so nothing here uses it but the wrapper). */
void hcall_ts(u32 ts)
{
	lazy_hcall(LHCALL_TS, ts, 0, 0, 0);
}

/* 9: one timer interrupt (IRQ 0) this many ns from now; 0 cancels. */
void hcall_set_clockevent(u32 ns)
{
	hcall(LHCALL_SET_CLOCKEVENT, ns, 0, 0, 0);
}

/* 10: sleep until an interrupt can be delivered; the Host turns interrupts on as it delivers it. */
void hcall_halt(void)
{
	hcall(LHCALL_HALT, 0, 0, 0, 0);
}

/* 13 (PAE): a PMD entry changed; the Host drops all its shadows. */
void hcall_set_pmd(u32 pmd_phys, u32 index)
{
	lazy_hcall(LHCALL_SET_PMD, pmd_phys, index, 0, 0);
}

/* 14: a PTE changed: top level it belongs to, virtual address, new value (PAE: high word in arg4). */
void hcall_set_pte(u32 pgdir_phys, u32 va, pte_t pte)
{
#ifdef CONFIG_PAE
	lazy_hcall(LHCALL_SET_PTE, pgdir_phys, va, (u32)pte, (u32)(pte >> 32));
#else
	lazy_hcall(LHCALL_SET_PTE, pgdir_phys, va, pte, 0);
#endif
}

/* 15: a top-level entry changed: top level, index. */
void hcall_set_pgd(u32 pgdir_phys, u32 index)
{
	lazy_hcall(LHCALL_SET_PGD, pgdir_phys, index, 0, 0);
}

/* 16: the three TLS descriptors (GDT 6..8), 24 bytes at this guest-physical address. */
void hcall_load_tls(u32 descs_phys)
{
	lazy_hcall(LHCALL_LOAD_TLS, descs_phys, 0, 0, 0);
}

/* 17: tell the Launcher about this guest-physical address (the console prints the string there). */
void hcall_notify(u32 addr_phys)
{
	hcall(LHCALL_NOTIFY, addr_phys, 0, 0, 0);
}

/* 18: GDT entry `index` (< 32) from its two descriptor words. */
void hcall_load_gdt_entry(u32 index, u32 lo, u32 hi)
{
	hcall(LHCALL_LOAD_GDT_ENTRY, index, lo, hi, 0);
}

/* 19: nothing; the exit lets the Host deliver the interrupt that set irq_pending. */
void hcall_send_interrupts(void)
{
	hcall(LHCALL_SEND_INTERRUPTS, 0, 0, 0, 0);
}

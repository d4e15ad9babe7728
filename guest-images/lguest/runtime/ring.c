/* ring.c: the asynchronous hypercall ring (abi 1.4) and "lazy mode".
 *
 * Kept apart from hcall.c, which holds the trapping instruction, so hosttest/ can run this logic
 * natively against a model of the Host's side of the ring. */
#include "kernel.h"

/* G:ring Batched calls go into lguest_data's ring of 64 slots. Our cursor and the Host's both start at
 * slot 0 at LGUEST_INIT and move in step: we fill the slot at next_call and mark it pending (0); the
 * Host, at the start of the next synchronous hypercall, runs pending slots in order and marks them
 * free (0xFF). If the slot at next_call is not free yet the ring is full, and we make the call
 * synchronously instead: the Host drains the ring first, so the order of calls is kept. Interrupts
 * are off while we touch the ring, so a handler cannot claim the same slot. */
static u32 next_call;
u32 hcall_async_queued, hcall_async_full;

void async_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4)
{
	u32 flags = irq_save();
	volatile u8 *status = &lguest_data.hcall_status[next_call];
	if (*status != LHCALL_STATUS_FREE) {
		hcall_async_full++;
		hcall(call, arg1, arg2, arg3, arg4);
	} else {
		struct hcall_args *slot = &lguest_data.hcalls[next_call];
		slot->arg0 = call;
		slot->arg1 = arg1;
		slot->arg2 = arg2;
		slot->arg3 = arg3;
		slot->arg4 = arg4;
		barrier();                  /* the arguments are in place before the slot is pending */
		*status = LHCALL_STATUS_PENDING;
		next_call = (next_call + 1) % LHCALL_RING_SIZE;
		hcall_async_queued++;
	}
	irq_restore(flags);
}

/* "Lazy" mode: while a batch of page-table updates is being made, the calls that tell the Host about
 * them go through the ring; leaving the mode flushes it, so the Host has seen everything before we rely
 * on the new mappings. Outside lazy mode every call is synchronous. */
static u32 lazy_depth;

void lazy_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4)
{
	if (lazy_depth)
		async_hcall(call, arg1, arg2, arg3, arg4);
	else
		hcall(call, arg1, arg2, arg3, arg4);
}

void lazy_mode_begin(void)
{
	lazy_depth++;
}

void lazy_mode_end(void)
{
	if (--lazy_depth == 0)
		hcall_flush_async();
}

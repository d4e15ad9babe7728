/* hosttest.c: unit tests of two pure pieces of the guest runtime: the printf engine (runtime/format.c)
 * and the async hypercall ring (runtime/ring.c) against a model of the Host's side of the ring (abi 1.4).
 *
 * Built as a bare Multiboot kernel (bare/ runtime: boot.S, start.c, string.c) and run on lguest-ts's own
 * emulated i386 in bare mode, so the code under test is the very i386 code the guests link, and no
 * 32-bit Linux program is run (many x86-64 kernels refuse them). `make lguest-hosttest` builds and runs
 * it; the verdict leaves through isa-debug-exit (0: every check passed). */
#include <stdarg.h>
#include "bare.h"
#include "lguest_abi.h"
#include "format.h"

/* ---- the report channel: printf on port 0xE9 through the engine under test's vformat ---- */
uint32_t bare_console = CONSOLE_E9;   /* start.c's console= option lands here; only 0xE9 is used */

static void e9_out(void *ctx, char c)
{
	(void)ctx;
	outb(PORT_DEBUGCON, (uint8_t)c);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(e9_out, 0, fmt, ap);
	va_end(ap);
	return n;
}

/* ---- what ring.c needs from the rest of the runtime ---- */
struct lguest_data lguest_data;
void async_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
void lazy_hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4);
void lazy_mode_begin(void);
void lazy_mode_end(void);
extern u32 hcall_async_queued, hcall_async_full;

/* The Host model: its own cursor, and a log of every call it executed, in order. */
static u32 host_cursor, log_len, log_arg[4096], log_call[4096];
static int failures;

static void host_execute(u32 call, u32 arg1)
{
	if (call == LHCALL_FLUSH_ASYNC)
		return;
	log_call[log_len] = call;
	log_arg[log_len++] = arg1;
}

/* abi 1.4: before each synchronous call, run pending slots from the cursor, at most 64, stopping at
 * the first free one; mark each done. */
static void host_drain_ring(void)
{
	u8 status[LHCALL_RING_SIZE];
	memcpy(status, lguest_data.hcall_status, sizeof(status));
	for (int n = 0; n < LHCALL_RING_SIZE; n++) {
		u32 slot = host_cursor;
		if (status[slot] == LHCALL_STATUS_FREE)
			break;
		host_cursor = (host_cursor + 1) % LHCALL_RING_SIZE;
		host_execute(lguest_data.hcalls[slot].arg0, lguest_data.hcalls[slot].arg1);
		lguest_data.hcall_status[slot] = LHCALL_STATUS_FREE;
	}
}

u32 hcall(u32 call, u32 arg1, u32 arg2, u32 arg3, u32 arg4)
{
	(void)arg2, (void)arg3, (void)arg4;
	host_drain_ring();
	host_execute(call, arg1);
	return 0;
}

void hcall_flush_async(void)
{
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
}

void hcall_send_interrupts(void)
{
	hcall(LHCALL_SEND_INTERRUPTS, 0, 0, 0, 0);
}

void irq_enable(void)   /* the tests run with interrupts off, as hello does */
{
	lguest_data.irq_enabled = X86_EFLAGS_IF;
}

#define EXPECT(cond, ...) do { if (!(cond)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

static void test_ring(void)
{
	memset(lguest_data.hcall_status, LHCALL_STATUS_FREE, sizeof(lguest_data.hcall_status));
	const u32 total = 1000;
	/* Mostly async calls, with a synchronous call every 97 (which drains the ring). */
	for (u32 i = 0; i < total; i++) {
		if (i % 97 == 96)
			hcall(LHCALL_FLUSH_TLB, i, 0, 0, 0);
		else
			async_hcall(LHCALL_SET_PTE, i, 0, 0, 0);
	}
	hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0, 0);
	EXPECT(log_len == total, "ring: %u calls executed, expected %u", log_len, total);
	for (u32 i = 0; i < log_len && i < total; i++)
		if (log_arg[i] != i) {
			EXPECT(0, "ring: call %u executed out of order (got arg %u)", i, log_arg[i]);
			break;
		}
	u32 busy = 0;
	for (u32 i = 0; i < LHCALL_RING_SIZE; i++)
		busy += lguest_data.hcall_status[i] != LHCALL_STATUS_FREE;
	EXPECT(busy == 0, "ring: %u slots still busy", busy);
	/* 96 async calls between syncs: slots 0..63 fill, the 65th goes synchronous (draining 64), then
	 * 31 more are queued: one fallback per run of 96. 10 full runs + a run of 40 at the end. */
	EXPECT(hcall_async_full == 10, "ring: %u full-ring fallbacks, expected 10", hcall_async_full);
	EXPECT(hcall_async_queued + hcall_async_full + 10 == total, "ring: queued %u", hcall_async_queued);

	/* lazy mode: calls queue until the end of the outermost batch. */
	log_len = 0;
	lazy_mode_begin();
	lazy_hcall(LHCALL_SET_PTE, 1, 0, 0, 0);
	lazy_mode_begin();
	lazy_hcall(LHCALL_SET_PTE, 2, 0, 0, 0);
	lazy_mode_end();
	EXPECT(log_len == 0, "lazy: calls ran before the batch ended");
	lazy_mode_end();
	EXPECT(log_len == 2 && log_arg[0] == 1 && log_arg[1] == 2, "lazy: batch not flushed in order");
	lazy_hcall(LHCALL_SET_PTE, 3, 0, 0, 0);
	EXPECT(log_len == 3, "lazy: call outside a batch was not synchronous");
}

static void expect_format(const char *want, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	EXPECT(!strcmp(buf, want) && n == (int)strlen(want), "format \"%s\": got \"%s\" (%d), want \"%s\"", fmt,
	       buf, n, want);
}

static void test_format(void)
{
	expect_format("-42 3000000000 beef 00C0FFEE", "%d %u %x %08X", -42, 3000000000u, 0xbeef, 0xC0FFEEu);
	expect_format("[str] [c] [left  ] [   77] [-0012] [%]", "[%s] [%c] [%-6s] [%5d] [%05d] [%%]", "str", 'c',
		      "left", 77, -12);
	expect_format("-1234567890123 123456789abcdef", "%lld %llx", -1234567890123ll, 0x123456789abcdefull);
	expect_format("18446744073709551615 0", "%llu %llu", 0xFFFFFFFFFFFFFFFFull, 0ull);
	expect_format("-2147483648 4294967295 37777777777", "%d %u %o", (int)0x80000000, 0xFFFFFFFFu, 0xFFFFFFFFu);
	expect_format("0x00001000 (null) ab", "%p %s %c%c", (void *)0x1000, (char *)0, 'a', 'b');
	expect_format("[  abc] [abc  ] [   -5]", "[%*s] [%-*s] [%*d]", 5, "abc", 5, "abc", 5, -5);
	/* Truncation: returns the full length, writes what fits, always terminated. */
	char small[5];
	int n = snprintf(small, sizeof(small), "%s", "abcdefgh");
	EXPECT(n == 8 && !strcmp(small, "abcd"), "truncation: %d \"%s\"", n, small);
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
	(void)magic, (void)mbi;
	test_format();
	test_ring();
	if (failures) {
		printf("hosttest: %d failure(s)\n", failures);
		return 1;
	}
	printf("hosttest: format and async ring ok\n");
	return 0;
}

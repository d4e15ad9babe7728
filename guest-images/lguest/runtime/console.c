/* console.c: the early console, printk, check and panic.
 *
 * G:console The Launcher prints, verbatim, the NUL-terminated string at the guest-physical address we
 * NOTIFY. Like Linux's early console we send at most 16 bytes per call, from a small buffer; the Host
 * reads it before the hypercall returns, so the buffer can be reused at once. Output is flushed at each
 * newline and at the end of every printk. Interrupts are off while the buffer is in use so a handler's
 * printk cannot interleave with ours. */
#include "kernel.h"

#define CONSOLE_CHUNK 16

static char chunk[CONSOLE_CHUNK + 1];
static u32 chunk_len;

static void console_flush(void)
{
	if (!chunk_len)
		return;
	chunk[chunk_len] = '\0';
	hcall_notify(__pa(chunk));
	chunk_len = 0;
}

static void console_putc(void *ctx, char c)
{
	(void)ctx;
	if (c == '\0')
		return;     /* cannot be sent: it ends the string */
	chunk[chunk_len++] = c;
	if (chunk_len == CONSOLE_CHUNK || c == '\n')
		console_flush();
}

void console_write(const char *s, u32 len)
{
	u32 flags = irq_save();
	while (len--)
		console_putc(NULL, *s++);
	console_flush();
	irq_restore(flags);
}

static int vprintk(const char *fmt, va_list ap)
{
	u32 flags = irq_save();
	int n = vformat(console_putc, NULL, fmt, ap);
	console_flush();
	irq_restore(flags);
	return n;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}

/* A panic prints "PANIC: <msg>" and then shuts down with the message as the crash reason. */
noreturn void panic(const char *fmt, ...)
{
	static char msg[LGUEST_SHUTDOWN_MSG_MAX];
	va_list ap;
	irq_disable();
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printk("PANIC: %s\n", msg);
	hcall_shutdown(msg, LGUEST_SHUTDOWN_POWEROFF);
}

/* A normal end: the Host reports the guest as dead with "CRASH: Power down" (what Linux sent too). */
noreturn void power_off(void)
{
	hcall_shutdown("Power down", LGUEST_SHUTDOWN_POWEROFF);
}

void check(int ok, const char *what, ...)
{
	char line[120];
	va_list ap;
	va_start(ap, what);
	vsnprintf(line, sizeof(line), what, ap);
	va_end(ap);
	if (ok) {
		printk("check: %s: ok\n", line);
		return;
	}
	printk("FAIL: %s\n", line);
	irq_disable();
	char msg[LGUEST_SHUTDOWN_MSG_MAX];
	snprintf(msg, sizeof(msg), "FAIL: %s", line);
	hcall_shutdown(msg, LGUEST_SHUTDOWN_POWEROFF);
}

/* format.h: printf-style formatting without libc, shared by the kernel runtime and user programs.
 *
 * Conversions: %d %i %u %x %X %o %c %s %p %% with flags '-' and '0', a field width (or '*'), and the
 * length modifiers l (32-bit, same as none) and ll (64-bit). No floating point. */
#ifndef FORMAT_H
#define FORMAT_H

#include <stdarg.h>
#include "lguest_abi.h"

typedef void (*format_out_t)(void *ctx, char c);
int vformat(format_out_t out, void *ctx, const char *fmt, va_list ap);
int vsnprintf(char *buf, u32 size, const char *fmt, va_list ap);
int snprintf(char *buf, u32 size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 64-bit unsigned division by a small divisor without libgcc (i386 has no 64/64 divide). */
u64 udivmod64(u64 n, u32 d, u32 *rem);

#endif

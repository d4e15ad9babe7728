/* format.c: the printf engine (see format.h). Linked into the kernel and into user programs, so it
 * depends on nothing but its output callback. */
#include "format.h"

u64 udivmod64(u64 n, u32 d, u32 *rem)
{
	/* Long division one 32-bit half at a time: the high half divides natively, and the remainder
	 * (< d) with the low half is again a 64/32 division whose quotient fits in 32 bits, which the
	 * i386 divl does in one instruction. */
	u32 hi = (u32)(n >> 32), lo = (u32)n, qhi, qlo, r;
	qhi = hi / d;
	r = hi % d;
	asm("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	if (rem)
		*rem = r;
	return ((u64)qhi << 32) | qlo;
}

struct spec {
	int left, zero, width;
};

static int emit_padded(format_out_t out, void *ctx, const char *s, int len, const struct spec *sp)
{
	int pad = sp->width > len ? sp->width - len : 0, n = 0;
	char padc = (sp->zero && !sp->left) ? '0' : ' ';
	/* Zero padding goes after a minus sign. */
	if (padc == '0' && len > 0 && s[0] == '-') {
		out(ctx, '-');
		s++, len--, n++;
	}
	if (!sp->left)
		for (; pad > 0; pad--, n++)
			out(ctx, padc);
	for (int i = 0; i < len; i++, n++)
		out(ctx, s[i]);
	for (; pad > 0; pad--, n++)
		out(ctx, ' ');
	return n;
}

static int emit_number(format_out_t out, void *ctx, u64 v, u32 base, int negative, int upper,
		       const struct spec *sp)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int i = sizeof(tmp);
	do {
		u32 r;
		v = udivmod64(v, base, &r);
		tmp[--i] = digits[r];
	} while (v);
	if (negative)
		tmp[--i] = '-';
	return emit_padded(out, ctx, tmp + i, (int)sizeof(tmp) - i, sp);
}

int vformat(format_out_t out, void *ctx, const char *fmt, va_list ap)
{
	int n = 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out(ctx, *fmt);
			n++;
			continue;
		}
		struct spec sp = { 0, 0, 0 };
		int longlong = 0;
		for (;; fmt++) {
			if (fmt[1] == '-')
				sp.left = 1;
			else if (fmt[1] == '0')
				sp.zero = 1;
			else
				break;
		}
		if (fmt[1] == '*') {
			sp.width = va_arg(ap, int);
			fmt++;
		} else {
			while (fmt[1] >= '0' && fmt[1] <= '9')
				sp.width = sp.width * 10 + (*++fmt - '0');
		}
		while (fmt[1] == 'l') {
			longlong += 1;
			fmt++;
		}
		longlong = longlong >= 2;
		char c = *++fmt;
		switch (c) {
		case 'd':
		case 'i': {
			long long v = longlong ? va_arg(ap, long long) : va_arg(ap, int);
			u64 mag = v < 0 ? (u64)0 - (u64)v : (u64)v;
			n += emit_number(out, ctx, mag, 10, v < 0, 0, &sp);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			u64 v = longlong ? va_arg(ap, u64) : va_arg(ap, u32);
			u32 base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
			n += emit_number(out, ctx, v, base, 0, c == 'X', &sp);
			break;
		}
		case 'p': {
			struct spec ps = { 0, 1, 8 };
			out(ctx, '0');
			out(ctx, 'x');
			n += 2 + emit_number(out, ctx, (u32)va_arg(ap, void *), 16, 0, 0, &ps);
			break;
		}
		case 'c': {
			char ch = (char)va_arg(ap, int);
			n += emit_padded(out, ctx, &ch, 1, &sp);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len = 0;
			if (!s)
				s = "(null)";
			while (s[len])
				len++;
			n += emit_padded(out, ctx, s, len, &sp);
			break;
		}
		case '%':
			out(ctx, '%');
			n++;
			break;
		case '\0':
			return n;   /* a lone '%' at the end */
		default:
			out(ctx, '%');
			out(ctx, c);
			n += 2;
			break;
		}
	}
	return n;
}

struct buf_ctx {
	char *buf;
	u32 size, len;
};

static void buf_out(void *ctx, char c)
{
	struct buf_ctx *b = ctx;
	if (b->len + 1 < b->size)
		b->buf[b->len] = c;
	b->len++;
}

int vsnprintf(char *buf, u32 size, const char *fmt, va_list ap)
{
	struct buf_ctx b = { buf, size, 0 };
	int n = vformat(buf_out, &b, fmt, ap);
	if (size)
		buf[b.len < size ? b.len : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, u32 size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* console.c: console output (port 0xE9 and the COM1 transmit path) and a small printf. */
#include "bare.h"

uint32_t bare_console = CONSOLE_E9;

/* How many times com1_putc polls LSR before writing anyway: a missing UART must not hang us. */
#define COM1_POLL_LIMIT 100000

void e9_putc(char c) { outb(PORT_DEBUGCON, (uint8_t)c); }

void com1_putc(char c)
{
    int tries = COM1_POLL_LIMIT;
    while (!(inb(PORT_COM1 + UART_LSR) & UART_LSR_THRE) && --tries)
        ;
    outb(PORT_COM1, (uint8_t)c);
}

void console_putc(char c)
{
    if (bare_console & CONSOLE_E9)
        e9_putc(c);
    if (bare_console & CONSOLE_COM1)
        com1_putc(c);
}

void console_write(const char *s, size_t n)
{
    while (n--)
        console_putc(*s++);
}

void console_puts(const char *s)
{
    while (*s)
        console_putc(*s++);
}

/* printf writes through a sink: the console, or a buffer for snprintf. */
struct sink {
    char *buf;      /* NULL: the console */
    size_t size;
    size_t len;     /* bytes produced so far (even those that did not fit) */
};

static void emit(struct sink *out, char c)
{
    if (!out->buf)
        console_putc(c);
    else if (out->len + 1 < out->size)
        out->buf[out->len] = c;
    out->len++;
}

static void emit_padded(struct sink *out, const char *s, size_t n, int width, int left, char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;
    if (!left && pad == '0' && n && (*s == '-')) {   /* zero padding goes after the sign */
        emit(out, *s++);
        n--;
    }
    if (!left)
        while (fill--)
            emit(out, pad);
    while (n--)
        emit(out, *s++);
    if (left)
        while (fill-- > 0)
            emit(out, ' ');
}

/* Digits of v in base (10 or 16) into the end of tmp; returns the first digit. */
static char *format_unsigned(char *end, uint32_t v, uint32_t base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = digits[v % base];
        v /= base;
    } while (v);
    return p;
}

static int format(struct sink *out, const char *fmt, va_list ap)
{
    char tmp[16];
    char *end = tmp + sizeof tmp;

    for (; *fmt; fmt++) {
        int left = 0, width = 0;
        char pad = ' ';
        const char *s;
        char *p;

        if (*fmt != '%') {
            emit(out, *fmt);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                pad = '0';
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            fmt++;

        switch (*fmt) {
        case 'd':
        case 'i': {
            int32_t v = va_arg(ap, int32_t);
            p = format_unsigned(end, v < 0 ? 0u - (uint32_t)v : (uint32_t)v, 10, 0);
            if (v < 0)
                *--p = '-';
            emit_padded(out, p, (size_t)(end - p), width, left, pad);
            break;
        }
        case 'u':
            p = format_unsigned(end, va_arg(ap, uint32_t), 10, 0);
            emit_padded(out, p, (size_t)(end - p), width, left, pad);
            break;
        case 'x':
        case 'X':
            p = format_unsigned(end, va_arg(ap, uint32_t), 16, *fmt == 'X');
            emit_padded(out, p, (size_t)(end - p), width, left, pad);
            break;
        case 'p':
            p = format_unsigned(end, (uint32_t)(uintptr_t)va_arg(ap, void *), 16, 0);
            while (end - p < 8)
                *--p = '0';
            *--p = 'x';
            *--p = '0';
            emit_padded(out, p, (size_t)(end - p), width, left, ' ');
            break;
        case 's':
            s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            emit_padded(out, s, strlen(s), width, left, ' ');
            break;
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            emit_padded(out, tmp, 1, width, left, ' ');
            break;
        case '%':
            emit(out, '%');
            break;
        case '\0':
            fmt--;          /* a lone '%' at the end: stop at the NUL next time round */
            break;
        default:            /* unknown conversion: print it as written */
            emit(out, '%');
            emit(out, *fmt);
            break;
        }
    }
    return (int)out->len;
}

int vprintf(const char *fmt, va_list ap)
{
    struct sink out = { NULL, 0, 0 };
    return format(&out, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink out = { buf, size, 0 };
    int n = format(&out, fmt, ap);
    if (size)
        buf[out.len < size ? out.len : size - 1] = '\0';
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

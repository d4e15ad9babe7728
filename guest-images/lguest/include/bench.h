/* bench.h: what the benchmark guests (guests/bench-*.c, driven by bench/run.ts) share: their one
 * command-line option, a decimal count. */
#ifndef BENCH_H
#define BENCH_H

#include "kernel.h"

/* "key=N" (decimal) from the command line; dflt when absent or not a number. */
static inline u32 bench_option(const char *key, u32 dflt)
{
	char buf[16];
	const char *v = cmdline_value(key, buf, sizeof(buf));
	u32 n = 0;
	if (!v || !*v)
		return dflt;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return dflt;
		n = n * 10 + (u32)(*v - '0');
	}
	return n;
}

#endif /* BENCH_H */

/**
 * Every exit status of `lguest-ts`, declared once (launcher/README.md describes them). Bare mode adds
 * isa-debug-exit's `(v << 1) | 1`, always odd; every status of our own but EXIT_KILLED is even or above 64,
 * so the two never meet in bare mode, where no guest is "killed".
 */
/** A guest powered off (lguest), wrote the --debug-exit-ok value (bare), or every vector passed (cpu-test). */
export const EXIT_OK = 0;
/** An lguest guest was killed (`guest killed: REASON`). */
export const EXIT_KILLED = 1;
/** `cpu-test`: a vector failed. */
export const EXIT_VECTORS_FAILED = 1;
/** Bad input: one line on stderr (UserError). */
export const EXIT_BAD_INPUT = 2;
/** Bare mode: HLT with nothing to wake it, a triple fault, or something lguest-ts does not implement. */
export const EXIT_GUEST_STOPPED = 4;
/** gdb's kill (`--gdb`). */
export const EXIT_KILLED_BY_DEBUGGER = 6;
/** A bug in lguest-ts (sysexits' EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;
/** stdout was closed (or failed) under the guest's output (`| head`): sysexits.h's EX_IOERR (70, EX_SOFTWARE,
 *  is our internal error). Even, so bare mode's isa-debug-exit statuses (odd) never mean it. */
export const EXIT_OUTPUT_CLOSED = 74;
/** `--timeout` ran out, as timeout(1) reports it. */
export const EXIT_TIMEOUT = 124;
/** Ctrl-C (SIGINT) stopped the guest: 128 + SIGINT, as a shell reports it. */
export const EXIT_INTERRUPTED = 130;
/** SIGTERM stopped the guest: 128 + SIGTERM, as a shell reports a process the signal killed. */
export const EXIT_TERMINATED = 143;

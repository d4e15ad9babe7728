/**
 * Being stopped from outside (the CLI process only: bin.mjs installs it): SIGTERM, and stdout closing
 * under a run (`lguest-ts run ... | head`). Each gives one line on stderr and a documented status
 * (launcher/README.md, "Exit statuses"), never a stack trace. A run that can stop its guest cleanly
 * (lguest mode: every vCPU stops, the statistics print, a block file is closed) registers a handler;
 * without one (bare mode, or before a run starts) the process says so and exits at once. A second SIGTERM
 * always exits at once.
 */

import { EXIT_OUTPUT_CLOSED, EXIT_TERMINATED } from './exit-status.ts';

export { EXIT_OUTPUT_CLOSED, EXIT_TERMINATED };
export const TERMINATED = 'terminated (SIGTERM): stopped the guest';
export const OUTPUT_CLOSED = 'output closed, guest stopped';

let terminateHandler: (() => void) | null = null;
let outputClosedHandler: (() => void) | null = null;
let closed = false;

/** While a run lasts: what SIGTERM does instead of exiting at once (called once). Returns the undo. */
export function onTerminate(h: () => void): () => void {
  terminateHandler = h;
  return () => { if (terminateHandler === h) terminateHandler = null; };
}

/** While a run lasts: what a closed stdout does instead of exiting at once (called once). */
export function onOutputClosed(h: () => void): () => void {
  outputClosedHandler = h;
  if (closed) h();
  return () => { if (outputClosedHandler === h) outputClosedHandler = null; };
}

/** Has stdout failed (nothing more can be written to it)? */
export function outputClosed(): boolean { return closed; }

let installed = false;

/** The CLI process: SIGTERM and stdout's errors (EPIPE) stop the run with one line. */
export function installStopHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('SIGTERM', () => {
    const h = terminateHandler;
    terminateHandler = null;
    if (h) { h(); return; }
    process.stderr.write(`lguest-ts: ${TERMINATED}\n`);
    process.exit(EXIT_TERMINATED);
  });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    const h = outputClosedHandler;
    if (h) { h(); return; }
    process.stderr.write(`lguest-ts: ${e.code === 'EPIPE' || e.code === undefined ? OUTPUT_CLOSED : `output failed (${e.code}), guest stopped`}\n`);
    process.exit(EXIT_OUTPUT_CLOSED);
  });
}

/**
 * Console output between the vCPU workers and the Launcher, with backpressure (issue 10). Every worker
 * counts the bytes it posts in one shared word; the Launcher takes them off when stdout has taken them
 * (its write callback). A worker whose guest writes while the count is past OUTPUT_HIGH pauses its vCPU
 * (outside the guest, after the NOTIFY) until the count is back under OUTPUT_LOW, and the virtio console
 * stops consuming its output queue meanwhile (devices/virtio-console.ts: push back). So a reader that
 * stalls (a pipe nobody reads) holds the guest, never the Host's memory.
 */

/** Bytes handed over and not yet written past which the guest's output waits. */
export const OUTPUT_HIGH = 2 << 20;
/** A paused vCPU goes on once the bytes not yet written are down to this. */
export const OUTPUT_LOW = 1 << 20;

/** Word 0: bytes posted by the workers and not yet written by the Launcher. */
export const FLOW_QUEUED = 0;

/** The shared counter of one run (every boot and vCPU of it). */
export function newOutputFlow(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** The Launcher wrote `n` bytes: take them off, and wake a worker waiting for the drain. */
export function outputWritten(flow: Int32Array, n: number): void {
  Atomics.sub(flow, FLOW_QUEUED, n);
  Atomics.notify(flow, FLOW_QUEUED);
}

/**
 * The virtio console (type 3) the Launcher offers first on the lguest bus (abi 7.1-7.4): two legacy
 * vrings of 256 entries (0 = input, 1 = output), placed by the Launcher in the device pages above RAM
 * (3 pages each, right after the descriptor page), IRQs 1 and 2. No features, no config.
 *
 * The device runs in vCPU 0's worker, synchronously inside the guest's NOTIFY: a kick of the output
 * queue consumes the available chains, writes the readable bytes to the console, returns the chains on
 * the used ring and raises the queue's IRQ (unless the guest set VRING_AVAIL_F_NO_INTERRUPT). One turn
 * writes at most KICK_BYTES, and none while the Launcher's output is not drained (outputBlocked: push
 * back); the rest waits for later turns (virtqueue.ts, "bounded"). Input bytes
 * (stdin) wait in a buffer until the guest has made writable buffers available on the input queue (and
 * set DRIVER_OK).
 *
 * The ring walk and its checks are virtqueue.ts's: anything wrong kills the guest with a reason
 * ("virtio console: output queue: ..."), never throws into the Host.
 */
import { VirtioDevice, busLayout, type DeviceRecord, type DeviceSpec } from './virtio-device.ts';
import { PARTIAL, VIRTIO_STATUS, VQ_NUM, type Budget, type Chain, type VirtioHost, type VqConfig } from './virtqueue.ts';

export {
  LGUEST_VRING_ALIGN, VIRTIO_STATUS, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F, VRING_USED_F_NO_NOTIFY, vringLayout,
  type VqConfig,
} from './virtqueue.ts';
export { RING_PAGES as CONSOLE_RING_PAGES } from './virtio-device.ts';

export const VIRTIO_ID_CONSOLE = 3;
/** Entries per console virtqueue. */
export const CONSOLE_VQ_NUM = VQ_NUM;
export const CONSOLE_INPUT_VQ = 0;
export const CONSOLE_OUTPUT_VQ = 1;

/** The console as the Launcher offers it. */
export function consoleSpec(): DeviceSpec {
  return { type: VIRTIO_ID_CONSOLE, name: 'console', vqNames: ['input', 'output'], features: 0, config: new Uint8Array(0) };
}

/** The console's record: it is always offered first, so its place does not depend on the other devices. */
function consoleRecord(descGpa: number): DeviceRecord {
  return busLayout(descGpa, [consoleSpec()]).records[0];
}

/** Where the console's record and rings are, given the descriptor page's guest-physical address. */
export function consoleLayout(descGpa: number): { descOffset: number; vqs: VqConfig[]; pages: number } {
  const r = consoleRecord(descGpa);
  return { descOffset: r.descOffset, vqs: r.vqs, pages: busLayout(descGpa, [consoleSpec()]).pages - 1 };
}

/** What the console needs from the Host: the devices' needs, and somewhere to write its output. */
export interface DeviceHost extends VirtioHost {
  /** Console output bytes. */
  output(bytes: Uint8Array): void;
  /** True while the output already handed over is not drained (stdout's reader is behind): the output
   *  queue then stops where it is and goes on in a later turn (push back). Absent: never. */
  outputBlocked?(): boolean;
}

/** The largest piece of output handed over at once. */
const OUTPUT_PIECE = 64 * 1024;

export class VirtioConsole extends VirtioDevice {
  /** Input waiting for buffers on the input queue. */
  private pending: Uint8Array[] = [];

  constructor(readonly host: DeviceHost, pageGpa: number, record: DeviceRecord = consoleRecord(pageGpa)) {
    super(host, pageGpa, record);
  }

  /** Chains returned on each queue (statistics, tests). */
  get usedCount(): number[] { return this.vqs.map((q) => q.usedCount); }
  get interrupts(): number { return this.vqs.reduce((n, q) => n + q.interrupts, 0); }

  protected kick(i: number): void {
    if (i === CONSOLE_OUTPUT_VQ) this.vqs[i].service((c, b) => this.consumeOutput(c, b));
    else this.deliverInput();
  }

  protected ready(i: number): boolean {
    return i !== CONSOLE_OUTPUT_VQ || this.host.outputBlocked?.() !== true;
  }

  /** Bytes from stdin: kept until the guest offers input buffers. */
  input(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pending.push(bytes);
    this.deliverInput();
  }

  get pendingInput(): number { return this.pending.reduce((n, b) => n + b.length, 0); }

  private deliverInput(): void {
    if (this.pending.length === 0 || (this.status & VIRTIO_STATUS.DRIVER_OK) === 0) return;
    this.vqs[CONSOLE_INPUT_VQ].service((c, b) => this.fillInput(c, b), () => this.pending.length > 0);
  }

  /** Write the chain's readable bytes to the console, in pieces, as far as the turn's budget goes and
   *  while the output is drained; PARTIAL when it stopped inside the chain. */
  private consumeOutput(c: Chain, b: Budget): number {
    while (c.seg < c.segs.length) {
      const s = c.segs[c.seg];
      if (s.write || c.off >= s.len) { c.seg++; c.off = 0; continue; }
      if (b.left <= 0 || this.host.outputBlocked?.() === true) return PARTIAL;
      const n = Math.min(s.len - c.off, b.left, OUTPUT_PIECE);
      this.host.output(this.host.readBytes(s.addr + c.off, n));
      c.off += n;
      b.left -= n;
    }
    return 0;
  }

  private fillInput(c: Chain, budget: Budget): number {
    let written = 0;
    for (const s of c.segs) {
      if (!s.write) continue;
      let room = s.len, at = s.addr;
      while (room > 0 && this.pending.length > 0) {
        const b = this.pending[0];
        const n = Math.min(room, b.length);
        this.host.writeBytes(at, b.subarray(0, n));
        at += n; room -= n; written += n; budget.left -= n;
        if (n === b.length) this.pending.shift(); else this.pending[0] = b.subarray(n);
      }
    }
    return written;
  }
}

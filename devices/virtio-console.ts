/**
 * The virtio console (type 3) the Launcher offers first on the lguest bus (abi 7.1-7.4): two legacy
 * vrings of 256 entries (0 = input, 1 = output), placed by the Launcher in the device pages above RAM
 * (3 pages each, right after the descriptor page), IRQs 1 and 2.
 *
 * The device runs in the vCPU worker, synchronously inside the guest's NOTIFY: a kick of the output
 * queue consumes every available chain, writes the readable bytes to the console, returns the chains on
 * the used ring and raises the queue's IRQ (unless the guest set VRING_AVAIL_F_NO_INTERRUPT). Input bytes
 * (stdin) wait in a buffer until the guest has made writable buffers available on the input queue.
 *
 * Every ring index and buffer the guest gives is checked; anything wrong kills the guest with a reason
 * ("virtio console: ..."), never throws into the Host.
 */
import { LGUEST_DEVICE_DESC, LGUEST_VQCONFIG, PAGE_SIZE } from '../switcher/layout.ts';

export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_STATUS = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FAILED: 0x80 } as const;
export const VRING_DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
export const LGUEST_VRING_ALIGN = 4096;

/** Entries per console virtqueue. */
export const CONSOLE_VQ_NUM = 256;
/** IRQ of each console queue (0 is the timer): input 1, output 2. */
export const CONSOLE_IRQS = [1, 2] as const;
export const CONSOLE_INPUT_VQ = 0;
export const CONSOLE_OUTPUT_VQ = 1;

/** Byte offsets inside a legacy vring of `num` entries (abi 7.4). */
export function vringLayout(num: number): { avail: number; used: number; size: number } {
  const avail = 16 * num;
  const used = Math.ceil((avail + 2 * (2 + num)) / LGUEST_VRING_ALIGN) * LGUEST_VRING_ALIGN;
  return { avail, used, size: used + 4 + 8 * num };
}

/** Pages one console ring takes (3 for 256 entries). */
export const CONSOLE_RING_PAGES = Math.ceil(vringLayout(CONSOLE_VQ_NUM).size / PAGE_SIZE);

export interface VqConfig { num: number; irq: number; gpa: number }

/** Where the console's record and rings are, given the descriptor page's guest-physical address. */
export function consoleLayout(descGpa: number): { descOffset: number; vqs: VqConfig[]; pages: number } {
  const vqs = CONSOLE_IRQS.map((irq, i) => ({
    num: CONSOLE_VQ_NUM, irq, gpa: descGpa + PAGE_SIZE + i * CONSOLE_RING_PAGES * PAGE_SIZE,
  }));
  return { descOffset: 0, vqs, pages: CONSOLE_IRQS.length * CONSOLE_RING_PAGES };
}

/** The console's record on the descriptor page (written at `at`, a host-side byte writer); returns its
 *  length. No features, no config. */
export function writeConsoleRecord(w8: (off: number, v: number) => void, w16: (off: number, v: number) => void,
  w32: (off: number, v: number) => void, at: number, vqs: VqConfig[]): number {
  w8(at + LGUEST_DEVICE_DESC.type, VIRTIO_ID_CONSOLE);
  w8(at + LGUEST_DEVICE_DESC.num_vq, vqs.length);
  w8(at + LGUEST_DEVICE_DESC.feature_len, 0);
  w8(at + LGUEST_DEVICE_DESC.config_len, 0);
  w8(at + LGUEST_DEVICE_DESC.status, 0);
  vqs.forEach((q, i) => {
    const c = at + 5 + 8 * i;
    w16(c + LGUEST_VQCONFIG.num, q.num);
    w16(c + LGUEST_VQCONFIG.irq, q.irq);
    w32(c + LGUEST_VQCONFIG.pfn, q.gpa / PAGE_SIZE);
  });
  return 5 + 8 * vqs.length;
}

/** What the device needs from the Host: guest-physical memory and a way to kill the guest. */
export interface DeviceHost {
  /** Guest-physical bytes the guest may use (RAM and device pages). */
  limit: number;
  read8(gpa: number): number;
  read16(gpa: number): number;
  read32(gpa: number): number;
  write16(gpa: number, v: number): void;
  write32(gpa: number, v: number): void;
  readBytes(gpa: number, len: number): Uint8Array;
  writeBytes(gpa: number, data: Uint8Array): void;
  fill(gpa: number, len: number, v: number): void;
  kill(reason: string): void;
  /** Raise virtual IRQ `irq`. */
  irq(irq: number): void;
  /** Console output bytes. */
  output(bytes: Uint8Array): void;
}

/** One descriptor of a chain, as checked. */
interface Seg { addr: number; len: number; write: boolean }

/** A legacy vring the device consumes. */
class Vq {
  lastAvail = 0;
  readonly avail: number;
  readonly used: number;
  readonly size: number;
  constructor(readonly name: string, readonly cfg: VqConfig) {
    const l = vringLayout(cfg.num);
    this.avail = cfg.gpa + l.avail;
    this.used = cfg.gpa + l.used;
    this.size = l.size;
  }
}

class RingError extends Error {}

export class VirtioConsole {
  readonly descGpa: number;
  readonly statusGpa: number;
  readonly vqs: Vq[];
  /** Input waiting for buffers on the input queue. */
  private pending: Uint8Array[] = [];
  /** Chains returned on each queue (statistics, tests). */
  readonly usedCount = [0, 0];
  interrupts = 0;

  constructor(readonly host: DeviceHost, descGpa: number) {
    const l = consoleLayout(descGpa);
    this.descGpa = descGpa;
    this.statusGpa = descGpa + l.descOffset + LGUEST_DEVICE_DESC.status;
    this.vqs = l.vqs.map((c, i) => new Vq(i === CONSOLE_INPUT_VQ ? 'input' : 'output', c));
  }

  get status(): number { return this.host.read8(this.statusGpa); }

  /** A NOTIFY at `gpa`: true when it was the console's (a status change or a kick). */
  notify(gpa: number): boolean {
    if (gpa === this.descGpa) {
      if (this.status === 0) this.reset();
      return true;
    }
    const i = this.vqs.findIndex((q) => q.cfg.gpa === gpa);
    if (i < 0) return false;
    if (i === CONSOLE_OUTPUT_VQ) this.service(i, (segs) => this.consumeOutput(segs));
    else this.deliverInput();
    return true;
  }

  /** Status 0: forget everything the guest did with the rings. */
  reset(): void {
    for (const q of this.vqs) {
      this.host.fill(q.cfg.gpa, q.size, 0);
      q.lastAvail = 0;
    }
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
    this.service(CONSOLE_INPUT_VQ, (segs) => this.fillInput(segs), () => this.pending.length > 0);
  }

  private consumeOutput(segs: Seg[]): number {
    for (const s of segs) if (!s.write && s.len > 0) this.host.output(this.host.readBytes(s.addr, s.len));
    return 0;
  }

  private fillInput(segs: Seg[]): number {
    let written = 0;
    for (const s of segs) {
      if (!s.write) continue;
      let room = s.len, at = s.addr;
      while (room > 0 && this.pending.length > 0) {
        const b = this.pending[0];
        const n = Math.min(room, b.length);
        this.host.writeBytes(at, b.subarray(0, n));
        at += n; room -= n; written += n;
        if (n === b.length) this.pending.shift(); else this.pending[0] = b.subarray(n);
      }
    }
    return written;
  }

  /** Consume available chains of queue `i` (while `more()`), return them on the used ring, interrupt. */
  private service(i: number, handle: (segs: Seg[]) => number, more: () => boolean = () => true): void {
    const q = this.vqs[i];
    const h = this.host;
    let used = 0;
    try {
      while (more()) {
        const availIdx = h.read16(q.avail + 2);
        if (availIdx === q.lastAvail) break;
        const waiting = (availIdx - q.lastAvail) & 0xffff;
        if (waiting > q.cfg.num) {
          throw new RingError(`avail index ${availIdx} is ${waiting} past the last seen ${q.lastAvail} (ring of ${q.cfg.num})`);
        }
        const head = h.read16(q.avail + 4 + 2 * (q.lastAvail % q.cfg.num));
        const segs = this.chain(q, head);
        const len = handle(segs);
        const usedIdx = h.read16(q.used + 2);
        const e = q.used + 4 + 8 * (usedIdx % q.cfg.num);
        h.write32(e, head);
        h.write32(e + 4, len);
        h.write16(q.used + 2, (usedIdx + 1) & 0xffff); // after the entry: JS stores are in program order
        q.lastAvail = (q.lastAvail + 1) & 0xffff;
        used++;
      }
    } catch (e) {
      if (!(e instanceof RingError)) throw e;
      h.kill(`virtio console: ${q.name} queue: ${e.message}`);
      return;
    }
    if (used === 0) return;
    this.usedCount[i] += used;
    if ((h.read16(q.avail) & VRING_AVAIL_F_NO_INTERRUPT) === 0) {
      this.interrupts++;
      h.irq(q.cfg.irq);
    }
  }

  /** Follow the chain at `head`: every index in range, at most num links, buffers inside guest memory,
   *  readable descriptors before writable ones. */
  private chain(q: Vq, head: number): Seg[] {
    const h = this.host, num = q.cfg.num;
    if (head >= num) throw new RingError(`chain head ${head} is out of range (ring of ${num})`);
    const segs: Seg[] = [];
    let i = head, seenWrite = false;
    for (;;) {
      if (segs.length >= num) throw new RingError(`descriptor chain from ${head} is longer than ${num} (a loop)`);
      const d = q.cfg.gpa + 16 * i;
      const lo = h.read32(d), hi = h.read32(d + 4), len = h.read32(d + 8);
      const flags = h.read16(d + 12), next = h.read16(d + 14);
      if (flags & VRING_DESC_F.INDIRECT) throw new RingError(`descriptor ${i} is indirect (not negotiated)`);
      if (hi !== 0 || lo + len > h.limit) {
        throw new RingError(`descriptor ${i} buffer 0x${(hi ? hi.toString(16) + lo.toString(16).padStart(8, '0') : lo.toString(16))} len ${len} is beyond guest memory (0x${h.limit.toString(16)})`);
      }
      const write = (flags & VRING_DESC_F.WRITE) !== 0;
      if (write) seenWrite = true;
      else if (seenWrite) throw new RingError(`descriptor ${i} is readable after a writable one`);
      segs.push({ addr: lo, len, write });
      if ((flags & VRING_DESC_F.NEXT) === 0) return segs;
      if (next >= num) throw new RingError(`descriptor ${i} links to ${next}, out of range (ring of ${num})`);
      i = next;
    }
  }
}

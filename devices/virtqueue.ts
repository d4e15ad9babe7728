/**
 * The virtqueue as every lguest virtio device of the Launcher walks it (abi 7.2, 7.4): the legacy vring
 * layout, and from the device's side: available chains in order, each descriptor checked, the used ring
 * updated, the queue's interrupt raised unless the guest suppressed it (virtio-device.ts has the rest a
 * device shares: its record on the descriptor page).
 *
 * The devices run in vCPU 0's worker, synchronously inside a NOTIFY (or a kick another vCPU queued for
 * vCPU 0). Every index and address the guest gives is checked here; anything wrong kills the guest with a
 * reason "virtio DEVICE: QUEUE queue: ...", never throws into the Host. A device's own handler reports a
 * malformed request the same way, by throwing DeviceError.
 */
export const VIRTIO_STATUS = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FAILED: 0x80 } as const;
export const VRING_DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
export const LGUEST_VRING_ALIGN = 4096;
/** Entries per virtqueue, for every device the Launcher offers (lguest's VIRTQUEUE_NUM). */
export const VQ_NUM = 256;

/** Byte offsets inside a legacy vring of `num` entries (abi 7.4). */
export function vringLayout(num: number): { avail: number; used: number; size: number } {
  const avail = 16 * num;
  const used = Math.ceil((avail + 2 * (2 + num)) / LGUEST_VRING_ALIGN) * LGUEST_VRING_ALIGN;
  return { avail, used, size: used + 4 + 8 * num };
}

export interface VqConfig { num: number; irq: number; gpa: number }

/** What a device needs from the Host: guest-physical memory, a way to kill the guest, interrupts. */
export interface VirtioHost {
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
}

/** One descriptor of a chain, as checked: inside guest memory, below 4 GiB. */
export interface Seg { addr: number; len: number; write: boolean }

/** A malformed ring or request: the guest is killed with this message (prefixed with device and queue). */
export class DeviceError extends Error {}

/** A legacy vring the device consumes. */
export class Virtqueue {
  lastAvail = 0;
  /** Chains returned on the used ring (statistics, tests). */
  usedCount = 0;
  interrupts = 0;
  readonly avail: number;
  readonly used: number;
  readonly size: number;

  constructor(readonly host: VirtioHost, readonly device: string, readonly name: string, readonly cfg: VqConfig) {
    const l = vringLayout(cfg.num);
    this.avail = cfg.gpa + l.avail;
    this.used = cfg.gpa + l.used;
    this.size = l.size;
  }

  /** Status 0: zero the ring and forget what was consumed. */
  reset(): void {
    this.host.fill(this.cfg.gpa, this.size, 0);
    this.lastAvail = 0;
  }

  /**
   * [D:300] Consume available chains (while `more()`), hand each to `handle`, which returns how many bytes it
   * wrote into the chain's writable buffers; return each on the used ring, then raise the queue's IRQ once
   * unless the guest set VRING_AVAIL_F_NO_INTERRUPT. A DeviceError from the walk or from `handle` kills
   * the guest; the chains used before it stay used. Returns the number of chains used.
   */
  service(handle: (segs: Seg[], head: number) => number, more: () => boolean = () => true): number {
    const h = this.host, num = this.cfg.num;
    let used = 0;
    try {
      while (more()) {
        const availIdx = h.read16(this.avail + 2);
        if (availIdx === this.lastAvail) break;
        const waiting = (availIdx - this.lastAvail) & 0xffff;
        if (waiting > num) {
          throw new DeviceError(`avail index ${availIdx} is ${waiting} past the last seen ${this.lastAvail} (ring of ${num})`);
        }
        const head = h.read16(this.avail + 4 + 2 * (this.lastAvail % num));
        const segs = this.chain(head);
        const len = handle(segs, head);
        const usedIdx = h.read16(this.used + 2);
        const e = this.used + 4 + 8 * (usedIdx % num);
        h.write32(e, head);
        h.write32(e + 4, len);
        h.write16(this.used + 2, (usedIdx + 1) & 0xffff); // after the entry: JS stores are in program order
        this.lastAvail = (this.lastAvail + 1) & 0xffff;
        used++;
      }
    } catch (e) {
      if (!(e instanceof DeviceError)) throw e;
      h.kill(`virtio ${this.device}: ${this.name} queue: ${e.message}`);
      return used;
    }
    if (used === 0) return 0;
    this.usedCount += used;
    if ((h.read16(this.avail) & VRING_AVAIL_F_NO_INTERRUPT) === 0) {
      this.interrupts++;
      h.irq(this.cfg.irq);
    }
    return used;
  }

  /** [D:310] Follow the chain at `head`: every index in range, at most num links, buffers inside guest memory,
   *  readable descriptors before writable ones, no indirect descriptors (never negotiated). */
  chain(head: number): Seg[] {
    const h = this.host, num = this.cfg.num;
    if (head >= num) throw new DeviceError(`chain head ${head} is out of range (ring of ${num})`);
    const segs: Seg[] = [];
    let i = head, seenWrite = false;
    for (;;) {
      if (segs.length >= num) throw new DeviceError(`descriptor chain from ${head} is longer than ${num} (a loop)`);
      const d = this.cfg.gpa + 16 * i;
      const lo = h.read32(d), hi = h.read32(d + 4), len = h.read32(d + 8);
      const flags = h.read16(d + 12), next = h.read16(d + 14);
      if (flags & VRING_DESC_F.INDIRECT) throw new DeviceError(`descriptor ${i} is indirect (not negotiated)`);
      if (hi !== 0 || lo + len > h.limit) {
        throw new DeviceError(`descriptor ${i} buffer 0x${(hi ? hi.toString(16) + lo.toString(16).padStart(8, '0') : lo.toString(16))} len ${len} is beyond guest memory (0x${h.limit.toString(16)})`);
      }
      const write = (flags & VRING_DESC_F.WRITE) !== 0;
      if (write) seenWrite = true;
      else if (seenWrite) throw new DeviceError(`descriptor ${i} is readable after a writable one`);
      segs.push({ addr: lo, len, write });
      if ((flags & VRING_DESC_F.NEXT) === 0) return segs;
      if (next >= num) throw new DeviceError(`descriptor ${i} links to ${next}, out of range (ring of ${num})`);
      i = next;
    }
  }
}

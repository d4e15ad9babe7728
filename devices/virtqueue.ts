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
 *
 * The work one kick makes is bounded: a chain walk visits at most `num` descriptors (more is a loop: the
 * guest is killed), a kick consumes at most `num` chains (avail->idx more than `num` ahead is malformed),
 * and the bytes a queue moves in one turn are bounded by a budget (KICK_BYTES). A queue whose turn ran out
 * of budget (or whose device had to wait: the console when its output is not drained) keeps its place,
 * down to the byte inside a chain, and has a `backlog`; the device finishes it in later turns
 * (VirtioDevice.resume(), between the vCPU's time slices), so a guest that names 64 GiB in one kick gets
 * them at the pace the Host chooses, between which it checks --timeout and Ctrl-C.
 */
export const VIRTIO_STATUS = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FAILED: 0x80 } as const;
export const VRING_DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
export const LGUEST_VRING_ALIGN = 4096;
/** Entries per virtqueue, for every device the Launcher offers (lguest's VIRTQUEUE_NUM). */
export const VQ_NUM = 256;
/** Bytes of buffers a queue moves in one turn (a kick, or a later turn that finishes a backlog). A device
 *  may go past it by at most one unit of its own (one rng chain, one block request: see their bounds). */
export const KICK_BYTES = 1 << 20;
/** A handler's answer when it stopped inside a chain (budget spent, or the device must wait): the chain
 *  stays current, its progress in Chain.seg/off, and the queue has a backlog. */
export const PARTIAL = -1;

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

/** A chain being consumed: its checked descriptors and how far the device got (for devices that consume
 *  a chain over several turns; `seg`/`off` start at 0). */
export interface Chain { head: number; segs: Seg[]; seg: number; off: number }

/** What is left of a turn's byte budget; a handler takes what it moves. */
export interface Budget { left: number }

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

  /** Chains the device stopped at (budget spent, or it must wait): finish them in a later turn. */
  backlog = false;
  /** The chain consumed partly in an earlier turn. */
  private current: Chain | null = null;

  /** Status 0: zero the ring and forget what was consumed. */
  reset(): void {
    this.host.fill(this.cfg.gpa, this.size, 0);
    this.lastAvail = 0;
    this.current = null;
    this.backlog = false;
  }

  /**
   * [D:300] One turn: consume available chains (while `more()` and the turn's `bytes` last), hand each to
   * `handle`, which returns how many bytes it wrote into the chain's writable buffers, or PARTIAL when it
   * stopped inside it; return each finished chain on the used ring, then raise the queue's IRQ once
   * unless the guest set VRING_AVAIL_F_NO_INTERRUPT. When the turn stops with chains still waiting,
   * `backlog` is set (the device calls service again later). A DeviceError from the walk or from
   * `handle` kills the guest; the chains used before it stay used. Returns the number of chains used.
   */
  service(handle: (chain: Chain, budget: Budget) => number, more: () => boolean = () => true, bytes = KICK_BYTES): number {
    const h = this.host, num = this.cfg.num;
    const budget: Budget = { left: bytes };
    let used = 0;
    this.backlog = false;
    try {
      while (more()) {
        let c = this.current;
        if (c === null) {
          const availIdx = h.read16(this.avail + 2);
          if (availIdx === this.lastAvail) break;
          const waiting = (availIdx - this.lastAvail) & 0xffff;
          if (waiting > num) {
            throw new DeviceError(`avail index ${availIdx} is ${waiting} past the last seen ${this.lastAvail} (ring of ${num})`);
          }
          if (budget.left <= 0) { this.backlog = true; break; }
          const head = h.read16(this.avail + 4 + 2 * (this.lastAvail % num));
          c = { head, segs: this.chain(head), seg: 0, off: 0 };
        }
        const len = handle(c, budget);
        if (len === PARTIAL) { this.current = c; this.backlog = true; break; }
        this.current = null;
        const usedIdx = h.read16(this.used + 2);
        const e = this.used + 4 + 8 * (usedIdx % num);
        h.write32(e, c.head);
        h.write32(e + 4, len);
        h.write16(this.used + 2, (usedIdx + 1) & 0xffff); // after the entry: JS stores are in program order
        this.lastAvail = (this.lastAvail + 1) & 0xffff;
        used++;
      }
    } catch (e) {
      if (!(e instanceof DeviceError)) throw e;
      this.current = null;
      this.backlog = false;
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

/**
 * What every device on the lguest bus shares (abi 7.1, 7.3): its record on the descriptor page (header,
 * virtqueue configs, offered and accepted feature bits, config bytes), where the Launcher puts the
 * records and the rings, and the device's side of the status byte and the NOTIFYs meant for it.
 *
 * The layout is a pure function of the list of devices offered, so the Launcher (which writes the
 * descriptor page) and vCPU 0's worker (which serves the devices) compute the same one: records back to
 * back from offset 0 in the order offered, every ring 256 entries, 3 pages each, right after the
 * descriptor page in creation order, and IRQs 1, 2, 3... per virtqueue in creation order (0 is the timer).
 */
import {
  LGUEST_DEVICE_DESC, LGUEST_DEVICE_DESC_SIZE, LGUEST_VQCONFIG, LGUEST_VQCONFIG_SIZE, PAGE_SIZE,
} from '../switcher/layout.ts';
import { VQ_NUM, Virtqueue, vringLayout, type VirtioHost, type VqConfig } from './virtqueue.ts';

/** What a device offers, before it is placed: its type, its queues, its feature bits, its config. */
export interface DeviceSpec {
  type: number;
  /** For kill reasons: "virtio NAME: ...". */
  name: string;
  /** One per virtqueue, in creation order. */
  vqNames: string[];
  /** Feature bits offered (bit n = feature n; at most 32). */
  features: number;
  config: Uint8Array;
}

/** A device placed on the bus. */
export interface DeviceRecord extends DeviceSpec {
  /** Offset of the record in the descriptor page. */
  descOffset: number;
  vqs: VqConfig[];
  /** Bytes of each half of the feature field: enough for the highest bit offered (lguest's add_feature). */
  featureLen: number;
}

/** Pages one ring of VQ_NUM entries takes (3). */
export const RING_PAGES = Math.ceil(vringLayout(VQ_NUM).size / PAGE_SIZE);

/** Bytes a record takes on the descriptor page. */
export function recordSize(r: DeviceRecord): number {
  return LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * r.vqs.length + 2 * r.featureLen + r.config.length;
}

/** Place `specs` (in the order offered) on the bus whose descriptor page is at `descGpa`. */
export function busLayout(descGpa: number, specs: DeviceSpec[]): { records: DeviceRecord[]; pages: number } {
  let offset = 0, ring = 0;
  const records = specs.map((s): DeviceRecord => {
    const vqs = s.vqNames.map(() => {
      const q = { num: VQ_NUM, irq: ring + 1, gpa: descGpa + PAGE_SIZE + ring * RING_PAGES * PAGE_SIZE };
      ring++;
      return q;
    });
    const featureLen = s.features === 0 ? 0 : ((31 - Math.clz32(s.features)) >> 3) + 1;
    const r: DeviceRecord = { ...s, descOffset: offset, vqs, featureLen };
    offset += recordSize(r);
    return r;
  });
  // The terminator (type 0) follows the last record; everything must fit in the one page.
  if (offset + 1 > PAGE_SIZE) throw new Error(`lguest bus: ${offset + 1} bytes of device records do not fit in one page`);
  return { records, pages: 1 + ring * RING_PAGES };
}

/** Write a record at `at` (a byte offset for the host-side writers): the header, the vq configs, the
 *  offered feature bits (the accepted half 0) and the config bytes. Returns its length. */
export function writeRecord(w8: (off: number, v: number) => void, w16: (off: number, v: number) => void,
  w32: (off: number, v: number) => void, at: number, r: DeviceRecord): number {
  w8(at + LGUEST_DEVICE_DESC.type, r.type);
  w8(at + LGUEST_DEVICE_DESC.num_vq, r.vqs.length);
  w8(at + LGUEST_DEVICE_DESC.feature_len, r.featureLen);
  w8(at + LGUEST_DEVICE_DESC.config_len, r.config.length);
  w8(at + LGUEST_DEVICE_DESC.status, 0);
  r.vqs.forEach((q, i) => {
    const c = at + LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * i;
    w16(c + LGUEST_VQCONFIG.num, q.num);
    w16(c + LGUEST_VQCONFIG.irq, q.irq);
    w32(c + LGUEST_VQCONFIG.pfn, q.gpa / PAGE_SIZE);
  });
  let o = at + LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * r.vqs.length;
  for (let b = 0; b < r.featureLen; b++) w8(o + b, (r.features >>> (8 * b)) & 0xff);
  for (let b = 0; b < r.featureLen; b++) w8(o + r.featureLen + b, 0);
  o += 2 * r.featureLen;
  r.config.forEach((v, b) => w8(o + b, v));
  return recordSize(r);
}

/**
 * A device on the lguest bus, as vCPU 0's worker serves it. A NOTIFY of the record's address is a status
 * change (0 = reset: the accepted features are cleared, the rings zeroed, as lguest's reset_device); a
 * NOTIFY of a ring's address is a kick of that queue. lguest started a device's service on DRIVER_OK or on
 * the first kick, whichever came first; here every kick is served when it comes, which amounts to the same.
 * Other status bits (FAILED included) are the guest's business.
 */
export abstract class VirtioDevice {
  readonly descGpa: number;
  readonly statusGpa: number;
  readonly vqs: Virtqueue[];
  private readonly acceptedGpa: number;

  constructor(readonly host: VirtioHost, pageGpa: number, readonly record: DeviceRecord) {
    this.descGpa = pageGpa + record.descOffset;
    this.statusGpa = this.descGpa + LGUEST_DEVICE_DESC.status;
    this.acceptedGpa = this.descGpa + LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * record.vqs.length + record.featureLen;
    this.vqs = record.vqs.map((c, i) => new Virtqueue(host, record.name, record.vqNames[i], c));
  }

  get status(): number { return this.host.read8(this.statusGpa); }

  /** Has the guest accepted feature `bit`? (Only a bit the device offered can be.) */
  accepted(bit: number): boolean {
    if (bit >= 32 || ((this.record.features >>> bit) & 1) === 0) return false;
    return ((this.host.read8(this.acceptedGpa + (bit >> 3)) >> (bit & 7)) & 1) === 1;
  }

  /** [D:200] A NOTIFY at `gpa`: true when it was this device's (a status change, or a kick of a queue). */
  notify(gpa: number): boolean {
    if (gpa === this.descGpa) {
      if (this.status === 0) this.reset();
      return true;
    }
    const i = this.vqs.findIndex((q) => q.cfg.gpa === gpa);
    if (i < 0) return false;
    this.kick(i);
    return true;
  }

  /** Status 0: forget the accepted features and everything the guest did with the rings. */
  reset(): void {
    if (this.record.featureLen > 0) this.host.fill(this.acceptedGpa, this.record.featureLen, 0);
    for (const q of this.vqs) q.reset();
  }

  /** The guest kicked queue `i` (or a turn of its backlog is due: resume()). */
  protected abstract kick(i: number): void;

  /** May queue `i` make progress now? (The console's output queue waits while its output is not drained.) */
  protected ready(_i: number): boolean { return true; }

  /** Chains left from an earlier turn that this device can work on now. */
  hasWork(): boolean {
    for (let i = 0; i < this.vqs.length; i++) if (this.vqs[i].backlog && this.ready(i)) return true;
    return false;
  }

  /** One more turn for each queue with a backlog it can work on (between the vCPU's time slices; no
   *  allocation when there is none). */
  resume(): void {
    for (let i = 0; i < this.vqs.length; i++) if (this.vqs[i].backlog && this.ready(i)) this.kick(i);
  }
}

/**
 * The virtio entropy device (type 4) the Launcher offers with `run --rng` (abi 7.3), after the console
 * and the block device: one input queue of 256 entries, no features, no config. Each chain the guest makes
 * available is a set of writable buffers, filled in order from node:crypto's randomFillSync (lguest's
 * Launcher read /dev/random) when the guest kicks, up to RNG_CHAIN_MAX bytes a chain (ours: it bounds the
 * work one kick makes; a virtio-rng driver takes the used length, the bytes filled, and no more). A readable
 * descriptor in a chain kills the guest, as it killed lguest's Launcher ("Output buffers in rng?").
 */
import { randomFillSync } from 'node:crypto';
import { VirtioDevice, type DeviceRecord, type DeviceSpec } from './virtio-device.ts';
import { DeviceError, type Budget, type Seg, type VirtioHost } from './virtqueue.ts';

export const VIRTIO_ID_RNG = 4;

/** The rng as the Launcher offers it. */
export function rngSpec(): DeviceSpec {
  return { type: VIRTIO_ID_RNG, name: 'rng', vqNames: ['input'], features: 0, config: new Uint8Array(0) };
}

/** The most bytes one chain gets. */
export const RNG_CHAIN_MAX = 1 << 20;
/** The largest piece of randomness made at once. */
const CHUNK = 1 << 16;

export class VirtioRng extends VirtioDevice {
  /** Bytes handed to the guest (statistics, tests). */
  bytes = 0;

  constructor(host: VirtioHost, pageGpa: number, record: DeviceRecord) {
    super(host, pageGpa, record);
  }

  protected kick(): void {
    this.vqs[0].service((c, b) => this.fill(c.segs, c.head, b));
  }

  /** Fill one chain (at most RNG_CHAIN_MAX bytes), against the turn's budget. */
  private fill(segs: Seg[], head: number, budget: Budget): number {
    if (segs.some((s) => !s.write)) throw new DeviceError(`chain ${head} has a readable descriptor (the rng only fills buffers)`);
    let total = 0;
    for (const s of segs) {
      const len = Math.min(s.len, RNG_CHAIN_MAX - total);
      for (let done = 0; done < len;) {
        const n = Math.min(CHUNK, len - done);
        this.host.writeBytes(s.addr + done, randomFillSync(new Uint8Array(n)));
        done += n;
      }
      total += len;
    }
    this.bytes += total;
    budget.left -= total;
    return total;
  }
}

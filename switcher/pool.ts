/**
 * The Host pool: host-physical pages [0, memBase) below the guest's RAM, out of the guest's reach, for the
 * Switcher pages and shadow page-table pages. The page map lives in shared memory (one word per page,
 * claimed with compare-and-swap) so every vCPU worker can allocate from the same pool.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { PAGE_SHIFT, PAGE_SIZE } from './layout.ts';

export class HostPool {
  /** One word per pool page: 0 free, 1 in use. */
  readonly map: Int32Array;
  readonly pages: number;
  private hint = 0;

  constructor(readonly mem: PhysicalMemory, readonly base: number, readonly bytes: number, shared?: SharedArrayBuffer) {
    if (base % PAGE_SIZE !== 0 || bytes % PAGE_SIZE !== 0) throw new RangeError('the Host pool must be page aligned');
    this.pages = bytes >>> PAGE_SHIFT;
    this.map = new Int32Array(shared ?? new SharedArrayBuffer(this.pages * 4));
  }

  /** The shared page map, for a worker that builds its own HostPool over the same memory. */
  get shared(): SharedArrayBuffer { return this.map.buffer as SharedArrayBuffer; }

  /** A zeroed page (hpa), or -1 when the pool is exhausted. */
  alloc(): number {
    for (let n = 0; n < this.pages; n++) {
      const i = (this.hint + n) % this.pages;
      if (this.map[i] === 0 && Atomics.compareExchange(this.map, i, 0, 1) === 0) {
        this.hint = (i + 1) % this.pages;
        const hpa = this.base + i * PAGE_SIZE;
        this.mem.fill(hpa, PAGE_SIZE, 0);
        return hpa;
      }
    }
    return -1;
  }

  free(hpa: number): void {
    const i = (hpa - this.base) >>> PAGE_SHIFT;
    if (hpa < this.base || i >= this.pages || hpa % PAGE_SIZE !== 0) throw new RangeError(`freeing 0x${hpa.toString(16)}: not a Host pool page`);
    if (Atomics.exchange(this.map, i, 0) !== 1) throw new Error(`freeing 0x${hpa.toString(16)} twice`);
  }

  inUse(): number {
    let n = 0;
    for (let i = 0; i < this.pages; i++) n += this.map[i];
    return n;
  }
}

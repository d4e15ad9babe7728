/**
 * The shadow page tables of an SMP guest: every vCPU worker has its own Shadow object over the same
 * bookkeeping (a SharedArrayBuffer) and the same shadow pages; this wrapper takes the guest's shadow lock
 * around every call, so one vCPU's change never interleaves with another's. (A uniprocessor guest uses its
 * Shadow directly.)
 */
import type { ShadowPageTables, ShadowStats, ShadowVcpu } from '../mmu/shadow-api.ts';
import { CTRL, type SmpLink } from './smp.ts';

export class LockedShadow implements ShadowPageTables {
  constructor(private readonly inner: ShadowPageTables, private readonly link: SmpLink) {}

  private locked<T>(f: () => T): T {
    this.link.lock(CTRL.shadowLock);
    try {
      return f();
    } finally {
      this.link.unlock(CTRL.shadowLock);
    }
  }

  get stats(): ShadowStats { return this.inner.stats; }
  get faultErrcode(): number | undefined { return this.inner.faultErrcode; }

  initGuestPagetable(memBytes: number, initrdBytes: number): number {
    return this.locked(() => this.inner.initGuestPagetable(memBytes, initrdBytes));
  }
  guestDataInit(kernelAddress: number): void { this.locked(() => this.inner.guestDataInit(kernelAddress)); }
  demandPage(v: ShadowVcpu, vaddr: number, errcode: number): boolean {
    return this.locked(() => this.inner.demandPage(v, vaddr, errcode));
  }
  pinStackPages(v: ShadowVcpu): void { this.locked(() => this.inner.pinStackPages(v)); }
  setPte(v: ShadowVcpu, gpgdir: number, vaddr: number, lo: number, hi: number): void {
    this.locked(() => this.inner.setPte(v, gpgdir, vaddr, lo, hi));
  }
  setPgd(gpgdir: number, index: number): void { this.locked(() => this.inner.setPgd(gpgdir, index)); }
  setPmd(v: ShadowVcpu, pmdGpa: number, index: number): void { this.locked(() => this.inner.setPmd(v, pmdGpa, index)); }
  newPagetable(v: ShadowVcpu, gpgdir: number): void { this.locked(() => this.inner.newPagetable(v, gpgdir)); }
  flushUser(v: ShadowVcpu): void { this.locked(() => this.inner.flushUser(v)); }
  clearAll(v: ShadowVcpu): void { this.locked(() => this.inner.clearAll(v)); }
  mapSwitcher(v: ShadowVcpu, pte: number): number { return this.locked(() => this.inner.mapSwitcher(v, pte)); }
  guestPa(v: ShadowVcpu, vaddr: number): number { return this.locked(() => this.inner.guestPa(v, vaddr)); }
  currentGpgdir(v: ShadowVcpu): number { return this.locked(() => this.inner.currentGpgdir(v)); }
  releaseAll(): void { this.locked(() => this.inner.releaseAll()); }
}

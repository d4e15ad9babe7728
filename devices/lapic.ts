/**
 * The local APIC (xAPIC, version 0x14 with 6 LVT entries, as QEMU's), memory-mapped at IA32_APIC_BASE
 * (MSR 0x1B, default 0xFEE00000 | BSP | enable = 0xFEE00900). Per the Intel SDM Vol. 3A chapter 11
 * ("Advanced Programmable Interrupt Controller") and QEMU's hw/intc/apic.c:
 * - ID, version, TPR, PPR (TPR, or the in-service class when that is higher), EOI (clears the highest
 *   ISR bit; a level-triggered one is broadcast to the I/O APIC), LDR/DFR, SVR (bit 8 software
 *   enable: while clear every LVT is masked and stays so), ISR/TMR/IRR (read-only, 8 x 32 bits), ESR
 *   (a write latches the errors since the last one; "illegal vector" for vectors 0-15).
 * - LVT timer (one-shot, periodic; TSC-deadline is not offered), thermal, performance, LINT0, LINT1,
 *   error. At hand-off LINT0 is ExtINT (0x8700: the 8259's INTR reaches the CPU through it, as the
 *   BIOS sets it) and LINT1 NMI; the others masked.
 * - Timer: 1 GHz before the divider (QEMU's), divide configuration 1-128, initial and current count.
 * - ICR: fixed, lowest priority, NMI, INIT, startup; destination field (physical: ID or 0xFF; logical:
 *   flat or cluster against LDR) or shorthand (self, all including self, all excluding self). With one
 *   CPU only interrupts for this APIC are delivered; INIT and startup IPIs to others go nowhere, NMI
 *   is not delivered (the CPU has no NMI input yet). Delivery status always reads idle.
 * - The CPU takes an APIC interrupt when the highest IRR vector's class is above PPR's (`pending`),
 *   and the 8259's INTR when the APIC is globally disabled or LINT0 is unmasked (`acceptsPic`), as
 *   QEMU's apic_accept_pic_intr. Globally disabling it (clearing MSR bit 11) is final until reset.
 */
import type { Timed } from './clock.ts';

export const APIC_BASE_DEFAULT = 0xfee00000;
export const MSR_APIC_BASE = 0x1b;
const MASKED = 1 << 16;
const LVT_TIMER = 0, LVT_LINT0 = 3, LVT_LINT1 = 4, LVT_ERROR = 5;
const ESR_ILLEGAL_RX = 0x40, ESR_ILLEGAL_TX = 0x20;

function highest(bits: Uint32Array): number {
  for (let i = 7; i >= 0; i--) if (bits[i] !== 0) return i * 32 + 31 - Math.clz32(bits[i]);
  return -1;
}
const setBit = (b: Uint32Array, v: number) => { b[v >> 5] |= 1 << (v & 31); };
const clearBit = (b: Uint32Array, v: number) => { b[v >> 5] &= ~(1 << (v & 31)); };
const testBit = (b: Uint32Array, v: number) => (b[v >> 5] & (1 << (v & 31))) !== 0;

export class LocalApic implements Timed {
  base = APIC_BASE_DEFAULT;
  msrEnabled = true;
  id = 0;
  tpr = 0;
  ldr = 0;
  dfr = 0xffffffff;
  svr = 0x1ff; // what SeaBIOS leaves: enabled, spurious vector 0xFF
  readonly irr = new Uint32Array(8);
  readonly isr = new Uint32Array(8);
  readonly tmr = new Uint32Array(8);
  readonly lvt = new Uint32Array(6).fill(MASKED);
  esr = 0;
  private esrPending = 0;
  icrLo = 0;
  icrHi = 0;
  initialCount = 0;
  divideConf = 0;
  private loadTime = 0;
  private timerNext = Infinity;
  private writeLatch = 0;
  private readLatch = 0;
  private readLatchOff = -1;

  /**
   * @param onChange the CPU's INTR inputs may have changed (bare.ts recomputes them)
   * @param eoiBroadcast a level-triggered vector was ended (the I/O APIC clears its remote IRR)
   */
  constructor(private readonly now: () => number, private readonly onChange: () => void,
    private readonly eoiBroadcast: (vector: number) => void) {
    this.lvt[LVT_LINT0] = 0x8700;
    this.lvt[LVT_LINT1] = 0x8400;
  }

  private enabled(): boolean {
    return this.msrEnabled && (this.svr & 0x100) !== 0;
  }

  private ppr(): number {
    const isrv = highest(this.isr);
    const isrClass = isrv < 0 ? 0 : isrv & 0xf0;
    return (this.tpr & 0xf0) >= isrClass ? this.tpr & 0xff : isrClass;
  }

  /** An interrupt the CPU should take now: > 0 a vector, -1 a request below PPR, 0 none (QEMU's). */
  private irqPending(): number {
    const v = highest(this.irr);
    if (v < 0) return 0;
    const ppr = this.ppr();
    if (ppr !== 0 && (v & 0xf0) <= (ppr & 0xf0)) return -1;
    return v;
  }

  /** Does the APIC ask the CPU for an interrupt? */
  pending(): boolean {
    return this.enabled() && this.irqPending() > 0;
  }

  /** May the 8259's INTR reach the CPU? */
  acceptsPic(): boolean {
    return !this.msrEnabled || (this.lvt[LVT_LINT0] & MASKED) === 0;
  }

  /** The CPU's acknowledge: the vector (the spurious vector if the request went away), or -1 (none). */
  acknowledge(): number {
    if (!this.enabled()) return -1;
    const v = this.irqPending();
    if (v === 0) return -1;
    if (v < 0) return this.svr & 0xff;
    clearBit(this.irr, v);
    setBit(this.isr, v);
    this.onChange();
    return v;
  }

  /** Accept an interrupt (from the I/O APIC, an IPI or a local source). */
  accept(vector: number, level: boolean): void {
    if (vector < 16) {
      this.error(ESR_ILLEGAL_RX);
      return;
    }
    setBit(this.irr, vector);
    if (level) setBit(this.tmr, vector); else clearBit(this.tmr, vector);
    this.onChange();
  }

  private error(bits: number): void {
    this.esrPending |= bits;
    const e = this.lvt[LVT_ERROR];
    if ((e & MASKED) === 0 && (e & 0xff) >= 16) this.accept(e & 0xff, false);
  }

  /** Deliver through an LVT entry (fixed mode only; masked entries do nothing). */
  private local(i: number): void {
    const e = this.lvt[i];
    if ((e & MASKED) !== 0 || !this.enabled()) return;
    if (((e >> 8) & 7) === 0) this.accept(e & 0xff, false);
  }

  // ---- timer ----
  private shift(): number {
    const v = (this.divideConf & 3) | ((this.divideConf >> 1) & 4);
    return (v + 1) & 7;
  }

  private periodic(): boolean {
    return ((this.lvt[LVT_TIMER] >> 17) & 3) === 1;
  }

  private rearm(now: number): void {
    if (this.initialCount === 0) { this.timerNext = Infinity; return; }
    const d = Math.floor((now - this.loadTime) / (1 << this.shift()));
    const n = this.initialCount + 1;
    let ticks: number;
    if (this.periodic()) ticks = (Math.floor(d / n) + 1) * n;
    else if (d >= this.initialCount) { this.timerNext = Infinity; return; } else ticks = n;
    this.timerNext = this.loadTime + ticks * (1 << this.shift());
  }

  private currentCount(now: number): number {
    if (this.initialCount === 0) return 0;
    const d = Math.floor((now - this.loadTime) / (1 << this.shift()));
    if (this.periodic()) return this.initialCount - (d % (this.initialCount + 1));
    return d >= this.initialCount ? 0 : this.initialCount - d;
  }

  update(now: number): void {
    for (let guard = 0; this.timerNext <= now && guard < 4; guard++) {
      const t = this.timerNext;
      this.local(LVT_TIMER);
      this.rearm(t);
      if (this.timerNext <= now && this.periodic()) {
        // behind by more than a period: skip to the last one (the IRR bit merges them anyway)
        const p = (this.initialCount + 1) * (1 << this.shift());
        const k = Math.floor((now - this.timerNext) / p);
        if (k > 0) this.timerNext += k * p;
      }
    }
  }

  deadline(): number {
    return this.timerNext;
  }

  // ---- registers ----
  read32(off: number): number {
    const r = off >> 4;
    if (r >= 0x10 && r < 0x18) return this.isr[r - 0x10] | 0;
    if (r >= 0x18 && r < 0x20) return this.tmr[r - 0x18] | 0;
    if (r >= 0x20 && r < 0x28) return this.irr[r - 0x20] | 0;
    if (r >= 0x32 && r <= 0x37) return this.lvt[r - 0x32] | 0;
    switch (r) {
      case 0x02: return this.id << 24;
      case 0x03: return 0x50014;
      case 0x08: return this.tpr;
      case 0x09: return 0;
      case 0x0a: return this.ppr();
      case 0x0d: return this.ldr;
      case 0x0e: return this.dfr | 0;
      case 0x0f: return this.svr;
      case 0x28: return this.esr;
      case 0x30: return this.icrLo;
      case 0x31: return this.icrHi;
      case 0x38: return this.initialCount | 0;
      case 0x39: return this.currentCount(this.now()) | 0;
      case 0x3e: return this.divideConf;
      default: return 0;
    }
  }

  write32(off: number, v: number): void {
    const r = off >> 4;
    if (r >= 0x32 && r <= 0x37) {
      const i = r - 0x32;
      const keep = [0x710ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff][i] | (i === LVT_TIMER ? 0x60000 : 0);
      let val = v & keep;
      if ((this.svr & 0x100) === 0) val |= MASKED;
      this.lvt[i] = val;
      if (i === LVT_TIMER) this.rearm(this.now());
      this.onChange();
      return;
    }
    switch (r) {
      case 0x02: this.id = (v >>> 24) & 0xff; break;
      case 0x08: this.tpr = v & 0xff; this.onChange(); break;
      case 0x0b: { // EOI
        const s = highest(this.isr);
        if (s >= 0) {
          clearBit(this.isr, s);
          if (testBit(this.tmr, s)) this.eoiBroadcast(s);
        }
        this.onChange();
        break;
      }
      case 0x0d: this.ldr = v & 0xff000000; break;
      case 0x0e: this.dfr = v | 0x0fffffff; break;
      case 0x0f:
        this.svr = v & 0x3ff;
        if ((this.svr & 0x100) === 0) for (let i = 0; i < 6; i++) this.lvt[i] |= MASKED;
        this.onChange();
        break;
      case 0x28: this.esr = this.esrPending; this.esrPending = 0; break;
      case 0x30: this.icrLo = v & 0xcdfff; this.sendIpi(); break;
      case 0x31: this.icrHi = v & 0xff000000; break;
      case 0x38: this.initialCount = v >>> 0; this.loadTime = this.now(); this.rearm(this.loadTime); break;
      case 0x3e: {
        const now = this.now();
        const cur = this.currentCount(now);
        this.divideConf = v & 0xb;
        // keep the count where it is, at the new rate
        if (this.initialCount !== 0) this.loadTime = now - (this.initialCount - cur) * (1 << this.shift());
        this.rearm(now);
        break;
      }
      default: break; // read-only or reserved
    }
  }

  /** Is this APIC a destination of (mode, dest)? */
  matches(logical: boolean, dest: number): boolean {
    if (!logical) return dest === 0xff || dest === this.id;
    if (dest === 0xff) return true;
    const ldr = this.ldr >>> 24;
    if ((this.dfr >>> 28) === 0xf) return (ldr & dest) !== 0; // flat
    return (ldr >> 4) === (dest >> 4) && (ldr & dest & 0xf) !== 0; // cluster
  }

  private sendIpi(): void {
    const lo = this.icrLo;
    const vector = lo & 0xff, mode = (lo >> 8) & 7, shorthand = (lo >> 18) & 3;
    const toSelf = shorthand === 1 || shorthand === 2 || (shorthand === 0 && this.matches((lo & 0x800) !== 0, this.icrHi >>> 24));
    if (!toSelf) return; // no other CPU
    if (mode === 0 || mode === 1) {
      if (vector < 16) this.error(ESR_ILLEGAL_TX);
      else this.accept(vector, false);
    }
    // NMI, INIT, SIPI, SMI to this CPU: not modelled (one CPU, no NMI input)
  }

  // ---- the MSR ----
  readMsr(): number {
    return (this.base | 0x100 | (this.msrEnabled ? 0x800 : 0)) >>> 0;
  }

  writeMsr(lo: number): void {
    this.base = (lo & 0xfffff000) >>> 0;
    if ((lo & 0x800) === 0 && this.msrEnabled) {
      this.msrEnabled = false;
      this.svr &= ~0x100;
    }
    this.onChange();
  }

  // ---- MMIO (byte accesses; a register is written when its last byte arrives) ----
  read8(off: number): number {
    if ((off & 0xc) !== 0) return 0;
    // a dword read comes as its four bytes, lowest first: read the register once, at its first byte,
    // so that a counting register (current count) cannot change between its bytes
    if ((off & 3) === 0 || (off & 0xff0) !== this.readLatchOff) {
      this.readLatch = this.read32(off & 0xff0);
      this.readLatchOff = off & 0xff0;
    }
    return (this.readLatch >>> ((off & 3) * 8)) & 0xff;
  }

  write8(off: number, v: number): void {
    if ((off & 0xc) !== 0) return;
    const sh = (off & 3) * 8;
    this.writeLatch = (this.writeLatch & ~(0xff << sh)) | (v << sh);
    if ((off & 3) === 3) this.write32(off & 0xff0, this.writeLatch);
  }
}

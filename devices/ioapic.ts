/**
 * The I/O APIC (82093AA; version 0x20, 24 pins, as QEMU's) at 0xFEC00000: IOREGSEL at +0, IOWIN at
 * +0x10; registers ID (0), version (1: 0x00170020), arbitration (2), and the redirection table
 * (0x10 + 2n low, 0x11 + 2n high): vector, delivery mode, destination mode, delivery status and
 * remote IRR (read-only), polarity, trigger mode, mask, destination. Every entry starts masked.
 * Wired as QEMU wires ISA interrupts: IRQ n on pin n, except the PIT's IRQ 0 on pin 2.
 * An edge entry delivers on a rising input; a level entry delivers while its input is high and its
 * remote IRR is clear, setting remote IRR until the local APIC's EOI of its vector. Fixed and lowest
 * priority delivery go to the local APIC when it is a destination; other modes are not delivered.
 */
import type { LocalApic } from './lapic.ts';

export const IOAPIC_BASE = 0xfec00000;
const PINS = 24;
const MASK = 1 << 16, LEVEL = 1 << 15, REMOTE_IRR = 1 << 14;

export class IoApic {
  id = 0;
  sel = 0;
  readonly lo = new Uint32Array(PINS).fill(MASK);
  readonly hi = new Uint32Array(PINS);
  private levels = 0;
  private writeLatch = 0;

  constructor(private readonly lapic: LocalApic) {}

  /** The GSI an ISA IRQ arrives on. */
  static gsi(isaIrq: number): number {
    return isaIrq === 0 ? 2 : isaIrq;
  }

  setIrq(pin: number, level: boolean): void {
    const bit = 1 << pin;
    const was = (this.levels & bit) !== 0;
    if (level) this.levels |= bit; else this.levels &= ~bit;
    if ((this.lo[pin] & LEVEL) !== 0) { if (level) this.service(pin); } else if (level && !was) this.service(pin);
  }

  private service(pin: number): void {
    const e = this.lo[pin];
    if ((e & MASK) !== 0) return;
    const level = (e & LEVEL) !== 0;
    if (level && (e & REMOTE_IRR) !== 0) return;
    const mode = (e >> 8) & 7;
    if (mode !== 0 && mode !== 1) return;
    if (!this.lapic.matches((e & 0x800) !== 0, this.hi[pin] >>> 24)) return;
    if (level) this.lo[pin] |= REMOTE_IRR;
    this.lapic.accept(e & 0xff, level);
  }

  /** The local APIC ended level-triggered `vector`. */
  eoi(vector: number): void {
    for (let p = 0; p < PINS; p++) {
      if ((this.lo[p] & REMOTE_IRR) !== 0 && (this.lo[p] & 0xff) === vector) {
        this.lo[p] &= ~REMOTE_IRR;
        if ((this.levels & (1 << p)) !== 0) this.service(p);
      }
    }
  }

  private readReg(): number {
    const s = this.sel;
    if (s === 0) return this.id << 24;
    if (s === 1) return 0x00170020;
    if (s === 2) return this.id << 24;
    if (s >= 0x10 && s < 0x10 + 2 * PINS) {
      const pin = (s - 0x10) >> 1;
      return (s & 1) === 0 ? this.lo[pin] | 0 : this.hi[pin] | 0;
    }
    return 0;
  }

  private writeReg(v: number): void {
    const s = this.sel;
    if (s === 0) { this.id = (v >>> 24) & 0xf; return; }
    if (s >= 0x10 && s < 0x10 + 2 * PINS) {
      const pin = (s - 0x10) >> 1;
      if ((s & 1) === 0) {
        this.lo[pin] = (v & ~(REMOTE_IRR | (1 << 12))) | (this.lo[pin] & REMOTE_IRR);
        if ((this.lo[pin] & LEVEL) === 0) this.lo[pin] &= ~REMOTE_IRR;
        if ((this.levels & (1 << pin)) !== 0 && (this.lo[pin] & LEVEL) !== 0) this.service(pin);
      } else this.hi[pin] = v & 0xff000000;
    }
  }

  read8(off: number): number {
    const reg = off & 0xf0;
    if ((off & 0xc) !== 0 || (reg !== 0 && reg !== 0x10)) return 0;
    const v = reg === 0 ? this.sel : this.readReg();
    return (v >>> ((off & 3) * 8)) & 0xff;
  }

  write8(off: number, v: number): void {
    const reg = off & 0xf0;
    if ((off & 0xc) !== 0 || (reg !== 0 && reg !== 0x10)) return;
    const sh = (off & 3) * 8;
    this.writeLatch = (this.writeLatch & ~(0xff << sh)) | (v << sh);
    if ((off & 3) !== 3) {
      if (reg === 0 && (off & 3) === 0) this.sel = v; // IOREGSEL is often written as a byte
      return;
    }
    if (reg === 0) this.sel = this.writeLatch & 0xff;
    else this.writeReg(this.writeLatch);
  }
}

/** The local APIC (devices/lapic.ts) and I/O APIC (devices/ioapic.ts), through 32-bit register accesses. */
import { describe, expect, it } from 'vitest';
import { LocalApic } from '../../devices/lapic.ts';
import { IoApic } from '../../devices/ioapic.ts';

function setup() {
  let now = 0;
  const eois: number[] = [];
  const l = new LocalApic(() => now, () => {}, (v) => { eois.push(v); io.eoi(v); });
  const io = new IoApic(l);
  const w = (off: number, v: number) => { for (let i = 0; i < 4; i++) l.write8(off + i, (v >>> (8 * i)) & 0xff); };
  const r = (off: number) => { let v = 0; for (let i = 0; i < 4; i++) v |= l.read8(off + i) << (8 * i); return v >>> 0; };
  const iow = (reg: number, v: number) => { io.write8(0, reg); for (let i = 0; i < 4; i++) io.write8(0x10 + i, (v >>> (8 * i)) & 0xff); };
  const ior = (reg: number) => { io.write8(0, reg); let v = 0; for (let i = 0; i < 4; i++) v |= io.read8(0x10 + i) << (8 * i); return v >>> 0; };
  const advance = (ns: number) => {
    const end = now + ns;
    while (l.deadline() <= end) { now = Math.max(now, l.deadline()); l.update(now); }
    now = end;
  };
  return { l, io, w, r, iow, ior, advance, eois };
}

describe('local APIC', () => {
  it('hand-off state: version 0x50014, SVR 0x1FF, LINT0 ExtINT, the MSR 0xFEE00900', () => {
    const { l, r } = setup();
    expect([r(0x30), r(0xf0), r(0x350), r(0x360), r(0x320)]).toEqual([0x50014, 0x1ff, 0x8700, 0x8400, 0x10000]);
    expect(l.readMsr()).toBe(0xfee00900);
  });
  it('a fixed self IPI: IRR, acknowledge to ISR, EOI; PPR follows the in-service class', () => {
    const { l, w, r } = setup();
    w(0x300, 0x40041);
    expect(l.pending()).toBe(true);
    expect(r(0x200 + 0x20) >>> 1 & 1).toBe(1);
    expect(l.acknowledge()).toBe(0x41);
    expect(r(0xa0)).toBe(0x40);
    expect(l.pending()).toBe(false);
    w(0xb0, 0);
    expect(r(0x100 + 0x20)).toBe(0);
  });
  it('TPR holds back a class at or below it', () => {
    const { l, w } = setup();
    w(0x80, 0x50);
    w(0x300, 0x40055);
    expect(l.pending()).toBe(false);
    w(0x80, 0x40);
    expect(l.acknowledge()).toBe(0x55);
  });
  it('timer one-shot and periodic with the divider; current count', () => {
    const { l, w, r, advance } = setup();
    w(0x3e0, 0x0b); // divide by 1
    w(0x320, 0x30);
    w(0x380, 1000);
    advance(500);
    expect(r(0x390)).toBe(500);
    advance(600);
    expect(l.acknowledge()).toBe(0x30);
    w(0xb0, 0);
    advance(10000);
    expect(l.pending()).toBe(false);
    expect(r(0x390)).toBe(0);
    w(0x3e0, 0x03); // divide by 16
    w(0x320, 0x20031);
    w(0x380, 100);
    let n = 0;
    for (let i = 0; i < 10; i++) { advance(101 * 16); if (l.acknowledge() === 0x31) { n++; w(0xb0, 0); } }
    expect(n).toBe(10);
  });
  it('software disable masks every LVT and keeps it masked; illegal vectors set ESR', () => {
    const { w, r } = setup();
    w(0xf0, 0xff);
    w(0x320, 0x40);
    expect(r(0x320)).toBe(0x10040);
    w(0xf0, 0x1ff);
    w(0x300, 0x40005);
    w(0x280, 0);
    expect(r(0x280) & 0x20).toBe(0x20);
  });
  it('the 8259 reaches the CPU through LINT0 unless it is masked or the APIC is off', () => {
    const { l, w } = setup();
    expect(l.acceptsPic()).toBe(true);
    w(0x350, 0x18700);
    expect(l.acceptsPic()).toBe(false);
    l.writeMsr(0xfee00000);
    expect(l.acceptsPic()).toBe(true);
    l.writeMsr(0xfee00800);
    expect(l.msrEnabled).toBe(false); // disabling is final until reset
  });
});

describe('I/O APIC', () => {
  it('version and masked entries at reset; entries write back', () => {
    const { ior, iow } = setup();
    expect(ior(1)).toBe(0x170020);
    expect(ior(0x14)).toBe(0x10000);
    iow(0x14, 0x1a055);
    expect(ior(0x14)).toBe(0x1a055);
  });
  it('ISA IRQ 0 arrives on pin 2; an edge entry delivers on the rising input', () => {
    const { l, io, iow } = setup();
    expect(IoApic.gsi(0)).toBe(2);
    iow(0x14, 0x60);
    io.setIrq(2, true);
    expect(l.acknowledge()).toBe(0x60);
  });
  it('a level entry sets remote IRR until the EOI of its vector, then delivers again if still high', () => {
    const { l, io, iow, ior, w } = setup();
    iow(0x16, 0x8061); // pin 3, level, vector 0x61
    io.setIrq(3, true);
    expect(ior(0x16) & 0x4000).toBe(0x4000);
    expect(l.acknowledge()).toBe(0x61);
    io.setIrq(3, true);
    expect(l.pending()).toBe(false);
    w(0xb0, 0); // EOI: TMR set, broadcast
    expect(l.acknowledge()).toBe(0x61);
  });
});

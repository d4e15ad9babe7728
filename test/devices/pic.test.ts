/** The 8259A pair (devices/pic.ts): initialisation, masks, EOI, priorities, cascade, edge and level. */
import { describe, expect, it } from 'vitest';
import { PicPair } from '../../devices/pic.ts';

function setup() {
  const intr: boolean[] = [];
  const p = new PicPair((l) => intr.push(l));
  // the usual remap: 0x20/0x28, cascade on 2, 8086 mode, everything unmasked
  for (const [port, v] of [[0x20, 0x11], [0xa0, 0x11], [0x21, 0x20], [0xa1, 0x28], [0x21, 4], [0xa1, 2], [0x21, 1], [0xa1, 1], [0x21, 0], [0xa1, 0]]) p.out(port, v);
  return { p, intr };
}
const isr = (p: PicPair, port = 0x20) => { p.out(port, 0x0b); return p.in(port); };
const irr = (p: PicPair, port = 0x20) => { p.out(port, 0x0a); return p.in(port); };

describe('8259A pair', () => {
  it('hands over in SeaBIOS\'s state: vectors 0x08/0x70, masks 0xB8/0x8E', () => {
    const p = new PicPair(() => {});
    expect([p.in(0x21), p.in(0xa1), p.in(0x4d1)]).toEqual([0xb8, 0x8e, 0x0c]);
    p.setIrq(0, true);
    expect(p.acknowledge()).toBe(0x08);
  });
  it('an edge sets IRR, the acknowledge moves it to ISR and returns base + irq; EOI clears ISR', () => {
    const { p } = setup();
    p.setIrq(3, true);
    expect(p.intr).toBe(true);
    expect(irr(p)).toBe(0x08);
    expect(p.acknowledge()).toBe(0x23);
    expect([irr(p), isr(p)]).toEqual([0, 0x08]);
    expect(p.intr).toBe(false);
    p.out(0x20, 0x20);
    expect(isr(p)).toBe(0);
  });
  it('a held edge input does not interrupt again; a new rising edge does', () => {
    const { p } = setup();
    p.setIrq(0, true); p.acknowledge(); p.out(0x20, 0x20);
    p.setIrq(0, true);
    expect(p.intr).toBe(false);
    p.setIrq(0, false); p.setIrq(0, true);
    expect(p.intr).toBe(true);
  });
  it('level-triggered (ELCR) inputs follow the line and stay in IRR while high', () => {
    const { p } = setup();
    p.out(0x4d0, 0x08); // IRQ 3 level
    p.setIrq(3, true);
    expect(p.acknowledge()).toBe(0x23);
    p.out(0x20, 0x20);
    expect(p.intr).toBe(true); // still high: again
    p.setIrq(3, false);
    expect(p.intr).toBe(false);
    expect(irr(p)).toBe(0);
  });
  it('masks hold requests back; IRR still records them', () => {
    const { p } = setup();
    p.out(0x21, 0x01);
    p.setIrq(0, true);
    expect(p.intr).toBe(false);
    expect(irr(p)).toBe(1);
    p.out(0x21, 0x00);
    expect(p.intr).toBe(true);
  });
  it('priority: a lower IRQ number preempts; a higher one waits for EOI', () => {
    const { p } = setup();
    p.setIrq(5, true);
    expect(p.acknowledge()).toBe(0x25);
    p.setIrq(6, true);
    expect(p.intr).toBe(false);
    p.setIrq(1, true);
    expect(p.acknowledge()).toBe(0x21);
    expect(isr(p)).toBe(0x22);
    p.out(0x20, 0x20); // non-specific EOI ends the highest: IRQ 1
    expect(isr(p)).toBe(0x20);
    p.out(0x20, 0x65); // specific EOI of IRQ 5
    expect(p.acknowledge()).toBe(0x26);
  });
  it('the slave cascades through IRQ 2; EOI both', () => {
    const { p } = setup();
    p.setIrq(12, true);
    expect(p.acknowledge()).toBe(0x2c);
    expect([isr(p), isr(p, 0xa0)]).toEqual([0x04, 0x10]);
  });
  it('a request gone before the acknowledge gives the spurious vector 7 (master) or 15 (slave)', () => {
    const { p } = setup();
    expect(p.acknowledge()).toBe(0x27);
    expect(isr(p)).toBe(0);
    p.out(0x4d1, 0x08);
    p.setIrq(11, true);
    p.setIrq(11, false); // level input dropped: master's IRQ 2 edge is latched, the slave has nothing
    expect(p.acknowledge()).toBe(0x2f);
  });
  it('auto-EOI leaves ISR clear', () => {
    const p = new PicPair(() => {});
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x40], [0x21, 4], [0x21, 3], [0x21, 0]]) p.out(port, v);
    p.setIrq(4, true);
    expect(p.acknowledge()).toBe(0x44);
    expect(isr(p)).toBe(0);
  });
  it('poll mode answers 0x80 | irq and acknowledges', () => {
    const { p } = setup();
    p.setIrq(4, true);
    p.out(0x20, 0x0c);
    expect(p.in(0x20)).toBe(0x84);
    expect(isr(p)).toBe(0x10);
  });
  it('rotate on non-specific EOI makes the ended IRQ the lowest priority', () => {
    const { p } = setup();
    p.setIrq(0, true); p.acknowledge(); p.out(0x20, 0xa0);
    p.setIrq(0, false); p.setIrq(0, true); p.setIrq(1, true);
    expect(p.acknowledge()).toBe(0x21);
  });
  it('no sequence of port writes throws', () => {
    const p = new PicPair(() => {});
    let x = 12345;
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const port = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1][x % 6];
      if ((x >> 8) & 1) p.out(port, (x >> 16) & 0xff); else p.in(port);
      if ((x >> 9) % 7 === 0) p.setIrq((x >> 12) & 15, ((x >> 20) & 1) === 1);
      if ((x >> 10) % 5 === 0) expect(p.acknowledge()).toBeGreaterThanOrEqual(0);
    }
  });
});

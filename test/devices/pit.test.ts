/** The 8254 (devices/pit.ts) on a clock the test moves: counting, modes, latch, read-back, IRQ 0, port 0x61. */
import { describe, expect, it } from 'vitest';
import { Pit, PIT_HZ } from '../../devices/pit.ts';

const tick = 1e9 / PIT_HZ; // ns per PIT clock
function setup() {
  let now = 0;
  const edges: [number, boolean][] = [];
  const pit = new Pit((l) => edges.push([now, l]), () => now);
  const advance = (ns: number) => {
    // as the machine does: stop at every deadline on the way
    const end = now + ns;
    while (pit.deadline() <= end) { now = Math.max(now, pit.deadline()); pit.update(now); }
    now = end;
    pit.update(now);
  };
  return { pit, edges, advance, at: () => now };
}
const read16 = (p: Pit, port: number) => p.in(port) | (p.in(port) << 8);

describe('8254 PIT', () => {
  it('hands over channel 0 in mode 2 with 65536 (18.2 Hz), channel 2 in mode 3 with its gate low', () => {
    const { pit } = setup();
    pit.out(0x43, 0xe2);
    expect(pit.in(0x40) & 0x3f).toBe(0x34);
    pit.out(0x43, 0xe8);
    expect(pit.in(0x42) & 0x3f).toBe(0x06);
    expect(pit.in(0x61) & 1).toBe(0);
  });
  it('mode 2 raises IRQ 0 once per period: 100 Hz gives 100 rising edges a second', () => {
    const { pit, edges, advance } = setup();
    pit.out(0x43, 0x34); pit.out(0x40, 11932 & 0xff); pit.out(0x40, 11932 >> 8);
    edges.length = 0;
    advance(1e9 + 1e5); // 100 periods of 11932 clocks are 1.0000017 s
    expect(edges.filter(([, l]) => l).length).toBe(100);
  });
  it('mode 3 square wave: output high for half the period', () => {
    const { pit, edges, advance } = setup();
    pit.out(0x43, 0x36); pit.out(0x40, 100); pit.out(0x40, 0);
    edges.length = 0;
    advance(1000 * tick);
    const rises = edges.filter(([, l]) => l).length;
    expect(rises).toBeGreaterThanOrEqual(9);
    expect(rises).toBeLessThanOrEqual(11);
  });
  it('mode 0: output rises at terminal count and stays', () => {
    const { pit, edges, advance } = setup();
    pit.out(0x43, 0x30); pit.out(0x40, 50); pit.out(0x40, 0);
    edges.length = 0;
    advance(49 * tick);
    expect(edges).toEqual([]);
    advance(2 * tick);
    expect(edges.map(([, l]) => l)).toEqual([true]);
    advance(1e6);
    expect(edges.length).toBe(1);
    expect(pit.deadline()).toBe(Infinity);
  });
  it('counts down; the latch freezes the count until both bytes are read', () => {
    const { pit, advance } = setup();
    pit.out(0x43, 0x34); pit.out(0x40, 0x00); pit.out(0x40, 0x10); // 4096
    advance(100 * tick + 1);
    pit.out(0x43, 0x00);
    advance(500 * tick);
    expect(read16(pit, 0x40)).toBe(4096 - 100);
    expect(read16(pit, 0x40)).toBe(4096 - 600);
  });
  it('read-back latches status and count of several channels at once', () => {
    const { pit } = setup();
    pit.out(0x43, 0xb4); pit.out(0x42, 0x34); pit.out(0x42, 0x12); // channel 2, mode 2, 0x1234
    pit.out(0x43, 0xc8); // count and status of channel 2
    expect(pit.in(0x42) & 0x3f).toBe(0x34);
    expect(read16(pit, 0x42)).toBe(0x1234);
  });
  it('lobyte-only access and a count of 0 meaning 65536', () => {
    const { pit } = setup();
    pit.out(0x43, 0x10); pit.out(0x40, 0x00); // lobyte, mode 0, 0 -> 65536
    expect(pit.ch[0].count).toBe(0x10000);
    pit.out(0x43, 0x50); pit.out(0x41, 0x33);
    expect(pit.in(0x41)).toBe(0x33);
  });
  it('port 0x61: channel 2\'s gate, and its output in bit 5', () => {
    const { pit, advance } = setup();
    pit.out(0x43, 0xb0); pit.out(0x42, 10); pit.out(0x42, 0); // mode 0, 10
    pit.out(0x61, 1);
    expect(pit.in(0x61) & 0x21).toBe(0x01);
    advance(20 * tick);
    expect(pit.in(0x61) & 0x21).toBe(0x21);
    expect(pit.in(0x61) & 0x10).not.toBe(pit.in(0x61) & 0x10); // the refresh bit toggles
  });
  it('after a long gap only the last period is replayed (no storm of edges)', () => {
    const { pit, edges, advance } = setup();
    pit.out(0x43, 0x34); pit.out(0x40, 0x00); pit.out(0x40, 0x01); // 256
    edges.length = 0;
    pit.update(1e9); // one second without stopping at deadlines
    expect(edges.length).toBeLessThanOrEqual(4);
    expect(pit.deadline()).toBeGreaterThan(1e9);
    advance(0);
  });
  it('no sequence of port accesses throws', () => {
    const { pit, advance } = setup();
    let x = 99;
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const port = [0x40, 0x41, 0x42, 0x43, 0x61][x % 5];
      if ((x >> 8) & 1) pit.out(port, (x >> 16) & 0xff); else pit.in(port);
      advance((x >> 20) & 0xfff);
    }
  });
});

/** The CMOS RTC (devices/rtc.ts): time formats, setting the clock, UIP, interrupts on IRQ 8, QEMU's memory bytes. */
import { describe, expect, it } from 'vitest';
import { Rtc } from '../../devices/rtc.ts';

const BASE = Date.UTC(2026, 11, 4, 17, 5, 9, 0); // Friday 2026-12-04 17:05:09 UTC
function setup(memBytes = 32 << 20) {
  let now = 0;
  const irq: boolean[] = [];
  const rtc = new Rtc((l) => irq.push(l), () => now, { memBytes, baseMs: BASE });
  const reg = (r: number) => { rtc.out(0x70, r); return rtc.in(0x71); };
  const set = (r: number, v: number) => { rtc.out(0x70, r); rtc.out(0x71, v); };
  const advance = (ns: number) => {
    const end = now + ns;
    while (rtc.deadline() <= end) { now = Math.max(now, rtc.deadline()); rtc.update(now); }
    now = end;
    rtc.update(now);
  };
  return { rtc, irq, reg, set, advance };
}

describe('CMOS RTC', () => {
  it('reads the time in BCD, 24-hour, by default', () => {
    const { reg } = setup();
    expect([reg(0), reg(2), reg(4), reg(6), reg(7), reg(8), reg(9), reg(0x32)]).toEqual([0x09, 0x05, 0x17, 0x06, 0x04, 0x12, 0x26, 0x20]);
  });
  it('binary and 12-hour formats (PM in bit 7)', () => {
    const { reg, set } = setup();
    set(0x0b, 0x04); // binary, 12 h
    expect([reg(0), reg(4)]).toEqual([9, 0x80 | 5]);
    set(0x0b, 0x00); // BCD, 12 h
    expect(reg(4)).toBe(0x85);
  });
  it('advances with the virtual clock', () => {
    const { reg, advance } = setup();
    advance(61e9);
    expect([reg(0), reg(2)]).toEqual([0x10, 0x06]);
  });
  it('a guest\'s write sets the clock', () => {
    const { reg, set } = setup();
    set(0x0b, 0x82); set(4, 0x23); set(2, 0x59); set(0x0b, 0x02);
    expect([reg(4), reg(2), reg(7)]).toEqual([0x23, 0x59, 0x04]);
  });
  it('UIP reads 1 only in the 244 us before a second ends', () => {
    const { reg, advance } = setup();
    expect(reg(0x0a) & 0x80).toBe(0);
    advance(1e9 - 200e3);
    expect(reg(0x0a) & 0x80).toBe(0x80);
    advance(300e3);
    expect(reg(0x0a) & 0x80).toBe(0);
  });
  it('periodic interrupt: PF and IRQ 8 at the programmed rate; reading C clears and lowers IRQ 8', () => {
    const { reg, set, irq, advance } = setup();
    set(0x0a, 0x26); // 1024 Hz
    set(0x0b, 0x42);
    advance(1e9 / 1024 + 10);
    expect(irq).toEqual([true]);
    expect(reg(0x0c) & 0xc0).toBe(0xc0);
    expect(irq).toEqual([true, false]);
    let n = 0;
    for (let i = 0; i < 100; i++) { advance(1e9 / 1024); if ((reg(0x0c) & 0x40) !== 0) n++; }
    expect(n).toBeGreaterThanOrEqual(99);
  });
  it('update-ended interrupt once a second; flags are set even when not enabled', () => {
    const { reg, set, irq, advance } = setup();
    advance(1.1e9);
    expect(irq).toEqual([]);
    expect(reg(0x0c) & 0x10).toBe(0x10);
    set(0x0b, 0x12);
    advance(1e9);
    expect(irq).toEqual([true]);
  });
  it('register D says valid; the NMI mask bit of the index does not change the register chosen', () => {
    const { rtc, reg } = setup();
    expect(reg(0x0d)).toBe(0x80);
    rtc.out(0x70, 0x8d);
    expect(rtc.in(0x71)).toBe(0x80);
    expect(rtc.nmiMasked).toBe(true);
  });
  it('the memory bytes QEMU sets, for 32 MiB and for 4 GiB - 1 page', () => {
    const { reg } = setup();
    expect([reg(0x15) | (reg(0x16) << 8), reg(0x17) | (reg(0x18) << 8), reg(0x34) | (reg(0x35) << 8)]).toEqual([640, 31744, 256]);
    const big = setup(2047 << 20);
    expect([big.reg(0x17) | (big.reg(0x18) << 8), big.reg(0x34) | (big.reg(0x35) << 8)]).toEqual([0xffff, (2047 - 16) * 16]);
  });
  it('no sequence of accesses throws', () => {
    const { rtc, advance } = setup();
    let x = 7;
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      if ((x >> 8) & 1) rtc.out(0x70 + (x & 1), (x >> 16) & 0xff); else rtc.in(0x70 + (x & 1));
      advance((x >> 18) * 100);
    }
  });
});

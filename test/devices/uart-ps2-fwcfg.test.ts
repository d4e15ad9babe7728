/** The 16550A (devices/uart.ts), the 8042 and keyboard (devices/ps2.ts), fw_cfg (devices/fw-cfg.ts) and the
 *  shared console (devices/pc.ts SharedConsole). */
import { describe, expect, it } from 'vitest';
import { Uart } from '../../devices/uart.ts';
import { Ps2, scanCodes } from '../../devices/ps2.ts';
import { FwCfg } from '../../devices/fw-cfg.ts';
import { SharedConsole } from '../../devices/pc.ts';

function uart() {
  const out: number[] = [];
  const irq: boolean[] = [];
  const u = new Uart((b) => out.push(b), (l) => irq.push(l));
  return { u, out, irq };
}

describe('16550A UART', () => {
  it('reset state as QEMU + SeaBIOS leave it', () => {
    const { u } = uart();
    expect([1, 2, 3, 4, 5, 6].map((r) => u.in(r))).toEqual([0, 1, 0, 8, 0x60, 0xb0]);
  });
  it('THR goes to the output; the divisor latch hides RBR/IER while DLAB is set', () => {
    const { u, out } = uart();
    u.out(0, 0x41);
    u.out(3, 0x80); u.out(0, 3); u.out(1, 0);
    expect([u.in(0), u.in(1)]).toEqual([3, 0]);
    u.out(3, 3);
    u.out(0, 0x42);
    expect(out).toEqual([0x41, 0x42]);
  });
  it('input: data ready, the byte, overrun without FIFO only for loopback (stdin waits for room)', () => {
    const { u } = uart();
    u.feed([0x61, 0x62]);
    expect(u.in(5) & 1).toBe(1);
    expect(u.in(0)).toBe(0x61);
    expect(u.in(0)).toBe(0x62);
    expect(u.in(5) & 1).toBe(0);
  });
  it('FIFO: 16 bytes, the trigger level, received-data then timeout interrupts on IRQ 4', () => {
    const { u, irq } = uart();
    u.out(2, 0x81); // FIFO on, trigger 8
    u.out(1, 1);
    u.feed([1, 2, 3]);
    expect(u.in(2) & 0x0f).toBe(0x0c); // below the trigger: character timeout
    u.feed([4, 5, 6, 7, 8]);
    expect(u.in(2)).toBe(0xc4); // FIFOs enabled, received data
    expect(irq[irq.length - 1]).toBe(true);
    for (let i = 0; i < 8; i++) u.in(0);
    expect(u.in(2) & 0x0f).toBe(1);
    expect(irq[irq.length - 1]).toBe(false);
    u.feed(new Array(20).fill(9));
    let n = 0; while (u.in(5) & 1) { u.in(0); n++; }
    expect(n).toBe(20); // the rest came in as room was made
  });
  it('THRE interrupt: pending when enabled, cleared by reading IIR, again after a write', () => {
    const { u } = uart();
    u.out(1, 2);
    expect(u.in(2) & 0x0f).toBe(2);
    expect(u.in(2) & 0x0f).toBe(1);
    u.out(0, 0x20);
    expect(u.in(2) & 0x0f).toBe(2);
  });
  it('loopback: sent bytes are received, MSR mirrors MCR, a second byte without FIFO overruns', () => {
    const { u, out } = uart();
    u.out(4, 0x1f);
    expect(u.in(6) & 0xf0).toBe(0xf0);
    u.out(0, 7); u.out(0, 8);
    expect(out).toEqual([]);
    expect(u.in(5) & 3).toBe(3);
    expect(u.in(0)).toBe(7);
  });
});

describe('8042 and PS/2 keyboard', () => {
  it('translates bytes to scan code set 1: make and break, shift for capitals', () => {
    expect(scanCodes(0x61)).toEqual([0x1e, 0x9e]);
    expect(scanCodes(0x41)).toEqual([0x2a, 0x1e, 0x9e, 0xaa]);
    expect(scanCodes(0x0a)).toEqual([0x1c, 0x9c]);
    expect(scanCodes(0xff)).toEqual([]);
  });
  it('keys arrive one byte at a time with IRQ 1 edges; status OBF follows', () => {
    const irq: boolean[] = [];
    const k = new Ps2((l) => irq.push(l), () => {});
    k.feed([0x61]);
    expect(k.in(0x64) & 1).toBe(1);
    expect(irq).toEqual([true]);
    expect(k.in(0x60)).toBe(0x1e);
    expect(irq).toEqual([true, false, true]);
    expect(k.in(0x60)).toBe(0x9e);
    expect(k.in(0x64) & 1).toBe(0);
  });
  it('controller and keyboard commands answer as QEMU\'s', () => {
    let resets = 0;
    const k = new Ps2(() => {}, () => resets++);
    const cmd = (c: number) => { k.out(0x64, c); return k.in(0x60); };
    expect([cmd(0x20), cmd(0xaa), cmd(0xab)]).toEqual([0x61, 0x55, 0x00]);
    k.out(0x60, 0xff);
    expect([k.in(0x60), k.in(0x60)]).toEqual([0xfa, 0xaa]);
    k.out(0x60, 0xf0); k.out(0x60, 0x00);
    expect([k.in(0x60), k.in(0x60), k.in(0x60)]).toEqual([0xfa, 0xfa, 0x41]);
    k.out(0x60, 0x12);
    expect(k.in(0x60)).toBe(0xfe);
    k.out(0x64, 0xfe);
    expect(resets).toBe(1);
  });
});

describe('fw_cfg', () => {
  const f = new FwCfg({ memBytes: 64 << 20, cpus: 1 });
  const read = (sel: number, n: number) => { f.out(0x510, sel); return Array.from({ length: n }, () => f.in(0x511, 1)); };
  it('signature, ID, CPU count, RAM size', () => {
    expect(String.fromCharCode(...read(0, 4))).toBe('QEMU');
    expect(read(1, 4)).toEqual([1, 0, 0, 0]);
    expect(read(5, 2)).toEqual([1, 0]);
    expect(read(3, 8)).toEqual([0, 0, 0, 4, 0, 0, 0, 0]);
  });
  it('the file directory (big-endian) leads to etc/e820', () => {
    const dir = read(0x19, 4 + 64 * 2);
    expect(dir.slice(0, 4)).toEqual([0, 0, 0, 2]);
    const name = String.fromCharCode(...dir.slice(4 + 64 + 8, 4 + 64 + 16));
    expect(name).toBe('etc/e820');
    const sel = (dir[4 + 64 + 4] << 8) | dir[4 + 64 + 5];
    const e820 = read(sel, 20);
    expect(e820.slice(8, 12)).toEqual([0, 0, 0, 4]);
    expect(e820[16]).toBe(1);
  });
  it('reading past an item, or an unknown item, gives 0', () => {
    expect(read(0, 6).slice(4)).toEqual([0, 0]);
    expect(read(0x4242, 2)).toEqual([0, 0]);
  });
});

describe('the shared console (COM1 and 0xE9 both on stdout)', () => {
  const run = (writes: [number, string][]) => {
    const out: number[] = [];
    const c = new SharedConsole((b) => out.push(b));
    for (const [port, s] of writes) for (const ch of s) c.write(port, ch.charCodeAt(0));
    return String.fromCharCode(...out);
  };
  it('each character written to both ports prints once, per character or per string', () => {
    expect(run([[1, 'h'], [2, 'h'], [1, 'i'], [2, 'i']])).toBe('hi');
    expect(run([[1, 'hello\n'], [2, 'hello\n'], [2, 'more'], [1, 'more']])).toBe('hello\nmore');
  });
  it('different text on the two ports is all printed', () => {
    expect(run([[1, 'debug: x\n'], [2, 'y\n'], [1, 'z']])).toBe('debug: x\ny\nz');
  });
});

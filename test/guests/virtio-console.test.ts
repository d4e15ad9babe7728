/**
 * The virtio console (devices/virtio-console.ts, abi 7.1-7.4): the virtcon guest drives it end to end
 * (descriptor page, status, output queue, interrupts, input from the Launcher), each malformed ring it can
 * give is killed with its reason, and the device's checks on their own against a plain memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { plainDeviceHost } from '../tools/device-host.ts';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';
import { prepareGuest } from '../../launcher/lguest-layout.ts';
import {
  CONSOLE_VQ_NUM, VirtioConsole, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F, consoleLayout, vringLayout,
} from '../../devices/virtio-console.ts';

const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

const boot = (cmdline: string, pae = false, input?: string) => bootGuest('virtcon', {
  cmdline, pae, memMiB: 8,
  consoleInput: input === undefined ? undefined : (send) => {
    // Two pieces, some time apart: the second arrives while the guest waits for it.
    send(Buffer.from(input.slice(0, 2)));
    const t = setTimeout(() => send(Buffer.from(input.slice(2))), 50);
    return () => clearTimeout(t);
  },
}, workers);

describe.concurrent('virtcon guest', () => {
  test.each([false, true])('drives the console (pae %s)', async (pae) => {
    const { out, r } = await boot('', pae);
    expect(out).not.toMatch(/FAIL|PANIC/);
    expect(out).toContain('virtcon: hello through the virtio console\n');
    expect(out).toContain('virtcon: chain of three descriptors\n');
    for (let i = 0; i < 20; i++) expect(out).toContain(`virtcon: batch ${i}\n`);
    expect(out).toContain('virtcon: this one without an interrupt\n');
    expect(out).toMatch(/virtcon: summary: 14 checks passed, \d+ output interrupts\nvirtcon: done\n$/);
    expect(out.match(/check: .*: ok/g)).toHaveLength(14);
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(r.stats.shadow?.leakedFrames).toBe(0);
  });

  test('reads console input from the Launcher', async () => {
    const { out, r } = await boot('input=5', false, 'ping\n');
    expect(out).toContain('check: input queue interrupt (IRQ 1) arrived: ok');
    expect(out).toContain('virtcon: input 5 bytes: ping|\n');
    expect(out).toContain('virtcon: done\n');
    expect(r.fate.kind).toBe('poweroff');
  });

  const BAD: Array<[string, RegExp]> = [
    ['loop', /^virtio console: output queue: descriptor chain from \d+ is longer than 256 \(a loop\)$/],
    ['beyond', /^virtio console: output queue: descriptor \d+ buffer 0x[0-9a-f]+ len 4 is beyond guest memory/],
    ['head', /^virtio console: output queue: chain head 263 is out of range/],
    ['avail', /^virtio console: output queue: avail index \d+ is 257 past the last seen/],
    ['order', /^virtio console: output queue: descriptor \d+ is readable after a writable one$/],
    ['indirect', /^virtio console: output queue: descriptor \d+ is indirect/],
  ];
  test.each(BAD)('a malformed ring (bad=%s) kills the guest with its reason', async (name, reason) => {
    const { out, r } = await boot(`bad=${name}`);
    expect(out).toContain(`virtcon: giving the Host a bad output ring: ${name}\n`);
    expect(out).not.toContain('PANIC');
    expect(r.fate.kind).toBe('killed');
    expect((r.fate as { reason: string }).reason).toMatch(reason);
  });
});

describe('descriptor page', () => {
  test('offers the console first, its rings after the page, then the terminator', () => {
    const g = prepareGuest({ image: readFileSync(join(IMAGE_DIR, 'virtcon.elf')), imageName: 'virtcon', memMiB: 8, pae: false, cmdline: '' });
    const d = g.layout.memBase + g.bus.descGpa;
    expect(g.bus.descGpa).toBe(8 << 20);
    expect([0, 1, 2, 3, 4].map((i) => g.mem.read8(d + i))).toEqual([3, 2, 0, 0, 0]);
    expect([g.mem.read16(d + 5), g.mem.read16(d + 7), g.mem.read32(d + 9)]).toEqual([256, 1, (8 << 20) / 4096 + 1]);
    expect([g.mem.read16(d + 13), g.mem.read16(d + 15), g.mem.read32(d + 17)]).toEqual([256, 2, (8 << 20) / 4096 + 4]);
    expect(g.mem.read8(d + 21)).toBe(0);
    expect(g.layout.pfnLimit).toBe((8 << 20) / 4096 + 7);
    expect(vringLayout(256)).toEqual({ avail: 4096, used: 8192, size: 10244 });
  });
});

/** The device over a plain byte array: guest-physical 0 .. 64 KiB, the rings at 0x10000. */
function rig() {
  const descGpa = 0xf000;
  const limit = descGpa + 7 * 4096;
  const { host, buf, dv, killed, irqs, out } = plainDeviceHost(limit);
  const dev = new VirtioConsole(host, descGpa);
  const [inq, outq] = consoleLayout(descGpa).vqs;
  const l = vringLayout(CONSOLE_VQ_NUM);
  const desc = (q: typeof inq, i: number, addr: number, len: number, flags: number, next = 0, hi = 0) => {
    const d = q.gpa + 16 * i;
    dv.setUint32(d, addr, true); dv.setUint32(d + 4, hi, true); dv.setUint32(d + 8, len, true);
    dv.setUint16(d + 12, flags, true); dv.setUint16(d + 14, next, true);
  };
  const offer = (q: typeof inq, ...heads: number[]) => {
    for (const h of heads) {
      const idx = dv.getUint16(q.gpa + l.avail + 2, true);
      dv.setUint16(q.gpa + l.avail + 4 + 2 * (idx % CONSOLE_VQ_NUM), h, true);
      dv.setUint16(q.gpa + l.avail + 2, (idx + 1) & 0xffff, true);
    }
  };
  const usedIdx = (q: typeof inq) => dv.getUint16(q.gpa + l.used + 2, true);
  return { buf, dv, dev, inq, outq, desc, offer, usedIdx, killed, irqs, out, l, descGpa };
}

describe('VirtioConsole device', () => {
  test('output: chains in order, used entries, one interrupt per kick unless suppressed', () => {
    const t = rig();
    t.buf.set(Buffer.from('hello, world\n'), 0x100);
    t.desc(t.outq, 0, 0x100, 7, VRING_DESC_F.NEXT, 1);
    t.desc(t.outq, 1, 0x107, 6, 0);
    t.desc(t.outq, 2, 0x100, 5, 0);
    t.offer(t.outq, 0, 2);
    expect(t.dev.notify(t.outq.gpa)).toBe(true);
    expect(Buffer.from(t.out).toString()).toBe('hello, world\nhello');
    expect(t.usedIdx(t.outq)).toBe(2);
    expect(t.dv.getUint32(t.outq.gpa + t.l.used + 4, true)).toBe(0);
    expect(t.dv.getUint32(t.outq.gpa + t.l.used + 12, true)).toBe(2);
    expect(t.irqs).toEqual([2]);
    t.dv.setUint16(t.outq.gpa + t.l.avail, VRING_AVAIL_F_NO_INTERRUPT, true);
    t.offer(t.outq, 2);
    t.dev.notify(t.outq.gpa);
    expect(t.irqs).toEqual([2]);
    expect(t.killed).toEqual([]);
  });

  test('input: waits for DRIVER_OK and buffers, fills writable descriptors, reports the length', () => {
    const t = rig();
    t.dev.input(Buffer.from('abcdef'));
    t.desc(t.inq, 0, 0x200, 4, VRING_DESC_F.WRITE);
    t.desc(t.inq, 1, 0x300, 4, VRING_DESC_F.WRITE);
    t.offer(t.inq, 0, 1);
    t.dev.notify(t.inq.gpa);
    expect(t.usedIdx(t.inq)).toBe(0); // not DRIVER_OK yet
    t.buf[t.descGpa + 4] = 7;
    t.dev.notify(t.descGpa);
    t.dev.notify(t.inq.gpa);
    expect(t.usedIdx(t.inq)).toBe(2);
    expect(Buffer.from(t.buf.slice(0x200, 0x204)).toString()).toBe('abcd');
    expect(Buffer.from(t.buf.slice(0x300, 0x302)).toString()).toBe('ef');
    expect(t.dv.getUint32(t.inq.gpa + t.l.used + 8, true)).toBe(4);
    expect(t.dv.getUint32(t.inq.gpa + t.l.used + 16, true)).toBe(2);
    expect(t.irqs).toEqual([1]);
    expect(t.dev.pendingInput).toBe(0);
  });

  test('status 0 resets the rings', () => {
    const t = rig();
    t.desc(t.outq, 0, 0x100, 1, 0);
    t.offer(t.outq, 0);
    t.dev.notify(t.outq.gpa);
    t.buf[t.descGpa + 4] = 0;
    t.dev.notify(t.descGpa);
    expect(t.usedIdx(t.outq)).toBe(0);
    expect(t.dev.vqs[1].lastAvail).toBe(0);
  });

  test.each([
    ['a loop', (t: ReturnType<typeof rig>) => { t.desc(t.outq, 0, 0x100, 1, VRING_DESC_F.NEXT, 0); t.offer(t.outq, 0); }, /longer than 256 \(a loop\)/],
    ['a buffer past memory', (t: ReturnType<typeof rig>) => { t.desc(t.outq, 0, 0x16000, 0x2000, 0); t.offer(t.outq, 0); }, /beyond guest memory/],
    ['a 64-bit address', (t: ReturnType<typeof rig>) => { t.desc(t.outq, 0, 0x100, 1, 0, 0, 1); t.offer(t.outq, 0); }, /buffer 0x100000100 len 1 is beyond/],
    ['a next index out of range', (t: ReturnType<typeof rig>) => { t.desc(t.outq, 0, 0x100, 1, VRING_DESC_F.NEXT, 999); t.offer(t.outq, 0); }, /links to 999, out of range/],
    ['a head out of range', (t: ReturnType<typeof rig>) => { t.offer(t.outq, 256); }, /chain head 256 is out of range/],
    ['avail running ahead', (t: ReturnType<typeof rig>) => { t.dv.setUint16(t.outq.gpa + t.l.avail + 2, 300, true); }, /avail index 300 is 300 past/],
  ])('%s kills the guest, never throws', (_, make, reason) => {
    const t = rig();
    make(t);
    expect(() => t.dev.notify(t.outq.gpa)).not.toThrow();
    expect(t.killed).toHaveLength(1);
    expect(t.killed[0]).toMatch(/^virtio console: output queue: /);
    expect(t.killed[0]).toMatch(reason);
    expect(t.out).toEqual([]);
    expect(t.irqs).toEqual([]);
  });
});

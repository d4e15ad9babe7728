/**
 * The virtio block and entropy devices (devices/virtio-block.ts, virtio-rng.ts, abi 7.3): the virtblk
 * guest drives both end to end over a disk image the test makes (and the test checks the file afterwards),
 * each malformed request it can give is killed with a reason naming the device, the descriptor page lists
 * the devices in lguest's order, the command line takes --block and --rng, and the devices' checks on
 * their own against a plain memory.
 */
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { plainDeviceHost } from '../tools/device-host.ts';
import { BIN, cli } from '../tools/cli.ts';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';
import { prepareGuest } from '../../launcher/lguest-layout.ts';
import { LguestDevices, type BusDevices } from '../../devices/lguest-bus.ts';
import { VIRTIO_BLK_S, VIRTIO_BLK_T, type BlockBackend } from '../../devices/virtio-block.ts';
import { VRING_DESC_F, vringLayout } from '../../devices/virtqueue.ts';

const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

const dir = mkdtempSync(join(tmpdir(), 'lguest-virtblk-'));
/** 128 sectors and 100 bytes more (a partial sector is not offered): byte o = (7o + 13(o >> 9)) & 0xff. */
const DISK_BYTES = 64 * 1024 + 100;
const SECTORS = 128;
function diskBytes(): Buffer {
  const b = Buffer.alloc(DISK_BYTES);
  for (let o = 0; o < b.length; o++) b[o] = (7 * o + 13 * (o >> 9)) & 0xff;
  return b;
}
let disks = 0;
function makeDisk(): string {
  const p = join(dir, `disk${disks++}.img`);
  writeFileSync(p, diskBytes());
  return p;
}

function fnv1a(b: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return `0x${h.toString(16).padStart(8, '0')}`;
}
const hex8 = (b: Uint8Array) => [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
const sector = (b: Uint8Array, s: number, n = 1) => b.subarray(s * 512, (s + n) * 512);
/** What the guest writes: "virtblk wrote sector N\n" repeated over the sector. */
function pattern(s: number): Buffer {
  const line = `virtblk wrote sector ${s}\n`;
  return Buffer.from(line.repeat(Math.ceil(512 / line.length)).slice(0, 512), 'latin1');
}

const boot = (o: { block?: string; rng?: boolean; pae?: boolean; cmdline?: string }) => bootGuest('virtblk', { ...o, memMiB: 8 }, workers);

describe.concurrent('virtblk guest', () => {
  test.each([false, true])('reads, writes, barriers, errors past the end, rng (pae %s)', async (pae) => {
    const disk = makeDisk();
    const before = diskBytes();
    const { out, r } = await boot({ block: disk, rng: true, pae });
    expect(out).not.toMatch(/FAIL|PANIC/);
    expect(out).toContain('virtblk: 3 devices on the bus, types: 3 2 4\n');
    expect(out).toContain(`virtblk: block: capacity ${SECTORS} sectors (${SECTORS * 512} bytes), seg_max 254\n`);
    expect(out).toContain('virtblk: block: queue of 256 entries, IRQ 3, ring at the descriptor page + 7 pages\n');
    expect(out).toContain('virtblk: rng: queue of 256 entries, IRQ 4, ring at the descriptor page + 10 pages\n');
    for (const s of [0, 1, 5]) {
      expect(out).toContain(`virtblk: sector ${s}: ${hex8(sector(before, s))}, fnv1a ${fnv1a(sector(before, s))}\n`);
    }
    // The guest reads the last sector before it writes it.
    expect(out).toContain(`virtblk: sector 127: ${hex8(sector(before, 127))}, fnv1a ${fnv1a(sector(before, 127))}\n`);
    expect(out).toContain(`virtblk: 8 sectors from 8: ${hex8(sector(before, 8))}, fnv1a ${fnv1a(sector(before, 8, 8))}\n`);
    expect(out).toContain(`virtblk: wrote sector 16: ${hex8(pattern(16))}, fnv1a ${fnv1a(pattern(16))}\n`);
    expect(out).toContain(`virtblk: again sector 16: ${hex8(pattern(16))}, fnv1a ${fnv1a(pattern(16))}\n`);
    for (const what of ['FLUSH (not offered): UNSUPP', 'a SCSI command: UNSUPP', 'read across the end: IOERR',
      'write across the end: IOERR', 'the last sector is unchanged by the failed write',
      'status 0 resets the device: accepted features cleared, ring zeroed',
      'rng: the bytes are not all zero, and differ between and within the reads']) {
      expect(out).toContain(`check: ${what}: ok\n`);
    }
    expect(out).toMatch(/virtblk: summary: 41 checks passed, 21 block and 2 rng interrupts\nvirtblk: done\n$/);
    expect(out.match(/check: .*: ok/g)).toHaveLength(41);
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(r.stats.shadow?.leakedFrames).toBe(0);
    // The writes reached the file; nothing else changed, the file did not grow.
    const after = readFileSync(disk);
    expect(after.length).toBe(DISK_BYTES);
    const want = Buffer.from(before);
    for (const s of [16, 17, 20, 127]) want.set(pattern(s), s * 512);
    expect(after.equals(want)).toBe(true);
  });

  test('the rng alone takes IRQ 3 and the first ring', async () => {
    const { out, r } = await boot({ rng: true });
    expect(out).toContain('virtblk: 2 devices on the bus, types: 3 4\n');
    expect(out).toContain('virtblk: no block device (run with --block FILE)\n');
    expect(out).toContain('virtblk: rng: queue of 256 entries, IRQ 3, ring at the descriptor page + 7 pages\n');
    expect(out).toMatch(/virtblk: summary: 5 checks passed, 0 block and 2 rng interrupts\nvirtblk: done\n$/);
    expect(r.fate.kind).toBe('poweroff');
  });

  const BAD: Array<[string, RegExp]> = [
    ['header', /^virtio block: request queue: request \d+: the header descriptor is 8 bytes, not 16$/],
    ['nostatus', /^virtio block: request queue: request \d+ has 2 readable and 0 writable descriptors/],
    ['loop', /^virtio block: request queue: descriptor chain from \d+ is longer than 256 \(a loop\)$/],
    ['rngout', /^virtio rng: input queue: chain \d+ has a readable descriptor/],
  ];
  test.each(BAD)('a malformed request (bad=%s) kills the guest with its reason', async (name, reason) => {
    const { out, r } = await boot({ block: makeDisk(), rng: true, cmdline: `bad=${name}` });
    expect(out).toMatch(new RegExp(`virtblk: giving the Host a bad (block request|rng chain): ${name}\n`));
    expect(out).not.toContain('PANIC');
    expect(r.fate.kind).toBe('killed');
    expect((r.fate as { reason: string }).reason).toMatch(reason);
  });
});

describe('descriptor page', () => {
  test('console, block, rng in that order; rings after the page; IRQs 1-4; pfnLimit covers them', () => {
    const devices: BusDevices = { block: { path: 'x', fd: -1, capacity: 0x123456789 }, rng: true };
    const g = prepareGuest({ image: readFileSync(join(IMAGE_DIR, 'virtblk.elf')), imageName: 'virtblk', memMiB: 8, pae: false, cmdline: '', devices });
    const d = g.layout.memBase + g.bus.descGpa;
    const pfn0 = (8 << 20) / 4096;
    const rd = (o: number, n: number) => [...Array(n).keys()].map((i) => g.mem.read8(d + o + i));
    // console: 5 + 2*8 bytes at 0
    expect(rd(0, 5)).toEqual([3, 2, 0, 0, 0]);
    // block at 21: type 2, 1 vq, 1 feature byte, 16 config bytes; vq 256 entries, IRQ 3, ring at +7 pages
    expect(rd(21, 5)).toEqual([2, 1, 1, 16, 0]);
    expect([g.mem.read16(d + 26), g.mem.read16(d + 28), g.mem.read32(d + 30)]).toEqual([256, 3, pfn0 + 7]);
    expect(rd(34, 2)).toEqual([0x05, 0x00]); // offered BARRIER | SEG_MAX, nothing accepted
    expect([g.mem.read32(d + 36), g.mem.read32(d + 40), g.mem.read32(d + 44), g.mem.read32(d + 48)]).toEqual([0x23456789, 1, 0, 254]);
    // rng at 52: type 4, 1 vq, IRQ 4, ring at +10 pages; then the terminator at 65
    expect(rd(52, 5)).toEqual([4, 1, 0, 0, 0]);
    expect([g.mem.read16(d + 57), g.mem.read16(d + 59), g.mem.read32(d + 61)]).toEqual([256, 4, pfn0 + 10]);
    expect(g.mem.read8(d + 65)).toBe(0);
    expect(g.bus.pages).toBe(13);
    expect(g.layout.pfnLimit).toBe(pfn0 + 13);
  });
});

/** The devices over a plain byte array (guest-physical 0 .. limit), the block device over a memory disk. */
function rig(o: { sectors?: number; fail?: boolean } = {}) {
  const descGpa = 0x10000;
  const limit = descGpa + 13 * 4096;
  const { host, buf, dv, killed, irqs } = plainDeviceHost(limit);
  const sectors = o.sectors ?? 8;
  const disk = new Uint8Array(sectors * 512).map((_, i) => i & 0xff);
  const calls: string[] = [];
  const backend: BlockBackend = {
    read: (into, pos) => { calls.push(`read ${pos} ${into.length}`); if (o.fail) throw new Error('EIO'); into.set(disk.subarray(pos, pos + into.length)); },
    write: (from, pos) => { calls.push(`write ${pos} ${from.length}`); if (o.fail) throw new Error('EIO'); disk.set(from, pos); },
    flush: () => { calls.push('flush'); },
  };
  const devs = new LguestDevices(host, descGpa, { block: { path: 'mem', fd: -1, capacity: sectors }, rng: true }, backend);
  const blk = devs.block!, rng = devs.rng!;
  const l = vringLayout(256);
  const desc = (q: { cfg: { gpa: number } }, i: number, addr: number, len: number, flags: number, next = 0) => {
    const d = q.cfg.gpa + 16 * i;
    dv.setUint32(d, addr, true); dv.setUint32(d + 4, 0, true); dv.setUint32(d + 8, len, true);
    dv.setUint16(d + 12, flags, true); dv.setUint16(d + 14, next, true);
  };
  const offer = (q: { cfg: { gpa: number } }, head: number) => {
    const idx = dv.getUint16(q.cfg.gpa + l.avail + 2, true);
    dv.setUint16(q.cfg.gpa + l.avail + 4 + 2 * (idx % 256), head, true);
    dv.setUint16(q.cfg.gpa + l.avail + 2, (idx + 1) & 0xffff, true);
  };
  const used = (q: { cfg: { gpa: number } }, i: number) => ({
    id: dv.getUint32(q.cfg.gpa + l.used + 4 + 8 * i, true), len: dv.getUint32(q.cfg.gpa + l.used + 8 + 8 * i, true),
  });
  /** A block request at descriptors 0..: header at 0x100, data buffers at 0x1000 + 0x1000 i, status at 0x200. */
  const request = (type: number, sec: number, lens: number[]) => {
    dv.setUint32(0x100, type >>> 0, true); dv.setUint32(0x104, 0, true);
    dv.setUint32(0x108, sec % 2 ** 32, true); dv.setUint32(0x10c, Math.floor(sec / 2 ** 32), true);
    buf[0x200] = 0xee;
    const q = blk.vqs[0];
    const write = (type & 1) === 1;
    desc(q, 0, 0x100, 16, VRING_DESC_F.NEXT, 1);
    lens.forEach((n, i) => desc(q, 1 + i, 0x1000 + 0x1000 * i, n, VRING_DESC_F.NEXT | (write ? 0 : VRING_DESC_F.WRITE), 2 + i));
    desc(q, 1 + lens.length, 0x200, 1, VRING_DESC_F.WRITE);
    offer(q, 0);
    blk.notify(q.cfg.gpa);
    return buf[0x200];
  };
  return { buf, dv, devs, blk, rng, desc, offer, used, request, killed, irqs, disk, calls, descGpa };
}

type Rig = ReturnType<typeof rig>;

describe('VirtioBlock device', () => {
  test('reads and writes across data descriptors; the used length counts the bytes written to the guest', () => {
    const t = rig();
    expect(t.request(VIRTIO_BLK_T.IN, 1, [512, 256])).toBe(VIRTIO_BLK_S.OK);
    expect([...t.buf.subarray(0x1000, 0x1004)]).toEqual([0, 1, 2, 3]);
    expect([...t.buf.subarray(0x2000, 0x2002)]).toEqual([0, 1]);
    expect(t.used(t.blk.vqs[0], 0)).toEqual({ id: 0, len: 768 + 1 });
    t.buf.fill(0xab, 0x1000, 0x1200);
    expect(t.request(VIRTIO_BLK_T.OUT, 7, [512])).toBe(VIRTIO_BLK_S.OK);
    expect(t.disk[7 * 512]).toBe(0xab);
    expect(t.used(t.blk.vqs[0], 1)).toEqual({ id: 0, len: 1 });
    expect(t.irqs).toEqual([3, 3]);
    expect(t.calls).toEqual(['read 512 512', 'read 1024 256', 'write 3584 512']);
    expect(t.killed).toEqual([]);
  });

  test('past the end: IOERR and no I/O; BARRIER flushes before and after; SCSI and others: UNSUPP', () => {
    const t = rig();
    expect(t.request(VIRTIO_BLK_T.IN, 8, [512])).toBe(VIRTIO_BLK_S.IOERR);
    expect(t.request(VIRTIO_BLK_T.OUT, 7, [1024])).toBe(VIRTIO_BLK_S.IOERR);
    expect(t.request(VIRTIO_BLK_T.IN, 2 ** 40, [512])).toBe(VIRTIO_BLK_S.IOERR);
    expect(t.calls).toEqual([]);
    expect(t.request(VIRTIO_BLK_T.OUT | VIRTIO_BLK_T.BARRIER, 0, [512])).toBe(VIRTIO_BLK_S.OK);
    expect(t.calls).toEqual(['flush', 'write 0 512', 'flush']);
    expect(t.request(VIRTIO_BLK_T.SCSI_CMD, 0, [512])).toBe(VIRTIO_BLK_S.UNSUPP);
    expect(t.request(VIRTIO_BLK_T.FLUSH, 0, [])).toBe(VIRTIO_BLK_S.UNSUPP);
    expect(t.request(8, 0, [512])).toBe(VIRTIO_BLK_S.UNSUPP);
    expect(t.blk.stats).toMatchObject({ ioErrors: 3, unsupported: 3, barriers: 1, writes: 1 });
    expect(t.killed).toEqual([]);
  });

  test('a failing file gives IOERR, the guest goes on', () => {
    const t = rig({ fail: true });
    expect(t.request(VIRTIO_BLK_T.IN, 0, [512])).toBe(VIRTIO_BLK_S.IOERR);
    expect(t.used(t.blk.vqs[0], 0)).toEqual({ id: 0, len: 1 });
    expect(t.killed).toEqual([]);
  });

  test.each([
    ['no writable descriptor', (t: Rig) => { t.desc(t.blk.vqs[0], 0, 0x100, 16, 0); return 0; }, /request 0 has 1 readable and 0 writable/],
    ['no header', (t: Rig) => { t.desc(t.blk.vqs[0], 0, 0x200, 1, VRING_DESC_F.WRITE); return 0; }, /request 0 has 0 readable and 1 writable/],
    ['a short header', (t: Rig) => {
      t.desc(t.blk.vqs[0], 0, 0x100, 12, VRING_DESC_F.NEXT, 1); t.desc(t.blk.vqs[0], 1, 0x200, 1, VRING_DESC_F.WRITE); return 0;
    }, /the header descriptor is 12 bytes, not 16/],
    ['an empty status', (t: Rig) => {
      t.desc(t.blk.vqs[0], 0, 0x100, 16, VRING_DESC_F.NEXT, 1); t.desc(t.blk.vqs[0], 1, 0x200, 0, VRING_DESC_F.WRITE); return 0;
    }, /the status descriptor has no room/],
    ['a buffer past memory', (t: Rig) => { t.desc(t.blk.vqs[0], 0, 0x1c000, 0x2000, 0); return 0; }, /beyond guest memory/],
    ['a head out of range', () => 300, /chain head 300 is out of range/],
  ])('%s kills the guest, never throws', (_, make, reason) => {
    const t = rig();
    const q = t.blk.vqs[0];
    t.offer(q, make(t));
    expect(() => t.devs.notify(q.cfg.gpa)).not.toThrow();
    expect(t.killed).toHaveLength(1);
    expect(t.killed[0]).toMatch(/^virtio block: request queue: /);
    expect(t.killed[0]).toMatch(reason);
    expect(t.calls).toEqual([]);
  });

  test('status 0 resets: accepted features cleared, ring zeroed', () => {
    const t = rig();
    const accepted = t.descGpa + t.blk.record.descOffset + 5 + 8 + 1;
    t.buf[accepted] = 0x05;
    expect(t.blk.accepted(0)).toBe(true);
    expect(t.blk.accepted(1)).toBe(false); // not offered
    t.request(VIRTIO_BLK_T.IN, 0, [512]);
    t.buf[t.blk.statusGpa] = 0;
    expect(t.devs.notify(t.blk.descGpa)).toBe(true);
    expect(t.buf[accepted]).toBe(0);
    expect(t.blk.vqs[0].lastAvail).toBe(0);
    expect(t.dv.getUint16(t.blk.vqs[0].used + 2, true)).toBe(0);
  });
});

describe('VirtioRng device', () => {
  test('fills the writable buffers of each chain, reports the length, interrupts once per kick', () => {
    const t = rig();
    const q = t.rng.vqs[0];
    t.desc(q, 0, 0x3000, 16, VRING_DESC_F.WRITE | VRING_DESC_F.NEXT, 1);
    t.desc(q, 1, 0x3010, 48, VRING_DESC_F.WRITE);
    t.desc(q, 2, 0x4000, 64, VRING_DESC_F.WRITE);
    t.offer(q, 0);
    t.offer(q, 2);
    expect(t.devs.notify(q.cfg.gpa)).toBe(true);
    expect(t.used(q, 0)).toEqual({ id: 0, len: 64 });
    expect(t.used(q, 1)).toEqual({ id: 2, len: 64 });
    expect(t.buf.subarray(0x3000, 0x3040).some((b) => b !== 0)).toBe(true);
    expect(Buffer.from(t.buf.subarray(0x3000, 0x3040)).equals(Buffer.from(t.buf.subarray(0x4000, 0x4040)))).toBe(false);
    expect(t.irqs).toEqual([4]);
  });

  test('a readable descriptor kills the guest', () => {
    const t = rig();
    const q = t.rng.vqs[0];
    t.desc(q, 0, 0x3000, 16, 0);
    t.offer(q, 0);
    expect(() => t.devs.notify(q.cfg.gpa)).not.toThrow();
    expect(t.killed).toEqual(['virtio rng: input queue: chain 0 has a readable descriptor (the rng only fills buffers)']);
  });
});


describe.concurrent('lguest-ts run --block --rng', () => {
  test('boots virtblk from the command line; the file keeps what it wrote', async () => {
    const disk = makeDisk();
    const r = await cli('run', 'virtblk', '--mem', '8', '--block', disk, '--rng');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('virtblk: done');
    expect(sector(readFileSync(disk), 20)).toEqual(pattern(20));
  });

  const sub = join(dir, 'a-directory');
  mkdirSync(sub, { recursive: true });
  const BAD: Array<[string, string[], RegExp]> = [
    ['missing block file', ['run', 'virtblk', '--block', join(dir, 'nope.img')], /^lguest-ts: no such block file: .*nope\.img$/],
    ['block file a directory', ['run', 'virtblk', '--block', sub], /^lguest-ts: --block .*a-directory: is a directory, not a file$/],
    ['--block in bare mode', ['run', '--bare', 'demo', '--block', join(dir, 'x.img')], /^lguest-ts: --block and --rng are for lguest mode \(not --bare\)$/],
  ];
  test.each(BAD)('bad input (%s): one clear line, exit 2', async (_what, args, message) => {
    const r = await cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
  });

  test('run --help names both options', async () => {
    const r = await cli('run', '--help');
    expect(r.stdout).toMatch(/--block\s+lguest mode: a virtio block device backed by FILE/);
    expect(r.stdout).toMatch(/--rng\s+lguest mode: a virtio entropy device/);
    expect(statSync(BIN).isFile()).toBe(true);
  });
});

/**
 * The gdb stub without gdb: the packet layer (checksums, escaping, framing, malformed input) and a
 * session driven packet by packet against a real CPU (demo.elf loaded on a BareMachine, the debug target
 * and the in-thread link that bare mode uses), including what a bad packet gets back. gdb itself drives
 * the stub in test/machine/gdb.test.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BareMachine, kernelCommandLine } from '../../launcher/bare.ts';
import { LocalDebugLink } from '../../launcher/debug-link.ts';
import {
  MAX_PACKET, PacketParser, checksum, framePacket, hexToBytes, le32Hex, parseHex, parseLe32, unescapeBinary, type PacketEvent,
} from '../../launcher/gdb-packets.ts';
import { GdbSession, TARGET_XML } from '../../launcher/gdb-server.ts';
import { CpuDebugTarget, TargetState } from '../../emulator/debug-target.ts';
import { CR0_PG } from '../../emulator/constants.ts';
import { debugExitStatus } from '../../devices/pc.ts';

const ROOT = resolve(__dirname, '../..');

describe('gdb packet layer', () => {
  it('frames a payload with its checksum', () => {
    expect(framePacket('OK').toString()).toBe('$OK#9a');
    expect(framePacket('').toString()).toBe('$#00');
    expect(checksum(Buffer.from('qSupported'))).toBe(0x37);
  });

  it('escapes $ # } and * in what it sends (so * is never read as run-length encoding)', () => {
    const f = framePacket(Uint8Array.from([0x24, 0x23, 0x7d, 0x2a, 0x41]));
    expect([...f.subarray(1, 10)]).toEqual([0x7d, 0x04, 0x7d, 0x03, 0x7d, 0x5d, 0x7d, 0x0a, 0x41]);
    // the checksum is over the escaped bytes
    expect(f.subarray(11).toString()).toBe(checksum(f.subarray(1, 10)).toString(16).padStart(2, '0'));
  });

  it('unescapes binary data and refuses a trailing escape', () => {
    expect([...unescapeBinary(Uint8Array.from([0x41, 0x7d, 0x03, 0x7d, 0x5d]))!]).toEqual([0x41, 0x23, 0x7d]);
    expect(unescapeBinary(Uint8Array.from([0x41, 0x7d]))).toBeUndefined();
  });

  it('splits a stream into packets, acks and Ctrl-C, whatever the chunking', () => {
    const stream = Buffer.concat([Buffer.from('+'), framePacket('g'), Buffer.from([0x03]), Buffer.from('-junk'), framePacket('m100,4')]);
    const want: PacketEvent[] = [
      { type: 'ack' }, { type: 'packet', data: Buffer.from('g') }, { type: 'interrupt' }, { type: 'nak' },
      { type: 'packet', data: Buffer.from('m100,4') },
    ];
    expect(new PacketParser().feed(stream)).toEqual(want);
    const p = new PacketParser();
    const byByte = [...stream].flatMap((b) => p.feed(Uint8Array.of(b)));
    expect(byByte).toEqual(want);
  });

  it('reports a wrong or non-hex checksum, a packet cut short, and an overlong packet', () => {
    const p = new PacketParser();
    expect(p.feed(Buffer.from('$g#00'))).toEqual([{ type: 'bad', reason: 'wrong checksum' }]);
    expect(p.feed(Buffer.from('$g#zz'))).toEqual([{ type: 'bad', reason: 'checksum is not two hex digits' }]);
    expect(p.feed(Buffer.from('$m10'))).toEqual([]);
    expect(p.feed(framePacket('g'))).toEqual([{ type: 'bad', reason: 'packet cut short by another' }, { type: 'packet', data: Buffer.from('g') }]);
    const long = framePacket('M' + '0'.repeat(MAX_PACKET + 100));
    expect(p.feed(long)[0].type).toBe('bad');
    // and it recovers
    expect(p.feed(framePacket('?'))).toEqual([{ type: 'packet', data: Buffer.from('?') }]);
  });

  it('keeps 0x03 inside a packet as data (an X packet may carry it)', () => {
    const f = framePacket(Uint8Array.from([0x58, 0x03]));
    expect(new PacketParser().feed(f)).toEqual([{ type: 'packet', data: Buffer.from([0x58, 0x03]) }]);
  });

  it('parses hex strictly', () => {
    expect(parseHex('100da8')).toBe(0x100da8);
    expect(parseHex('00000000ffffffff')).toBe(0xffffffff);
    expect(parseHex('1ffffffff')).toBeUndefined();
    expect(parseHex('')).toBeUndefined();
    expect(parseHex('12g')).toBeUndefined();
    expect(parseHex('-1')).toBeUndefined();
    expect(hexToBytes('0aFf')).toEqual(Uint8Array.from([10, 255]));
    expect(hexToBytes('abc')).toBeUndefined();
    expect(le32Hex(0x2badb002)).toBe('02b0ad2b');
    expect(parseLe32('02b0ad2b')).toBe(0x2badb002);
    expect(parseLe32('02b0ad2')).toBeUndefined();
  });
});

/** A session on demo.elf, stopped before its first instruction; `send` returns the replies it caused. */
function demoSession() {
  const image = readFileSync(resolve(ROOT, 'guest-images/build/demo.elf'));
  const m = new BareMachine(image, { memMiB: 32, cmdline: kernelCommandLine('demo.elf', ''), what: 'demo.elf' });
  const target = new CpuDebugTarget(m.cpu, 1);
  const link = new LocalDebugLink(target);
  const replies: string[] = [];
  let closed = false;
  const session = new GdbSession(link, {
    send: (p) => replies.push(Buffer.from(p).toString('latin1')),
    startNoAck: () => {},
    close: () => { closed = true; },
  });
  link.onEvent = (ev) => session.event(ev);
  /** What the run loop of launcher/bare.ts does, synchronously: run until the debugger stops the CPU
   *  or the guest ends. */
  const runToStop = () => {
    for (let i = 0; i < 10_000 && target.state !== TargetState.Stopped && !closed; i++) {
      const reason = target.run(1 << 16);
      const stop = target.stopAfter(reason);
      if (stop) link.emit(stop);
      else if (m.ending(reason)) link.emit({ kind: 'exited', status: debugExitStatus(m.devices.exitValue ?? 0) });
    }
  };
  const send = async (packet: string | Buffer): Promise<string[]> => {
    replies.length = 0;
    session.packet(typeof packet === 'string' ? Buffer.from(packet, 'latin1') : packet);
    await new Promise((r) => setTimeout(r, 0));
    runToStop();
    return [...replies];
  };
  return { m, target, link, session, send, isClosed: () => closed };
}

describe('gdb session', () => {
  it('answers the handshake gdb starts with', async () => {
    const { send } = demoSession();
    expect((await send('qSupported:multiprocess+;swbreak+;hwbreak+'))[0]).toMatch(/^PacketSize=4000;.*qXfer:features:read\+/);
    expect(await send('?')).toEqual(['T05thread:1;']);
    expect(await send('qfThreadInfo')).toEqual(['m1']);
    expect(await send('qsThreadInfo')).toEqual(['l']);
    expect(await send('qC')).toEqual(['QC1']);
    expect(await send('qAttached')).toEqual(['1']);
    expect(await send('Hg0')).toEqual(['OK']);
    expect(await send('Hc-1')).toEqual(['OK']);
    expect(await send('vCont?')).toEqual(['vCont;c;C;s;S']);
    expect(await send('vMustReplyEmpty')).toEqual(['']);
    expect(await send('qXfer:features:read:target.xml:0,ffb')).toEqual(['l' + TARGET_XML]);
    expect(await send('qXfer:features:read:target.xml:0,10')).toEqual(['m' + TARGET_XML.slice(0, 16)]);
    expect(await send(`qThreadExtraInfo,1`)).toEqual([Buffer.from('vCPU 0').toString('hex')]);
  });

  it('reads and writes registers in gdb i386 order, and refuses to load a segment register', async () => {
    const { send, m } = demoSession();
    const [g] = await send('g');
    expect(g).toHaveLength(16 * 8 + (8 * 10 + 8 * 4) * 2); // the general registers, then the x87's
    const reg = (i: number) => parseLe32(g.slice(i * 8, i * 8 + 8));
    expect(reg(0)).toBe(0x2badb002); // eax: the Multiboot magic
    expect(reg(3)).toBe(0x9000); // ebx: the info
    expect(reg(4)).toBe(0x7000); // esp
    expect(reg(8)).toBe(m.cpu.eip >>> 0); // eip
    expect(reg(10)).toBe(0x08); // cs
    expect(reg(11)).toBe(0x10); // ss
    expect(await send('p8')).toEqual([le32Hex(m.cpu.eip)]);
    expect(await send('p99')).toEqual(['E22']);
    expect(await send(`P1=${le32Hex(0x12345678)}`)).toEqual(['OK']);
    expect(m.cpu.r32[1]).toBe(0x12345678);
    expect(await send(`Pa=${le32Hex(0x10)}`)).toEqual(['E22']); // cs := 0x10
    expect(await send(`Pa=${le32Hex(0x08)}`)).toEqual(['OK']); // cs := what it holds
    expect(await send(`P9=${le32Hex(0x202)}`)).toEqual(['OK']);
    expect(m.cpu.getEflags() & 0x200).toBe(0x200);
    // orig_eax (41): gdb writes -1 there whenever it moves the PC; accepted, meaning nothing
    expect(await send(`P29=${le32Hex(0xffffffff)}`)).toEqual(['OK']);
    const g2 = g.slice(0, 8) + le32Hex(0xcafe) + g.slice(16);
    expect(await send('G' + g2)).toEqual(['OK']);
    expect(m.cpu.r32[1]).toBe(0xcafe);
    for (const bad of ['G123', 'Gzzzzzzzz', 'P1', 'P1=12', 'Pzz=00000000', 'p', 'pzz']) expect(await send(bad), bad).toEqual(['E22']);
  });

  it('reads and writes the x87 registers: st0-st7 as 80-bit values in stack order, and fctrl ... fop', async () => {
    const { send, m } = demoSession();
    const f = m.cpu.fpu;
    f.push(0x3fff, 0xc000000000000000n); // 1.5
    f.push(0xc000, 0x8000000000000000n); // -2.0: now ST(0), 1.5 is ST(1)
    f.fcw = 0x0b7f;
    f.fip = 0x1234; f.fcs = 0x08; f.fdp = 0x9000; f.fds = 0x10; f.fop = 0x5c1;
    expect(await send('p10')).toEqual(['0000000000000080' + '00c0']); // st0 = -2.0
    expect(await send('p11')).toEqual(['00000000000000c0' + 'ff3f']); // st1 = 1.5
    expect(await send('p18')).toEqual([le32Hex(0x0b7f)]); // fctrl
    expect(await send('p19')).toEqual([le32Hex(6 << 11)]); // fstat: TOP = 6
    expect(await send('p1a')).toEqual([le32Hex(0x0fff)]); // ftag: physical 6 and 7 valid, the rest empty
    expect(await send('p1b')).toEqual([le32Hex(0x08)]); // fiseg
    expect(await send('p1c')).toEqual([le32Hex(0x1234)]); // fioff
    expect(await send('p1d')).toEqual([le32Hex(0x10)]); // foseg
    expect(await send('p1e')).toEqual([le32Hex(0x9000)]); // fooff
    expect(await send('p1f')).toEqual([le32Hex(0x5c1)]); // fop
    const [g] = await send('g');
    expect(g.slice(16 * 8, 16 * 8 + 40)).toBe('0000000000000080' + '00c0' + '00000000000000c0' + 'ff3f');
    // writes: st1 := 3.0 (80 bits, tag left alone), fctrl, and fstat's TOP moves the stack
    expect(await send('P11=00000000000000c0' + '0040')).toEqual(['OK']);
    expect(f.stSe(1)).toBe(0x4000);
    expect(f.stSig(1)).toBe(0xc000000000000000n);
    expect(await send(`P18=${le32Hex(0x037f)}`)).toEqual(['OK']);
    expect(f.fcw).toBe(0x037f);
    expect(await send(`P19=${le32Hex(7 << 11)}`)).toEqual(['OK']);
    expect(f.top).toBe(7);
    expect(await send('p10')).toEqual(['00000000000000c0' + '0040']); // the old st1 is st0 now
    // G with the x87 part: st0 written, the rest given as 'x' (left alone)
    const [g2] = await send('g');
    const x87 = '0000000000000080' + 'ff3f' + 'xx'.repeat(7 * 10 + 8 * 4);
    expect(await send('G' + g2.slice(0, 16 * 8) + x87)).toEqual(['OK']);
    expect(f.stSe(0)).toBe(0x3fff);
    expect(f.stSig(0)).toBe(0x8000000000000000n);
    expect(f.fcw).toBe(0x037f);
    for (const bad of ['P10=00', 'P18=1234', 'p20', 'P20=00000000']) expect(await send(bad), bad).toEqual(['E22']);
  });

  it('reads and writes memory at linear addresses through the paging of the moment', async () => {
    const { send, m } = demoSession();
    expect(await send('m100000,4')).toEqual(['02b0ad1b']); // the Multiboot header
    expect(await send('M200000,3:0a0b0c')).toEqual(['OK']);
    expect(await send('m200000,3')).toEqual(['0a0b0c']);
    // binary write: the bytes $ # } * arrive escaped
    const x = Buffer.concat([Buffer.from('X200010,4:'), Buffer.from([0x7d, 0x04, 0x7d, 0x03, 0x7d, 0x5d, 0x7d, 0x0a])]);
    expect(await send(x)).toEqual(['OK']);
    expect(await send('m200010,4')).toEqual(['24237d2a']);
    expect(await send('X200010,0:')).toEqual(['OK']);
    // beyond RAM: E14, and a read that runs off the end returns what there is
    expect(await send('mf0000000,4')).toEqual(['E14']);
    expect(await send('m1fffffe,4')).toEqual([Buffer.from(m.mem.u8.subarray(0x1fffffe, 0x2000000)).toString('hex')]);
    expect(await send('M1fffffe,4:00000000')).toEqual(['E14']);
    // with paging on: linear 0x40000000 -> physical 0x100000 through a page table; the next page unmapped
    const PD = 0x300000, PT = 0x301000;
    m.mem.write32(PD + (0x40000000 >>> 22) * 4, PT | 3);
    m.mem.write32(PT, 0x100000 | 3);
    m.cpu.cr3 = PD;
    m.cpu.cr0 |= CR0_PG;
    expect(await send('m40000000,4')).toEqual(['02b0ad1b']);
    expect(await send('m40001000,4')).toEqual(['E14']);
    expect(await send('m40000ffe,4')).toHaveLength(1); // two bytes, then the unmapped page
    expect((await send('m40000ffe,4'))[0]).toHaveLength(4);
    expect(await send('M40000ffe,4:01020304')).toEqual(['E14']);
    expect(m.mem.read8(0x100ffe)).not.toBe(1); // all or nothing
    // no accessed bit was set by the debugger's walk
    expect(m.mem.read32(PT) & 0x20).toBe(0);
    for (const bad of ['m', 'm100', 'mzz,4', 'm100,zz', 'M100,2:01', 'M100,1:zz', 'M100,1', 'X100,2:a']) expect(await send(bad), bad).toEqual(['E22']);
  });

  it('stops at a breakpoint before the instruction, steps, and goes on past it', async () => {
    const { send, m } = demoSession();
    const entry = m.cpu.eip >>> 0;
    expect(await send(`Z0,${(entry + 5).toString(16)},1`)).toEqual(['OK']); // mov esi, eax; mov ebp, ebx; cld; mov edi, ...
    expect(await send('c')).toEqual(['T05thread:1;swbreak:;']);
    expect(m.cpu.eip >>> 0).toBe(entry + 5);
    expect(m.cpu.retired).toBe(3);
    expect(await send('s')).toEqual(['T05thread:1;']); // the breakpoint it stands on is not taken again
    expect(m.cpu.eip >>> 0).toBe(entry + 10);
    expect(await send(`z0,${(entry + 5).toString(16)},1`)).toEqual(['OK']);
    expect(await send(`z0,${(entry + 5).toString(16)},1`)).toEqual(['E22']); // not there any more
    expect(await send(`Z1,${(entry + 0x13).toString(16)},1`)).toEqual(['OK']); // a "hardware" one after rep stos
    expect(await send('vCont;c')).toEqual(['T05thread:1;hwbreak:;']);
    expect(m.cpu.eip >>> 0).toBe(entry + 0x13);
    // a step of rep stos does part of it (the CPU's step() runs it a page at a time): EIP stays, ECX
    // counts down
    const ecx = m.cpu.r32[1];
    expect(await send(`vCont;s:1;c`)).toEqual(['T05thread:1;']);
    expect(m.cpu.eip >>> 0).toBe(entry + 0x13);
    expect(m.cpu.r32[1]).toBeLessThan(ecx);
    expect(m.cpu.r32[1]).toBeGreaterThan(0);
    // the rest of rep stos does not stop at its breakpoint again; the next instruction's does
    expect(await send(`Z0,${(entry + 0x15).toString(16)},1`)).toEqual(['OK']);
    expect(await send('c')).toEqual(['T05thread:1;swbreak:;']);
    expect(m.cpu.eip >>> 0).toBe(entry + 0x15);
    expect(m.cpu.r32[1]).toBe(0);
    // a watchpoint stops after the instruction that wrote: the push of 0 for popf, at the new ESP
    expect(await send(`Z2,${(0x105480 - 4).toString(16)},4`)).toEqual(['OK']);
    expect(await send('c')).toEqual([`T05thread:1;watch:${(0x105480 - 4).toString(16)};`]);
    expect(m.cpu.eip >>> 0).toBe(entry + 0x1c);
    expect(await send(`z2,${(0x105480 - 4).toString(16)},4`)).toEqual(['OK']);
    expect(await send('c')).toEqual(['W01']); // the rest of demo: isa-debug-exit 0
  });

  it('answers malformed and unknown packets without throwing', async () => {
    const { send } = demoSession();
    const cases: [string, string][] = [
      ['Z9,100000,1', ''], ['Z0,zz,1', 'E22'], ['Z0,100000', 'E22'], ['Z2,100000,0', 'E22'], ['z0,100000,1', 'E22'],
      ['Hg99', 'E22'], ['Hx1', 'E22'], ['T2', 'E22'], ['T1', 'OK'], ['qXfer:features:read:foo.xml:0,100', 'E00'],
      ['qXfer:features:read:target.xml:zz', 'E22'], ['Qfoo', ''], ['vCont;x', 'E22'], ['vCont;s:99', 'E22'],
      ['cxyz', 'E22'], ['qRcmd,6869', ''], ['!', ''], ['', ''], ['\x00\xff', ''],
    ];
    for (const [p, want] of cases) expect(await send(p), p).toEqual([want]);
    // still alive and stopped where it was
    expect(await send('?')).toEqual(['T05thread:1;']);
  });

  it('detach lets the guest run on without breakpoints; kill ends the session', async () => {
    const a = demoSession();
    expect(await a.send('Z0,100da8,1')).toEqual(['OK']);
    expect(await a.send('D')).toEqual(['OK']);
    expect(a.isClosed()).toBe(true);
    expect(a.target.state).toBe(TargetState.Detached);
    expect(a.m.cpu.hostDebug).toBeNull();
    expect(a.m.cpu.debugActive).toBe(false);
    const b = demoSession();
    expect(await b.send('k')).toEqual([]);
    expect(b.link.killed).toBe(true);
    expect(b.isClosed()).toBe(true);
  });
});

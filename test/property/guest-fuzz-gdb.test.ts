/**
 * The gdb stub (launcher/gdb-server.ts, launcher/gdb-packets.ts) against random and malformed input, in
 * process: nothing a client sends may throw out of it, log an internal error, or leave a packet
 * unanswered. Three layers:
 *
 * - the packet layer: random byte streams in random chunks; the parser never throws and never hands
 *   over a packet longer than MAX_PACKET;
 * - a session on a real CPU (demo.elf on a BareMachine, the in-thread link bare mode uses): packets from
 *   a grammar of what gdb sends, with random, missing, overlong and non-hex arguments, plus raw garbage.
 *   After each one (and after the CPU ran to the stop a resume leads to, with a Ctrl-C if it runs on),
 *   the session has sent exactly one reply, or has ended (k, D, the guest's end) and closed; a Ctrl-C
 *   while stopped gets nothing. When a session ends, the next starts on a fresh machine;
 * - the TCP server: a connection that sends random bytes and framed packets (bad checksums, overlong,
 *   binary) is acknowledged, answered, and closes cleanly when the client detaches.
 *
 * GDB_FUZZ_PACKETS (default 5,000) sets the session's packets; GDB_FUZZ_SEED (default 1) the seed.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BareMachine, kernelCommandLine } from '../../launcher/bare.ts';
import { LocalDebugLink } from '../../launcher/debug-link.ts';
import { MAX_PACKET, PacketParser, framePacket } from '../../launcher/gdb-packets.ts';
import { GdbServer, GdbSession } from '../../launcher/gdb-server.ts';
import { CpuDebugTarget, TargetState } from '../../emulator/debug-target.ts';
import { debugExitStatus } from '../../devices/pc.ts';
import { mulberry } from './shadow-harness.ts';

const ROOT = resolve(__dirname, '../..');
const PACKETS = Number(process.env.GDB_FUZZ_PACKETS ?? 5_000);
const SEED = Number(process.env.GDB_FUZZ_SEED ?? 1);
const image = readFileSync(resolve(ROOT, 'guest-images/build/demo.elf'));

type Rnd = () => number;
const below = (r: Rnd, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rnd, a: readonly T[]): T => a[below(r, a.length)];

function hexArg(r: Rnd): string {
  switch (below(r, 8)) {
    case 0: return '';
    case 1: return 'zz';
    case 2: return 'f'.repeat(1 + below(r, 20));
    case 3: return '-1';
    case 4: return below(r, 0x10).toString(16);
    case 5: return (0x100000 + below(r, 0x10000)).toString(16);
    default: return Math.floor(r() * 0x1_0000_0000).toString(16);
  }
}
function hexBytes(r: Rnd, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += below(r, 256).toString(16).padStart(2, '0');
  return below(r, 10) === 0 ? s.slice(1) : s;
}
function lenArg(r: Rnd): string {
  return pick(r, ['0', '1', '4', '10', '100', 'ffff', '10000', '7fffffff', 'ffffffff', '', 'x']);
}
function thread(r: Rnd): string { return pick(r, ['0', '1', '-1', '2', 'ff', 'p1.1', '', 'zz']); }

/** One packet payload: mostly what gdb sends, with arguments that are right, wrong or missing. */
function packet(r: Rnd): Buffer {
  const k = below(r, 40);
  if (k === 0) return Buffer.from(Array.from({ length: below(r, 64) }, () => below(r, 256)));
  if (k === 1) return Buffer.from('q' + 'A'.repeat(below(r, MAX_PACKET)));
  const s = pick(r, [
    () => '?', () => 'g', () => `G${hexBytes(r, below(r, 3) ? 64 : below(r, 80))}`, () => `p${hexArg(r)}`,
    () => `P${hexArg(r)}=${hexBytes(r, below(r, 6))}`, () => `m${hexArg(r)},${lenArg(r)}`,
    () => `M${hexArg(r)},${lenArg(r)}:${hexBytes(r, below(r, 16))}`, () => `M${hexArg(r)}`,
    () => `X${hexArg(r)},${lenArg(r)}:${String.fromCharCode(...Array.from({ length: below(r, 16) }, () => below(r, 256)))}`,
    () => `Z${below(r, 6)},${hexArg(r)},${pick(r, ['1', '2', '4', '8', '0', '3', 'zz', ''])}`,
    () => `z${below(r, 6)},${hexArg(r)},${pick(r, ['1', '4', ''])}`,
    () => 'c', () => `c${hexArg(r)}`, () => 's', () => `s${hexArg(r)}`, () => `C${hexBytes(r, 1)}`, () => `S${hexBytes(r, 1)};${hexArg(r)}`,
    () => pick(r, ['vCont;c', 'vCont;s', 'vCont;s:1;c', 'vCont;c:1', 'vCont;x', 'vCont;s:99', 'vCont;', 'vCont;C05', 'vCont;S05:1', 'vCont?']),
    () => `H${pick(r, ['g', 'c', 'x'])}${thread(r)}`, () => `T${thread(r)}`,
    () => `qSupported:${pick(r, ['multiprocess+', 'swbreak+;hwbreak+', '', 'xmlRegisters=i386'])}`,
    () => `qXfer:features:read:${pick(r, ['target.xml', 'other.xml', ''])}:${hexArg(r)},${hexArg(r)}`,
    () => pick(r, ['qfThreadInfo', 'qsThreadInfo', 'qC', 'qAttached', 'vMustReplyEmpty', 'QStartNoAckMode', 'qTStatus', 'qOffsets', 'qSymbol::', 'vFile:open:', 'Qfoo', 'qRcmd,7265736574']),
    () => `qThreadExtraInfo,${thread(r)}`, () => (below(r, 20) === 0 ? 'vKill;1' : 'vKill'), () => `!`, () => `A`, () => `R00`, () => `i`, () => `b9600`,
  ])();
  return Buffer.from(s, 'latin1');
}

function isResume(p: Buffer): boolean {
  const s = p.toString('latin1');
  return /^[cCsS]/.test(s) || (s.startsWith('vCont;') && s !== 'vCont?');
}

/** A session on a fresh demo machine, stopped at its first instruction. */
function newSession(logs: string[]) {
  const m = new BareMachine(image, { memMiB: 8, cmdline: kernelCommandLine('demo.elf', ''), what: 'demo.elf' });
  const target = new CpuDebugTarget(m.cpu, 1);
  const link = new LocalDebugLink(target);
  const replies: string[] = [];
  let closed = false;
  const session = new GdbSession(link, {
    send: (p) => replies.push(Buffer.from(p).toString('latin1')),
    startNoAck: () => {},
    close: () => { closed = true; },
  }, (msg) => logs.push(msg));
  link.onEvent = (ev) => session.event(ev);
  let exited = false;
  /** The bare run loop, synchronously: run until the debugger stops the CPU or the guest ends; after
   *  a few slices, gdb's Ctrl-C. */
  const runToStop = () => {
    for (let i = 0; i < 16 && target.state !== TargetState.Stopped && !closed && !exited && !link.killed; i++) {
      if (i === 2) session.interrupt();
      const reason = target.run(4096);
      const stop = target.stopAfter(reason);
      if (stop) link.emit(stop);
      else if (m.ending(reason)) { exited = true; link.emit({ kind: 'exited', status: debugExitStatus(m.devices.exitValue ?? 0) }); }
    }
  };
  return {
    replies, session, link, runToStop,
    ended: () => closed || exited || link.killed || session.ended,
    stopped: () => target.state === TargetState.Stopped,
  };
}

describe('the gdb stub against random and malformed input', () => {
  it('the packet layer never throws and never hands over an overlong packet', () => {
    const r = mulberry(SEED);
    const p = new PacketParser();
    let events = 0;
    for (let i = 0; i < 20_000; i++) {
      let chunk: Buffer;
      switch (below(r, 4)) {
        case 0: chunk = framePacket(packet(r)); break;
        case 1: chunk = Buffer.from(Array.from({ length: below(r, 40) }, () => pick(r, [0x24, 0x23, 0x7d, 0x2a, 0x03, 0x2b, 0x2d, below(r, 256)]))); break;
        case 2: { const f = framePacket(packet(r)); chunk = f.subarray(0, below(r, f.length + 1)); break; }
        default: chunk = Buffer.from('$' + 'x'.repeat(below(r, 2 * MAX_PACKET)) + '#00'); break;
      }
      for (const ev of p.feed(chunk)) {
        events++;
        if (ev.type === 'packet') expect(ev.data.length).toBeLessThanOrEqual(MAX_PACKET);
      }
    }
    expect(events).toBeGreaterThan(10_000);
  });

  it(`${PACKETS} random packets to a session: one reply each, or a clean end; never an internal error`, async () => {
    const r = mulberry(SEED + 1);
    const logs: string[] = [];
    const bad: string[] = [];
    let s = newSession(logs);
    let sessions = 1, resumes = 0, stops = 0;
    for (let i = 0; i < PACKETS && bad.length < 10; i++) {
      if (s.ended()) { s = newSession(logs); sessions++; }
      s.replies.length = 0;
      if (below(r, 50) === 0 && s.stopped()) {
        s.session.interrupt();
        await new Promise((res) => setImmediate(res));
        if (s.replies.length !== 0) bad.push(`a Ctrl-C while stopped got ${JSON.stringify(s.replies)}`);
        continue;
      }
      let p = packet(r);
      // k and D end the session: now and then, not every few packets
      if ((p[0] === 0x6b || p[0] === 0x44) && p.length === 1 && below(r, 20) !== 0) p = Buffer.from('?');
      s.session.packet(p);
      await new Promise((res) => setImmediate(res));
      if (isResume(p)) { resumes++; s.runToStop(); await new Promise((res) => setImmediate(res)); }
      const what = JSON.stringify(p.toString('latin1').slice(0, 60));
      if (s.replies.length === 1 && /^[TWX]/.test(s.replies[0])) stops++;
      if (s.ended()) {
        if (s.replies.length > 1) bad.push(`${what}: ${s.replies.length} replies before the end`);
      } else if (s.replies.length !== 1) {
        bad.push(`${what}: ${s.replies.length} replies (${JSON.stringify(s.replies.map((x) => x.slice(0, 40)))})`);
      }
    }
    const internal = logs.filter((l) => /internal error/.test(l));
    console.log(`gdb fuzz: ${PACKETS} packets over ${sessions} sessions, ${resumes} resumes, ${stops} stop replies`);
    expect(internal).toEqual([]);
    expect(bad).toEqual([]);
  }, 300_000);

  it('the TCP server acknowledges, answers and closes cleanly under garbage', async () => {
    const r = mulberry(SEED + 2);
    const m = new BareMachine(image, { memMiB: 8, cmdline: kernelCommandLine('demo.elf', ''), what: 'demo.elf' });
    const link = new LocalDebugLink(new CpuDebugTarget(m.cpu, 1));
    const logs: string[] = [];
    const server = await GdbServer.listen(link, 0, (msg) => logs.push(msg));
    const sock = connect(server.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (b) => got.push(b));
    const errors: string[] = [];
    sock.on('error', (e) => errors.push(e.message));
    const closed = new Promise<void>((res) => sock.on('close', () => res()));
    await new Promise<void>((res) => sock.once('connect', () => res()));
    let sent = 0;
    for (let i = 0; i < 2000; i++) {
      const pk = packet(r);
      const t = pk.toString('latin1');
      if (isResume(pk) || t === 'k' || t === 'D' || t.startsWith('vKill') || t === 'QStartNoAckMode') continue;
      const f = framePacket(pk);
      switch (below(r, 6)) {
        case 0: f[f.length - 1] ^= 1; break; // a wrong checksum
        case 1: sock.write(Buffer.from(Array.from({ length: below(r, 30) }, () => below(r, 256)).filter((b) => b !== 0x03))); break;
        default: break;
      }
      sock.write(f);
      sent++;
      if (i % 200 === 0) await new Promise((res) => setTimeout(res, 5));
    }
    sock.write(framePacket('D'));
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('the server did not close after D')), 10_000))]);
    const text = Buffer.concat(got).toString('latin1');
    expect(text).toContain('$OK#9a'); // D's reply
    expect(errors).toEqual([]);
    expect(sent).toBeGreaterThan(1000);
    expect(logs.filter((l) => /internal error|server error/.test(l))).toEqual([]);
    await server.finish({ kind: 'exited', status: 0 });
  }, 60_000);
});

/**
 * What the gdb tests share (test/machine/gdb.test.ts: bare mode; test/guests/gdb-lguest.test.ts: lguest
 * mode): an ELF's symbols, `lguest-ts run ... --gdb 0` started and its port read from stderr, the real gdb
 * in batch mode, and a raw protocol client for what batch mode cannot do (Ctrl-C, a dropped connection).
 * Every process started here is killed by `killAll` (call it in afterEach), whatever failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { framePacket, PacketParser } from '../../launcher/gdb-packets.ts';

export const ROOT = resolve(__dirname, '../..');
export const BIN = resolve(ROOT, 'launcher/bin.mjs');
export const haveGdb = spawnSync('gdb', ['--version']).status === 0;
export const NO_GDB = ' (skipped: no gdb on PATH; apt-get install gdb)';

export const hex = (n: number) => `0x${n.toString(16)}`;

interface Elf {
  file: Buffer;
  /** PT_LOAD segments: file offset, virtual address, size in the file. */
  segments: { offset: number; vaddr: number; filesz: number }[];
}

function readElf(path: string): Elf {
  const file = readFileSync(path);
  const phoff = file.readUInt32LE(0x1c), phentsize = file.readUInt16LE(0x2a), phnum = file.readUInt16LE(0x2c);
  const segments = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (file.readUInt32LE(o) !== 1) continue; // PT_LOAD
    segments.push({ offset: file.readUInt32LE(o + 4), vaddr: file.readUInt32LE(o + 8), filesz: file.readUInt32LE(o + 16) });
  }
  return { file, segments };
}

/** The symbols of an ELF32 file's .symtab: name -> value. */
export function elfSymbols(path: string): Map<string, number> {
  const f = readFileSync(path);
  const shoff = f.readUInt32LE(0x20), shentsize = f.readUInt16LE(0x2e), shnum = f.readUInt16LE(0x30);
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return { type: f.readUInt32LE(o + 4), offset: f.readUInt32LE(o + 16), size: f.readUInt32LE(o + 20), link: f.readUInt32LE(o + 24) };
  };
  const out = new Map<string, number>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== 2) continue; // SHT_SYMTAB
    const str = section(s.link);
    for (let o = s.offset; o < s.offset + s.size; o += 16) {
      const nameOff = str.offset + f.readUInt32LE(o);
      const name = f.subarray(nameOff, f.indexOf(0, nameOff)).toString('latin1');
      if (name) out.set(name, f.readUInt32LE(o + 4));
    }
  }
  return out;
}

/** The virtual address of the first occurrence of `bytes` in the ELF's loaded segments, at or after
 *  virtual address `from` (undefined when absent). */
export function elfFind(path: string, bytes: Uint8Array | string, from = 0): number | undefined {
  const { file, segments } = readElf(path);
  const needle = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  for (const s of segments) {
    const start = Math.max(0, from - s.vaddr);
    if (start >= s.filesz) continue;
    const at = file.subarray(s.offset, s.offset + s.filesz).indexOf(needle, start);
    if (at >= 0) return s.vaddr + at;
  }
  return undefined;
}

/** The 32-bit word at virtual address `vaddr` of the ELF's loaded segments. */
export function elfRead32(path: string, vaddr: number): number {
  const { file, segments } = readElf(path);
  const s = segments.find((g) => vaddr >= g.vaddr && vaddr + 4 <= g.vaddr + g.filesz);
  if (s === undefined) throw new Error(`${path}: nothing loaded at ${hex(vaddr)}`);
  return file.readUInt32LE(s.offset + vaddr - s.vaddr);
}

const running: ChildProcess[] = [];

/** Have killAll kill `p` too. */
export function track<T extends ChildProcess>(p: T): T {
  running.push(p);
  return p;
}

/** Kill every process the helpers started that is still alive. */
export function killAll(): void {
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

export interface Launched {
  proc: ChildProcess;
  port: number;
  /** Resolves when the process has ended. */
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

/** Start `lguest-ts run ARGS --gdb 0` and wait for the port it prints. */
export function launch(...args: string[]): Promise<Launched> {
  const proc = spawn(process.execPath, [BIN, 'run', ...args, '--gdb', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(proc);
  let stdout = '', stderr = '';
  proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString('latin1'); });
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
    proc.on('close', (status) => res({ status, stdout, stderr }));
  });
  return new Promise((res, rej) => {
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('latin1');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) res({ proc, port: Number(m[1]), done });
    });
    done.then((r) => rej(new Error(`lguest-ts ended before listening: ${r.status}: ${r.stderr}`)));
  });
}

/** gdb in batch mode against the port: each command an -ex. Resolves with everything it printed. */
export function gdb(port: number, ...commands: string[]): Promise<string> {
  const args = ['-batch', '-nx', '-ex', `target remote 127.0.0.1:${port}`, ...commands.flatMap((c) => ['-ex', c])];
  const proc = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((res) => proc.on('close', () => { clearTimeout(timer); res(out); }));
}

/** A raw protocol client: send a packet, get the next reply (acks handled). */
export class RawClient {
  private parser = new PacketParser();
  private replies: string[] = [];
  private waiting: ((r: string) => void) | null = null;
  closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      for (const ev of this.parser.feed(d)) {
        if (ev.type !== 'packet') continue;
        socket.write('+');
        const text = ev.data.toString('latin1');
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(text);
        } else this.replies.push(text);
      }
    });
    this.closed = new Promise((res) => socket.on('close', () => res()));
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((res, rej) => {
      const s = connect(port, '127.0.0.1', () => res(new RawClient(s)));
      s.setNoDelay(true);
      s.once('error', rej);
    });
  }

  next(): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((res) => { this.waiting = res; });
  }

  ask(payload: string): Promise<string> {
    this.socket.write(framePacket(payload));
    return this.next();
  }

  send(payload: string): void {
    this.socket.write(framePacket(payload));
  }
}

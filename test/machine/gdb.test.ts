/**
 * `lguest-ts run --bare KERNEL --gdb 0` as a user meets it: the real gdb (batch mode) connects, sets
 * breakpoints and watchpoints, reads registers and memory, steps, kills; and a raw protocol client checks
 * what gdb's batch mode cannot do (Ctrl-C, a dropped connection) and the option's bad values. Addresses
 * come from the kernel's own symbol table, read here. gdb missing: those tests skip, saying so.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { framePacket, PacketParser } from '../../launcher/gdb-packets.ts';
import { ROOT, X86, aoutKernel } from './helpers.ts';

const BIN = resolve(ROOT, 'launcher/bin.mjs');
const DEMO = resolve(ROOT, 'guest-images/build/demo.elf');
const haveGdb = spawnSync('gdb', ['--version']).status === 0;
const NO_GDB = ' (skipped: no gdb on PATH; apt-get install gdb)';

/** The symbols of an ELF32 file's .symtab: name -> value. */
function elfSymbols(path: string): Map<string, number> {
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

const hex = (n: number) => `0x${n.toString(16)}`;

interface Launched {
  proc: ChildProcess;
  port: number;
  /** Resolves when the process has ended. */
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

const running: ChildProcess[] = [];
afterEach(() => {
  // never leave a process behind, whatever failed
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** Start `lguest-ts run --bare ARGS --gdb 0` and wait for the port it prints. */
function launch(...args: string[]): Promise<Launched> {
  const proc = spawn(process.execPath, [BIN, 'run', '--bare', ...args, '--gdb', '0', '--timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
function gdb(port: number, ...commands: string[]): Promise<string> {
  const args = ['-batch', '-nx', '-ex', `target remote 127.0.0.1:${port}`, ...commands.flatMap((c) => ['-ex', c])];
  const proc = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((res) => proc.on('close', () => { clearTimeout(timer); res(out); }));
}

describe.skipIf(!haveGdb)(`gdb debugs a bare kernel${haveGdb ? '' : NO_GDB}`, () => {
  const sym = elfSymbols(DEMO);
  const kmain = sym.get('kmain')!;

  it('stops at a breakpoint, shows registers and memory, steps one instruction, and kills', async () => {
    const l = await launch(DEMO);
    const out = await gdb(l.port,
      `break *${hex(kmain)}`, 'continue', 'info registers', 'x/4xw $esp', 'x/2i $pc', 'stepi', 'p/x $pc',
      'x/4xw 0xf0000000', 'info threads', 'kill');
    const r = await l.done;
    expect(out).toContain(`Breakpoint 1, 0x${kmain.toString(16).padStart(8, '0')} in ?? ()`);
    // kmain(magic, info), called by _start: the arguments on the stack, the boot registers
    expect(out).toMatch(new RegExp(`^eip\\s+${hex(kmain)}\\s`, 'm'));
    expect(out).toMatch(/^esi\s+0x2badb002\s/m);
    expect(out).toMatch(/^ebp\s+0x9000\s/m);
    expect(out).toMatch(/^cs\s+0x8\s/m);
    expect(out).toMatch(/^ss\s+0x10\s/m);
    const esp = /^esp\s+(0x[0-9a-f]+)\s/m.exec(out)![1];
    expect(out).toMatch(new RegExp(`${esp}:\\s+0x[0-9a-f]{8}\\s+0x2badb002\\s+0x00009000`));
    // one stepi: EIP advances by the length of the instruction gdb disassembled there
    const next = new RegExp(`=> ${hex(kmain)}:.*\\n\\s+(0x[0-9a-f]+):`).exec(out)![1];
    expect(Number(next)).toBeGreaterThan(kmain);
    expect(out).toContain(`$1 = ${next}`);
    expect(out).toContain('Cannot access memory at address 0xf0000000');
    expect(out).toMatch(/\* 1\s+Thread 1 \(vCPU 0\)/);
    expect(out).toContain('[Inferior 1 (Remote target) killed]');
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('lguest-ts: gdb killed the guest');
  });

  it('stops at a watchpoint with old and new value, and sees the guest exit', async () => {
    const composite = [...sym.entries()].find(([n]) => n.startsWith('composite'))![1]; // the sieve's array
    const l = await launch(DEMO);
    // composite[4] becomes 1 when the sieve crosses out 4 (the loader's bss clear writes 0 over 0 first:
    // gdb sees no change there and goes on)
    const out = await gdb(l.port, `watch *(char *)${hex(composite + 4)}`, 'continue', 'delete', 'continue');
    const r = await l.done;
    expect(out).toContain(`Hardware watchpoint 1: *(char *)${hex(composite + 4)}`);
    expect(out).toMatch(/Old value = 0 '\\000'\s+New value = 1 '\\001'/);
    expect(out).toContain('[Inferior 1 (Remote target) exited with code 01]');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('goodbye');
  });
});

/** A raw protocol client: send a packet, get the next reply (acks handled). */
class RawClient {
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
}

describe('the gdb stub over a socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lguest-ts-gdb-'));
  const spin = join(dir, 'spin.elf');
  writeFileSync(spin, aoutKernel(X86.jmpSelf)); // jmp $ at 0x100020, forever

  it('stops a running guest on Ctrl-C with SIGINT, and is killed', async () => {
    const l = await launch(spin);
    const c = await RawClient.open(l.port);
    expect(await c.ask('?')).toBe('T05thread:1;');
    c.socket.write(framePacket('c'));
    await new Promise((r) => setTimeout(r, 300));
    c.socket.write(Buffer.from([0x03]));
    expect(await c.next()).toBe('T02thread:1;');
    const g = await c.ask('g');
    expect(g.slice(8 * 8, 9 * 8)).toBe('20001000'); // eip = 0x100020
    c.socket.write(framePacket('k'));
    const r = await l.done;
    expect(r.status).toBe(6);
  });

  it('a bad checksum gets a -, and a dropped connection lets the guest run on', async () => {
    const l = await launch(DEMO);
    const c = await RawClient.open(l.port);
    const nak = new Promise<boolean>((res) => c.socket.once('data', (d) => res(d.includes(0x2d))));
    c.socket.write('$g#00');
    expect(await nak).toBe(true);
    expect(await c.ask('Z0,100da8,1')).toBe('OK');
    c.socket.destroy();
    const r = await l.done;
    expect(r.status).toBe(1); // demo ran to its end, breakpoint gone
    expect(r.stderr).toContain('gdb: connection closed; the guest runs on without the debugger');
    expect(r.stdout).toContain('goodbye');
  });

  it('waits for gdb only until --timeout', async () => {
    const r = spawnSync(process.execPath, [BIN, 'run', '--bare', spin, '--gdb', '0', '--timeout', '0.5'], { encoding: 'latin1', timeout: 30_000 });
    expect(r.status).toBe(124);
    expect(r.stderr).toContain('timeout');
  });

  it('refuses bad --gdb values with one line', async () => {
    const cli = (...a: string[]) => spawnSync(process.execPath, [BIN, 'run', ...a], { encoding: 'latin1', timeout: 30_000 });
    for (const v of ['70000', 'abc']) {
      const r = cli('--bare', spin, '--gdb', v);
      expect(r.status, v).toBe(2);
      expect(r.stderr.trim().split('\n'), v).toEqual([`lguest-ts: --gdb must be a TCP port from 1 to 65535 (0: any free one), not ${v === 'abc' ? 'NaN' : v}`]);
    }
    const lg = cli('hello', '--gdb', '1234');
    expect(lg.status).toBe(2);
    expect(lg.stderr).toBe('lguest-ts: --gdb is for bare mode (--bare) for now\n');
    // a port in use
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as { port: number }).port;
    const inUse = spawn(process.execPath, [BIN, 'run', '--bare', spin, '--gdb', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.push(inUse);
    let err = '';
    inUse.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const status = await new Promise<number | null>((res) => inUse.on('close', res));
    busy.close();
    expect(status).toBe(2);
    expect(err).toBe(`lguest-ts: --gdb: cannot listen on 127.0.0.1:${port}: the port is in use\n`);
  });
});

/**
 * `lguest-ts run --bare KERNEL --gdb 0` as a user meets it: the real gdb (batch mode) connects, sets
 * breakpoints and watchpoints, reads registers and memory, steps, kills; and a raw protocol client checks
 * what gdb's batch mode cannot do (Ctrl-C, a dropped connection) and the option's bad values. Addresses
 * come from the kernel's own symbol table, read here. gdb missing: those tests skip, saying so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { skipUnless } from '../tools/require-tool.ts';
import { framePacket } from '../../launcher/gdb-packets.ts';
import { BIN, NO_GDB, RawClient, elfSymbols, gdb, haveGdb, hex, killAll, launch as launchAny, track } from '../tools/gdb.ts';
import { ROOT, X86, aoutKernel } from './helpers.ts';

const DEMO = resolve(ROOT, 'guest-images/build/demo.elf');

// never leave a process behind, whatever failed
afterEach(killAll);

/** Start `lguest-ts run --bare ARGS --gdb 0` and wait for the port it prints. */
const launch = (...args: string[]) => launchAny('--bare', ...args, '--timeout', '60');

describe.skipIf(skipUnless('gdb', haveGdb ? null : 'gdb is not on PATH', 'apt-get install gdb'))(`gdb debugs a bare kernel${haveGdb ? '' : NO_GDB}`, () => {
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

describe.skipIf(skipUnless('gdb', haveGdb ? null : 'gdb is not on PATH', 'apt-get install gdb'))(`gdb sees the x87${haveGdb ? '' : NO_GDB}`, () => {
  // fld1; fldpi; [0x100024] faddp st(1); fistp dword [0x200000]; mov al, [0x200000]; out 0xF4, al; jmp $
  const code = [0xd9, 0xe8, 0xd9, 0xeb, 0xde, 0xc1, 0xdb, 0x1d, 0x00, 0x00, 0x20, 0x00, 0xa0, 0x00, 0x00, 0x20, 0x00, 0xe6, 0xf4, 0xeb, 0xfe];
  const dir = mkdtempSync(join(tmpdir(), 'lguest-ts-gdb-fpu-'));
  const kernel = join(dir, 'fld.elf');
  writeFileSync(kernel, aoutKernel(code, { bssEnd: 0x200004 }));

  it('shows st0-st7 and the control registers as 80-bit values, and a write to st1 changes what the guest computes', async () => {
    const l = await launch(kernel);
    const out = await gdb(l.port, 'break *0x100024', 'continue', 'info registers st0 st1 st2 fctrl fstat ftag fiseg fioff fop',
      'p $st0', 'set var $st1 = 2.5', 'p $st1', 'info float', 'delete', 'continue');
    const r = await l.done;
    expect(out).toMatch(/^st0\s+3\.14159265358979323851\s+\(raw 0x4000c90fdaa22168c235\)/m);
    expect(out).toMatch(/^st1\s+1\s+\(raw 0x3fff8000000000000000\)/m);
    expect(out).toMatch(/^st2\s+0\s+\(raw 0x00000000000000000000\)/m);
    expect(out).toMatch(/^fctrl\s+0x37f\s/m);
    expect(out).toMatch(/^fstat\s+0x3000\s/m); // TOP = 6
    expect(out).toMatch(/^ftag\s+0xfff\s/m); // physical 6 and 7 valid
    expect(out).toMatch(/^fiseg\s+0x8\s/m);
    expect(out).toMatch(/^fioff\s+0x100022\s/m); // FLDPI's address
    expect(out).toMatch(/^fop\s+0x1eb\s/m); // FLDPI: D9 EB
    expect(out).toContain('$1 = 3.14159265358979323851');
    expect(out).toContain('$2 = 2.5');
    expect(out).toMatch(/R7: Valid\s+0x4000a000000000000000 \+2\.5/);
    // pi + 2.5 rounds to 6 (without the write, pi + 1 would give 4): the debug exit's status (6 << 1) | 1
    expect(r.status).toBe(13);
  });
});

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
    // a port in use
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as { port: number }).port;
    const inUse = spawn(process.execPath, [BIN, 'run', '--bare', spin, '--gdb', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    track(inUse);
    let err = '';
    inUse.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const status = await new Promise<number | null>((res) => inUse.on('close', res));
    busy.close();
    expect(status).toBe(2);
    expect(err).toBe(`lguest-ts: --gdb: cannot listen on 127.0.0.1:${port}: the port is in use\n`);
  });
});

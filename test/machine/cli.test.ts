/**
 * `lguest-ts run --bare` as a user meets it (through a child process): bad images get one clear line and
 * a non-zero exit; a guest that ends badly gets a message, a register dump and a non-zero exit; the exit
 * status of isa-debug-exit is (v << 1) | 1 unless --debug-exit-ok says which value means success.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { X86, aoutKernel } from './helpers.ts';
import { cliSync as cli } from '../tools/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'lguest-ts-bare-'));


function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** A 32- or 64-bit ELF header (no program headers), optionally with a Multiboot header at offset 64. */
function elf(cls: 1 | 2, multiboot: boolean): Uint8Array {
  const f = new Uint8Array(256);
  f.set([0x7f, 0x45, 0x4c, 0x46, cls, 1, 1], 0);
  const dv = new DataView(f.buffer);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, cls === 1 ? 3 : 62, true); // EM_386 / EM_X86_64
  if (multiboot) {
    dv.setUint32(64, 0x1badb002, true);
    dv.setUint32(68, 0, true);
    dv.setUint32(72, (-0x1badb002) >>> 0, true);
  }
  return f;
}

function expectOneLine(r: { status: number | null; stderr: string }, pattern: RegExp) {
  expect(r.status).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
}

describe('run --bare: bad images', () => {
  it('a text file: not a Multiboot kernel, not an ELF file', () => {
    expectOneLine(cli('run', '--bare', file('notes.txt', 'just some text\n'.repeat(100))), /is not a Multiboot kernel: no Multiboot v1 header in its first 8 KiB \(and it is not an ELF file\)/);
  });
  it('an ELF file without a Multiboot header', () => {
    expectOneLine(cli('run', '--bare', file('plain.elf', elf(1, false))), /plain\.elf is not a Multiboot kernel: no Multiboot v1 header/);
  });
  it('a 64-bit ELF file', () => {
    expectOneLine(cli('run', '--bare', file('x64.elf', elf(2, true))), /is a 64-bit ELF file/);
  });
  it('a kernel too big for --mem', () => {
    const k = file('big.bin', aoutKernel(X86.hlt, { bssEnd: 0x100000 + 80 * 1024 * 1024 }));
    expectOneLine(cli('run', '--bare', '--mem', '64', k), /does not fit in 64 MiB of memory: it loads 0x100000-0x50fffff \(use a larger --mem\)/);
  });
  it('a Multiboot header that requires what the loader lacks', () => {
    expectOneLine(cli('run', '--bare', file('needs.bin', aoutKernel(X86.hlt, { flags: 0x10008 }))), /requires features this loader does not have \(flags 0x8\)/);
  });
});

describe('run --bare: how a run ends', () => {
  it('demo: the console on stdout, exit status (0 << 1) | 1 = 1', () => {
    const r = cli('run', '--bare', 'demo');
    expect(r.stdout).toContain('Hello from a bare Multiboot kernel!');
    expect(r.stdout).toContain('Command line:       "guest-images/build/demo.elf "');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
  });
  it('--debug-exit-ok 0 (what npm start uses) turns the demo\'s exit into 0', () => {
    expect(cli('run', '--bare', '--debug-exit-ok', '0', 'demo').status).toBe(0);
    expect(cli('run', '--bare', '--debug-exit-ok', '1', 'demo').status).toBe(1);
  });
  it('isa-debug-exit with 5: status 11', () => {
    const r = cli('run', '--bare', file('exit5.bin', aoutKernel([...X86.putc('k'), ...X86.debugExit(5)])));
    expect(r.stdout).toBe('k');
    expect(r.status).toBe(11);
  });
  it('HLT with interrupts disabled: a message, the registers, exit status 4', () => {
    const r = cli('run', '--bare', file('halt.bin', aoutKernel([...X86.putc('h'), ...X86.cli, ...X86.hlt])));
    expect(r.stdout).toBe('h');
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/the guest halted with interrupts disabled \(hlt at 0x00100025\)/);
    expect(r.stderr).toMatch(/eax=2badb068 ebx=00009000/);
    expect(r.stderr).toMatch(/cs=0008 ss=0010/);
  });
  it('a triple fault (no IDT): a message, the registers, exit status 4', () => {
    // lidt [0x100040] (a zero-limit IDT), ud2: #UD, #GP, #GP -> #DF, #GP -> shutdown
    const code = [...X86.lidt(0x100040), ...X86.ud2];
    const image = aoutKernel([...code, ...new Array(0x20 - code.length).fill(0x90), 0, 0, 0, 0, 0, 0]);
    const r = cli('run', '--bare', file('triple.bin', image));
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/triple fault/);
    expect(r.stderr).toMatch(/eip=/);
  });
  it('an instruction fetch outside RAM is reported as unsupported', () => {
    const r = cli('run', '--bare', file('wild.bin', aoutKernel([0xb8, 0x00, 0x00, 0x00, 0xf0, 0xff, 0xe0]))); // mov eax, 0xf0000000; jmp eax
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/does not implement: instruction fetch from 0xf0000000 outside RAM/);
  });
  it('--timeout stops a runaway kernel with status 124', () => {
    const t0 = Date.now();
    const r = cli('run', '--bare', '--timeout', '0.5', file('loop.bin', aoutKernel(X86.jmpSelf)));
    expect(r.status).toBe(124);
    expect(r.stderr).toMatch(/timeout: stopped the guest after 0.5 s/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

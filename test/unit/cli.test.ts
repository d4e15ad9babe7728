/** The command line as a user meets it: one clear line and a non-zero exit for bad input. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { cliSync as cli } from '../tools/cli.ts';

describe('lguest-ts CLI', () => {
  it('prints help for every command', () => {
    for (const cmd of [[], ['run'], ['images'], ['cpu-test']]) {
      const r = cli(...cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('lguest-ts');
    }
  });
  it('--version prints the package\'s version', () => {
    const r = cli('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')).version);
  });
  it('rejects an unknown command with one line', () => {
    const r = cli('frobnicate');
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown command frobnicate/);
  });
  it('rejects bad option values with one line', () => {
    for (const args of [['run', '--mem', 'lots', 'hello'], ['run', '--cpus', '0', 'hello'], ['run', '--timeout', '-1', 'hello'], ['cpu-test', '--max-failures', '-2', 'x.json'], ['cpu-test', '--engine', 'bogus', 'x.json']]) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
  });
  it('names a missing image', () => {
    const r = cli('run', 'no-such-guest');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no such image: no-such-guest/);
  });
  it('cpu-test: a missing file and a file that is not vectors get one line each', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lguest-ts-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"not": "an array"}');
    for (const f of [join(dir, 'missing.json'), bad]) {
      const r = cli('cpu-test', f);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
  it('cpu-test: reports a failing vector with its disassembly and a closing count', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lguest-ts-'));
    const f = join(dir, 'wrong.json');
    // add eax, ebx (01 d8) with a deliberately wrong expected result
    const regs = { eax: 1, ebx: 2, ecx: 0, edx: 0, esi: 0, edi: 0, ebp: 0, esp: 0x60000800, eip: 0x40000000, eflags: 0x202 };
    writeFileSync(f, JSON.stringify([{
      name: 'add wrong', initial: { regs, ram: [[0x40000000, 0x01], [0x40000001, 0xd8]] },
      final: { regs: { ...regs, eax: 4, eip: 0x40000002 }, ram: [] }, exception: null, flags_mask: 0,
    }, {
      name: 'add right', initial: { regs, ram: [[0x40000000, 0x01], [0x40000001, 0xd8]] },
      final: { regs: { ...regs, eax: 3, eip: 0x40000002 }, ram: [] }, exception: null, flags_mask: 0,
    }]));
    const r = cli('cpu-test', f);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('FAIL add wrong');
    expect(r.stdout).toContain('add eax, ebx');
    expect(r.stdout).toMatch(/eax: expected 0x00000004, got 0x00000003/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });
});

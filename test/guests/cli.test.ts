/** `lguest-ts run` in lguest mode as a user meets it: console on stdout, the fate in the exit status and one
 *  line on stderr, and one clear line for every kind of bad input. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BIN, cli } from '../tools/cli.ts';

const HELLO = resolve(__dirname, '../../guest-images/build/hello.elf');


const dir = mkdtempSync(join(tmpdir(), 'lguest-cli-'));
function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
/** hello.elf with some header bytes changed. */
function patched(name: string, edits: Array<[number, number[]]>): string {
  const b = Buffer.from(readFileSync(HELLO));
  for (const [off, bytes] of edits) b.set(bytes, off);
  return file(name, b);
}

describe.concurrent('lguest-ts run (lguest mode)', () => {
  test('boots a guest: console on stdout, exit 0 on power-off, statistics on request', async () => {
    const json = join(dir, 'stats.json');
    const r = await cli('run', 'hello', '--mem', '16', '--cmdline', 'x=1 y', '--stats', '--stats-json', json);
    expect(r.stderr).toMatch(/exits: .*hypercall \d+/);
    expect(r.stderr).toMatch(/vCPU 0: \d+ instructions retired/);
    expect(r.stderr).toMatch(/leakedFrames 0/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('hello: command line: "x=1 y"');
    expect(r.stdout).toContain('hello: done');
    const stats = JSON.parse(readFileSync(json, 'utf8'));
    expect(stats.fate.kind).toBe('poweroff');
    expect(stats.host.hypercalls.LGUEST_INIT).toBe(1);
    expect(stats.shadow.leakedFrames).toBe(0);
  });

  test('an SMP guest: one statistics line per vCPU; a kill names its vCPU', async () => {
    const ok = await cli('run', 'smp', '--cpus', '3', '--stats');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('smp: vcpus: 3\n');
    for (const v of [0, 1, 2]) expect(ok.stderr).toMatch(new RegExp(`vCPU ${v}: \\d+ instructions retired`));
    expect(ok.stderr).toMatch(/hypercalls: .*VCPU_START\(32\) 3/);
    const killed = await cli('run', 'smp', '--cpus', '2', '--cmdline', 'smp=sec-hcall');
    expect(killed.status).toBe(1);
    expect(killed.stderr.split('\n')[0]).toBe('guest killed: vCPU 1: Bad hypercall 99');
    expect(killed.stderr).toMatch(/^ {2}vCPU 1 registers \(as the guest last had them\)/m); // the kill explains itself
  });

  test('Ctrl-C (SIGINT) stops the guest cleanly: a message, the statistics, status 130', async () => {
    const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
      const p = spawn(process.execPath, [BIN, 'run', 'bench-lguest', '--cpus', '2', '--cmdline', 'iters=1000000000', '--stats'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => { stderr += d; });
      // Once the guest is running (it has printed its banner), interrupt it as a terminal would.
      p.stdout.on('data', () => p.kill('SIGINT'));
      const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
      p.on('close', (status) => { clearTimeout(t); res({ status, stderr }); });
    });
    expect(r.status).toBe(130);
    expect(r.stderr).toMatch(/^lguest-ts: interrupted \(SIGINT\): stopped the guest$/m);
    expect(r.stderr).toMatch(/vCPU 0: \d+ instructions retired/);
    expect(r.stderr).toMatch(/leakedFrames 0/);
  });

  test('--timeout stops every vCPU of an SMP guest, started or not', async () => {
    const r = await cli('run', 'bench-lguest', '--cpus', '2', '--cmdline', 'iters=1000000000', '--timeout', '0.3', '--stats');
    expect(r.status).toBe(124);
    expect(r.stderr).toMatch(/^lguest-ts: --timeout: stopped the guest after 0.3 s$/m);
    expect(r.stderr).toMatch(/vCPU 1: never started/);
  });

  test('a killed guest: "guest killed: REASON" and a non-zero exit', async () => {
    const r = await cli('run', 'misbehave', '--mem', '8', '--pae', '--cmdline', 'case=badhcall');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('guest killed: Bad hypercall 99');
    expect(r.stderr).toMatch(/^ {4}eax 00000063 /m); // the report: EAX still holds the bad call's number
  });

  test('--timeout stops the guest with a message', async () => {
    const r = await cli('run', 'bench-lguest', '--cmdline', 'iters=1000000000', '--timeout', '0.2');
    expect(r.status).toBe(124);
    expect(r.stderr.trim()).toMatch(/^lguest-ts: --timeout: stopped the guest after 0.2 s$/);
  });

  const BAD: Array<[string, () => string[], RegExp]> = [
    ['not ELF', () => ['run', file('text.elf', Buffer.from('hello, world\n'))], /not an ELF file/],
    ['64-bit ELF', () => ['run', patched('elf64.elf', [[4, [2]]])], /64-bit ELF/],
    ['wrong machine', () => ['run', patched('arm.elf', [[18, [40, 0]]])], /ELF machine 40 is not i386/],
    ['not an executable', () => ['run', patched('rel.elf', [[16, [1, 0]]])], /not an executable/],
    ['image larger than --mem', () => {
      // the first program header's p_memsz (offset 52 + 20) made 8 MiB
      return ['run', patched('big.elf', [[52 + 20, [0, 0, 0x80, 0]]]), '--mem', '4'];
    }, /larger than the guest memory|outside the guest memory/],
    // the first program header's p_paddr (offset 52 + 12) moved to 15 MiB
    ['segment outside memory', () => ['run', patched('high.elf', [[52 + 12, [0, 0, 0xf0, 0]]]), '--mem', '4'], /segment 0 at physical 0xf00000\.\.0x[0-9a-f]+ lies outside the guest memory/],
    ['too many vCPUs', () => ['run', 'hello', '--cpus', '9'], /--cpus must be an integer from 1 to 8, not 9/],
    ['missing initrd', () => ['run', 'hello', '--initrd', join(dir, 'nope.img')], /no such initrd/],
  ];
  test.each(BAD)('bad input (%s): one clear line', async (_what, args, message) => {
    const r = await cli(...args());
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/internal error|at .*\.ts:\d+/);
  });
});

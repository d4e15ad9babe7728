/**
 * Hypercall plug-ins, traces and the kill report, as a user meets them on the command line:
 * - the two example experiments (examples/plugins/: a paravirtual clock in JavaScript, a page hash in
 *   TypeScript) with their guests (pvclock, pagehash), in 2-level and PAE mode;
 * - a plug-in that throws kills the guest with its error as the reason, and the Host carries on;
 * - the experiment range belongs to plug-ins: without one, its numbers are bad hypercalls;
 * - a plug-in that cannot load or claims a number outside the range is one line and status 2;
 * - `--trace` writes one JSON line per event, and counts every hypercall the Host ran, the async ring's
 *   included (the trace's count equals --stats-json's);
 * - a killed guest prints its registers, the instruction at EIP and the Host events before the kill.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../tools/cli.ts';

const ROOT = resolve(__dirname, '../..');
const CLOCK = resolve(ROOT, 'examples/plugins/host-clock.mjs');
const HASH = resolve(ROOT, 'examples/plugins/page-hash.ts');
const tmp = mkdtempSync(join(tmpdir(), 'lguest-plugins-'));

describe('the example experiments', () => {
  for (const pae of [false, true]) {
    const mode = pae ? ['--pae'] : [];
    it(`pvclock with host-clock.mjs: a 64-bit clock in EDX:EAX and plug-in ticks (${pae ? 'PAE' : '2-level'})`, async () => {
      const r = await cli('run', 'pvclock', ...mode, '--plugin', CLOCK, '--timeout', '30');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/check: HOST_TIME_NS is a 64-bit time after 2020 \(\d+ s\): ok/);
      expect(r.stdout).toContain('check: agrees with lguest_data.time');
      expect(r.stdout).toMatch(/the plug-in's tick arrived \d+ times as virtual IRQ 0: ok/);
      expect(r.stdout).toContain('pvclock: done');
    });

    it(`pagehash with page-hash.ts (a TypeScript plug-in): the Host's hash equals the guest's (${pae ? 'PAE' : '2-level'})`, async () => {
      const r = await cli('run', 'pagehash', ...mode, '--plugin', HASH, '--timeout', '30');
      expect(r.status, r.stderr).toBe(0);
      for (const what of ['inside a page', 'across page boundaries', 'by guest-physical address', "sees the guest's own latest write"]) {
        expect(r.stdout).toMatch(new RegExp(`check: ${what}: Host [0-9a-f]{8}.*: ok`));
      }
    });
  }

  it("an unmapped address in the plug-in's checked read kills the guest, naming the plug-in and the address, and the kill explains itself", async () => {
    const r = await cli('run', 'pagehash', '--plugin', HASH, '--cmdline', 'case=unmapped', '--timeout', '30');
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`guest killed: plug-in ${HASH}: PAGE_HASH: guest-virtual 0x1000 is not mapped`);
    // the report: registers as the guest had them (EAX holds the call number 0x1010, EBX the address)
    expect(r.stderr).toMatch(/^ {2}vCPU 0 registers \(as the guest last had them\), \d+ instructions retired:$/m);
    expect(r.stderr).toMatch(/^ {4}eax 00001010 {2}ebx 00001000 {2}ecx 00000010 /m);
    expect(r.stderr).toMatch(/^ {2}at c0[0-9a-f]{6}: [0-9a-f ]+ \S+/m);
    expect(r.stderr).toMatch(/^ {4}\[\d+\] hypercall PAGE_HASH\(0x1000, 0x10, 0x0, 0x0\)$/m);
    expect(r.stdout).not.toContain('the Host hashed an unmapped address');
  });

  it('without the plug-in, an experiment number is a bad hypercall', async () => {
    const r = await cli('run', 'pvclock', '--timeout', '30');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('guest killed: Bad hypercall 4096');
  });
});

describe('plug-ins that misbehave', () => {
  it('a handler that throws kills the guest with its error, and the run ends normally', async () => {
    const p = join(tmp, 'throws.mjs');
    writeFileSync(p, "export default (host) => host.hypercall(0x1000, 'BOOM', () => { throw new Error('boom at ' + 0x1000); });\n");
    const r = await cli('run', 'pvclock', '--plugin', p, '--timeout', '30');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`guest killed: plug-in ${p}: BOOM: boom at 4096`);
  });

  it('an observer that throws kills the guest too', async () => {
    const p = join(tmp, 'observer.mjs');
    writeFileSync(p, "export default (host) => host.on('hypercall', (ev) => { if (ev.name === 'SET_STACK') throw new Error('no stacks'); });\n");
    const r = await cli('run', 'hello', '--plugin', p, '--timeout', '30');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`guest killed: plug-in ${p}: observer of hypercall: no stacks`);
  });

  it('a handler returning garbage kills the guest instead of handing it to the guest', async () => {
    const p = join(tmp, 'garbage.mjs');
    writeFileSync(p, "export default (host) => host.hypercall(0x1000, 'TEXT', () => 'not a number');\n");
    const r = await cli('run', 'pvclock', '--plugin', p, '--timeout', '30');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`guest killed: plug-in ${p}: TEXT: returned string, not a number or bigint`);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['a missing file', join(tmp, 'nope.mjs'), /^lguest-ts: --plugin .*nope\.mjs: cannot load it: /],
    ['a number outside the experiment range', 'low.mjs', /^lguest-ts: --plugin .*low\.mjs: hypercall 14 is outside the experiment range 0x1000-0x1fff$/],
    ['no setup function', 'empty.mjs', /^lguest-ts: --plugin .*empty\.mjs: exports no setup function/],
    ['the same number twice', 'twice.mjs', /^lguest-ts: --plugin .*twice\.mjs: hypercall 0x1000 is already served by/],
  ];
  writeFileSync(join(tmp, 'low.mjs'), "export default (host) => host.hypercall(14, 'SET_PTE', () => 0);\n");
  writeFileSync(join(tmp, 'empty.mjs'), 'export const x = 1;\n');
  writeFileSync(join(tmp, 'twice.mjs'), "export default (host) => { host.hypercall(0x1000, 'A', () => 0); host.hypercall(0x1000, 'B', () => 0); };\n");
  for (const [what, file, want] of bad) {
    it(`bad input (${what}): one clear line, exit 2`, async () => {
      const r = await cli('run', 'hello', '--plugin', file.startsWith('/') ? file : join(tmp, file), '--timeout', '30');
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toMatch(want);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }
});

describe('--trace', () => {
  it('hello: one JSON line per event; the hypercalls traced are every hypercall the Host ran, the async ring included', async () => {
    const trace = join(tmp, 'hello.jsonl'), stats = join(tmp, 'hello-stats.json');
    const r = await cli('run', 'hello', '--trace', 'hypercall,trap,pagefault', '--trace-file', trace, '--stats-json', stats, '--timeout', '30');
    expect(r.status, r.stderr).toBe(0);
    const events = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    for (const e of events) {
      expect(e.vcpu).toBe(0);
      expect(typeof e.t).toBe('number');
      expect(Number.isInteger(e.insn)).toBe(true);
      expect(['hypercall', 'trap', 'pagefault']).toContain(e.event);
    }
    const hcalls = events.filter((e) => e.event === 'hypercall');
    const counted = Object.values(JSON.parse(readFileSync(stats, 'utf8')).host.hypercalls as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(hcalls.length).toBe(counted);
    expect(hcalls.some((e) => e.sync === false && e.name === 'SET_PTE')).toBe(true); // from the async ring
    expect(hcalls.some((e) => e.sync === true && e.name === 'SHUTDOWN')).toBe(true);
    // retired-instruction counts never go backwards on one vCPU
    for (let i = 1; i < events.length; i++) expect(events[i].insn).toBeGreaterThanOrEqual(events[i - 1].insn);
    const faults = events.filter((e) => e.event === 'pagefault');
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.every((f) => f.fate === 'fixed' || f.fate === 'reflected')).toBe(true);
  });

  it('SMP: every vCPU traces its own events, with its IPIs', async () => {
    const trace = join(tmp, 'smp.jsonl');
    const r = await cli('run', 'smp', '--cpus', '2', '--trace', 'ipi,interrupt', '--trace-file', trace, '--timeout', '30');
    expect(r.status, r.stderr).toBe(0);
    const events = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(new Set(events.map((e) => e.vcpu))).toEqual(new Set([0, 1]));
    expect(events.some((e) => e.event === 'ipi')).toBe(true);
    expect(events.some((e) => e.event === 'interrupt')).toBe(true);
  });

  it('bad input: an unknown event, insn without bounds, --trace-file without --trace, --trace in bare mode', async () => {
    for (const [args, want] of [
      [['--trace', 'frob'], /^lguest-ts: --trace: no event 'frob' \(events: hypercall, /],
      [['--trace', 'insn'], /^lguest-ts: --trace insn needs bounds, so it cannot flood: --trace-insn-range LO-HI/],
      [['--trace-file', join(tmp, 'x')], /--trace-file needs --trace EVENTS/],
    ] as const) {
      const r = await cli('run', 'hello', ...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(want);
    }
    const r = await cli('run', '--bare', 'demo', '--trace', 'all');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--plugin and --trace are for lguest mode/);
  });
});

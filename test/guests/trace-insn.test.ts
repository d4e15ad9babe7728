/**
 * `run --trace insn`: guest instructions with their disassembly and registers, bounded by a window of
 * retired instructions and/or an address range, as a user meets it on the command line:
 * - a window traces exactly the guest instructions retired inside it, each line's disassembly is iced-x86's
 *   for the line's own bytes, and consecutive lines agree (EIP advances by the instruction's length or
 *   jumps; the next line's registers are what the instruction left);
 * - a range traces only addresses inside it; a fetch that faults says so and comes again;
 * - with several vCPUs, each traces its own window;
 * - without bounds, with bad bounds, with bounds but no insn, or with --gdb: one line, status 2.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { disassemble } from '../../emulator/disasm.ts';
import { cli } from '../tools/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lguest-trace-insn-'));
const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const REGS = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eflags'];

describe('--trace insn', () => {
  it('a window: the guest instructions retired in it, disassembled, with registers that follow from one to the next', async () => {
    const f = join(tmp, 'window.jsonl');
    const r = await cli('run', 'hello', '--trace', 'insn', '--trace-insn-window', '1000-4000', '--trace-file', f, '--timeout', '30');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Hello'); // the guest ran to its end as usual
    const ev = read(f);
    expect(ev.length).toBeGreaterThan(50);
    expect(ev.every((e) => e.event === 'insn' && e.vcpu === 0)).toBe(true);
    expect(ev[0].insn).toBeGreaterThanOrEqual(1000);
    expect(ev[0].insn).toBeLessThan(1000 + 40); // exact start, not a block or a slice later
    expect(ev.at(-1).insn).toBeLessThan(4000);
    // the window spans trips through the Switcher (hypercalls, faults): its instructions are not traced
    expect(ev.some((e, i) => i > 0 && e.insn > ev[i - 1].insn + 1)).toBe(true);
    for (const e of ev) {
      expect([1, 3]).toContain(e.cpl); // the guest's, never the Switcher's
      for (const k of REGS) expect(Number.isInteger(e[k]) && e[k] >= 0 && e[k] <= 0xffffffff).toBe(true);
      const bytes = Uint8Array.from(e.bytes.split(' ').map((b: string) => parseInt(b, 16)));
      expect(disassemble(bytes, e.eip, 1)[0].text).toBe(e.asm);
    }
    // within a run of guest instructions (no trip through the Switcher), each retires one count, and
    // straight-line code moves EIP by its length; a plain register move shows up in the next line
    let checkedMoves = 0;
    for (let i = 1; i < ev.length; i++) {
      const a = ev[i - 1], b = ev[i];
      if (b.insn !== a.insn + 1 || a.faulted) continue;
      const len = a.bytes.split(' ').length;
      if (!/^(j|call|ret|int|iret|loop)/.test(a.asm)) expect(b.eip, `${a.asm} at ${a.eip.toString(16)}`).toBe((a.eip + len) >>> 0);
      const m = /^mov (e[a-d]x|e[sd]i|ebp), (e[a-d]x|e[sd]i|ebp)$/.exec(a.asm);
      if (m) { expect(b[m[1]]).toBe(a[m[2]]); checkedMoves++; }
    }
    expect(checkedMoves).toBeGreaterThan(0);
  });

  it('a range: only addresses inside it; a faulting fetch says so and the instruction comes again', async () => {
    const f = join(tmp, 'range.jsonl');
    const r = await cli('run', 'hello', '--trace', 'insn,pagefault', '--trace-insn-range', '0xc0100000-0xc0100040', '--trace-file', f, '--timeout', '30');
    expect(r.status, r.stderr).toBe(0);
    const ev = read(f);
    const insns = ev.filter((e) => e.event === 'insn');
    expect(insns.length).toBeGreaterThan(5);
    expect(insns.every((e) => e.eip >= 0xc0100000 && e.eip < 0xc0100040)).toBe(true);
    const faulted = insns.findIndex((e) => e.faulted === true);
    expect(faulted).toBeGreaterThanOrEqual(0);
    const f0 = insns[faulted];
    const pf = ev.find((e) => e.event === 'pagefault' && e.eip === f0.eip && e.insn >= f0.insn);
    expect(pf, 'the page fault that stopped it').toBeDefined();
    expect(insns.slice(faulted + 1).some((e) => e.eip === f0.eip && !e.faulted)).toBe(true);
  });

  it('SMP: each vCPU traces its own window', async () => {
    const f = join(tmp, 'smp.jsonl');
    const r = await cli('run', 'smp', '--cpus', '2', '--trace', 'insn', '--trace-insn-window', '5000-5200', '--trace-file', f, '--timeout', '30');
    expect(r.status, r.stderr).toBe(0);
    const ev = read(f);
    for (const v of [0, 1]) {
      const mine = ev.filter((e) => e.vcpu === v);
      expect(mine.length, `vCPU ${v}`).toBeGreaterThan(10);
      expect(mine.every((e) => e.insn >= 5000 && e.insn < 5200 && (e.cpl === 1 || e.cpl === 3))).toBe(true);
    }
  });

  it('bad input: one line, status 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--trace', 'insn'], /^lguest-ts: --trace insn needs bounds, so it cannot flood/],
      [['--trace', 'insn', '--trace-insn-window', '500-100'], /^lguest-ts: --trace-insn-window 500-100: the end must be above the start/],
      [['--trace', 'insn', '--trace-insn-range', 'c0100000'], /^lguest-ts: --trace-insn-range takes LO-HI, guest addresses, not 'c0100000'$/],
      [['--trace', 'insn', '--trace-insn-range', '0x0-0x100000000'], /^lguest-ts: --trace-insn-range: '0x100000000' is not a number from 0 to 0xffffffff/],
      [['--trace', 'hypercall', '--trace-insn-window', '1-2'], /^lguest-ts: --trace-insn-range and --trace-insn-window need --trace insn$/],
      [['--trace', 'insn', '--trace-insn-window', '1-2', '--gdb', '0'], /^lguest-ts: --trace insn and --gdb both drive the vCPU/],
    ];
    for (const [args, want] of cases) {
      const r = await cli('run', 'hello', ...args, '--timeout', '10');
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim()).toMatch(want);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

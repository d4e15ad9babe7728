/**
 * `run --trace insn`: every guest instruction in a window of retired instructions and/or an address range,
 * with its bytes, its iced-x86 disassembly (emulator/disasm.ts) and the registers before it ran.
 *
 * The CPU is not touched: the Host's run loop (core.ts) asks this tracer to run each slice instead of
 * cpu.run(), and the tracer single-steps the vCPU with cpu.step() only where instructions are traced.
 * Outside the window the slice runs at full speed (cpu.run, blocks and compiled code as always), stopping
 * a few instructions short of the window's start and stepping the rest, so the first traced instruction is
 * exact; after the window the tracer steps aside for good. With no tracer (no `--trace insn`) the loop
 * pays one undefined check per 20,000-instruction slice.
 *
 * What is traced: instructions of the guest (CPL 1 or 3), never the Switcher's (CPL 0, the Host's own).
 * Each line is written once the instruction has run, with the registers from before it and `insn` = the
 * retired count before it. An instruction that faulted instead of retiring says `"faulted": true` (the
 * Host's trap or page-fault event follows; a fault the Host fixes brings the same instruction again).
 */
import { CS, IF } from '../emulator/constants.ts';
import { ExitReason } from '../emulator/exits.ts';
import { disassemble } from '../emulator/disasm.ts';
import type { HostEvent } from './events.ts';
import type { LgCpu } from './lguest.ts';
import { guestTranslate } from './plugins.ts';

/** Which instructions to trace: linear EIP in [lo, hi) and retired count in [from, to). */
export interface InsnBounds {
  lo: number;
  hi: number;
  from: number;
  to: number;
  /** At most this many lines per vCPU (the last says so). */
  limit: number;
}

/** The default ceiling on traced instructions per vCPU. */
export const INSN_TRACE_LIMIT = 1_000_000;

/** Stop full-speed running this many instructions before the window (more than a block's 48). */
const MARGIN = 64;
const MAX_INSN = 15;

export class InsnTracer {
  private traced = 0;
  private done = false;
  private readonly bytes = new Uint8Array(MAX_INSN);

  constructor(private readonly c: LgCpu, readonly bounds: InsnBounds) {}

  /** Instead of cpu.run(budget) in the Host's loop: same exits, same budget. */
  run(budget: number): ExitReason {
    const cpu = this.c.cpu, b = this.bounds;
    if (this.done) return cpu.run(budget);
    let left = budget;
    while (left > 0) {
      const r = cpu.retired;
      if (r >= b.to) { this.done = true; return cpu.run(left); }
      if (r < b.from - MARGIN) {
        // before the window: full speed up to its margin
        const before = r;
        const exit = cpu.run(Math.min(left, b.from - MARGIN - r));
        left -= cpu.retired - before;
        if (exit !== ExitReason.Budget) return exit;
        continue;
      }
      // a guest instruction in the bounds, unless the step will take an interrupt first (the CPU then runs
      // the Switcher's gate instead, and the instruction comes back after)
      let ev: HostEvent | null = null;
      if (r >= b.from && cpu.cpl !== 0 && !(cpu.pendingIrq >= 0 && (cpu.getEflags() & IF) !== 0 && !cpu.inhibitIrq)) {
        const eip = (cpu.segBase[CS] + cpu.eip) >>> 0;
        if (eip >= b.lo && eip < b.hi) ev = this.describe(eip);
      }
      const before = cpu.retired;
      const exit = cpu.step();
      left -= Math.max(1, cpu.retired - before);
      if (ev !== null) this.emit(ev, before, cpu.retired === before);
      if (this.done) return exit === ExitReason.Step || exit === ExitReason.Budget ? cpu.run(left) : exit;
      if (exit !== ExitReason.Step && exit !== ExitReason.Budget) return exit;
    }
    return ExitReason.Budget;
  }

  /** The instruction at `eip` and the registers before it runs. */
  private describe(eip: number): HostEvent {
    const c = this.c, cpu = c.cpu, r = cpu.r32;
    let n = 0;
    for (; n < MAX_INSN; n++) {
      const gpa = guestTranslate(c, (eip + n) >>> 0);
      if (gpa < 0) break;
      this.bytes[n] = c.lg.mem.read8(c.lg.memBase + gpa);
    }
    const d = n === 0 ? undefined : disassemble(this.bytes.subarray(0, n), eip, 1)[0];
    return {
      kind: 'insn', eip, cpl: cpu.cpl, bytes: d ? d.bytes : '', asm: d ? d.text : '(unmapped)',
      eax: r[0] >>> 0, ecx: r[1] >>> 0, edx: r[2] >>> 0, ebx: r[3] >>> 0, esp: r[4] >>> 0, ebp: r[5] >>> 0, esi: r[6] >>> 0, edi: r[7] >>> 0,
      eflags: cpu.getEflags() >>> 0,
    };
  }

  /** Out with it, under the retired count before it ran; `faulted` when it did not retire (the Host's
   *  trap or page-fault event follows, and the guest may run it again). */
  private emit(ev: HostEvent, retired: number, faulted: boolean): void {
    if (ev.kind !== 'insn') return;
    if (faulted) ev.faulted = true;
    this.traced++;
    if (this.traced >= this.bounds.limit) {
      ev.last = `the limit of ${this.bounds.limit} traced instructions per vCPU: narrow the window or the range`;
      this.done = true;
    }
    this.c.lg.events?.emit(this.c.id, retired, ev);
  }
}

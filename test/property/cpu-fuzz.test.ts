/**
 * Random machine code must never crash or hang the emulator, and every engine must do the same thing
 * with it: FUZZ_RUNS programs (default 300) of 4 KiB of random bytes, each in ring 0 with an IDT whose
 * every gate halts, run in lockstep through the interpreter, every op through its handler and the block
 * compiler (test/tools/cpu-diff.ts), the whole machine state compared after every block. Whatever the
 * bytes, a run ends with one of the machine's exit reasons (an exception delivered to a handler that
 * halts, a triple fault, an unsupported feature, the budget), never with a JavaScript error.
 */
import { describe, expect, it } from 'vitest';
import { ExitReason } from '../../emulator/exits.ts';
import { ENGINES, makeMachine, randomBytesProgram, runLockstep } from '../tools/cpu-diff.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const ENDINGS = new Set([ExitReason.Hlt, ExitReason.TripleFault, ExitReason.Unsupported, ExitReason.Budget, ExitReason.DeviceStop]);

describe('random code: every engine ends the same way, with a machine exit', () => {
  it(`${RUNS} programs of random bytes`, () => {
    const machines = ENGINES.map(makeMachine);
    const seen = new Map<ExitReason, number>();
    const failures: string[] = [];
    for (let n = 0; n < RUNS; n++) {
      const p = randomBytesProgram(0xf00d + n);
      const r = runLockstep(machines, p, { maxInstructions: 20_000 });
      if (r.divergence !== null && failures.length < 3) failures.push(`program ${n}: ${r.divergence}`);
      const last = machines[0].cpu.exitReason;
      if (!ENDINGS.has(last)) failures.push(`program ${n}: exit ${last}`);
      seen.set(last, (seen.get(last) ?? 0) + 1);
    }
    expect(failures).toEqual([]);
    // most random programs fault quickly and halt in the handler
    expect(seen.get(ExitReason.Hlt) ?? 0).toBeGreaterThan(RUNS / 2);
  }, Math.max(120_000, RUNS * 1000));
});

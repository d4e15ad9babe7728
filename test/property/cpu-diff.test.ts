/**
 * The differential fuzzer: CPU_DIFF_PROGRAMS random programs (default 300) of real i386 instructions
 * (every ALU, shift, multiply and divide form, moves, string instructions with REP prefixes, locked
 * read-modify-writes, 16-bit operands and addressing, segment overrides, forward branches, counted loops,
 * calls, stores into their own code, instructions that fault on purpose), in bare ring-0 and ring-3
 * machines with and without paging (pages not present, read-only and supervisor-only; a segment with a
 * small limit; a 16-bit stack; alignment checking), run in lockstep through the interpreter, every op
 * through its handler, and the block compiler. After every slice of the run loop (usually one block) the
 * whole machine state must be the same in all three: registers, EFLAGS (all of it), EIP, segments, CR2,
 * the retired-instruction count, the exception (vector, error code, EIP) and the memory a program can
 * reach. Machinery: test/tools/cpu-diff.ts. CPU_DIFF_SEED picks another set of programs.
 */
import { describe, expect, it } from 'vitest';
import { ENGINES, generateProgram, makeMachine, runLockstep } from '../tools/cpu-diff.ts';

const PROGRAMS = Number(process.env.CPU_DIFF_PROGRAMS ?? 300);
const SEED = Number(process.env.CPU_DIFF_SEED ?? 1);

describe('differential fuzzer: interpreter, handlers and block compiler agree', () => {
  it(`${PROGRAMS} random programs, compared at every block boundary and every fault`, () => {
    const machines = ENGINES.map(makeMachine);
    let faults = 0, retired = 0, slices = 0, completed = 0;
    const failures: string[] = [];
    for (let n = 0; n < PROGRAMS; n++) {
      const p = generateProgram(SEED * 1_000_003 + n);
      const r = runLockstep(machines, p);
      if (r.divergence !== null) {
        failures.push(`program ${n} (seed ${p.seed}, ${JSON.stringify(p.env)}): ${r.divergence}`);
        if (failures.length >= 3) break;
      }
      faults += r.faults;
      retired += r.retired;
      slices += r.slices;
      if (r.completed) completed++;
    }
    expect(failures).toEqual([]);
    // the programs do what they are for: many instructions, many faults, many reach their end
    expect(retired).toBeGreaterThan(PROGRAMS * 40);
    expect(faults).toBeGreaterThan(PROGRAMS);
    expect(completed).toBeGreaterThan(PROGRAMS / 4);
    expect(slices).toBeGreaterThan(PROGRAMS * 10);
  }, Math.max(120_000, PROGRAMS * 1000));
});

/**
 * Random machine code must never crash or hang the emulator: whatever the bytes, a run ends with one of
 * the machine's exit reasons (an exception delivered to a handler that halts, a triple fault, an
 * unsupported feature, the budget), never with a JavaScript error. FUZZ_RUNS programs (default 300) of
 * random bytes, each in ring 0 with an IDT whose every gate halts, through the interpreter and through
 * the block compiler (threshold 1).
 */
import { describe, expect, it } from 'vitest';
import { CPU } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const CODE = 0x10000;
const IDT = 0x1000;
const GDT = 0x2000;
const HALT = 0x3000;

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function machine(mem: PhysicalMemory, jit: boolean): CPU {
  const cpu = new CPU(mem, 0, { codeSlots: 32 });
  cpu.jitThreshold = jit ? 1 : 0;
  return cpu;
}

function setup(cpu: CPU, mem: PhysicalMemory, rand: () => number): void {
  mem.u8.fill(0);
  // GDT: 1 = flat ring-0 code, 2 = flat ring-0 data
  mem.i32[(GDT >> 2) + 2] = 0x0000ffff; mem.i32[(GDT >> 2) + 3] = 0x00cf9b00;
  mem.i32[(GDT >> 2) + 4] = 0x0000ffff; mem.i32[(GDT >> 2) + 5] = 0x00cf9300;
  for (let v = 0; v < 256; v++) {
    mem.i32[(IDT >> 2) + v * 2] = (0x08 << 16) | (HALT & 0xffff);
    mem.i32[(IDT >> 2) + v * 2 + 1] = (HALT & 0xffff0000) | 0x8e00;
  }
  mem.u8[HALT] = 0xf4; // hlt
  for (let i = 0; i < 4096; i++) mem.u8[CODE + i] = (rand() * 256) | 0;
  cpu.flushCodeCache();
  cpu.resetFlat(0);
  cpu.flushTlb(true);
  cpu.gdtBase = GDT; cpu.gdtLimit = 0x17;
  cpu.idtBase = IDT; cpu.idtLimit = 0x7ff;
  for (let r = 0; r < 8; r++) cpu.r32[r] = (rand() * 4294967296) | 0;
  cpu.r32[4] = 0x8000; // a usable stack
  cpu.cr0 = 0x11; cpu.cr3 = 0; cpu.cr4 = 0;
  cpu.eip = CODE;
}

const ENDINGS = new Set([ExitReason.Hlt, ExitReason.TripleFault, ExitReason.Unsupported, ExitReason.Budget, ExitReason.DeviceStop]);

for (const jit of [false, true]) {
  describe(`random code (${jit ? 'block compiler' : 'interpreter'})`, () => {
    it(`${RUNS} programs of random bytes end with a machine exit, never an error`, () => {
      const mem = new PhysicalMemory(1 << 20);
      const cpu = machine(mem, jit);
      const rand = rng(0xf00d + (jit ? 1 : 0));
      const seen = new Map<ExitReason, number>();
      for (let n = 0; n < RUNS; n++) {
        setup(cpu, mem, rand);
        let reason = ExitReason.Budget;
        for (let slice = 0; slice < 20 && reason === ExitReason.Budget; slice++) reason = cpu.run(5000);
        expect(ENDINGS.has(reason), `program ${n}: exit ${reason}`).toBe(true);
        seen.set(reason, (seen.get(reason) ?? 0) + 1);
      }
      // most random programs fault quickly and halt in the handler
      expect(seen.get(ExitReason.Hlt) ?? 0).toBeGreaterThan(RUNS / 2);
    });
  });
}

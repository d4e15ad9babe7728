/**
 * The x87 as the CPU runs it (emulator/ops/x87.ts): the CR0.EM/MP/TS rules for #NM, a pending unmasked
 * exception at the next waiting instruction (#MF with CR0.NE = 1, FERR# with NE = 0), precise faults
 * of memory operands, CPUID, and a small FPU program through the interpreter and the block compiler.
 * The numerics themselves are checked against hardware by fpu-vectors.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CPU, ExceptionMode } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { CR0_EM, CR0_MP, CR0_NE, CR0_PG, CR0_TS, PTE_P, PTE_RW } from '../../emulator/constants.ts';

const CODE = 0x1000;

function machine(code: number[], opts: { jit?: boolean } = {}) {
  const mem = new PhysicalMemory(1 << 20);
  const cpu = new CPU(mem, 0, { codeSlots: 16 });
  cpu.resetFlat(0);
  cpu.jitThreshold = opts.jit ? 2 : 0;
  mem.writeBytes(CODE, Uint8Array.from(code));
  cpu.eip = CODE;
  cpu.r32[4] = 0x8000;
  cpu.exceptionMode = ExceptionMode.Stop;
  return { mem, cpu };
}

/** Run one instruction; the exception vector it raised, or -1. */
function stepVector(cpu: CPU): number {
  const r = cpu.step();
  return r === ExitReason.Exception ? cpu.exceptionVector : -1;
}

const FLD1 = [0xd9, 0xe8];
const FWAIT = [0x9b];

describe('x87: CR0.EM, MP and TS (#NM)', () => {
  const cases: [string, number, number[], number][] = [
    ['ESC with EM', CR0_EM, FLD1, 7],
    ['ESC with TS', CR0_TS, FLD1, 7],
    ['ESC with MP only', CR0_MP, FLD1, -1],
    ['ESC with EM and MP', CR0_EM | CR0_MP, FLD1, 7],
    ['WAIT with MP and TS', CR0_MP | CR0_TS, FWAIT, 7],
    ['WAIT with TS only', CR0_TS, FWAIT, -1],
    ['WAIT with EM only', CR0_EM, FWAIT, -1],
    ['WAIT with EM and TS, no MP', CR0_EM | CR0_TS, FWAIT, -1],
  ];
  for (const [name, bits, code, vector] of cases) {
    it(`${name}: ${vector < 0 ? 'runs' : '#NM'}`, () => {
      const { cpu } = machine(code);
      cpu.cr0 = (cpu.cr0 | bits) | 0;
      expect(stepVector(cpu)).toBe(vector);
      if (vector >= 0) {
        expect(cpu.eip).toBe(CODE);
        expect(cpu.fpu.top).toBe(0); // nothing ran
      } else {
        expect(cpu.eip).toBe(CODE + code.length);
      }
    });
  }
});

describe('x87: pending unmasked exceptions', () => {
  /** FLDCW to unmask ZE, FLDZ, FLD1, FDIVRP (1/0: ZE pending), then the instruction under test. */
  const prologue = [
    0xd9, 0x2d, 0x00, 0x20, 0x00, 0x00, // fldcw [0x2000]
    0xd9, 0xee, // fldz
    0xd9, 0xe8, // fld1
    0xde, 0xf1, // fdivrp st1, st0  (ST1 = ST0 / ST1 = 1 / 0)
  ];
  function pending(next: number[], ne: boolean) {
    const m = machine([...prologue, ...next]);
    m.mem.writeBytes(0x2000, Uint8Array.from([0x7b, 0x03])); // 0x037b: ZE unmasked
    if (ne) m.cpu.cr0 |= CR0_NE;
    for (let i = 0; i < 4; i++) expect(stepVector(m.cpu)).toBe(-1);
    expect(m.cpu.fpu.fsw & 0x8084).toBe(0x8084); // B, ES, ZE
    expect(m.cpu.fpu.pending).toBe(true);
    return m;
  }
  it('the divide leaves the destination alone and raises nothing yet', () => {
    const { cpu } = pending([], true);
    expect(cpu.fpu.top).toBe(6); // no pop
    expect(cpu.fpu.stSe(1)).toBe(0); // ST(1) is still the +0 of FLDZ
    expect(cpu.fpu.stSig(1)).toBe(0n);
  });
  it('with CR0.NE = 1 the next waiting instruction takes #MF, before running', () => {
    const { cpu } = pending(FLD1, true);
    expect(stepVector(cpu)).toBe(16);
    expect(cpu.eip).toBe(CODE + prologue.length);
    expect(cpu.fpu.top).toBe(6);
  });
  it('WAIT takes #MF too', () => {
    const { cpu } = pending(FWAIT, true);
    expect(stepVector(cpu)).toBe(16);
  });
  it('FNSTSW AX does not wait: it runs and shows the pending exception', () => {
    const { cpu } = pending([0xdf, 0xe0], true);
    expect(stepVector(cpu)).toBe(-1);
    expect(cpu.r32[0] & 0x8084).toBe(0x8084);
  });
  it('FNCLEX clears it, and the next instruction runs', () => {
    const { cpu } = pending([0xdb, 0xe2, ...FLD1], true);
    expect(stepVector(cpu)).toBe(-1);
    expect(stepVector(cpu)).toBe(-1);
    expect(cpu.fpu.pending).toBe(false);
  });
  it('with CR0.NE = 0 the CPU asserts FERR# (for IRQ 13) and goes on', () => {
    const { cpu } = pending(FLD1, false);
    expect(cpu.fpu.ferr).toBe(false);
    expect(stepVector(cpu)).toBe(-1);
    expect(cpu.fpu.ferr).toBe(true);
    expect(cpu.fpu.top).toBe(5);
  });
});

describe('x87: memory operands fault precisely', () => {
  it('FSTP m64 across into a non-present page: #PF with the write bit, nothing written, nothing popped', () => {
    const { mem, cpu } = machine([
      0xd9, 0xe8, // fld1
      0xdd, 0x1d, 0xfc, 0x3f, 0x00, 0x00, // fstp qword [0x3ffc]  (4 bytes in page 3, 4 in page 4)
    ]);
    // identity paging for 0..0x3fff only: page 4 not present
    const pd = 0x10000, pt = 0x11000;
    mem.i32[pd >> 2] = pt | PTE_P | PTE_RW;
    for (let p = 0; p < 4; p++) mem.i32[(pt >> 2) + p] = (p << 12) | PTE_P | PTE_RW;
    for (let p = 8; p < 0x20; p++) mem.i32[(pt >> 2) + p] = (p << 12) | PTE_P | PTE_RW; // stack etc.
    cpu.cr3 = pd;
    cpu.cr0 = (cpu.cr0 | CR0_PG) | 0;
    cpu.flushTlb(true);
    mem.writeBytes(0x3ffc, Uint8Array.from([0xaa, 0xbb, 0xcc, 0xdd]));
    expect(stepVector(cpu)).toBe(-1);
    expect(stepVector(cpu)).toBe(14);
    expect(cpu.exceptionError & 2).toBe(2);
    expect(cpu.cr2 >>> 0).toBe(0x4000);
    expect([...mem.u8.subarray(0x3ffc, 0x4000)]).toEqual([0xaa, 0xbb, 0xcc, 0xdd]);
    expect(cpu.fpu.top).toBe(7);
    expect(cpu.fpu.isEmpty(0)).toBe(false);
    expect(cpu.eip).toBe(CODE + 2);
  });
});

describe('x87: CPUID', () => {
  it('leaf 1 reports the FPU (bit 0) and CMOV (bit 15, with FCMOV/FCOMI)', () => {
    const { cpu } = machine([0x0f, 0xa2]);
    cpu.r32[0] = 1;
    expect(stepVector(cpu)).toBe(-1);
    expect(cpu.r32[2] & 1).toBe(1);
    expect((cpu.r32[2] >> 15) & 1).toBe(1);
  });
});

for (const jit of [false, true]) {
  describe(`x87 program (${jit ? 'block compiler' : 'interpreter'})`, () => {
    it('sums sqrt(k) for k = 1..200 in double precision and stores the double', () => {
      // fldcw [0x2000] (0x027f: PC = 53 bits, round to nearest, all masked); fldz;
      // loop: fild dword [0x2010]; fsqrt; faddp; inc dword [0x2010]; dec ecx; jnz loop;
      // fstp qword [0x2020]; hlt
      const { mem, cpu } = machine([
        0xd9, 0x2d, 0x00, 0x20, 0x00, 0x00,
        0xd9, 0xee,
        0xdb, 0x05, 0x10, 0x20, 0x00, 0x00,
        0xd9, 0xfa,
        0xde, 0xc1,
        0xff, 0x05, 0x10, 0x20, 0x00, 0x00,
        0x49,
        0x75, 0xec,
        0xdd, 0x1d, 0x20, 0x20, 0x00, 0x00,
        0xf4,
      ], { jit });
      cpu.exceptionMode = ExceptionMode.Deliver;
      mem.writeBytes(0x2000, Uint8Array.from([0x7f, 0x02]));
      mem.i32[0x2010 >> 2] = 1;
      cpu.r32[1] = 200;
      expect(cpu.run(1_000_000)).toBe(ExitReason.Hlt);
      // with 53-bit precision each x87 operation rounds as IEEE double arithmetic does
      let want = 0;
      for (let k = 1; k <= 200; k++) want += Math.sqrt(k);
      expect(new Float64Array(mem.u8.slice(0x2020, 0x2028).buffer)[0]).toBe(want);
      expect(cpu.fpu.top).toBe(0);
      if (jit) expect(cpu.blkFn.some((f) => f !== undefined)).toBe(true);
    });
  });
}

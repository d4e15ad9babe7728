/**
 * The x87 instructions (escape opcodes D8-DF) and WAIT/FWAIT: the CPU side. The decoder gives every x87
 * instruction the op X87 with the opcode byte and ModRM in iImm ((op << 8) | modrm) and the memory
 * operand in the usual fields; this handler applies the CR0 rules, the pending-exception rule, runs the
 * instruction on the CPU's FPU (emulator/fpu/) with memory through the CPU's checked accessors, and
 * updates the last-instruction pointers.
 *
 * - CR0.EM or CR0.TS: #NM before anything else (WAIT: only when MP and TS are both set), as the SDM's
 *   table of EM/MP/TS says.
 * - A waiting instruction (everything but FNINIT FNCLEX FNSTSW FNSTCW FNSTENV FNSAVE and the 287
 *   no-ops) with an unmasked exception pending: #MF when CR0.NE = 1. With NE = 0 the CPU asserts FERR#
 *   (`fpu.ferr`, which the PC's interrupt controller turns into IRQ 13) and goes on, as a 387 with
 *   IGNNE# does.
 */
import { CR0_EM, CR0_MP, CR0_NE, CR0_TS, CF, PF, ZF, AF, SF as SF_FLAG, OF, EAX, NM, UD } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { FPU, type FpuMem, isNonWaiting } from '../fpu/fpu.ts';
import { defineOp } from './registry.ts';

const MF = 16;

/** The memory operand of the running instruction, through the CPU's checked accessors. */
class OperandMem implements FpuMem {
  c!: CPU;
  s = 0;
  rd8(o: number): number { return this.c.read8(this.s, o | 0); }
  rd16(o: number): number { return this.c.read16(this.s, o | 0); }
  rd32(o: number): number { return this.c.read32(this.s, o | 0); }
  wr8(o: number, v: number): void { this.c.write8(this.s, o | 0, v); }
  wr16(o: number, v: number): void { this.c.write16(this.s, o | 0, v); }
  wr32(o: number, v: number): void { this.c.write32(this.s, o | 0, v); }
  probe(o: number, len: number): void {
    const c = this.c;
    c.segCheck(this.s, o | 0, len, true);
    const lin = (c.segBase[this.s] + o) | 0;
    c.translate(lin, true, c.cpl === 3);
    const last = (lin + len - 1) | 0;
    if (((last ^ lin) & ~0xfff) !== 0) c.translate(last & ~0xfff, true, c.cpl === 3); // CR2: the page's start
  }
}
const mem = new OperandMem();

/** The FPU of a CPU (created on first use). */
export function fpuOf(c: CPU): FPU {
  return c.fpu;
}

/** The #MF / FERR# rule of a waiting instruction; returns normally when the instruction may run. */
function checkPending(c: CPU, f: FPU): void {
  if (!f.pending) return;
  if ((c.cr0 & CR0_NE) !== 0) c.raise(MF, -1);
  f.ferr = true;
}

export const X87 = defineOp('X87', (c: CPU, k: number) => {
  if ((c.cr0 & (CR0_EM | CR0_TS)) !== 0) c.raise(NM, -1);
  const f = c.fpu;
  const imm = c.iImm[k];
  const op = imm >> 8, modrm = imm & 0xff;
  if (!isNonWaiting(op, modrm)) checkPending(c, f);
  const isMem = modrm < 0xc0;
  let ea = 0;
  if (isMem) {
    mem.c = c;
    mem.s = c.iSeg[k];
    ea = c.ea(k);
  }
  if (op === 0xda || op === 0xdb) {
    c.materializeFlags();
    f.eflagsIn = c.flags;
  }
  f.realMode = (c.cr0 & 1) === 0;
  f.exec(op, modrm, ea, (c.iFlags[k] & 16) !== 0, mem);
  if (f.ud) c.raise(UD, -1);
  if (f.eflagsOut >= 0) {
    c.materializeFlags();
    c.flags = (c.flags & ~(CF | PF | ZF | AF | SF_FLAG | OF)) | f.eflagsOut;
  }
  if (f.ax >= 0) c.r16[EAX << 1] = f.ax;
  if (!FPU.isControl(op, modrm)) {
    f.fip = c.prevEip;
    f.fcs = c.segSel[1];
    f.fop = ((op & 7) << 8) | modrm;
    if (isMem) {
      f.fdp = ea;
      f.fds = c.segSel[c.iSeg[k]];
    }
  }
});

/** WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set; then the pending-exception rule. */
export const FWAIT = defineOp('FWAIT', (c: CPU) => {
  if ((c.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) c.raise(NM, -1);
  checkPending(c, c.fpu);
});

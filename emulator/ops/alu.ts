/**
 * Integer arithmetic and logic: ADD OR ADC SBB AND SUB XOR CMP (the "group 1" operations, selected by
 * iSub in encoding order), TEST, INC, DEC, NEG, NOT. Operands are handled sign-extended to 32 bits so the
 * lazy flags (cpu.ts) need no operand size.
 */
import { ARITH_FLAGS, CF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { LF_ADC1, LF_ADD, LF_SBB1, LF_SUB } from '../flags.ts';
import { ALU32_FORMS, opId } from '../optable.ts';
import { bodyOp, defineOp } from './registry.ts';

const ALL = ARITH_FLAGS;
const CMP = 7;

/** Perform group-1 operation `op` on a and b at the size given by `sh` (24: byte, 16: word, 0: dword).
 *  Returns the result sign-extended; sets the lazy flags. */
export function alu(c: CPU, op: number, a: number, b: number, sh: number): number {
  a = (a << sh) >> sh;
  b = (b << sh) >> sh;
  let r: number;
  switch (op) {
    case 0: r = ((a + b) << sh) >> sh; c.lfAdd(a, b, r); return r;
    case 1: r = a | b; c.lfLogic(r); return r;
    case 2: {
      const cin = c.getCF() ? 1 : 0;
      r = ((a + b + cin) << sh) >> sh;
      c.lfOp = cin ? LF_ADC1 : LF_ADD; c.lfA = a; c.lfB = b; c.lfRes = r; c.lfMask = ALL;
      return r;
    }
    case 3: {
      const cin = c.getCF() ? 1 : 0;
      r = ((a - b - cin) << sh) >> sh;
      c.lfOp = cin ? LF_SBB1 : LF_SUB; c.lfA = a; c.lfB = b; c.lfRes = r; c.lfMask = ALL;
      return r;
    }
    case 4: r = a & b; c.lfLogic(r); return r;
    case 6: r = a ^ b; c.lfLogic(r); return r;
    default: r = ((a - b) << sh) >> sh; c.lfSub(a, b, r); return r; // 5 SUB, 7 CMP
  }
}

// ---- E op= G ----
export const ALU_EbGb_R = defineOp('ALU_EbGb_R', (c, k) => {
  const d = c.iRm[k];
  const r = alu(c, c.iSub[k], c.r8[d], c.r8[c.iReg[k]], 24);
  if (c.iSub[k] !== CMP) c.r8[d] = r;
});
export const ALU_EbGb_M = defineOp('ALU_EbGb_M', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), op = c.iSub[k];
  if (op === CMP) { alu(c, op, c.read8(s, ea), c.r8[c.iReg[k]], 24); return; }
  c.rmwWrite8(alu(c, op, c.rmwRead8(s, ea), c.r8[c.iReg[k]], 24));
});
export const ALU_EwGw_R = defineOp('ALU_EwGw_R', (c, k) => {
  const d = c.iRm[k];
  const r = alu(c, c.iSub[k], c.r16[d], c.r16[c.iReg[k]], 16);
  if (c.iSub[k] !== CMP) c.r16[d] = r;
});
export const ALU_EwGw_M = defineOp('ALU_EwGw_M', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), op = c.iSub[k];
  if (op === CMP) { alu(c, op, c.read16(s, ea), c.r16[c.iReg[k]], 16); return; }
  c.rmwWrite16(alu(c, op, c.rmwRead16(s, ea), c.r16[c.iReg[k]], 16));
});
export const ALU_EdGd_R = defineOp('ALU_EdGd_R', (c, k) => {
  const d = c.iRm[k];
  const r = alu(c, c.iSub[k], c.r32[d], c.r32[c.iReg[k]], 0);
  if (c.iSub[k] !== CMP) c.r32[d] = r;
});
export const ALU_EdGd_M = defineOp('ALU_EdGd_M', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), op = c.iSub[k];
  if (op === CMP) { alu(c, op, c.read32(s, ea), c.r32[c.iReg[k]], 0); return; }
  c.rmwWrite32(alu(c, op, c.rmwRead32(s, ea), c.r32[c.iReg[k]], 0));
});

// ---- G op= E ----
export const ALU_GbEb_R = defineOp('ALU_GbEb_R', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r8[d], c.r8[c.iRm[k]], 24);
  if (c.iSub[k] !== CMP) c.r8[d] = r;
});
export const ALU_GbEb_M = defineOp('ALU_GbEb_M', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r8[d], c.read8(c.iSeg[k], c.ea(k)), 24);
  if (c.iSub[k] !== CMP) c.r8[d] = r;
});
export const ALU_GwEw_R = defineOp('ALU_GwEw_R', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r16[d], c.r16[c.iRm[k]], 16);
  if (c.iSub[k] !== CMP) c.r16[d] = r;
});
export const ALU_GwEw_M = defineOp('ALU_GwEw_M', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r16[d], c.read16(c.iSeg[k], c.ea(k)), 16);
  if (c.iSub[k] !== CMP) c.r16[d] = r;
});
export const ALU_GdEd_R = defineOp('ALU_GdEd_R', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r32[d], c.r32[c.iRm[k]], 0);
  if (c.iSub[k] !== CMP) c.r32[d] = r;
});
export const ALU_GdEd_M = defineOp('ALU_GdEd_M', (c, k) => {
  const d = c.iReg[k];
  const r = alu(c, c.iSub[k], c.r32[d], c.read32(c.iSeg[k], c.ea(k)), 0);
  if (c.iSub[k] !== CMP) c.r32[d] = r;
});

// ---- E op= imm (also the AL/AX/EAX, imm short forms, with iRm = 0) ----
export const ALU_EbIb_R = bodyOp('ALU_EbIb_R');
export const ALU_EbIb_M = bodyOp('ALU_EbIb_M');
export const ALU_EwIw_R = defineOp('ALU_EwIw_R', (c, k) => {
  const d = c.iRm[k];
  const r = alu(c, c.iSub[k], c.r16[d], c.iImm[k], 16);
  if (c.iSub[k] !== CMP) c.r16[d] = r;
});
export const ALU_EwIw_M = defineOp('ALU_EwIw_M', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), op = c.iSub[k];
  if (op === CMP) { alu(c, op, c.read16(s, ea), c.iImm[k], 16); return; }
  c.rmwWrite16(alu(c, op, c.rmwRead16(s, ea), c.iImm[k], 16));
});
export const ALU_EdId_R = defineOp('ALU_EdId_R', (c, k) => {
  const d = c.iRm[k];
  const r = alu(c, c.iSub[k], c.r32[d], c.iImm[k], 0);
  if (c.iSub[k] !== CMP) c.r32[d] = r;
});
export const ALU_EdId_M = defineOp('ALU_EdId_M', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), op = c.iSub[k];
  if (op === CMP) { alu(c, op, c.read32(s, ea), c.iImm[k], 0); return; }
  c.rmwWrite32(alu(c, op, c.rmwRead32(s, ea), c.iImm[k], 0));
});

// ---- 32-bit forms specialised per operation ----
// The generic handlers above switch on iSub for every instruction. For the 32-bit forms of the six
// operations without carry-in, each (operation, form) pair is a row of its own with a body in
// emulator/optable.ts (ADD_EdGd_R, ...): a small monomorphic handler, and inline code in compiled blocks.
const OP_NAME = ['ADD', 'OR', 'ADC', 'SBB', 'AND', 'SUB', 'XOR', 'CMP'];
const GENERIC32 = [ALU_EdGd_R, ALU_EdGd_M, ALU_GdEd_R, ALU_GdEd_M, ALU_EdId_R, ALU_EdId_M];
export { ALU32_FORMS };

/** ALU32[op][form]: the op id for a 32-bit group-1 operation in one of ALU32_FORMS. */
export const ALU32: number[][] = OP_NAME.map((name, op) =>
  ALU32_FORMS.map((form, fi) => (op === 2 || op === 3 ? GENERIC32[fi] : opId(`${name}_${form}`))),
);

// ---- TEST ----
export const TEST_EbGb_R = bodyOp('TEST_EbGb_R');
export const TEST_EbGb_M = defineOp('TEST_EbGb_M', (c, k) => { alu(c, 4, c.read8(c.iSeg[k], c.ea(k)), c.r8[c.iReg[k]], 24); });
export const TEST_EwGw_R = defineOp('TEST_EwGw_R', (c, k) => { alu(c, 4, c.r16[c.iRm[k]], c.r16[c.iReg[k]], 16); });
export const TEST_EwGw_M = defineOp('TEST_EwGw_M', (c, k) => { alu(c, 4, c.read16(c.iSeg[k], c.ea(k)), c.r16[c.iReg[k]], 16); });
export const TEST_EdGd_R = bodyOp('TEST_EdGd_R');
export const TEST_EdGd_M = bodyOp('TEST_EdGd_M');
export const TEST_EbIb_R = defineOp('TEST_EbIb_R', (c, k) => { alu(c, 4, c.r8[c.iRm[k]], c.iImm[k], 24); });
export const TEST_EbIb_M = defineOp('TEST_EbIb_M', (c, k) => { alu(c, 4, c.read8(c.iSeg[k], c.ea(k)), c.iImm[k], 24); });
export const TEST_EwIw_R = defineOp('TEST_EwIw_R', (c, k) => { alu(c, 4, c.r16[c.iRm[k]], c.iImm[k], 16); });
export const TEST_EwIw_M = defineOp('TEST_EwIw_M', (c, k) => { alu(c, 4, c.read16(c.iSeg[k], c.ea(k)), c.iImm[k], 16); });
export const TEST_EdId_R = bodyOp('TEST_EdId_R');
export const TEST_EdId_M = bodyOp('TEST_EdId_M');

// ---- INC / DEC: like ADD/SUB 1 but CF is kept ----
function incdec(c: CPU, a: number, delta: number, sh: number): number {
  if ((c.lfMask & CF) !== 0) c.flags = (c.flags & ~CF) | (c.getCF() ? CF : 0);
  a = (a << sh) >> sh;
  const r = ((a + delta) << sh) >> sh;
  c.lfOp = delta > 0 ? LF_ADD : LF_SUB;
  c.lfA = a;
  c.lfB = 1;
  c.lfRes = r;
  c.lfMask = ALL & ~CF;
  return r;
}

export const INC_Eb_R = defineOp('INC_Eb_R', (c, k) => { const d = c.iRm[k]; c.r8[d] = incdec(c, c.r8[d], 1, 24); });
export const DEC_Eb_R = defineOp('DEC_Eb_R', (c, k) => { const d = c.iRm[k]; c.r8[d] = incdec(c, c.r8[d], -1, 24); });
export const INC_Ew_R = defineOp('INC_Ew_R', (c, k) => { const d = c.iRm[k]; c.r16[d] = incdec(c, c.r16[d], 1, 16); });
export const DEC_Ew_R = defineOp('DEC_Ew_R', (c, k) => { const d = c.iRm[k]; c.r16[d] = incdec(c, c.r16[d], -1, 16); });
export const INC_Ed_R = bodyOp('INC_Ed_R');
export const DEC_Ed_R = bodyOp('DEC_Ed_R');
export const INC_Eb_M = defineOp('INC_Eb_M', (c, k) => { c.rmwWrite8(incdec(c, c.rmwRead8(c.iSeg[k], c.ea(k)), 1, 24)); });
export const DEC_Eb_M = defineOp('DEC_Eb_M', (c, k) => { c.rmwWrite8(incdec(c, c.rmwRead8(c.iSeg[k], c.ea(k)), -1, 24)); });
export const INC_Ew_M = defineOp('INC_Ew_M', (c, k) => { c.rmwWrite16(incdec(c, c.rmwRead16(c.iSeg[k], c.ea(k)), 1, 16)); });
export const DEC_Ew_M = defineOp('DEC_Ew_M', (c, k) => { c.rmwWrite16(incdec(c, c.rmwRead16(c.iSeg[k], c.ea(k)), -1, 16)); });
export const INC_Ed_M = defineOp('INC_Ed_M', (c, k) => { c.rmwWrite32(incdec(c, c.rmwRead32(c.iSeg[k], c.ea(k)), 1, 0)); });
export const DEC_Ed_M = defineOp('DEC_Ed_M', (c, k) => { c.rmwWrite32(incdec(c, c.rmwRead32(c.iSeg[k], c.ea(k)), -1, 0)); });

// ---- NEG (0 - x) and NOT ----
function neg(c: CPU, a: number, sh: number): number {
  a = (a << sh) >> sh;
  const r = ((0 - a) << sh) >> sh;
  c.lfSub(0, a, r);
  return r;
}

export const NEG_Eb_R = defineOp('NEG_Eb_R', (c, k) => { const d = c.iRm[k]; c.r8[d] = neg(c, c.r8[d], 24); });
export const NEG_Ew_R = defineOp('NEG_Ew_R', (c, k) => { const d = c.iRm[k]; c.r16[d] = neg(c, c.r16[d], 16); });
export const NEG_Ed_R = bodyOp('NEG_Ed_R');
export const NEG_Eb_M = defineOp('NEG_Eb_M', (c, k) => { c.rmwWrite8(neg(c, c.rmwRead8(c.iSeg[k], c.ea(k)), 24)); });
export const NEG_Ew_M = defineOp('NEG_Ew_M', (c, k) => { c.rmwWrite16(neg(c, c.rmwRead16(c.iSeg[k], c.ea(k)), 16)); });
export const NEG_Ed_M = defineOp('NEG_Ed_M', (c, k) => { c.rmwWrite32(neg(c, c.rmwRead32(c.iSeg[k], c.ea(k)), 0)); });
export const NOT_Eb_R = defineOp('NOT_Eb_R', (c, k) => { const d = c.iRm[k]; c.r8[d] = ~c.r8[d]; });
export const NOT_Ew_R = defineOp('NOT_Ew_R', (c, k) => { const d = c.iRm[k]; c.r16[d] = ~c.r16[d]; });
export const NOT_Ed_R = defineOp('NOT_Ed_R', (c, k) => { const d = c.iRm[k]; c.r32[d] = ~c.r32[d]; });
export const NOT_Eb_M = defineOp('NOT_Eb_M', (c, k) => { c.rmwWrite8(~c.rmwRead8(c.iSeg[k], c.ea(k))); });
export const NOT_Ew_M = defineOp('NOT_Ew_M', (c, k) => { c.rmwWrite16(~c.rmwRead16(c.iSeg[k], c.ea(k))); });
export const NOT_Ed_M = defineOp('NOT_Ed_M', (c, k) => { c.rmwWrite32(~c.rmwRead32(c.iSeg[k], c.ea(k))); });

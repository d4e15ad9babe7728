/**
 * Data movement: MOV in all its forms (including moffs and segment registers), MOVZX/MOVSX, LEA, XCHG,
 * XADD, CMPXCHG, CMPXCHG8B, BSWAP, the sign extensions CBW/CWDE/CWD/CDQ, LAHF/SAHF, XLAT, SALC.
 */
import { AF, CF, EAX, EBX, ECX, EDX, PF, SF, SS, ZF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { alu } from './alu.ts';
import { bodyOp, defineOp } from './registry.ts';
import { loadSegment } from '../segments.ts';

// ---- MOV E, G / G, E ----
export const MOV_EbGb_R = bodyOp('MOV_EbGb_R');
export const MOV_EbGb_M = bodyOp('MOV_EbGb_M');
export const MOV_EwGw_R = defineOp('MOV_EwGw_R', (c, k) => { c.r16[c.iRm[k]] = c.r16[c.iReg[k]]; });
export const MOV_EwGw_M = defineOp('MOV_EwGw_M', (c, k) => { c.write16(c.iSeg[k], c.ea(k), c.r16[c.iReg[k]]); });
export const MOV_EdGd_R = bodyOp('MOV_EdGd_R');
export const MOV_EdGd_M = bodyOp('MOV_EdGd_M');
export const MOV_GbEb_M = bodyOp('MOV_GbEb_M');
export const MOV_GwEw_M = defineOp('MOV_GwEw_M', (c, k) => { c.r16[c.iReg[k]] = c.read16(c.iSeg[k], c.ea(k)); });
export const MOV_GdEd_M = bodyOp('MOV_GdEd_M');

// ---- MOV E, imm (C6/C7, B0-BF with iRm = register) ----
export const MOV_EbIb_R = bodyOp('MOV_EbIb_R');
export const MOV_EbIb_M = bodyOp('MOV_EbIb_M');
export const MOV_EwIw_R = defineOp('MOV_EwIw_R', (c, k) => { c.r16[c.iRm[k]] = c.iImm[k]; });
export const MOV_EwIw_M = defineOp('MOV_EwIw_M', (c, k) => { c.write16(c.iSeg[k], c.ea(k), c.iImm[k]); });
export const MOV_EdId_R = bodyOp('MOV_EdId_R');
export const MOV_EdId_M = bodyOp('MOV_EdId_M');

// ---- MOVZX / MOVSX (the register source is an r8 byte offset or an r16 index) ----
export const MOVZX_GwEb_R = defineOp('MOVZX_GwEb_R', (c, k) => { c.r16[c.iReg[k]] = c.r8[c.iRm[k]]; });
export const MOVZX_GwEb_M = defineOp('MOVZX_GwEb_M', (c, k) => { c.r16[c.iReg[k]] = c.read8(c.iSeg[k], c.ea(k)); });
export const MOVZX_GdEb_R = bodyOp('MOVZX_GdEb_R');
export const MOVZX_GdEb_M = bodyOp('MOVZX_GdEb_M');
export const MOVZX_GdEw_R = bodyOp('MOVZX_GdEw_R');
export const MOVZX_GdEw_M = bodyOp('MOVZX_GdEw_M');
export const MOVZX_GwEw_R = defineOp('MOVZX_GwEw_R', (c, k) => { c.r16[c.iReg[k]] = c.r16[c.iRm[k]]; });
export const MOVZX_GwEw_M = defineOp('MOVZX_GwEw_M', (c, k) => { c.r16[c.iReg[k]] = c.read16(c.iSeg[k], c.ea(k)); });
export const MOVSX_GwEb_R = defineOp('MOVSX_GwEb_R', (c, k) => { c.r16[c.iReg[k]] = (c.r8[c.iRm[k]] << 24) >> 24; });
export const MOVSX_GwEb_M = defineOp('MOVSX_GwEb_M', (c, k) => { c.r16[c.iReg[k]] = (c.read8(c.iSeg[k], c.ea(k)) << 24) >> 24; });
export const MOVSX_GdEb_R = bodyOp('MOVSX_GdEb_R');
export const MOVSX_GdEb_M = bodyOp('MOVSX_GdEb_M');
export const MOVSX_GdEw_R = defineOp('MOVSX_GdEw_R', (c, k) => { c.r32[c.iReg[k]] = (c.r16[c.iRm[k]] << 16) >> 16; });
export const MOVSX_GdEw_M = defineOp('MOVSX_GdEw_M', (c, k) => { c.r32[c.iReg[k]] = (c.read16(c.iSeg[k], c.ea(k)) << 16) >> 16; });

// ---- MOV AL/AX/EAX <-> moffs (the offset is in iDisp, with no base or index) ----
// These use the general memory-operand form, so they share the handlers above (decoder sets iReg = 0).

// ---- LEA ----
export const LEA_Gd = bodyOp('LEA_Gd');
export const LEA_Gw = defineOp('LEA_Gw', (c, k) => { c.r16[c.iReg[k]] = c.ea(k); });

// ---- XCHG (the memory forms are implicitly locked) ----
export const XCHG_EbGb_R = defineOp('XCHG_EbGb_R', (c, k) => {
  const a = c.iRm[k], b = c.iReg[k], t = c.r8[a];
  c.r8[a] = c.r8[b]; c.r8[b] = t;
});
export const XCHG_EwGw_R = defineOp('XCHG_EwGw_R', (c, k) => {
  const a = c.iRm[k], b = c.iReg[k], t = c.r16[a];
  c.r16[a] = c.r16[b]; c.r16[b] = t;
});
export const XCHG_EdGd_R = defineOp('XCHG_EdGd_R', (c, k) => {
  const a = c.iRm[k], b = c.iReg[k], t = c.r32[a];
  c.r32[a] = c.r32[b]; c.r32[b] = t;
});
export const XCHG_EbGb_M = defineOp('XCHG_EbGb_M', (c, k) => {
  const v = c.rmwRead8(c.iSeg[k], c.ea(k));
  c.rmwWrite8(c.r8[c.iReg[k]]);
  c.r8[c.iReg[k]] = v;
});
export const XCHG_EwGw_M = defineOp('XCHG_EwGw_M', (c, k) => {
  const v = c.rmwRead16(c.iSeg[k], c.ea(k));
  c.rmwWrite16(c.r16[c.iReg[k]]);
  c.r16[c.iReg[k]] = v;
});
export const XCHG_EdGd_M = defineOp('XCHG_EdGd_M', (c, k) => {
  const v = c.rmwRead32(c.iSeg[k], c.ea(k));
  c.rmwWrite32(c.r32[c.iReg[k]]);
  c.r32[c.iReg[k]] = v;
});

// ---- XADD ----
export const XADD_EbGb_R = defineOp('XADD_EbGb_R', (c, k) => {
  const d = c.iRm[k], s = c.iReg[k], a = c.r8[d], b = c.r8[s];
  const r = alu(c, 0, a, b, 24);
  c.r8[s] = a; c.r8[d] = r;
});
export const XADD_EwGw_R = defineOp('XADD_EwGw_R', (c, k) => {
  const d = c.iRm[k], s = c.iReg[k], a = c.r16[d], b = c.r16[s];
  const r = alu(c, 0, a, b, 16);
  c.r16[s] = a; c.r16[d] = r;
});
export const XADD_EdGd_R = defineOp('XADD_EdGd_R', (c, k) => {
  const d = c.iRm[k], s = c.iReg[k], a = c.r32[d], b = c.r32[s];
  const r = alu(c, 0, a, b, 0);
  c.r32[s] = a; c.r32[d] = r;
});
export const XADD_EbGb_M = defineOp('XADD_EbGb_M', (c, k) => {
  const s = c.iReg[k], a = c.rmwRead8(c.iSeg[k], c.ea(k));
  c.rmwWrite8(alu(c, 0, a, c.r8[s], 24));
  c.r8[s] = a;
});
export const XADD_EwGw_M = defineOp('XADD_EwGw_M', (c, k) => {
  const s = c.iReg[k], a = c.rmwRead16(c.iSeg[k], c.ea(k));
  c.rmwWrite16(alu(c, 0, a, c.r16[s], 16));
  c.r16[s] = a;
});
export const XADD_EdGd_M = defineOp('XADD_EdGd_M', (c, k) => {
  const s = c.iReg[k], a = c.rmwRead32(c.iSeg[k], c.ea(k));
  c.rmwWrite32(alu(c, 0, a, c.r32[s], 0));
  c.r32[s] = a;
});

// ---- CMPXCHG: compare the accumulator with the destination; the destination is always written ----
export const CMPXCHG_EbGb_R = defineOp('CMPXCHG_EbGb_R', (c, k) => {
  const d = c.iRm[k], v = c.r8[d];
  alu(c, 7, c.r8[0], v, 24);
  if (c.getZF()) c.r8[d] = c.r8[c.iReg[k]];
  else c.r8[0] = v;
});
export const CMPXCHG_EwGw_R = defineOp('CMPXCHG_EwGw_R', (c, k) => {
  const d = c.iRm[k], v = c.r16[d];
  alu(c, 7, c.r16[0], v, 16);
  if (c.getZF()) c.r16[d] = c.r16[c.iReg[k]];
  else c.r16[0] = v;
});
export const CMPXCHG_EdGd_R = defineOp('CMPXCHG_EdGd_R', (c, k) => {
  const d = c.iRm[k], v = c.r32[d];
  alu(c, 7, c.r32[EAX], v, 0);
  if (c.getZF()) c.r32[d] = c.r32[c.iReg[k]];
  else c.r32[EAX] = v;
});
export const CMPXCHG_EbGb_M = defineOp('CMPXCHG_EbGb_M', (c, k) => {
  const v = c.rmwRead8(c.iSeg[k], c.ea(k));
  alu(c, 7, c.r8[0], v, 24);
  if (c.getZF()) c.rmwWrite8(c.r8[c.iReg[k]]);
  else { c.rmwWrite8(v); c.r8[0] = v; }
});
export const CMPXCHG_EwGw_M = defineOp('CMPXCHG_EwGw_M', (c, k) => {
  const v = c.rmwRead16(c.iSeg[k], c.ea(k));
  alu(c, 7, c.r16[0], v, 16);
  if (c.getZF()) c.rmwWrite16(c.r16[c.iReg[k]]);
  else { c.rmwWrite16(v); c.r16[0] = v; }
});
export const CMPXCHG_EdGd_M = defineOp('CMPXCHG_EdGd_M', (c, k) => {
  const v = c.rmwRead32(c.iSeg[k], c.ea(k));
  alu(c, 7, c.r32[EAX], v, 0);
  if (c.getZF()) c.rmwWrite32(c.r32[c.iReg[k]]);
  else { c.rmwWrite32(v); c.r32[EAX] = v; }
});

/** CMPXCHG8B m64: compare EDX:EAX with m64; equal: store ECX:EBX, ZF=1; else load m64, ZF=0 (and store it
 *  back, as the hardware does: the operand is always written). */
export const CMPXCHG8B_Mq = defineOp('CMPXCHG8B_Mq', (c, k) => {
  const lo = c.rmwRead64(c.iSeg[k], c.ea(k)), hi = c.rmwHi;
  c.materializeFlags();
  if (lo === c.r32[EAX] && hi === c.r32[EDX]) {
    c.rmwWrite64(c.r32[EBX], c.r32[ECX]);
    c.flags |= ZF;
  } else {
    c.rmwWrite64(lo, hi);
    c.r32[EAX] = lo;
    c.r32[EDX] = hi;
    c.flags &= ~ZF;
  }
});

// ---- BSWAP ----
export const BSWAP_Rd = defineOp('BSWAP_Rd', (c, k) => {
  const d = c.iRm[k], v = c.r32[d];
  c.r32[d] = ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
});
/** BSWAP with a 16-bit operand is undefined; P6-class hardware clears the low word. */
export const BSWAP_Rw = defineOp('BSWAP_Rw', (c, k) => { c.r16[c.iRm[k]] = 0; });

// ---- sign extensions ----
export const CBW = defineOp('CBW', (c) => { c.r16[0] = (c.r8[0] << 24) >> 24; });
export const CWDE = defineOp('CWDE', (c) => { c.r32[EAX] = (c.r16[0] << 16) >> 16; });
export const CWD = defineOp('CWD', (c) => { c.r16[EDX << 1] = (c.r16[0] & 0x8000) !== 0 ? 0xffff : 0; });
export const CDQ = bodyOp('CDQ');

// ---- LAHF / SAHF ----
export const LAHF = defineOp('LAHF', (c) => { c.r8[1] = (c.getEflags() & 0xd5) | 2; });
export const SAHF = defineOp('SAHF', (c) => {
  const f = c.getEflags();
  c.setArith((f & ~0xd5) | (c.r8[1] & (SF | ZF | AF | PF | CF)) | (f & 0x800));
});

// ---- XLAT: AL = [seg:EBX + AL] ----
export const XLAT = defineOp('XLAT', (c, k) => {
  const off = (c.iFlags[k] & 1) !== 0 ? (c.r32[EBX] + c.r8[0]) & 0xffff : (c.r32[EBX] + c.r8[0]) | 0;
  c.r8[0] = c.read8(c.iSeg[k], off);
});

/** SALC (undocumented D6): AL = CF ? 0xFF : 0. */
export const SALC = defineOp('SALC', (c) => { c.r8[0] = c.getCF() ? 0xff : 0; });

// ---- MOV to and from segment registers ----
export const MOV_EwSw_R = defineOp('MOV_EwSw_R', (c, k) => { c.r16[c.iRm[k]] = c.segSel[c.iSub[k]]; });
/** With a 32-bit operand size and a register destination, P6 and later zero-extend the selector. */
export const MOV_EdSw_R = defineOp('MOV_EdSw_R', (c, k) => { c.r32[c.iRm[k]] = c.segSel[c.iSub[k]]; });
export const MOV_EwSw_M = defineOp('MOV_EwSw_M', (c, k) => { c.write16(c.iSeg[k], c.ea(k), c.segSel[c.iSub[k]]); });
export const MOV_SwEw_R = defineOp('MOV_SwEw_R', (c, k) => { movToSeg(c, c.iSub[k], c.r16[c.iRm[k]]); });
export const MOV_SwEw_M = defineOp('MOV_SwEw_M', (c, k) => { movToSeg(c, c.iSub[k], c.read16(c.iSeg[k], c.ea(k))); });

function movToSeg(c: CPU, s: number, sel: number): void {
  loadSegment(c, s, sel);
  if (s === SS) c.inhibitIrq = true;
  c.stop = 1;
}


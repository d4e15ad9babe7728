/**
 * Bit operations: BT, BTS, BTR, BTC (register, immediate and memory forms; a register bit offset into
 * memory is signed and moves the address), BSF, BSR, and the condition-code consumers SETcc and CMOVcc.
 */
import { CF, ZF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { defineOp } from './registry.ts';

/** Apply bit operation op (0 BT, 1 BTS, 2 BTR, 3 BTC) to bit `bit` of v; sets CF. Returns the new value. */
function bitop(c: CPU, op: number, v: number, bit: number): number {
  const m = 1 << bit;
  c.materializeFlags();
  c.flags = (c.flags & ~CF) | ((v & m) !== 0 ? CF : 0);
  switch (op) {
    case 1: return v | m;
    case 2: return v & ~m;
    case 3: return v ^ m;
    default: return v;
  }
}

function btReg(bits: number, imm: boolean) {
  return (c: CPU, k: number) => {
    const op = c.iSub[k];
    const d = c.iRm[k];
    const off = imm ? c.iImm[k] : bits === 16 ? c.r16[c.iReg[k]] : c.r32[c.iReg[k]];
    const bit = off & (bits - 1);
    if (bits === 16) {
      const r = bitop(c, op, c.r16[d], bit);
      if (op !== 0) c.r16[d] = r;
    } else {
      const r = bitop(c, op, c.r32[d], bit);
      if (op !== 0) c.r32[d] = r;
    }
  };
}

function btMem(bits: number, imm: boolean) {
  return (c: CPU, k: number) => {
    const op = c.iSub[k];
    const s = c.iSeg[k];
    let ea = c.ea(k);
    let bit: number;
    if (imm) {
      bit = c.iImm[k] & (bits - 1);
    } else if (bits === 16) {
      const off = (c.r16[c.iReg[k]] << 16) >> 16;
      ea = (ea + ((off >> 4) << 1)) | 0;
      if ((c.iFlags[k] & 1) !== 0) ea &= 0xffff;
      bit = off & 15;
    } else {
      const off = c.r32[c.iReg[k]];
      ea = (ea + ((off >> 5) << 2)) | 0;
      if ((c.iFlags[k] & 1) !== 0) ea &= 0xffff;
      bit = off & 31;
    }
    if (bits === 16) {
      if (op === 0) { bitop(c, 0, c.read16(s, ea), bit); return; }
      c.rmwWrite16(bitop(c, op, c.rmwRead16(s, ea), bit));
    } else {
      if (op === 0) { bitop(c, 0, c.read32(s, ea), bit); return; }
      c.rmwWrite32(bitop(c, op, c.rmwRead32(s, ea), bit));
    }
  };
}

/** BT_OPS[size 0=w 1=d][imm][mem] (the operation is in iSub) */
export const BT_OPS: number[][][] = [16, 32].map((bits) =>
  [false, true].map((imm) => [
    defineOp(`BTx_E${bits === 16 ? 'w' : 'd'}${imm ? 'Ib' : 'G'}_R`, btReg(bits, imm)),
    defineOp(`BTx_E${bits === 16 ? 'w' : 'd'}${imm ? 'Ib' : 'G'}_M`, btMem(bits, imm)),
  ]),
);

// ---- BSF / BSR: a zero source sets ZF and leaves the destination alone (as P6 and later do) ----
function bsf(c: CPU, v: number, reverse: boolean): number {
  c.materializeFlags();
  if (v === 0) {
    c.flags |= ZF;
    return -1;
  }
  c.flags &= ~ZF;
  return reverse ? 31 - Math.clz32(v) : 31 - Math.clz32(v & -v);
}

function bsfOp(bits: number, reverse: boolean, mem: boolean) {
  return (c: CPU, k: number) => {
    let v: number;
    if (mem) v = bits === 16 ? c.read16(c.iSeg[k], c.ea(k)) : c.read32(c.iSeg[k], c.ea(k));
    else v = bits === 16 ? c.r16[c.iRm[k]] : c.r32[c.iRm[k]];
    const r = bsf(c, v, reverse);
    if (r < 0) return;
    if (bits === 16) c.r16[c.iReg[k]] = r;
    else c.r32[c.iReg[k]] = r;
  };
}

/** BSF_OPS[reverse][size 0=w 1=d][mem] */
export const BSF_OPS: number[][][] = [false, true].map((rev) =>
  [16, 32].map((bits) =>
    [false, true].map((mem) =>
      defineOp(`${rev ? 'BSR' : 'BSF'}_G${bits === 16 ? 'wEw' : 'dEd'}_${mem ? 'M' : 'R'}`, bsfOp(bits, rev, mem)),
    ),
  ),
);

// ---- SETcc / CMOVcc (condition in iSub) ----
export const SETcc_Eb_R = defineOp('SETcc_Eb_R', (c, k) => { c.r8[c.iRm[k]] = c.cond(c.iSub[k]) ? 1 : 0; });
export const SETcc_Eb_M = defineOp('SETcc_Eb_M', (c, k) => { c.write8(c.iSeg[k], c.ea(k), c.cond(c.iSub[k]) ? 1 : 0); });
export const CMOVcc_GwEw_R = defineOp('CMOVcc_GwEw_R', (c, k) => { if (c.cond(c.iSub[k])) c.r16[c.iReg[k]] = c.r16[c.iRm[k]]; });
export const CMOVcc_GwEw_M = defineOp('CMOVcc_GwEw_M', (c, k) => {
  const v = c.read16(c.iSeg[k], c.ea(k)); // the source is read (and may fault) whatever the condition
  if (c.cond(c.iSub[k])) c.r16[c.iReg[k]] = v;
});
export const CMOVcc_GdEd_R = defineOp('CMOVcc_GdEd_R', (c, k) => { if (c.cond(c.iSub[k])) c.r32[c.iReg[k]] = c.r32[c.iRm[k]]; });
export const CMOVcc_GdEd_M = defineOp('CMOVcc_GdEd_M', (c, k) => {
  const v = c.read32(c.iSeg[k], c.ea(k));
  if (c.cond(c.iSub[k])) c.r32[c.iReg[k]] = v;
});

/**
 * Multiplication and division: MUL, IMUL (one, two and three operands), DIV, IDIV with #DE on a zero
 * divisor or a quotient that does not fit. 32x32->64 products and 64/32 divisions are computed exactly
 * with 16-bit limbs in doubles (no BigInt: nothing is allocated).
 */
import { AF, CF, DE, EAX, EDX, OF, PF, SF, ZF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { bodyOp, defineOp } from './registry.ts';

/** High 32 bits of the unsigned product a*b (a, b as uint32). */
export function mulHighU(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** High 32 bits of the signed product a*b (a, b as int32). */
export function mulHighS(a: number, b: number): number {
  let hi = mulHighU(a >>> 0, b >>> 0);
  if (a < 0) hi = (hi - b) | 0;
  if (b < 0) hi = (hi - a) | 0;
  return hi;
}

/** Flags after a multiply: CF = OF = overflow; AF cleared; SF, ZF and PF (undefined by Intel) lazily from
 *  the low result, sign-extended to the operand size. */
export function mulFlags(c: CPU, overflow: boolean, low: number, bits: number): void {
  c.flags = (c.flags & ~(CF | OF | AF)) | (overflow ? CF | OF : 0);
  c.lfRes = bits === 32 ? low | 0 : (low << (32 - bits)) >> (32 - bits);
  c.lfMask = SF | ZF | PF;
}

// ---- one-operand MUL / IMUL (group 3 /4 /5) ----
function mul8(c: CPU, src: number, signed: boolean): void {
  if (signed) {
    const r = ((c.r8[0] << 24) >> 24) * ((src << 24) >> 24);
    c.r16[0] = r;
    mulFlags(c, r !== ((r << 24) >> 24), r, 8);
  } else {
    const r = c.r8[0] * (src & 0xff);
    c.r16[0] = r;
    mulFlags(c, (r & 0xff00) !== 0, r, 8);
  }
}

function mul16(c: CPU, src: number, signed: boolean): void {
  if (signed) {
    const r = ((c.r16[0] << 16) >> 16) * ((src << 16) >> 16);
    c.r16[0] = r;
    c.r16[EDX << 1] = r >> 16;
    mulFlags(c, r !== ((r << 16) >> 16), r, 16);
  } else {
    const r = c.r16[0] * (src & 0xffff);
    c.r16[0] = r;
    c.r16[EDX << 1] = r >>> 16;
    mulFlags(c, (r >>> 16) !== 0, r, 16);
  }
}

function mul32(c: CPU, src: number, signed: boolean): void {
  const a = c.r32[EAX];
  const lo = Math.imul(a, src);
  if (signed) {
    const hi = mulHighS(a, src);
    c.r32[EAX] = lo;
    c.r32[EDX] = hi;
    mulFlags(c, hi !== (lo >> 31), lo, 32);
  } else {
    const hi = mulHighU(a >>> 0, src >>> 0);
    c.r32[EAX] = lo;
    c.r32[EDX] = hi;
    mulFlags(c, hi !== 0, lo, 32);
  }
}

// ---- DIV / IDIV (group 3 /6 /7) ----
function div8(c: CPU, src: number, signed: boolean): void {
  if (signed) {
    const d = (src << 24) >> 24;
    if (d === 0) c.raise(DE, -1);
    const n = (c.r16[0] << 16) >> 16;
    const q = (n / d) | 0; // truncates toward zero
    if (q > 127 || q < -128) c.raise(DE, -1);
    c.r8[0] = q;
    c.r8[1] = n - q * d;
  } else {
    const d = src & 0xff;
    if (d === 0) c.raise(DE, -1);
    const n = c.r16[0];
    const q = Math.floor(n / d);
    if (q > 0xff) c.raise(DE, -1);
    c.r8[0] = q;
    c.r8[1] = n - q * d;
  }
}

function div16(c: CPU, src: number, signed: boolean): void {
  const n32 = (c.r16[EDX << 1] << 16) | c.r16[0];
  if (signed) {
    const d = (src << 16) >> 16;
    if (d === 0) c.raise(DE, -1);
    const q = Math.trunc(n32 / d);
    if (q > 32767 || q < -32768) c.raise(DE, -1);
    c.r16[0] = q;
    c.r16[EDX << 1] = n32 - q * d;
  } else {
    const d = src & 0xffff;
    if (d === 0) c.raise(DE, -1);
    const n = n32 >>> 0;
    const q = Math.floor(n / d);
    if (q > 0xffff) c.raise(DE, -1);
    c.r16[0] = q;
    c.r16[EDX << 1] = n - q * d;
  }
}

// Results of the last 64/32 division, to avoid allocating a tuple.
let quot = 0;
let rem = 0;

/** Unsigned 64/32 division hi:lo / d (all uint32 as numbers, d != 0). Returns false if the quotient
 *  does not fit in 32 bits. */
function divU64(hi: number, lo: number, d: number): boolean {
  if (hi >= d) return false;
  let x = hi * 65536 + (lo >>> 16);
  const q1 = Math.floor(x / d);
  let r = x - q1 * d;
  x = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(x / d);
  r = x - q0 * d;
  quot = q1 * 65536 + q0;
  rem = r;
  return true;
}

function div32(c: CPU, src: number, signed: boolean): void {
  if (!signed) {
    const d = src >>> 0;
    if (d === 0) c.raise(DE, -1);
    if (!divU64(c.r32[EDX] >>> 0, c.r32[EAX] >>> 0, d)) c.raise(DE, -1);
    c.r32[EAX] = quot | 0;
    c.r32[EDX] = rem | 0;
    return;
  }
  if (src === 0) c.raise(DE, -1);
  let hi = c.r32[EDX], lo = c.r32[EAX];
  const negN = hi < 0;
  if (negN) { // negate the 64-bit dividend
    lo = (~lo + 1) | 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) | 0;
  }
  const negD = src < 0;
  const d = negD ? (-src) >>> 0 : src >>> 0;
  if (!divU64(hi >>> 0, lo >>> 0, d)) c.raise(DE, -1);
  const negQ = negN !== negD;
  if (negQ ? quot > 0x80000000 : quot > 0x7fffffff) c.raise(DE, -1);
  c.r32[EAX] = negQ ? -quot | 0 : quot | 0;
  c.r32[EDX] = negN ? -rem | 0 : rem | 0;
}

type Fn = (c: CPU, src: number, signed: boolean) => void;
function group3(fn: Fn, signed: boolean, bits: number, mem: boolean) {
  return (c: CPU, k: number) => {
    let v: number;
    if (mem) v = bits === 8 ? c.read8(c.iSeg[k], c.ea(k)) : bits === 16 ? c.read16(c.iSeg[k], c.ea(k)) : c.read32(c.iSeg[k], c.ea(k));
    else v = bits === 8 ? c.r8[c.iRm[k]] : bits === 16 ? c.r16[c.iRm[k]] : c.r32[c.iRm[k]];
    fn(c, v, signed);
  };
}

/** MULDIV_OPS[op 0=MUL 1=IMUL 2=DIV 3=IDIV][size 0=b 1=w 2=d][mem] */
export const MULDIV_OPS: number[][][] = ['MUL', 'IMUL', 'DIV', 'IDIV'].map((name, i) =>
  [8, 16, 32].map((bits, si) =>
    [false, true].map((mem) => {
      const fn = i < 2 ? [mul8, mul16, mul32][si] : [div8, div16, div32][si];
      return defineOp(`${name}_E${'bwd'[si]}_${mem ? 'M' : 'R'}`, group3(fn, (i & 1) === 1, bits, mem));
    }),
  ),
);

// ---- IMUL Gv, Ev (0F AF) and IMUL Gv, Ev, imm (69, 6B): truncated product ----
function imul16(c: CPU, a: number, b: number): number {
  const r = ((a << 16) >> 16) * ((b << 16) >> 16);
  mulFlags(c, r !== ((r << 16) >> 16), r, 16);
  return r;
}

export function imul32(c: CPU, a: number, b: number): number {
  const lo = Math.imul(a, b);
  // The product fits in 32 bits exactly when the double product equals the low half: below 2^53 the
  // double is exact, and above it cannot equal a 32-bit value either. (No high half needed: a profile
  // of the benchmark had mulHighU and mulFlags at 3% of the time.)
  mulFlags(c, a * b !== lo, lo, 32);
  return lo;
}

export const IMUL_GwEw_R = defineOp('IMUL_GwEw_R', (c, k) => { const d = c.iReg[k]; c.r16[d] = imul16(c, c.r16[d], c.r16[c.iRm[k]]); });
export const IMUL_GwEw_M = defineOp('IMUL_GwEw_M', (c, k) => { const d = c.iReg[k]; c.r16[d] = imul16(c, c.r16[d], c.read16(c.iSeg[k], c.ea(k))); });
export const IMUL_GdEd_R = bodyOp('IMUL_GdEd_R');
export const IMUL_GdEd_M = bodyOp('IMUL_GdEd_M');
export const IMUL_GwEwI_R = defineOp('IMUL_GwEwI_R', (c, k) => { c.r16[c.iReg[k]] = imul16(c, c.r16[c.iRm[k]], c.iImm[k]); });
export const IMUL_GwEwI_M = defineOp('IMUL_GwEwI_M', (c, k) => { c.r16[c.iReg[k]] = imul16(c, c.read16(c.iSeg[k], c.ea(k)), c.iImm[k]); });
export const IMUL_GdEdI_R = defineOp('IMUL_GdEdI_R', (c, k) => { c.r32[c.iReg[k]] = imul32(c, c.r32[c.iRm[k]], c.iImm[k]); });
export const IMUL_GdEdI_M = defineOp('IMUL_GdEdI_M', (c, k) => { c.r32[c.iReg[k]] = imul32(c, c.read32(c.iSeg[k], c.ea(k)), c.iImm[k]); });

/**
 * The transcendental instructions (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1), computed in BigInt
 * fixed point with far more bits than the result has (a working precision of 200+ bits relative to the
 * result), then rounded once to the control word's precision and rounding mode. Results that are exact
 * (log2 of a power of two, 2^0 - 1, sin 0, ...) are produced exactly.
 */
import * as A from './arith.ts';
import * as SF from './softfloat.ts';
import { C_DEN, C_INF, C_QNAN, C_SNAN, C_UNSUP, C_ZERO, DE, IE, INDEF_SE, INDEF_SIG, J, PE, UE, ZE, bitLength, classify, lsbExp } from './softfloat.ts';
import type { FPU } from './fpu.ts';

// ---- fixed-point kernels: values are BigInt x with scale F (x / 2^F) ----------------------------------------

const piCache = new Map<number, bigint>();
const ln2Cache = new Map<number, bigint>();

/** atan(1/k) * 2^F for integer k > 1. */
function atanInv(k: bigint, F: bigint): bigint {
  let sum = 0n;
  let term = (1n << F) / k;
  const k2 = k * k;
  for (let n = 1n, sgn = 1n; term !== 0n; n += 2n, sgn = -sgn) {
    sum += (sgn * term) / n;
    term /= k2;
  }
  return sum;
}

function pi(F: number): bigint {
  let v = piCache.get(F);
  if (v === undefined) {
    const G = BigInt(F + 16);
    v = (16n * atanInv(5n, G) - 4n * atanInv(239n, G)) >> 16n;
    piCache.set(F, v);
  }
  return v;
}

function ln2(F: number): bigint {
  let v = ln2Cache.get(F);
  if (v === undefined) {
    // ln 2 = 2 atanh(1/3)
    const G = BigInt(F + 16);
    v = (2n * atanhInv(3n, G)) >> 16n;
    ln2Cache.set(F, v);
  }
  return v;
}

function atanhInv(k: bigint, F: bigint): bigint {
  let sum = 0n;
  let term = (1n << F) / k;
  const k2 = k * k;
  for (let n = 1n; term !== 0n; n += 2n) {
    sum += term / n;
    term /= k2;
  }
  return sum;
}

/** a * b at scale F, truncated toward zero (so series of alternating terms reach 0). */
function mulF(a: bigint, b: bigint, F: number): bigint {
  const p = a * b;
  return p < 0n ? -((-p) >> BigInt(F)) : p >> BigInt(F);
}

/** sin and cos of r (|r| <= ~1), scale F. */
function sinCosF(r: bigint, F: number): [bigint, bigint] {
  const one = 1n << BigInt(F);
  const r2 = mulF(r, r, F);
  let s = 0n, t = r;
  for (let n = 1n; t !== 0n; n += 2n) { s += t; t = -mulF(t, r2, F) / ((n + 1n) * (n + 2n)); }
  let c = 0n;
  t = one;
  for (let n = 0n; t !== 0n; n += 2n) { c += t; t = -mulF(t, r2, F) / ((n + 1n) * (n + 2n)); }
  return [s, c];
}

/** exp(r) - 1 for |r| <= 1, scale F. */
function expm1F(r: bigint, F: number): bigint {
  let s = 0n, t = r;
  for (let n = 2n; t !== 0n; n++) { s += t; t = mulF(t, r, F) / n; }
  return s;
}

/** atan(t) for |t| <= 1, scale F. */
function atanF(t: bigint, F: number): bigint {
  const one = 1n << BigInt(F);
  // halve the argument three times: atan t = 2 atan(t / (1 + sqrt(1 + t^2)))
  let k = 0;
  for (; k < 3; k++) {
    const s = SF.isqrt((one * one) + t * t); // sqrt(1 + t^2) at scale F
    t = (t << BigInt(F)) / (one + s);
  }
  const t2 = mulF(t, t, F);
  let sum = 0n, p = t;
  for (let n = 1n, sgn = 1n; p !== 0n; n += 2n, sgn = -sgn) { sum += (sgn * p) / n; p = mulF(p, t2, F); }
  return sum << BigInt(k);
}

/** ln(1 + x) for x > -1 given as an exact rational m * 2^e (m > 0 or < 0), scale F. Uses
 *  ln(1+x) = 2 atanh(x / (2 + x)) after splitting off powers of two for large arguments. */
function ln1pExact(m: bigint, e: number, F: number): bigint {
  // y = 1 + x as a rational num / 2^s
  const s = Math.max(0, -e);
  const num = (1n << BigInt(s)) + (e >= 0 ? m << BigInt(e) : m);
  // y = num * 2^-s; write y = y' * 2^k with y' in [0.75, 1.5)
  let k = bitLength(num) - 1 - s;
  let yn = num, ys = s + k; // y' = yn / 2^ys
  // adjust to [0.75, 1.5): if y' >= 1.5 use k+1
  if (ys >= 0) {
    if (yn * 2n >= 3n << BigInt(ys)) { k++; ys++; }
  } else {
    yn = yn >> BigInt(-ys); ys = 0; // huge: cannot happen with ys < 0 after the computation above
  }
  // z = (y' - 1) / (y' + 1)
  const den = yn + (1n << BigInt(ys));
  const numz = yn - (1n << BigInt(ys));
  const z = (numz << BigInt(F)) / den;
  const z2 = mulF(z, z, F);
  let sum = 0n, p = z;
  for (let n = 1n; p !== 0n; n += 2n) { sum += p / n; p = mulF(p, z2, F); }
  return 2n * sum + BigInt(k) * ln2(F);
}

// ---- helpers ------------------------------------------------------------------------------------------------

/** Round a fixed-point value v / 2^F (inexact: the true value lies strictly between v-1 and v+1, treated as
 *  just above |v|) to a register result. */
function roundFixed(v: bigint, F: number, fcw: number): number {
  const neg = v < 0n ? 1 : 0;
  if (neg) v = -v;
  SF.roundReg(neg, v, -F, true, fcw);
  A.setOut(SF.pSe, SF.pSig);
  return SF.rFlags | PE;
}

/** Round a value that is just below (toward zero from) the exact m * 2^e. */
function roundJustBelow(sign: number, m: bigint, e: number, fcw: number): number {
  const g = Math.max(8, 72 - bitLength(m));
  SF.roundReg(sign, (m << BigInt(g)) - 1n, e - g, true, fcw);
  A.setOut(SF.pSe, SF.pSig);
  return SF.rFlags | PE;
}

function roundExact(sign: number, m: bigint, e: number, fcw: number): number {
  SF.roundReg(sign, m, e, false, fcw);
  A.setOut(SF.pSe, SF.pSig);
  return SF.rFlags;
}

/** Fixed-point scale for an argument whose top bit is at 2^top: enough bits below the result's. */
function scaleFor(top: number): number {
  return 200 + Math.max(0, -top);
}

function toFixed(se: number, sig: bigint, F: number): bigint {
  const sh = lsbExp(se) + F;
  const v = sh >= 0 ? sig << BigInt(sh) : sig >> BigInt(-sh);
  return se & 0x8000 ? -v : v;
}

function topOf(se: number, sig: bigint): number { return lsbExp(se) + bitLength(sig) - 1; }

// ---- the instructions ---------------------------------------------------------------------------------------

export function transcendental(f: FPU, modrm: number): void {
  // the precision control applies to the basic arithmetic and FSQRT only: these round to 64 bits
  fcwOf = f.fcw | 0x300;
  switch (modrm) {
    case 0xfe: case 0xff: case 0xfb: case 0xf2: trig(f, modrm); return;
    case 0xf3: fpatan(f); return;
    case 0xf0: f2xm1(f); return;
    case 0xf1: case 0xf9: fyl2x(f, modrm === 0xf9); return;
  }
}

const TWO63 = 63;
let fcwOf = 0x37f;
/** pi as the reduction of FSIN/FCOS/FSINCOS/FPTAN uses it: rounded to PI_BITS significant bits. */
const PI_BITS = Number(process.env.PI_BITS ?? 66);
const PI_MODE = process.env.PI_MODE ?? 'nearest';
function reductionPi(F: number): bigint {
  const full = pi(F + 8);
  const drop = BigInt(F + 8 + 2 - PI_BITS);
  let q = full >> drop;
  if (PI_MODE === 'nearest' && ((full >> (drop - 1n)) & 1n)) q += 1n;
  return (q << drop) >> 8n;
}


function trig(f: FPU, modrm: number): void {
  const pushes = modrm === 0xfb || modrm === 0xf2;
  const fcw = fcwOf;
  f.status = f.status & ~0x400; // C2 ("out of range") cleared whatever happens next
  if (f.isEmpty(0)) {
    f.status = f.status & ~0x400;
    if (f.stackUnderflow()) { f.setSt(0, INDEF_SE, INDEF_SIG); if (pushes) f.push(INDEF_SE, INDEF_SIG); }
    return;
  }
  if (pushes && !f.isEmpty(7)) {
    f.status = f.status | IE | 0x40 | SF.C1;
    if (fcw & IE) { f.setSt(0, INDEF_SE, INDEF_SIG); f.push(INDEF_SE, INDEF_SIG); }
    return;
  }
  const se = f.stSe(0), sig = f.stSig(0);
  const c = classify(se, sig);
  const C2 = 0x400;
  f.status = f.status & ~C2;
  if (c === C_UNSUP || c === C_INF || c === C_SNAN || c === C_QNAN) {
    let rse = INDEF_SE, rsig = INDEF_SIG, fl = IE;
    if (c === C_QNAN || c === C_SNAN) { rse = se; rsig = sig | SF.QBIT; fl = c === C_SNAN ? IE : 0; }
    if (f.setFlags(fl)) return;
    f.status = f.status & ~SF.C1;
    f.setSt(0, rse, rsig);
    if (pushes) f.push(rse, rsig);
    return;
  }
  let fl = 0;
  if (c === C_DEN) { fl = DE; if (f.setFlags(DE)) return; }
  if (c !== C_ZERO && topOf(se, sig) >= TWO63) { f.status = f.status | C2; f.setFlags(fl); f.status = f.status & ~SF.C1; return; }
  const sign = se & 0x8000 ? 1 : 0;
  let sinSe = 0, sinSig = 0n, cosSe = 0, cosSig = 0n, sinF = 0, cosF = 0;
  if (c === C_ZERO) {
    sinSe = se; sinSig = 0n;
    cosSe = 0x3fff; cosSig = J;
  } else {
    const top = topOf(se, sig);
    const F = scaleFor(top) + 70;
    if (top < -40) {
      // tiny: sin x = x - x^3/6 (just below |x|), cos x = 1 - x^2/2 (just below 1), tan x just above |x|
      sinF = roundJustBelow(sign, sig, lsbExp(se), fcw); sinSe = A.oSe; sinSig = A.oSig;
      cosF = roundJustBelow(0, 1n, 0, fcw); cosSe = A.oSe; cosSig = A.oSig;
      if (modrm === 0xf2) {
        SF.roundReg(sign, sig, lsbExp(se), true, fcw);
        fl |= SF.rFlags | PE;
        finishTrig(f, modrm, fl, SF.pSe, SF.pSig, 0, 0n, 0, 0);
        return;
      }
    } else {
      const x = toFixed(se & 0x7fff, sig, F);
      const P = PI_BITS >= 1000 ? pi(F + 70) >> 70n : reductionPi(F);
      const half = P >> 1n;
      // reduce: x = k * (pi/2) + r with |r| <= pi/4
      let k = (x + (half >> 1n)) / half;
      let r = x - k * half;
      if (r > half >> 1n) { r -= half; k += 1n; }
      const [s, co] = sinCosF(r, F);
      const q = Number(k & 3n);
      let sv = [s, co, -s, -co][q], cv = [co, -s, -co, s][q];
      if (sign) sv = -sv;
      sinF = roundFixed(sv, F, fcw); sinSe = A.oSe; sinSig = A.oSig;
      cosF = roundFixed(cv, F, fcw); cosSe = A.oSe; cosSig = A.oSig;
      if (modrm === 0xf2) {
        // tan = sin / cos in fixed point
        const t = (sv << BigInt(F)) / cv;
        fl |= roundFixed(t, F, fcw);
        finishTrig(f, modrm, fl, A.oSe, A.oSig, 0, 0n, 0, 0);
        return;
      }
    }
  }
  if (modrm === 0xf2) { finishTrig(f, modrm, fl, sinSe, sinSig, 0, 0n, 0, 0); return; } // tan 0 = 0
  finishTrig(f, modrm, fl | (modrm === 0xff ? cosF : modrm === 0xfe ? sinF : ((sinF | cosF) & ~SF.C1) | (sinF & SF.C1)), sinSe, sinSig, cosSe, cosSig, sinF, cosF);
}

function finishTrig(f: FPU, modrm: number, fl: number, aSe: number, aSig: bigint, cSe: number, cSig: bigint, _sf: number, _cf: number): void {
  if (f.setFlags(fl)) return;
  switch (modrm) {
    case 0xfe: f.setSt(0, aSe, aSig); return;
    case 0xff: f.setSt(0, cSe, cSig); return;
    case 0xfb: f.setSt(0, aSe, aSig); f.push(cSe, cSig); return;
    case 0xf2: f.setSt(0, aSe, aSig); f.push(0x3fff, J); return;
  }
}

/** Two-operand specials: unsupported, NaN. Returns true when handled (result in A.o*, flags applied). */
function twoOpSpecial(f: FPU, aSe: number, aSig: bigint, ca: number, bSe: number, bSig: bigint, cb: number): boolean {
  if (ca === C_UNSUP || cb === C_UNSUP) {
    if (f.setFlags(IE)) return true;
    writePop(f, INDEF_SE, INDEF_SIG);
    return true;
  }
  if (A.isNaNCls(ca) || A.isNaNCls(cb)) {
    const fl = ca === C_SNAN || cb === C_SNAN ? IE : 0;
    if (f.setFlags(fl)) return true;
    A.nanResult(aSe, aSig, ca, bSe, bSig, cb);
    writePop(f, A.oSe, A.oSig);
    return true;
  }
  return false;
}

function writePop(f: FPU, se: number, sig: bigint): void {
  f.setSt(1, se, sig);
  f.pop();
}

function fpatan(f: FPU): void {
  const fcw = fcwOf;
  if (f.isEmpty(0) || f.isEmpty(1)) {
    if (f.stackUnderflow()) writePop(f, INDEF_SE, INDEF_SIG);
    return;
  }
  const xSe = f.stSe(0), xSig = f.stSig(0), ySe = f.stSe(1), ySig = f.stSig(1);
  const cx = classify(xSe, xSig), cy = classify(ySe, ySig);
  if (twoOpSpecial(f, xSe, xSig, cx, ySe, ySig, cy)) return;
  let fl = 0;
  if (cx === C_DEN || cy === C_DEN) { fl = DE; if (f.setFlags(DE)) return; }
  const ys = ySe & 0x8000 ? 1 : 0, xs = xSe & 0x8000 ? 1 : 0;
  const F = 256;
  const P = pi(F);
  let v: bigint | null = null;
  if (cy === C_ZERO) {
    if (!xs) { f.setFlags(fl); f.status = f.status & ~SF.C1; writePop(f, ySe & 0x8000, 0n); return; }
    v = P;
  } else if (cy === C_INF) {
    if (cx === C_INF) v = xs ? (3n * P) >> 2n : P >> 2n;
    else v = P >> 1n;
  } else if (cx === C_INF) {
    if (!xs) { f.setFlags(fl); f.status = f.status & ~SF.C1; writePop(f, ySe & 0x8000, 0n); return; }
    v = P;
  } else if (cx === C_ZERO) {
    v = P >> 1n;
  }
  if (v !== null) {
    fl |= roundFixed(ys ? -v : v, F, fcw);
    if (f.setFlags(fl)) return;
    writePop(f, A.oSe, A.oSig);
    return;
  }
  // both finite nonzero: atan2(|y|, |x|) then quadrant
  const ey = lsbExp(ySe), ex = lsbExp(xSe);
  const ty = topOf(ySe, ySig), tx = topOf(xSe, xSig);
  let r: bigint;
  let G = F;
  if (ty - tx < -60 && !xs) {
    // |y/x| tiny: atan(t) = t - t^3/3: just below t = y/x
    const k = 140 + bitLength(xSig);
    const num = ySig << BigInt(k);
    const q = num / xSig;
    SF.roundReg(ys, (q << 8n) - 1n, ey - ex - k - 8, true, fcw);
    A.setOut(SF.pSe, SF.pSig);
    fl |= SF.rFlags | PE;
    if (f.setFlags(fl)) return;
    writePop(f, A.oSe, A.oSig);
    return;
  }
  if (ty <= tx) {
    // t = |y|/|x| <= ~2: use atan directly when t <= 1, else pi/2 - atan(1/t)
    G = F + Math.min(400, Math.max(0, tx - ty)); // below 2^-400, atan t = t to every bit that matters
    const t = shiftDiv(ySig, ey, xSig, ex, G);
    r = t <= (1n << BigInt(G)) ? atanF(t, G) : (pi(G) >> 1n) - atanF(shiftDiv(xSig, ex, ySig, ey, G), G);
  } else {
    G = F;
    const t = shiftDiv(xSig, ex, ySig, ey, G);
    r = (pi(G) >> 1n) - atanF(t, G);
  }
  if (xs) r = pi(G) - r;
  fl |= roundFixed(ys ? -r : r, G, fcw);
  if (f.setFlags(fl)) return;
  writePop(f, A.oSe, A.oSig);
}

/** (a * 2^ea) / (b * 2^eb) at scale G. */
function shiftDiv(a: bigint, ea: number, b: bigint, eb: number, G: number): bigint {
  const sh = ea - eb + G;
  return sh >= 0 ? (a << BigInt(sh)) / b : a / (b << BigInt(-sh));
}

function f2xm1(f: FPU): void {
  const fcw = fcwOf;
  if (f.isEmpty(0)) { if (f.stackUnderflow()) f.setSt(0, INDEF_SE, INDEF_SIG); return; }
  const se = f.stSe(0), sig = f.stSig(0);
  const c = classify(se, sig);
  if (c === C_UNSUP) { if (f.setFlags(IE)) return; f.setSt(0, INDEF_SE, INDEF_SIG); return; }
  if (c === C_QNAN || c === C_SNAN) { if (f.setFlags(c === C_SNAN ? IE : 0)) return; f.setSt(0, se, sig | SF.QBIT); return; }
  if (c === C_ZERO) { f.setFlags(0); f.status = f.status & ~SF.C1; return; }
  if (c === C_INF) { f.setFlags(0); f.status = f.status & ~SF.C1; if (se & 0x8000) f.setSt(0, 0xbfff, J); return; }
  let fl = 0;
  if (c === C_DEN) { fl = DE; if (f.setFlags(DE)) return; }
  const sign = se & 0x8000 ? 1 : 0;
  const top = topOf(se, sig);
  // x = +-1: the hardware's result is inexact, just below 1 and just beyond -0.5
  if (top === 0 && sig === J) {
    if (sign) { A.setOut(0xbffe, J); fl |= PE; } // -0.5, inexact, not rounded up (in every mode)
    else fl |= roundJustBelow(0, 1n, 0, fcw);
    if (f.setFlags(fl)) return;
    f.setSt(0, A.oSe, A.oSig);
    return;
  }
  const F = scaleFor(top) + 70;
  const x = toFixed(se, sig, F);
  const r = mulF(x, ln2(F), F);
  const v = expm1F(r, F);
  fl |= roundFixed(v, F, fcw);
  if (f.setFlags(fl)) return;
  f.setSt(0, A.oSe, A.oSig);
}

function fyl2x(f: FPU, p1: boolean): void {
  const fcw = fcwOf;
  if (f.isEmpty(0) || f.isEmpty(1)) {
    if (f.stackUnderflow()) writePop(f, INDEF_SE, INDEF_SIG);
    return;
  }
  const xSe = f.stSe(0), xSig = f.stSig(0), ySe = f.stSe(1), ySig = f.stSig(1);
  const cx = classify(xSe, xSig), cy = classify(ySe, ySig);
  if (twoOpSpecial(f, xSe, xSig, cx, ySe, ySig, cy)) return;
  const xs = xSe & 0x8000 ? 1 : 0, ys = ySe & 0x8000 ? 1 : 0;
  const inv = () => { if (f.setFlags(IE | fl)) return; writePop(f, INDEF_SE, INDEF_SIG); };
  let fl = 0;
  if (cx === C_DEN || cy === C_DEN) {
    fl = DE;
    // invalid operands take precedence over the denormal
    const invalidX = p1 ? false : xs === 1 && cx !== C_ZERO;
    if (!p1 && cx === C_ZERO) fl = 0; // log2(0): the zero-divide, not the denormal y, is reported
    else if (!invalidX && f.setFlags(DE)) return;
  }
  if (!p1) {
    if (xs && cx !== C_ZERO) { inv(); return; }
    if (cx === C_ZERO) {
      if (cy === C_ZERO) { inv(); return; }
      // log2(0) = -inf: zero-divide unless y is infinite
      if (cy !== C_INF) { if (f.setFlags(ZE | fl)) return; }
      else f.setFlags(fl);
      writePop(f, (ys ? 0 : 0x8000) | 0x7fff, J);
      return;
    }
    if (cx === C_INF) {
      if (cy === C_ZERO) { inv(); return; }
      f.setFlags(fl); f.status = f.status & ~SF.C1;
      writePop(f, (ySe & 0x8000) | 0x7fff, J);
      return;
    }
    // x finite positive
    const ex = lsbExp(xSe);
    const isPow2 = (xSig & (xSig - 1n)) === 0n;
    const l2top = topOf(xSe, xSig); // log2 x when x is a power of two
    if (cy === C_INF) {
      if (isPow2 && l2top === 0) { inv(); return; }
      const neg = (l2top < 0) !== (ys === 1);
      f.setFlags(fl); f.status = f.status & ~SF.C1;
      writePop(f, (neg ? 0x8000 : 0) | 0x7fff, J);
      return;
    }
    if (cy === C_ZERO) {
      const lneg = l2top < 0;
      f.setFlags(fl); f.status = f.status & ~SF.C1;
      writePop(f, (isPow2 && l2top === 0) ? ySe & 0x8000 : ((lneg ? 1 : 0) ^ ys) ? 0x8000 : 0, 0n);
      return;
    }
    if (isPow2) {
      // exact: y * k
      const k = BigInt(l2top);
      // the result is exact, but the hardware reports it inexact all the same (not for log2(1) = 0)
      if (k === 0n) { f.setFlags(fl); f.status = f.status & ~SF.C1; writePop(f, ySe & 0x8000, 0n); return; }
      const neg = (k < 0n ? 1 : 0) ^ ys;
      fl |= roundExact(neg, ySig * (k < 0n ? -k : k), lsbExp(ySe), fcw) | PE;
      if (f.setFlags(fl)) return;
      writePop(f, A.oSe, A.oSig);
      return;
    }
    // general: y * ln(x) / ln 2, with x = m * 2^ex: ln x = ln1p(x - 1)
    const F = 256;
    const l = log2Of(xSig, ex, F);
    const yv = ySig; // y = ySig * 2^ey
    const prod = l * yv; // scale F, times 2^ey
    const neg = (prod < 0n ? 1 : 0) ^ ys;
    const mag = prod < 0n ? -prod : prod;
    SF.roundReg(neg, mag, lsbExp(ySe) - F, true, fcw);
    A.setOut(SF.pSe, SF.pSig);
    fl |= SF.rFlags | PE;
    if (f.setFlags(fl)) return;
    writePop(f, A.oSe, A.oSig);
    return;
  }
  // FYL2XP1: y * log2(1 + x)
  if (cx === C_ZERO) {
    if (cy === C_INF) { inv(); return; }
    f.setFlags(fl); f.status = f.status & ~SF.C1;
    writePop(f, ((xSe ^ ySe) & 0x8000), 0n);
    return;
  }
  if (cx === C_INF) {
    if (xs) { inv(); return; }
    if (cy === C_ZERO) { inv(); return; }
    f.setFlags(fl); writePop(f, (ySe & 0x8000) | 0x7fff, J);
    return;
  }
  if (cy === C_INF) {
    f.setFlags(fl); f.status = f.status & ~SF.C1;
    writePop(f, (((xs ^ ys) ? 0x8000 : 0)) | 0x7fff, J);
    return;
  }
  if (cy === C_ZERO) {
    f.setFlags(fl); f.status = f.status & ~SF.C1;
    writePop(f, (xSe ^ ySe) & 0x8000, 0n);
    return;
  }
  const top = topOf(xSe, xSig);
  const F = scaleFor(top) + 70;
  const ex = lsbExp(xSe);
  const l = ln1pExact(xs ? -xSig : xSig, ex, F); // ln(1 + x), scale F
  const l2 = (l << BigInt(F)) / ln2(F);
  const prod = l2 * ySig;
  const neg = (prod < 0n ? 1 : 0) ^ ys;
  SF.roundReg(neg, prod < 0n ? -prod : prod, lsbExp(ySe) - F, true, fcw);
  A.setOut(SF.pSe, SF.pSig);
  fl |= SF.rFlags | PE;
  if (f.setFlags(fl)) return;
  writePop(f, A.oSe, A.oSig);
}

/** log2(m * 2^e) at scale F for m * 2^e > 0 (not a power of two), as a signed BigInt. */
function log2Of(m: bigint, e: number, F: number): bigint {
  const n = bitLength(m);
  const k = e + n - 1; // x = (m / 2^(n-1)) * 2^k, mantissa in [1, 2)
  // ln(mantissa) = ln1p(mantissa - 1), mantissa - 1 = (m - 2^(n-1)) * 2^-(n-1)
  const frac = m - (1n << BigInt(n - 1));
  const G = F + 8;
  const l = frac === 0n ? 0n : ln1pExact(frac, -(n - 1), G);
  return ((l << BigInt(F)) / ln2(G)) + (BigInt(k) << BigInt(F));
}

export { UE, ZE };

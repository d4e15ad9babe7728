/**
 * The x87 operations on register values: special-operand rules (NaNs, infinities, zeros, unsupported
 * formats, denormals) and the exact computation handed to softfloat.round(). Each returns the exception
 * flags it raised (IE DE ZE OE UE PE, and C1 for "rounded up") and leaves the result in pSe/pSig, or
 * sets `noResult` when an unmasked IE/DE/ZE means the destination must stay as it was.
 */
import {
  BIAS, C1, C_DEN, C_INF, C_NORM, C_QNAN, C_SNAN, C_UNSUP, C_ZERO, DE, IE, INDEF_SE, INDEF_SIG, J, M64, QBIT, ZE,
  bitLength, classify, isqrt, lsbExp, roundReg,
} from './softfloat.ts';
import * as sf from './softfloat.ts';

export let oSe = 0;
export let oSig = 0n;
export let noResult = false;

function setIndef(): void { oSe = INDEF_SE; oSig = INDEF_SIG; }
function fromPack(): void { oSe = sf.pSe; oSig = sf.pSig; }

export const isNaNCls = (c: number) => c === C_QNAN || c === C_SNAN;

/** The NaN result of an operation with NaN operand(s) (x87 rules: an SNaN is quieted; of two NaNs the
 *  QNaN wins over the SNaN, else the larger significand). */
export function nanResult(aSe: number, aSig: bigint, ca: number, bSe: number, bSig: bigint, cb: number): void {
  let se: number, sig: bigint;
  if (isNaNCls(ca) && isNaNCls(cb)) {
    if (ca === C_QNAN && cb === C_SNAN) { se = aSe; sig = aSig; }
    else if (ca === C_SNAN && cb === C_QNAN) { se = bSe; sig = bSig; }
    else if ((aSig | QBIT) > (bSig | QBIT)) { se = aSe; sig = aSig; }
    else if ((aSig | QBIT) < (bSig | QBIT)) { se = bSe; sig = bSig; }
    else { se = aSe & bSe; sig = aSig; }
  } else if (isNaNCls(ca)) { se = aSe; sig = aSig; }
  else { se = bSe; sig = bSig; }
  oSe = se;
  oSig = sig | QBIT;
}

/** Check the unsupported/NaN/denormal operand rules shared by the arithmetic ops. Returns -1 when the
 *  operation must go on with finite/infinite/zero operands, else the flags (result set or noResult). */
function preCheck(aSe: number, aSig: bigint, ca: number, bSe: number, bSig: bigint, cb: number, fcw: number): number {
  noResult = false;
  if (ca === C_UNSUP || cb === C_UNSUP) return invalid(fcw);
  if (isNaNCls(ca) || isNaNCls(cb)) {
    const f = ca === C_SNAN || cb === C_SNAN ? IE : 0;
    if (f && (fcw & IE) === 0) { noResult = true; return f; }
    nanResult(aSe, aSig, ca, bSe, bSig, cb);
    return f;
  }
  return -1;
}

export function invalid(fcw: number): number {
  if ((fcw & IE) === 0) noResult = true;
  else setIndef();
  return IE;
}

function denCheck(ca: number, cb: number, fcw: number): number {
  if (ca === C_DEN || cb === C_DEN) {
    if ((fcw & DE) === 0) noResult = true;
    return DE;
  }
  return 0;
}

/** a + b (sub: a - b). */
export function add(aSe: number, aSig: bigint, bSe: number, bSig: bigint, sub: boolean, fcw: number): number {
  const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
  let f = preCheck(aSe, aSig, ca, bSe, bSig, cb, fcw);
  if (f >= 0) return f;
  if (sub) bSe ^= 0x8000;
  f = denCheck(ca, cb, fcw);
  if (noResult) return f;
  const sa = aSe & 0x8000, sb = bSe & 0x8000;
  if (ca === C_INF || cb === C_INF) {
    if (ca === C_INF && cb === C_INF && sa !== sb) return f | invalid(fcw);
    oSe = ca === C_INF ? aSe : bSe;
    oSig = J;
    return f;
  }
  const rc = (fcw >> 10) & 3;
  if (ca === C_ZERO && cb === C_ZERO) {
    oSe = sa === sb ? sa : rc === 1 ? 0x8000 : 0;
    oSig = 0n;
    return f;
  }
  if (ca === C_ZERO || cb === C_ZERO) {
    // x + 0 = x, rounded to the precision control
    const [se, sig] = ca === C_ZERO ? [bSe, bSig] : [aSe, aSig];
    roundReg(se & 0x8000 ? 1 : 0, sig, lsbExp(se), false, fcw);
    fromPack();
    return f | sf.rFlags;
  }
  let ea = lsbExp(aSe), eb = lsbExp(bSe);
  let ma = aSig, mb = bSig;
  // an operand far below the other only matters as a sticky nudge: keep it as one unit far down
  const topA = ea + bitLength(ma), topB = eb + bitLength(mb);
  if (topA - topB > 140) { mb = 1n; eb = topA - 140; }
  else if (topB - topA > 140) { ma = 1n; ea = topB - 140; }
  const e = Math.min(ea, eb);
  let va = ma << BigInt(ea - e), vb = mb << BigInt(eb - e);
  if (sa) va = -va;
  if (sb) vb = -vb;
  const s = va + vb;
  if (s === 0n) {
    oSe = rc === 1 ? 0x8000 : 0;
    oSig = 0n;
    return f;
  }
  const neg = s < 0n ? 1 : 0;
  roundReg(neg, neg ? -s : s, e, false, fcw);
  fromPack();
  return f | sf.rFlags;
}

export function mul(aSe: number, aSig: bigint, bSe: number, bSig: bigint, fcw: number): number {
  const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
  let f = preCheck(aSe, aSig, ca, bSe, bSig, cb, fcw);
  if (f >= 0) return f;
  f = denCheck(ca, cb, fcw);
  if (noResult) return f;
  const s = (aSe ^ bSe) & 0x8000;
  if (ca === C_INF || cb === C_INF) {
    if (ca === C_ZERO || cb === C_ZERO) return f | invalid(fcw);
    oSe = s | 0x7fff; oSig = J;
    return f;
  }
  if (ca === C_ZERO || cb === C_ZERO) { oSe = s; oSig = 0n; return f; }
  roundReg(s ? 1 : 0, aSig * bSig, lsbExp(aSe) + lsbExp(bSe), false, fcw);
  fromPack();
  return f | sf.rFlags;
}

export function div(aSe: number, aSig: bigint, bSe: number, bSig: bigint, fcw: number): number {
  const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
  let f = preCheck(aSe, aSig, ca, bSe, bSig, cb, fcw);
  if (f >= 0) return f;
  const s = (aSe ^ bSe) & 0x8000;
  if (ca === C_INF && cb === C_INF) return invalid(fcw);
  if (ca === C_ZERO && cb === C_ZERO) return invalid(fcw);
  f = denCheck(ca, cb, fcw);
  if (noResult) return f;
  if (ca === C_INF) { oSe = s | 0x7fff; oSig = J; return f; }
  if (cb === C_INF) { oSe = s; oSig = 0n; return f; }
  if (cb === C_ZERO) {
    if ((fcw & ZE) === 0) { noResult = true; return f | ZE; }
    oSe = s | 0x7fff; oSig = J;
    return f | ZE;
  }
  if (ca === C_ZERO) { oSe = s; oSig = 0n; return f; }
  const k = Math.max(0, 68 + bitLength(bSig) - bitLength(aSig));
  const num = aSig << BigInt(k);
  const q = num / bSig;
  const sticky = q * bSig !== num;
  roundReg(s ? 1 : 0, q, lsbExp(aSe) - lsbExp(bSe) - k, sticky, fcw);
  fromPack();
  return f | sf.rFlags;
}

export function sqrt(aSe: number, aSig: bigint, fcw: number): number {
  const ca = classify(aSe, aSig);
  noResult = false;
  if (ca === C_UNSUP) return invalid(fcw);
  if (isNaNCls(ca)) {
    if (ca === C_SNAN && (fcw & IE) === 0) { noResult = true; return IE; }
    oSe = aSe; oSig = aSig | QBIT;
    return ca === C_SNAN ? IE : 0;
  }
  if (ca === C_ZERO) { oSe = aSe; oSig = 0n; return 0; }
  if (aSe & 0x8000) return invalid(fcw);
  let f = 0;
  if (ca === C_DEN) {
    f = DE;
    if ((fcw & DE) === 0) { noResult = true; return f; }
  }
  if (ca === C_INF) { oSe = aSe; oSig = J; return f; }
  let e = lsbExp(aSe);
  let m = aSig;
  let sh = Math.max(0, 140 - bitLength(m));
  if ((e - sh) & 1) sh++;
  m <<= BigInt(sh);
  e -= sh;
  const r = isqrt(m);
  roundReg(0, r, e / 2, r * r !== m, fcw);
  fromPack();
  return f | sf.rFlags;
}

/** Compare a with b: 0 a>b, 1 a<b, 2 equal, 3 unordered; sets the flags in cmpFlags. quiet: QNaNs do not
 *  raise IE (FUCOM). */
export let cmpFlags = 0;
export function compare(aSe: number, aSig: bigint, bSe: number, bSig: bigint, quiet: boolean): number {
  const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
  cmpFlags = 0;
  if (ca === C_UNSUP || cb === C_UNSUP) { cmpFlags = IE; return 3; }
  if (isNaNCls(ca) || isNaNCls(cb)) {
    if (!quiet || ca === C_SNAN || cb === C_SNAN) cmpFlags = IE;
    return 3;
  }
  if (ca === C_DEN || cb === C_DEN) cmpFlags = DE;
  const c = cmpValues(aSe, aSig, ca, bSe, bSig, cb);
  return c;
}

function cmpValues(aSe: number, aSig: bigint, ca: number, bSe: number, bSig: bigint, cb: number): number {
  const za = ca === C_ZERO, zb = cb === C_ZERO;
  if (za && zb) return 2;
  const sa = aSe & 0x8000 ? -1 : 1, sb = bSe & 0x8000 ? -1 : 1;
  if (za) return sb > 0 ? 1 : 0;
  if (zb) return sa > 0 ? 0 : 1;
  if (sa !== sb) return sa > 0 ? 0 : 1;
  let mag: number; // magnitude comparison a vs b: 1 greater, -1 less, 0 equal
  if (ca === C_INF || cb === C_INF) mag = ca === cb ? 0 : ca === C_INF ? 1 : -1;
  else {
    const ea = lsbExp(aSe), eb = lsbExp(bSe);
    const ta = ea + bitLength(aSig), tb = eb + bitLength(bSig);
    if (ta !== tb) mag = ta > tb ? 1 : -1;
    else {
      const e = Math.min(ea, eb);
      const va = aSig << BigInt(ea - e), vb = bSig << BigInt(eb - e);
      mag = va === vb ? 0 : va > vb ? 1 : -1;
    }
  }
  if (mag === 0) return 2;
  return (mag > 0) === (sa > 0) ? 0 : 1;
}

// ---- conversions ------------------------------------------------------------------------------------------

/** Unpack an IEEE binary32/binary64 value (as sign, biased exponent, fraction) into oSe/oSig; returns the
 *  flags (IE for an SNaN, quieted when masked; DE for a denormal). */
export function loadIEEE(sign: number, exp: number, frac: bigint, fracBits: number, expMax: number, bias: number, fcw: number): number {
  noResult = false;
  const s = sign ? 0x8000 : 0;
  if (exp === expMax) {
    if (frac === 0n) { oSe = s | 0x7fff; oSig = J; return 0; }
    oSe = s | 0x7fff;
    oSig = J | (frac << BigInt(63 - fracBits));
    if ((oSig & QBIT) === 0n) {
      if ((fcw & IE) === 0) { noResult = true; return IE; }
      oSig |= QBIT;
      return IE;
    }
    return 0;
  }
  if (exp === 0) {
    if (frac === 0n) { oSe = s; oSig = 0n; return 0; }
    // a denormal loads (normalized) whether #D is masked or not
    const n = bitLength(frac);
    // value = frac * 2^(1 - bias - fracBits)
    const top = 1 - bias - fracBits + n - 1;
    oSe = s | (top + BIAS);
    oSig = frac << BigInt(64 - n);
    return DE;
  }
  oSe = s | (exp - bias + BIAS);
  oSig = J | (frac << BigInt(63 - fracBits));
  return 0;
}

/** An integer (BigInt, signed) as a register value. */
export function fromInt(v: bigint): void {
  if (v === 0n) { oSe = 0; oSig = 0n; return; }
  const s = v < 0n ? 0x8000 : 0;
  const m = v < 0n ? -v : v;
  const n = bitLength(m);
  oSe = s | (BIAS + n - 1);
  oSig = (m << BigInt(64 - n)) & M64;
}

/** Round a finite register value to an integer per rc: iMag (magnitude), flags PE and C1 in iFlags. */
export let iMag = 0n;
export let iFlags = 0;
export function toInt(se: number, sig: bigint, rc: number): void {
  iFlags = 0;
  const e = lsbExp(se);
  if (sig === 0n) { iMag = 0n; return; }
  if (e >= 0) { iMag = sig << BigInt(e); return; }
  const sh = BigInt(-e);
  const neg = (se & 0x8000) !== 0;
  let q = sh >= 200n ? 0n : sig >> sh;
  const rem = sh >= 200n ? sig : sig & ((1n << sh) - 1n);
  if (rem === 0n) { iMag = q; return; }
  let up = false;
  if (rc === 0) {
    if (sh >= 200n) up = false;
    else {
      const half = 1n << (sh - 1n);
      up = rem > half || (rem === half && (q & 1n) === 1n);
    }
  } else if (rc === 1) up = neg;
  else if (rc === 2) up = !neg;
  if (up) q += 1n;
  iMag = q;
  iFlags = sf.PE | (up ? C1 : 0);
}

/** Round a register value to an IEEE format for a store: returns the bits (BigInt) in oBits and the flags;
 *  noResult when an unmasked exception keeps the destination unchanged. */
export let oBits = 0n;
export function storeIEEE(se: number, sig: bigint, fracBits: number, expBits: number, fcw: number): number {
  noResult = false;
  const c = classify(se, sig);
  const signBit = (se & 0x8000 ? 1n : 0n) << BigInt(fracBits + expBits);
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const infBits = BigInt(expMax) << BigInt(fracBits);
  const qbit = 1n << BigInt(fracBits - 1);
  if (c === C_UNSUP) {
    if ((fcw & IE) === 0) { noResult = true; return IE; }
    oBits = (1n << BigInt(fracBits + expBits)) | infBits | qbit;
    return IE;
  }
  if (c === C_INF) { oBits = signBit | infBits; return 0; }
  if (c === C_ZERO) { oBits = signBit; return 0; }
  if (isNaNCls(c)) {
    const fr = (sig >> BigInt(63 - fracBits)) & ((1n << BigInt(fracBits)) - 1n);
    if (c === C_SNAN && (fcw & IE) === 0) { noResult = true; return IE; }
    oBits = signBit | infBits | fr | qbit;
    return c === C_SNAN ? IE : 0;
  }
  const p = fracBits + 1;
  const emin = 1 - bias;
  sf.round(se & 0x8000 ? 1 : 0, sig, lsbExp(se), false, p, emin, bias, emin - fracBits, (fcw >> 10) & 3,
    (fcw & sf.UE) !== 0, (fcw & sf.OE) !== 0, 0);
  let f = sf.rFlags;
  if ((f & sf.OE) !== 0 && (fcw & sf.OE) === 0) { noResult = true; return sf.OE; }
  if (sf.rTiny && (fcw & sf.UE) === 0) { noResult = true; return sf.UE | (f & C1 & 0); }
  if (c === C_DEN) f |= 0; // FST raises no #D
  if (sf.rInf) { oBits = signBit | infBits; return f; }
  const q = sf.rQ;
  if (q === 0n) { oBits = signBit; return f; }
  const n = bitLength(q);
  const top = sf.rLsb + n - 1;
  if (top < emin) {
    oBits = signBit | (q << BigInt(sf.rLsb - (emin - fracBits)));
    return f;
  }
  oBits = signBit | (BigInt(top + bias) << BigInt(fracBits)) | ((q << BigInt(p - n)) & ((1n << BigInt(fracBits)) - 1n));
  return f;
}

export { C_DEN, C_INF, C_NORM, C_QNAN, C_SNAN, C_UNSUP, C_ZERO, classify, lsbExp, bitLength, J, QBIT, BIAS };

/** For fpu.ts and trans.ts: set the shared result registers. */
export function setOut(se: number, sig: bigint): void { oSe = se; oSig = sig; }
export function setNoResult(v: boolean): void { noResult = v; }

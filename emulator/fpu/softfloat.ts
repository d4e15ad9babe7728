/**
 * 80-bit extended arithmetic, exact: every operation computes the exact result (or the exact result and a
 * "sticky" bit saying something nonzero lies below it) as a BigInt significand times a power of two, then
 * rounds once, to the precision control and rounding mode, with the x87's exponent range, denormals and
 * exception flags. Nothing here touches the FPU state; results and flags come back in module variables
 * (no allocation beyond the BigInts themselves).
 *
 * A register value is (se, sig): se = sign (bit 15) and biased exponent (bits 0-14), sig = the 64-bit
 * significand with the explicit integer bit J (bit 63).
 */

export const J = 1n << 63n;
export const QBIT = 1n << 62n;
export const M64 = (1n << 64n) - 1n;
export const BIAS = 16383;

// classes of a register value
export const C_ZERO = 0, C_NORM = 1, C_DEN = 2, C_INF = 3, C_QNAN = 4, C_SNAN = 5, C_UNSUP = 6;

// exception bits (as in the status word) and C1
export const IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, SF = 0x40, C1 = 0x200;

export const INDEF_SE = 0xffff;
export const INDEF_SIG = J | QBIT;

export function classify(se: number, sig: bigint): number {
  const e = se & 0x7fff;
  if (e === 0) return sig === 0n ? C_ZERO : C_DEN; // a pseudo-denormal (J set) is a denormal too
  if (e === 0x7fff) {
    if ((sig & J) === 0n) return C_UNSUP; // pseudo-infinity, pseudo-NaN
    if (sig === J) return C_INF;
    return (sig & QBIT) !== 0n ? C_QNAN : C_SNAN;
  }
  return (sig & J) !== 0n ? C_NORM : C_UNSUP; // unnormal
}

/** Exponent of the least significant bit of a finite register value's significand. */
export function lsbExp(se: number): number {
  const e = se & 0x7fff;
  return (e === 0 ? 1 : e) - BIAS - 63;
}

const f64 = new Float64Array(1);
const f64hi = new Uint32Array(f64.buffer);

/** Number of significant bits of m > 0: from the exponent of the nearest double (one BigInt shift to
 *  correct a round-up to the next power of two), so no string is built. */
export function bitLength(m: bigint): number {
  const d = Number(m);
  if (d < 4294967296) return 32 - Math.clz32(d);
  if (d !== Infinity) {
    f64[0] = d;
    let n = ((f64hi[1] >>> 20) & 0x7ff) - 1022;
    if ((m >> BigInt(n - 1)) === 0n) n--;
    return n;
  }
  const s = m.toString(16);
  const top = parseInt(s[0], 16);
  return (s.length - 1) * 4 + (top >= 8 ? 4 : top >= 4 ? 3 : top >= 2 ? 2 : 1);
}

// ---- rounding -------------------------------------------------------------------------------------------

/** Result of round(): significand q, value q * 2^rLsb; rFlags: PE UE OE and C1 (rounded up). rInf: the
 *  masked overflow response is an infinity (rMax: the largest finite of the precision). */
export let rQ = 0n;
export let rLsb = 0;
export let rFlags = 0;
export let rInf = false;
export let rMax = false;
export let rTiny = false;

/**
 * Round the exact value (-1)^sign * m * 2^e (plus something below it when sticky) to `p` significant bits
 * with exponent range [emin, emax] (denormals below emin down to a least bit of 2^(emin-p+1) for memory
 * formats, or `lsbMin` for register results), rounding mode rc (0 nearest, 1 down, 2 up, 3 toward zero).
 * `bias`: the bias adjustment of the unmasked underflow/overflow response for register destinations
 * (24576), or 0 when unmasked under/overflow leaves the destination alone (memory formats, checked by the
 * caller) or they are masked. `ueMasked`/`oeMasked` choose the responses.
 */
export function round(sign: number, m: bigint, e: number, sticky: boolean, p: number, emin: number, emax: number,
  lsbMin: number, rc: number, ueMasked: boolean, oeMasked: boolean, bias: number): void {
  rFlags = 0;
  rInf = false;
  rMax = false;
  rTiny = false;
  if (m === 0n) {
    if (!sticky) { rQ = 0n; rLsb = lsbMin; return; }
    // only an infinitesimal: treat as 1 far below the least bit
    m = 1n;
    e = lsbMin - 2;
    sticky = false;
  }
  let n = bitLength(m);
  let top = e + n - 1;
  let adjust = 0;
  if (top < emin) {
    rTiny = true;
    // unmasked: the bias-adjusted result, unless even that is out of range (then as if masked)
    if (!ueMasked && bias) {
      if (top + bias >= emin) { adjust = bias; e += bias; top += bias; }
      else { rQ = 0n; rLsb = lsbMin; rFlags = UE | PE; return; } // too small even for that: a zero
    }
  }
  let lsb = top - (p - 1);
  if (adjust === 0 && lsb < lsbMin) lsb = lsbMin;
  const shift = lsb - e;
  let q: bigint;
  let inexact = false;
  let up = false;
  if (shift <= 0) {
    q = m << BigInt(-shift);
    if (sticky) {
      inexact = true;
      up = (rc === 2 && sign === 0) || (rc === 1 && sign !== 0);
    }
  } else {
    const sh = BigInt(shift);
    q = m >> sh;
    const rem = m & ((1n << sh) - 1n);
    if (rem !== 0n || sticky) {
      inexact = true;
      if (rc === 0) {
        const half = 1n << (sh - 1n);
        up = rem > half || (rem === half && (sticky || (q & 1n) === 1n));
      } else if (rc === 1) up = sign !== 0;
      else if (rc === 2) up = sign === 0;
    }
  }
  if (up) {
    q += 1n;
    if (bitLength(q) > p) { q >>= 1n; lsb += 1; }
  }
  if (inexact) rFlags |= PE;
  if (up) rFlags |= C1;
  if (rTiny) {
    if (adjust || !ueMasked) rFlags |= UE;
    else if (inexact) rFlags |= UE;
  }
  const newTop = lsb + (q === 0n ? 0 : bitLength(q)) - 1;
  if (q !== 0n && newTop > emax) {
    if (!oeMasked && bias && newTop - bias <= emax) {
      rFlags |= OE;
      lsb -= bias;
    } else {
      rFlags |= OE | PE;
      if (!oeMasked && !bias) { rQ = q; rLsb = lsb; return; }
      // masked response: infinity or the largest finite, by rounding mode and sign
      const toInf = rc === 0 || (rc === 1 && sign !== 0) || (rc === 2 && sign === 0);
      rFlags &= ~C1;
      if (toInf) { rInf = true; rFlags |= C1; } else rMax = true;
      rQ = (1n << BigInt(p)) - 1n;
      rLsb = emax - (p - 1);
      return;
    }
  }
  rQ = q;
  rLsb = lsb;
}

/** Pack rQ/rLsb (after round() with register parameters) as a register value into pSe/pSig. */
export let pSe = 0;
export let pSig = 0n;
export function packReg(sign: number): void {
  const s = sign ? 0x8000 : 0;
  if (rInf) { pSe = s | 0x7fff; pSig = J; return; }
  if (rQ === 0n) { pSe = s; pSig = 0n; return; }
  const n = bitLength(rQ);
  const top = rLsb + n - 1;
  if (top < 1 - BIAS) {
    // denormal: value = sig * 2^(1 - BIAS - 63)
    pSe = s;
    pSig = rQ << BigInt(rLsb - (1 - BIAS - 63));
    return;
  }
  pSe = s | (top + BIAS);
  pSig = (rQ << BigInt(64 - n)) & M64;
}

/** Round an exact value to a register result with the control word's precision and rounding. */
export function roundReg(sign: number, m: bigint, e: number, sticky: boolean, fcw: number): void {
  const pc = (fcw >> 8) & 3;
  const p = pc === 0 ? 24 : pc === 2 ? 53 : 64;
  round(sign, m, e, sticky, p, 1 - BIAS, BIAS, 1 - BIAS - (p - 1), (fcw >> 10) & 3, (fcw & UE) !== 0, (fcw & OE) !== 0, 24576);
  packReg(sign);
}

// ---- integer square root ----------------------------------------------------------------------------------

export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

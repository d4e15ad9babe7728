/**
 * Decimal arithmetic: DAA, DAS, AAA, AAS, AAM, AAD, following the algorithms of the Intel SDM
 * instruction pages (undefined flags are computed the way the hardware of this project's test machine
 * does where the vectors show it; see test/vectors/README.md).
 */
import { AF, ARITH_FLAGS, CF, DE, OF, SF, ZF } from '../constants.ts';
import { PARITY } from '../flags.ts';
import { defineOp } from './registry.ts';

function szp8(v: number): number {
  v &= 0xff;
  return (v === 0 ? ZF : 0) | (v & 0x80 ? SF : 0) | PARITY[v];
}

export const DAA = defineOp('DAA', (c) => {
  const f = c.getEflags();
  const oldAl = c.r8[0];
  const oldCf = f & CF;
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    if (al + 6 > 0xff) cf = CF; // carry out of the low adjustment
    al = (al + 6) & 0xff;
    af = AF;
  }
  if (oldAl > 0x99 || oldCf !== 0) {
    al = (al + 0x60) & 0xff;
    cf = CF;
  }
  c.r8[0] = al;
  // OF is undefined; the hardware sets it as a signed overflow of the adjustment
  const of = (~oldAl & al & 0x80) !== 0 ? OF : 0;
  c.setArith((f & ~ARITH_FLAGS) | szp8(al) | cf | af | of);
});

export const DAS = defineOp('DAS', (c) => {
  const f = c.getEflags();
  const oldAl = c.r8[0];
  const oldCf = f & CF;
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    if (al < 6) cf = CF; // borrow out of the low adjustment
    al = (al - 6) & 0xff;
    af = AF;
  }
  if (oldAl > 0x99 || oldCf !== 0) {
    al = (al - 0x60) & 0xff;
    cf = CF;
  }
  c.r8[0] = al;
  const of = (oldAl & ~al & 0x80) !== 0 ? OF : 0;
  c.setArith((f & ~ARITH_FLAGS) | szp8(al) | cf | af | of);
});

export const AAA = defineOp('AAA', (c) => {
  const f = c.getEflags();
  let ax = c.r16[0];
  let fl = f & ~ARITH_FLAGS;
  if ((ax & 0x0f) > 9 || (f & AF) !== 0) {
    ax = (ax + 0x106) & 0xffff;
    fl |= AF | CF;
  }
  ax &= 0xff0f;
  c.r16[0] = ax;
  c.setArith(fl | szp8(ax));
});

export const AAS = defineOp('AAS', (c) => {
  const f = c.getEflags();
  let ax = c.r16[0];
  let fl = f & ~ARITH_FLAGS;
  if ((ax & 0x0f) > 9 || (f & AF) !== 0) {
    ax = (ax - 6) & 0xffff;
    ax = ((ax - 0x100) & 0xff00) | (ax & 0xff);
    fl |= AF | CF;
  }
  ax &= 0xff0f;
  c.r16[0] = ax;
  c.setArith(fl | szp8(ax));
});

export const AAM = defineOp('AAM', (c, k) => {
  const base = c.iImm[k] & 0xff;
  if (base === 0) c.raise(DE, -1);
  const al = c.r8[0];
  c.r8[1] = Math.floor(al / base);
  c.r8[0] = al % base;
  const f = c.getEflags();
  c.setArith((f & ~ARITH_FLAGS) | szp8(c.r8[0]));
});

export const AAD = defineOp('AAD', (c, k) => {
  const base = c.iImm[k] & 0xff;
  const a = c.r8[0], b = (c.r8[1] * base) & 0xff;
  const al = (a + b) & 0xff;
  c.r16[0] = al;
  // flags as an 8-bit ADD of AL and AH*base (undefined ones included, as the hardware computes them)
  const f = c.getEflags();
  const cf = a + b > 0xff ? CF : 0;
  const af = ((a ^ b ^ al) & 0x10) !== 0 ? AF : 0;
  const of = ((a ^ al) & (b ^ al) & 0x80) !== 0 ? OF : 0;
  c.setArith((f & ~ARITH_FLAGS) | szp8(al) | cf | af | of);
});

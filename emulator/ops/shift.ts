/**
 * Shifts and rotates: ROL ROR RCL RCR SHL SHR SAL SAR (group 2, iSub in encoding order) by 1, CL or an
 * immediate, and the double shifts SHLD/SHRD. The count is masked to 5 bits; a masked count of zero
 * changes nothing, not even the flags. Flags are computed eagerly here.
 */
import { AF, ARITH_FLAGS, CF, ECX, OF, PF, SF, ZF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { PARITY } from '../flags.ts';
import { OPS, opId } from '../optable.ts';
import { defineOp } from './registry.ts';

function szp(r: number, bits: number): number {
  const m = bits === 32 ? -1 : (1 << bits) - 1;
  const v = r & m;
  return (v === 0 ? ZF : 0) | ((v >>> (bits - 1)) & 1 ? SF : 0) | PARITY[v & 0xff];
}

/** Group-2 operation `op` on `v` (zero-extended to `bits`) by `count` (already masked to 5 bits, nonzero). */
export function shift(c: CPU, op: number, v: number, count: number, bits: number): number {
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const msb = bits - 1;
  v &= mask;
  let r: number, cf: number, of: number;
  switch (op) {
    case 0: { // ROL
      const f = c.getEflags();
      const n = count & msb;
      r = n === 0 ? v : ((v << n) | (v >>> (bits - n))) & mask;
      cf = r & 1;
      of = ((r >>> msb) & 1) ^ cf;
      c.setArith((f & ~(CF | OF)) | cf | (of ? OF : 0));
      return r;
    }
    case 1: { // ROR
      const f = c.getEflags();
      const n = count & msb;
      r = n === 0 ? v : ((v >>> n) | (v << (bits - n))) & mask;
      cf = (r >>> msb) & 1;
      of = cf ^ ((r >>> (msb - 1)) & 1);
      c.setArith((f & ~(CF | OF)) | cf | (of ? OF : 0));
      return r;
    }
    case 2: { // RCL through CF: rotate the (bits+1)-bit value CF:v
      const f = c.getEflags();
      const n = bits === 32 ? count : count % (bits + 1);
      if (n === 0) return v;
      let x = v, carry = f & CF;
      for (let i = 0; i < n; i++) {
        const out = (x >>> msb) & 1;
        x = ((x << 1) | carry) & mask;
        carry = out;
      }
      r = x;
      cf = carry;
      of = ((r >>> msb) & 1) ^ cf;
      c.setArith((f & ~(CF | OF)) | cf | (of ? OF : 0));
      return r;
    }
    case 3: { // RCR
      const f = c.getEflags();
      const n = bits === 32 ? count : count % (bits + 1);
      if (n === 0) return v;
      let x = v, carry = f & CF;
      of = ((v >>> msb) & 1) ^ carry;
      for (let i = 0; i < n; i++) {
        const out = x & 1;
        x = ((x >>> 1) | (carry << msb)) & mask;
        carry = out;
      }
      r = x;
      cf = carry;
      // OF is defined for 1-bit rotates; for larger counts hardware gives the same formula on the result
      of = ((r >>> msb) & 1) ^ ((r >>> (msb - 1)) & 1);
      c.setArith((f & ~(CF | OF)) | cf | (of ? OF : 0));
      return r;
    }
    case 4: case 6: { // SHL / SAL
      r = count >= 32 ? 0 : (v << count) & mask;
      cf = count <= bits ? (count === bits ? v & 1 : (v >>> (bits - count)) & 1) : 0;
      of = ((r >>> msb) & 1) ^ cf;
      break;
    }
    case 5: { // SHR
      r = count >= bits ? 0 : v >>> count;
      cf = count <= bits ? (v >>> (count - 1)) & 1 : 0;
      of = (v >>> msb) & 1;
      break;
    }
    default: { // SAR
      const sv = (v << (32 - bits)) >> (32 - bits);
      r = (sv >> Math.min(count, 31)) & mask;
      cf = (sv >> Math.min(count - 1, 31)) & 1;
      of = 0;
      break;
    }
  }
  // SF, ZF and PF stay lazy (from the sign-extended result); CF and OF are set here, AF is cleared
  c.flags = (c.flags & ~(CF | OF | AF)) | cf | (of ? OF : 0);
  c.lfRes = (r << (32 - bits)) >> (32 - bits);
  c.lfMask = SF | ZF | PF;
  return r;
}

function countOf(c: CPU, k: number, form: number): number {
  // form: 0 = by 1, 1 = by CL, 2 = by imm8
  return (form === 0 ? 1 : form === 1 ? c.r8[ECX << 2] : c.iImm[k]) & 0x1f;
}

function makeShiftR(bits: number, form: number) {
  return (c: CPU, k: number) => {
    const n = countOf(c, k, form);
    if (n === 0) return;
    const d = c.iRm[k];
    if (bits === 8) c.r8[d] = shift(c, c.iSub[k], c.r8[d], n, 8);
    else if (bits === 16) c.r16[d] = shift(c, c.iSub[k], c.r16[d], n, 16);
    else c.r32[d] = shift(c, c.iSub[k], c.r32[d], n, 32);
  };
}

function makeShiftM(bits: number, form: number) {
  return (c: CPU, k: number) => {
    const n = countOf(c, k, form);
    const s = c.iSeg[k], ea = c.ea(k);
    if (bits === 8) {
      const v = c.rmwRead8(s, ea);
      if (n !== 0) c.rmwWrite8(shift(c, c.iSub[k], v, n, 8));
    } else if (bits === 16) {
      const v = c.rmwRead16(s, ea);
      if (n !== 0) c.rmwWrite16(shift(c, c.iSub[k], v, n, 16));
    } else {
      const v = c.rmwRead32(s, ea);
      if (n !== 0) c.rmwWrite32(shift(c, c.iSub[k], v, n, 32));
    }
  };
}

const FORMS = ['1', 'CL', 'Ib'];
/** SHIFT_Ed1_R and SHIFT_EdIb_R have bodies in emulator/optable.ts (through sh32); the others are here. */
function defineOrBody(name: string, fn: (c: CPU, k: number) => void): number {
  const id = opId(name);
  return OPS[id].body !== undefined ? id : defineOp(name, fn);
}

/** SHL/SAL, SHR and SAR of a dword by a count of 1..31 with the flags written out (CF the last bit out, OF
 *  by the same formula for every count, AF cleared, SF/ZF/PF lazy from the result): what shift()
 *  computes for them, small enough to inline. Rotates go to shift(). */
export function sh32(c: CPU, sub: number, v: number, n: number): number {
  let r: number, cf: number, of: number;
  switch (sub) {
    case 4: case 6: r = (v << n) | 0; cf = (v >>> (32 - n)) & 1; of = (r >>> 31) ^ cf; break;
    case 5: r = (v >>> n) | 0; cf = (v >>> (n - 1)) & 1; of = v >>> 31; break;
    case 7: r = v >> n; cf = (v >> (n - 1)) & 1; of = 0; break;
    default: return shift(c, sub, v, n, 32);
  }
  c.flags = (c.flags & ~0x811) | cf | (of << 11);
  c.lfRes = r;
  c.lfMask = 0xc4;
  return r;
}
/** SHIFT_OPS[size][form][mem]: size 0=b,1=w,2=d; form 0=by 1, 1=by CL, 2=by imm8; mem 0=reg, 1=memory. */
export const SHIFT_OPS: number[][][] = [8, 16, 32].map((bits, si) =>
  FORMS.map((fname, form) => [
    defineOrBody(`SHIFT_E${'bwd'[si]}${fname}_R`, makeShiftR(bits, form)),
    defineOp(`SHIFT_E${'bwd'[si]}${fname}_M`, makeShiftM(bits, form)),
  ]),
);

// ---- SHLD / SHRD ----
function shld(c: CPU, dst: number, src: number, n: number, bits: number, left: boolean): number {
  const f = c.getEflags();
  let r: number, cf: number;
  if (bits === 32) {
    if (left) {
      r = ((dst << n) | (src >>> (32 - n))) | 0;
      cf = (dst >>> (32 - n)) & 1;
    } else {
      r = ((dst >>> n) | (src << (32 - n))) | 0;
      cf = (dst >>> (n - 1)) & 1;
    }
  } else {
    // 16-bit: the operands form the pattern dst:src:dst (counts above 16 are undefined by Intel; this is
    // what the hardware does)
    dst &= 0xffff;
    src &= 0xffff;
    if (left) {
      const hi = dst * 65536 + src; // 32-bit dst:src
      if (n <= 16) {
        r = ((hi * 2 ** n) / 65536) & 0xffff;
        cf = (dst >>> (16 - n)) & 1;
      } else {
        const m = n - 16;
        r = ((src << m) | (dst >>> (16 - m))) & 0xffff;
        cf = (src >>> (16 - m)) & 1;
      }
      r = Math.floor(r) & 0xffff;
    } else {
      if (n <= 16) {
        r = ((dst >>> n) | (src << (16 - n))) & 0xffff;
        cf = (dst >>> (n - 1)) & 1;
      } else {
        const m = n - 16;
        r = ((src >>> m) | (dst << (16 - m))) & 0xffff;
        cf = (src >>> (m - 1)) & 1;
      }
    }
  }
  const msb = bits - 1;
  const of = ((r >>> msb) & 1) ^ ((dst >>> msb) & 1);
  c.setArith((f & ~ARITH_FLAGS) | szp(r, bits) | cf | (of ? OF : 0));
  return r;
}

function makeShld(bits: number, byCl: boolean, left: boolean, mem: boolean) {
  return (c: CPU, k: number) => {
    const n = (byCl ? c.r8[ECX << 2] : c.iImm[k]) & 0x1f;
    const g = c.iReg[k];
    if (mem) {
      const s = c.iSeg[k], ea = c.ea(k);
      if (bits === 16) {
        const v = c.rmwRead16(s, ea);
        if (n !== 0) c.rmwWrite16(shld(c, v, c.r16[g], n, 16, left));
      } else {
        const v = c.rmwRead32(s, ea);
        if (n !== 0) c.rmwWrite32(shld(c, v, c.r32[g], n, 32, left));
      }
    } else if (n !== 0) {
      const d = c.iRm[k];
      if (bits === 16) c.r16[d] = shld(c, c.r16[d], c.r16[g], n, 16, left);
      else c.r32[d] = shld(c, c.r32[d], c.r32[g], n, 32, left);
    }
  };
}

/** SHLD_OPS[left?0:1][size 0=w,1=d][byCl][mem] */
export const SHLD_OPS: number[][][][] = [true, false].map((left) =>
  [16, 32].map((bits) =>
    [false, true].map((byCl) =>
      [false, true].map((mem) =>
        defineOp(`${left ? 'SHLD' : 'SHRD'}_E${bits === 16 ? 'wGw' : 'dGd'}${byCl ? 'CL' : 'Ib'}_${mem ? 'M' : 'R'}`,
          makeShld(bits, byCl, left, mem)),
      ),
    ),
  ),
);

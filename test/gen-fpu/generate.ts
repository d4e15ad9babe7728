// Generates the x87 test vectors test/vectors/fpu-*.json from this machine's CPU.
//
//   make -C test/gen-fpu && npx tsx test/gen-fpu/generate.ts [--seed N] [--scale X] [--out DIR] [--groups a,b]
//
// Each group builds cases (instruction bytes, integer registers, memory operand bytes and the whole x87
// state) from a PRNG seeded by --seed and the group's name, runs them through the native 64-bit oracle
// (harness.c) and writes what the CPU did in the x87 extension of the cpu-test format
// (docs/cpu-test-format-x87.md), one file per group, one vector per line.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../gen/rng.ts';

export const DEFAULT_SEED = 20261204;
const here = path.dirname(fileURLToPath(import.meta.url));

// ---- 80-bit values ------------------------------------------------------------------------------------

/** An 80-bit extended value: se = sign (bit 15) and biased exponent (bits 0-14), sig = 64-bit significand. */
export interface Ext { se: number; sig: bigint }
const M64 = (1n << 64n) - 1n;
const J = 1n << 63n;
const extHex = (x: Ext) => x.se.toString(16).padStart(4, '0') + x.sig.toString(16).padStart(16, '0');

function rnd64(r: Rng): bigint {
  return (BigInt(r.u32()) << 32n) | BigInt(r.u32());
}

/** A significand with J set: random, short (few significant bits, so results are often exact), or
 *  all-ones-ish (rounding carries). */
function normSig(r: Rng): bigint {
  const k = r.below(10);
  if (k < 5) return J | (rnd64(r) & (J - 1n));
  if (k < 8) {
    const bits = r.range(1, 24);
    return J | ((rnd64(r) >> BigInt(64 - bits)) << BigInt(64 - bits) & (J - 1n));
  }
  if (k === 8) return ((M64 ^ (BigInt(r.below(4)) << BigInt(r.below(64)))) & M64) | J;
  return J | (BigInt(r.below(8)) << BigInt(r.below(61)));
}

type Cls = 'zero' | 'norm' | 'small' | 'big' | 'denorm' | 'pden' | 'unnorm' | 'inf' | 'pinf' | 'qnan' | 'snan' | 'pnan' | 'indef' | 'int' | 'near1';
const CLS_W: [Cls, number][] = [
  ['norm', 40], ['near1', 8], ['int', 8], ['zero', 6], ['small', 4], ['big', 4], ['denorm', 5], ['pden', 2],
  ['unnorm', 2], ['inf', 5], ['pinf', 1], ['qnan', 4], ['snan', 4], ['pnan', 1], ['indef', 2],
];
const CLS_TOTAL = CLS_W.reduce((a, [, w]) => a + w, 0);

function pickCls(r: Rng, special: number): Cls {
  // special: 0..1, how much weight the non-normal classes get
  for (;;) {
    let w = r.below(CLS_TOTAL);
    for (const [c, cw] of CLS_W) {
      if ((w -= cw) < 0) {
        const plain = c === 'norm' || c === 'near1' || c === 'int';
        if (!plain && !r.chance(special)) break;
        return c;
      }
    }
  }
}

function extOf(r: Rng, cls: Cls, expLo = 0x3fff - 70, expHi = 0x3fff + 70): Ext {
  const s = r.chance(0.5) ? 0x8000 : 0;
  switch (cls) {
    case 'zero': return { se: s, sig: 0n };
    case 'norm': return { se: s | r.range(expLo, expHi), sig: normSig(r) };
    case 'near1': return { se: s | r.range(0x3ffe, 0x3fff), sig: r.chance(0.5) ? M64 - BigInt(r.below(1000)) : J + BigInt(r.below(1000)) };
    case 'int': {
      const v = BigInt(r.range(1, 1 << r.range(1, 30)));
      const e = v.toString(2).length - 1;
      return { se: s | (0x3fff + e), sig: (v << BigInt(63 - e)) & M64 };
    }
    case 'small': return { se: s | r.range(1, 200), sig: normSig(r) };
    case 'big': return { se: s | r.range(0x7ffe - 200, 0x7ffe), sig: normSig(r) };
    case 'denorm': return { se: s, sig: (rnd64(r) >> BigInt(r.below(63))) & (J - 1n) || 1n };
    case 'pden': return { se: s, sig: J | (rnd64(r) & (J - 1n)) };
    case 'unnorm': return { se: s | r.range(1, 0x7ffe), sig: (rnd64(r) >> BigInt(1 + r.below(62))) & (J - 1n) };
    case 'inf': return { se: s | 0x7fff, sig: J };
    case 'pinf': return { se: s | 0x7fff, sig: 0n };
    case 'qnan': return { se: s | 0x7fff, sig: J | (1n << 62n) | (rnd64(r) & ((1n << 62n) - 1n)) };
    case 'snan': return { se: s | 0x7fff, sig: J | ((rnd64(r) & ((1n << 62n) - 1n)) || 1n) };
    case 'pnan': return { se: s | 0x7fff, sig: (rnd64(r) & (J - 1n)) || 5n };
    case 'indef': return { se: 0xffff, sig: J | (1n << 62n) };
  }
}

/** Tag of a non-empty register from its contents: 0 valid, 1 zero, 2 special. */
function tagOf(x: Ext): number {
  const e = x.se & 0x7fff;
  if (e === 0) return x.sig === 0n ? 1 : 2;
  if (e === 0x7fff) return 2;
  return (x.sig & J) ? 0 : 2;
}

// ---- memory operand formats ------------------------------------------------------------------------------

function f32Bytes(r: Rng, special: number): number[] {
  const k = r.below(12);
  let v: number;
  const s = r.chance(0.5) ? 0x80000000 : 0;
  if (!r.chance(special) || k < 5) v = s | (r.range(127 - 40, 127 + 40) << 23) | (r.u32() & 0x7fffff);
  else if (k === 5) v = s;
  else if (k === 6) v = s | (r.u32() & 0x7fffff) || 1;
  else if (k === 7) v = s | 0x7f800000;
  else if (k === 8) v = s | 0x7fc00000 | (r.u32() & 0x3fffff);
  else if (k === 9) v = s | 0x7f800000 | ((r.u32() & 0x3fffff) || 1);
  else if (k === 10) v = s | (r.range(1, 254) << 23) | (r.u32() & 0x7fffff);
  else v = s | (r.pick([1, 254, 2, 253]) << 23) | (r.u32() & 0x7fffff);
  v >>>= 0;
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

function u64Bytes(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}

function f64Bytes(r: Rng, special: number): number[] {
  const k = r.below(12);
  const s = r.chance(0.5) ? 1n << 63n : 0n;
  const frac = rnd64(r) & ((1n << 52n) - 1n);
  let v: bigint;
  if (!r.chance(special) || k < 5) v = s | (BigInt(r.range(1023 - 60, 1023 + 60)) << 52n) | frac;
  else if (k === 5) v = s;
  else if (k === 6) v = s | (frac >> BigInt(r.below(52)) || 1n);
  else if (k === 7) v = s | (0x7ffn << 52n);
  else if (k === 8) v = s | (0x7ffn << 52n) | (1n << 51n) | frac;
  else if (k === 9) v = s | (0x7ffn << 52n) | ((frac & ((1n << 51n) - 1n)) || 1n);
  else if (k === 10) v = s | (BigInt(r.range(1, 2046)) << 52n) | frac;
  else v = s | (BigInt(r.pick([1, 2046, 2, 2045])) << 52n) | frac;
  return u64Bytes(v);
}

function f80Bytes(x: Ext): number[] {
  return [...u64Bytes(x.sig), x.se & 0xff, x.se >> 8];
}

function intBytes(r: Rng, bytes: 2 | 4 | 8): number[] {
  const bits = BigInt(bytes * 8);
  const k = r.below(6);
  let v: bigint;
  if (k === 0) v = BigInt(r.range(-20, 20));
  else if (k === 1) v = r.pick([0n, 1n, -1n, (1n << (bits - 1n)) - 1n, -(1n << (bits - 1n)), (1n << (bits - 1n)) - 2n]);
  else if (k === 2) v = BigInt(r.u32() | 0) >> BigInt(r.below(32));
  else v = rnd64(r) >> BigInt(r.below(Number(64n - bits) + 1) + Number(64n - bits));
  v = BigInt.asUintN(Number(bits), v);
  return u64Bytes(v).slice(0, bytes);
}

function bcdBytes(r: Rng): number[] {
  const n = r.range(0, 18);
  const out: number[] = [];
  const digits: number[] = [];
  for (let i = 0; i < 18; i++) digits.push(i < n ? r.below(10) : 0);
  for (let i = 0; i < 9; i++) out.push(digits[2 * i] | (digits[2 * i + 1] << 4));
  out.push(r.chance(0.5) ? 0x80 : 0);
  return out;
}

// ---- cases -----------------------------------------------------------------------------------------------

const CODE = 0x40000000;
const DATA = 0x50000000;
const DATA_SIZE = 0x2000;

interface Fpu { fcw: number; fsw: number; ftw: number; st: Ext[]; fip: number; fop: number; fdp: number }

interface Case {
  name: string;
  eip: number;
  code: number[];
  eax: number; ebx: number; esi: number; eflags: number;
  mem: Map<number, number>;
  fpu: Fpu;
  fswMask: number;
  /** Bytes of the memory image an FNSTENV/FNSAVE writes that hold CS/DS selectors (mode-dependent). */
  ramMask: number[];
  undefinedFpu: string[];
}

/** State knobs for one case. */
interface StateOpts {
  /** ST(i) that must be non-empty (with high probability; sometimes empty for stack underflow). */
  need?: number;
  /** Make ST(7) empty with high probability (pushes) — sometimes full (stack overflow). */
  push?: boolean;
  special?: number;
  /** Value generator for ST(0), ST(1). */
  v0?: (r: Rng) => Ext;
  v1?: (r: Rng) => Ext;
  unmask?: number;
}

function randomFcw(r: Rng, unmask: number): number {
  const pc = r.pick([0, 2, 3, 3, 3]);
  const rc = r.below(4);
  let masks = 0x3f;
  if (r.chance(unmask)) masks = r.chance(0.5) ? 0 : r.u32() & 0x3f;
  return 0x40 | (rc << 10) | (pc << 8) | masks;
}

function makeFpu(r: Rng, o: StateOpts): Fpu {
  const special = o.special ?? 0.35;
  const fcw = randomFcw(r, o.unmask ?? 0.25);
  const top = r.below(8);
  const st: Ext[] = [];
  const empty: boolean[] = [];
  for (let i = 0; i < 8; i++) {
    st.push(extOf(r, pickCls(r, special)));
    empty.push(r.chance(0.4));
  }
  const need = o.need ?? 0;
  for (let i = 0; i < need; i++) empty[i] = r.chance(0.04);
  if (o.push) empty[7] = !r.chance(0.05);
  if (o.v0) st[0] = o.v0(r);
  if (o.v1) st[1] = o.v1(r);
  // physical tag word
  let ftw = 0;
  for (let i = 0; i < 8; i++) {
    const phys = (top + i) & 7;
    ftw |= (empty[i] ? 3 : tagOf(st[i])) << (2 * phys);
  }
  // status: TOP, random condition codes, sticky flags only where masked (no exception pending)
  const cc = r.u32() & 0x4700;
  const sticky = r.chance(0.3) ? r.u32() & 0x7f & (fcw | 0x40) : 0;
  const fsw = (top << 11) | cc | sticky;
  return { fcw, fsw, ftw, st, fip: r.u32() >>> 0, fop: r.u32() & 0x7ff, fdp: r.u32() >>> 0 };
}

/** The 108-byte FRSTOR/FNSAVE image (32-bit protected-mode layout) of a state. */
function saveImage(f: Fpu): number[] {
  const b: number[] = [];
  const w32 = (v: number) => b.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  w32(f.fcw | 0xffff0000); w32(f.fsw | 0xffff0000); w32(f.ftw | 0xffff0000);
  w32(f.fip); w32((f.fop << 16) >>> 0); w32(f.fdp); w32(0xffff0000);
  for (const x of f.st) b.push(...f80Bytes(x));
  return b;
}

function parseImage(h: string): Fpu {
  const b = Buffer.from(h, 'hex');
  const st: Ext[] = [];
  for (let i = 0; i < 8; i++) {
    const o = 28 + 10 * i;
    st.push({ se: b.readUInt16LE(o + 8), sig: b.readBigUInt64LE(o) });
  }
  return { fcw: b.readUInt16LE(0), fsw: b.readUInt16LE(4), ftw: b.readUInt16LE(8), fip: b.readUInt32LE(12), fop: b.readUInt16LE(18) & 0x7ff, fdp: b.readUInt32LE(20), st };
}

// Memory operand encodings that mean the same in 32- and 64-bit mode: [ebx], [ebx+d8], [ebx+d32],
// [ebx+esi*s], [ebx+esi*s+d8], SIB absolute [d32]. Returns modrm.. bytes and sets ebx/esi.
function memOperand(r: Rng, c: Case, reg: number, addr: number): number[] {
  const k = r.below(6);
  const d32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  switch (k) {
    case 0: c.ebx = addr; return [(reg << 3) | 3];
    case 1: { const d = r.range(-128, 127); c.ebx = (addr - d) >>> 0; return [0x40 | (reg << 3) | 3, d & 0xff]; }
    case 2: { const d = r.range(-0x100000, 0x100000); c.ebx = (addr - d) >>> 0; return [0x80 | (reg << 3) | 3, ...d32(d)]; }
    case 3: { const s = r.below(4); c.esi = r.below(0x100); c.ebx = (addr - (c.esi << s)) >>> 0; return [(reg << 3) | 4, (s << 6) | (6 << 3) | 3]; }
    case 4: { const s = r.below(4); const d = r.range(-128, 127); c.esi = r.below(0x100); c.ebx = (addr - (c.esi << s) - d) >>> 0; return [0x40 | (reg << 3) | 4, (s << 6) | (6 << 3) | 3, d & 0xff]; }
    default: c.ebx = DATA + r.below(DATA_SIZE); return [(reg << 3) | 4, 0x25, ...d32(addr)];
  }
}

function newCase(r: Rng, name: string, o: StateOpts): Case {
  return {
    name, eip: CODE + r.below(0x800), code: [], eax: r.u32() >>> 0, ebx: DATA + r.below(DATA_SIZE), esi: 0,
    eflags: 0x202 | (r.u32() & 0x8d5), mem: new Map(), fpu: makeFpu(r, o), fswMask: 0xffff, ramMask: [],
    undefinedFpu: [],
  };
}

function operandAddr(r: Rng, size: number): number {
  if (r.chance(0.7)) return DATA + 16 * r.below((DATA_SIZE - 128) / 16);
  return DATA + r.below(DATA_SIZE - size - 1);
}

/** A memory-form case: opcode byte, reg field, the operand bytes. */
function memCase(r: Rng, name: string, op: number, reg: number, bytes: number[], o: StateOpts, prefix: number[] = []): Case {
  const c = newCase(r, name, o);
  const addr = operandAddr(r, bytes.length);
  c.code = [...prefix, op, ...memOperand(r, c, reg, addr)];
  bytes.forEach((b, i) => c.mem.set(addr + i, b));
  return c;
}

function regCase(r: Rng, name: string, bytes: number[], o: StateOpts): Case {
  const c = newCase(r, name, o);
  c.code = bytes;
  return c;
}

// C1 is defined (round-up / stack fault) by almost everything; C0 C2 C3 are undefined after most
// arithmetic (SDM: "undefined"). Masks per instruction class.
const U_C023 = 0xffff & ~0x4500;
const U_C03 = 0xffff & ~0x4100;
const U_ALL_C = 0xffff & ~0x4700;

type Gen = (r: Rng, n: number) => Case[];

function times<T>(n: number, f: (i: number) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(f(i));
  return out;
}

const ARITH = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];

/** ST(0)/ST(1) pairs that make interesting arithmetic: close values, exponents far apart, overflow and
 *  underflow ranges. */
function pairOpts(r: Rng): StateOpts {
  const k = r.below(8);
  if (k === 0) { // near-equal: cancellation
    return { need: 8, v0: (q) => extOf(q, 'norm'), v1: undefined };
  }
  if (k === 1) return { need: 8, v0: (q) => extOf(q, 'big'), v1: (q) => extOf(q, 'big') };
  if (k === 2) return { need: 8, v0: (q) => extOf(q, 'small'), v1: (q) => extOf(q, 'small') };
  if (k === 3) return { need: 8, v0: (q) => extOf(q, 'big'), v1: (q) => extOf(q, 'small') };
  if (k === 4) return { need: 8, v0: (q) => extOf(q, 'norm', 1, 0x7ffe), v1: (q) => extOf(q, 'norm', 1, 0x7ffe) };
  return { need: 8 };
}

function nearCopy(r: Rng, c: Case, i: number, j: number) {
  // make ST(j) a near copy of ST(i)
  const a = c.fpu.st[i];
  const d = BigInt(r.range(-3, 3)) << BigInt(r.below(60));
  let sig = (a.sig + d) & M64;
  if (!(sig & J)) sig = a.sig;
  c.fpu.st[j] = { se: r.chance(0.5) ? a.se : a.se ^ 0x8000, sig };
  fixTags(c.fpu);
}

function fixTags(f: Fpu) {
  const top = (f.fsw >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = (top + i) & 7;
    if (((f.ftw >> (2 * p)) & 3) !== 3) f.ftw = (f.ftw & ~(3 << (2 * p))) | (tagOf(f.st[i]) << (2 * p));
  }
}

/** Make ST(0) +- ST(j) an exact tie at the case's precision control: ST(0) gets a significand that fits
 *  the precision, ST(j) is half a unit in its last place (so round-to-nearest-even decides). */
function makeTie(r: Rng, c: Case, j: number) {
  const pc = (c.fpu.fcw >> 8) & 3;
  const p = pc === 0 ? 24 : pc === 2 ? 53 : 64;
  const a = extOf(r, 'norm', 0x3fff - 200, 0x3fff + 200);
  a.sig &= M64 ^ ((1n << BigInt(64 - p)) - 1n);
  const e = (a.se & 0x7fff) - p;
  c.fpu.st[0] = a;
  c.fpu.st[j] = { se: (r.chance(0.5) ? 0x8000 : 0) | e, sig: J };
  fixTags(c.fpu);
}

const genArith: Gen = (r, n) => {
  const out: Case[] = [];
  for (let op = 0; op < 8; op++) {
    const m = ARITH[op];
    if (op === 2 || op === 3) continue; // compares live in fpu-compare
    const mask = U_C023;
    out.push(...times(n, (i) => { const c = memCase(r, `${m} m32fp #${i}`, 0xd8, op, f32Bytes(r, 0.4), pairOpts(r)); c.fswMask = mask; return c; }));
    out.push(...times(n, (i) => { const c = memCase(r, `${m} m64fp #${i}`, 0xdc, op, f64Bytes(r, 0.4), pairOpts(r)); c.fswMask = mask; return c; }));
    out.push(...times(n / 2, (i) => { const c = memCase(r, `fi${m.slice(1)} m32int #${i}`, 0xda, op, intBytes(r, 4), { need: 1 }); c.fswMask = mask; return c; }));
    out.push(...times(n / 2, (i) => { const c = memCase(r, `fi${m.slice(1)} m16int #${i}`, 0xde, op, intBytes(r, 2), { need: 1 }); c.fswMask = mask; return c; }));
    out.push(...times(n, (i) => {
      const s = r.below(8);
      const c = regCase(r, `${m} st0,st${s} #${i}`, [0xd8, 0xc0 | (op << 3) | s], pairOpts(r));
      if (s && r.chance(0.2)) nearCopy(r, c, 0, s);
      else if (s && op !== 1 && op < 6 && r.chance(0.25)) makeTie(r, c, s);
      c.fswMask = mask; return c;
    }));
    // DC C0+ (op ^ 1 for sub/div: DC E0 = FSUBR ST(i),ST0? no: DC E0+i is FSUB ST(i),ST per the 387 encoding)
    out.push(...times(n, (i) => {
      const s = r.below(8);
      const name = ['fadd', 'fmul', '', '', 'fsubr', 'fsub', 'fdivr', 'fdiv'][op];
      const c = regCase(r, `${name} st${s},st0 (dc) #${i}`, [0xdc, 0xc0 | (op << 3) | s], pairOpts(r));
      if (s && r.chance(0.2)) nearCopy(r, c, 0, s);
      else if (s && op !== 1 && op < 6 && r.chance(0.25)) makeTie(r, c, s);
      c.fswMask = mask; return c;
    }));
    out.push(...times(n, (i) => {
      const s = r.below(8);
      const name = ['faddp', 'fmulp', '', '', 'fsubrp', 'fsubp', 'fdivrp', 'fdivp'][op];
      const c = regCase(r, `${name} st${s},st0 #${i}`, [0xde, 0xc0 | (op << 3) | s], pairOpts(r));
      if (s && r.chance(0.2)) nearCopy(r, c, 0, s);
      c.fswMask = mask; return c;
    }));
  }
  return out;
};

const genCompare: Gen = (r, n) => {
  const out: Case[] = [];
  const cmp = (c: Case) => { c.fswMask = 0xffff; if (r.chance(0.2)) nearCopy(r, c, 0, 1); return c; };
  for (const op of [2, 3]) {
    const m = ARITH[op];
    out.push(...times(n, (i) => memCase(r, `${m} m32fp #${i}`, 0xd8, op, f32Bytes(r, 0.5), { need: 1 })));
    out.push(...times(n, (i) => memCase(r, `${m} m64fp #${i}`, 0xdc, op, f64Bytes(r, 0.5), { need: 1 })));
    out.push(...times(n / 2, (i) => memCase(r, `fi${m.slice(1)} m32int #${i}`, 0xda, op, intBytes(r, 4), { need: 1 })));
    out.push(...times(n / 2, (i) => memCase(r, `fi${m.slice(1)} m16int #${i}`, 0xde, op, intBytes(r, 2), { need: 1 })));
    out.push(...times(n, (i) => { const s = r.below(8); return cmp(regCase(r, `${m} st${s} #${i}`, [0xd8, 0xc0 | (op << 3) | s], { need: 2, special: 0.5 })); }));
  }
  out.push(...times(n, (i) => cmp(regCase(r, `fcompp #${i}`, [0xde, 0xd9], { need: 2, special: 0.5 }))));
  out.push(...times(n, (i) => { const s = r.below(8); return cmp(regCase(r, `fucom st${s} #${i}`, [0xdd, 0xe0 | s], { need: 2, special: 0.5 })); }));
  out.push(...times(n, (i) => { const s = r.below(8); return cmp(regCase(r, `fucomp st${s} #${i}`, [0xdd, 0xe8 | s], { need: 2, special: 0.5 })); }));
  out.push(...times(n, (i) => cmp(regCase(r, `fucompp #${i}`, [0xda, 0xe9], { need: 2, special: 0.5 }))));
  for (const [nm, b0, b1] of [['fucomi', 0xdb, 0xe8], ['fcomi', 0xdb, 0xf0], ['fucomip', 0xdf, 0xe8], ['fcomip', 0xdf, 0xf0]] as const) {
    out.push(...times(n, (i) => { const s = r.below(8); return cmp(regCase(r, `${nm} st0,st${s} #${i}`, [b0, b1 | s], { need: 2, special: 0.5 })); }));
  }
  out.push(...times(n, (i) => cmp(regCase(r, `ftst #${i}`, [0xd9, 0xe4], { need: 1, special: 0.5 }))));
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fxam #${i}`, [0xd9, 0xe5], { need: 1, special: 0.7 }); return c; }));
  const CMOV = [['fcmovb', 0xda, 0xc0], ['fcmove', 0xda, 0xc8], ['fcmovbe', 0xda, 0xd0], ['fcmovu', 0xda, 0xd8],
    ['fcmovnb', 0xdb, 0xc0], ['fcmovne', 0xdb, 0xc8], ['fcmovnbe', 0xdb, 0xd0], ['fcmovnu', 0xdb, 0xd8]] as const;
  for (const [nm, b0, b1] of CMOV) {
    out.push(...times(n / 2, (i) => { const s = r.below(8); const c = regCase(r, `${nm} st0,st${s} #${i}`, [b0, b1 | s], { need: 8 }); c.fswMask = U_C023; return c; }));
  }
  return out;
};

const genLoadStore: Gen = (r, n) => {
  const out: Case[] = [];
  const ld = (c: Case) => { c.fswMask = U_C023; return c; };
  out.push(...times(n, (i) => ld(memCase(r, `fld m32fp #${i}`, 0xd9, 0, f32Bytes(r, 0.6), { push: true }))));
  out.push(...times(n, (i) => ld(memCase(r, `fld m64fp #${i}`, 0xdd, 0, f64Bytes(r, 0.6), { push: true }))));
  out.push(...times(n, (i) => ld(memCase(r, `fld m80fp #${i}`, 0xdb, 5, f80Bytes(extOf(r, pickCls(r, 0.6))), { push: true }))));
  out.push(...times(n, (i) => { const s = r.below(8); return ld(regCase(r, `fld st${s} #${i}`, [0xd9, 0xc0 | s], { push: true, need: 1 })); }));
  out.push(...times(n / 2, (i) => ld(memCase(r, `fild m16int #${i}`, 0xdf, 0, intBytes(r, 2), { push: true }))));
  out.push(...times(n / 2, (i) => ld(memCase(r, `fild m32int #${i}`, 0xdb, 0, intBytes(r, 4), { push: true }))));
  out.push(...times(n / 2, (i) => ld(memCase(r, `fild m64int #${i}`, 0xdf, 5, intBytes(r, 8), { push: true }))));
  out.push(...times(n / 2, (i) => ld(memCase(r, `fbld m80bcd #${i}`, 0xdf, 4, bcdBytes(r), { push: true }))));
  const junk = (k: number) => times(k, () => r.u8());
  const stVal = (q: Rng) => extOf(q, pickCls(q, 0.5), 0x3fff - 1100, 0x3fff + 1100);
  const intVal = (q: Rng) => extOf(q, pickCls(q, 0.3), 0x3fff - 3, 0x3fff + 66);
  for (const [nm, op, reg, size, v] of [
    ['fst m32fp', 0xd9, 2, 4, stVal], ['fstp m32fp', 0xd9, 3, 4, stVal], ['fst m64fp', 0xdd, 2, 8, stVal],
    ['fstp m64fp', 0xdd, 3, 8, stVal], ['fstp m80fp', 0xdb, 7, 10, stVal],
    ['fist m16int', 0xdf, 2, 2, intVal], ['fistp m16int', 0xdf, 3, 2, intVal], ['fist m32int', 0xdb, 2, 4, intVal],
    ['fistp m32int', 0xdb, 3, 4, intVal], ['fistp m64int', 0xdf, 7, 8, intVal], ['fbstp m80bcd', 0xdf, 6, 10, intVal],
  ] as const) {
    out.push(...times(n, (i) => ld(memCase(r, `${nm} #${i}`, op, reg, junk(size), { need: 1, v0: v }))));
  }
  for (const [nm, b1] of [['fst', 0xd0], ['fstp', 0xd8]] as const) {
    out.push(...times(n / 2, (i) => { const s = r.below(8); return ld(regCase(r, `${nm} st${s} #${i}`, [0xdd, b1 | s], { need: 1 })); }));
  }
  const CONSTS = ['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz'];
  CONSTS.forEach((nm, k) => out.push(...times(n / 2, (i) => ld(regCase(r, `${nm} #${i}`, [0xd9, 0xe8 + k], { push: true })))));
  out.push(...times(n, (i) => { const s = r.below(8); return ld(regCase(r, `fxch st${s} #${i}`, [0xd9, 0xc8 | s], { need: 2 })); }));
  out.push(...times(n / 2, (i) => ld(regCase(r, `fchs #${i}`, [0xd9, 0xe0], { need: 1 }))));
  out.push(...times(n / 2, (i) => ld(regCase(r, `fabs #${i}`, [0xd9, 0xe1], { need: 1 }))));
  out.push(...times(n / 2, (i) => { const s = r.below(8); return ld(regCase(r, `ffree st${s} #${i}`, [0xdd, 0xc0 | s], {})); }));
  return out;
};

const genMath: Gen = (r, n) => {
  const out: Case[] = [];
  const m = (c: Case) => { c.fswMask = U_C023; return c; };
  const wide = (q: Rng) => extOf(q, pickCls(q, 0.4), 0x3fff - 200, 0x3fff + 200);
  out.push(...times(2 * n, (i) => m(regCase(r, `fsqrt #${i}`, [0xd9, 0xfa], { need: 1, v0: (q) => { const x = wide(q); if (q.chance(0.8)) x.se &= 0x7fff; return x; } }))));
  out.push(...times(2 * n, (i) => m(regCase(r, `frndint #${i}`, [0xd9, 0xfc], { need: 1, v0: (q) => extOf(q, pickCls(q, 0.4), 0x3fff - 3, 0x3fff + 66) }))));
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fscale #${i}`, [0xd9, 0xfd], { need: 2, v0: wide, v1: (q) => q.chance(0.8) ? extOf(q, pickCls(q, 0.3), 0x3fff - 2, 0x3fff + 16) : wide(q) }); return m(c); }));
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fxtract #${i}`, [0xd9, 0xf4], { need: 1, push: true, v0: wide }); return m(c); }));
  for (const [nm, b1] of [['fprem', 0xf8], ['fprem1', 0xf5]] as const) {
    out.push(...times(2 * n, (i) => {
      const c = regCase(r, `${nm} #${i}`, [0xd9, b1], { need: 2, v0: (q) => extOf(q, pickCls(q, 0.3), 0x3fff - 10, 0x3fff + 120), v1: (q) => extOf(q, pickCls(q, 0.3), 0x3fff - 10, 0x3fff + 60) });
      c.fswMask = 0xffff; return c;
    }));
  }
  return out;
};

const genTrans: Gen = (r, n) => {
  const out: Case[] = [];
  const angle = (q: Rng): Ext => {
    const k = q.below(10);
    if (k < 6) return extOf(q, 'norm', 0x3fff - 8, 0x3fff + 3);
    if (k === 6) return extOf(q, 'norm', 0x3fff - 64, 0x3fff + 62);
    if (k === 7) return extOf(q, 'norm', 0x3fff + 63, 0x3fff + 70);
    return extOf(q, pickCls(q, 0.8));
  };
  const t = (c: Case) => { c.fswMask = U_C03; return c; };
  out.push(...times(2 * n, (i) => t(regCase(r, `fsin #${i}`, [0xd9, 0xfe], { need: 1, v0: angle }))));
  out.push(...times(2 * n, (i) => t(regCase(r, `fcos #${i}`, [0xd9, 0xff], { need: 1, v0: angle }))));
  out.push(...times(2 * n, (i) => t(regCase(r, `fsincos #${i}`, [0xd9, 0xfb], { need: 1, push: true, v0: angle }))));
  out.push(...times(2 * n, (i) => t(regCase(r, `fptan #${i}`, [0xd9, 0xf2], { need: 1, push: true, v0: angle }))));
  const any = (q: Rng) => extOf(q, pickCls(q, 0.3), 0x3fff - 40, 0x3fff + 40);
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fpatan #${i}`, [0xd9, 0xf3], { need: 2, v0: any, v1: any }); c.fswMask = U_C023; return c; }));
  const unit = (q: Rng): Ext => {
    const k = q.below(10);
    if (k < 7) return extOf(q, 'norm', 0x3fff - 30, 0x3ffe);
    if (k === 7) return { se: q.chance(0.5) ? 0xbfff : 0x3fff, sig: J };
    return extOf(q, q.pick(['zero', 'inf', 'qnan', 'snan', 'denorm', 'unnorm'] as Cls[]));
  };
  out.push(...times(2 * n, (i) => { const c = regCase(r, `f2xm1 #${i}`, [0xd9, 0xf0], { need: 1, v0: unit }); c.fswMask = U_C023; return c; }));
  const pos = (q: Rng): Ext => { const x = extOf(q, pickCls(q, 0.3), 0x3fff - 100, 0x3fff + 100); if (q.chance(0.85)) x.se &= 0x7fff; return x; };
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fyl2x #${i}`, [0xd9, 0xf1], { need: 2, v0: pos, v1: any }); c.fswMask = U_C023; return c; }));
  const small = (q: Rng): Ext => {
    const k = q.below(10);
    if (k < 8) { const x = extOf(q, 'norm', 0x3fff - 40, 0x3ffc); if (x.se & 0x7fff) x.sig = x.sig; return (x.se & 0x7fff) === 0x3ffc && x.sig > 0x95f619980c4336f7n ? { se: x.se, sig: J } : x; }
    return extOf(q, q.pick(['zero', 'inf', 'qnan', 'snan', 'denorm'] as Cls[]));
  };
  out.push(...times(2 * n, (i) => { const c = regCase(r, `fyl2xp1 #${i}`, [0xd9, 0xf9], { need: 2, v0: small, v1: any }); c.fswMask = U_C023; return c; }));
  return out;
};

function envImage(r: Rng, size16: boolean, full: boolean): number[] {
  const f = makeFpu(r, { special: 0.4, unmask: 0.3 });
  // keep the loaded state free of pending exceptions most of the time
  if (r.chance(0.8)) f.fsw &= ~0x80;
  const img = saveImage(f);
  if (!size16) return full ? img : img.slice(0, 28);
  // 16-bit protected-mode layout: 14-byte environment
  const w = [f.fcw, f.fsw, f.ftw, f.fip & 0xffff, 0, f.fdp & 0xffff, 0];
  const env: number[] = [];
  for (const v of w) env.push(v & 0xff, (v >>> 8) & 0xff);
  return full ? [...env, ...img.slice(28)] : env;
}

const genControl: Gen = (r, n) => {
  const out: Case[] = [];
  const cc = (c: Case) => c;
  out.push(...times(n, (i) => cc(regCase(r, `fninit #${i}`, [0xdb, 0xe3], {}))));
  out.push(...times(n, (i) => cc(regCase(r, `fnclex #${i}`, [0xdb, 0xe2], { unmask: 0.5 }))));
  out.push(...times(n, (i) => cc(regCase(r, `fincstp #${i}`, [0xd9, 0xf7], {}))));
  out.push(...times(n, (i) => cc(regCase(r, `fdecstp #${i}`, [0xd9, 0xf6], {}))));
  out.push(...times(n / 2, (i) => cc(regCase(r, `fnop #${i}`, [0xd9, 0xd0], {}))));
  out.push(...times(n / 2, (i) => cc(regCase(r, `fwait #${i}`, [0x9b], {}))));
  out.push(...times(n / 4, (i) => cc(regCase(r, `fneni (387: nop) #${i}`, [0xdb, 0xe0], {}))));
  out.push(...times(n / 4, (i) => cc(regCase(r, `fndisi (387: nop) #${i}`, [0xdb, 0xe1], {}))));
  out.push(...times(n / 4, (i) => cc(regCase(r, `fnsetpm (387: nop) #${i}`, [0xdb, 0xe4], {}))));
  out.push(...times(n, (i) => cc(regCase(r, `fnstsw ax #${i}`, [0xdf, 0xe0], {}))));
  out.push(...times(n, (i) => memCase(r, `fnstsw m16 #${i}`, 0xdd, 7, [r.u8(), r.u8()], {})));
  out.push(...times(n, (i) => memCase(r, `fnstcw m16 #${i}`, 0xd9, 7, [r.u8(), r.u8()], {})));
  out.push(...times(n, (i) => {
    const cw = r.chance(0.7) ? randomFcw(r, 0.5) : r.u32() & 0xffff;
    return memCase(r, `fldcw m16 #${i}`, 0xd9, 5, [cw & 0xff, cw >> 8], {});
  }));
  for (const o16 of [false, true]) {
    const pre = o16 ? [0x66] : [];
    const tag = o16 ? ' (o16)' : '';
    out.push(...times(n, (i) => memCase(r, `fldenv m${o16 ? 14 : 28}${tag} #${i}`, 0xd9, 4, envImage(r, o16, false), {}, pre)));
    out.push(...times(n, (i) => memCase(r, `frstor m${o16 ? 94 : 108}${tag} #${i}`, 0xdd, 4, envImage(r, o16, true), {}, pre)));
    out.push(...times(n, (i) => {
      const c = memCase(r, `fnstenv m${o16 ? 14 : 28}${tag} #${i}`, 0xd9, 6, times(o16 ? 14 : 28, () => r.u8()), {}, pre);
      return c;
    }));
    out.push(...times(n, (i) => memCase(r, `fnsave m${o16 ? 94 : 108}${tag} #${i}`, 0xdd, 6, times(o16 ? 94 : 108, () => r.u8()), {}, pre)));
  }
  return out;
};

/** Cases that start with an unmasked exception pending: waiting instructions take #MF, the FN ones run. */
const genPending: Gen = (r, n) => {
  const pend = (c: Case) => {
    const f = c.fpu;
    const unm = (~f.fcw & 0x3f) || 1;
    if ((~f.fcw & 0x3f) === 0) f.fcw &= ~1;
    const bit = unm & -unm;
    f.fsw |= bit | 0x8080;
    return c;
  };
  const forms: [string, number[]][] = [
    ['fwait', [0x9b]], ['fld1', [0xd9, 0xe8]], ['fadd st0,st1', [0xd8, 0xc1]], ['fnstsw ax', [0xdf, 0xe0]],
    ['fnclex', [0xdb, 0xe2]], ['fninit', [0xdb, 0xe3]], ['fxch st1', [0xd9, 0xc9]], ['fnop', [0xd9, 0xd0]],
    ['fsqrt', [0xd9, 0xfa]], ['fcomi st0,st1', [0xdb, 0xf1]], ['ffree st3', [0xdd, 0xc3]], ['fincstp', [0xd9, 0xf7]],
  ];
  const out: Case[] = [];
  for (const [nm, bytes] of forms) out.push(...times(n / 2, (i) => pend(regCase(r, `${nm} (pending) #${i}`, bytes, { need: 2, unmask: 1 }))));
  out.push(...times(n / 2, (i) => pend(memCase(r, `fnstcw m16 (pending) #${i}`, 0xd9, 7, [0, 0], { unmask: 1 }))));
  out.push(...times(n / 2, (i) => pend(memCase(r, `fldcw m16 (pending) #${i}`, 0xd9, 5, [0x7f, 0x03], { unmask: 1 }))));
  out.push(...times(n / 2, (i) => pend(memCase(r, `fnstenv m28 (pending) #${i}`, 0xd9, 6, times(28, () => 0), { unmask: 1 }))));
  out.push(...times(n / 2, (i) => pend(memCase(r, `fld m32fp (pending) #${i}`, 0xd9, 0, f32Bytes(r, 0.2), { unmask: 1 }))));
  out.push(...times(n / 2, (i) => pend(memCase(r, `fldenv m28 (pending) #${i}`, 0xd9, 4, envImage(r, false, false), { unmask: 1 }))));
  // reserved and undocumented encodings: whatever the CPU does (an alias or #UD) is the answer
  const odd: number[][] = [[0xd9, 0xd8], [0xdc, 0xd0], [0xdc, 0xd8], [0xdd, 0xc8], [0xde, 0xd0], [0xdf, 0xc0], [0xdf, 0xc8], [0xdf, 0xd0], [0xdf, 0xd8],
    [0xd9, 0xd1], [0xd9, 0xe2], [0xd9, 0xe6], [0xd9, 0xef], [0xda, 0xe8], [0xdb, 0xe5], [0xde, 0xd8], [0xdf, 0xe1]];
  for (const b of odd) {
    out.push(...times(n / 8, (i) => { const s = r.below(8); const bytes = [b[0], b[1] | ((b[1] & 7) === 0 ? s : 0)]; const c = regCase(r, `esc ${bytes.map((x) => x.toString(16)).join(' ')} #${i}`, bytes, { need: 2 }); c.fswMask = U_ALL_C; return c; }));
  }
  return out;
};

const GROUPS: Record<string, { gen: Gen; n: number }> = {
  arith: { gen: genArith, n: 140 },
  compare: { gen: genCompare, n: 140 },
  ldst: { gen: genLoadStore, n: 150 },
  math: { gen: genMath, n: 200 },
  trans: { gen: genTrans, n: 320 },
  control: { gen: genControl, n: 120 },
  pending: { gen: genPending, n: 80 },
};

// ---- running and writing ----------------------------------------------------------------------------------

const h = (v: number) => (v >>> 0).toString(16);
const hexBytes = (b: number[]) => b.map((x) => x.toString(16).padStart(2, '0')).join('');

function caseInput(c: Case): string {
  const lines = [`C ${h(c.eflags)} ${h(c.eax)} ${h(c.ebx)} ${h(c.esi)} ${h(c.eip)}`];
  lines.push(`F ${hexBytes(saveImage(c.fpu))}`);
  lines.push(`M ${h(c.eip)} ${hexBytes([...c.code, 0xc3])}`);
  const addrs = [...c.mem.keys()].sort((a, b) => a - b);
  for (let i = 0; i < addrs.length; ) {
    let j = i;
    while (j + 1 < addrs.length && addrs[j + 1] === addrs[j] + 1) j++;
    lines.push(`M ${h(addrs[i])} ${hexBytes(addrs.slice(i, j + 1).map((a) => c.mem.get(a)!))}`);
    i = j + 1;
  }
  lines.push('R');
  return lines.join('\n') + '\n';
}

function fpuJson(f: Fpu) {
  return { fcw: f.fcw, fsw: f.fsw, ftw: f.ftw, st: f.st.map(extHex), fip: f.fip >>> 0, fdp: f.fdp >>> 0, fop: f.fop };
}

const SIGILL = 4, SIGFPE = 8;

function toVector(c: Case, line: string): object | string {
  const f = line.trim().split(' ');
  const sig = Number(f[1]), trap = Number(f[2]);
  const eflags = parseInt(f[3], 16) >>> 0, rax = Number(BigInt('0x' + f[4]) & 0xffffffffn);
  const regs = (eax: number, eip: number, fl: number) => ({ eax, ebx: c.ebx, ecx: 0, edx: 0, esi: c.esi, edi: 0, ebp: 0, esp: 0x60001000, eip, eflags: fl });
  const initialRam: [number, number][] = c.code.map((b, i) => [c.eip + i, b]);
  const memAddrs = [...c.mem.keys()].sort((a, b) => a - b);
  for (const a of memAddrs) initialRam.push([a, c.mem.get(a)!]);
  const base = { name: c.name, initial: { regs: regs(c.eax, c.eip, c.eflags), ram: initialRam, fpu: fpuJson(c.fpu) } };
  if (sig) {
    if (sig !== SIGFPE && sig !== SIGILL) return `signal ${sig} trap ${trap}`;
    if (f.length > 6) return 'exception but memory changed';
    return { ...base, final: { regs: regs(c.eax, c.eip, c.eflags), ram: memAddrs.map((a) => [a, c.mem.get(a)!]), fpu: fpuJson(c.fpu) },
      exception: { vector: trap, eip: c.eip }, flags_mask: 0xcd5 };
  }
  const out = parseImage(f[5]);
  const fin = new Map<number, number>();
  for (const a of memAddrs) fin.set(a, c.mem.get(a)!);
  for (const d of f.slice(6)) { const [a, v] = d.split(':'); fin.set(parseInt(a, 16), parseInt(v, 16)); }
  const v: Record<string, unknown> = {
    ...base,
    final: { regs: regs(rax, (c.eip + c.code.length) >>> 0, (eflags & 0xcd5) | (c.eflags & ~0xcd5)), ram: [...fin.entries()].sort((a, b) => a[0] - b[0]), fpu: fpuJson(out) },
    exception: null,
    flags_mask: 0xcd5,
  };
  if (c.fswMask !== 0xffff) v.fsw_mask = c.fswMask;
  // FNSTENV/FNSAVE images hold the CS and DS selectors (and FOP's neighbours): mode-dependent, masked
  const isStore = c.code.length >= 2 && ((c.code[c.code.length - 1] !== undefined));
  const mIdx = c.code[0] === 0x66 ? 1 : 0;
  const opb = c.code[mIdx], modrm = c.code[mIdx + 1];
  if (isStore && modrm !== undefined && (modrm >> 6) !== 3 && ((opb === 0xd9 || opb === 0xdd) && ((modrm >> 3) & 7) === 6)) {
    const addr = memAddrs[0];
    const o16 = mIdx === 1;
    // 32-bit layout: FCS at +16 (2 bytes), FDS at +24 (2 bytes); 16-bit layout: FCS at +8, FDS at +12
    const sel = o16 ? [8, 9, 12, 13] : [16, 17, 24, 25];
    v.ram_mask = sel.map((k) => addr + k);
  }
  return v;
}

function main() {
  const argv = process.argv.slice(2);
  let seed = DEFAULT_SEED, scale = 1, out = path.resolve(here, '../vectors');
  let groups = Object.keys(GROUPS);
  const harness = path.resolve(here, 'harness');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seed') seed = Number(argv[++i]) >>> 0;
    else if (a === '--scale') scale = Number(argv[++i]);
    else if (a === '--out') out = path.resolve(argv[++i]);
    else if (a === '--groups') groups = argv[++i].split(',');
    else { console.error(`generate.ts: unknown option ${a}`); process.exit(2); }
  }
  if (!existsSync(harness)) { console.error('generate.ts: build the harness first: make -C test/gen-fpu'); process.exit(1); }
  mkdirSync(out, { recursive: true });
  let total = 0;
  for (const g of groups) {
    if (!GROUPS[g]) { console.error(`generate.ts: unknown group ${g}`); process.exit(2); }
    let hsh = 0x811c9dc5;
    for (const ch of g) hsh = Math.imul(hsh ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    const rng = new Rng((seed ^ hsh) >>> 0);
    const cases = GROUPS[g].gen(rng, Math.max(2, Math.round(GROUPS[g].n * scale)));
    const p = spawnSync(harness, [], { input: cases.map(caseInput).join(''), maxBuffer: 1 << 30, encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`harness failed (${p.status} ${p.signal}): ${p.stderr}`);
    const lines = p.stdout.split('\n').filter((l) => l.startsWith('S '));
    if (lines.length !== cases.length) throw new Error(`harness returned ${lines.length} results for ${cases.length} cases`);
    const vecs: string[] = [];
    let exc = 0;
    cases.forEach((c, i) => {
      const v = toVector(c, lines[i]);
      if (typeof v === 'string') { console.warn(`drop ${c.name}: ${v}`); return; }
      if ((v as { exception: unknown }).exception) exc++;
      // the SDM gives the transcendentals' accuracy, not their last bit: one ulp of tolerance
      else if (g === 'trans') (v as Record<string, unknown>).ulp_tolerance = 1;
      vecs.push(JSON.stringify(v));
    });
    writeFileSync(path.join(out, `fpu-${g}.json`), '[\n' + vecs.join(',\n') + '\n]\n');
    console.log(`fpu-${g}.json: ${vecs.length} vectors, ${exc} exceptions`);
    total += vecs.length;
  }
  console.log(`total ${total}`);
}

if (process.env.FPU_GEN_DUMP) { const g = process.env.FPU_GEN_DUMP; const rng = new Rng(1); for (const c of GROUPS[g].gen(rng, 4)) process.stdout.write(caseInput(c)); } else main();

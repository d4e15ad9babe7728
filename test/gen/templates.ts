// The instruction templates, one list of forms per vector group. A form has a name (mnemonic and
// operand form in the manual's notation), a base count, and an emitter that sets up the registers and
// memory it needs and appends the instruction bytes to the case. Flags the architecture leaves undefined
// (Intel SDM / AMD APM) are cleared from the case's flags mask by the emitter.

import {
  AC, AF, ARITH, CF, Case, CODE, DATA, DF, EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP, FULL, Gen, IF, Kind, LOW, MemOpts,
  NT, STACK, OF, PF, REG_NAMES, SEG_PREFIXES, SF, Size, ZF, le, signed8, signedN,
} from './case.ts';

export interface Form {
  name: string;
  n: number;
  emit: (g: Gen, c: Case) => void;
}

const F = (name: string, n: number, emit: (g: Gen, c: Case) => void): Form => ({ name, n, emit });
const KINDS: Kind[] = ['reg', 'mem'];
const VSIZES: Size[] = [16, 32];
const SIZES: Size[] = [8, 16, 32];
const sz = (s: Size) => (s === 8 ? 'b' : s === 16 ? 'w' : 'd');
const E = (s: Size) => (s === 8 ? 'Eb' : s === 16 ? 'Ew' : 'Ed');
const Gr = (s: Size) => (s === 8 ? 'Gb' : s === 16 ? 'Gw' : 'Gd');
const immBytes = (v: number, s: Size) => le(v, s / 8);

/** Materialise forms into finished cases. */
export function build(g: Gen, forms: Form[], scale: number, group: string): Case[] {
  const out: Case[] = [];
  for (const f of forms) {
    const n = Math.max(1, Math.round(f.n * scale));
    for (let i = 0; i < n; i++) {
      const c = g.begin(group, f.name);
      f.emit(g, c);
      out.push(g.finish(c));
    }
  }
  return out;
}

// ---- shared emitters ------------------------------------------------------------------------------

/** op r/m, reg (either direction: the encoding is the same). */
function emitEG(opc: number[], size: Size, kind: Kind, mask = FULL, lock = false, mo: MemOpts = {}) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    g.opsize(c, size);
    const r = g.regOperand(c, size);
    const e = g.rm(c, size, r, kind, mo);
    g.insn(c, [...opc, ...e]);
    c.mask &= mask;
  };
}

/** op r/m, imm (group opcodes with a /digit). */
function emitEI(opc: number[], digit: number, size: Size, kind: Kind, immSize: Size, mask = FULL, lock = false) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    g.opsize(c, size);
    const e = g.rm(c, size, digit, kind);
    g.insn(c, [...opc, ...e, ...immBytes(g.val(immSize), immSize)]);
    c.mask &= mask;
  };
}

/** op r/m (group opcodes with a /digit, no immediate). */
function emitE(opc: number[], digit: number, size: Size, kind: Kind, mask = FULL, lock = false, mo: MemOpts = {}) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    g.opsize(c, size);
    const e = g.rm(c, size, digit, kind, mo);
    g.insn(c, [...opc, ...e]);
    c.mask &= mask;
  };
}

// ---- alu --------------------------------------------------------------------------------------------

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const aluMask = (op: number) => (op === 1 || op === 4 || op === 6 ? FULL & ~AF : FULL);

export function aluForms(N = 20): Form[] {
  const out: Form[] = [];
  for (let op = 0; op < 8; op++) {
    const mn = ALU[op];
    const m = aluMask(op);
    const base = op * 8;
    for (const kind of KINDS) {
      out.push(F(`${mn} Eb,Gb ${kind}`, N, emitEG([base], 8, kind, m)));
      out.push(F(`${mn} Gb,Eb ${kind}`, N, emitEG([base + 2], 8, kind, m)));
      for (const s of VSIZES) {
        out.push(F(`${mn} ${E(s)},${Gr(s)} ${kind}`, N, emitEG([base + 1], s, kind, m)));
        out.push(F(`${mn} ${Gr(s)},${E(s)} ${kind}`, N, emitEG([base + 3], s, kind, m)));
        out.push(F(`${mn} ${E(s)},I${sz(s)} (81) ${kind}`, N, emitEI([0x81], op, s, kind, s, m)));
        out.push(F(`${mn} ${E(s)},Ib (83) ${kind}`, N, emitEI([0x83], op, s, kind, 8, m)));
      }
      out.push(F(`${mn} Eb,Ib (80) ${kind}`, N, emitEI([0x80], op, 8, kind, 8, m)));
      out.push(F(`${mn} Eb,Ib (82) ${kind}`, Math.ceil(N / 4), emitEI([0x82], op, 8, kind, 8, m)));
      if (op !== 7) {
        // lock prefix on the memory-destination forms
        if (kind === 'mem') {
          out.push(F(`lock ${mn} Eb,Gb mem`, N / 4, emitEG([base], 8, kind, m, true)));
          out.push(F(`lock ${mn} Ed,Gd mem`, N / 4, emitEG([base + 1], 32, kind, m, true)));
          out.push(F(`lock ${mn} Ew,Iw (81) mem`, N / 4, emitEI([0x81], op, 16, kind, 16, m, true)));
          out.push(F(`lock ${mn} Ed,Ib (83) mem`, N / 4, emitEI([0x83], op, 32, kind, 8, m, true)));
          out.push(F(`lock ${mn} Eb,Ib (80) mem`, N / 4, emitEI([0x80], op, 8, kind, 8, m, true)));
        }
      }
    }
    out.push(F(`${mn} AL,Ib`, N, (g, c) => {
      g.setPart(c, 8, EAX, g.val(8));
      g.insn(c, [base + 4, g.val(8)]);
      c.mask &= m;
    }));
    for (const s of VSIZES)
      out.push(F(`${mn} ${s === 16 ? 'AX' : 'EAX'},I${sz(s)}`, N, (g, c) => {
        g.opsize(c, s);
        g.setPart(c, s, EAX, g.val(s));
        g.insn(c, [base + 5, ...immBytes(g.val(s), s)]);
        c.mask &= m;
      }));
  }
  // test
  const tm = FULL & ~AF;
  for (const kind of KINDS) {
    out.push(F(`test Eb,Gb ${kind}`, N, emitEG([0x84], 8, kind, tm)));
    out.push(F(`test Eb,Ib (F6 /0) ${kind}`, N, emitEI([0xf6], 0, 8, kind, 8, tm)));
    for (const s of VSIZES) {
      out.push(F(`test ${E(s)},${Gr(s)} ${kind}`, N, emitEG([0x85], s, kind, tm)));
      out.push(F(`test ${E(s)},I${sz(s)} (F7 /0) ${kind}`, N, emitEI([0xf7], 0, s, kind, s, tm)));
    }
  }
  out.push(F('test AL,Ib', N, (g, c) => {
    g.setPart(c, 8, EAX, g.val(8));
    g.insn(c, [0xa8, g.val(8)]);
    c.mask &= tm;
  }));
  for (const s of VSIZES)
    out.push(F(`test eAX,I${sz(s)} (A9) o${s}`, N, (g, c) => {
      g.opsize(c, s);
      g.setPart(c, s, EAX, g.val(s));
      g.insn(c, [0xa9, ...immBytes(g.val(s), s)]);
      c.mask &= tm;
    }));
  // inc/dec
  for (const [mn, d] of [['inc', 0], ['dec', 1]] as const) {
    for (const s of VSIZES)
      out.push(F(`${mn} r${s} (${(0x40 + d * 8).toString(16)}+r)`, N * 2, (g, c) => {
        g.opsize(c, s);
        const r = g.regOperand(c, s);
        g.insn(c, [0x40 + d * 8 + r]);
      }));
    for (const kind of KINDS) {
      out.push(F(`${mn} Eb (FE /${d}) ${kind}`, N, emitE([0xfe], d, 8, kind)));
      for (const s of VSIZES) out.push(F(`${mn} ${E(s)} (FF /${d}) ${kind}`, N, emitE([0xff], d, s, kind)));
    }
    out.push(F(`lock ${mn} Eb mem`, N / 4, emitE([0xfe], d, 8, 'mem', FULL, true)));
    out.push(F(`lock ${mn} Ed mem`, N / 4, emitE([0xff], d, 32, 'mem', FULL, true)));
  }
  // neg/not
  for (const [mn, d] of [['not', 2], ['neg', 3]] as const) {
    for (const kind of KINDS)
      for (const s of SIZES) out.push(F(`${mn} ${E(s)} ${kind}`, N, emitE([s === 8 ? 0xf6 : 0xf7], d, s, kind)));
    out.push(F(`lock ${mn} Ed mem`, N / 4, emitE([0xf7], d, 32, 'mem', FULL, true)));
    out.push(F(`lock ${mn} Eb mem`, N / 4, emitE([0xf6], d, 8, 'mem', FULL, true)));
  }
  return out;
}

// ---- mov and friends --------------------------------------------------------------------------------

export function movForms(N = 30): Form[] {
  const out: Form[] = [];
  for (const kind of KINDS) {
    out.push(F(`mov Eb,Gb ${kind}`, N, emitEG([0x88], 8, kind)));
    out.push(F(`mov Gb,Eb ${kind}`, N, emitEG([0x8a], 8, kind)));
    out.push(F(`mov Eb,Ib (C6 /0) ${kind}`, N, emitEI([0xc6], 0, 8, kind, 8)));
    for (const s of VSIZES) {
      out.push(F(`mov ${E(s)},${Gr(s)} ${kind}`, N, emitEG([0x89], s, kind)));
      out.push(F(`mov ${Gr(s)},${E(s)} ${kind}`, N, emitEG([0x8b], s, kind)));
      out.push(F(`mov ${E(s)},I${sz(s)} (C7 /0) ${kind}`, N, emitEI([0xc7], 0, s, kind, s)));
      out.push(F(`movzx ${Gr(s)},Eb ${kind}`, N, movx([0x0f, 0xb6], s, 8, kind)));
      out.push(F(`movsx ${Gr(s)},Eb ${kind}`, N, movx([0x0f, 0xbe], s, 8, kind)));
      out.push(F(`xchg ${E(s)},${Gr(s)} ${kind}`, N, emitEG([0x87], s, kind)));
      out.push(F(`xadd ${E(s)},${Gr(s)} ${kind}`, N, emitEG([0x0f, 0xc1], s, kind)));
      out.push(F(`cmpxchg ${E(s)},${Gr(s)} ${kind}`, N, cmpxchg(s, kind, false)));
    }
    out.push(F(`movzx Gd,Ew ${kind}`, N, movx([0x0f, 0xb7], 32, 16, kind)));
    out.push(F(`movsx Gd,Ew ${kind}`, N, movx([0x0f, 0xbf], 32, 16, kind)));
    out.push(F(`movzx Gw,Ew ${kind}`, N / 4, movx([0x0f, 0xb7], 16, 16, kind)));
    out.push(F(`movsx Gw,Ew ${kind}`, N / 4, movx([0x0f, 0xbf], 16, 16, kind)));
    out.push(F(`xchg Eb,Gb ${kind}`, N, emitEG([0x86], 8, kind)));
    out.push(F(`xadd Eb,Gb ${kind}`, N, emitEG([0x0f, 0xc0], 8, kind)));
    out.push(F(`cmpxchg Eb,Gb ${kind}`, N, cmpxchg(8, kind, false)));
  }
  out.push(F('lock xchg Ed,Gd mem', N / 2, emitEG([0x87], 32, 'mem', FULL, true)));
  out.push(F('lock xchg Eb,Gb mem', N / 2, emitEG([0x86], 8, 'mem', FULL, true)));
  out.push(F('lock xadd Ed,Gd mem', N / 2, emitEG([0x0f, 0xc1], 32, 'mem', FULL, true)));
  out.push(F('lock xadd Ew,Gw mem', N / 2, emitEG([0x0f, 0xc1], 16, 'mem', FULL, true)));
  out.push(F('lock xadd Eb,Gb mem', N / 2, emitEG([0x0f, 0xc0], 8, 'mem', FULL, true)));
  out.push(F('lock cmpxchg Ed,Gd mem', N / 2, cmpxchg(32, 'mem', true)));
  out.push(F('lock cmpxchg Eb,Gb mem', N / 2, cmpxchg(8, 'mem', true)));
  out.push(F('cmpxchg8b Mq', N * 2, cmpxchg8b(false)));
  out.push(F('lock cmpxchg8b Mq', N / 2, cmpxchg8b(true)));
  // moffs
  for (const [op, s, dir] of [
    [0xa0, 8, 'AL,Ob'], [0xa1, 16, 'AX,Ow'], [0xa1, 32, 'EAX,Od'], [0xa2, 8, 'Ob,AL'], [0xa3, 16, 'Ow,AX'], [0xa3, 32, 'Od,EAX'],
  ] as [number, Size, string][]) {
    out.push(F(`mov ${dir} (moffs32)`, N, moffs(op, s, false)));
    out.push(F(`mov ${dir} (moffs16, a16)`, N / 2, moffs(op, s, true)));
  }
  // mov reg, imm
  out.push(F('mov r8,Ib (B0+r)', N * 2, (g, c) => {
    const r = g.pickReg(8);
    g.insn(c, [0xb0 + r, g.val(8)]);
  }));
  for (const s of VSIZES)
    out.push(F(`mov r${s},I${sz(s)} (B8+r)`, N * 2, (g, c) => {
      g.opsize(c, s);
      const r = g.pickReg(s, false);
      g.insn(c, [0xb8 + r, ...immBytes(g.val(s), s)]);
    }));
  // xchg eAX, r
  for (const s of VSIZES)
    out.push(F(`xchg eAX,r${s} (90+r)`, N * 2, (g, c) => {
      g.opsize(c, s);
      g.setPart(c, s, EAX, g.val(s));
      const r = 1 + g.rng.below(7);
      if (r !== ESP) g.setPart(c, s, r, g.val(s));
      g.insn(c, [0x90 + r]);
    }));
  // bswap
  out.push(F('bswap r32 (0F C8+r)', N * 2, (g, c) => {
    const r = g.regOperand(c, 32, false);
    g.insn(c, [0x0f, 0xc8 + r]);
  }));
  // lea: the address is computed, never accessed
  for (const s of VSIZES) {
    out.push(F(`lea ${Gr(s)},M a32`, N * 2, leaForm(s, false)));
    out.push(F(`lea ${Gr(s)},M a16`, N, leaForm(s, true)));
  }
  return out;
}

function movx(opc: number[], dsize: Size, ssize: Size, kind: Kind) {
  return (g: Gen, c: Case) => {
    g.opsize(c, dsize);
    const r = g.regOperand(c, dsize, false);
    const e = g.rm(c, ssize, r, kind);
    g.insn(c, [...opc, ...e]);
  };
}

function cmpxchg(s: Size, kind: Kind, lock: boolean) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    g.opsize(c, s);
    g.setPart(c, s, EAX, g.val(s));
    const r = g.regOperand(c, s);
    let e: number[];
    const equal = g.rng.chance(0.5);
    if (kind === 'reg') {
      const rm = g.pickReg(s, false);
      if (!equal) g.setPart(c, s, rm, g.val(s));
      else g.setPart(c, s, rm, g.part(c, s, EAX));
      e = [0xc0 | (r << 3) | rm];
    } else {
      const m = g.mem(c, s, r, { avoid: [EAX] });
      if (equal) g.put(c, m.addr, s / 8, g.part(c, s, EAX));
      e = m.bytes;
    }
    g.insn(c, [0x0f, s === 8 ? 0xb0 : 0xb1, ...e]);
  };
}

function cmpxchg8b(lock: boolean) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    const m = g.mem(c, 32, 1, { avoid: [EAX, EDX, ECX, EBX], bytes: 8 });
    if (g.rng.chance(0.5)) {
      g.setReg(c, EAX, g.get(c, m.addr, 4));
      g.setReg(c, EDX, g.get(c, m.addr + 4, 4));
    }
    g.insn(c, [0x0f, 0xc7, ...m.bytes]);
  };
}

function moffs(op: number, s: Size, a16: boolean) {
  return (g: Gen, c: Case) => {
    g.opsize(c, s);
    if (a16) c.pre.push(0x67);
    g.maybeSeg(c);
    const addr = a16 ? g.lowAddr() : g.dataAddr();
    g.fill(c, addr - 4, s / 8 + 8);
    g.put(c, addr, s / 8, g.val(s));
    g.insn(c, [op, ...le(addr, a16 ? 2 : 4)]);
  };
}

function leaForm(s: Size, a16: boolean) {
  return (g: Gen, c: Case) => {
    g.opsize(c, s);
    const r = g.pickReg(s, false);
    const m = g.mem(c, 32, r, { noAccess: true, addr16: a16, seg: false });
    g.insn(c, [0x8d, ...m.bytes]);
  };
}

// ---- shifts and rotates -----------------------------------------------------------------------------

const SHIFT = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
const COUNTS = [0, 1, 1, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 18, 24, 31, 32, 33, 63, 64, 255];

function shiftCount(g: Gen): number {
  return g.rng.chance(0.75) ? g.rng.pick(COUNTS) : g.rng.u8();
}

/** Flags left undefined by a shift/rotate of `size` by `count` (Intel SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR). */
export function shiftMask(op: number, size: Size, count: number): number {
  const c = count & 31;
  if (c === 0) return FULL;
  if (op < 4) return c === 1 ? FULL : FULL & ~OF;
  let m = FULL & ~AF;
  if (c !== 1) m &= ~OF;
  if (op !== 7 && c >= size) m &= ~CF;
  return m;
}

export function shiftForms(N = 16): Form[] {
  const out: Form[] = [];
  for (let op = 0; op < 8; op++) {
    const mn = SHIFT[op];
    for (const kind of KINDS)
      for (const s of SIZES) {
        const o8 = s === 8 ? 0 : 1;
        out.push(F(`${mn} ${E(s)},1 ${kind}`, N, (g, c) => {
          g.opsize(c, s);
          const e = g.rm(c, s, op, kind);
          g.insn(c, [0xd0 + o8, ...e]);
          c.mask &= shiftMask(op, s, 1);
        }));
        out.push(F(`${mn} ${E(s)},CL ${kind}`, N * 2, (g, c) => {
          g.opsize(c, s);
          const count = shiftCount(g);
          g.setPart(c, 8, ECX, count);
          const e = g.rm(c, s, op, kind, { avoid: [ECX] });
          if (kind === 'reg' && (e[0] & 7) === ECX) g.setPart(c, 8, ECX, count); // rm = cl/cx/ecx: keep the count
          const cnt = g.part(c, 8, ECX);
          g.insn(c, [0xd2 + o8, ...e]);
          c.mask &= shiftMask(op, s, cnt);
        }));
        out.push(F(`${mn} ${E(s)},Ib ${kind}`, N * 2, (g, c) => {
          g.opsize(c, s);
          const count = shiftCount(g);
          const e = g.rm(c, s, op, kind);
          g.insn(c, [0xc0 + o8, ...e, count]);
          c.mask &= shiftMask(op, s, count);
        }));
      }
  }
  // shld/shrd
  for (const [mn, base] of [['shld', 0xa4], ['shrd', 0xac]] as const)
    for (const kind of KINDS)
      for (const s of VSIZES) {
        out.push(F(`${mn} ${E(s)},${Gr(s)},Ib ${kind}`, N * 2, (g, c) => {
          g.opsize(c, s);
          let count = shiftCount(g);
          if (kind === 'mem' && s === 16 && (count & 31) > 16) count &= 15;
          const r = g.regOperand(c, s);
          const e = g.rm(c, s, r, kind);
          g.insn(c, [0x0f, base, ...e, count]);
          shldMask(c, s, count, kind, e);
        }));
        out.push(F(`${mn} ${E(s)},${Gr(s)},CL ${kind}`, N * 2, (g, c) => {
          g.opsize(c, s);
          let count = shiftCount(g);
          if (kind === 'mem' && s === 16 && (count & 31) > 16) count &= 15;
          const r = g.regOperand(c, s);
          g.setPart(c, 8, ECX, count);
          const e = g.rm(c, s, r, kind, { avoid: [ECX] });
          if (kind === 'reg' && (e[0] & 7) === ECX) g.setPart(c, s, ECX, count); // destination is ecx too
          let cnt = g.part(c, 8, ECX);
          if (kind === 'mem' && s === 16 && (cnt & 31) > 16) {
            g.setPart(c, 8, ECX, cnt & 15); // register was the source operand: keep memory forms defined
            cnt = g.part(c, 8, ECX);
          }
          g.insn(c, [0x0f, base + 1, ...e]);
          shldMask(c, s, cnt, kind, e);
        }));
      }
  return out;
}

function shldMask(c: Case, s: Size, count: number, kind: Kind, e: number[]): void {
  const n = count & 31;
  if (n === 0) return;
  c.mask &= FULL & ~AF;
  if (n !== 1) c.mask &= ~OF;
  if (n > s) {
    // count greater than the operand size: result and flags undefined
    c.mask &= ~ARITH;
    if (kind === 'reg') c.undefinedRegs.add(REG_NAMES[e[0] & 7]);
  }
}

// ---- mul/div ----------------------------------------------------------------------------------------

const MULMASK = FULL & ~(SF | ZF | AF | PF);

export function muldivForms(N = 20): Form[] {
  const out: Form[] = [];
  for (const kind of KINDS)
    for (const s of SIZES) {
      const opc = s === 8 ? 0xf6 : 0xf7;
      out.push(F(`mul ${E(s)} ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        g.setPart(c, s, EAX, g.val(s));
        g.insn(c, [opc, ...g.rm(c, s, 4, kind)]);
        c.mask &= MULMASK;
      }));
      out.push(F(`imul ${E(s)} ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        g.setPart(c, s, EAX, g.val(s));
        g.insn(c, [opc, ...g.rm(c, s, 5, kind)]);
        c.mask &= MULMASK;
      }));
      out.push(F(`div ${E(s)} ${kind}`, N * 3, divForm(s, kind, false)));
      out.push(F(`idiv ${E(s)} ${kind}`, N * 3, divForm(s, kind, true)));
    }
  for (const kind of KINDS)
    for (const s of VSIZES) {
      out.push(F(`imul ${Gr(s)},${E(s)} (0F AF) ${kind}`, N * 2, (g, c) => {
        emitEG([0x0f, 0xaf], s, kind, MULMASK)(g, c);
      }));
      out.push(F(`imul ${Gr(s)},${E(s)},I${sz(s)} (69) ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        const r = g.pickReg(s, false);
        const e = g.rm(c, s, r, kind);
        g.insn(c, [0x69, ...e, ...immBytes(g.val(s), s)]);
        c.mask &= MULMASK;
      }));
      out.push(F(`imul ${Gr(s)},${E(s)},Ib (6B) ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        const r = g.pickReg(s, false);
        const e = g.rm(c, s, r, kind);
        g.insn(c, [0x6b, ...e, g.val(8)]);
        c.mask &= MULMASK;
      }));
    }
  return out;
}

const memAddr = new WeakMap<Case, number>();
const lastMemAddr = (c: Case, _e: number[]) => memAddr.get(c)!;

function divForm(s: Size, kind: Kind, signed: boolean) {
  return (g: Gen, c: Case) => {
    const rng = g.rng;
    g.opsize(c, s);
    const bits = BigInt(s);
    // divisor
    let d = BigInt(g.val(s));
    if (rng.chance(0.06)) d = 0n;
    else if (d === 0n) d = 1n;
    let dividend: bigint;
    if (rng.chance(0.85) && d !== 0n) {
      // a dividend whose quotient fits: q*d + r
      if (!signed) {
        const q = BigInt(g.val(s));
        const r = BigInt(rng.u32()) % d;
        dividend = q * d + r;
      } else {
        const ds = BigInt.asIntN(s, d);
        const q = BigInt.asIntN(s, BigInt(g.val(s)));
        const mag = BigInt(rng.u32()) % (ds < 0n ? -ds : ds);
        const p = q * ds;
        const r = p > 0n ? mag : p < 0n ? -mag : rng.chance(0.5) ? mag : -mag;
        dividend = BigInt.asUintN(2 * s, p + r);
        d = BigInt.asUintN(s, ds);
      }
    } else dividend = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    dividend = BigInt.asUintN(2 * s, dividend);
    const lo = Number(dividend & ((1n << bits) - 1n));
    const hi = Number(dividend >> bits);
    if (s === 8) g.setPart(c, 16, EAX, Number(dividend));
    else {
      g.setPart(c, s, EAX, lo);
      g.setPart(c, s, EDX, hi);
    }
    let e: number[];
    if (kind === 'reg') {
      const bad = s === 8 ? [0, 4] : [EAX, EDX];
      let rm = g.pickReg(s, false);
      if (bad.includes(rm) && rng.chance(0.9)) while (bad.includes(rm)) rm = g.pickReg(s, false);
      if (!bad.includes(rm)) g.setPart(c, s, rm, Number(d));
      e = [0xc0 | ((signed ? 7 : 6) << 3) | rm];
    } else {
      const m = g.mem(c, s, signed ? 7 : 6, { avoid: [EAX, EDX], value: Number(d) });
      memAddr.set(c, m.addr);
      e = m.bytes;
    }
    g.insn(c, [s === 8 ? 0xf6 : 0xf7, ...e]);
    c.mask &= ~ARITH;
    // expected outcome, from the values as finally placed (a register divisor may alias the dividend)
    const dv = BigInt(kind === 'reg' ? g.part(c, s, e[0] & 7) : g.get(c, lastMemAddr(c, e), s / 8));
    const nd = s === 8 ? BigInt(g.part(c, 16, EAX)) : (BigInt(g.part(c, s, EDX)) << bits) | BigInt(g.part(c, s, EAX));
    if (dv === 0n) c.expectFault = true;
    else if (!signed) c.expectFault = nd / dv >= 1n << bits;
    else {
      const q = BigInt.asIntN(2 * s, nd) / BigInt.asIntN(s, dv);
      c.expectFault = q >= 1n << (bits - 1n) || q < -(1n << (bits - 1n));
    }
  };
}

// ---- bit operations ---------------------------------------------------------------------------------

const BT = ['bt', 'bts', 'btr', 'btc'];
const BTMASK = FULL & ~(OF | SF | AF | PF);
const BSMASK = FULL & ~(CF | OF | SF | AF | PF);
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

function bitOffset(g: Gen, s: Size): number {
  const rng = g.rng;
  const k = rng.below(5);
  if (k === 0) return rng.below(s);
  if (k === 1) return rng.range(-256, 256);
  if (k === 2) return rng.range(-0x6000, 0x6000);
  if (k === 3) return g.val(s) & (s === 16 ? 0x7fff : 0x7fff);
  return -rng.range(1, s === 16 ? 0x7fff : 0x7000);
}

export function bitForms(N = 20): Form[] {
  const out: Form[] = [];
  for (let op = 0; op < 4; op++) {
    const mn = BT[op];
    const opcReg = [0xa3, 0xab, 0xb3, 0xbb][op];
    for (const s of VSIZES) {
      out.push(F(`${mn} ${E(s)},${Gr(s)} reg`, N * 2, emitEG([0x0f, opcReg], s, 'reg', BTMASK)));
      out.push(F(`${mn} ${E(s)},${Gr(s)} mem`, N * 3, btMem([0x0f, opcReg], s, false)));
      for (const kind of KINDS)
        out.push(F(`${mn} ${E(s)},Ib (0F BA /${op + 4}) ${kind}`, N * 2, (g, c) => {
          g.opsize(c, s);
          const e = g.rm(c, s, op + 4, kind);
          g.insn(c, [0x0f, 0xba, ...e, g.rng.chance(0.7) ? g.rng.below(s) : g.rng.u8()]);
          c.mask &= BTMASK;
        }));
    }
    if (op > 0) {
      out.push(F(`lock ${mn} Ed,Gd mem`, N / 2, btMem([0x0f, opcReg], 32, true)));
      out.push(F(`lock ${mn} Ed,Ib mem`, N / 2, (g, c) => {
        c.pre.push(0xf0);
        g.insn(c, [0x0f, 0xba, ...g.rm(c, 32, op + 4, 'mem'), g.rng.u8()]);
        c.mask &= BTMASK;
      }));
    }
  }
  for (const [mn, opc] of [['bsf', 0xbc], ['bsr', 0xbd]] as const)
    for (const kind of KINDS)
      for (const s of VSIZES)
        out.push(F(`${mn} ${Gr(s)},${E(s)} ${kind}`, N * 3, (g, c) => {
          g.opsize(c, s);
          const r = g.regOperand(c, s, false);
          const zero = g.rng.chance(0.2);
          let src: number;
          let e: number[];
          if (kind === 'reg') {
            const rm = g.pickReg(s, false);
            if (zero) g.setPart(c, s, rm, 0);
            e = [0xc0 | (r << 3) | rm];
            src = g.part(c, s, rm);
          } else {
            const m = g.mem(c, s, r, zero ? { value: 0 } : {});
            e = m.bytes;
            src = g.get(c, m.addr, s / 8);
          }
          g.insn(c, [0x0f, opc, ...e]);
          c.mask &= BSMASK;
          if (src === 0) c.undefinedRegs.add(REG_NAMES[r]);
        }));
  for (let cc = 0; cc < 16; cc++) {
    for (const kind of KINDS) {
      out.push(F(`set${CC[cc]} Eb ${kind}`, N / 2, (g, c) => {
        g.insn(c, [0x0f, 0x90 + cc, ...g.rm(c, 8, 0, kind)]);
      }));
      for (const s of VSIZES)
        out.push(F(`cmov${CC[cc]} ${Gr(s)},${E(s)} ${kind}`, N / 2, emitEG([0x0f, 0x40 + cc], s, kind)));
    }
  }
  return out;
}

/** bt* r/m, reg with a memory operand: the bit offset moves the address by (offset >> 3). */
function btMem(opc: number[], s: Size, lock: boolean) {
  return (g: Gen, c: Case) => {
    if (lock) c.pre.push(0xf0);
    g.opsize(c, s);
    const r = g.pickReg(s, false);
    const off = bitOffset(g, s);
    g.setPart(c, s, r, off);
    const a16 = g.rng.chance(g.addr16Rate);
    const target = a16 ? LOW.base + 0x2000 + g.rng.below(0xa000) : DATA.base + 0x1800 + g.rng.below(0x1000);
    const m = g.mem(c, s, r, { avoid: [r], target, addr16: a16, allowEsp: false });
    const soff = signedN(g.part(c, s, r), s);
    const unit = s / 8;
    const at = m.addr + unit * Math.floor(soff / s);
    g.fill(c, at - 4, unit + 8);
    g.insn(c, [...opc, ...m.bytes]);
    c.mask &= BTMASK;
  };
}

// ---- control transfer ---------------------------------------------------------------------------------

/** A branch target in the code page, outside the instruction's own bytes. */
function codeTarget(g: Gen, c: Case, len: number): number {
  for (;;) {
    const t = CODE.base + 0x10 + g.rng.below(CODE.size - 0x20);
    if (t < c.eip || t >= c.eip + len) return t;
  }
}

function rel8Target(g: Gen, c: Case, len: number): number {
  for (;;) {
    const rel = signed8(g.rng.u8());
    if (rel >= 0 || rel < -len) return rel;
  }
}

export function controlForms(N = 20): Form[] {
  const out: Form[] = [];
  for (let cc = 0; cc < 16; cc++) {
    out.push(F(`j${CC[cc]} rel8`, N * 2, (g, c) => {
      const rel = rel8Target(g, c, 2);
      g.insn(c, [0x70 + cc, rel & 0xff]);
      c.targets = [c.eip + 2, c.eip + 2 + rel];
    }));
    out.push(F(`j${CC[cc]} rel32`, N * 2, (g, c) => {
      const t = codeTarget(g, c, 6);
      g.insn(c, [0x0f, 0x80 + cc, ...le(t - (c.eip + 6), 4)]);
      c.targets = [c.eip + 6, t];
    }));
  }
  out.push(F('jmp rel8', N * 2, (g, c) => {
    const rel = rel8Target(g, c, 2);
    g.insn(c, [0xeb, rel & 0xff]);
    c.targets = [c.eip + 2 + rel];
  }));
  out.push(F('jmp rel32', N * 2, (g, c) => {
    const t = codeTarget(g, c, 5);
    g.insn(c, [0xe9, ...le(t - (c.eip + 5), 4)]);
    c.targets = [t];
  }));
  out.push(F('call rel32', N * 3, (g, c) => {
    const t = codeTarget(g, c, 5);
    g.fill(c, c.r[ESP] - 8, 16);
    g.insn(c, [0xe8, ...le(t - (c.eip + 5), 4)]);
    c.targets = [t];
  }));
  for (const [mn, digit] of [['jmp', 4], ['call', 2]] as const) {
    out.push(F(`${mn} Ed (FF /${digit}) reg`, N * 2, (g, c) => {
      const r = g.pickReg(32, false);
      if (digit === 2) g.fill(c, c.r[ESP] - 8, 16);
      // the target is only known once the length is: reserve it and patch
      g.insn(c, [0xff, 0xc0 | (digit << 3) | r]);
      const t = codeTarget(g, c, c.length);
      g.setReg(c, r, t);
      c.targets = [t];
    }));
    out.push(F(`${mn} Ed (FF /${digit}) mem`, N * 2, (g, c) => {
      if (digit === 2) g.fill(c, c.r[ESP] - 8, 16);
      const m = g.mem(c, 32, digit, {});
      g.insn(c, [0xff, ...m.bytes]);
      const t = codeTarget(g, c, c.length);
      g.put(c, m.addr, 4, t);
      c.targets = [t];
    }));
  }
  out.push(F('ret', N * 3, (g, c) => {
    g.fill(c, c.r[ESP] - 4, 12);
    g.insn(c, [0xc3]);
    const t = codeTarget(g, c, 1);
    g.put(c, c.r[ESP], 4, t);
    c.targets = [t];
  }));
  out.push(F('ret Iw', N * 3, (g, c) => {
    g.fill(c, c.r[ESP] - 4, 12);
    const imm = g.rng.chance(0.7) ? g.rng.below(64) : g.rng.below(0x10000);
    g.insn(c, [0xc2, ...le(imm, 2)]);
    const t = codeTarget(g, c, 3);
    g.put(c, c.r[ESP], 4, t);
    c.targets = [t];
  }));
  for (const [mn, opc] of [['loopne', 0xe0], ['loope', 0xe1], ['loop', 0xe2], ['jecxz', 0xe3]] as const)
    for (const a16 of [false, true])
      out.push(F(`${mn} rel8${a16 ? ' a16 (cx)' : ''}`, a16 ? N : N * 3, (g, c) => {
        if (a16) c.pre.push(0x67);
        const len = a16 ? 3 : 2;
        const rel = rel8Target(g, c, len);
        const k = g.rng.below(6);
        const cnt = k === 0 ? 0 : k === 1 ? 1 : k === 2 ? 2 : g.val(32);
        if (a16) g.setPart(c, 16, ECX, cnt);
        else g.setReg(c, ECX, cnt);
        g.insn(c, [opc, rel & 0xff]);
        c.targets = [c.eip + len, c.eip + len + rel];
      }));
  return out;
}

// ---- stack --------------------------------------------------------------------------------------------

function stackWindow(g: Gen, c: Case, below: number, above: number): void {
  g.fill(c, c.r[ESP] - below, below + above);
}

export function stackForms(N = 20): Form[] {
  const out: Form[] = [];
  for (const s of VSIZES) {
    const o = s === 16 ? 'o16 ' : '';
    out.push(F(`push ${o}r${s} (50+r)`, N * 3, (g, c) => {
      g.opsize(c, s);
      const r = g.pickReg(s);
      if (r !== ESP) g.setPart(c, s, r, g.val(s));
      stackWindow(g, c, 8, 8);
      g.insn(c, [0x50 + r]);
    }));
    out.push(F(`pop ${o}r${s} (58+r)`, N * 3, (g, c) => {
      g.opsize(c, s);
      const r = g.pickReg(s);
      stackWindow(g, c, 8, 8);
      g.put(c, c.r[ESP], s / 8, g.val(s));
      g.insn(c, [0x58 + r]);
    }));
    out.push(F(`push ${o}I${sz(s)} (68)`, N, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 8, 8);
      g.insn(c, [0x68, ...immBytes(g.val(s), s)]);
    }));
    out.push(F(`push ${o}Ib (6A)`, N, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 8, 8);
      g.insn(c, [0x6a, g.val(8)]);
    }));
    for (const kind of KINDS) {
      out.push(F(`push ${E(s)} (FF /6) ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        stackWindow(g, c, 8, 8);
        g.insn(c, [0xff, ...g.rm(c, s, 6, kind)]);
      }));
      out.push(F(`pop ${E(s)} (8F /0) ${kind}`, N * 2, (g, c) => {
        g.opsize(c, s);
        stackWindow(g, c, 8, 8);
        g.put(c, c.r[ESP], s / 8, g.val(s));
        g.insn(c, [0x8f, ...g.rm(c, s, 0, kind)]);
      }));
    }
    out.push(F(`pusha ${o}`.trim(), N, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 36, 4);
      g.insn(c, [0x60]);
    }));
    out.push(F(`popa ${o}`.trim(), N, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 4, 36);
      g.insn(c, [0x61]);
    }));
    out.push(F(`pushf ${o}`.trim(), N, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 8, 8);
      g.insn(c, [0x9c]);
    }));
    out.push(F(`popf ${o}`.trim(), N * 3, (g, c) => {
      g.opsize(c, s);
      stackWindow(g, c, 8, 8);
      const rng = g.rng;
      // random arithmetic flags and DF, sometimes IF/IOPL (ignored at CPL3), NT, AC and reserved bits
      let v = rng.u32() & (ARITH | DF);
      if (rng.chance(0.5)) v |= IF;
      if (rng.chance(0.2)) v |= rng.below(4) << 12;
      if (rng.chance(0.15)) v |= NT;
      if (rng.chance(0.15)) v |= AC;
      if (rng.chance(0.1)) v |= 0x2 | 0x8 | 0x20 | 0x8000 | 0x10000 | 0x20000; // reserved bits, RF, VM: kept clear
      if (rng.chance(0.5)) v |= 0x2;
      g.put(c, c.r[ESP], s / 8, v);
      g.insn(c, [0x9d]);
    }));
    out.push(F(`leave ${o}`.trim(), N * 2, (g, c) => {
      g.opsize(c, s);
      const ebp = (c.r[ESP] + g.rng.below(0x100)) & ~(g.rng.chance(0.8) ? 3 : 0);
      g.setReg(c, EBP, ebp);
      g.fill(c, ebp - 4, 12);
      g.insn(c, [0xc9]);
    }));
    for (const level of [0, 1, 2, 3, 5, 33])
      out.push(F(`enter ${o}Iw,${level}`, level > 3 ? N / 2 : N, (g, c) => {
        g.opsize(c, s);
        const lv = level & 31;
        // keep ESP - size inside the stack page: with a nesting level > 0 the CPU touches the new stack top
        const room = c.r[ESP] - STACK.base - 4 * lv - 0x20;
        const size = g.rng.chance(0.6) ? g.rng.below(0x40) : g.rng.below(room);
        const ebp = (c.r[ESP] + g.rng.below(0x100)) & ~(g.rng.chance(0.8) ? 3 : 0);
        g.setReg(c, EBP, ebp);
        g.fill(c, ebp - 4 * lv - 4, 4 * lv + 8);
        stackWindow(g, c, 4 * lv + 12, 4);
        g.insn(c, [0xc8, ...le(size, 2), level]);
      }));
  }
  return out;
}

// ---- strings ------------------------------------------------------------------------------------------

const STR = [
  ['movs', 0xa4], ['cmps', 0xa6], ['stos', 0xaa], ['lods', 0xac], ['scas', 0xae],
] as const;

export function stringForms(N = 20): Form[] {
  const out: Form[] = [];
  for (const [mn, opc] of STR)
    for (const s of SIZES)
      for (const rep of [0, 0xf3, 0xf2]) {
        if (rep === 0xf2 && mn !== 'cmps' && mn !== 'scas') continue;
        const pname = rep === 0 ? '' : rep === 0xf3 ? (mn === 'cmps' || mn === 'scas' ? 'repe ' : 'rep ') : 'repne ';
        for (const a16 of [false, true])
          out.push(F(`${pname}${mn}${sz(s)}${a16 ? ' a16' : ''}`, a16 ? N / 2 : rep ? N * 3 : N * 2, stringForm(mn, opc, s, rep, a16)));
      }
  return out;
}

function stringForm(mn: string, opc: number, s: Size, rep: number, a16: boolean) {
  return (g: Gen, c: Case) => {
    const rng = g.rng;
    const unit = s / 8;
    if (rep) c.pre.push(rep);
    g.opsize(c, s);
    if (a16) c.pre.push(0x67);
    const usesSrc = mn === 'movs' || mn === 'cmps' || mn === 'lods';
    const usesDst = mn !== 'lods';
    if (usesSrc && rng.chance(0.2)) c.pre.push(rng.pick(SEG_PREFIXES));
    const count = rep ? (rng.chance(0.1) ? 0 : rng.range(1, 20)) : 1;
    const down = (c.eflags & DF) !== 0;
    const span = (count + 1) * unit + 8;
    const region = a16 ? LOW : DATA;
    const pickBase = () => region.base + span + 0x40 + rng.below(region.size - 2 * span - 0x80);
    const src = pickBase();
    let dst = pickBase();
    if (mn === 'movs' && rng.chance(0.15)) dst = src + rng.range(-3 * unit, 3 * unit); // overlapping copy
    const hi = () => (a16 && rng.chance(0.5) ? rng.u32() & 0xffff0000 : 0);
    if (rep) {
      if (a16) g.setReg(c, ECX, (rng.u32() & 0xffff0000) | count);
      else g.setReg(c, ECX, count);
    }
    g.setReg(c, ESI, hi() | (a16 ? src & 0xffff : src));
    g.setReg(c, EDI, hi() | (a16 ? dst & 0xffff : dst));
    const elems = Math.max(count, 1);
    const addrOf = (b: number, i: number) => (down ? b - i * unit : b + i * unit);
    const windowOf = (b: number) => {
      const lo = down ? b - (elems - 1) * unit : b;
      g.fill(c, lo - 4, elems * unit + 8);
    };
    if (usesSrc) windowOf(src);
    if (usesDst) windowOf(dst);
    const acc = g.val(s);
    g.setPart(c, s, EAX, acc);
    // for compares: a run of equal (repe) / unequal (repne) elements, then the stopping one
    if (mn === 'cmps' || mn === 'scas') {
      const stop = rng.below(elems + 1);
      for (let i = 0; i < elems; i++) {
        const want = rep === 0xf2 ? i === stop : i !== stop;
        const da = addrOf(dst, i);
        if (want) {
          if (mn === 'cmps') g.put(c, da, unit, g.get(c, addrOf(src, i), unit));
          else g.put(c, da, unit, acc);
        }
      }
    }
    g.insn(c, [opc + (s === 8 ? 0 : 1)]);
  };
}

// ---- bcd ------------------------------------------------------------------------------------------------

function bcdByte(g: Gen): number {
  const rng = g.rng;
  const k = rng.below(4);
  if (k === 0) return rng.below(10) * 16 + rng.below(10);
  if (k === 1) return rng.u8();
  if (k === 2) return rng.pick([0x00, 0x09, 0x0a, 0x0f, 0x10, 0x19, 0x1a, 0x90, 0x99, 0x9a, 0x9f, 0xa0, 0xf9, 0xfa, 0xff]);
  return g.val(8);
}

export function bcdForms(N = 20): Form[] {
  const out: Form[] = [];
  const simple = (mn: string, opc: number, mask: number) =>
    F(mn, N * 8, (g, c) => {
      g.setPart(c, 8, EAX, bcdByte(g));
      if (g.rng.chance(0.5)) g.setPart(c, 8, 4, bcdByte(g));
      g.insn(c, [opc]);
      c.mask &= mask;
    });
  out.push(simple('daa', 0x27, FULL & ~OF));
  out.push(simple('das', 0x2f, FULL & ~OF));
  out.push(simple('aaa', 0x37, FULL & ~(OF | SF | ZF | PF)));
  out.push(simple('aas', 0x3f, FULL & ~(OF | SF | ZF | PF)));
  for (const [mn, opc] of [['aam', 0xd4], ['aad', 0xd5]] as const) {
    out.push(F(`${mn}`, N * 4, (g, c) => {
      g.setPart(c, 16, EAX, (bcdByte(g) << 8) | bcdByte(g));
      g.insn(c, [opc, 10]);
      c.mask &= FULL & ~(OF | AF | CF);
    }));
    out.push(F(`${mn} Ib`, N * 4, (g, c) => {
      g.setPart(c, 16, EAX, (bcdByte(g) << 8) | bcdByte(g));
      let imm = g.rng.chance(0.5) ? g.rng.range(1, 16) : g.rng.u8();
      if (mn === 'aam' && imm === 0) imm = 7;
      g.insn(c, [opc, imm]);
      c.mask &= FULL & ~(OF | AF | CF);
    }));
  }
  out.push(F('aam 0 (#DE)', N, (g, c) => {
    g.setPart(c, 16, EAX, g.val(16));
    g.insn(c, [0xd4, 0]);
    c.mask &= FULL & ~(OF | AF | CF);
    c.expectFault = true;
  }));
  out.push(F('aad 0', N / 2, (g, c) => {
    g.setPart(c, 16, EAX, g.val(16));
    g.insn(c, [0xd5, 0]);
    c.mask &= FULL & ~(OF | AF | CF);
  }));
  return out;
}

// ---- misc -------------------------------------------------------------------------------------------------

export function miscForms(N = 30): Form[] {
  const out: Form[] = [];
  const one = (name: string, bytes: number[], n = N * 2, pre: number[] = []) =>
    F(name, n, (g, c) => {
      c.pre.push(...pre);
      g.setPart(c, 32, EAX, g.val(32));
      g.setPart(c, 32, EDX, g.val(32));
      g.insn(c, bytes);
    });
  out.push(one('cbw', [0x98], N * 2, [0x66]));
  out.push(one('cwde', [0x98]));
  out.push(one('cwd', [0x99], N * 2, [0x66]));
  out.push(one('cdq', [0x99]));
  out.push(one('lahf', [0x9f]));
  out.push(F('sahf', N * 2, (g, c) => {
    g.setPart(c, 8, 4, g.rng.u8());
    g.insn(c, [0x9e]);
  }));
  for (const [mn, opc] of [['clc', 0xf8], ['stc', 0xf9], ['cmc', 0xf5], ['cld', 0xfc], ['std', 0xfd]] as const)
    out.push(one(mn, [opc], N));
  for (const a16 of [false, true])
    out.push(F(`xlat${a16 ? ' a16' : ''}`, N * 2, (g, c) => {
      if (a16) c.pre.push(0x67);
      g.maybeSeg(c);
      const al = g.rng.u8();
      g.setPart(c, 8, EAX, al);
      const tableEnd = a16 ? g.lowAddr(0x200) : g.dataAddr(0x200);
      const table = tableEnd - 0x100;
      g.setReg(c, EBX, a16 ? (g.rng.u32() & 0xffff0000) | (table & 0xffff) : table);
      g.fill(c, table + al - 2, 5);
      g.insn(c, [0xd7]);
    }));
  out.push(one('nop', [0x90], N));
  out.push(one('xchg ax,ax (66 90)', [0x90], N / 2, [0x66]));
  out.push(one('pause (F3 90)', [0x90], N / 2, [0xf3]));
  for (const kind of KINDS)
    for (const s of VSIZES)
      out.push(F(`nop ${E(s)} (0F 1F /0) ${kind}`, N, (g, c) => {
        g.opsize(c, s);
        const e = kind === 'reg' ? [0xc0 | g.rng.below(8)] : g.mem(c, s, 0, { noAccess: true }).bytes;
        g.insn(c, [0x0f, 0x1f, ...e]);
      }));
  return out;
}

// ---- exceptions -------------------------------------------------------------------------------------------

export function exceptionForms(N = 20): Form[] {
  const out: Form[] = [];
  const fault = (name: string, n: number, emit: (g: Gen, c: Case) => void) =>
    F(name, n, (g, c) => {
      emit(g, c);
      c.expectFault = true;
    });
  out.push(fault('ud2', N, (g, c) => g.insn(c, [0x0f, 0x0b])));
  out.push(fault('ud1 Gd,Ed (0F B9)', N / 2, (g, c) => g.insn(c, [0x0f, 0xb9, ...g.rm(c, 32, g.rng.below(8), 'reg')])));
  out.push(F('int3', N, (g, c) => {
    g.insn(c, [0xcc]);
    c.trapInsn = true;
  }));
  out.push(F('int 3', N, (g, c) => {
    g.insn(c, [0xcd, 3]);
    c.trapInsn = true;
  }));
  out.push(F('into', N * 2, (g, c) => {
    if (g.rng.chance(0.6)) c.eflags |= OF;
    g.insn(c, [0xce]);
    c.trapInsn = true;
  }));
  out.push(fault('int Ib (#GP)', N * 3, (g, c) => {
    let n: number;
    do n = g.rng.u8();
    while (n === 3 || n === 4 || n === 0x80);
    g.insn(c, [0xcd, n]);
  }));
  for (const s of VSIZES)
    out.push(F(`bound ${Gr(s)},M${sz(s)}&${sz(s)}`, N * 3, (g, c) => {
      g.opsize(c, s);
      const r = g.pickReg(s, false);
      const lo = signedN(g.val(s), s);
      const hi = signedN(g.val(s), s);
      const [l, h] = lo <= hi || g.rng.chance(0.2) ? [lo, hi] : [hi, lo];
      let idx: number;
      const k = g.rng.below(4);
      if (k === 0) idx = l;
      else if (k === 1) idx = h;
      else if (k === 2) idx = l + Math.floor((h - l) / 2);
      else idx = signedN(g.val(s), s);
      g.setPart(c, s, r, idx);
      const m = g.mem(c, s, r, { avoid: [r], bytes: (2 * s) / 8 });
      g.put(c, m.addr, s / 8, l);
      g.put(c, m.addr + s / 8, s / 8, h);
      g.insn(c, [0x62, ...m.bytes]);
      const v = signedN(g.part(c, s, r), s); // the index as finally placed (an address register may alias it)
      c.expectFault = v < signedN(g.get(c, m.addr, s / 8), s) || v > signedN(g.get(c, m.addr + s / 8, s / 8), s);
    }));
  out.push(fault('bound Gd,reg (#UD)', N / 2, (g, c) => g.insn(c, [0x62, 0xc0 | g.rng.below(64)])));
  out.push(fault('hlt', N, (g, c) => g.insn(c, [0xf4])));
  out.push(fault('cli', N, (g, c) => g.insn(c, [0xfa])));
  out.push(fault('sti', N, (g, c) => g.insn(c, [0xfb])));
  for (const [name, bytes] of [
    ['in al,Ib', [0xe4, -1]], ['in eax,Ib', [0xe5, -1]], ['out Ib,al', [0xe6, -1]], ['out Ib,eax', [0xe7, -1]],
    ['in al,dx', [0xec]], ['in eax,dx', [0xed]], ['out dx,al', [0xee]], ['out dx,eax', [0xef]],
    ['insb', [0x6c]], ['insd', [0x6d]], ['outsb', [0x6e]], ['outsd', [0x6f]],
    ['clts', [0x0f, 0x06]], ['invd', [0x0f, 0x08]], ['wbinvd', [0x0f, 0x09]], ['rdmsr', [0x0f, 0x32]],
    ['wrmsr', [0x0f, 0x30]], ['mov eax,cr0', [0x0f, 0x20, 0xc0]], ['mov cr3,eax', [0x0f, 0x22, 0xd8]],
    ['mov eax,dr7', [0x0f, 0x21, 0xf8]], ['lgdt', [0x0f, 0x01, 0x15, 0, 0, 0, 0x50]], ['lidt', [0x0f, 0x01, 0x1d, 0, 0, 0, 0x50]],
    ['lmsw ax', [0x0f, 0x01, 0xf0]], ['invlpg', [0x0f, 0x01, 0x3d, 0, 0, 0, 0x50]],
  ] as [string, number[]][])
    out.push(fault(`${name} (#GP)`, N / 4, (g, c) => {
      g.setPart(c, 16, EDX, g.rng.chance(0.5) ? g.rng.u32() : g.rng.pick([0x20, 0x21, 0x60, 0x64, 0x70, 0x80, 0x3f8, 0xcf8]));
      g.insn(c, bytes.map((b) => (b < 0 ? g.rng.u8() : b)));
    }));
  out.push(fault('lea Gd,reg (#UD)', N, (g, c) => g.insn(c, [0x8d, 0xc0 | g.rng.below(64)])));
  out.push(fault('cmpxchg8b reg (#UD)', N / 2, (g, c) => g.insn(c, [0x0f, 0xc7, 0xc8 | g.rng.below(8)])));
  // lock on instructions or forms that do not allow it
  const lockUD: [string, (g: Gen, c: Case) => void][] = [
    ['lock add Ed,Gd reg', emitEG([0x01], 32, 'reg')],
    ['lock add Gd,Ed mem', emitEG([0x03], 32, 'mem')],
    ['lock cmp Ed,Gd mem', emitEG([0x39], 32, 'mem')],
    ['lock mov Ed,Gd mem', emitEG([0x89], 32, 'mem')],
    ['lock bt Ed,Gd mem', emitEG([0x0f, 0xa3], 32, 'mem', BTMASK)],
    ['lock test Ed,Gd mem', emitEG([0x85], 32, 'mem')],
    ['lock inc Ed reg', emitE([0xff], 0, 32, 'reg')],
    ['lock nop', (g, c) => g.insn(c, [0x90])],
    ['lock xchg Ed,Gd reg', emitEG([0x87], 32, 'reg')],
    ['lock lea', (g, c) => g.insn(c, [0x8d, ...g.mem(c, 32, g.pickReg(32, false), { noAccess: true }).bytes])],
  ];
  for (const [name, emit] of lockUD)
    out.push(fault(`${name} (#UD)`, N / 2, (g, c) => {
      c.pre.push(0xf0);
      emit(g, c);
    }));
  return out;
}

// ---- blocks -----------------------------------------------------------------------------------------------

/** An instruction usable inside a block: what it does to the flags, for tracking undefined ones. */
interface BlockInsn {
  emit: (g: Gen, c: Case) => void;
  reads: number;
  writes: number;
}

function blockPool(): BlockInsn[] {
  const pool: BlockInsn[] = [];
  const add = (emit: BlockInsn['emit'], reads: number, writes: number, times = 1) => {
    for (let i = 0; i < times; i++) pool.push({ emit, reads, writes });
  };
  for (let op = 0; op < 8; op++) {
    const reads = op === 2 || op === 3 ? CF : 0;
    const m = aluMask(op);
    for (const kind of KINDS) {
      add(emitEG([op * 8], 8, kind, m), reads, ARITH);
      add(emitEG([op * 8 + 3], 32, kind, m), reads, ARITH);
      add(emitEG([op * 8 + 1], 16, kind, m), reads, ARITH);
      add(emitEI([0x83], op, 32, kind, 8, m), reads, ARITH);
    }
  }
  for (const kind of KINDS) {
    add(emitEG([0x85], 32, kind, FULL & ~AF), 0, ARITH);
    add(emitE([0xff], 0, 32, kind), 0, ARITH & ~CF);
    add(emitE([0xfe], 1, 8, kind), 0, ARITH & ~CF);
    add(emitE([0xf7], 3, 32, kind), 0, ARITH);
    add(emitE([0xf7], 2, 16, kind), 0, 0);
    add(emitEG([0x89], 32, kind), 0, 0, 2);
    add(emitEG([0x8b], 32, kind), 0, 0, 2);
    add(emitEG([0x88], 8, kind), 0, 0);
    add(emitEI([0xc7], 0, 32, kind, 32), 0, 0);
    add(movx([0x0f, 0xb6], 32, 8, kind), 0, 0);
    add(movx([0x0f, 0xbf], 32, 16, kind), 0, 0);
    add(emitEG([0x87], 32, kind), 0, 0);
    add(emitEG([0x0f, 0xc1], 32, kind), 0, ARITH);
    for (let op = 0; op < 4; op++) add(emitE([0xd1], op, 32, kind, FULL), op >= 2 ? CF : 0, CF | OF);
    const cc = (g: Gen) => g.rng.below(16);
    add((g, c) => g.insn(c, [0x0f, 0x90 + cc(g), ...g.rm(c, 8, 0, kind)]), ARITH, 0);
    add((g, c) => emitEG([0x0f, 0x40 + cc(g)], 32, kind)(g, c), ARITH, 0);
  }
  add((g, c) => g.insn(c, [0x0f, 0xc8 + g.pickReg(32, false)]), 0, 0);
  add(leaForm(32, false), 0, 0, 2);
  add((g, c) => g.insn(c, [0x50 + g.pickReg(32)]), 0, 0, 2);
  add((g, c) => g.insn(c, [0x58 + g.pickReg(32, false)]), 0, 0, 2);
  add((g, c) => g.insn(c, [0x68, ...le(g.val(32), 4)]), 0, 0);
  add((g, c) => g.insn(c, [0x6a, g.val(8)]), 0, 0);
  add((g, c) => g.insn(c, [0x9c]), ARITH | DF, 0);
  add((g, c) => g.insn(c, [0x9f]), ARITH & ~OF, 0);
  add((g, c) => g.insn(c, [0x9e]), 0, ARITH & ~OF);
  add((g, c) => g.insn(c, [0xf8]), 0, CF);
  add((g, c) => g.insn(c, [0xf9]), 0, CF);
  add((g, c) => g.insn(c, [0xf5]), CF, CF);
  add((g, c) => g.insn(c, [0x99]), 0, 0);
  add((g, c) => g.insn(c, [0x98]), 0, 0);
  add((g, c) => g.insn(c, [0xb8 + g.pickReg(32, false), ...le(g.val(32), 4)]), 0, 0);
  return pool;
}

export function blockCases(g: Gen, scale: number, count = 400): Case[] {
  const pool = blockPool();
  const out: Case[] = [];
  const n = Math.max(1, Math.round(count * scale));
  for (let i = 0; i < n; i++) {
    const len = g.rng.range(3, 10);
    const c = g.begin('blocks', `block of ${len}`);
    c.block = true;
    g.fill(c, c.r[ESP] - 48, 64);
    g.blockMode = true;
    let undef = 0;
    for (let k = 0; k < len; ) {
      const ins = g.rng.pick(pool);
      if (ins.reads & undef) continue;
      const before = c.mask;
      c.mask = FULL;
      ins.emit(g, c);
      const u = ~c.mask & ARITH;
      c.mask = before;
      undef = (undef & ~ins.writes) | u;
      k++;
    }
    g.blockMode = false;
    c.mask = (FULL & ~undef) >>> 0;
    out.push(g.finish(c));
  }
  return out;
}

// ---- registry ---------------------------------------------------------------------------------------------

export const GROUPS: Record<string, (g: Gen, scale: number) => Case[]> = {
  alu: (g, s) => build(g, aluForms(), s, 'alu'),
  mov: (g, s) => build(g, movForms(), s, 'mov'),
  shift: (g, s) => build(g, shiftForms(), s, 'shift'),
  muldiv: (g, s) => build(g, muldivForms(), s, 'muldiv'),
  bit: (g, s) => build(g, bitForms(), s, 'bit'),
  control: (g, s) => build(g, controlForms(), s, 'control'),
  stack: (g, s) => build(g, stackForms(), s, 'stack'),
  string: (g, s) => build(g, stringForms(), s, 'string'),
  bcd: (g, s) => build(g, bcdForms(), s, 'bcd'),
  misc: (g, s) => build(g, miscForms(), s, 'misc'),
  exceptions: (g, s) => build(g, exceptionForms(), s, 'exceptions'),
  blocks: (g, s) => blockCases(g, s),
};

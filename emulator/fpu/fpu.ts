/**
 * The x87 FPU: its state (control, status and tag words, TOP, the eight 80-bit registers, the last
 * instruction and operand pointers) and every x87 instruction, executed from its opcode byte (D8-DF) and
 * ModRM. Memory goes through an FpuMem the caller supplies (the CPU's checked accessors), and is read
 * before anything changes and probed before anything is written, so a fault leaves the FPU as it was.
 *
 * Numbers are exact (softfloat.ts, arith.ts, trans.ts). The registers are kept as a sign/exponent word and
 * a 64-bit significand per physical register.
 */
import * as A from './arith.ts';
import { C1, DE, IE, INDEF_SE, INDEF_SIG, J, OE, PE, SF, UE, ZE, classify, C_DEN, C_INF, C_QNAN, C_SNAN, C_UNSUP, C_ZERO, bitLength, lsbExp } from './softfloat.ts';
import * as T from './trans.ts';

/** Memory access for one instruction's operand (offsets in its segment; faults are thrown by the CPU). */
export interface FpuMem {
  rd8(off: number): number;
  rd16(off: number): number;
  rd32(off: number): number;
  wr8(off: number, v: number): void;
  wr16(off: number, v: number): void;
  wr32(off: number, v: number): void;
  /** Fault now if `len` bytes at off cannot all be written. */
  probe(off: number, len: number): void;
}

export const FCW_INIT = 0x037f;

// status word bits
const ES = 0x80, B = 0x8000, C0 = 0x100, C2 = 0x400, C3 = 0x4000;
const CC = C0 | C1 | C2 | C3;

/** Is this instruction (first byte op, ModRM) one of the non-waiting FN forms? */
export function isNonWaiting(op: number, modrm: number): boolean {
  const mem = modrm < 0xc0;
  const reg = (modrm >> 3) & 7;
  if (mem) return (op === 0xd9 && (reg === 6 || reg === 7)) || (op === 0xdd && (reg === 6 || reg === 7));
  if (op === 0xdb) return modrm === 0xe2 || modrm === 0xe3 || modrm === 0xe0 || modrm === 0xe1 || modrm === 0xe4;
  return op === 0xdf && modrm === 0xe0;
}

export class FPU {
  fcw = FCW_INIT;
  /** Status word without TOP (bits 11-13), and with ES/B recomputed from the flags and masks on read. */
  sw = 0;
  top = 0;
  /** Bit i set: physical register i is empty. */
  empty = 0xff;
  readonly se = new Uint16Array(8);
  readonly sig = new BigUint64Array(8);
  fip = 0; fcs = 0; fop = 0; fdp = 0; fds = 0;
  /** FERR#: a waiting instruction met a pending unmasked exception with CR0.NE = 0 (the PC raises IRQ 13
   *  from it; whoever does clears it). */
  ferr = false;

  reset(): void {
    this.fcw = FCW_INIT;
    this.sw = 0;
    this.top = 0;
    this.empty = 0xff;
    this.fip = this.fcs = this.fop = this.fdp = this.fds = 0;
  }

  get fsw(): number {
    let s = (this.sw & ~(0x3800 | ES | B)) | (this.top << 11);
    if ((s & ~this.fcw & 0x3f) !== 0) s |= ES | B;
    return s;
  }

  set fsw(v: number) {
    this.sw = v & ~0x3800;
    this.top = (v >> 11) & 7;
  }

  /** An unmasked exception is pending (the next waiting instruction takes #MF). */
  get pending(): boolean {
    return (this.sw & ~this.fcw & 0x3f) !== 0;
  }

  /** The full tag word (two bits per physical register), computed from contents as FNSTENV stores it. */
  get ftw(): number {
    let t = 0;
    for (let i = 0; i < 8; i++) {
      let tag = 3;
      if ((this.empty & (1 << i)) === 0) {
        const c = classify(this.se[i], this.sig[i]);
        tag = c === C_ZERO ? 1 : c === 1 ? 0 : 2;
      }
      t |= tag << (2 * i);
    }
    return t;
  }

  set ftw(v: number) {
    let e = 0;
    for (let i = 0; i < 8; i++) if (((v >> (2 * i)) & 3) === 3) e |= 1 << i;
    this.empty = e;
  }

  phys(i: number): number { return (this.top + i) & 7; }
  isEmpty(i: number): boolean { return (this.empty & (1 << ((this.top + i) & 7))) !== 0; }
  stSe(i: number): number { return this.se[(this.top + i) & 7]; }
  stSig(i: number): bigint { return this.sig[(this.top + i) & 7]; }
  setSt(i: number, se: number, sig: bigint): void {
    const p = (this.top + i) & 7;
    this.se[p] = se;
    this.sig[p] = sig;
    this.empty &= ~(1 << p);
  }
  push(se: number, sig: bigint): void {
    this.top = (this.top - 1) & 7;
    this.setSt(0, se, sig);
  }
  pop(): void {
    this.empty |= 1 << this.top;
    this.top = (this.top + 1) & 7;
  }

  /** Record exception flags (and C1 when given in `f`); returns the unmasked ones among IE DE ZE. */
  private flags(f: number): number {
    this.sw = (this.sw & ~C1) | (f & (0x7f | C1));
    return f & ~this.fcw & (IE | DE | ZE);
  }

  private cc(c3: number, c2: number, c1: number, c0: number): void {
    this.sw = (this.sw & ~CC) | (c3 ? C3 : 0) | (c2 ? C2 : 0) | (c1 ? C1 : 0) | (c0 ? C0 : 0);
  }

  /** Stack underflow: IE|SF with C1=0. Returns true when masked (the caller writes the indefinite). */
  private underflow(): boolean {
    this.sw = (this.sw & ~C1) | IE | SF;
    return (this.fcw & IE) !== 0;
  }

  /** Stack overflow on a push: IE|SF with C1=1; masked: push the indefinite. Returns true if it happened. */
  private overflowPush(): boolean {
    if (this.isEmpty(7)) return false;
    this.sw |= IE | SF | C1;
    if (this.fcw & IE) this.push(INDEF_SE, INDEF_SIG);
    return true;
  }

  // =========================================================================================================
  // Instruction execution
  // =========================================================================================================

  /** EFLAGS bits the last FCOMI/FUCOMI produced (ZF PF CF), or -1 when the instruction set none. */
  eflagsOut = -1;
  /** EFLAGS as the instruction sees it (FCMOVcc): CF ZF PF bits. */
  eflagsIn = 0;
  /** Set by an instruction that raised #UD (a reserved encoding). */
  ud = false;
  /** Protected-mode (or real-mode) layout for FNSTENV/FLDENV/FNSAVE/FRSTOR. */
  realMode = false;

  /**
   * Execute x87 instruction op (0xD8-0xDF) with ModRM `modrm`; `ea` is the memory operand's offset when
   * modrm < 0xC0. `o16`: 16-bit operand size (environment layouts). FNSTSW AX returns through `ax`.
   */
  ax = -1;
  exec(op: number, modrm: number, ea: number, o16: boolean, m: FpuMem): void {
    this.eflagsOut = -1;
    this.ax = -1;
    this.ud = false;
    const reg = (modrm >> 3) & 7;
    if (modrm < 0xc0) this.execMem(op, reg, ea, o16, m);
    else this.execReg(op, modrm);
  }

  /** Is this instruction a control instruction (leaves FIP/FOP/FDP alone)? */
  static isControl(op: number, modrm: number): boolean {
    const reg = (modrm >> 3) & 7;
    if (modrm < 0xc0) return (op === 0xd9 && reg >= 4) || (op === 0xdd && reg >= 4);
    if (op === 0xdb && (modrm === 0xe2 || modrm === 0xe3 || modrm === 0xe0 || modrm === 0xe1 || modrm === 0xe4)) return true;
    return op === 0xdf && modrm === 0xe0;
  }

  // ---- arithmetic core: dest = a OP b with the results of arith.ts -----------------------------------------

  /** kind: 0 add 1 mul 4 sub 5 subr 6 div 7 divr (the ModRM reg field of D8). */
  private arith(kind: number, aSe: number, aSig: bigint, bSe: number, bSig: bigint): number {
    const fcw = this.fcw;
    switch (kind) {
      case 0: return A.add(aSe, aSig, bSe, bSig, false, fcw);
      case 1: return A.mul(aSe, aSig, bSe, bSig, fcw);
      case 4: return A.add(aSe, aSig, bSe, bSig, true, fcw);
      case 5: return A.add(bSe, bSig, aSe, aSig, true, fcw);
      case 6: return A.div(aSe, aSig, bSe, bSig, fcw);
      default: return A.div(bSe, bSig, aSe, aSig, fcw);
    }
  }

  /** ST(d) = ST(d) op src (register/memory forms); pop afterwards when asked. */
  private arithTo(kind: number, d: number, srcSe: number, srcSig: bigint, pop: boolean, srcEmpty: boolean): void {
    if (this.isEmpty(d) || srcEmpty) {
      if (this.underflow()) { this.setSt(d, INDEF_SE, INDEF_SIG); if (pop) this.pop(); }
      return;
    }
    const f = this.arith(kind, this.stSe(d), this.stSig(d), srcSe, srcSig);
    if (this.flags(f) !== 0 || A.noResult) return;
    this.setSt(d, A.oSe, A.oSig);
    if (pop) this.pop();
  }

  /** ST(i) = ST(i) op ST(0) where kind uses the DC/DE encoding (reg field: 4 = FSUBR, 5 = FSUB, ...). */
  private arithRev(reg: number, i: number, pop: boolean): void {
    // DC E0+i is FSUBR ST(i),ST(0) = ST(0) - ST(i): as "ST(i) = ST(i) subr ST0" is kind 5 with a=ST(i)
    const kind = reg === 4 ? 5 : reg === 5 ? 4 : reg === 6 ? 7 : reg === 7 ? 6 : reg;
    this.arithTo(kind, i, this.stSe(0), this.stSig(0), pop, this.isEmpty(0));
  }

  private compareOp(bSe: number, bSig: bigint, bEmpty: boolean, quiet: boolean, pops: number, eflags: boolean): void {
    if (this.isEmpty(0) || bEmpty) {
      // stack underflow: unordered, masked or not
      this.underflow();
      if (eflags) this.eflagsOut = 0x45; else this.cc(1, 1, 0, 1);
      if (this.fcw & IE) for (let k = 0; k < pops; k++) this.pop();
      return;
    }
    const r = A.compare(this.stSe(0), this.stSig(0), bSe, bSig, quiet);
    // an unmasked IE or DE still sets the condition codes (a compare has no destination), but no pop
    const c1 = this.sw & C1;
    const unm = this.flags(A.cmpFlags);
    if (eflags) this.sw |= c1;
    // ZF PF CF = C3 C2 C0: > 000, < 001, = 100, unordered 111
    if (eflags) {
      this.eflagsOut = [0, 1, 0x40, 0x45][r]; // C1 stays as it was (what the recording CPU does)
    } else {
      const c = [[0, 0, 0], [0, 0, 1], [1, 0, 0], [1, 1, 1]][r];
      this.cc(c[0], c[1], 0, c[2]);
    }
    if (unm) return;
    for (let k = 0; k < pops; k++) this.pop();
  }

  private execReg(op: number, modrm: number): void {
    const i = modrm & 7;
    const reg = (modrm >> 3) & 7;
    switch (op) {
      case 0xd8:
        if (reg === 2 || reg === 3) { this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), false, reg - 2, false); return; }
        this.arithTo(reg, 0, this.stSe(i), this.stSig(i), false, this.isEmpty(i));
        return;
      case 0xdc:
        if (reg === 2 || reg === 3) { this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), false, reg - 2, false); return; }
        this.arithRev(reg, i, false);
        return;
      case 0xde:
        if (reg === 3) {
          if (i === 1) { this.compareOp(this.stSe(1), this.stSig(1), this.isEmpty(1), false, 2, false); return; }
          this.ud = true; return;
        }
        if (reg === 2) { this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), false, 1, false); return; }
        this.arithRev(reg, i, true);
        return;
      case 0xd9: return this.execD9(modrm);
      case 0xda:
        if (reg < 4) { this.fcmov(reg, false, i); return; }
        if (modrm === 0xe9) { this.compareOp(this.stSe(1), this.stSig(1), this.isEmpty(1), true, 2, false); return; }
        this.ud = true; return;
      case 0xdb:
        if (reg < 4) { this.fcmov(reg, true, i); return; }
        if (reg === 5 || reg === 6) { this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), reg === 5, 0, true); return; }
        if (modrm === 0xe2) { this.sw &= ~(0xff | B); return; } // FNCLEX
        if (modrm === 0xe3) { this.reset(); return; } // FNINIT
        if (modrm === 0xe0 || modrm === 0xe1 || modrm === 0xe4) return; // FNENI FNDISI FNSETPM: no-ops
        this.ud = true; return;
      case 0xdd:
        switch (reg) {
          case 0: this.empty |= 1 << this.phys(i); this.sw &= ~C1; return; // FFREE
          case 1: this.fxch(i); return; // FXCH4 alias
          case 2: this.fstReg(i, false); return;
          case 3: this.fstReg(i, true); return;
          case 4: this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), true, 0, false); return;
          case 5: this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), true, 1, false); return;
        }
        this.ud = true; return;
      case 0xdf:
        switch (reg) {
          case 0: this.empty |= 1 << this.phys(i); this.pop(); return; // FFREEP
          case 1: this.fxch(i); return; // FXCH7
          case 2: case 3: this.fstReg(i, true); return; // FSTP8 FSTP9
          case 4:
            if (modrm === 0xe0) { this.ax = this.fsw; return; }
            this.ud = true; return;
          case 5: case 6: this.compareOp(this.stSe(i), this.stSig(i), this.isEmpty(i), reg === 5, 1, true); return;
        }
        this.ud = true; return;
    }
  }

  private fcmov(cond: number, negate: boolean, i: number): void {
    const f = this.eflagsIn;
    let t = cond === 0 ? (f & 1) !== 0 : cond === 1 ? (f & 0x40) !== 0 : cond === 2 ? (f & 0x41) !== 0 : (f & 4) !== 0;
    if (negate) t = !t;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG);
      return;
    }
    if (t) this.setSt(0, this.stSe(i), this.stSig(i)); // C1 stays as it was (the recording CPU)
  }

  private fxch(i: number): void {
    let aSe = this.stSe(0), aSig = this.stSig(0), bSe = this.stSe(i), bSig = this.stSig(i);
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (!this.underflow()) return;
      if (this.isEmpty(0)) { aSe = INDEF_SE; aSig = INDEF_SIG; }
      if (this.isEmpty(i)) { bSe = INDEF_SE; bSig = INDEF_SIG; }
      this.setSt(0, bSe, bSig);
      this.setSt(i, aSe, aSig);
      return;
    }
    this.sw &= ~C1;
    this.setSt(0, bSe, bSig);
    this.setSt(i, aSe, aSig);
  }

  private fstReg(i: number, pop: boolean): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) { this.setSt(i, INDEF_SE, INDEF_SIG); if (pop) this.pop(); }
      return;
    }
    this.sw &= ~C1;
    this.setSt(i, this.stSe(0), this.stSig(0));
    if (pop) this.pop();
  }

  private execD9(modrm: number): void {
    const i = modrm & 7;
    if (modrm < 0xc8) { // FLD ST(i)
      const empty = this.isEmpty(i), se = this.stSe(i), sig = this.stSig(i);
      if (empty) {
        // the empty source is reported (C1 = 0) before a full ST(7)
        if (this.underflow()) this.push(INDEF_SE, INDEF_SIG);
        return;
      }
      if (this.overflowPush()) return;
      this.sw &= ~C1;
      this.push(se, sig);
      return;
    }
    if (modrm < 0xd0) { this.fxch(i); return; }
    if (modrm === 0xd0) return; // FNOP
    if (modrm >= 0xd8 && modrm < 0xe0) { // FSTP1 (reserved alias): with ST(0) empty the recording CPU only pops
      if (this.isEmpty(0)) this.pop();
      else this.fstReg(i, true);
      return;
    }
    switch (modrm) {
      case 0xe0: case 0xe1: // FCHS FABS
        if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
        this.sw &= ~C1;
        this.setSt(0, modrm === 0xe0 ? this.stSe(0) ^ 0x8000 : this.stSe(0) & 0x7fff, this.stSig(0));
        return;
      case 0xe4: this.compareOp(0, 0n, false, false, 0, false); return; // FTST
      case 0xe5: this.fxam(); return;
      case 0xe8: case 0xe9: case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee: this.fldConst(modrm - 0xe8); return;
      case 0xf6: this.top = (this.top - 1) & 7; this.sw &= ~C1; return; // FDECSTP
      case 0xf7: this.top = (this.top + 1) & 7; this.sw &= ~C1; return; // FINCSTP
      case 0xfa: this.unary((se, sig) => A.sqrt(se, sig, this.fcw)); return;
      case 0xfc: this.frndint(); return;
      case 0xfd: this.fscale(); return;
      case 0xf4: this.fxtract(); return;
      case 0xf8: this.fprem(false); return;
      case 0xf5: this.fprem(true); return;
      case 0xf0: case 0xf1: case 0xf2: case 0xf3: case 0xf9: case 0xfb: case 0xfe: case 0xff:
        T.transcendental(this, modrm);
        return;
    }
    this.ud = true;
  }

  /** ST(0) = f(ST(0)) for a one-operand arith.ts function. */
  unary(fn: (se: number, sig: bigint) => number): void {
    if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
    const f = fn(this.stSe(0), this.stSig(0));
    if (this.flags(f) !== 0 || A.noResult) return;
    this.setSt(0, A.oSe, A.oSig);
  }

  /** For trans.ts: flags with the IE/DE/ZE-unmasked answer. */
  setFlags(f: number): number { return this.flags(f); }
  stackUnderflow(): boolean { return this.underflow(); }
  setCC(c3: number, c2: number, c1: number, c0: number): void { this.cc(c3, c2, c1, c0); }
  get status(): number { return this.sw; }
  set status(v: number) { this.sw = v; }

  private fxam(): void {
    const se = this.stSe(0), sig = this.stSig(0);
    const s = se >> 15;
    if (this.isEmpty(0)) { this.cc(1, 0, s, 1); return; }
    const c = classify(se, sig);
    // C3 C2 C0: unsupported 000, NaN 001, normal 010, infinity 011, zero 100, empty 101, denormal 110
    switch (c) {
      case C_UNSUP: this.cc(0, 0, s, 0); return;
      case C_QNAN: case C_SNAN: this.cc(0, 0, s, 1); return;
      case C_INF: this.cc(0, 1, s, 1); return;
      case C_ZERO: this.cc(1, 0, s, 0); return;
      case C_DEN: this.cc(1, 1, s, 0); return;
      default: this.cc(0, 1, s, 0);
    }
  }

  private fldConst(k: number): void {
    if (this.overflowPush()) return;
    this.sw &= ~C1;
    const rc = (this.fcw >> 10) & 3;
    // 1, log2(10), log2(e), pi, log10(2), ln(2), 0: exponent, 64-bit significand rounded to nearest or
    // toward zero (the value below), and which way the exact value lies (+1: above, so RU/RN round up)
    const C = CONSTS[k];
    let sig = C[1];
    if (C[2] !== 0n) {
      const upNearest = C[3] === 1;
      if ((rc === 0 && upNearest) || rc === 2) sig = C[2];
    }
    this.push(C[0] as number, sig as bigint);
  }

  private frndint(): void {
    if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
    const se = this.stSe(0), sig = this.stSig(0);
    const c = classify(se, sig);
    if (c === C_UNSUP) { if (this.flags(A.invalid(this.fcw)) === 0) this.setSt(0, A.oSe, A.oSig); return; }
    if (c === C_SNAN) { if (this.flags(IE) === 0) this.setSt(0, se, sig | (1n << 62n)); return; }
    if (c === C_QNAN || c === C_INF || c === C_ZERO) { this.sw &= ~C1; return; }
    let f = 0;
    if (c === C_DEN) { f = DE; if (this.flags(DE)) return; }
    A.toInt(se, sig, (this.fcw >> 10) & 3);
    f |= A.iFlags;
    if (A.iMag === 0n) { this.flags(f); this.setSt(0, se & 0x8000, 0n); return; }
    const n = bitLength(A.iMag);
    this.flags(f);
    this.setSt(0, (se & 0x8000) | (16383 + n - 1), (A.iMag << BigInt(64 - n)) & ((1n << 64n) - 1n));
  }

  private fscale(): void {
    if (this.isEmpty(0) || this.isEmpty(1)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
    const aSe = this.stSe(0), aSig = this.stSig(0), bSe = this.stSe(1), bSig = this.stSig(1);
    const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
    // FSCALE is exact but for the exponent range: the precision control does not apply
    const fcw = this.fcw | 0x300;
    let f = 0;
    A.setNoResult(false);
    if (ca === C_UNSUP || cb === C_UNSUP) { f = A.invalid(fcw); }
    else if (A.isNaNCls(ca) || A.isNaNCls(cb)) {
      f = ca === C_SNAN || cb === C_SNAN ? IE : 0;
      A.nanResult(aSe, aSig, ca, bSe, bSig, cb);
    } else {
      if (ca === C_DEN || cb === C_DEN) { f = DE; if (this.flags(DE)) return; }
      const bNeg = (bSe & 0x8000) !== 0;
      if (ca === C_ZERO) {
        if (cb === C_INF && !bNeg) { f |= A.invalid(fcw); if (this.flags(f)) return; this.setSt(0, A.oSe, A.oSig); return; }
        this.flags(f); this.sw &= ~C1; return;
      }
      if (ca === C_INF) {
        if (cb === C_INF && bNeg) { f |= A.invalid(fcw); if (this.flags(f)) return; this.setSt(0, A.oSe, A.oSig); return; }
        this.flags(f); this.sw &= ~C1; return;
      }
      if (cb === C_INF) {
        this.flags(f);
        this.sw &= ~C1;
        this.setSt(0, bNeg ? aSe & 0x8000 : (aSe & 0x8000) | 0x7fff, bNeg ? 0n : J);
        return;
      }
      // n = trunc(ST(1))
      let n = 0;
      if (cb !== C_ZERO) {
        const e = lsbExp(bSe);
        let mag: bigint;
        if (e >= 0) mag = e > 40 ? 1n << 40n : bSig << BigInt(e);
        else mag = -e >= 64 ? 0n : bSig >> BigInt(-e);
        if (mag > 1000000n) mag = 1000000n;
        n = Number(mag) * (bNeg ? -1 : 1);
      }
      sfRoundReg(aSe, aSig, n, fcw);
      f |= rfl;
      if (this.flags(f) !== 0) return;
      this.setSt(0, A.oSe, A.oSig);
      return;
    }
    if (this.flags(f) !== 0 || A.noResult) return;
    this.setSt(0, A.oSe, A.oSig);
  }

  private fxtract(): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) { this.setSt(0, INDEF_SE, INDEF_SIG); this.push(INDEF_SE, INDEF_SIG); }
      return;
    }
    if (!this.isEmpty(7)) {
      this.sw |= IE | SF | C1;
      if (this.fcw & IE) { this.setSt(0, INDEF_SE, INDEF_SIG); this.push(INDEF_SE, INDEF_SIG); }
      return;
    }
    const se = this.stSe(0), sig = this.stSig(0);
    const c = classify(se, sig);
    const fcw = this.fcw;
    if (c === C_UNSUP) { if (this.flags(A.invalid(fcw))) return; this.setSt(0, A.oSe, A.oSig); this.push(A.oSe, A.oSig); return; }
    if (c === C_SNAN || c === C_QNAN) {
      if (this.flags(c === C_SNAN ? IE : 0)) return;
      const q = sig | (1n << 62n);
      this.setSt(0, se, q); this.push(se, q);
      return;
    }
    if (c === C_ZERO) {
      if (this.flags(ZE)) return;
      this.setSt(0, 0xffff, J); // -inf
      this.push(se, 0n);
      return;
    }
    if (c === C_INF) { this.flags(0); this.sw &= ~C1; this.setSt(0, 0x7fff, J); this.push(se, J); return; }
    let f = 0;
    if (c === C_DEN) { f = DE; if (this.flags(DE)) return; }
    const n = bitLength(sig);
    const exp = lsbExp(se) + n - 1;
    this.flags(f);
    this.sw &= ~C1;
    A.fromInt(BigInt(exp));
    this.setSt(0, A.oSe, A.oSig);
    this.push((se & 0x8000) | 16383, (sig << BigInt(64 - n)) & ((1n << 64n) - 1n));
  }

  private fprem(ieee: boolean): void {
    this.sw &= ~C2; // "incomplete" is cleared whatever happens next
    if (this.isEmpty(0) || this.isEmpty(1)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
    const aSe = this.stSe(0), aSig = this.stSig(0), bSe = this.stSe(1), bSig = this.stSig(1);
    const ca = classify(aSe, aSig), cb = classify(bSe, bSig);
    const fcw = this.fcw;
    A.setNoResult(false);
    if (ca === C_UNSUP || cb === C_UNSUP) { const f = A.invalid(fcw); if (this.flags(f)) return; this.setSt(0, A.oSe, A.oSig); this.sw &= ~C2; return; }
    if (A.isNaNCls(ca) || A.isNaNCls(cb)) {
      const f = ca === C_SNAN || cb === C_SNAN ? IE : 0;
      if (this.flags(f)) return;
      A.nanResult(aSe, aSig, ca, bSe, bSig, cb);
      this.setSt(0, A.oSe, A.oSig);
      this.sw &= ~C2;
      return;
    }
    if (ca === C_INF || cb === C_ZERO) {
      const f = A.invalid(fcw) | (ca === C_DEN || cb === C_DEN ? DE : 0);
      if (this.flags(f)) return;
      this.setSt(0, A.oSe, A.oSig);
      this.sw &= ~C2;
      return;
    }
    let f = 0;
    if (ca === C_DEN || cb === C_DEN) { f = DE; if (this.flags(DE)) return; }
    if (ca === C_ZERO || cb === C_INF) {
      this.flags(f);
      this.cc(0, 0, 0, 0);
      return;
    }
    const ea = lsbExp(aSe), eb = lsbExp(bSe);
    const ta = ea + bitLength(aSig) - 1, tb = eb + bitLength(bSig) - 1;
    const d = ta - tb;
    const sign = aSe & 0x8000;
    const e = Math.min(ea, eb);
    let va = aSig << BigInt(ea - e);
    const vb = bSig << BigInt(eb - e);
    if (d < 64) {
      let q = va / vb;
      let r = va - q * vb;
      let rsign = sign;
      if (ieee) {
        const twice = r * 2n;
        if (twice > vb || (twice === vb && (q & 1n) === 1n)) { q += 1n; r = vb - r; rsign ^= 0x8000; }
      }
      this.flags(f);
      const qq = Number(q & 7n);
      this.setRem(rsign, r, e);
      this.cc((qq >> 1) & 1, 0, qq & 1, (qq >> 2) & 1); // C3 = Q1, C1 = Q0, C0 = Q2
      return;
    }
    // partial remainder: reduce the exponent difference by 32..63
    const n = 32 + ((d - 32) % 32);
    const shift = BigInt(d - n);
    const vbs = vb << shift;
    const q = va / vbs;
    va -= q * vbs;
    this.flags(f);
    this.setRem(sign, va, e);
    this.sw = (this.sw & ~CC) | C2 | (this.sw & 0);
  }

  private setRem(sign: number, r: bigint, e: number): void {
    if (r === 0n) { this.setSt(0, sign, 0n); return; }
    sfRoundReg(sign, r, 0, 0x37f | 0x300, e);
    this.setSt(0, A.oSe, A.oSig);
  }

  // ---- memory forms -----------------------------------------------------------------------------------------

  private readExt(m: FpuMem, ea: number): void {
    const lo = m.rd32(ea) >>> 0, hi = m.rd32(ea + 4) >>> 0, se = m.rd16(ea + 8);
    ldSe = se;
    ldSig = (BigInt(hi) << 32n) | BigInt(lo);
  }

  private execMem(op: number, reg: number, ea: number, o16: boolean, m: FpuMem): void {
    const fcw = this.fcw;
    switch (op) {
      case 0xd8: case 0xdc: case 0xda: case 0xde: {
        // arithmetic with a memory operand: m32fp, m64fp, m32int, m16int
        let f = 0;
        if (op === 0xd8) {
          const v = m.rd32(ea) >>> 0;
          f = A.loadIEEE(v >>> 31, (v >>> 23) & 0xff, BigInt(v & 0x7fffff), 23, 0xff, 127, fcw | IE | DE);
        } else if (op === 0xdc) {
          const lo = m.rd32(ea) >>> 0, hi = m.rd32(ea + 4) >>> 0;
          f = A.loadIEEE(hi >>> 31, (hi >>> 20) & 0x7ff, (BigInt(hi & 0xfffff) << 32n) | BigInt(lo), 52, 0x7ff, 1023, fcw | IE | DE);
        } else if (op === 0xda) {
          A.fromInt(BigInt(m.rd32(ea) | 0));
        } else {
          A.fromInt(BigInt((m.rd16(ea) << 16) >> 16));
        }
        let bSe = A.oSe, bSig = A.oSig;
        if (f & IE) bSig &= ~(1n << 62n); // keep it signalling: the operation raises IE and quiets it
        if (reg === 2 || reg === 3) {
          const aC = this.isEmpty(0) ? -1 : classify(this.stSe(0), this.stSig(0));
          const den = (f & DE) !== 0 && aC >= 0 && aC !== C_UNSUP && !A.isNaNCls(aC);
          if (den && (this.fcw & DE) === 0) {
            // unmasked #D from the memory operand: codes as compared, no pop
            this.compareOp(bSe, bSig, false, false, 0, false);
            this.sw |= DE;
            return;
          }
          this.compareOp(bSe, bSig, false, false, reg - 2, false);
          if (den) this.sw |= DE;
          return;
        }
        if (this.isEmpty(0)) { if (this.underflow()) this.setSt(0, INDEF_SE, INDEF_SIG); return; }
        if (f & DE) {
          // a denormal memory operand: DE, then the operation on the exact (normalized) value
          const aC = classify(this.stSe(0), this.stSig(0));
          if (aC !== C_UNSUP && !(A.isNaNCls(aC))) {
            if (this.flags(DE)) return;
            const r = this.arith(reg, this.stSe(0), this.stSig(0), bSe, bSig);
            if (this.flags(r | DE) !== 0 || A.noResult) return;
            this.setSt(0, A.oSe, A.oSig);
            return;
          }
        }
        this.arithTo(reg, 0, bSe, bSig, false, false);
        return;
      }
      case 0xd9:
        switch (reg) {
          case 0: { // FLD m32fp
            const v = m.rd32(ea) >>> 0;
            const f = A.loadIEEE(v >>> 31, (v >>> 23) & 0xff, BigInt(v & 0x7fffff), 23, 0xff, 127, fcw);
            this.loadPush(f);
            return;
          }
          case 2: case 3: this.storeFloat(m, ea, 4, reg === 3); return;
          case 4: this.fldenv(m, ea, o16); return;
          case 5: this.fcw = m.rd16(ea) & 0x1f7f | 0x40; return;
          case 6: this.fnstenv(m, ea, o16, 0); this.fcw |= 0x3f; return;
          case 7: m.probe(ea, 2); m.wr16(ea, this.fcw); return;
        }
        this.ud = true; return;
      case 0xdb:
        switch (reg) {
          case 0: this.loadPushInt(BigInt(m.rd32(ea) | 0)); return;
          case 2: case 3: this.storeInt(m, ea, 4, reg === 3); return;
          case 5: this.readExt(m, ea); if (this.overflowPush()) return; this.sw &= ~C1; this.push(ldSe, ldSig); return;
          case 7: this.storeExt(m, ea); return;
        }
        this.ud = true; return;
      case 0xdd:
        switch (reg) {
          case 0: {
            const lo = m.rd32(ea) >>> 0, hi = m.rd32(ea + 4) >>> 0;
            const f = A.loadIEEE(hi >>> 31, (hi >>> 20) & 0x7ff, (BigInt(hi & 0xfffff) << 32n) | BigInt(lo), 52, 0x7ff, 1023, fcw);
            this.loadPush(f);
            return;
          }
          case 2: case 3: this.storeFloat(m, ea, 8, reg === 3); return;
          case 4: this.frstor(m, ea, o16); return;
          case 6: this.fnsave(m, ea, o16); return;
          case 7: m.probe(ea, 2); m.wr16(ea, this.fsw); return;
        }
        this.ud = true; return;
      case 0xdf:
        switch (reg) {
          case 0: this.loadPushInt(BigInt((m.rd16(ea) << 16) >> 16)); return;
          case 2: case 3: this.storeInt(m, ea, 2, reg === 3); return;
          case 4: { // FBLD
            let v = 0n;
            for (let k = 8; k >= 0; k--) {
              const b = m.rd8(ea + k);
              v = v * 100n + BigInt((b >> 4) * 10 + (b & 15));
            }
            const neg = (m.rd8(ea + 9) & 0x80) !== 0;
            if (this.overflowPush()) return;
            this.sw &= ~C1;
            A.fromInt(v);
            this.push(A.oSe | (neg ? 0x8000 : 0), A.oSig);
            return;
          }
          case 5: {
            const lo = m.rd32(ea) >>> 0, hi = m.rd32(ea + 4) | 0;
            this.loadPushInt((BigInt(hi) << 32n) | BigInt(lo));
            return;
          }
          case 6: this.fbstp(m, ea); return;
          case 7: this.storeInt(m, ea, 8, true); return;
        }
        this.ud = true; return;
    }
  }

  private loadPush(f: number): void {
    const se = A.oSe, sig = A.oSig, nr = A.noResult;
    if (this.overflowPush()) return;
    // an unmasked #D still loads; an unmasked #IA (SNaN) does not
    if ((this.flags(f) & IE) !== 0 || nr) return;
    this.push(se, sig);
  }

  private loadPushInt(v: bigint): void {
    if (this.overflowPush()) return;
    this.sw &= ~C1;
    A.fromInt(v);
    this.push(A.oSe, A.oSig);
  }

  private storeFloat(m: FpuMem, ea: number, size: number, pop: boolean): void {
    const fcw = this.fcw;
    let bits: bigint;
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      bits = size === 4 ? 0xffc00000n : 0xfff8000000000000n;
      this.writeBits(m, ea, size, bits);
      if (pop) this.pop();
      return;
    }
    const f = size === 4 ? A.storeIEEE(this.stSe(0), this.stSig(0), 23, 8, fcw) : A.storeIEEE(this.stSe(0), this.stSig(0), 52, 11, fcw);
    if (A.noResult) { this.flags(f); return; }
    this.writeBits(m, ea, size, A.oBits);
    this.flags(f);
    if (pop) this.pop();
  }

  private writeBits(m: FpuMem, ea: number, size: number, bits: bigint): void {
    m.probe(ea, size);
    for (let k = 0; k < size; k += 2) {
      m.wr16(ea + k, Number((bits >> BigInt(8 * k)) & 0xffffn));
    }
  }

  private storeExt(m: FpuMem, ea: number): void {
    let se = this.stSe(0), sig = this.stSig(0);
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      se = INDEF_SE; sig = INDEF_SIG;
    } else this.sw &= ~C1;
    this.writeBits(m, ea, 8, sig);
    m.wr16(ea + 8, se);
    this.pop();
  }

  private storeInt(m: FpuMem, ea: number, size: number, pop: boolean): void {
    const indef = 1n << BigInt(size * 8 - 1);
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
      this.writeBits(m, ea, size, indef);
      if (pop) this.pop();
      return;
    }
    const se = this.stSe(0), sig = this.stSig(0);
    const c = classify(se, sig);
    let f = 0;
    let v = indef;
    if (c === C_UNSUP || c === C_INF || c === C_QNAN || c === C_SNAN) f = IE;
    else {
      A.toInt(se, sig, (this.fcw >> 10) & 3);
      const neg = (se & 0x8000) !== 0;
      const lim = neg ? indef : indef - 1n;
      if (A.iMag > lim) f = IE;
      else { f = A.iFlags; v = BigInt.asUintN(size * 8, neg ? -A.iMag : A.iMag); }
    }
    if ((f & IE) && (this.fcw & IE) === 0) { this.flags(f); return; }
    this.writeBits(m, ea, size, v);
    this.flags(f);
    if (pop) this.pop();
  }

  private fbstp(m: FpuMem, ea: number): void {
    const indefBytes = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
    let bytes = indefBytes;
    let f = 0;
    if (this.isEmpty(0)) {
      if (!this.underflow()) return;
    } else {
      const se = this.stSe(0), sig = this.stSig(0);
      const c = classify(se, sig);
      if (c === C_UNSUP || c === C_INF || c === C_QNAN || c === C_SNAN) f = IE;
      else {
        A.toInt(se, sig, (this.fcw >> 10) & 3);
        if (A.iMag > 999999999999999999n) f = IE;
        else {
          f = A.iFlags;
          bytes = [];
          let v = A.iMag;
          for (let k = 0; k < 9; k++) {
            const lo = Number(v % 10n); v /= 10n;
            const hi = Number(v % 10n); v /= 10n;
            bytes.push(lo | (hi << 4));
          }
          bytes.push(se & 0x8000 ? 0x80 : 0);
        }
      }
      if ((f & IE) && (this.fcw & IE) === 0) { this.flags(f); return; }
      if (!(f & IE)) this.sw &= ~C1;
    }
    m.probe(ea, 10);
    for (let k = 0; k < 10; k++) m.wr8(ea + k, bytes[k]);
    if (f) this.flags(f);
    this.pop();
  }

  // ---- environment ------------------------------------------------------------------------------------------

  private fnstenv(m: FpuMem, ea: number, o16: boolean, _x: number): void {
    const size = o16 ? 14 : 28;
    m.probe(ea, size);
    this.writeEnv(m, ea, o16);
  }

  private writeEnv(m: FpuMem, ea: number, o16: boolean): void {
    const fsw = this.fsw, ftw = this.ftw;
    if (o16) {
      if (this.realMode) {
        m.wr16(ea, this.fcw); m.wr16(ea + 2, fsw); m.wr16(ea + 4, ftw);
        m.wr16(ea + 6, this.fip & 0xffff); m.wr16(ea + 8, ((this.fip >>> 4) & 0xf000) | this.fop);
        m.wr16(ea + 10, this.fdp & 0xffff); m.wr16(ea + 12, (this.fdp >>> 4) & 0xf000);
      } else {
        m.wr16(ea, this.fcw); m.wr16(ea + 2, fsw); m.wr16(ea + 4, ftw);
        m.wr16(ea + 6, this.fip & 0xffff); m.wr16(ea + 8, this.fcs);
        m.wr16(ea + 10, this.fdp & 0xffff); m.wr16(ea + 12, this.fds);
      }
      return;
    }
    m.wr32(ea, this.fcw | 0xffff0000); m.wr32(ea + 4, fsw | 0xffff0000); m.wr32(ea + 8, ftw | 0xffff0000);
    if (this.realMode) {
      m.wr32(ea + 12, (this.fip & 0xffff) | 0xffff0000);
      m.wr32(ea + 16, ((this.fip >>> 4) & 0x0ffff000) | this.fop);
      m.wr32(ea + 20, (this.fdp & 0xffff) | 0xffff0000);
      m.wr32(ea + 24, (this.fdp >>> 4) & 0x0ffff000);
    } else {
      m.wr32(ea + 12, this.fip);
      m.wr32(ea + 16, this.fcs | (this.fop << 16));
      m.wr32(ea + 20, this.fdp);
      m.wr32(ea + 24, this.fds | 0xffff0000);
    }
  }

  /** Read an environment image (all reads first); applied by applyEnv. */
  private readEnv(m: FpuMem, ea: number, o16: boolean): number[] {
    if (o16) {
      const w = [0, 2, 4, 6, 8, 10, 12].map((o) => m.rd16(ea + o));
      if (this.realMode) return [w[0], w[1], w[2], w[3] | ((w[4] & 0xf000) << 4), 0, w[4] & 0x7ff, w[5] | ((w[6] & 0xf000) << 4), 0];
      return [w[0], w[1], w[2], w[3], w[4], 0, w[5], w[6]]; // the 16-bit protected layout has no FOP: it reads as 0
    }
    const d = [0, 4, 8, 12, 16, 20, 24].map((o) => m.rd32(ea + o));
    if (this.realMode) return [d[0] & 0xffff, d[1] & 0xffff, d[2] & 0xffff, (d[3] & 0xffff) | ((d[4] >>> 12 & 0xffff) << 16), 0, d[4] & 0x7ff, (d[5] & 0xffff) | ((d[6] >>> 12 & 0xffff) << 16), 0];
    return [d[0] & 0xffff, d[1] & 0xffff, d[2] & 0xffff, d[3] >>> 0, d[4] & 0xffff, (d[4] >>> 16) & 0x7ff, d[5] >>> 0, d[6] & 0xffff];
  }

  private applyEnv(e: number[]): void {
    this.fcw = e[0];
    this.fsw = e[1];
    this.ftw = e[2];
    this.fip = e[3]; this.fcs = e[4]; this.fop = e[5]; this.fdp = e[6]; this.fds = e[7];
  }

  private fldenv(m: FpuMem, ea: number, o16: boolean): void {
    this.applyEnv(this.readEnv(m, ea, o16));
  }

  private fnsave(m: FpuMem, ea: number, o16: boolean): void {
    const size = o16 ? 94 : 108;
    m.probe(ea, size);
    this.writeEnv(m, ea, o16);
    const base = ea + (o16 ? 14 : 28);
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      const sig = this.sig[p];
      m.wr32(base + 10 * i, Number(sig & 0xffffffffn) | 0);
      m.wr32(base + 10 * i + 4, Number(sig >> 32n) | 0);
      m.wr16(base + 10 * i + 8, this.se[p]);
    }
    this.reset();
  }

  private frstor(m: FpuMem, ea: number, o16: boolean): void {
    const env = this.readEnv(m, ea, o16);
    const base = ea + (o16 ? 14 : 28);
    const ses: number[] = [], sigs: bigint[] = [];
    for (let i = 0; i < 8; i++) {
      const lo = m.rd32(base + 10 * i) >>> 0, hi = m.rd32(base + 10 * i + 4) >>> 0;
      sigs.push((BigInt(hi) << 32n) | BigInt(lo));
      ses.push(m.rd16(base + 10 * i + 8));
    }
    this.applyEnv(env);
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      this.se[p] = ses[i];
      this.sig[p] = sigs[i];
    }
  }
}

let ldSe = 0;
let ldSig = 0n;

// round helper shared by FSCALE and FPREM: value sig * 2^(lsbExp(se) + n), or when `e` is given, r * 2^e
import * as SFM from './softfloat.ts';
let rfl = 0;
function sfRoundReg(se: number, sig: bigint, n: number, fcw: number, e?: number): void {
  const sign = se & 0x8000 ? 1 : 0;
  SFM.roundReg(sign, sig, e !== undefined ? e : lsbExp(se) + n, false, fcw);
  rfl = SFM.rFlags;
  A.setOut(SFM.pSe, SFM.pSig);
}

// 1, log2(10), log2(e), pi, log10(2), ln(2), 0: [se, sig rounded down, sig rounded up (0n: exact), nearest is up?]
const CONSTS: [number, bigint, bigint, number][] = [
  [0x3fff, J, 0n, 0],
  [0x4000, 0xd49a784bcd1b8afen, 0xd49a784bcd1b8affn, 0],
  [0x3fff, 0xb8aa3b295c17f0bbn, 0xb8aa3b295c17f0bcn, 1],
  [0x4000, 0xc90fdaa22168c234n, 0xc90fdaa22168c235n, 1],
  [0x3ffd, 0x9a209a84fbcff798n, 0x9a209a84fbcff799n, 1],
  [0x3ffe, 0xb17217f7d1cf79abn, 0xb17217f7d1cf79acn, 1],
  [0, 0n, 0n, 0],
];

export { OE, PE, UE };

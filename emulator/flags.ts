/**
 * The general registers and the lazy flags, the lowest layer of the CPU (cpu.ts: CPU extends CodeCache
 * extends MemoryUnit extends FlagsUnit; one concrete class, so every field access stays monomorphic).
 *
 * Lazy flags: the arithmetic flags are not computed when an instruction runs; it records which formula
 * gives them (lfOp) and its operands and result (lfA, lfB, lfRes; lfMask says which flags are lazy), and
 * getCF() and friends compute them when something reads them.
 */
import { AC, AF, CF, OF, PF, SF, TF, ZF } from './constants.ts';

// Lazy flag operations: which formula gives CF, OF and AF for the last arithmetic result.
export const LF_ADD = 0;
export const LF_SUB = 1;
export const LF_ADC1 = 2; // add with carry-in 1
export const LF_SBB1 = 3; // subtract with borrow-in 1
export const LF_LOGIC = 4; // CF = OF = AF = 0

/** Parity flag of a byte: PF set when the number of set bits is even. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, n = 0;
  while (b) { n += b & 1; b >>= 1; }
  PARITY[i] = (n & 1) === 0 ? PF : 0;
}

export abstract class FlagsUnit {
  // ---- general registers: index 8 always reads 0 (absent base/index in effective addresses) ----
  readonly r32 = new Int32Array(9);
  readonly r16 = new Uint16Array(this.r32.buffer);
  readonly r8 = new Uint8Array(this.r32.buffer);

  eip = 0;
  /** EIP of the instruction being executed (where a fault restarts it). */
  prevEip = 0;
  /** EFLAGS, except the arithmetic flags named in lfMask, which come from the lazy state. */
  flags = 2;
  lfOp = 0;
  lfA = 0;
  lfB = 0;
  lfRes = 0;
  lfMask = 0;
  cpl = 0;

  // =====================================================================================================
  // Flags
  // =====================================================================================================

  getCF(): boolean {
    if ((this.lfMask & CF) === 0) return (this.flags & CF) !== 0;
    switch (this.lfOp) {
      case LF_ADD: return (this.lfRes >>> 0) < (this.lfA >>> 0);
      case LF_SUB: return (this.lfA >>> 0) < (this.lfB >>> 0);
      case LF_ADC1: return (this.lfRes >>> 0) <= (this.lfA >>> 0);
      case LF_SBB1: return (this.lfA >>> 0) <= (this.lfB >>> 0);
      default: return false;
    }
  }

  getOF(): boolean {
    if ((this.lfMask & OF) === 0) return (this.flags & OF) !== 0;
    switch (this.lfOp) {
      case LF_ADD: case LF_ADC1: return ((this.lfA ^ this.lfRes) & (this.lfB ^ this.lfRes)) < 0;
      case LF_SUB: case LF_SBB1: return ((this.lfA ^ this.lfB) & (this.lfA ^ this.lfRes)) < 0;
      default: return false;
    }
  }

  getAF(): boolean {
    if ((this.lfMask & AF) === 0) return (this.flags & AF) !== 0;
    if (this.lfOp === LF_LOGIC) return false;
    return ((this.lfA ^ this.lfB ^ this.lfRes) & 0x10) !== 0;
  }

  getZF(): boolean {
    return (this.lfMask & ZF) !== 0 ? this.lfRes === 0 : (this.flags & ZF) !== 0;
  }

  getSF(): boolean {
    return (this.lfMask & SF) !== 0 ? this.lfRes < 0 : (this.flags & SF) !== 0;
  }

  getPF(): boolean {
    return (this.lfMask & PF) !== 0 ? PARITY[this.lfRes & 0xff] !== 0 : (this.flags & PF) !== 0;
  }

  /** Evaluate condition code cc (the low nibble of Jcc/SETcc/CMOVcc). */
  cond(cc: number): boolean {
    switch (cc) {
      case 0x0: return this.getOF();
      case 0x1: return !this.getOF();
      case 0x2: return this.getCF();
      case 0x3: return !this.getCF();
      case 0x4: return this.getZF();
      case 0x5: return !this.getZF();
      case 0x6: return this.getCF() || this.getZF();
      case 0x7: return !(this.getCF() || this.getZF());
      case 0x8: return this.getSF();
      case 0x9: return !this.getSF();
      case 0xa: return this.getPF();
      case 0xb: return !this.getPF();
      case 0xc: return this.lessThan();
      case 0xd: return !this.lessThan();
      case 0xe: return this.getZF() || this.lessThan();
      default: return !(this.getZF() || this.lessThan());
    }
  }

  /** SF != OF, with a shortcut for the common CMP/SUB case (signed a < b). */
  lessThan(): boolean {
    if (this.lfMask === 0x8d5 && (this.lfOp === LF_SUB)) return this.lfA < this.lfB;
    return this.getSF() !== this.getOF();
  }

  /** The full EFLAGS value. */
  getEflags(): number {
    const m = this.lfMask;
    if (m === 0) return this.flags;
    let f = this.flags & ~m;
    if (m & CF && this.getCF()) f |= CF;
    if (m & PF && this.getPF()) f |= PF;
    if (m & AF && this.getAF()) f |= AF;
    if (m & ZF && this.getZF()) f |= ZF;
    if (m & SF && this.getSF()) f |= SF;
    if (m & OF && this.getOF()) f |= OF;
    return f;
  }

  /** Replace EFLAGS wholesale (bits the caller may not change must already be merged in). */
  setEflags(v: number): void {
    const oldAc = this.flags & AC;
    this.flags = (v & 0x3f7fd5) | 2;
    this.lfMask = 0;
    if ((this.flags & AC) !== oldAc) this.updateAccessBits();
    if (this.flags & TF) this.tfPending();
  }

  /** Fold the lazy arithmetic flags into `flags` (before an instruction that keeps some of them). */
  materializeFlags(): void {
    if (this.lfMask !== 0) {
      this.flags = this.getEflags();
      this.lfMask = 0;
    }
  }

  /** Set the six arithmetic flags from explicit values (for instructions with eager flag logic). */
  setArith(f: number): void {
    this.flags = (this.flags & ~0x8d5) | (f & 0x8d5);
    this.lfMask = 0;
  }

  /** Flags of an add of sign-extended operands a + b = res (res also sign-extended to the size). */
  lfAdd(a: number, b: number, res: number): void {
    this.lfOp = LF_ADD; this.lfA = a; this.lfB = b; this.lfRes = res; this.lfMask = 0x8d5;
  }

  lfSub(a: number, b: number, res: number): void {
    this.lfOp = LF_SUB; this.lfA = a; this.lfB = b; this.lfRes = res; this.lfMask = 0x8d5;
  }

  lfLogic(res: number): void {
    this.lfOp = LF_LOGIC; this.lfRes = res; this.lfMask = 0x8d5;
  }

  /** Recompute the TLB permission bits the fast paths need (memory.ts). */
  abstract updateAccessBits(): void;
  /** TF became set: single-step from the next instruction on (cpu.ts). */
  abstract tfPending(): void;
}

// The test case under construction and the helpers templates use to build one: register and memory
// operands with every ModRM/SIB form, windows of random memory, and the mapped regions they live in.

import { Mix, Rng, mixValue } from './rng.ts';

/** Regions the harness maps (keep in sync with harness.c). Unlisted bytes are zero; code is int3-filled. */
export const LOW = { base: 0x00001000, size: 0x0000f000 }; // reachable by 16-bit addressing
export const CODE = { base: 0x40000000, size: 0x00004000 };
export const DATA = { base: 0x50000000, size: 0x00004000 };
export const STACK = { base: 0x60000000, size: 0x00002000 };
export const REGIONS = [LOW, CODE, DATA, STACK];

export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400;
export const OF = 0x800, NT = 0x4000, RF = 0x10000, AC = 0x40000, ID = 0x200000;
export const ARITH = CF | PF | AF | ZF | SF | OF;
export const FULL = (0xffffffff & ~RF) >>> 0;

export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;
export const REG_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;
export const SEG_PREFIXES = [0x26, 0x36, 0x3e, 0x64, 0x65]; // es ss ds fs gs (cs is read-only: not used)

export type Size = 8 | 16 | 32;
export type Kind = 'reg' | 'mem';

export interface Insn {
  pre: number[];
  body: number[];
}

export class Case {
  /** Registers in encoding order: eax ecx edx ebx esp ebp esi edi. */
  r: number[] = [];
  eflags = 0x202;
  eip = 0;
  insns: Insn[] = [];
  /** Prefixes collected for the next instruction. */
  pre: number[] = [];
  code: number[] = [];
  mem = new Map<number, number>();
  /** Registers holding an address computed for a memory operand: their value is fixed. */
  locked = new Set<number>();
  mask = FULL;
  undefinedRegs = new Set<string>();
  /** The instruction itself is a trap (int3, int 3, into): a vector-3/4 stop right after it is its own. */
  trapInsn = false;
  /** For branches: every EIP the run may legally end at (otherwise only the next instruction). */
  targets: number[] | null = null;
  /** The template expects the instruction to fault; a mismatch is reported (hardware still wins). */
  expectFault = false;
  block = false;
  constructor(public group: string, public name: string) {}

  get length(): number {
    return this.insns.reduce((n, i) => n + i.pre.length + i.body.length, 0) + this.pre.length;
  }
}

export interface MemOpts {
  /** Registers the address may not use (they hold other operands). */
  avoid?: number[];
  /** Use this effective address (else a random one inside a data region). */
  target?: number;
  /** The operand is not accessed (lea, nop): any address, no memory window. */
  noAccess?: boolean;
  /** Force (true) or forbid (false) the 16-bit addressing forms (0x67). */
  addr16?: boolean;
  /** Allow ESP as SIB base (address then lands in the stack page). */
  allowEsp?: boolean;
  /** Allow a segment override prefix (default yes). */
  seg?: boolean;
  /** Value to store at the operand (default: a mix value of the operand size). */
  value?: number;
  /** Bytes of random memory before and after the operand. */
  margin?: number;
  /** Width of the data actually accessed in bytes, when it differs from the size (m64, m16&16...). */
  bytes?: number;
}

export interface MemResult {
  bytes: number[];
  addr: number;
  addr16: boolean;
}

export class Gen {
  blockMode = false;
  /** Probability that a memory operand uses 16-bit addressing. */
  addr16Rate = 0.15;
  segRate = 0.12;

  constructor(public rng: Rng, public mix: Mix) {}

  val(bits: Size): number {
    return mixValue(this.rng, this.mix, bits);
  }

  begin(group: string, name: string): Case {
    const c = new Case(group, name);
    const rng = this.rng;
    for (let i = 0; i < 8; i++) c.r.push(this.val(32));
    c.r[ESP] = (STACK.base + 0x400 + rng.below(STACK.size - 0x800)) & ~(rng.chance(0.9) ? 3 : 1);
    c.eflags = (0x202 | (rng.u32() & ARITH) | (rng.chance(0.25) ? DF : 0)) >>> 0;
    c.eip = CODE.base + 0x100 + rng.below(CODE.size - 0x300);
    return c;
  }

  // ---- registers -------------------------------------------------------------------------------

  setReg(c: Case, r: number, v: number): void {
    if (this.blockMode || r === ESP || c.locked.has(r)) return;
    c.r[r] = v >>> 0;
  }

  /** Write `v` into the size-wide part of register `r` as an instruction encodes it (8-bit 4..7 = AH..BH). */
  setPart(c: Case, size: Size, r: number, v: number): void {
    if (size === 32) return this.setReg(c, r, v);
    if (size === 16) return this.setReg(c, r, ((c.r[r] & 0xffff0000) | (v & 0xffff)) >>> 0);
    if (r < 4) return this.setReg(c, r, ((c.r[r] & ~0xff) | (v & 0xff)) >>> 0);
    this.setReg(c, r - 4, ((c.r[r - 4] & ~0xff00) | ((v & 0xff) << 8)) >>> 0);
  }

  part(c: Case, size: Size, r: number): number {
    if (size === 32) return c.r[r];
    if (size === 16) return c.r[r] & 0xffff;
    return r < 4 ? c.r[r] & 0xff : (c.r[r - 4] >>> 8) & 0xff;
  }

  /** A register number for an operand; ESP only for 8-bit (AH) or when allowed, never in blocks. */
  pickReg(size: Size, allowEsp = true): number {
    for (;;) {
      const r = this.rng.below(8);
      if (size !== 8 && r === ESP && (!allowEsp || this.blockMode)) continue;
      return r;
    }
  }

  /** A general-register operand (the ModRM reg field or r/m): picks it and gives it a mix value. */
  regOperand(c: Case, size: Size, allowEsp = true): number {
    const r = this.pickReg(size, allowEsp);
    this.setPart(c, size, r, this.val(size));
    return r;
  }

  // ---- memory ----------------------------------------------------------------------------------

  inRegion(addr: number): boolean {
    return REGIONS.some((g) => addr >= g.base && addr < g.base + g.size);
  }

  /** Random bytes at addresses not yet listed. */
  fill(c: Case, addr: number, len: number): void {
    for (let i = 0; i < len; i++) {
      const a = (addr + i) >>> 0;
      if (!this.inRegion(a)) throw new Error(`fill outside regions: ${a.toString(16)} (${c.name})`);
      if (!c.mem.has(a)) c.mem.set(a, this.rng.u8());
    }
  }

  put(c: Case, addr: number, nbytes: number, v: number | bigint): void {
    let x = BigInt.asUintN(nbytes * 8, BigInt(v));
    for (let i = 0; i < nbytes; i++) {
      const a = (addr + i) >>> 0;
      if (!this.inRegion(a)) throw new Error(`put outside regions: ${a.toString(16)} (${c.name})`);
      c.mem.set(a, Number(x & 0xffn));
      x >>= 8n;
    }
  }

  get(c: Case, addr: number, nbytes: number): number {
    let v = 0;
    for (let i = nbytes - 1; i >= 0; i--) v = v * 256 + (c.mem.get((addr + i) >>> 0) ?? 0);
    return v;
  }

  dataAddr(lo = 0x100): number {
    return DATA.base + lo + this.rng.below(DATA.size - 2 * lo);
  }

  lowAddr(lo = 0x100): number {
    return LOW.base + lo + this.rng.below(LOW.size - 2 * lo);
  }

  maybeSeg(c: Case, opts: { seg?: boolean } = {}): void {
    if (opts.seg !== false && this.rng.chance(this.segRate)) c.pre.push(this.rng.pick(SEG_PREFIXES));
  }

  /**
   * A memory operand: returns the ModRM (with `regField`), SIB and displacement bytes, sets the base
   * and index registers so the effective address is the target, and fills a window of memory around it
   * (the operand itself gets opts.value or a mix value).
   */
  mem(c: Case, size: Size, regField: number, opts: MemOpts = {}): MemResult {
    const rng = this.rng;
    const nbytes = opts.bytes ?? size / 8;
    const avoid = new Set<number>([...(opts.avoid ?? []), ...c.locked]);
    let addr16 = opts.addr16 ?? (!this.blockMode && rng.chance(this.addr16Rate));
    if (this.blockMode && !opts.noAccess) addr16 = false;
    let res: MemResult;
    if (addr16) {
      const target = opts.target ?? (opts.noAccess ? rng.u32() & 0xffff : this.lowAddr());
      res = this.mem16(c, regField, target & 0xffff, avoid);
    } else {
      res = this.mem32(c, regField, opts, avoid);
    }
    if (res.addr16) c.pre.push(0x67);
    this.maybeSeg(c, opts);
    if (!opts.noAccess) {
      const m = opts.margin ?? 4;
      this.fill(c, res.addr - m, nbytes + 2 * m);
      this.put(c, res.addr, nbytes, opts.value ?? (nbytes <= 4 ? this.val(size) : rng.u32()));
    }
    return res;
  }

  private lock(c: Case, regs: number[]): void {
    for (const r of regs) c.locked.add(r);
  }

  private mem32(c: Case, regField: number, opts: MemOpts, avoid: Set<number>): MemResult {
    const rng = this.rng;
    const reg3 = (regField & 7) << 3;
    const abs = (t: number): MemResult => ({ bytes: [reg3 | 5, ...le(t, 4)], addr: t >>> 0, addr16: false });
    const free = [EAX, ECX, EDX, EBX, EBP, ESI, EDI].filter((r) => !avoid.has(r));
    let target = opts.target ?? (opts.noAccess ? rng.u32() : this.dataAddr());
    if (this.blockMode && !opts.noAccess) return abs(target);
    const form = rng.below(10);
    if (form === 0 || free.length === 0) return abs(target);
    if (form <= 3) {
      // [base], [base+disp8], [base+disp32]
      const base = rng.pick(free);
      let mod = rng.below(3);
      if (base === EBP && mod === 0) mod = 1;
      const disp = mod === 0 ? 0 : mod === 1 ? signed8(rng.u8()) : rng.chance(0.5) ? rng.range(-4096, 4096) : rng.u32() | 0;
      this.setReg(c, base, target - disp);
      this.lock(c, [base]);
      const d = mod === 0 ? [] : mod === 1 ? [disp & 0xff] : le(disp, 4);
      return { bytes: [(mod << 6) | reg3 | base, ...d], addr: target >>> 0, addr16: false };
    }
    // SIB forms: [base+index*scale+disp], [index*scale+disp32] (no base), [esp+...]
    const scale = rng.below(4);
    const useIndex = rng.chance(0.85);
    const index = useIndex ? rng.pick(free) : 4;
    let mod = rng.below(3);
    let base: number; // -1: no base (SIB base field 5 with mod 0)
    const espBase = opts.allowEsp !== false && !avoid.has(ESP) && rng.chance(0.15);
    if (espBase) base = ESP;
    else {
      const choices = free.filter((r) => r !== index);
      if (choices.length === 0 || rng.chance(0.15)) {
        base = -1;
        mod = 0;
      } else {
        base = rng.pick(choices);
        if (base === EBP && mod === 0) mod = 1;
      }
    }
    let disp = mod === 1 ? signed8(rng.u8()) : mod === 2 ? rng.range(-4096, 4096) : 0;
    let idxVal = 0;
    if (useIndex) idxVal = espBase ? rng.range(-16, 16) : rng.chance(0.6) ? rng.range(-512, 512) : rng.u32() | 0;
    const scaled = Math.imul(idxVal, 1 << scale);
    if (espBase) {
      if (mod === 2) disp = rng.range(-256, 256);
      target = (c.r[ESP] + scaled + disp) >>> 0;
    } else if (base === -1) disp = (target - scaled) | 0;
    else this.setReg(c, base, target - scaled - disp);
    if (useIndex) this.setReg(c, index, idxVal);
    this.lock(c, [...(useIndex ? [index] : []), ...(base >= 0 && base !== ESP ? [base] : [])]);
    const modrm = (mod << 6) | reg3 | 4;
    const sib = (scale << 6) | ((index & 7) << 3) | (base < 0 ? 5 : base);
    const d = mod === 1 ? [disp & 0xff] : mod === 2 || base < 0 ? le(disp, 4) : [];
    return { bytes: [modrm, sib, ...d], addr: target >>> 0, addr16: false };
  }

  private mem16(c: Case, regField: number, target: number, avoid: Set<number>): MemResult {
    const rng = this.rng;
    const reg3 = (regField & 7) << 3;
    const RM16: number[][] = [[EBX, ESI], [EBX, EDI], [EBP, ESI], [EBP, EDI], [ESI], [EDI], [EBP], [EBX]];
    const ok = [0, 1, 2, 3, 4, 5, 6, 7].filter((rm) => RM16[rm].every((r) => !avoid.has(r)));
    if (ok.length === 0 || rng.chance(0.1)) return { bytes: [reg3 | 6, ...le(target, 2)], addr: target, addr16: true };
    const rm = rng.pick(ok);
    let mod = rng.below(3);
    if (rm === 6 && mod === 0) mod = 1;
    const disp = mod === 0 ? 0 : mod === 1 ? signed8(rng.u8()) : rng.u32() & 0xffff;
    const hi = () => (rng.chance(0.5) ? rng.u32() & 0xffff0000 : 0);
    const regs = RM16[rm];
    if (regs.length === 2) {
      const v1 = rng.u32() & 0xffff;
      this.setReg(c, regs[0], hi() | v1);
      this.setReg(c, regs[1], hi() | ((target - v1 - disp) & 0xffff));
    } else this.setReg(c, regs[0], hi() | ((target - disp) & 0xffff));
    this.lock(c, regs);
    const d = mod === 1 ? [disp & 0xff] : mod === 2 ? le(disp, 2) : [];
    return { bytes: [(mod << 6) | reg3 | rm, ...d], addr: target, addr16: true };
  }

  /** A ModRM r/m operand of either kind; returns its bytes (a register operand gets a mix value). */
  rm(c: Case, size: Size, regField: number, kind: Kind, opts: MemOpts = {}): number[] {
    if (kind === 'reg') {
      const r = this.regOperand(c, size, true);
      return [0xc0 | ((regField & 7) << 3) | r];
    }
    return this.mem(c, size, regField, opts).bytes;
  }

  // ---- instructions ----------------------------------------------------------------------------

  opsize(c: Case, size: Size): void {
    if (size === 16) c.pre.push(0x66);
  }

  insn(c: Case, body: number[]): void {
    c.insns.push({ pre: c.pre, body });
    c.pre = [];
  }

  /** Lay the instruction bytes out at EIP (prefix order is shuffled now and then). */
  finish(c: Case): Case {
    if (c.pre.length) throw new Error(`dangling prefixes in ${c.name}`);
    c.code = [];
    for (const i of c.insns) {
      const pre = [...i.pre];
      if (pre.length > 1 && this.rng.chance(0.3)) this.rng.shuffle(pre);
      c.code.push(...pre, ...i.body);
    }
    if (c.eip + c.code.length + 16 > CODE.base + CODE.size) c.eip = CODE.base + 0x100;
    return c;
  }
}

export function le(v: number, n: number): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(n * 8, BigInt(Math.trunc(v)));
  for (let i = 0; i < n; i++) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
  }
  return out;
}

export function signed8(v: number): number {
  return (v << 24) >> 24;
}

export function signedN(v: number, bits: number): number {
  return bits === 32 ? v | 0 : (v << (32 - bits)) >> (32 - bits);
}

export function maskOf(size: Size): number {
  return size === 32 ? 0xffffffff : (1 << size) - 1;
}

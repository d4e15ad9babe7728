/**
 * The differential fuzzer's machinery (test/property/cpu-diff.test.ts, test/property/cpu-fuzz.test.ts):
 * random i386 programs built from real instruction encodings, bare ring-0 and ring-3 machines to run them
 * in, and a lockstep runner that executes one program on several engines (the interpreter with its
 * inline cases, every op through its handler, the block compiler) and compares the whole machine state
 * after every slice of the run loop.
 *
 * A slice is usually `run(1)`, which executes exactly one block (or stops at a fault): the state is then
 * compared at every block boundary. Some slices are longer (the same random length for every engine), so
 * a compiled loop also runs many iterations in one call and is compared when it returns.
 *
 * The machine: 512 KiB of RAM, optionally paged through identity-mapped page tables with holes (page 0,
 * a not-present data page, a read-only page, a supervisor-only page, nothing above RAM), flat segments
 * except FS (base 0x1000) and GS (base 0x20000, limit 0xfff), optionally a 16-bit stack. Exceptions stop
 * the run (ExceptionMode.Stop) and are compared (vector, error code, EIP, CR2); the runner then resumes
 * every engine at the generated instruction that follows the faulting one, so one program meets many
 * faults.
 */
import { CPU, ExceptionMode } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { FS, GS, SS } from '../../emulator/constants.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';

export const MEM_SIZE = 0x80000;
export const CODE = 0x10000;
const CODE_END = 0x12000;
const DATA_BASE = 0x20000; // EBX
const DATA_BASE2 = 0x21800; // EBP
const RO_PAGE = 0x22000;
const NP_PAGE = 0x23000;
const SUP_PAGE = 0x24000;
const STACK_TOP = 0x2ff00;
const PD = 0x70000;
const PT = 0x71000;
/** Memory compared between engines: everything a program can reach (the page tables included). */
const COMPARE = [[0, 0x40000], [PD, PT + 0x1000]] as const;

export type Engine = 'interpreter' | 'handlers' | 'compiled';
export const ENGINES: readonly Engine[] = ['interpreter', 'handlers', 'compiled'];

/** xorshift32: deterministic, seeded, fast. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    // mix the seed (consecutive seeds would otherwise start alike)
    let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.s = ((h ^ (h >>> 16)) >>> 0) || 0x9e3779b9;
  }
  u32(): number { let s = this.s; s ^= s << 13; s ^= s >>> 17; s ^= s << 5; this.s = s; return s >>> 0; }
  int(n: number): number { return this.u32() % n; }
  chance(p: number): boolean { return this.u32() / 4294967296 < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  i32(): number { return this.u32() | 0; }
}

/** The environment a program runs in. */
export interface Env {
  cpl: 0 | 3;
  paging: boolean;
  /** CR0.WP (ring 0 with paging: writes to read-only pages fault). */
  wp: boolean;
  /** SS is a 16-bit stack (B = 0) with base 0x20000. */
  stack16: boolean;
  /** CR0.AM and EFLAGS.AC (ring 3: misaligned accesses raise #AC). */
  alignCheck: boolean;
}

export interface Program {
  seed: number;
  env: Env;
  /** Where the code is loaded and starts. */
  base: number;
  code: Uint8Array;
  /** Offset of the program's final HLT (the subroutines follow it). */
  end: number;
  /** Start offsets (from CODE) of the generated instructions, in order; the last one is the final HLT. */
  starts: number[];
  /** Initial general registers. */
  regs: Int32Array;
  /** Random bytes for the data areas. */
  dataSeed: number;
  /** Random bytes instead of generated instructions (the old crash fuzzer's programs). */
  rawBytes: boolean;
}

// ---- program generator ---------------------------------------------------------------------------------

/** Registers random instructions may write: EAX ECX EDX ESI EDI (EBX and EBP hold data pointers). */
const FREE = [0, 1, 2, 6, 7];

class Gen {
  readonly b: number[] = [];
  readonly starts: number[] = [];
  /** Forward references: [position of the rel field, size 1|4, label id]. */
  private readonly fix: [number, number, number][] = [];
  readonly labels = new Map<number, number>();
  private nextLabel = 0;
  /** Registers the current loop's counter lives in (not to be written by its body). */
  avoid = new Set<number>();
  /** Subroutines to emit after the main program: [label, body length]. */
  readonly subs: number[] = [];

  constructor(readonly r: Rng, readonly env: Env, readonly base: number) {}

  get pos(): number { return this.b.length; }
  begin(): void { this.starts.push(this.b.length); }
  emit(...bytes: number[]): void { for (const x of bytes) this.b.push(x & 0xff); }
  imm16(v: number): void { this.emit(v, v >> 8); }
  imm32(v: number): void { this.emit(v, v >> 8, v >> 16, v >> 24); }
  label(): number { return this.nextLabel++; }
  place(l: number): void { this.labels.set(l, this.b.length); }
  ref(l: number, size: 1 | 4): void {
    this.fix.push([this.b.length, size, l]);
    for (let i = 0; i < size; i++) this.b.push(0);
  }
  resolve(): void {
    for (const [at, size, l] of this.fix) {
      const target = this.labels.get(l);
      if (target === undefined) throw new Error('cpu-diff: unplaced label');
      const rel = target - (at + size);
      if (size === 1) {
        if (rel < -128 || rel > 127) throw new Error('cpu-diff: short jump out of range');
        this.b[at] = rel & 0xff;
      } else for (let i = 0; i < 4; i++) this.b[at + i] = (rel >> (8 * i)) & 0xff;
    }
  }

  /** A register a random instruction may write. */
  wreg(): number {
    for (;;) { const x = this.r.pick(FREE); if (!this.avoid.has(x)) return x; }
  }
  /** Any register to read. */
  rreg(): number { return this.r.int(8); }

  /** A ModRM (+SIB +displacement) for a memory operand with `reg` in the reg field. 16-bit addressing
   *  when the caller already emitted 0x67. */
  mem(reg: number, a16: boolean): void {
    const r = this.r;
    if (a16) {
      const rm = r.int(8);
      const mod = r.int(3);
      if (mod === 0 && rm === 6) { this.emit((reg << 3) | 6); this.imm16(0x8000 + r.int(0x2000)); return; }
      this.emit((mod << 6) | (reg << 3) | rm);
      if (mod === 1) this.emit(r.int(256));
      else if (mod === 2) this.imm16(r.int(0x10000));
      return;
    }
    switch (r.int(9)) {
      case 0: case 1: case 2: // [ebx + disp8]
        this.emit(0x40 | (reg << 3) | 3, r.int(256)); return;
      case 3: // [ebp + disp32]: around the data pages, sometimes into the special ones
        this.emit(0x80 | (reg << 3) | 5); this.imm32(-0x2800 + r.int(0x7000)); return;
      case 4: // [ebx + esi*s + disp8] (ESI is usually a small value by then, or wild)
        this.emit(0x44 | (reg << 3), (r.int(4) << 6) | (6 << 3) | 3, r.int(256)); return;
      case 5: { // [disp32]: absolute, anywhere interesting
        const t = r.pick([0x8000 + r.int(0x8000), DATA_BASE + r.int(0x3000), RO_PAGE + r.int(0x1000),
          NP_PAGE - 2 + r.int(8), SUP_PAGE + r.int(0x1000), 0x7fffe + r.int(4), PT + r.int(0x1000),
          0x000 + r.int(16), 0xfffffffe]);
        this.emit((reg << 3) | 5); this.imm32(t); return;
      }
      case 6: // [esp + disp8]
        this.emit(0x44 | (reg << 3), 0x24, r.int(32)); return;
      case 7: // [ebx] or [ebp + 0]
        if (r.chance(0.5)) this.emit((reg << 3) | 3); else this.emit(0x45 | (reg << 3), 0);
        return;
      default: // [reg + disp8] with any base (wild pointers included)
        this.emit(0x40 | (reg << 3) | this.r.pick([0, 1, 2, 3, 6, 7]), r.int(256));
    }
  }

  /** A ModRM for a register or memory operand (E); the register form writes `wreg`. */
  modrm(reg: number, write: boolean, a16: boolean, memProb = 0.45): boolean {
    if (this.r.chance(memProb)) { this.mem(reg, a16); return true; }
    this.emit(0xc0 | (reg << 3) | (write ? this.wreg() : this.rreg()));
    return false;
  }

  /** Prefixes: an operand-size, address-size or segment override, sometimes. Returns a16. */
  prefixes(allowO16: boolean, allowA16: boolean): { o16: boolean; a16: boolean } {
    const r = this.r;
    let o16 = false, a16 = false;
    if (allowO16 && r.chance(0.15)) { this.emit(0x66); o16 = true; }
    if (allowA16 && r.chance(0.08)) { this.emit(0x67); a16 = true; }
    if (r.chance(0.1)) this.emit(r.pick([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65]));
    return { o16, a16 };
  }

  /** One random non-control-flow instruction. */
  insn(): void {
    const r = this.r;
    this.begin();
    const k = r.int(100);
    if (k < 22) { // group-1 ALU in every form
      const op = r.int(8);
      const form = r.int(9);
      const lock = form <= 1 && op !== 7 && r.chance(0.1);
      if (lock) this.emit(0xf0);
      const { o16, a16 } = this.prefixes(true, true);
      switch (form) {
        case 0: case 1: this.emit((op << 3) | r.int(2)); if (lock) this.mem(this.rreg(), a16); else this.modrm(this.rreg(), op !== 7, a16); return;
        case 2: case 3: this.emit((op << 3) | (2 + r.int(2)), 0xc0 | (this.wreg() << 3) | this.rreg()); return;
        case 4: this.emit((op << 3) | 2); this.mem(this.wreg(), a16); return;
        case 5: this.emit((op << 3) | 3); this.mem(this.wreg(), a16); return;
        case 6: this.emit((op << 3) | 4, r.int(256)); if (this.avoid.has(0)) this.b[this.b.length - 2] = 0x38 | 4; return;
        case 7: { const w = r.pick([0x80, 0x81, 0x83]); this.emit(w); this.modrm(op, op !== 7, a16);
          if (w === 0x81) { if (o16) this.imm16(r.int(0x10000)); else this.imm32(this.immVal()); } else this.emit(r.int(256)); return; }
        default: { this.emit(0x81, 0xc0 | (op << 3) | this.wreg()); if (o16) this.imm16(r.int(0x10000)); else this.imm32(this.immVal()); return; }
      }
    }
    if (k < 28) { // TEST
      const { o16, a16 } = this.prefixes(true, true);
      switch (r.int(3)) {
        case 0: this.emit(0x84 + r.int(2)); this.modrm(this.rreg(), false, a16); return;
        case 1: this.emit(0xa9); if (o16) this.imm16(r.int(0x10000)); else this.imm32(this.immVal()); return;
        default: { const w = r.int(2); this.emit(0xf6 + w); this.modrm(0, false, a16); if (w === 0) this.emit(r.int(256)); else if (o16) this.imm16(r.u32()); else this.imm32(this.immVal()); return; }
      }
    }
    if (k < 34) { // INC DEC NOT NEG
      if (r.chance(0.3)) { if (r.chance(0.2)) this.emit(0x66); this.emit(0x40 | (r.int(2) << 3) | this.wreg()); return; }
      const lock = r.chance(0.1);
      if (lock) this.emit(0xf0);
      const { a16 } = this.prefixes(true, true);
      const which = r.int(4);
      if (which < 2) { this.emit(0xfe + r.int(2)); if (lock) this.mem(which, a16); else this.modrm(which, true, a16); }
      else { this.emit(0xf6 + r.int(2)); if (lock) this.mem(which, a16); else this.modrm(which, true, a16); }
      return;
    }
    if (k < 40) { // shifts and rotates
      const { a16 } = this.prefixes(true, true);
      const form = r.int(3), w = r.int(2), sub = r.int(8);
      if (form === 0) { this.emit(0xc0 + w); this.modrm(sub, true, a16); this.emit(r.chance(0.7) ? r.int(32) : r.int(256)); }
      else if (form === 1) { this.emit(0xd0 + w); this.modrm(sub, true, a16); }
      else { this.emit(0xd2 + w); this.modrm(sub, true, a16); }
      return;
    }
    if (k < 43) { // MUL IMUL DIV IDIV and the IMUL forms
      const { o16, a16 } = this.prefixes(true, true);
      if (this.avoid.has(0) || this.avoid.has(2)) { this.emit(0x0f, 0xaf); this.modrm(this.wreg(), false, a16); return; }
      switch (r.int(4)) {
        case 0: this.emit(0xf6 + r.int(2)); this.modrm(4 + r.int(4), false, a16); return;
        case 1: this.emit(0x0f, 0xaf); this.emit(0xc0 | (this.wreg() << 3) | this.rreg()); return;
        case 2: this.emit(0x6b, 0xc0 | (this.wreg() << 3) | this.rreg(), r.int(256)); return;
        default: this.emit(0x69); this.mem(this.wreg(), a16); if (o16) this.imm16(r.u32()); else this.imm32(this.immVal()); return;
      }
    }
    if (k < 58) { // MOV in its forms
      const { o16, a16 } = this.prefixes(true, true);
      switch (r.int(8)) {
        case 0: case 1: this.emit(0x88 + r.int(2)); this.modrm(this.rreg(), true, a16, 0.7); return;
        case 2: case 3: this.emit(0x8a + r.int(2)); this.modrm(this.wreg(), false, a16, 0.7); return;
        case 4: { const w = r.int(2); this.emit(0xc6 + w); this.modrm(0, true, a16); if (w === 0) this.emit(r.int(256)); else if (o16) this.imm16(r.u32()); else this.imm32(this.immVal()); return; }
        case 5: { const w = r.int(2); this.emit(w ? 0xb8 | this.wreg() : 0xb0 | [0, 1, 2, 4, 5, 6][r.int(6)]); if (w === 0) this.emit(r.int(256)); else if (o16) this.imm16(r.u32()); else this.imm32(this.immVal()); if (w === 0 && this.avoidByte()) { this.b.length = this.starts.pop()!; this.insnNop(); } return; }
        case 6: this.emit(0x8d); this.mem(this.wreg(), a16); return; // LEA
        default: { // moffs forms
          this.emit(0xa0 + r.int(4));
          const t = r.pick([DATA_BASE + r.int(0x1000), 0x8000 + r.int(0x100), NP_PAGE + r.int(4)]);
          if (a16) this.imm16(t); else this.imm32(t);
          if ((this.b[this.b.length - (a16 ? 3 : 5)] & 2) === 0 && this.avoid.has(0)) { this.b.length = this.starts.pop()!; this.insnNop(); }
          return;
        }
      }
    }
    if (k < 62) { // MOVZX MOVSX
      const { a16 } = this.prefixes(true, true);
      this.emit(0x0f, r.pick([0xb6, 0xb7, 0xbe, 0xbf]));
      this.modrm(this.wreg(), false, a16, 0.6);
      this.fixRegForm();
      return;
    }
    if (k < 66) { // XCHG, XADD, CMPXCHG
      const lock = r.chance(0.2);
      if (lock) this.emit(0xf0);
      const { a16 } = this.prefixes(true, true);
      switch (r.int(4)) {
        case 0: this.emit(0x86 + r.int(2)); this.modrm(this.wreg(), true, a16, lock ? 1 : 0.6); this.fixRegForm(); return;
        case 1: this.emit(0x0f, 0xc0 + r.int(2)); this.modrm(this.wreg(), true, a16, lock ? 1 : 0.6); this.fixRegForm(); return;
        case 2: if (this.avoid.has(0)) { this.emit(0x90); return; } this.emit(0x0f, 0xb0 + r.int(2)); this.modrm(this.wreg(), true, a16, lock ? 1 : 0.6); this.fixRegForm(); return;
        default: if (lock) { this.b.length = this.starts[this.starts.length - 1]; } this.emit(0x90 | this.wreg()); if (this.avoid.has(0)) this.b[this.b.length - 1] = 0x90; return;
      }
    }
    if (k < 71) { // PUSH POP (balanced enough: the stack has room both ways)
      const { a16 } = this.prefixes(r.chance(0.5), true);
      switch (r.int(6)) {
        case 0: this.emit(0x50 | this.rreg()); return;
        case 1: this.emit(0x58 | this.wreg()); return;
        case 2: this.emit(0x68); this.imm32(this.immVal()); return;
        case 3: this.emit(0x6a, r.int(256)); return;
        case 4: this.emit(0xff); this.mem(6, a16); return;
        default: this.emit(0x8f); this.mem(0, a16); return;
      }
    }
    if (k < 76) { // CMOVcc SETcc
      const { a16 } = this.prefixes(true, true);
      if (r.chance(0.5)) { this.emit(0x0f, 0x40 | r.int(16)); this.modrm(this.wreg(), false, a16); this.fixRegForm(); }
      else { this.emit(0x0f, 0x90 | r.int(16)); this.modrm(0, true, a16); if (this.lastIsRegAvoided()) this.b[this.b.length - 1] = 0xc0 | 2; }
      return;
    }
    if (k < 81) { // bit ops
      const lock = r.chance(0.1);
      if (lock) this.emit(0xf0);
      const { a16 } = this.prefixes(true, true);
      switch (r.int(4)) {
        case 0: this.emit(0x0f, r.pick([0xa3, 0xab, 0xb3, 0xbb])); if (lock) this.mem(this.rreg(), a16); else this.modrm(this.rreg(), true, a16); return;
        case 1: this.emit(0x0f, 0xba); if (lock) this.mem(4 + r.int(4), a16); else this.modrm(4 + r.int(4), true, a16); this.emit(r.int(256)); return;
        case 2: this.emit(0x0f, 0xbc + r.int(2)); this.modrm(this.wreg(), false, a16); this.fixRegForm(); return;
        default: this.b.length = this.starts[this.starts.length - 1]; this.emit(0x0f, 0xc8 | this.wreg()); return;
      }
    }
    if (k < 84) { // SHLD SHRD
      const { a16 } = this.prefixes(true, true);
      const imm = r.chance(0.5);
      this.emit(0x0f, r.pick([0xa4, 0xac]) + (imm ? 0 : 1));
      this.modrm(this.rreg(), true, a16);
      if (imm) this.emit(r.int(40));
      return;
    }
    if (k < 89) { this.b.length = this.starts.pop()!; this.stringOp(); return; }
    if (k < 94) { // one-byte flag and conversion instructions
      const avoidA = this.avoid.has(0), avoidD = this.avoid.has(2);
      const pool = [0xf8, 0xf9, 0xf5, 0xfc, 0xfd, 0x9c, 0x9f, 0x9e, 0x90];
      if (!avoidA) pool.push(0x98, 0x27, 0x2f, 0x37, 0x3f, 0xd4, 0xd5);
      if (!avoidD && !avoidA) pool.push(0x99);
      const op = r.pick(pool);
      if (op === 0x9f && avoidA) { this.emit(0x90); return; }
      this.emit(op);
      if (op === 0xd4 || op === 0xd5) this.emit(r.chance(0.1) ? 0 : r.int(256));
      if (op === 0x9c) { this.begin(); this.emit(0x9d); } // PUSHF; POPF: POPF of what PUSHF saved
      return;
    }
    if (k < 95) { // POPF of a value with random arithmetic flags and DF
      this.emit(0x68); this.imm32((this.r.u32() & 0x8d5) | 2 | (r.chance(0.3) ? 0x400 : 0) | 0x200);
      this.begin(); this.emit(0x9d);
      return;
    }
    if (k < 97) { this.b.length = this.starts.pop()!; this.stackExcursion(); return; }
    if (k < 98) { // faults on purpose
      const pool = [[0x0f, 0x0b], [0xfa], [0xfb], [0xcc], [0xf0, 0x90], [0x8e, 0xd8]];
      if (this.env.cpl === 3) pool.push([0xe4, 0x40], [0x0f, 0x22, 0xc0], [0x0f, 0x01, 0x15, 0, 0x80, 0, 0]); // IN, MOV CR0, LGDT: #GP
      else if (!this.avoid.has(0)) pool.push([0xe4, 0x40]);
      this.emit(...r.pick(pool));
      if (this.b[this.b.length - 2] === 0x8e) { this.b.length -= 2; this.emit(0x8c, 0xd8); this.begin(); this.emit(0x8e, 0xd8); } // mov ax, ds; mov ds, ax
      if (this.b[this.b.length - 1] === 0xcc) { this.b[this.b.length - 1] = 0x0f; this.emit(0x0b); } // (no IDT: UD2 instead of INT3)
      return;
    }
    // self-modifying code: a store into the code ahead (or behind) of this instruction
    this.smc();
  }

  private insnNop(): void { this.begin(); this.emit(0x90); }
  /** A byte register write (B0+r) that would hit a loop counter's low byte. */
  private avoidByte(): boolean {
    const op = this.b[this.b.length - 2];
    return (op & 0xf8) === 0xb0 && this.avoid.has(op & 3);
  }
  /** For a reg,reg ModRM just emitted with reg = destination: nothing to fix (wreg chose it). */
  private fixRegForm(): void { /* the destination came from wreg() */ }
  private lastIsRegAvoided(): boolean {
    const m = this.b[this.b.length - 1];
    return (m & 0xc0) === 0xc0 && this.avoid.has(m & 3);
  }
  private immVal(): number {
    return this.r.pick([this.r.i32(), this.r.int(256), -1, 0x7fffffff, (0x80000000 | 0), this.r.int(16) - 8]);
  }

  /** A string instruction with its set-up: ESI and EDI into the data (or low) area, a small ECX. */
  stringOp(): void {
    const r = this.r;
    if (this.avoid.has(1) || this.avoid.has(6) || this.avoid.has(7)) { this.insnNop(); return; }
    const a16 = r.chance(0.15);
    const src = a16 ? 0x8000 + r.int(0x1000) : r.pick([DATA_BASE + r.int(0x1000), NP_PAGE - r.int(16), RO_PAGE - r.int(16), 0x8000 + r.int(0x100)]);
    const dst = a16 ? 0x9000 + r.int(0x1000) : r.pick([DATA_BASE + 0x800 + r.int(0x1000), NP_PAGE - r.int(16), RO_PAGE - r.int(16), CODE + 0x1000 + r.int(0x800)]);
    this.begin(); this.emit(0xbe); this.imm32(src);
    this.begin(); this.emit(0xbf); this.imm32(dst);
    this.begin(); this.emit(0xb9); this.imm32(r.int(24));
    if (r.chance(0.2)) { this.begin(); this.emit(r.pick([0xfc, 0xfd])); }
    this.begin();
    const op = r.pick([0xa4, 0xa5, 0xaa, 0xab, 0xac, 0xad, 0xa6, 0xa7, 0xae, 0xaf]);
    const rep = r.int(4);
    if (rep === 1) this.emit(0xf3); else if (rep === 2) this.emit(0xf2);
    if (r.chance(0.15)) this.emit(0x66);
    if (a16) this.emit(0x67);
    if (r.chance(0.1) && op !== 0xaa && op !== 0xab && op !== 0xae && op !== 0xaf) this.emit(r.pick([0x26, 0x64, 0x65]));
    this.emit(op);
    if (this.avoid.has(0) && (op === 0xac || op === 0xad)) this.b[this.b.length - 1] = 0xa4;
  }

  /** A store into this program's own code (at this point the code after it is not yet generated: the
   *  target is a byte some instruction ahead, within the next 64 bytes, or behind). */
  smc(): void {
    const r = this.r;
    const here = this.pos;
    const target = this.base + Math.max(0, here + r.int(80) - 16);
    if (target >= CODE_END - 4) { this.emit(0x90); return; }
    switch (r.int(6)) {
      case 0: this.emit(0xc6, 0x05); this.imm32(target); this.emit(r.pick([0x90, 0x40, 0x41, 0xf4, r.int(256)])); return;
      case 1: this.emit(0xc7, 0x05); this.imm32(target); this.imm32(r.pick([0x90909090, 0x41414141, r.i32()])); return;
      case 2: this.emit(0x80, 0x05); this.imm32(target); this.emit(r.int(4)); return; // add byte [target], n
      case 3: if (r.chance(0.3)) this.emit(0x66); this.emit(0x88 + r.int(2), 0x05 | (this.rreg() << 3)); this.imm32(target); return;
      case 4: this.emit(r.pick([0x00, 0x01, 0x08, 0x09, 0x30, 0x31]), 0x05 | (this.rreg() << 3)); this.imm32(target); return;
      default: this.emit(0x0f, 0xab, 0x05 | (this.rreg() << 3)); this.imm32(target); return; // bts [target], reg
    }
  }

  /** The stack pointer moved next to a hole for a few stack instructions, then put back (the old ESP is
   *  kept at [ebx-8]). */
  stackExcursion(): void {
    const r = this.r;
    this.begin(); this.emit(0x89, 0x63, 0xf8); // mov [ebx-8], esp
    this.begin(); this.emit(0xbc); this.imm32(r.pick([NP_PAGE + 0x1000 + r.int(12), RO_PAGE + 4 + r.int(8), NP_PAGE - 4 + r.int(8), SUP_PAGE + 8, 0x1002]));
    for (let i = 0, n = 1 + r.int(4); i < n; i++) {
      this.begin();
      switch (r.int(6)) {
        case 0: this.emit(0x50 | this.rreg()); break;
        case 1: this.emit(0x58 | this.wreg()); break;
        case 2: this.emit(0xff, 0x33); break; // push dword [ebx]
        case 3: this.emit(0x8f, 0x43, 0x10); break; // pop dword [ebx+16]
        case 4: this.emit(0x9c); break;
        default: this.emit(0x66, 0x50 | this.rreg()); break;
      }
    }
    this.begin(); this.emit(0x8b, 0x63, 0xf8); // mov esp, [ebx-8]
  }

  /** A region: a sequence of instructions, forward branches, counted loops and calls. */
  region(n: number, depth: number): void {
    const r = this.r;
    for (let i = 0; i < n; i++) {
      const k = r.int(100);
      if (k < 8 && depth < 2) { this.loop(depth); continue; }
      if (k < 16) { // forward conditional or unconditional jump over a few instructions
        const l = this.label();
        this.begin();
        const long = r.chance(0.3);
        const kind = r.int(5);
        if (kind === 0) { this.emit(long ? 0xe9 : 0xeb); this.ref(l, long ? 4 : 1); }
        else if (kind === 1 && !this.avoid.has(1)) { if (r.chance(0.5)) this.emit(0x67); this.emit(0xe3); this.ref(l, 1); }
        else if (long) { this.emit(0x0f, 0x80 | r.int(16)); this.ref(l, 4); }
        else { this.emit(0x70 | r.int(16)); this.ref(l, 1); }
        const m = 1 + r.int(4);
        for (let j = 0; j < m; j++) this.insn();
        this.place(l);
        continue;
      }
      if (k < 19) { // call a subroutine (emitted after the program)
        const l = this.label();
        this.begin();
        if (r.chance(0.7)) { this.emit(0xe8); this.ref(l, 4); }
        else if (!this.avoid.has(0)) { // indirect: mov eax, abs(label); call eax
          this.emit(0xb8); this.subAbs.push([this.pos, l]); this.imm32(0);
          this.begin(); this.emit(0xff, 0xd0);
        } else { this.emit(0xe8); this.ref(l, 4); }
        this.subs.push(l);
        continue;
      }
      this.insn();
    }
  }

  /** Absolute addresses of labels to patch: [position, label]. */
  readonly subAbs: [number, number][] = [];

  /** A counted loop whose counter is a register (not written by the body) or a dword in memory. */
  loop(depth: number): void {
    const r = this.r;
    const count = 1 + r.int(r.chance(0.2) ? 200 : 12);
    const kind = r.int(4);
    const reg = kind === 0 ? 1 : kind === 1 ? r.pick([2, 6, 7].filter((x) => !this.avoid.has(x))) ?? 2 : -1;
    if (reg >= 0 && this.avoid.has(reg)) { this.insn(); return; }
    this.begin();
    if (reg >= 0) { this.emit(0xb8 | reg); this.imm32(count); }
    else { this.emit(0xc7, 0x43, 0xfc); this.imm32(count); } // mov dword [ebx-4], count
    const top = this.label();
    this.place(top);
    const saved = this.avoid;
    if (reg >= 0) this.avoid = new Set([...saved, reg]);
    const bodyStart = this.pos;
    // the body: usually straight-line (a block of its own: the compiler's self-loop), sometimes with a
    // pointer walk that runs into a hole
    if (r.chance(0.25) && !this.avoid.has(6)) {
      this.begin(); this.emit(0x8b, 0x06 | (this.wreg() << 3)); // mov reg, [esi]
      if (this.b[this.b.length - 1] === 0x36) this.b[this.b.length - 1] = 0x06; // (not into esi itself)
      this.begin(); this.emit(0x83, 0xc6, r.pick([4, 0x40, 0x7f]));
    }
    this.region(1 + r.int(6), depth + 1);
    this.avoid = saved;
    this.begin();
    if (reg === 1 && r.chance(0.5) && this.pos - bodyStart < 100) { this.emit(0xe2); this.ref(top, 1); } // LOOP
    else {
      if (reg >= 0) this.emit(0x48 | reg); else this.emit(0xff, 0x4b, 0xfc); // dec
      this.begin();
      const near = this.pos - bodyStart > 100 || r.chance(0.3);
      if (near) { this.emit(0x0f, 0x85); this.ref(top, 4); } else { this.emit(0x75); this.ref(top, 1); }
    }
  }
}

/** Generate a program from a seed. */
export function generateProgram(seed: number, opts: { length?: number } = {}): Program {
  const r = new Rng(seed);
  const cpl: 0 | 3 = r.chance(0.5) ? 0 : 3;
  const env: Env = {
    cpl,
    paging: r.chance(0.6),
    wp: r.chance(0.5),
    stack16: r.chance(0.12),
    alignCheck: cpl === 3 && r.chance(0.15),
  };
  // most programs start at the beginning of the code page; some near its end, to run across the boundary
  const base = seed % 7 === 0 ? CODE + 0x1000 - 24 : CODE;
  const g = new Gen(r, env, base);
  // ESI points into the data at the start (string ops and pointer walks set it again)
  g.region(opts.length ?? 10 + r.int(30), 0);
  g.begin(); g.emit(0xf4); // hlt (a #GP in ring 3, which ends the run as well)
  const end = g.pos - 1;
  // the subroutines: a few instructions and RET (or RET imm16 = 0)
  for (const l of g.subs) {
    g.place(l);
    for (let i = 0, n = r.int(4); i < n; i++) g.insn();
    g.begin();
    g.emit(0xc3);
  }
  g.resolve();
  for (const [at, l] of g.subAbs) {
    const target = base + g.labels.get(l)!;
    for (let i = 0; i < 4; i++) g.b[at + i] = (target >> (8 * i)) & 0xff;
  }
  const code = Uint8Array.from(g.b);
  if (code.length > CODE_END - base) throw new Error('cpu-diff: program too long');
  const regs = new Int32Array(8);
  for (let i = 0; i < 8; i++) regs[i] = r.i32();
  regs[1] &= 0xff;
  regs[3] = DATA_BASE;
  regs[4] = env.stack16 ? STACK_TOP - 0x20000 : STACK_TOP;
  regs[5] = DATA_BASE2;
  regs[6] = DATA_BASE + r.int(0x800);
  return { seed, env, base, code, starts: g.starts, end, regs, dataSeed: r.u32(), rawBytes: false };
}

/** A program of random bytes (ring 0, no paging): most of it decodes to nonsense that faults. */
export function randomBytesProgram(seed: number): Program {
  const r = new Rng(seed);
  const code = new Uint8Array(4096);
  for (let i = 0; i < code.length; i++) code[i] = r.int(256);
  const regs = new Int32Array(8);
  for (let i = 0; i < 8; i++) regs[i] = r.i32();
  regs[4] = STACK_TOP;
  return {
    seed, base: CODE, code, starts: [0], end: -1, regs, dataSeed: r.u32(), rawBytes: true,
    env: { cpl: 0, paging: false, wp: false, stack16: false, alignCheck: false },
  };
}


// ---- machines ----------------------------------------------------------------------------------------

export interface Machine {
  engine: Engine;
  mem: PhysicalMemory;
  cpu: CPU;
}

export function makeMachine(engine: Engine): Machine {
  const mem = new PhysicalMemory(MEM_SIZE);
  const cpu = new CPU(mem, 0, { codeSlots: 32 });
  cpu.referenceDispatch = engine === 'handlers';
  cpu.sharedMemory = engine === 'handlers';
  cpu.jitThreshold = engine === 'compiled' ? 1 : 0;
  cpu.jitSteps = engine === 'compiled';
  return { engine, mem, cpu };
}

/** Put the program and its environment into a machine (reused: everything is reset). */
export function load(m: Machine, p: Program): void {
  const { mem, cpu } = m;
  const env = p.env;
  mem.fill(0, MEM_SIZE);
  const r = new Rng(p.dataSeed);
  // data: random bytes in the low area, the data pages and the stack page
  for (let a = 0x8000; a < 0x10000; a += 4) mem.i32[a >> 2] = r.i32();
  for (let a = 0x1f000; a < 0x25000; a += 4) mem.i32[a >> 2] = r.i32();
  for (let a = 0x2f000; a < 0x30000; a += 4) mem.i32[a >> 2] = r.i32();
  const start = p.base;
  mem.u8.set(p.code.subarray(0, Math.min(p.code.length, CODE_END - start)), start);
  if (p.rawBytes) {
    // the old crash fuzzer's machine: an IDT whose every gate halts (exceptions are delivered)
    const IDT = 0x1000, GDT = 0x2000, HALT = 0x3000;
    mem.i32[(GDT >> 2) + 2] = 0x0000ffff; mem.i32[(GDT >> 2) + 3] = 0x00cf9b00;
    mem.i32[(GDT >> 2) + 4] = 0x0000ffff; mem.i32[(GDT >> 2) + 5] = 0x00cf9300;
    for (let v = 0; v < 256; v++) {
      mem.i32[(IDT >> 2) + v * 2] = (0x08 << 16) | (HALT & 0xffff);
      mem.i32[(IDT >> 2) + v * 2 + 1] = (HALT & 0xffff0000) | 0x8e00;
    }
    mem.u8[HALT] = 0xf4;
  }
  // identity page tables with holes
  mem.i32[PD >> 2] = PT | 7;
  for (let pg = 0; pg < MEM_SIZE >>> 12; pg++) {
    let pte = (pg << 12) | 7;
    const a = pg << 12;
    if (a === 0 || a === NP_PAGE) pte = 0;
    else if (a === RO_PAGE) pte = a | 5;
    else if (a === SUP_PAGE || a >= PD) pte = a | 3;
    mem.i32[(PT >> 2) + pg] = pte;
  }
  cpu.flushCodeCache();
  // the block compiler compiles every block on its first run, or (one program in three) on its third,
  // so that blocks also change engines in the middle of a program
  if (m.engine === 'compiled') cpu.jitThreshold = p.seed % 3 === 0 ? 3 : 1;
  cpu.resetFlat(env.cpl);
  cpu.exceptionMode = p.rawBytes ? ExceptionMode.Deliver : ExceptionMode.Stop;
  cpu.exceptionVector = -1; cpu.exceptionError = -1; cpu.exceptionEip = 0;
  cpu.halted = false; cpu.delivering = -1; cpu.tfTrap = false; cpu.inhibitIrq = false; cpu.pendingIrq = -1;
  cpu.lastBlock = 0; cpu.retired = 0; cpu.cr2 = 0; cpu.lockRetries = 0;
  cpu.gdtBase = 0x2000; cpu.gdtLimit = p.rawBytes ? 0x17 : 0;
  cpu.idtBase = 0x1000; cpu.idtLimit = p.rawBytes ? 0x7ff : 0;
  cpu.cr3 = PD; cpu.cr4 = 0;
  cpu.cr0 = 0x11 | (env.paging ? 0x80000000 : 0) | (env.wp ? 0x10000 : 0) | (env.alignCheck ? 0x40000 : 0);
  const dpl = env.cpl << 5;
  const data = 0x3 | 0x10 | dpl | 0x80;
  cpu.setSegCache(FS, 0x30 | env.cpl, 0x1000, 0xffffffff, data | 0xc000);
  cpu.setSegCache(GS, 0x38 | env.cpl, DATA_BASE, 0xfff, data | 0x4000);
  if (env.stack16) cpu.setSegCache(SS, 0x40 | env.cpl, DATA_BASE, 0xffff, data);
  cpu.flushTlb(true);
  cpu.updateAccessBits();
  cpu.r32.set(p.regs);
  cpu.setEflags(0x202 | (env.alignCheck ? 0x40000 : 0));
  cpu.eip = start;
}

// ---- lockstep -----------------------------------------------------------------------------------------

/** The machine state the engines must agree on, as text (only built when they differ). */
export function describe(m: Machine): string {
  const c = m.cpu;
  const regs = Array.from(c.r32.subarray(0, 8), (v) => (v >>> 0).toString(16)).join(' ');
  return `eip=${(c.eip >>> 0).toString(16)} regs=[${regs}] eflags=${(c.getEflags() >>> 0).toString(16)} `
    + `retired=${c.retired} cpl=${c.cpl} cr2=${(c.cr2 >>> 0).toString(16)} `
    + `exc=${c.exceptionVector}/${c.exceptionError}@${(c.exceptionEip >>> 0).toString(16)} halted=${c.halted}`;
}

/** Compare two machines; returns null when equal, else what differs. */
export function compare(a: Machine, b: Machine, reasonA: ExitReason, reasonB: ExitReason): string | null {
  const x = a.cpu, y = b.cpu;
  const diffs: string[] = [];
  if (reasonA !== reasonB) diffs.push(`exit ${reasonA} vs ${reasonB}`);
  for (let i = 0; i < 8; i++) if (x.r32[i] !== y.r32[i]) diffs.push(`r${i} ${(x.r32[i] >>> 0).toString(16)} vs ${(y.r32[i] >>> 0).toString(16)}`);
  if (x.eip !== y.eip) diffs.push(`eip ${(x.eip >>> 0).toString(16)} vs ${(y.eip >>> 0).toString(16)}`);
  // all of EFLAGS, the flags the SDM leaves undefined included: the engines must agree bit for bit
  // (snapshots and deterministic replay depend on it), whatever the hardware would do
  const fa = x.getEflags(), fb = y.getEflags();
  if (fa !== fb) diffs.push(`eflags ${(fa >>> 0).toString(16)} vs ${(fb >>> 0).toString(16)}`);
  if (x.retired !== y.retired) diffs.push(`retired ${x.retired} vs ${y.retired}`);
  if (x.cpl !== y.cpl) diffs.push(`cpl ${x.cpl} vs ${y.cpl}`);
  if (x.cr2 !== y.cr2) diffs.push(`cr2 ${(x.cr2 >>> 0).toString(16)} vs ${(y.cr2 >>> 0).toString(16)}`);
  if (x.halted !== y.halted) diffs.push(`halted ${x.halted} vs ${y.halted}`);
  for (let s = 0; s < 6; s++) {
    if (x.segSel[s] !== y.segSel[s] || x.segBase[s] !== y.segBase[s] || x.segLimit[s] !== y.segLimit[s]) diffs.push(`segment ${s}`);
  }
  if (reasonA === ExitReason.Exception && reasonB === ExitReason.Exception
    && (x.exceptionVector !== y.exceptionVector || x.exceptionError !== y.exceptionError || x.exceptionEip !== y.exceptionEip)) {
    diffs.push(`exception ${x.exceptionVector}/${x.exceptionError}@${(x.exceptionEip >>> 0).toString(16)} vs ${y.exceptionVector}/${y.exceptionError}@${(y.exceptionEip >>> 0).toString(16)}`);
  }
  for (const [lo, hi] of COMPARE) {
    const ma = Buffer.from(a.mem.u8.buffer, lo, hi - lo), mb = Buffer.from(b.mem.u8.buffer, lo, hi - lo);
    if (!ma.equals(mb)) {
      let i = 0;
      while (ma[i] === mb[i]) i++;
      diffs.push(`memory at ${(lo + i).toString(16)}: ${ma[i].toString(16)} vs ${mb[i].toString(16)}`);
    }
  }
  return diffs.length === 0 ? null : diffs.join('; ');
}

export interface DiffResult {
  /** null when every engine agreed all the way. */
  divergence: string | null;
  slices: number;
  faults: number;
  retired: number;
  /** The program ran to its final HLT. */
  completed: boolean;
  /** Exit reasons seen (for the test's sanity checks). */
  exits: Map<ExitReason, number>;
}

/** Run a program on every machine in lockstep, comparing after every slice. */
export function runLockstep(ms: Machine[], p: Program, opts: { maxInstructions?: number; sliceRng?: Rng } = {}): DiffResult {
  const max = opts.maxInstructions ?? 4000;
  const sr = opts.sliceRng ?? new Rng(p.seed ^ 0x5eed);
  for (const m of ms) load(m, p);
  const start = p.base;
  const exits = new Map<ExitReason, number>();
  const reasons: ExitReason[] = ms.map(() => ExitReason.None);
  let slices = 0, faults = 0, completed = false;
  for (;;) {
    // usually one block; sometimes one instruction (cpu.step: the compiled engine compiles it alone);
    // sometimes a longer slice (compiled loops run many iterations in one call)
    const kind = sr.int(100);
    const budget = kind < 60 ? 1 : kind < 80 ? 0 : 1 + sr.int(sr.chance(0.5) ? 16 : 400);
    for (let i = 0; i < ms.length; i++) {
      const c = ms[i].cpu;
      reasons[i] = budget === 0 ? (c.step() === ExitReason.Step ? ExitReason.Budget : c.exitReason) : c.run(budget);
    }
    slices++;
    const reason = reasons[0];
    exits.set(reason, (exits.get(reason) ?? 0) + 1);
    for (let i = 1; i < ms.length; i++) {
      const d = compare(ms[0], ms[i], reason, reasons[i]);
      if (d !== null) {
        return {
          divergence: `${ms[0].engine} vs ${ms[i].engine} after slice ${slices} (budget ${budget}): ${d}\n`
            + `  ${ms[0].engine}: ${describe(ms[0])}\n  ${ms[i].engine}: ${describe(ms[i])}`,
          slices, faults, retired: ms[0].cpu.retired, exits, completed: false,
        };
      }
    }
    const c = ms[0].cpu;
    if (reason === ExitReason.Hlt && c.eip === ((start + p.end + 1) | 0)) completed = true;
    // (a REP string instruction with a huge count runs in chunks that retire nothing until it ends:
    // the slices are bounded too)
    if (c.retired >= max || slices >= 2 * max) break;
    if (reason === ExitReason.Budget) continue;
    if (reason !== ExitReason.Exception) break; // HLT, triple fault, unsupported
    faults++;
    // resume after the faulting instruction when it is one the generator wrote (and not the last HLT)
    const at = c.exceptionEip - start;
    const idx = p.starts.indexOf(at);
    if (at === p.end) completed = true;
    if (idx < 0 || idx + 1 >= p.starts.length || at === p.end) break;
    const next = (start + p.starts[idx + 1]) | 0;
    for (const m of ms) m.cpu.eip = next;
  }
  return { divergence: null, slices, faults, retired: ms[0].cpu.retired, exits, completed };
}

/**
 * The instruction table: one row per instruction form (Bochs' operand notation: ADD_EdGd_M is ADD with a
 * dword memory destination and a dword register source), with everything the emulator needs to know
 * about it. The row order is the op id (what the decoder stores in iOp); this module imports nothing, so
 * anything may import the ids.
 *
 * A row with a `body` is written once, here, and everything that runs it is produced from that text
 * (emulator/ops/codegen.ts): its handler, the interpreter's inline case (hot rows only) and the block
 * compiler's code with the decoded operands as constants (emulator/jit.ts). A row without a body is a
 * "cold handler op": its handler is written in emulator/ops/*.ts (defineOp with the row's name) and
 * every engine calls it.
 *
 * Body language: JavaScript over `c` (the CPU), `r32`/`r16`/`r8` (its register views) and the helper
 * functions named in codegen.ts HELPERS, with the decoded operands as placeholders:
 *   $rm $reg $imm $sub $seg   the decoded fields (register indexes, immediate, sub-op, segment)
 *   $ea                       the memory operand's effective address (offset in segment $seg)
 * A memory read written as its own statement, `const x = c.read32($seg, $ea);`, and a store written as
 * `c.write32($seg, $ea, value);` are inlined by the compiler (the TLB fast path); the next EIP is
 * `c.eip` in every engine. What the compiler needs to know is derived from the body: it writes memory
 * (it may store into the running block: compiled code checks `stop` after it), or it is pure (registers
 * and flags only: no fault, no EIP, so compiled code does not even set EIP before it).
 *
 * Attributes of every row: `hot` (inline case in the interpreter's switch: chosen by measured frequency on
 * the benchmark workload and guest kernels), `terminates` (ends a decoded block: it may change EIP other
 * than by falling through), `loopBranch` (a relative branch that can close a loop back to the start of
 * its block: the compiler turns such a block into a JavaScript loop), `lock` (LOCK may prefix it, or it
 * is always locked: the decoder makes it the LOCKED op), `fr`/`fw` (the arithmetic flags it reads and
 * writes, undefined results included; -1: not described, assume all).
 */

export type LockRule = 'prefix' | 'always';

export interface OpRow {
  name: string;
  body?: string;
  hot?: boolean;
  terminates?: boolean;
  loopBranch?: boolean;
  lock?: LockRule;
  fr?: number;
  fw?: number;
}

const ARITH = 0x8d5;
const ZF = 0x40;
const CF = 0x1;
const rows: OpRow[] = [];

/** Brace expansion for families: 'INC_E{b,w}_{R,M}' -> INC_Eb_R INC_Eb_M INC_Ew_R INC_Ew_M. */
export function expand(pattern: string): string[] {
  const m = /\{([^{}]*)\}/.exec(pattern);
  if (m === null) return [pattern];
  const head = pattern.slice(0, m.index), tail = pattern.slice(m.index + m[0].length);
  return m[1].split(',').flatMap((alt) => expand(head + alt + tail));
}

/** A row with a body. */
function op(name: string, attrs: Omit<OpRow, 'name' | 'body'>, body: string): void {
  rows.push({ name, body, ...attrs });
}

/** Cold handler ops (a family pattern), with shared attributes. */
function cold(pattern: string, attrs: Omit<OpRow, 'name' | 'body' | 'hot'> = {}): void {
  for (const name of expand(pattern)) rows.push({ name, ...attrs });
}

// ---- the hot rows: the interpreter runs these inline (their ids are 0..HOT_COUNT-1) ------------------
const jump = { terminates: true, loopBranch: true };
op('MOV_GdEd_M', { hot: true, fr: 0, fw: 0 }, 'const v = c.read32($seg, $ea); r32[$reg] = v;');
op('MOV_EdGd_R', { hot: true, fr: 0, fw: 0 }, 'r32[$rm] = r32[$reg];');
op('MOV_EdGd_M', { hot: true, fr: 0, fw: 0 }, 'c.write32($seg, $ea, r32[$reg]);');
op('MOV_EdId_R', { hot: true, fr: 0, fw: 0 }, 'r32[$rm] = $imm;');
op('JNZ_Jd', { hot: true, ...jump, fr: ZF, fw: 0 }, 'if (!c.getZF()) c.jumpNear((c.eip + $imm) | 0);');
op('JZ_Jd', { hot: true, ...jump, fr: ZF, fw: 0 }, 'if (c.getZF()) c.jumpNear((c.eip + $imm) | 0);');
op('Jcc_Jd', { hot: true, ...jump, fr: ARITH, fw: 0 }, 'if (c.cond($sub)) c.jumpNear((c.eip + $imm) | 0);');
op('JMP_Jd', { hot: true, ...jump, fr: 0, fw: 0 }, 'c.jumpNear((c.eip + $imm) | 0);');
op('TEST_EdGd_R', { hot: true, fr: 0, fw: ARITH }, 'c.lfLogic(r32[$rm] & r32[$reg]);');
op('LEA_Gd', { hot: true, fr: 0, fw: 0 }, 'r32[$reg] = $ea;');
op('INC_Ed_R', { hot: true, fr: 0, fw: ARITH & ~CF },
  'const d = $rm, a = r32[d], r = (a + 1) | 0; if ((c.lfMask & 1) !== 0) c.flags = (c.flags & ~1) | (c.getCF() ? 1 : 0); '
  + 'c.lfOp = 0; c.lfA = a; c.lfB = 1; c.lfRes = r; c.lfMask = 0x8d4; r32[d] = r;');
op('DEC_Ed_R', { hot: true, fr: 0, fw: ARITH & ~CF },
  'const d = $rm, a = r32[d], r = (a - 1) | 0; if ((c.lfMask & 1) !== 0) c.flags = (c.flags & ~1) | (c.getCF() ? 1 : 0); '
  + 'c.lfOp = 1; c.lfA = a; c.lfB = 1; c.lfRes = r; c.lfMask = 0x8d4; r32[d] = r;');
op('PUSH_Rd', { hot: true, fr: 0, fw: 0 }, 'c.push32(r32[$rm]);');
op('POP_Rd', { hot: true, fr: 0, fw: 0 }, 'const v = c.peek32(0); c.adjustSp(4); r32[$rm] = v;');
op('CALL_Jd', { hot: true, terminates: true, fr: 0, fw: 0 },
  'const t = (c.eip + $imm) | 0; if ((t >>> 0) > c.segLimit[1]) c.raise(13, 0); c.push32(c.eip); c.eip = t;');
op('RETD', { hot: true, terminates: true, fr: 0, fw: 0 }, 'const t = c.peek32(0); c.jumpNear(t); c.adjustSp(4);');

// The 32-bit group-1 operations without carry-in, one row per (operation, form): the decoder gives ADC
// and SBB the generic ALU_* rows below.
const ALU_OPS: [string, string, string][] = [
  ['ADD', '(a + b) | 0', 'c.lfAdd(a, b, r);'],
  ['OR', 'a | b', 'c.lfLogic(r);'],
  ['AND', 'a & b', 'c.lfLogic(r);'],
  ['SUB', '(a - b) | 0', 'c.lfSub(a, b, r);'],
  ['XOR', 'a ^ b', 'c.lfLogic(r);'],
  ['CMP', '(a - b) | 0', 'c.lfSub(a, b, r);'],
];
function aluBody(opName: string, expr: string, flags: string, form: string): string {
  const store = opName !== 'CMP';
  switch (form) {
    case 'EdGd_R': return `const d = $rm, a = r32[d], b = r32[$reg], r = ${expr}; ${flags}${store ? ' r32[d] = r;' : ''}`;
    case 'GdEd_R': return `const d = $reg, a = r32[d], b = r32[$rm], r = ${expr}; ${flags}${store ? ' r32[d] = r;' : ''}`;
    case 'EdId_R': return `const d = $rm, a = r32[d], b = $imm, r = ${expr}; ${flags}${store ? ' r32[d] = r;' : ''}`;
    case 'GdEd_M': return `const b = c.read32($seg, $ea); const d = $reg, a = r32[d], r = ${expr}; ${flags}${store ? ' r32[d] = r;' : ''}`;
    case 'EdGd_M': return store
      ? `const a = c.rmwRead32($seg, $ea), b = r32[$reg], r = ${expr}; ${flags} c.rmwWrite32(r);`
      : `const a = c.read32($seg, $ea); const b = r32[$reg], r = ${expr}; ${flags}`;
    default: return store // EdId_M
      ? `const a = c.rmwRead32($seg, $ea), b = $imm, r = ${expr}; ${flags} c.rmwWrite32(r);`
      : `const a = c.read32($seg, $ea); const b = $imm, r = ${expr}; ${flags}`;
  }
}
/** The 32-bit ALU forms, in the order alu.ts ALU32 lists them. */
export const ALU32_FORMS = ['EdGd_R', 'EdGd_M', 'GdEd_R', 'GdEd_M', 'EdId_R', 'EdId_M'];
const HOT_ALU = new Set(['ADD_EdGd_R', 'ADD_GdEd_R', 'ADD_EdId_R', 'SUB_EdId_R', 'SUB_GdEd_R', 'CMP_EdId_R', 'CMP_GdEd_R',
  'CMP_GdEd_M', 'CMP_EdId_M', 'AND_EdId_R', 'XOR_GdEd_R', 'ADD_GdEd_M', 'XOR_EdGd_R', 'AND_EdGd_R', 'OR_EdGd_R',
  'ADD_EdGd_M', 'SUB_EdGd_R', 'CMP_EdGd_R', 'OR_EdId_R']);
function aluRows(hot: boolean): void {
  for (const [name, expr, flags] of ALU_OPS) {
    for (const form of ALU32_FORMS) {
      const n = `${name}_${form}`;
      if (HOT_ALU.has(n) !== hot) continue;
      const lock: LockRule | undefined = form === 'EdGd_M' || form === 'EdId_M' ? 'prefix' : undefined;
      op(n, { hot, lock, fr: 0, fw: ARITH }, aluBody(name, expr, flags, form));
    }
  }
}
aluRows(true);
op('MOV_EdId_M', { hot: true, fr: 0, fw: 0 }, 'c.write32($seg, $ea, $imm);');
op('MOVZX_GdEb_R', { hot: true, fr: 0, fw: 0 }, 'r32[$reg] = r8[$rm];');
op('MOVZX_GdEb_M', { hot: true, fr: 0, fw: 0 }, 'r32[$reg] = c.read8($seg, $ea);');
op('NEG_Ed_R', { hot: true, fr: 0, fw: ARITH }, 'const d = $rm, a = r32[d], r = (0 - a) | 0; c.lfSub(0, a, r); r32[d] = r;');
op('TEST_EdId_R', { hot: true, fr: 0, fw: ARITH }, 'c.lfLogic(r32[$rm] & $imm);');
op('MOV_GbEb_M', { hot: true, fr: 0, fw: 0 }, 'r8[$reg] = c.read8($seg, $ea);');
op('MOV_EbGb_M', { hot: true, fr: 0, fw: 0 }, 'c.write8($seg, $ea, r8[$reg]);');
op('MOVZX_GdEw_M', { hot: true, fr: 0, fw: 0 }, 'r32[$reg] = c.read16($seg, $ea);');
op('MOVSX_GdEb_M', { hot: true, fr: 0, fw: 0 }, 'r32[$reg] = (c.read8($seg, $ea) << 24) >> 24;');
op('SHIFT_Ed1_R', { hot: true, fr: CF, fw: ARITH }, 'const d = $rm; r32[d] = sh32(c, $sub, r32[d], 1);');
op('SHIFT_EdIb_R', { hot: true, fr: CF, fw: ARITH }, 'const n = $imm & 0x1f; if (n !== 0) { const d = $rm; r32[d] = sh32(c, $sub, r32[d], n); }');

/** How many rows are hot (they come first). */
export const HOT_COUNT = rows.length;

// ---- rows with a body that the interpreter calls as handlers (the compiler writes them out) ----------
aluRows(false);
op('NOP', { fr: 0, fw: 0 }, '');
op('MOV_EbIb_R', { fr: 0, fw: 0 }, 'r8[$rm] = $imm;');
op('MOV_EbIb_M', { fr: 0, fw: 0 }, 'c.write8($seg, $ea, $imm);');
op('MOV_EbGb_R', { fr: 0, fw: 0 }, 'r8[$rm] = r8[$reg];');
op('MOVSX_GdEb_R', { fr: 0, fw: 0 }, 'r32[$reg] = (r8[$rm] << 24) >> 24;');
op('MOVZX_GdEw_R', { fr: 0, fw: 0 }, 'r32[$reg] = r16[$rm];');
op('CDQ', { fr: 0, fw: 0 }, 'r32[2] = r32[0] >> 31;');
op('ALU_EbIb_R', { fr: CF, fw: ARITH }, 'const r = alu(c, $sub, r8[$rm], $imm, 24); if ($sub !== 7) r8[$rm] = r;');
op('ALU_EbIb_M', { fr: CF, fw: ARITH, lock: 'prefix' },
  'if ($sub === 7) alu(c, 7, c.read8($seg, $ea), $imm, 24); else c.rmwWrite8(alu(c, $sub, c.rmwRead8($seg, $ea), $imm, 24));');
op('TEST_EbGb_R', { fr: 0, fw: ARITH }, 'alu(c, 4, r8[$rm], r8[$reg], 24);');
op('TEST_EdId_M', { fr: 0, fw: ARITH }, 'const a = c.read32($seg, $ea); c.lfLogic(a & $imm);');
op('TEST_EdGd_M', { fr: 0, fw: ARITH }, 'const a = c.read32($seg, $ea); c.lfLogic(a & r32[$reg]);');
op('IMUL_GdEd_R', { fr: 0, fw: ARITH }, 'const d = $reg; r32[d] = imul32(c, r32[d], r32[$rm]);');
op('IMUL_GdEd_M', { fr: 0, fw: ARITH }, 'const b = c.read32($seg, $ea); const d = $reg; r32[d] = imul32(c, r32[d], b);');

// ---- cold handler ops (handlers in emulator/ops/*.ts) --------------------------------------------------
// shifts and rotates (ops/shift.ts)
cold('SHIFT_E{b,w}{1,CL,Ib}_{R,M}', { fr: CF, fw: ARITH });
cold('SHIFT_Ed{1_M,CL_R,CL_M,Ib_M}', { fr: CF, fw: ARITH });
cold('{SHLD,SHRD}_E{wGw,dGd}{Ib,CL}_{R,M}', { fr: 0, fw: ARITH });
// arithmetic and logic (ops/alu.ts): the generic group-1 forms (every operation, ADC and SBB among them)
// (ALU_EbIb_R and ALU_EbIb_M have bodies, above)
for (const form of ['EbGb', 'EwGw', 'EdGd', 'GbEb', 'GwEw', 'GdEd', 'EwIw', 'EdId']) {
  cold(`ALU_${form}_R`, { fr: CF, fw: ARITH });
  cold(`ALU_${form}_M`, { fr: CF, fw: ARITH, lock: form[0] === 'E' ? 'prefix' : undefined });
}
cold('TEST_{EbGb_M,EwGw_R,EwGw_M,EbIb_R,EbIb_M,EwIw_R,EwIw_M}', { fr: 0, fw: ARITH });
cold('{INC,DEC}_E{b,w}_R', { fr: 0, fw: ARITH & ~CF });
cold('{INC,DEC}_E{b,w,d}_M', { fr: 0, fw: ARITH & ~CF, lock: 'prefix' });
cold('NEG_E{b,w}_R', { fr: 0, fw: ARITH });
cold('NEG_E{b,w,d}_M', { fr: 0, fw: ARITH, lock: 'prefix' });
cold('NOT_E{b,w,d}_R', { fr: 0, fw: 0 });
cold('NOT_E{b,w,d}_M', { fr: 0, fw: 0, lock: 'prefix' });
// moves (ops/mov.ts)
cold('MOV_{EwGw_R,EwGw_M,GwEw_M,EwIw_R,EwIw_M}', { fr: 0, fw: 0 });
cold('MOVZX_{GwEb_R,GwEb_M,GwEw_R,GwEw_M}', { fr: 0, fw: 0 });
cold('MOVSX_{GwEb_R,GwEb_M,GdEw_R,GdEw_M}', { fr: 0, fw: 0 });
cold('LEA_Gw', { fr: 0, fw: 0 });
cold('XCHG_E{bGb,wGw,dGd}_R', { fr: 0, fw: 0 });
cold('XCHG_E{bGb,wGw,dGd}_M', { fr: 0, fw: 0, lock: 'always' });
cold('{XADD,CMPXCHG}_E{bGb,wGw,dGd}_R', { fr: 0, fw: ARITH });
cold('{XADD,CMPXCHG}_E{bGb,wGw,dGd}_M', { fr: 0, fw: ARITH, lock: 'prefix' });
cold('CMPXCHG8B_Mq', { fr: 0, fw: ZF, lock: 'prefix' });
cold('{BSWAP_Rd,BSWAP_Rw,CBW,CWDE,CWD,XLAT}', { fr: 0, fw: 0 });
cold('LAHF', { fr: ARITH, fw: 0 });
cold('SAHF', { fr: 0, fw: ARITH & ~0x800 });
cold('SALC', { fr: CF, fw: 0 });
cold('MOV_{EwSw_R,EdSw_R,EwSw_M,SwEw_R,SwEw_M}', { fr: 0, fw: 0 });
// bits (ops/bit.ts)
cold('BTx_E{w,d}{G,Ib}_R', { fr: 0, fw: -1 });
cold('BTx_E{w,d}{G,Ib}_M', { fr: 0, fw: -1, lock: 'prefix' });
cold('{BSF,BSR}_G{wEw,dEd}_{R,M}', { fr: 0, fw: ARITH });
cold('SETcc_Eb_{R,M}', { fr: ARITH, fw: 0 });
cold('CMOVcc_G{wEw,dEd}_{R,M}', { fr: ARITH, fw: 0 });
// decimal arithmetic (ops/bcd.ts)
cold('{DAA,DAS,AAA,AAS,AAM,AAD}', { fr: -1, fw: ARITH });
// control transfers (ops/control.ts)
cold('{JMP_Jw,Jcc_Jw,CALL_Jw}', { terminates: true, fr: -1, fw: 0 });
cold('{CALL,JMP}_E{d,w}_{R,M}', { terminates: true, fr: 0, fw: 0 });
cold('{RETW,RETD_Iw,RETW_Iw,LOOP_Jd,LOOP_Jw}', { terminates: true, fr: 0, fw: 0 });
cold('{INT_Ib,INT3,INTO,INT1}', { terminates: true, fr: -1, fw: -1 });
cold('BOUND_G{d,w}Ma', { fr: 0, fw: 0 });
cold('{JMPF_Ap,CALLF_Ap,JMPF_Mp,CALLF_Mp,RETFD,RETFW,RETFD_Iw,RETFW_Iw,IRETD,IRETW}', { terminates: true, fr: -1, fw: -1 });
// flags and miscellany (ops/misc.ts)
cold('{CLC,STC,CMC}', { fr: CF, fw: CF });
cold('{CLD,STD}', { fr: 0, fw: 0 });
cold('{INVALID,GP0}', { terminates: true });
cold('WAIT');
cold('ESC', { terminates: true });
cold('{CPUID,RDTSC}', { fr: 0, fw: 0 });
cold('LOCKED'); // (ops/locked.ts: runs the real op, iLockOp, atomically)
// the stack (ops/stack.ts)
cold('{PUSH,POP}_Rw', { fr: 0, fw: 0 });
cold('PUSH_{Id,Iw,Ed_M,Ew_M}', { fr: 0, fw: 0 });
cold('POP_E{d,w}_M', { fr: 0, fw: 0 });
cold('{PUSH,POP}_S{d,w}', { fr: 0, fw: 0 });
cold('{PUSHAD,PUSHAW,POPAD,POPAW}', { fr: 0, fw: 0 });
cold('PUSHF{D,W}', { fr: -1, fw: 0 });
cold('POPF{D,W}', { fr: 0, fw: -1 });
cold('{ENTERD,ENTERW,LEAVED,LEAVEW}', { fr: 0, fw: 0 });
// system instructions (ops/system.ts)
cold('{CLI,STI}', { fr: 0, fw: 0 });
cold('HLT', { terminates: true });
cold('{LGDT,LIDT,SGDT,SIDT,SLDT,STR,SMSW,LLDT,LTR,LMSW,CLTS,INVLPG,INVD,MOV_RdCd,MOV_CdRd,MOV_RdDd,MOV_DdRd,RDMSR,WRMSR}');
cold('{ARPL,LAR,LSL,VERR,VERW}', { fr: 0, fw: ZF });
cold('{IN,OUT,INS,OUTS}');
// multiply and divide (ops/muldiv.ts)
cold('{MUL,IMUL,DIV,IDIV}_E{b,w,d}_{R,M}', { fr: 0, fw: ARITH });
cold('IMUL_{GwEw_R,GwEw_M,GwEwI_R,GwEwI_M,GdEdI_R,GdEdI_M}', { fr: 0, fw: ARITH });
// strings (ops/string.ts)
cold('{MOVS,CMPS,STOS,LODS,SCAS}{B,W,D}', { fr: -1, fw: -1 });
// far pointer loads (decoder.ts)
cold('LxS_G{d,w}Mp', { fr: 0, fw: 0 });
// x87: one op family with its own decoder (emulator/ops/x87.ts, emulator/fpu/): D8-DF with the opcode and
// ModRM in iImm; FCMOVcc reads and FCOMI/FUCOMI write the arithmetic flags. 9B is FWAIT.
cold('X87', { fr: -1, fw: -1 });
cold('FWAIT');

/** Every row, in op id order. */
export const OPS: readonly OpRow[] = rows;
/** Op names by id. */
export const OP_NAMES: readonly string[] = rows.map((r) => r.name);
const ids = new Map<string, number>();
rows.forEach((r, i) => {
  if (ids.has(r.name)) throw new Error(`optable: two rows named ${r.name}`);
  ids.set(r.name, i);
});

/** The op id of a row; throws for a name without a row (a typo, or an op someone forgot to add here). */
export function opId(name: string): number {
  const id = ids.get(name);
  if (id === undefined) throw new Error(`optable: no row named ${name} (add it to emulator/optable.ts)`);
  return id;
}

// ---- attributes by op id, for the decoder and the engines ---------------------------------------------
function byId(f: (r: OpRow) => number): Uint8Array {
  const a = new Uint8Array(rows.length);
  rows.forEach((r, i) => { a[i] = f(r); });
  return a;
}
/** A body that may store to memory (the compiler checks `stop` after it). */
export function bodyWrites(body: string): boolean {
  return /c\.(write|rmwWrite|push)\w*\(/.test(body);
}
/** A body that touches only registers and flags: it cannot fault and does not read EIP. */
export function bodyPure(body: string): boolean {
  return !/c\.(read|write|rmw|push|pop|peek|adjustSp|eip|jump|raise|segLimit)|\$ea/.test(body)
    || /^r32\[\$reg\] = \$ea;$/.test(body); // LEA: an address computation, no access
}
export const TERMINATES_BLOCK = byId((r) => (r.terminates ? 1 : 0));
export const LOOP_BRANCH = byId((r) => (r.loopBranch ? 1 : 0));
export const LOCK_PREFIX_OK = 1;
export const ALWAYS_LOCKED = 2;
export const LOCKABLE = byId((r) => (r.lock === 'prefix' ? LOCK_PREFIX_OK : r.lock === 'always' ? ALWAYS_LOCKED : 0));
export const WRITES = byId((r) => (r.body === undefined || bodyWrites(r.body) ? 1 : 0));
export const PURE = byId((r) => (r.body !== undefined && bodyPure(r.body) ? 1 : 0));

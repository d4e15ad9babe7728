/**
 * The block compiler: the second backend the decoder was shaped for. A block that has run often enough
 * becomes one JavaScript function whose body is its instructions, written out with their decoded
 * operands as constants; V8 then optimises it like any other code. Instructions without a template are
 * compiled as a call of their handler, so every instruction works; the templates are the hot ops of the
 * interpreter, and each does exactly what that op's handler does (test/vectors/vectors.test.ts runs every
 * hardware vector through compiled code).
 *
 * Contract with the run loop (cpu.ts): a compiled block is called with the CPU and returns how many of
 * its instructions completed. Before any instruction that can fault, read EIP or change control flow,
 * it sets prevEip/eip as the interpreter would and records the instruction's index in `jitIdx`, so a
 * fault is precise and the run loop can count what retired. It returns early when an instruction sets
 * `stop` (self-modifying code, device exits, ...).
 */
import type { CPU } from './cpu.ts';
import { HANDLERS, OP_NAMES } from './ops/registry.ts';
import { shift } from './ops/shift.ts';
import { alu } from './ops/alu.ts';
import { mulFlags, mulHighS } from './ops/muldiv.ts';
import { F_A16 } from './decoder.ts';
import { ZERO_REG } from './constants.ts';

export type BlockFn = (c: CPU) => number;


/** Ops whose template touches only registers and flags: no fault, no EIP. */
const PURE = new Set([
  'MOV_EdGd_R', 'MOV_EdId_R', 'TEST_EdGd_R', 'LEA_Gd', 'INC_Ed_R', 'DEC_Ed_R', 'ADD_EdGd_R', 'ADD_GdEd_R',
  'ADD_EdId_R', 'SUB_EdId_R', 'SUB_GdEd_R', 'CMP_EdId_R', 'CMP_GdEd_R', 'AND_EdId_R', 'XOR_GdEd_R',
  'MOVZX_GdEb_R', 'NEG_Ed_R', 'XOR_EdGd_R', 'AND_EdGd_R', 'OR_EdGd_R', 'SUB_EdGd_R', 'CMP_EdGd_R',
  'TEST_EdId_R', 'OR_EdId_R', 'SHIFT_Ed1_R', 'SHIFT_EdIb_R', 'OR_GdEd_R', 'AND_GdEd_R', 'CMP_EdGd_R',
  'XOR_EdId_R', 'IMUL_GdEd_R', 'NOP', 'MOV_EbIb_R', 'MOV_EbGb_R', 'MOVSX_GdEb_R', 'MOVZX_GdEw_R', 'CDQ', 'ALU_EbIb_R', 'TEST_EbGb_R',
]);

/** Branches that can close a loop back to the start of their own block. */
const LOOP_BRANCHES = new Set(['JNZ_Jd', 'JZ_Jd', 'Jcc_Jd', 'JMP_Jd']);

/** Ops that write memory (a write into decoded code sets `stop`). */
const WRITES = new Set(['MOV_EdGd_M', 'MOV_EdId_M', 'MOV_EbGb_M', 'MOV_EbIb_M', 'ALU_EbIb_M', 'PUSH_Rd', 'CALL_Jd',
  ...['ADD', 'SUB', 'AND', 'OR', 'XOR'].flatMap((op) => [`${op}_EdGd_M`, `${op}_EdId_M`])]);

/** The effective-address expression of instruction k's memory operand. */
function eaExpr(c: CPU, k: number): string {
  if ((c.iFlags[k] & F_A16) !== 0) return `c.ea16(${k})`;
  const parts: string[] = [];
  if (c.iBase[k] !== ZERO_REG) parts.push(`r32[${c.iBase[k]}]`);
  if (c.iIdx[k] !== ZERO_REG) parts.push(c.iScale[k] !== 0 ? `(r32[${c.iIdx[k]}] << ${c.iScale[k]})` : `r32[${c.iIdx[k]}]`);
  if (c.iDisp[k] !== 0 || parts.length === 0) parts.push(`${c.iDisp[k]}`);
  return parts.length === 1 ? `(${parts[0]} | 0)` : `((${parts.join(' + ')}) | 0)`;
}

/** Statements that read the dword at seg:ea into `dst` (declared by the caller): the CPU's read32 fast
 *  path written out, so it needs no call; anything unusual goes to readSlow as in read32. */
function read32Code(dst: string, seg: number, ea: string): string {
  return `{ const o = ${ea}, lin = (sb[${seg}] + o) | 0, te = tlb[lin >>> 12]; `
    + `if ((o >>> 0) + 3 > rl[${seg}] || (te & c.readBit) === 0 || (lin & 0xfff) > 0xffc) ${dst} = c.readSlow(${seg}, o, 4); `
    + `else { const pa = (te & ~0xfff) | (lin & 0xfff); ${dst} = (pa & 3) === 0 ? m32[pa >> 2] : c.dv.getInt32(pa, true); } }`;
}

/** The same for write32. */
function write32Code(seg: number, ea: string, value: string): string {
  return `{ const o = ${ea}, v = ${value}, lin = (sb[${seg}] + o) | 0, te = tlb[lin >>> 12]; `
    + `if ((o >>> 0) + 3 > wl[${seg}] || (te & c.writeBit) === 0 || (lin & 0xfff) > 0xffc) c.writeSlow(${seg}, o, 4, v); `
    + `else { const pa = (te & ~0xfff) | (lin & 0xfff); if ((pa & 3) === 0) m32[pa >> 2] = v; else c.dv.setInt32(pa, v, true); } }`;
}

const ALU_EXPR: Record<string, [string, string, boolean]> = {
  ADD: ['(a + b) | 0', 'c.lfAdd(a, b, r);', true],
  SUB: ['(a - b) | 0', 'c.lfSub(a, b, r);', true],
  CMP: ['(a - b) | 0', 'c.lfSub(a, b, r);', false],
  AND: ['a & b', 'c.lfLogic(r);', true],
  OR: ['a | b', 'c.lfLogic(r);', true],
  XOR: ['a ^ b', 'c.lfLogic(r);', true],
};

/** SHL/SAL, SHR and SAR of a 32-bit register by a constant count 1..31 (what shift() computes for them:
 *  CF the last bit out, OF by the same formula for every count, AF cleared, SF/ZF/PF lazy). Rotates go
 *  through shift() itself. */
function shiftTemplate(rm: number, sub: number, n: number): string {
  let body: string;
  switch (sub) {
    case 4: case 6: body = `const r = (v << ${n}) | 0, cf = (v >>> ${32 - n}) & 1, of = (r >>> 31) ^ cf;`; break;
    case 5: body = `const r = (v >>> ${n}) | 0, cf = (v >>> ${n - 1}) & 1, of = v >>> 31;`; break;
    case 7: body = `const r = v >> ${n}, cf = (v >> ${n - 1}) & 1, of = 0;`; break;
    default: return `r32[${rm}] = shift(c, ${sub}, r32[${rm}], ${n}, 32);`;
  }
  return `{ const v = r32[${rm}]; ${body} c.flags = (c.flags & ~0x811) | cf | (of << 11); c.lfRes = r; c.lfMask = 0xc4; r32[${rm}] = r; }`;
}

/** JavaScript for one instruction, or null when it has no template (its handler is called instead). */
function template(c: CPU, k: number): string | null {
  const name = OP_NAMES[c.iOp[k]];
  const reg = c.iReg[k], rm = c.iRm[k], imm = c.iImm[k], seg = c.iSeg[k], sub = c.iSub[k];
  const m = /^(ADD|SUB|CMP|AND|OR|XOR)_(EdGd|GdEd|EdId)_([RM])$/.exec(name);
  if (m) {
    const [expr, flags, store] = ALU_EXPR[m[1]];
    const form = m[2], mem = m[3] === 'M';
    if (form === 'EdGd' && !mem) return `{ const a = r32[${rm}], b = r32[${reg}], r = ${expr}; ${flags}${store ? ` r32[${rm}] = r;` : ''} }`;
    if (form === 'GdEd' && !mem) return `{ const a = r32[${reg}], b = r32[${rm}], r = ${expr}; ${flags}${store ? ` r32[${reg}] = r;` : ''} }`;
    if (form === 'EdId' && !mem) return `{ const a = r32[${rm}], b = ${imm}, r = ${expr}; ${flags}${store ? ` r32[${rm}] = r;` : ''} }`;
    if (form === 'GdEd' && mem) return `{ let b = 0; ${read32Code('b', seg, eaExpr(c, k))} const a = r32[${reg}], r = ${expr}; ${flags}${store ? ` r32[${reg}] = r;` : ''} }`;
    if (form === 'EdGd' && mem && !store) return `{ let a = 0; ${read32Code('a', seg, eaExpr(c, k))} const b = r32[${reg}], r = ${expr}; ${flags} }`;
    if (form === 'EdId' && mem && !store) return `{ let a = 0; ${read32Code('a', seg, eaExpr(c, k))} const b = ${imm}, r = ${expr}; ${flags} }`;
    if (form === 'EdGd' && mem) return `{ const a = c.rmwRead32(${seg}, ${eaExpr(c, k)}), b = r32[${reg}], r = ${expr}; ${flags} c.rmwWrite32(r); }`;
    return `{ const a = c.rmwRead32(${seg}, ${eaExpr(c, k)}), b = ${imm}, r = ${expr}; ${flags} c.rmwWrite32(r); }`;
  }
  switch (name) {
    case 'NOP': return '';
    case 'MOV_EbIb_R': return `r8[${rm}] = ${imm & 0xff};`;
    case 'MOV_EbGb_R': return `r8[${rm}] = r8[${reg}];`;
    case 'MOV_EbIb_M': return `c.write8(${seg}, ${eaExpr(c, k)}, ${imm & 0xff});`;
    case 'MOVSX_GdEb_R': return `r32[${reg}] = (r8[${rm}] << 24) >> 24;`;
    case 'MOVZX_GdEw_R': return `r32[${reg}] = r16[${rm}];`;
    case 'CDQ': return 'r32[2] = r32[0] >> 31;';
    case 'ALU_EbIb_R': return sub === 7 ? `alu(c, 7, r8[${rm}], ${imm}, 24);` : `r8[${rm}] = alu(c, ${sub}, r8[${rm}], ${imm}, 24);`;
    case 'ALU_EbIb_M': return sub === 7
      ? `alu(c, 7, c.read8(${seg}, ${eaExpr(c, k)}), ${imm}, 24);`
      : `c.rmwWrite8(alu(c, ${sub}, c.rmwRead8(${seg}, ${eaExpr(c, k)}), ${imm}, 24));`;
    case 'TEST_EbGb_R': return `alu(c, 4, r8[${rm}], r8[${reg}], 24);`;
    case 'TEST_EdId_M': return `{ let a = 0; ${read32Code('a', seg, eaExpr(c, k))} c.lfLogic(a & ${imm}); }`;
    case 'MOV_GdEd_M': return `{ let v = 0; ${read32Code('v', seg, eaExpr(c, k))} r32[${reg}] = v; }`;
    case 'MOV_EdGd_R': return `r32[${rm}] = r32[${reg}];`;
    case 'MOV_EdGd_M': return write32Code(seg, eaExpr(c, k), `r32[${reg}]`);
    case 'MOV_EdId_R': return `r32[${rm}] = ${imm};`;
    case 'MOV_EdId_M': return write32Code(seg, eaExpr(c, k), `${imm}`);
    case 'MOV_GbEb_M': return `r8[${reg}] = c.read8(${seg}, ${eaExpr(c, k)});`;
    case 'MOV_EbGb_M': return `c.write8(${seg}, ${eaExpr(c, k)}, r8[${reg}]);`;
    case 'MOVZX_GdEb_R': return `r32[${reg}] = r8[${rm}];`;
    case 'MOVZX_GdEb_M': return `r32[${reg}] = c.read8(${seg}, ${eaExpr(c, k)});`;
    case 'MOVZX_GdEw_M': return `r32[${reg}] = c.read16(${seg}, ${eaExpr(c, k)});`;
    case 'MOVSX_GdEb_M': return `r32[${reg}] = (c.read8(${seg}, ${eaExpr(c, k)}) << 24) >> 24;`;
    case 'LEA_Gd': return `r32[${reg}] = ${eaExpr(c, k)};`;
    case 'TEST_EdGd_R': return `c.lfLogic(r32[${rm}] & r32[${reg}]);`;
    case 'TEST_EdId_R': return `c.lfLogic(r32[${rm}] & ${imm});`;
    case 'INC_Ed_R': case 'DEC_Ed_R': {
      const inc = name === 'INC_Ed_R';
      return `{ const a = r32[${rm}], r = (a ${inc ? '+' : '-'} 1) | 0; if ((c.lfMask & 1) !== 0) c.flags = (c.flags & ~1) | (c.getCF() ? 1 : 0); `
        + `c.lfOp = ${inc ? 0 : 1}; c.lfA = a; c.lfB = 1; c.lfRes = r; c.lfMask = 0x8d4; r32[${rm}] = r; }`;
    }
    case 'NEG_Ed_R': return `{ const a = r32[${rm}], r = (0 - a) | 0; c.lfSub(0, a, r); r32[${rm}] = r; }`;
    case 'SHIFT_Ed1_R': return shiftTemplate(rm, sub, 1);
    case 'SHIFT_EdIb_R': return (imm & 0x1f) === 0 ? '' : shiftTemplate(rm, sub, imm & 0x1f);
    case 'IMUL_GdEd_R': case 'IMUL_GdEd_M': {
      const src = name.endsWith('_R') ? `r32[${rm}]` : `c.read32(${seg}, ${eaExpr(c, k)})`;
      return `{ const a = r32[${reg}], b = ${src}, lo = Math.imul(a, b); mulFlags(c, mulHighS(a, b) !== (lo >> 31), lo, 32); r32[${reg}] = lo; }`;
    }
    case 'PUSH_Rd': return `c.push32(r32[${rm}]);`;
    case 'POP_Rd': return `{ const v = c.peek32(0); c.adjustSp(4); r32[${rm}] = v; }`;
    case 'JNZ_Jd': return `if (!c.getZF()) c.jumpNear((c.eip + ${imm}) | 0);`;
    case 'JZ_Jd': return `if (c.getZF()) c.jumpNear((c.eip + ${imm}) | 0);`;
    case 'Jcc_Jd': return `if (c.cond(${sub})) c.jumpNear((c.eip + ${imm}) | 0);`;
    case 'JMP_Jd': return `c.jumpNear((c.eip + ${imm}) | 0);`;
    case 'CALL_Jd': return `{ const t = (c.eip + ${imm}) | 0; if ((t >>> 0) > c.segLimit[1]) c.raise(13, 0); c.push32(c.eip); c.eip = t; }`;
    case 'RETD': return '{ const t = c.peek32(0); c.jumpNear(t); c.adjustSp(4); }';
    default: return null;
  }
}

/** Compiled functions by source text: a block with the same code (the same instructions decoded into the
 *  same pool rows, as when a machine is booted again) gets the same function, already optimised by V8. */
const cache = new Map<string, BlockFn>();
const CACHE_LIMIT = 50_000;

/** Compile `count` instructions starting at pool row k0 into a block function. */
export function compileBlock(c: CPU, k0: number, count: number): BlockFn {
  const lines: string[] = [
    'const r32 = c.r32, r16 = c.r16, r8 = c.r8, m32 = c.m32, tlb = c.tlb, sb = c.segBase, rl = c.segRLim, wl = c.segWLim;',
    'const e = c.eip;',
  ];
  // Handlers called by the block are bound to parameters of the factory, so each call site has one
  // known target that V8 can inline.
  const called: number[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) total += c.iLen[k0 + i];
  // A block whose last instruction jumps back to its own start (a tight loop) becomes a JavaScript loop:
  // `done` counts the instructions of the finished iterations, and the loop gives the run loop back
  // control when its budget is used up.
  const lastK = k0 + count - 1;
  const lastName = OP_NAMES[c.iOp[lastK]];
  const selfLoop = count > 1 && LOOP_BRANCHES.has(lastName) && c.iImm[lastK] === -total && (c.iFlags[lastK] & F_A16) === 0;
  const done = selfLoop ? 'done + ' : '';
  if (selfLoop) lines.push('let done = 0;', 'for (;;) {');
  let off = 0;
  for (let i = 0; i < count; i++) {
    const k = k0 + i;
    const len = c.iLen[k];
    const name = OP_NAMES[c.iOp[k]];
    const last = i === count - 1;
    if (selfLoop && last) {
      // the backward branch: fall through ends the loop, taken starts the next iteration
      const cond = name === 'JMP_Jd' ? 'true' : name === 'JNZ_Jd' ? '!c.getZF()' : name === 'JZ_Jd' ? 'c.getZF()' : `c.cond(${c.iSub[k]})`;
      lines.push(`done += ${count};`);
      lines.push(`if (!(${cond})) { c.eip = (e + ${total}) | 0; return done; }`);
      lines.push('c.eip = e;');
      lines.push('if (done >= c.budget) return done;');
      break;
    }
    const t = template(c, k);
    const pure = t !== null && PURE.has(name);
    if (!pure) {
      lines.push(`c.prevEip = (e + ${off}) | 0; c.eip = (e + ${off + len}) | 0; c.jitIdx = ${done}${i};`);
    }
    if (t === null && !called.includes(c.iOp[k])) called.push(c.iOp[k]);
    lines.push(t ?? `h${c.iOp[k]}(c, ${k});`);
    if (t === null || WRITES.has(name)) lines.push(`if (c.stop !== 0) return ${done}${i + 1};`);
    off += len;
    if (last && pure) lines.push(`c.eip = (e + ${off}) | 0;`);
  }
  lines.push(selfLoop ? '}' : `return ${count};`);
  const source = lines.join('\n');
  let fn = cache.get(source);
  if (fn === undefined) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    const factory = new Function('shift', 'alu', 'mulFlags', 'mulHighS', ...called.map((op) => `h${op}`), `return function block_${k0}(c) {\n${source}\n};`);
    fn = factory(shift, alu, mulFlags, mulHighS, ...called.map((op) => HANDLERS[op])) as BlockFn;
    cache.set(source, fn);
  }
  return fn;
}

/**
 * From a row's body (emulator/optable.ts) to what runs it: the handler, the interpreter's inline case and
 * the block compiler's code. One text, three expansions of its placeholders:
 *   handler      $rm -> c.iRm[k] ...        $ea -> c.ea(k)
 *   interpreter  $rm -> iRm[k] (a local)    $ea -> c.ea(k)
 *   compiler     $rm -> 3 (the constant)    $ea -> ((r32[3] + 8) | 0) (the address written out), and
 *                the statement-level dword reads and writes become the TLB fast path written out
 */
import { F_A16 } from '../decoder.ts';
import { ZERO_REG } from '../constants.ts';

/** What the compiler needs of the decoded-instruction pool (a CPU). */
export interface DecodedRow {
  iReg: Uint8Array; iRm: Uint8Array; iBase: Uint8Array; iIdx: Uint8Array; iScale: Uint8Array;
  iSeg: Uint8Array; iFlags: Uint8Array; iSub: Uint8Array; iDisp: Int32Array; iImm: Int32Array;
}

const FIELDS: [RegExp, string][] = [
  [/\$rm\b/g, 'iRm'], [/\$reg\b/g, 'iReg'], [/\$imm\b/g, 'iImm'], [/\$sub\b/g, 'iSub'], [/\$seg\b/g, 'iSeg'],
];

/** The body as a handler's or the interpreter's code (`k` is the pool row, `c` the CPU). */
export function expandBody(body: string, mode: 'handler' | 'interp'): string {
  let s = body;
  for (const [re, field] of FIELDS) s = s.replace(re, mode === 'handler' ? `c.${field}[k]` : `${field}[k]`);
  return s.replace(/\$ea\b/g, 'c.ea(k)');
}

/** The effective-address expression of row k's memory operand, with its decoded fields as constants. */
export function eaExpr(d: DecodedRow, k: number): string {
  if ((d.iFlags[k] & F_A16) !== 0) return `c.ea16(${k})`;
  const parts: string[] = [];
  if (d.iBase[k] !== ZERO_REG) parts.push(`r32[${d.iBase[k]}]`);
  if (d.iIdx[k] !== ZERO_REG) parts.push(d.iScale[k] !== 0 ? `(r32[${d.iIdx[k]}] << ${d.iScale[k]})` : `r32[${d.iIdx[k]}]`);
  if (d.iDisp[k] !== 0 || parts.length === 0) parts.push(`${d.iDisp[k]}`);
  return parts.length === 1 ? `(${parts[0]} | 0)` : `((${parts.join(' + ')}) | 0)`;
}

/** Statements that read the dword at seg:ea into `dst` (declared by the caller): the CPU's read32 fast
 *  path written out, so it needs no call; anything unusual goes to readSlow as read32 does. */
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

/** The locals compiled code may use (declared once at the top of a block function). */
export const COMPILED_PRELUDE = 'const r32 = c.r32, r16 = c.r16, r8 = c.r8, m32 = c.m32, tlb = c.tlb, sb = c.segBase, rl = c.segRLim, wl = c.segWLim;';

/** The body as compiled code for pool row k: its operands are constants. */
export function compileBody(body: string, d: DecodedRow, k: number): string {
  const seg = d.iSeg[k];
  const ea = body.includes('$ea') ? eaExpr(d, k) : '';
  let s = body
    .replace(/const (\w+) = c\.read32\(\$seg, \$ea\);/g, (_, v: string) => `let ${v} = 0; ${read32Code(v, seg, ea)}`)
    .replace(/c\.write32\(\$seg, \$ea, ([^;]+)\);/g, (_, v: string) => write32Code(seg, ea, v));
  s = s.replace(/\$rm\b/g, `${d.iRm[k]}`).replace(/\$reg\b/g, `${d.iReg[k]}`).replace(/\$imm\b/g, `(${d.iImm[k]})`)
    .replace(/\$sub\b/g, `${d.iSub[k]}`).replace(/\$seg\b/g, `${seg}`).replace(/\$ea\b/g, ea);
  return `{ ${s} }`;
}

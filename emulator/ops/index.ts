/**
 * Every op, ready to run: loads the op modules (which register the handlers of the cold rows), generates
 * the handlers of the rows with a body and the interpreter's inner loop with the hot rows inline
 * (ops/codegen.ts), and checks that every row of emulator/optable.ts has a handler. Done once, at start-up
 * (about a millisecond: see emulator/README.md).
 */
import type { CPU } from '../cpu.ts';
import { HOT_COUNT, OPS, OP_NAMES } from '../optable.ts';
import { HANDLERS, installHandler, missingHandlers, type Handler } from './registry.ts';
import { expandBody } from './codegen.ts';
import { alu } from './alu.ts';
import './bcd.ts';
import './bit.ts';
import './control.ts';
import './locked.ts';
import './misc.ts';
import './mov.ts';
import { imul32 } from './muldiv.ts';
import { sh32, shift } from './shift.ts';
import './stack.ts';
import './string.ts';
import './system.ts';
import '../decoder.ts'; // (defines the far-pointer loads)

/** The functions bodies may call, by the name they use. */
export const HELPER_NAMES = ['alu', 'shift', 'sh32', 'imul32'];
export const HELPERS: unknown[] = [alu, shift, sh32, imul32];

function factory(source: string, ...extra: string[]): (...a: unknown[]) => unknown {
  return new Function(...HELPER_NAMES, ...extra, source) as (...a: unknown[]) => unknown;
}

for (let id = 0; id < OPS.length; id++) {
  const body = OPS[id].body;
  if (body === undefined) continue;
  const src = `return function ${OP_NAMES[id]}(c, k) {\nconst r32 = c.r32, r16 = c.r16, r8 = c.r8;\n${expandBody(body, 'handler')}\n};`;
  installHandler(id, factory(src)(...HELPERS) as Handler);
}
{
  const missing = missingHandlers().filter((n) => n !== 'X87');
  if (missing.length > 0) throw new Error(`ops without a handler: ${missing.join(' ')}`);
}

/** Interpret `count` instructions of the block at pool row k0 (fewer if one sets `stop`); returns how
 *  many completed, `c.jitIdx` always holding the number completed before the current one (a fault counts
 *  exactly what retired). The hot rows run inline in a switch on their op id (0..HOT_COUNT-1: a jump
 *  table); everything else is called through the dispatch table. */
export type Interpreter = (c: CPU, k0: number, count: number) => number;

function makeInterpreter(): Interpreter {
  const cases: string[] = [];
  for (let id = 0; id < HOT_COUNT; id++) {
    cases.push(`      case ${id}: { /* ${OP_NAMES[id]} */ ${expandBody(OPS[id].body!, 'interp')} break; }`);
  }
  const src = `return function interpretBlock(c, k0, count) {
  const r32 = c.r32, r16 = c.r16, r8 = c.r8, iOp = c.iOp, iLen = c.iLen;
  const iRm = c.iRm, iReg = c.iReg, iImm = c.iImm, iSub = c.iSub, iSeg = c.iSeg;
  const end = k0 + count;
  for (let k = k0; k < end; k++) {
    c.jitIdx = k - k0;
    const e0 = c.eip;
    c.prevEip = e0;
    c.eip = (e0 + iLen[k]) | 0;
    const op = iOp[k];
    switch (op) {
${cases.join('\n')}
      default: handlers[op](c, k);
    }
    if (c.stop !== 0) return k - k0 + 1;
  }
  return count;
};`;
  return factory(src, 'handlers')(...HELPERS, HANDLERS) as Interpreter;
}

export const interpretBlock: Interpreter = makeInterpreter();
export { HANDLERS };

/**
 * The block compiler: the second backend the decoder was shaped for. A block that has run often enough
 * becomes one JavaScript function whose body is its instructions, written out with their decoded
 * operands as constants; V8 then optimises it like any other code. An instruction whose row in
 * emulator/optable.ts has a body is written out from that body (ops/codegen.ts compileBody), the same
 * text its handler and the interpreter's case come from; any other is compiled as a call of its handler,
 * so every instruction works (the vectors run through compiled code, test/vectors/vectors.test.ts, and the
 * differential fuzzer compares whole programs, test/property/cpu-diff.test.ts).
 *
 * Contract with the run loop (cpu.ts): a compiled block is called with the CPU and returns how many of
 * its instructions completed. Before any instruction that can fault, read EIP or change control flow,
 * it sets prevEip/eip as the interpreter would and records the instruction's index in `jitIdx`, so a
 * fault is precise and the run loop can count what retired. It returns early when an instruction sets
 * `stop` (self-modifying code, device exits, ...).
 */
import type { CPU } from './cpu.ts';
import { HANDLERS, HELPERS, HELPER_NAMES } from './ops/index.ts';
import { COMPILED_PRELUDE, compileBody } from './ops/codegen.ts';
import { LOOP_BRANCH, OPS, PURE, WRITES } from './optable.ts';
import { F_A16 } from './decoder.ts';

export type BlockFn = (c: CPU) => number;

/** Compiled functions by source text: a block with the same code (the same instructions decoded into the
 *  same pool rows, as when a machine is booted again) gets the same function, already optimised by V8. */
const cache = new Map<string, BlockFn>();
const CACHE_LIMIT = 50_000;

/** Compile `count` instructions starting at pool row k0 into a block function. */
export function compileBlock(c: CPU, k0: number, count: number): BlockFn {
  const lines: string[] = [COMPILED_PRELUDE, 'const e = c.eip;'];
  // Handlers called by the block are bound to parameters of the factory, so each call site has one
  // known target that V8 can inline.
  const called: number[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) total += c.iLen[k0 + i];
  // A block whose last instruction jumps back to its own start (a tight loop) becomes a JavaScript loop:
  // `done` counts the instructions of the finished iterations, and the loop gives the run loop back
  // control when its budget is used up or the branch goes elsewhere.
  const lastK = k0 + count - 1;
  const selfLoop = count > 1 && LOOP_BRANCH[c.iOp[lastK]] !== 0 && c.iImm[lastK] === -total && (c.iFlags[lastK] & F_A16) === 0;
  const done = selfLoop ? 'done + ' : '';
  if (selfLoop) lines.push('let done = 0;', 'for (;;) {');
  let off = 0;
  for (let i = 0; i < count; i++) {
    const k = k0 + i;
    const len = c.iLen[k];
    const op = c.iOp[k];
    const body = OPS[op].body;
    const pure = PURE[op] !== 0;
    const last = i === count - 1;
    if (selfLoop && last) {
      // The backward branch: its target is the block's start, which was fetched, so it is within the CS
      // limit and the jump cannot fault; it only needs the next EIP. Taken, it leaves EIP at the start.
      lines.push(`c.eip = (e + ${off + len}) | 0;`, compileBody(body!, c, k).replace(/c\.jumpNear\(([^;]*)\);/g, 'c.eip = $1;'));
      lines.push(`done += ${count};`, 'if (c.eip !== e || done >= c.budget) return done;');
      break;
    }
    if (!pure) lines.push(`c.prevEip = (e + ${off}) | 0; c.eip = (e + ${off + len}) | 0; c.jitIdx = ${done}${i};`);
    if (body === undefined && !called.includes(op)) called.push(op);
    lines.push(body !== undefined ? compileBody(body, c, k) : `h${op}(c, ${k});`);
    off += len;
    if (WRITES[op] !== 0) lines.push(`if (c.stop !== 0) return ${done}${i + 1};`);
    if (last && pure) lines.push(`c.eip = (e + ${off}) | 0;`);
  }
  lines.push(selfLoop ? '}' : `return ${count};`);
  const source = lines.join('\n');
  let fn = cache.get(source);
  if (fn === undefined) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    const factory = new Function(...HELPER_NAMES, ...called.map((id) => `h${id}`), `return function block_${k0}(c) {\n${source}\n};`);
    fn = factory(...HELPERS, ...called.map((id) => HANDLERS[id])) as BlockFn;
    cache.set(source, fn);
  }
  return fn;
}

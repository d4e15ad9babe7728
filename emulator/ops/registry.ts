/**
 * The dispatch table: the handler of every op, indexed by the op id the decoder stores for each
 * instruction (the row's index in emulator/optable.ts). Handlers of cold rows are registered by the op
 * modules with defineOp; handlers of rows with a body are generated from it (ops/codegen.ts, once every
 * op module is loaded: ops/index.ts).
 */
import type { CPU } from '../cpu.ts';
import { OPS, OP_NAMES, opId } from '../optable.ts';

/** An instruction handler: executes decoded instruction `k` of the CPU's decoded-instruction pool. The
 *  memory operand (if any) is described by the decoded fields; handlers compute it with `cpu.ea(k)`. */
export type Handler = (cpu: CPU, k: number) => void;

const notRegistered: Handler = () => {
  throw new Error('internal error: an op has no handler');
};

/** The flat dispatch table, indexed by op id. */
export const HANDLERS: Handler[] = OPS.map(() => notRegistered);
export { OP_NAMES };

/** Register the handler of a cold row (one without a body) and return its op id. */
export function defineOp(name: string, fn: Handler): number {
  const id = opId(name);
  if (OPS[id].body !== undefined) throw new Error(`op ${name} has a body in emulator/optable.ts: it gets no handler of its own`);
  if (HANDLERS[id] !== notRegistered) throw new Error(`op ${name} defined twice`);
  HANDLERS[id] = fn;
  return id;
}

/** The op id of a row with a body (its handler is generated from the body). */
export function bodyOp(name: string): number {
  const id = opId(name);
  if (OPS[id].body === undefined) throw new Error(`op ${name} has no body in emulator/optable.ts`);
  return id;
}

/** Install a generated handler (ops/index.ts). */
export function installHandler(id: number, fn: Handler): void {
  if (HANDLERS[id] !== notRegistered) throw new Error(`op ${OP_NAMES[id]} defined twice`);
  HANDLERS[id] = fn;
}

/** The names of the rows that got no handler (none, once everything is loaded). */
export function missingHandlers(): string[] {
  return OP_NAMES.filter((_, i) => HANDLERS[i] === notRegistered);
}

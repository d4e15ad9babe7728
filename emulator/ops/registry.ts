import type { CPU } from '../cpu.ts';

/** An instruction handler: executes decoded instruction `k` of the CPU's decoded-instruction pool. The
 *  memory operand (if any) is described by the decoded fields; handlers compute it with `cpu.ea(k)`. */
export type Handler = (cpu: CPU, k: number) => void;

/** The flat dispatch table, indexed by the op id the decoder stores for each instruction. */
export const HANDLERS: Handler[] = [];
/** The name of each op, for traces and statistics (`ADD_EdGd_M`, in Bochs' operand notation). */
export const OP_NAMES: string[] = [];

/** Register a handler and return its op id. Ids are assigned in module load order. */
export function defineOp(name: string, fn: Handler): number {
  HANDLERS.push(fn);
  OP_NAMES.push(name);
  return HANDLERS.length - 1;
}

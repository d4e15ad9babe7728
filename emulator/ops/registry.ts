import type { CPU } from '../cpu.ts';

/** An instruction handler: executes decoded instruction `k` of the CPU's decoded-instruction pool. The
 *  memory operand (if any) is described by the decoded fields; handlers compute it with `cpu.ea(k)`. */
export type Handler = (cpu: CPU, k: number) => void;

/**
 * The hot ops: the run loop (cpu.ts) executes these inline in a switch on their op id instead of calling
 * their handler, because a call through the dispatch table costs more than most instructions do. Their
 * ids are fixed (the index in this list) whatever order the op modules load in; the handlers stay the
 * reference and are what everything else (and the default branch) calls. Chosen by measured frequency on
 * the benchmark workload and guest kernels.
 */
export const HOT_OPS = [
  'MOV_GdEd_M', 'MOV_EdGd_R', 'MOV_EdGd_M', 'MOV_EdId_R', 'JNZ_Jd', 'JZ_Jd', 'Jcc_Jd', 'JMP_Jd',
  'TEST_EdGd_R', 'LEA_Gd', 'INC_Ed_R', 'DEC_Ed_R', 'PUSH_Rd', 'POP_Rd', 'CALL_Jd', 'RETD',
  'ADD_EdGd_R', 'ADD_GdEd_R', 'ADD_EdId_R', 'SUB_EdId_R', 'SUB_GdEd_R', 'CMP_EdId_R', 'CMP_GdEd_R', 'CMP_GdEd_M',
  'CMP_EdId_M', 'AND_EdId_R', 'XOR_GdEd_R', 'ADD_GdEd_M', 'MOV_EdId_M', 'MOVZX_GdEb_R', 'MOVZX_GdEb_M', 'NEG_Ed_R',
  'XOR_EdGd_R', 'AND_EdGd_R', 'OR_EdGd_R', 'ADD_EdGd_M', 'SUB_EdGd_R', 'CMP_EdGd_R', 'TEST_EdId_R', 'MOV_GbEb_M',
  'MOV_EbGb_M', 'MOVZX_GdEw_M', 'MOVSX_GdEb_M', 'OR_EdId_R', 'SHIFT_Ed1_R', 'SHIFT_EdIb_R',
];

const notRegistered: Handler = () => {
  throw new Error('internal error: a hot op has no handler');
};

/** The flat dispatch table, indexed by the op id the decoder stores for each instruction. */
export const HANDLERS: Handler[] = HOT_OPS.map(() => notRegistered);
/** The name of each op, for traces and statistics (`ADD_EdGd_M`, in Bochs' operand notation). */
export const OP_NAMES: string[] = HOT_OPS.slice();

/** Register a handler and return its op id. */
export function defineOp(name: string, fn: Handler): number {
  const hot = HOT_OPS.indexOf(name);
  if (hot >= 0) {
    if (HANDLERS[hot] !== notRegistered) throw new Error(`op ${name} defined twice`);
    HANDLERS[hot] = fn;
    return hot;
  }
  HANDLERS.push(fn);
  OP_NAMES.push(name);
  return HANDLERS.length - 1;
}

/** Throws unless every hot op got its handler (called once the op modules are loaded). */
export function checkHotOps(): void {
  HOT_OPS.forEach((name, i) => {
    if (HANDLERS[i] === notRegistered) throw new Error(`hot op ${name} was never defined`);
  });
}

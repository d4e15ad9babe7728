/**
 * Lazy flags: the arithmetic flags are not computed when an instruction runs; it records which formula
 * gives them (lfOp) and its operands and result (cpu.ts: lfA, lfB, lfRes; lfMask says which flags are
 * lazy), and getCF() and friends compute them when something reads them.
 */
import { PF } from './constants.ts';

// Lazy flag operations: which formula gives CF, OF and AF for the last arithmetic result.
export const LF_ADD = 0;
export const LF_SUB = 1;
export const LF_ADC1 = 2; // add with carry-in 1
export const LF_SBB1 = 3; // subtract with borrow-in 1
export const LF_LOGIC = 4; // CF = OF = AF = 0

/** Parity flag of a byte: PF set when the number of set bits is even. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, n = 0;
  while (b) { n += b & 1; b >>= 1; }
  PARITY[i] = (n & 1) === 0 ? PF : 0;
}

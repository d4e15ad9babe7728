/**
 * String instructions MOVS, CMPS, STOS, LODS, SCAS with REP/REPE/REPNE and DF. Each iteration commits its
 * register updates, so a fault in the middle leaves ESI, EDI and ECX at the point of progress and EIP at
 * the instruction, which resumes where it stopped. A long REP yields to the run loop every
 * REP_CHUNK iterations (EIP stays on the instruction) so interrupts and time slices are not delayed.
 */
import { DF, EAX, ECX, EDI, ES, ESI } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { alu } from './alu.ts';
import { defineOp } from './registry.ts';

/** Iterations a REP instruction runs before it gives the run loop a turn (EIP stays on it). Every
 *  iteration also counts against the run's budget, so a time slice stays a time slice. */
const REP_CHUNK = 4096;
const F_A16 = 1, F_REP = 2, F_REPNE = 4;

function readN(c: CPU, s: number, off: number, n: number): number {
  return n === 1 ? c.read8(s, off) : n === 2 ? c.read16(s, off) : c.read32(s, off);
}

function writeN(c: CPU, s: number, off: number, n: number, v: number): void {
  if (n === 1) c.write8(s, off, v);
  else if (n === 2) c.write16(s, off, v);
  else c.write32(s, off, v);
}

function getAcc(c: CPU, n: number): number {
  return n === 1 ? c.r8[0] : n === 2 ? c.r16[0] : c.r32[EAX];
}

function setAcc(c: CPU, n: number, v: number): void {
  if (n === 1) c.r8[0] = v;
  else if (n === 2) c.r16[0] = v;
  else c.r32[EAX] = v;
}

/** Step an index register by delta with the address size. */
function bump(c: CPU, r: number, delta: number, a16: boolean): void {
  if (a16) c.r16[r << 1] = c.r16[r << 1] + delta;
  else c.r32[r] = (c.r32[r] + delta) | 0;
}

function idx(c: CPU, r: number, a16: boolean): number {
  return a16 ? c.r16[r << 1] : c.r32[r];
}

/** Kinds: 0 MOVS, 1 CMPS, 2 STOS, 3 LODS, 4 SCAS. */
function stringOp(kind: number, n: number) {
  return (c: CPU, k: number) => {
    const fl = c.iFlags[k];
    const a16 = (fl & F_A16) !== 0;
    const rep = (fl & (F_REP | F_REPNE)) !== 0;
    const delta = (c.flags & DF) !== 0 ? -n : n;
    const seg = c.iSeg[k];
    const sh = n === 1 ? 24 : n === 2 ? 16 : 0;
    let count = rep ? (a16 ? c.r16[ECX << 1] : c.r32[ECX] >>> 0) : 1;
    let budget = REP_CHUNK;
    let iterations = 0;
    while (count !== 0) {
      iterations++;
      switch (kind) {
        case 0: writeN(c, ES, idx(c, EDI, a16), n, readN(c, seg, idx(c, ESI, a16), n)); break;
        case 1: alu(c, 7, readN(c, seg, idx(c, ESI, a16), n), readN(c, ES, idx(c, EDI, a16), n), sh); break;
        case 2: writeN(c, ES, idx(c, EDI, a16), n, getAcc(c, n)); break;
        case 3: setAcc(c, n, readN(c, seg, idx(c, ESI, a16), n)); break;
        default: alu(c, 7, getAcc(c, n), readN(c, ES, idx(c, EDI, a16), n), sh); break;
      }
      if (kind !== 2 && kind !== 4) bump(c, ESI, delta, a16);
      if (kind !== 3) bump(c, EDI, delta, a16);
      if (!rep) return;
      count--;
      if (a16) c.r16[ECX << 1] = count;
      else c.r32[ECX] = count | 0;
      if (kind === 1 || kind === 4) {
        const zf = c.getZF();
        if ((fl & F_REPNE) !== 0 ? zf : !zf) break;
      }
      if (--budget === 0 && count !== 0) {
        // come back to this instruction later: it is not retired yet
        c.eip = c.prevEip;
        c.retired--;
        c.budget -= iterations;
        c.stop = 1;
        return;
      }
    }
    if (iterations > 1) c.budget -= iterations - 1;
  };
}

const NAMES = ['MOVS', 'CMPS', 'STOS', 'LODS', 'SCAS'];
/** STRING_OPS[kind][size 0=b 1=w 2=d] */
export const STRING_OPS: number[][] = NAMES.map((name, kind) =>
  [1, 2, 4].map((n) => defineOp(`${name}${'BWD'[n >> 1]}`, stringOp(kind, n))),
);

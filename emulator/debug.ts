/**
 * Debug registers (SDM volume 3, chapter 18): instruction breakpoints and data breakpoints through
 * DR0-DR3 with DR7, the status they leave in DR6, and the single-step trap of EFLAGS.TF.
 *
 * None of this costs anything while no breakpoint is enabled. A write to DR7 computes two masks:
 * `cpu.execBp` (enabled breakpoints with R/W = 00) and `cpu.dataBp` (R/W = 01 or 11). While either is
 * nonzero `cpu.debugActive` is set and the run loop executes one instruction per block, checking the
 * instruction breakpoints before it and delivering the debug trap after it; while `dataBp` is nonzero
 * every data access takes the slow path (cpu.updateAccessBits), which reports hits here.
 * I/O breakpoints (R/W = 10 with CR4.DE) and DR7.GD are not implemented.
 */
import { CS, DB, RF } from './constants.ts';
import type { CPU } from './cpu.ts';

export const DR6_B0 = 1 << 0;
export const DR6_BS = 1 << 14;
/** Bits of DR6 that always read as 1 on a P6 (reserved bits 4-11, 16-31), and DR7's bit 10. */
export const DR6_FIXED = 0xffff0ff0 | 0;
export const DR7_FIXED = 0x400;

const RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_READWRITE = 3;

/** DR7's R/W and LEN fields of breakpoint n. */
function rw(dr7: number, n: number): number { return (dr7 >>> (16 + n * 4)) & 3; }
function len(dr7: number, n: number): number {
  // LEN encodings: 00 = 1 byte, 01 = 2, 11 = 4 (10 is 8 bytes on 64-bit CPUs, undefined here: treat as 4)
  const l = (dr7 >>> (18 + n * 4)) & 3;
  return l === 0 ? 1 : l === 1 ? 2 : 4;
}
function enabled(dr7: number, n: number): boolean { return ((dr7 >>> (n * 2)) & 3) !== 0; }

/** MOV to DR7: recompute which breakpoints the machine must watch. */
export function writeDr7(cpu: CPU, v: number): void {
  cpu.dr[7] = v;
  let exec = 0, data = 0;
  for (let n = 0; n < 4; n++) {
    if (!enabled(v, n)) continue;
    const t = rw(v, n);
    if (t === RW_EXEC) exec |= 1 << n;
    else if (t === RW_WRITE || t === RW_READWRITE) data |= 1 << n;
    else if (t === RW_IO) { /* I/O breakpoints: not implemented */ }
  }
  cpu.execBp = exec;
  cpu.dataBp = data;
  cpu.debugActive = (exec | data) !== 0;
  cpu.updateAccessBits();
  cpu.stop = 1;
}

/** Before an instruction while breakpoints are enabled: does an instruction breakpoint match its first
 *  byte? If so the #DB fault is delivered (EIP = the instruction, DR6.Bn set) and true is returned.
 *  EFLAGS.RF set suppresses the check for one instruction (a handler returns with it to go on). */
export function instructionBreakpoint(cpu: CPU): boolean {
  if (cpu.execBp === 0 || (cpu.flags & RF) !== 0) return false;
  const lin = (cpu.segBase[CS] + cpu.eip) | 0;
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    if ((cpu.execBp & (1 << n)) !== 0 && cpu.dr[n] === lin) hits |= 1 << n;
  }
  if (hits === 0) return false;
  cpu.dr[6] = (cpu.dr[6] & ~0xf) | hits;
  cpu.prevEip = cpu.eip;
  cpu.exception(DB, -1, cpu.eip);
  return true;
}

/** A data access of `size` bytes at linear `lin` (slow path, only while data breakpoints are enabled):
 *  remember the breakpoints it matches; the trap comes after the instruction. */
export function dataAccess(cpu: CPU, lin: number, size: number, write: boolean): void {
  const dr7 = cpu.dr[7];
  const first = lin >>> 0, last = first + size - 1;
  for (let n = 0; n < 4; n++) {
    if ((cpu.dataBp & (1 << n)) === 0) continue;
    if (!write && rw(dr7, n) !== RW_READWRITE) continue;
    const l = len(dr7, n);
    const bpFirst = (cpu.dr[n] & ~(l - 1)) >>> 0; // the breakpoint address is aligned to its length
    if (first <= bpFirst + l - 1 && bpFirst <= last) cpu.dbgHits |= 1 << n;
  }
}

/** After an instruction that completed in step mode: the debug trap, if TF was set when it started
 *  (single step, DR6.BS) or it hit a data breakpoint (DR6.Bn). One #DB reports both. */
export function debugTrap(cpu: CPU, singleStep: boolean): void {
  const hits = cpu.dbgHits;
  cpu.dbgHits = 0;
  cpu.flags &= ~RF; // RF lasts for one instruction
  if (!singleStep && hits === 0) return;
  let dr6 = cpu.dr[6];
  if (hits !== 0) dr6 = (dr6 & ~0xf) | hits;
  if (singleStep) dr6 |= DR6_BS;
  cpu.dr[6] = dr6;
  cpu.exception(DB, -1, cpu.eip);
}

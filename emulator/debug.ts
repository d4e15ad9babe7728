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
 *
 * The debugger's own breakpoints and watchpoints (`HostDebug`, below) ride on the same hooks.
 */
import { CS, DB, RF } from './constants.ts';
import type { CPU } from './cpu.ts';
import { ExitReason } from './exits.ts';

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
  cpu.dataBp = data | (cpu.dataBp & HOST_WATCH);
  updateHostDebug(cpu);
}

/** Before an instruction while breakpoints are enabled: does an instruction breakpoint match its first
 *  byte? If so the #DB fault is delivered (EIP = the instruction, DR6.Bn set) and true is returned.
 *  EFLAGS.RF set suppresses the check for one instruction (a handler returns with it to go on). */
export function instructionBreakpoint(cpu: CPU): boolean {
  const host = cpu.hostDebug;
  if (host !== null && hostBreakpoint(cpu, host)) return true;
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
  if ((cpu.dataBp & HOST_WATCH) !== 0 && cpu.hostDebug !== null) hostWatch(cpu, cpu.hostDebug, lin, size, write);
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
  const host = cpu.hostDebug;
  if (host !== null && host.watchHit !== null) {
    // the debugger's watchpoint: stop after this instruction (a guest #DB below is still delivered)
    host.hit = host.watchHit;
    host.watchHit = null;
    cpu.exitReason = ExitReason.Breakpoint;
  }
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

// =======================================================================================================
// Host breakpoints: the debugger's (the gdb stub: emulator/debug-target.ts), invisible to the guest
// =======================================================================================================

/** Bit of `cpu.dataBp` meaning "the debugger watches data" (DR0-DR3 use bits 0-3): it sends every data
 *  access to the slow path, which calls dataAccess, exactly as an enabled DRn data breakpoint does. */
export const HOST_WATCH = 1 << 4;

/** Kinds of instruction breakpoint, as gdb names them (Z0 and Z1); a bitmask, both may sit on one address. */
export const BP_SOFTWARE = 1, BP_HARDWARE = 2;

/** What a watchpoint catches: gdb's Z2 (write), Z3 (read), Z4 (either). */
export const enum WatchKind { Write = 2, Read = 3, Access = 4 }

export interface HostWatch { kind: WatchKind; addr: number; len: number }

/** Why the debugger stopped the CPU (with ExitReason.Breakpoint): gdb's stop reasons. */
export interface HostHit {
  why: 'swbreak' | 'hwbreak' | 'watch' | 'rwatch' | 'awatch';
  /** The breakpoint's address, or the watched address. */
  addr: number;
}

/**
 * The debugger's breakpoints on one CPU. They are checked by linear address before each instruction
 * (instruction breakpoints: the CPU stops before executing it) and on each data access (watchpoints: it
 * stops after the instruction, as x86 data breakpoints do); guest memory is never patched, so the guest
 * cannot see or overwrite them. While any is set `cpu.debugActive` is on and the run loop takes its
 * stepping path, in runs of instructions up to the next breakpoint (hostRunLength); while none is set
 * nothing here costs anything.
 */
export class HostDebug {
  /** Instruction breakpoints: linear address (unsigned) -> BP_SOFTWARE | BP_HARDWARE. */
  readonly exec = new Map<number, number>();
  /** How many instruction breakpoints each linear page (lin >>> 12) holds. */
  readonly execPages = new Map<number, number>();
  readonly watches: HostWatch[] = [];
  /** A breakpoint at this linear address is not taken by the first instruction checked (the one the
   *  debugger resumes at: it has already reported it), as EFLAGS.RF does for DRn; -1: none. */
  skip = -1;
  /** The last instruction checked (linear address, cpu.retired then): the same one checked again with
   *  nothing retired in between is that instruction going on (a long REP that gave the run loop a turn,
   *  or one whose fault the Host fixed), not a new arrival at its breakpoint. */
  lastLin = -1;
  lastRetired = -1;
  /** The watchpoint the current instruction hit (reported after it completes). */
  watchHit: HostHit | null = null;
  /** What stopped the CPU, when run() returned ExitReason.Breakpoint. */
  hit: HostHit | null = null;

  get empty(): boolean {
    return this.exec.size === 0 && this.watches.length === 0;
  }

  addBreakpoint(addr: number, kind: number): void {
    const a = addr >>> 0;
    const old = this.exec.get(a) ?? 0;
    if (old === 0) this.execPages.set(a >>> 12, (this.execPages.get(a >>> 12) ?? 0) + 1);
    this.exec.set(a, old | kind);
  }

  /** Remove breakpoint `kind` at addr; false when there was none. */
  removeBreakpoint(addr: number, kind: number): boolean {
    const a = addr >>> 0;
    const old = this.exec.get(a) ?? 0;
    if ((old & kind) === 0) return false;
    if ((old & ~kind) !== 0) {
      this.exec.set(a, old & ~kind);
      return true;
    }
    this.exec.delete(a);
    const n = (this.execPages.get(a >>> 12) ?? 1) - 1;
    if (n === 0) this.execPages.delete(a >>> 12);
    else this.execPages.set(a >>> 12, n);
    return true;
  }

  addWatch(kind: WatchKind, addr: number, len: number): void {
    this.watches.push({ kind, addr: addr >>> 0, len });
  }

  removeWatch(kind: WatchKind, addr: number, len: number): boolean {
    const i = this.watches.findIndex((w) => w.kind === kind && w.addr === addr >>> 0 && w.len === len);
    if (i < 0) return false;
    this.watches.splice(i, 1);
    return true;
  }

  clear(): void {
    this.exec.clear();
    this.execPages.clear();
    this.watches.length = 0;
    this.skip = -1;
    this.watchHit = null;
  }
}

/** After the debugger changed its breakpoints: recompute what the run loop and the memory paths watch. */
export function updateHostDebug(cpu: CPU): void {
  const host = cpu.hostDebug;
  const watching = host !== null && host.watches.length > 0;
  cpu.dataBp = (cpu.dataBp & ~HOST_WATCH) | (watching ? HOST_WATCH : 0);
  cpu.debugActive = (cpu.execBp | cpu.dataBp) !== 0 || (host !== null && host.exec.size > 0);
  cpu.updateAccessBits();
  cpu.stop = 1;
}

/** Before an instruction: a debugger breakpoint at its linear address stops the CPU before it runs. */
function hostBreakpoint(cpu: CPU, host: HostDebug): boolean {
  host.watchHit = null;
  if (host.exec.size === 0) return false;
  const lin = (cpu.segBase[CS] + cpu.eip) >>> 0;
  const skip = host.skip;
  host.skip = -1;
  const again = lin === host.lastLin && cpu.retired === host.lastRetired;
  host.lastLin = lin;
  host.lastRetired = cpu.retired;
  if (lin === skip || again) return false;
  const kind = host.exec.get(lin);
  if (kind === undefined) return false;
  host.hit = { why: (kind & BP_SOFTWARE) !== 0 ? 'swbreak' : 'hwbreak', addr: lin };
  cpu.exitReason = ExitReason.Breakpoint;
  return true;
}

/** A data access the debugger watches (slow path, only while a watchpoint is set): remember the first
 *  watchpoint the current instruction hits. */
function hostWatch(cpu: CPU, host: HostDebug, lin: number, size: number, write: boolean): void {
  if (host.watchHit !== null) return;
  const first = lin >>> 0, last = first + size - 1;
  for (const w of host.watches) {
    if (first > w.addr + w.len - 1 || w.addr > last) continue;
    if (w.kind === WatchKind.Write && !write) continue;
    if (w.kind === WatchKind.Read && write) continue;
    host.watchHit = { why: w.kind === WatchKind.Write ? 'watch' : w.kind === WatchKind.Read ? 'rwatch' : 'awatch', addr: w.addr };
    return;
  }
}

/**
 * The run loop's stepping path, when the debugger has instruction breakpoints: how many instructions of
 * the block at pool row k0 (starting at EIP, which instructionBreakpoint has just checked) may run before
 * the next breakpoint address. One when anything else needs a check after every instruction (TF, step(),
 * DRn breakpoints, host watchpoints); else the whole block when no breakpoint lies on the pages it spans.
 */
export function hostRunLength(cpu: CPU, k0: number, tf: boolean): number {
  const host = cpu.hostDebug;
  if (host === null || k0 === 0 || tf || cpu.singleStep || (cpu.execBp | cpu.dataBp) !== 0) return 1;
  const n = cpu.blkLen[k0];
  const iLen = cpu.iLen;
  const start = (cpu.segBase[CS] + cpu.eip) >>> 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += iLen[k0 + i];
  const pages = host.execPages;
  if (!pages.has(start >>> 12) && !pages.has(((start + bytes - 1) >>> 0) >>> 12)) return n;
  let lin = start;
  for (let i = 1; i < n; i++) {
    lin = (lin + iLen[k0 + i - 1]) >>> 0;
    if (host.exec.has(lin)) return i;
  }
  return n;
}

/**
 * The debugger's view of one vCPU: the "target" half of the gdb stub (the protocol half is
 * launcher/gdb-server.ts). It is synchronous and lives beside the CPU, in whatever thread runs it: it
 * reads and writes registers and linear memory while the CPU is stopped, keeps the debugger's
 * breakpoints (emulator/debug.ts HostDebug: checked by the run loop, never patched into guest memory),
 * runs the CPU one instruction at a time or freely, and says after each run whether the debugger stopped
 * it.
 *
 * Everything that crosses between the two halves is plain data (DebugRequest, DebugReply, DebugEvent),
 * so a worker thread can carry it over a MessagePort or a shared mailbox as well as a direct call can.
 * The one thing the protocol side does to a *running* vCPU is ask it to stop (Ctrl-C): it sets the
 * target's interrupt word and rings the CPU's doorbell, two Int32Arrays that may live in shared memory.
 *
 * Addresses are linear (segment base + offset; the guests here use flat segments, so they are also the
 * offsets gdb shows) and are translated through the CPU's current paging without setting accessed or
 * dirty bits and without faulting (cpu.debugTranslate): memory that is not mapped, or not RAM, answers an
 * error, never a guest page fault.
 */
import { CS, DS, EAX, ES, FS, GS, SS } from './constants.ts';
import type { CPU } from './cpu.ts';
import { BP_HARDWARE, BP_SOFTWARE, HostDebug, updateHostDebug, WatchKind, type HostHit } from './debug.ts';
import { ExitReason } from './exits.ts';

/** gdb's i386 register numbers: the order of its 'g' packet (gdb/i386-tdep.h, and the
 *  org.gnu.gdb.i386.core feature): eight general registers, eip, eflags, six segment selectors. */
export const GDB_REG_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const;
export const GDB_REG_COUNT = GDB_REG_NAMES.length;
export const GDB_EIP = 8;
export const GDB_EFLAGS = 9;
/** gdb registers 10-15 in our segment numbering. */
const GDB_SEGMENTS = [CS, SS, DS, ES, FS, GS];

/** Signals of stop replies, as gdb numbers them. */
export const SIGINT = 2, SIGTRAP = 5, SIGKILL = 9, SIGALRM = 14;

/** The longest memory access one request may ask for. */
export const MAX_DEBUG_ACCESS = 1 << 16;
/** How many breakpoints and watchpoints the debugger may set on one vCPU. */
export const MAX_BREAKPOINTS = 4096;
export const MAX_WATCHPOINTS = 256;
/** The longest range one watchpoint may cover. */
export const MAX_WATCH_LEN = 1 << 20;

const PAGE = 4096;
/** EFLAGS.VM: virtual-8086 mode is not implemented, so the debugger may not set it. */
const EFLAGS_VM = 1 << 17;

/** Breakpoint types, numbered as gdb's Z packets number them. */
export const enum BreakpointType { Software = 0, Hardware = 1, Write = 2, Read = 3, Access = 4 }

/** What the protocol side asks of a stopped vCPU. */
export type DebugRequest =
  | { op: 'readRegisters' }
  /** In gdb order, as many as given (a G packet may be shorter than the whole set). */
  | { op: 'writeRegisters'; values: number[] }
  | { op: 'writeRegister'; reg: number; value: number }
  | { op: 'readMemory'; addr: number; len: number }
  | { op: 'writeMemory'; addr: number; data: Uint8Array }
  | { op: 'insertBreakpoint' | 'removeBreakpoint'; type: BreakpointType; addr: number; len: number };

/** Why a request failed: `fault` (memory not mapped or not RAM; gdb's E14, EFAULT), `invalid` (a bad
 *  argument, or something the CPU cannot do; E22, EINVAL), `busy` (the vCPU is running). */
export type DebugError = 'fault' | 'invalid' | 'busy';

export type DebugReply =
  | { ok: true; values?: number[]; data?: Uint8Array }
  | { ok: false; error: DebugError };

/** What the target side tells the protocol side, unasked. */
export type DebugEvent =
  /** The vCPU stopped: SIGTRAP for a breakpoint, a watchpoint or a finished step, SIGINT when asked to. */
  | { kind: 'stopped'; thread: number; signal: number; why?: HostHit['why']; addr?: number }
  /** The guest ended by itself (the process exit status lguest-ts returns). */
  | { kind: 'exited'; status: number }
  /** The guest was ended from outside (a timeout: SIGALRM; a kill: SIGKILL). */
  | { kind: 'terminated'; signal: number };

export const enum TargetState {
  /** Stopped for the debugger: requests are served. The state before the first instruction. */
  Stopped = 0,
  /** Running until a breakpoint, a watchpoint or an interrupt. */
  Running = 1,
  /** Running one instruction. */
  Stepping = 2,
  /** The debugger has gone: no breakpoints, the guest runs on. */
  Detached = 3,
}

const OK: DebugReply = { ok: true };
const FAULT: DebugReply = { ok: false, error: 'fault' };
const INVALID: DebugReply = { ok: false, error: 'invalid' };
const BUSY: DebugReply = { ok: false, error: 'busy' };

/** [L:600] The debugger's target: one vCPU, stopped before its first instruction until the debugger says
 *  go; requests are served only while it is stopped. */
export class CpuDebugTarget {
  readonly host = new HostDebug();
  state = TargetState.Stopped;
  /** The stop the vCPU is in (what gdb's '?' answers while it is stopped). */
  lastStop: DebugEvent;
  /** Nonzero: the debugger asked the running vCPU to stop (may live in shared memory). */
  readonly interruptWord: Int32Array;

  /** `thread` is the vCPU's gdb thread id (vCPU n is thread n + 1: gdb ids start at 1). */
  constructor(readonly cpu: CPU, readonly thread: number, opts: { interruptWord?: Int32Array } = {}) {
    this.interruptWord = opts.interruptWord ?? new Int32Array(1);
    this.lastStop = { kind: 'stopped', thread, signal: SIGTRAP };
    cpu.hostDebug = this.host;
    updateHostDebug(cpu);
  }

  /** Serve one request (only while stopped: a running CPU's state is its own). */
  handle(req: DebugRequest): DebugReply {
    if (this.state !== TargetState.Stopped) return BUSY;
    switch (req.op) {
      case 'readRegisters': return { ok: true, values: this.readRegisters() };
      case 'writeRegisters': return this.writeRegisters(req.values);
      case 'writeRegister': {
        if (!Number.isInteger(req.reg) || req.reg < 0 || req.reg >= GDB_REG_COUNT) return INVALID;
        const values = new Array<number>(GDB_REG_COUNT).fill(NaN);
        values[req.reg] = req.value;
        return this.writeRegisters(values);
      }
      case 'readMemory': return this.readMemory(req.addr, req.len);
      case 'writeMemory': return this.writeMemory(req.addr, req.data);
      case 'insertBreakpoint': return this.insertBreakpoint(req.type, req.addr, req.len);
      case 'removeBreakpoint': return this.removeBreakpoint(req.type, req.addr, req.len);
      default: return INVALID;
    }
  }

  /** The 16 registers in gdb's order, unsigned. */
  readRegisters(): number[] {
    const c = this.cpu;
    const out: number[] = [];
    for (let i = 0; i < 8; i++) out.push(c.r32[EAX + i] >>> 0);
    out.push(c.eip >>> 0, c.getEflags() >>> 0);
    for (const s of GDB_SEGMENTS) out.push(c.segSel[s] & 0xffff);
    return out;
  }

  /**
   * Write registers in gdb order (NaN: leave that one). A segment register may only be "written" with
   * the selector it holds (loading a segment means reading its descriptor with every protection check:
   * that is the guest's business, not the debugger's); any other value fails the whole write. Values
   * beyond the 16 are ignored.
   */
  private writeRegisters(values: number[]): DebugReply {
    const c = this.cpu;
    for (let i = 0; i < values.length && i < GDB_REG_COUNT; i++) {
      const v = values[i];
      if (Number.isNaN(v)) continue;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return INVALID;
      if (i >= 10 && (v & 0xffff) !== (c.segSel[GDB_SEGMENTS[i - 10]] & 0xffff)) return INVALID;
    }
    for (let i = 0; i < values.length && i < 10; i++) {
      const v = values[i];
      if (Number.isNaN(v)) continue;
      if (i < 8) c.r32[EAX + i] = v | 0;
      else if (i === GDB_EIP) c.eip = v | 0;
      else c.setEflags((v & ~EFLAGS_VM) | 0);
    }
    return OK;
  }

  /** The physical address of linear `lin` for the debugger, or -1 (not mapped, or no RAM there). */
  private physical(lin: number): number {
    const pa = this.cpu.debugTranslate(lin | 0);
    return pa >= 0 && pa < this.cpu.mem.size ? pa : -1;
  }

  /** Read `len` bytes at linear `addr`: all of them, or those before the first unmapped page; a fault
   *  when not even the first byte can be read. */
  readMemory(addr: number, len: number): DebugReply {
    if (!validRange(addr, len)) return INVALID;
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const lin = (addr + done) >>> 0;
      const n = Math.min(len - done, PAGE - (lin & (PAGE - 1)));
      const pa = this.physical(lin);
      if (pa < 0 || pa + n > this.cpu.mem.size) break;
      out.set(this.cpu.mem.u8.subarray(pa, pa + n), done);
      done += n;
    }
    if (done === 0 && len > 0) return FAULT;
    return { ok: true, data: out.subarray(0, done) };
  }

  /** Write bytes at linear `addr`: all of them, or nothing (a fault) when any page is not mapped RAM.
   *  Decoded instructions from the pages written are dropped, as for any write behind the CPU's back. */
  writeMemory(addr: number, data: Uint8Array): DebugReply {
    if (!validRange(addr, data.length)) return INVALID;
    const parts: [number, number, number][] = []; // [physical address, offset in data, length]
    for (let done = 0; done < data.length;) {
      const lin = (addr + done) >>> 0;
      const n = Math.min(data.length - done, PAGE - (lin & (PAGE - 1)));
      const pa = this.physical(lin);
      if (pa < 0 || pa + n > this.cpu.mem.size) return FAULT;
      parts.push([pa, done, n]);
      done += n;
    }
    for (const [pa, off, n] of parts) this.cpu.mem.writeBytes(pa, data.subarray(off, off + n));
    return OK;
  }

  private insertBreakpoint(type: BreakpointType, addr: number, len: number): DebugReply {
    if (!Number.isInteger(addr) || addr < 0 || addr > 0xffffffff) return INVALID;
    const h = this.host;
    if (type === BreakpointType.Software || type === BreakpointType.Hardware) {
      if (h.exec.size >= MAX_BREAKPOINTS && !h.exec.has(addr)) return INVALID;
      h.addBreakpoint(addr, type === BreakpointType.Software ? BP_SOFTWARE : BP_HARDWARE);
    } else if (type === BreakpointType.Write || type === BreakpointType.Read || type === BreakpointType.Access) {
      if (!Number.isInteger(len) || len < 1 || len > MAX_WATCH_LEN || h.watches.length >= MAX_WATCHPOINTS) return INVALID;
      h.addWatch(type as number as WatchKind, addr, len);
    } else {
      return INVALID;
    }
    updateHostDebug(this.cpu);
    return OK;
  }

  private removeBreakpoint(type: BreakpointType, addr: number, len: number): DebugReply {
    const h = this.host;
    let found: boolean;
    if (type === BreakpointType.Software || type === BreakpointType.Hardware) {
      found = h.removeBreakpoint(addr, type === BreakpointType.Software ? BP_SOFTWARE : BP_HARDWARE);
    } else if (type === BreakpointType.Write || type === BreakpointType.Read || type === BreakpointType.Access) {
      found = h.removeWatch(type as number as WatchKind, addr, len);
    } else {
      return INVALID;
    }
    updateHostDebug(this.cpu);
    return found ? OK : INVALID;
  }

  /** Let the stopped vCPU go: one instruction (`step`) or until something stops it; at `addr` (an EIP)
   *  when given. A breakpoint at the instruction it resumes at is not taken again. */
  resume(step: boolean, addr?: number): void {
    if (this.state !== TargetState.Stopped) return;
    const c = this.cpu;
    if (addr !== undefined) c.eip = addr | 0;
    this.host.skip = (c.segBase[CS] + c.eip) >>> 0;
    this.host.hit = null;
    this.state = step ? TargetState.Stepping : TargetState.Running;
  }

  /** The debugger has gone: forget its breakpoints and let the guest run on at full speed. */
  detach(): void {
    this.host.clear();
    this.cpu.hostDebug = null;
    updateHostDebug(this.cpu);
    this.state = TargetState.Detached;
  }

  /** Ask the running vCPU to stop (from this thread; another thread stores the same two words). */
  requestInterrupt(): void {
    Atomics.store(this.interruptWord, 0, 1);
    Atomics.store(this.cpu.doorbell, 0, 1);
  }

  /** Run the CPU as the debugger wants it run: one instruction while stepping, else up to `budget`. */
  run(budget: number): ExitReason {
    return this.state === TargetState.Stepping ? this.cpu.step() : this.cpu.run(budget);
  }

  /**
   * After a run: the stop to report to the debugger if this exit is one (a breakpoint or watchpoint, the
   * end of a step, an interrupt the debugger asked for), and the vCPU is then stopped; undefined when it
   * is not, and the caller handles `reason` as it would without a debugger. A Doorbell exit the
   * debugger caused is answered here (the doorbell word is cleared); one it did not cause is the caller's.
   */
  stopAfter(reason: ExitReason): DebugEvent | undefined {
    const interrupted = Atomics.load(this.interruptWord, 0) !== 0;
    if (interrupted && reason === ExitReason.Doorbell) Atomics.store(this.cpu.doorbell, 0, 0);
    if (this.state === TargetState.Detached || this.state === TargetState.Stopped) {
      Atomics.store(this.interruptWord, 0, 0);
      return undefined;
    }
    let stop: DebugEvent | undefined;
    if (reason === ExitReason.Breakpoint && this.host.hit !== null) {
      const hit = this.host.hit;
      this.host.hit = null;
      stop = { kind: 'stopped', thread: this.thread, signal: SIGTRAP, why: hit.why, addr: hit.addr };
    } else if (this.state === TargetState.Stepping && reason === ExitReason.Step) {
      stop = { kind: 'stopped', thread: this.thread, signal: SIGTRAP };
    } else if (interrupted && (reason === ExitReason.Doorbell || reason === ExitReason.Budget)) {
      stop = { kind: 'stopped', thread: this.thread, signal: SIGINT };
    }
    if (stop === undefined) return undefined;
    Atomics.store(this.interruptWord, 0, 0);
    this.state = TargetState.Stopped;
    this.lastStop = stop;
    return stop;
  }
}

function validRange(addr: number, len: number): boolean {
  return Number.isInteger(addr) && addr >= 0 && addr <= 0xffffffff && Number.isInteger(len) && len >= 0 && len <= MAX_DEBUG_ACCESS;
}

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
 *
 * lguest mode (launcher/vcpu-debug.ts) adapts the same target to a vCPU of a guest: the CPU may come later
 * (a secondary vCPU the guest has not started yet has breakpoints but no registers), a vCPU stopped in the
 * Host shows its guest's registers as the Switcher saved them (`saved`), memory goes through the guest's
 * own page tables (`physical`), the Switcher's region is refused (`hostRegion`), and some EFLAGS bits are
 * the Host's (`eflagsLocked`).
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
/** gdb's x87 registers (org.gnu.gdb.i386.core after the segment registers): st0-st7 (80-bit, in stack
 *  order: st0 is ST(0)), then fctrl fstat ftag fiseg fioff foseg fooff fop (32-bit each). */
export const GDB_FPU_NAMES = ['st0', 'st1', 'st2', 'st3', 'st4', 'st5', 'st6', 'st7',
  'fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'] as const;
export const GDB_ST0 = GDB_REG_COUNT;
export const GDB_FPU_END = GDB_ST0 + GDB_FPU_NAMES.length;
/** Bytes of gdb register n (a general or x87 one), or 0 for a number we do not have. */
export function gdbRegSize(n: number): number {
  if (!Number.isInteger(n) || n < 0) return 0;
  if (n < GDB_REG_COUNT) return 4;
  if (n < GDB_ST0 + 8) return 10;
  return n < GDB_FPU_END ? 4 : 0;
}
/** Bytes of the x87 part of a g packet. */
export const GDB_FPU_BYTES = 8 * 10 + 8 * 4;

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

/** The registers of a vCPU whose state is not in the CPU (lguest: a vCPU stopped in the Host, its guest's
 *  registers saved by the Switcher). Numbers are gdb's (GDB_REG_NAMES). */
export interface SavedRegisters {
  get(n: number): number;
  /** n < 10: the general registers, EIP and EFLAGS (segment selectors are never set). */
  set(n: number, v: number): void;
}

export interface TargetOptions {
  /** The word the protocol side sets to stop the running vCPU (may live in shared memory). */
  interruptWord?: Int32Array;
  /** The debugger's translation of a linear address: the physical address, or -1 (not mapped, or not
   *  memory the debugger may see). Default: the CPU's current paging, RAM only. */
  physical?: (lin: number) => number;
  /** Linear addresses from here up belong to the Host (lguest's Switcher): no memory access, breakpoint or
   *  watchpoint there. */
  hostRegion?: number;
  /** EFLAGS bits the debugger may not change (VM always). */
  eflagsLocked?: number;
}

/** Breakpoint types, numbered as gdb's Z packets number them. */
export const enum BreakpointType { Software = 0, Hardware = 1, Write = 2, Read = 3, Access = 4 }

/** What the protocol side asks of a stopped vCPU. */
export type DebugRequest =
  | { op: 'readRegisters' }
  /** In gdb order, as many as given (a G packet may be shorter than the whole set). */
  | { op: 'writeRegisters'; values: number[] }
  | { op: 'writeRegister'; reg: number; value: number }
  /** The x87 registers, gdb's 16 of them in order, little-endian (GDB_FPU_BYTES bytes). */
  | { op: 'readFpu' }
  /** One x87 register (GDB_ST0 <= reg < GDB_FPU_END) from its gdbRegSize(reg) little-endian bytes. */
  | { op: 'writeFpuRegister'; reg: number; data: Uint8Array }
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
  /** Set while the vCPU's registers are not the CPU's (lguest: stopped in the Host); null: the CPU's. */
  saved: SavedRegisters | null = null;
  private machine: CPU | null;
  private readonly translate: ((lin: number) => number) | undefined;
  private readonly hostRegion: number;
  private readonly eflagsLocked: number;

  /** `thread` is the vCPU's gdb thread id (vCPU n is thread n + 1: gdb ids start at 1). `cpu` may come
   *  later (attachCpu): until then the target keeps breakpoints and has no registers or memory. */
  constructor(cpu: CPU | null, readonly thread: number, opts: TargetOptions = {}) {
    this.interruptWord = opts.interruptWord ?? new Int32Array(1);
    this.lastStop = { kind: 'stopped', thread, signal: SIGTRAP };
    this.translate = opts.physical;
    this.hostRegion = opts.hostRegion ?? 2 ** 32;
    this.eflagsLocked = (opts.eflagsLocked ?? 0) | EFLAGS_VM;
    this.machine = null;
    if (cpu !== null) this.attachCpu(cpu);
  }

  /** The CPU (throws before attachCpu). */
  get cpu(): CPU {
    if (this.machine === null) throw new Error('lguest-ts: the debug target has no CPU yet');
    return this.machine;
  }

  /** The vCPU's CPU exists now: the breakpoints kept so far take effect. */
  attachCpu(cpu: CPU): void {
    this.machine = cpu;
    if (this.state === TargetState.Detached) return;
    cpu.hostDebug = this.host;
    updateHostDebug(cpu);
  }

  /** Serve one request (only while stopped: a running CPU's state is its own). */
  handle(req: DebugRequest): DebugReply {
    if (this.state !== TargetState.Stopped) return BUSY;
    const noState = this.machine === null && this.saved === null;
    switch (req.op) {
      case 'readRegisters': return noState ? INVALID : { ok: true, values: this.readRegisters() };
      case 'writeRegisters': return noState ? INVALID : this.writeRegisters(req.values);
      case 'writeRegister': {
        if (noState) return INVALID;
        if (!Number.isInteger(req.reg) || req.reg < 0 || req.reg >= GDB_REG_COUNT) return INVALID;
        const values = new Array<number>(GDB_REG_COUNT).fill(NaN);
        values[req.reg] = req.value;
        return this.writeRegisters(values);
      }
      // The x87 state is the CPU's own even while an lguest vCPU is stopped in the Host (the Host never
      // touches it), so it needs the CPU, not the saved registers.
      case 'readFpu': return this.machine === null ? INVALID : { ok: true, data: this.readFpu() };
      case 'writeFpuRegister': return this.machine === null ? INVALID : this.writeFpuRegister(req.reg, req.data);
      case 'readMemory': return this.machine === null ? INVALID : this.readMemory(req.addr, req.len);
      case 'writeMemory': return this.machine === null ? INVALID : this.writeMemory(req.addr, req.data);
      case 'insertBreakpoint': return this.insertBreakpoint(req.type, req.addr, req.len);
      case 'removeBreakpoint': return this.removeBreakpoint(req.type, req.addr, req.len);
      default: return INVALID;
    }
  }

  /** The 16 registers in gdb's order, unsigned. */
  readRegisters(): number[] {
    const saved = this.saved;
    if (saved !== null) return GDB_REG_NAMES.map((_, n) => saved.get(n) >>> 0);
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
    const current = this.readRegisters();
    for (let i = 0; i < values.length && i < GDB_REG_COUNT; i++) {
      const v = values[i];
      if (Number.isNaN(v)) continue;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return INVALID;
      if (i >= 10 && (v & 0xffff) !== (current[i] & 0xffff)) return INVALID;
    }
    const saved = this.saved;
    for (let i = 0; i < values.length && i < 10; i++) {
      let v = values[i];
      if (Number.isNaN(v)) continue;
      if (i === GDB_EFLAGS) v = (v & ~this.eflagsLocked) | (current[GDB_EFLAGS] & this.eflagsLocked);
      if (saved !== null) saved.set(i, v >>> 0);
      else if (i < 8) this.cpu.r32[EAX + i] = v | 0;
      else if (i === GDB_EIP) this.cpu.eip = v | 0;
      else this.cpu.setEflags(v | 0);
    }
    return OK;
  }

  /** gdb's x87 registers: st0-st7 as 80-bit values (significand, then sign and exponent), then the
   *  control, status (with TOP), full tag word, FCS, FIP, FDS, FDP and FOP. */
  readFpu(): Uint8Array {
    const f = this.cpu.fpu, out = new Uint8Array(GDB_FPU_BYTES), dv = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) {
      const p = f.phys(i);
      dv.setBigUint64(i * 10, f.sig[p], true);
      dv.setUint16(i * 10 + 8, f.se[p], true);
    }
    const words = [f.fcw, f.fsw, f.ftw, f.fcs, f.fip, f.fds, f.fdp, f.fop];
    for (let i = 0; i < 8; i++) dv.setUint32(80 + i * 4, words[i] >>> 0, true);
    return out;
  }

  /** Write one x87 register. st0-st7: the 80 bits of ST(i) as they are, its tag left alone (as ptrace
   *  does: set ftag too to make an empty register valid). The control registers keep their own widths:
   *  fctrl, fstat, ftag, fiseg, foseg 16 bits, fop 11 bits (higher bits are dropped); fstat's TOP moves
   *  the stack. */
  private writeFpuRegister(reg: number, data: Uint8Array): DebugReply {
    const size = gdbRegSize(reg);
    if (reg < GDB_ST0 || size === 0 || !(data instanceof Uint8Array) || data.length !== size) return INVALID;
    const f = this.cpu.fpu, dv = new DataView(data.buffer, data.byteOffset, data.length);
    const i = reg - GDB_ST0;
    if (i < 8) {
      const p = f.phys(i);
      f.sig[p] = dv.getBigUint64(0, true);
      f.se[p] = dv.getUint16(8, true);
      return OK;
    }
    const v = dv.getUint32(0, true);
    switch (i - 8) {
      case 0: f.fcw = v & 0xffff; break;
      case 1: f.fsw = v & 0xffff; break;
      case 2: f.ftw = v & 0xffff; break;
      case 3: f.fcs = v & 0xffff; break;
      case 4: f.fip = v | 0; break;
      case 5: f.fds = v & 0xffff; break;
      case 6: f.fdp = v | 0; break;
      default: f.fop = v & 0x7ff; break;
    }
    return OK;
  }

  /** The physical address of linear `lin` for the debugger, or -1 (not mapped, no RAM there, or the
   *  Host's). */
  private physical(lin: number): number {
    if ((lin >>> 0) >= this.hostRegion) return -1;
    if (this.translate !== undefined) return this.translate(lin >>> 0);
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
    // the Host's region: nothing the guest runs or touches there is the debugger's business
    const last = type === BreakpointType.Software || type === BreakpointType.Hardware ? addr : addr + Math.max(1, len) - 1;
    if (this.hostRegion < 2 ** 32 && last >= this.hostRegion) return FAULT;
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
    if (this.machine !== null) updateHostDebug(this.machine);
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
    if (this.machine !== null) updateHostDebug(this.machine);
    return found ? OK : INVALID;
  }

  /** The linear address of the instruction the vCPU stands at (-1 when it has no registers yet). */
  pcLinear(): number {
    if (this.saved !== null) return this.saved.get(GDB_EIP) >>> 0; // lguest's guests: flat code segments
    const c = this.machine;
    return c === null ? -1 : (c.segBase[CS] + c.eip) >>> 0;
  }

  /** Let the stopped vCPU go: one instruction (`step`) or until something stops it; at `addr` (an EIP)
   *  when given. A breakpoint at the instruction it resumes at is not taken again, unless `skip` is
   *  false (a vCPU whose own stop was never reported: it meets its breakpoint again and reports it). */
  resume(step: boolean, addr?: number, skip = true): void {
    if (this.state !== TargetState.Stopped) return;
    if (addr !== undefined) {
      if (this.saved !== null) this.saved.set(GDB_EIP, addr >>> 0);
      else if (this.machine !== null) this.machine.eip = addr | 0;
    }
    this.host.skip = skip ? this.pcLinear() : -1;
    this.host.hit = null;
    this.state = step ? TargetState.Stepping : TargetState.Running;
  }

  /** The debugger has gone: forget its breakpoints and let the guest run on at full speed. */
  detach(): void {
    this.host.clear();
    if (this.machine !== null) {
      this.machine.hostDebug = null;
      updateHostDebug(this.machine);
    }
    this.state = TargetState.Detached;
  }

  /** Stop now, for `ev` (the caller decided it is a stop: lguest's run loop, which knows when a step of a
   *  guest instruction is over). Returns the stop. */
  stopWith(ev: DebugEvent): DebugEvent {
    Atomics.store(this.interruptWord, 0, 0);
    this.state = TargetState.Stopped;
    this.lastStop = ev;
    return ev;
  }

  /** Has the protocol side asked this vCPU to stop? */
  get interruptRequested(): boolean {
    return Atomics.load(this.interruptWord, 0) !== 0;
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

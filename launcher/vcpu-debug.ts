/**
 * gdb in lguest mode, the vCPU worker's half (`lguest-ts run IMAGE --gdb PORT`): a CpuDebugTarget for
 * the vCPU, the hooks the Host's run loop calls (switcher/core.ts VcpuDebug), and the mailbox the
 * worker serves synchronously while gdb holds the vCPU stopped. The main thread's half is
 * WorkerDebugLink (launcher/debug-link.ts); between them, plain data on a MessagePort per vCPU and two
 * words of the vCPU's control block (switcher/smp.ts): `debugInterrupt` (stop, please) and `wake` (look
 * at your mail, or at the guest's end).
 *
 * Where a vCPU stops. The CPU runs the Switcher as well as the guest; gdb sees only the guest:
 * - inside the guest (CPL 1 or 3): a breakpoint, a watchpoint, a finished step, or gdb's interrupt. The
 *   registers are the CPU's. The Switcher's instructions (the return path into the guest, the trap path
 *   out of it) run one at a time while a debugger is attached, so that the vCPU is always caught on a
 *   guest instruction, never half-way through the Switcher.
 * - in the Host, halted (or waiting to hand a device kick to vCPU 0): gdb's interrupt. The registers are
 *   the guest's as the Switcher saved them (lguest_regs); the guest resumes from them.
 * - not started yet (a secondary before VCPU_START): it keeps gdb's breakpoints; gdb does not list it.
 * A vCPU stopped for gdb is out of the guest for the Host's TLB shootdowns (it flushes on resume), and
 * leaves its stop when gdb lets it go, when the Launcher stops the guest (--timeout, gdb's kill), or when
 * another vCPU ends the guest.
 *
 * A step is one guest instruction: it goes on across whatever the Host does on the way (a hypercall, a
 * shadow page fault it fixes, its own interrupt 0xEF) and ends when a guest instruction has retired or
 * the guest stands somewhere else (a trap reflected to its handler: the handler's first instruction).
 * Memory is read and written through the guest's own page tables (the vCPU's current top level), in the
 * guest's frames only: never the Host's pool or the Switcher, never a fault, never a shadow fill.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { IF, IOPL_MASK, NT, VM } from '../emulator/constants.ts';
import {
  CpuDebugTarget, GDB_REG_NAMES, SIGINT, SIGTRAP, TargetState, type BreakpointType, type DebugEvent, type DebugReply,
  type DebugRequest, type SavedRegisters,
} from '../emulator/debug-target.ts';
import { ExitReason } from '../emulator/exits.ts';
import type { CPU } from '../emulator/cpu.ts';
import { flushVcpuTlb, type VcpuDebug } from '../switcher/core.ts';
import type { LgCpu } from '../switcher/lguest.ts';
import { LGUEST_TRAP_ENTRY, PAGE_SIZE, PAGING_2LEVEL, PAGING_PAE, type LGUEST_REGS } from '../switcher/layout.ts';
import { CTRL, VC, type SmpLink } from '../switcher/smp.ts';

/** A breakpoint or watchpoint as gdb set it (the Launcher keeps them for a rebooted guest). */
export interface BreakpointSpec { type: BreakpointType; addr: number; len: number }

/** What the Launcher hands a vCPU worker when gdb is attached. */
export interface DebugTask {
  port: MessagePort;
  /** How the vCPU starts: stopped (gdb has not said go yet) or running (a reboot while gdb continues). */
  state: 'stopped' | 'running';
  breakpoints: BreakpointSpec[];
}

/** Launcher to worker. */
export type DebugDown =
  | { t: 'req'; id: number; req: DebugRequest }
  /** skip: do not stop again at the breakpoint the vCPU stands on (the stop gdb was told about). */
  | { t: 'resume'; step: boolean; addr?: number; skip: boolean }
  | { t: 'detach' };
/** Worker to Launcher. `started`: the vCPU runs the guest (gdb may list it). */
export type DebugUp =
  | { t: 'reply'; id: number; reply: DebugReply }
  | { t: 'stop'; ev: DebugEvent; started: boolean }
  | { t: 'gone' };

/** EFLAGS bits that are the Host's: the guest always runs with IF set (its own IF is virtual), IOPL 0. */
const EFLAGS_HOST = IF | IOPL_MASK | VM | NT;
/** How often a stopped vCPU looks at the guest's end when nothing wakes it (ms). */
const PARK_POLL_MS = 200;
/** Trap vectors that come back to the Host before the instruction completed (faults: the saved EIP is
 *  the instruction's own), when the Host may fix them and run it again. */
function isFault(trap: number): boolean {
  return trap < 32 && trap !== 1 && trap !== 2 && trap !== 3 && trap !== 4 && trap !== LGUEST_TRAP_ENTRY;
}

/** gdb's registers in lguest_regs (the guest's registers while its vCPU is in the Host). */
const SAVED_NAMES: (keyof typeof LGUEST_REGS)[] = [...GDB_REG_NAMES];

function savedRegisters(c: LgCpu): SavedRegisters {
  return {
    get: (n) => c.reg(SAVED_NAMES[n]),
    set: (n, v) => { if (n < 10) c.setReg(SAVED_NAMES[n], v); },
  };
}

/**
 * Guest virtual to host-physical through the guest's own page tables (its current top level), as the
 * Host's guestPa walks them, but for the debugger: nothing is killed or filled, and -1 answers anything
 * that is not mapped to one of the guest's frames (and the Switcher's region, which is the Host's).
 */
export function guestPhysical(c: LgCpu, lin: number): number {
  const lg = c.lg;
  const va = lin >>> 0;
  if (va >= lg.paging.switcherAddr) return -1;
  const limit = lg.pfnLimit * PAGE_SIZE;
  const mem = lg.mem, base = lg.memBase;
  const FRAME = 0xfffff000;
  let lo = 0, hi = 0;
  const read = (gpa: number, size: 4 | 8): boolean => {
    if (gpa < 0 || gpa + size > limit) return false;
    lo = mem.read32(base + gpa) >>> 0;
    hi = size === 8 ? mem.read32(base + gpa + 4) >>> 0 : 0;
    return true;
  };
  const top = lg.shadow.currentGpgdir(c) >>> 0;
  let table: number;
  if (lg.pae) {
    if (!read(top + (va >>> 30) * 8, 8) || (lo & 1) === 0 || hi !== 0) return -1;
    if (!read(((lo & FRAME) >>> 0) + ((va >>> 21) & 511) * 8, 8) || (lo & 1) === 0 || hi !== 0) return -1;
    table = (lo & FRAME) >>> 0;
    if (!read(table + ((va >>> 12) & 511) * 8, 8) || (lo & 1) === 0 || (hi & 0xfffff) !== 0) return -1;
  } else {
    if (!read(top + (va >>> 22) * 4, 4) || (lo & 1) === 0) return -1;
    table = (lo & FRAME) >>> 0;
    if (!read(table + ((va >>> 12) & 1023) * 4, 4) || (lo & 1) === 0) return -1;
  }
  const gpa = ((lo & FRAME) >>> 0) + (va & 0xfff);
  return gpa < limit ? base + gpa : -1;
}

type ParkPlace = 'guest' | 'host' | 'unstarted';

/** [L:640] One vCPU's debugger, in its worker: the run loop's hooks and the mailbox. */
export class VcpuDebugger implements VcpuDebug {
  readonly target: CpuDebugTarget;
  private c: LgCpu | null = null;
  private cpu: CPU | null = null;
  /** The CPU is in the Switcher (or the Host): the next guest instruction is an arrival. */
  private inHost = true;
  /** A breakpoint at this linear address is not to be taken at the next arrival in the guest (the
   *  instruction was already checked, or gdb resumed there); -1: none. */
  private guestSkip = -1;
  /** The step in progress: where it started, and whether a guest instruction has retired since. */
  private stepFrom = -1;
  private stepRetired = false;
  /** The last run was one guest instruction of a step (retired before it: stepBefore). */
  private stepGuest = false;
  private stepBefore = 0;

  constructor(private readonly link: SmpLink, private readonly port: MessagePort, task: Pick<DebugTask, 'state' | 'breakpoints'>, pae: boolean) {
    const interruptWord = new Int32Array(link.ctrl.buffer, link.mine(VC.debugInterrupt) * 4, 1);
    this.target = new CpuDebugTarget(null, link.id + 1, {
      interruptWord, eflagsLocked: EFLAGS_HOST, hostRegion: (pae ? PAGING_PAE : PAGING_2LEVEL).switcherAddr,
      physical: (lin) => (this.c === null ? -1 : guestPhysical(this.c, lin)),
    });
    for (const b of task.breakpoints) this.target.handle({ op: 'insertBreakpoint', ...b });
    if (task.state === 'running') this.target.resume(false);
  }

  /** The vCPU exists now (the guest's boot, or VCPU_START): its CPU runs gdb's breakpoints. */
  attach(c: LgCpu): void {
    this.c = c;
    this.cpu = c.cpu;
    this.target.attachCpu(c.cpu);
  }

  get stepping(): boolean {
    return this.target.state === TargetState.Stepping;
  }

  // ---- the run loop's hooks (switcher/core.ts) ----

  run(budget: number): ExitReason {
    const t = this.target, cpu = this.cpu!;
    if (t.state === TargetState.Detached) return cpu.run(budget);
    if (cpu.cpl === 0) {
      // the Switcher: its instructions are the Host's, one at a time so none of the guest's runs unseen
      this.inHost = true;
      return cpu.step();
    }
    if (this.inHost) {
      // [L:645] Back in the guest from the Switcher: the place to stop for gdb's interrupt, for a step
      // whose instruction went through the Host, or (the very first time) before the guest's first one.
      this.inHost = false;
      if (this.guestSkip >= 0) t.host.skip = this.guestSkip;
      this.guestSkip = -1;
      if (t.state === TargetState.Running || t.state === TargetState.Stepping) {
        let ev: DebugEvent | undefined;
        if (t.interruptRequested) ev = { kind: 'stopped', thread: t.thread, signal: SIGINT };
        else if (t.state === TargetState.Stepping && this.stepDone()) ev = { kind: 'stopped', thread: t.thread, signal: SIGTRAP };
        if (ev !== undefined) this.park(t.stopWith(ev), 'guest');
      }
    }
    if (t.state === TargetState.Stopped) {
      this.park(null, 'guest');
      // still stopped: the guest is ending; the Host sees to it
      if (t.state === TargetState.Stopped) return ExitReason.Doorbell;
    }
    if (this.detached()) return cpu.run(budget);
    // An interrupt the Host raised will be taken before the instruction gdb resumed at: keep its skip
    // across the trip through the Host.
    if (t.host.skip >= 0 && cpu.pendingIrq >= 0) this.guestSkip = t.host.skip;
    if (t.state === TargetState.Stepping) {
      this.stepGuest = true;
      this.stepBefore = cpu.retired;
      return cpu.step();
    }
    return cpu.run(budget);
  }

  after(exit: ExitReason): boolean {
    const t = this.target, cpu = this.cpu!;
    if (t.state === TargetState.Detached) return false;
    if (this.stepGuest) {
      this.stepGuest = false;
      if (cpu.retired !== this.stepBefore) this.stepRetired = true;
    }
    if (exit === ExitReason.Hlt) {
      this.trapped();
      return false;
    }
    if (cpu.cpl === 0 || this.inHost) {
      // in the Switcher, or just out of it (run() sees the arrival): a stepped instruction is ours, the
      // rest the Host's (its doorbell, its kills)
      if (cpu.cpl === 0) this.inHost = true;
      if (exit === ExitReason.Breakpoint) t.host.hit = null; // nothing of gdb's lies in the Switcher
      return exit === ExitReason.Step || exit === ExitReason.Breakpoint;
    }
    let stop: DebugEvent | undefined;
    switch (exit) {
      case ExitReason.Breakpoint:
        stop = t.stopAfter(exit);
        if (stop === undefined) return true;
        break;
      case ExitReason.Step:
        if (t.state !== TargetState.Stepping || !this.stepDone()) return true;
        stop = t.stopWith({ kind: 'stopped', thread: t.thread, signal: SIGTRAP });
        break;
      case ExitReason.Doorbell: case ExitReason.Budget:
        this.serve(); // a detach, or a request that came while running (busy)
        if (this.detached() || !t.interruptRequested) return false;
        stop = t.stopWith({ kind: 'stopped', thread: t.thread, signal: SIGINT });
        this.park(stop, 'guest');
        return false; // the Host's slice-boundary work goes on (its doorbell, a stop, IRQs)
      default:
        return false;
    }
    this.park(stop, 'guest');
    return true;
  }

  idle(): void {
    const t = this.target;
    if (t.state === TargetState.Detached) return;
    this.serve();
    if (t.interruptRequested && (t.state === TargetState.Running || t.state === TargetState.Stepping)) {
      this.park(t.stopWith({ kind: 'stopped', thread: t.thread, signal: SIGINT }), 'host');
    } else if (t.state === TargetState.Stopped) {
      this.park(null, 'host');
    }
  }

  /** A secondary vCPU waiting for VCPU_START: serve gdb, and stop when it asks. */
  idleUnstarted(): void {
    const t = this.target;
    if (t.state === TargetState.Detached) return;
    this.serve();
    if (t.interruptRequested && (t.state === TargetState.Running || t.state === TargetState.Stepping)) {
      this.park(t.stopWith({ kind: 'stopped', thread: t.thread, signal: SIGINT }), 'unstarted');
    } else if (t.state === TargetState.Stopped) {
      this.park(null, 'unstarted');
    }
  }

  /** The vCPU is done with this guest: the Launcher answers gdb without it from now on. */
  close(): void {
    this.post({ t: 'gone' });
    this.port.close();
  }

  // ---- inside ----

  /** (A method, so that the compiler does not assume the state unchanged across serve() and park().) */
  private detached(): boolean {
    return this.target.state === TargetState.Detached;
  }

  /** The step is over: a guest instruction retired, or the guest stands somewhere else. */
  private stepDone(): boolean {
    return this.stepRetired || this.target.pcLinear() !== this.stepFrom;
  }

  /** The Switcher's HLT: a trap. A fault the Host may fix comes back to the same instruction, which was
   *  checked for breakpoints already; anything else comes back to an instruction not yet checked. */
  private trapped(): void {
    const c = this.c!;
    this.inHost = true;
    const trap = c.reg('trapnum'), eip = c.reg('eip');
    if (isFault(trap)) this.guestSkip = eip;
    else if (this.guestSkip !== eip) this.guestSkip = -1;
  }

  private post(m: DebugUp): void {
    this.port.postMessage(m);
  }

  /** Answer everything in the mailbox. True when gdb let the vCPU go (resume or detach). */
  private serve(): boolean {
    const t = this.target;
    let go = false;
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      const msg = m.message as DebugDown;
      if (msg.t === 'req') {
        this.post({ t: 'reply', id: msg.id, reply: t.handle(msg.req) });
      } else if (msg.t === 'resume') {
        if (t.state !== TargetState.Stopped) continue;
        t.resume(msg.step, msg.addr, msg.skip);
        this.stepFrom = t.pcLinear();
        this.stepRetired = false;
        this.guestSkip = -1;
        go = true;
        break; // what follows is for the next stop
      } else if (msg.t === 'detach') {
        t.detach();
        go = true;
        break;
      }
    }
    return go;
  }

  /**
   * [L:650] Stopped for gdb: tell the Launcher (`ev`; null when it knows already), then serve the mailbox
   * until gdb lets the vCPU go, or the guest ends (the Launcher's stop, another vCPU's kill). Out of the
   * guest meanwhile, as far as TLB shootdowns go: a flush asked for now is done on the way back.
   */
  private park(ev: DebugEvent | null, where: ParkPlace): void {
    const link = this.link, ctrl = link.ctrl, wake = link.mine(VC.wake);
    if (ev !== null) this.post({ t: 'stop', ev, started: where !== 'unstarted' });
    if (where === 'guest') link.leave();
    if (where === 'host' && this.c !== null) this.target.saved = savedRegisters(this.c);
    try {
      for (;;) {
        const seq = Atomics.load(ctrl, wake);
        if (this.serve()) break;
        if (link.stopRequested() || Atomics.load(ctrl, CTRL.dead) !== 0) break;
        Atomics.wait(ctrl, wake, seq, PARK_POLL_MS);
      }
    } finally {
      this.target.saved = null;
    }
    if (where === 'guest' && link.enter()) {
      flushVcpuTlb(this.c!);
      link.flushed();
    }
  }
}

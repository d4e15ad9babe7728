/**
 * The line between the gdb stub's two halves: the protocol side (launcher/gdb-server.ts: the main
 * thread, asynchronous, a socket) talks to the vCPUs only through a DebugLink, and the vCPUs' side is a
 * synchronous CpuDebugTarget per vCPU (emulator/debug-target.ts) in whatever thread runs it.
 *
 * `LocalDebugLink` is the link when both halves share one thread (bare mode): requests are direct calls,
 * made between two slices of the run loop (launcher/bare.ts runBare), which yields to the event loop after
 * every slice while a debugger is attached. In lguest mode each vCPU runs in a worker: `WorkerDebugLink`
 * (launcher/vcpu-debug.ts) carries the same plain-data requests to the workers.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  SIGINT, SIGTRAP, TargetState, type CpuDebugTarget, type DebugEvent, type DebugReply, type DebugRequest,
} from '../emulator/debug-target.ts';
import { VC, VCPU_STATE_RUNNING, vcpuWord, wakeVcpu } from '../switcher/smp.ts';
import type { BreakpointSpec, DebugDown, DebugTask, DebugUp } from './vcpu-debug.ts';

/** How gdb lets the guest go: `step` names the one thread that runs one instruction (the others stay
 *  stopped); without it every vCPU continues. `addr`: the EIP to resume at (the stepping thread's, or
 *  the first thread's). */
export interface ResumeAction {
  step?: number;
  addr?: number;
}

export interface DebugLink {
  /** The gdb thread ids of the vCPUs gdb sees (lguest: those the guest has started): vCPU n is thread
   *  n + 1. */
  readonly threads: readonly number[];
  /** Every vCPU's thread id, started or not (breakpoints go to all); default `threads`. */
  readonly allThreads?: readonly number[];
  /** The stop the guest is in, or undefined while it runs. */
  currentStop(): DebugEvent | undefined;
  /** Ask one stopped vCPU something (registers, memory, breakpoints). */
  request(thread: number, req: DebugRequest): Promise<DebugReply>;
  /** Let the stopped guest go; a 'stopped' event (or the guest's end) follows. */
  resume(action: ResumeAction): void;
  /** Ctrl-C: stop the running guest; a 'stopped' event with SIGINT follows. */
  interrupt(): void;
  /** The debugger has gone: remove every breakpoint, let the guest run on. */
  detach(): void;
  /** End the guest (gdb's kill). */
  kill(): void;
  /** Set by the server: called for every stop and for the guest's end. */
  onEvent: ((ev: DebugEvent) => void) | undefined;
}

const INVALID: DebugReply = { ok: false, error: 'invalid' };

/** What the run loop should do next (LocalDebugLink.waitToRun). */
export type RunPermission = 'run' | 'kill' | 'timeout';

/** A DebugLink to one vCPU whose run loop shares this thread (bare mode). */
export class LocalDebugLink implements DebugLink {
  readonly threads: readonly number[];
  onEvent: ((ev: DebugEvent) => void) | undefined;
  /** gdb asked to kill the guest. */
  killed = false;
  private wakeRunner: (() => void) | null = null;

  constructor(readonly target: CpuDebugTarget) {
    this.threads = [target.thread];
  }

  currentStop(): DebugEvent | undefined {
    return this.target.state === TargetState.Stopped ? this.target.lastStop : undefined;
  }

  request(thread: number, req: DebugRequest): Promise<DebugReply> {
    return Promise.resolve(thread === this.target.thread ? this.target.handle(req) : INVALID);
  }

  resume(action: ResumeAction): void {
    this.target.resume(action.step !== undefined, action.addr);
    this.wake();
  }

  interrupt(): void {
    const s = this.target.state;
    if (s === TargetState.Running || s === TargetState.Stepping) this.target.requestInterrupt();
  }

  detach(): void {
    this.target.detach();
    this.wake();
  }

  kill(): void {
    this.killed = true;
    this.wake();
  }

  // ---- the run loop's side ----

  /** Before each slice: wait while the debugger holds the vCPU stopped. Resolves 'run' when it may run,
   *  'kill' when gdb killed the guest, 'timeout' when `deadline` (a Date.now() time) passes first. */
  waitToRun(deadline: number): Promise<RunPermission> {
    const now = (): RunPermission | undefined =>
      this.killed ? 'kill' : this.target.state !== TargetState.Stopped ? 'run' : Date.now() >= deadline ? 'timeout' : undefined;
    const ready = now();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const timer = Number.isFinite(deadline) ? setTimeout(() => finish('timeout'), Math.max(0, deadline - Date.now())) : undefined;
      const finish = (otherwise?: RunPermission) => {
        const r = now() ?? otherwise;
        if (r === undefined) return;
        if (timer !== undefined) clearTimeout(timer);
        this.wakeRunner = null;
        resolve(r);
      };
      this.wakeRunner = finish;
    });
  }

  /** Tell the debugger about a stop or the guest's end. */
  emit(ev: DebugEvent): void {
    this.onEvent?.(ev);
  }

  private wake(): void {
    this.wakeRunner?.();
  }
}

// =======================================================================================================
// lguest mode: vCPUs in worker threads
// =======================================================================================================

/** One boot of the guest, as the link sees it: its control block, one port per vCPU (the Launcher's
 *  ends), and how to stop the guest. */
interface DebugBoot {
  ctrl: Int32Array;
  ports: MessagePort[];
  stop: () => void;
}

interface VcpuSide {
  /** Stopped for gdb (or not started and waiting), as far as the link knows. */
  stopped: boolean;
  /** Its stop since the last resume (undefined: none reported by it), and whether it runs the guest. */
  ev: DebugEvent | undefined;
  started: boolean;
  /** The worker is done with the guest. */
  gone: boolean;
}

/**
 * [L:660] A DebugLink to the vCPU workers of an lguest guest (the worker's half: launcher/vcpu-debug.ts).
 * Requests go on the vCPU's MessagePort and ring its `wake` word; the worker, stopped, answers them in
 * order. All-stop: when one vCPU stops, the link interrupts the others, waits until every one has
 * stopped, and only then tells gdb of the first stop (the others' are kept: a vCPU whose stop gdb never
 * heard of resumes without skipping its breakpoint, so it meets it again and reports it then). `continue`
 * resumes every vCPU, a step only the stepping one. The link outlives a boot: a guest that reboots gets
 * gdb's breakpoints again, and runs on if gdb was letting it run.
 */
export class WorkerDebugLink implements DebugLink {
  readonly allThreads: readonly number[];
  onEvent: ((ev: DebugEvent) => void) | undefined;
  /** gdb killed the guest / has gone. */
  killed = false;
  detached = false;
  private boot: DebugBoot | null = null;
  private vcpus: VcpuSide[] = [];
  /** The stop gdb was told about (while the guest is stopped). */
  private reported: DebugEvent;
  /** Resumed: gdb waits for a stop. */
  private waiting = false;
  /** The resume is a step. */
  private stepping = false;
  /** The first stop since the resume (the one gdb will hear of). */
  private first: DebugEvent | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { v: number; resolve: (r: DebugReply) => void }>();
  /** gdb's breakpoints and watchpoints, for a rebooted guest. */
  private readonly breakpoints = new Map<string, BreakpointSpec>();

  constructor(readonly ncpus: number) {
    this.allThreads = Array.from({ length: ncpus }, (_, v) => v + 1);
    this.reported = { kind: 'stopped', thread: 1, signal: SIGTRAP };
  }

  /** The vCPUs the guest has started (vCPU 0 always). */
  get threads(): readonly number[] {
    const b = this.boot;
    if (b === null) return [1];
    return this.allThreads.filter((t) => t === 1 || Atomics.load(b.ctrl, vcpuWord(t - 1, VC.state)) === VCPU_STATE_RUNNING);
  }

  /**
   * A boot begins: its vCPUs' debug tasks (undefined once gdb has gone: the guest runs without it). The
   * first boot starts stopped, waiting for gdb; a reboot starts as gdb left the last one: running, or
   * stopped (and reported) if gdb was stepping.
   */
  bind(ctrl: Int32Array, stop: () => void): DebugTask[] | undefined {
    if (this.detached) return undefined;
    const channels = this.allThreads.map(() => new MessageChannel());
    this.boot = { ctrl, stop, ports: channels.map((c) => c.port1) };
    const running = this.waiting && !this.stepping;
    this.vcpus = channels.map(() => ({ stopped: !running, ev: undefined, started: false, gone: false }));
    channels.forEach((c, v) => c.port1.on('message', (m: DebugUp) => this.message(v, m)));
    const breakpoints = [...this.breakpoints.values()];
    if (this.waiting && this.stepping) {
      // the step never finished in the old boot: it is over, at the new boot's first instruction
      this.waiting = false;
      this.report({ kind: 'stopped', thread: 1, signal: SIGTRAP });
    }
    return channels.map((c) => ({ port: c.port2, state: running ? 'running' : 'stopped', breakpoints }));
  }

  /** The boot is over (every worker has finished): nothing more is asked of its vCPUs. */
  unbind(): void {
    const b = this.boot;
    if (b === null) return;
    this.boot = null;
    for (const p of b.ports) p.close();
    for (const s of this.vcpus) s.gone = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(GONE);
    }
  }

  currentStop(): DebugEvent | undefined {
    return this.waiting ? undefined : this.reported;
  }

  request(thread: number, req: DebugRequest): Promise<DebugReply> {
    const v = thread - 1, b = this.boot;
    if (b === null || v < 0 || v >= this.vcpus.length || this.vcpus[v].gone) return Promise.resolve(GONE);
    const id = this.nextId++;
    return new Promise<DebugReply>((resolve) => {
      this.pending.set(id, {
        v,
        resolve: (r) => {
          if (r.ok) this.remember(req);
          resolve(r);
        },
      });
      b.ports[v].postMessage({ t: 'req', id, req } satisfies DebugDown);
      wakeVcpu(b.ctrl, v);
    });
  }

  resume(action: ResumeAction): void {
    const b = this.boot;
    if (b === null) return;
    this.waiting = true;
    this.first = undefined;
    const reportedV = this.reported.kind === 'stopped' ? this.reported.thread - 1 : 0;
    const go = (v: number, m: DebugDown) => {
      const s = this.vcpus[v];
      if (s.gone) return;
      s.stopped = false;
      s.ev = undefined;
      // a request to stop that came too late for the last stop is not for the next one
      Atomics.store(b.ctrl, vcpuWord(v, VC.debugInterrupt), 0);
      b.ports[v].postMessage(m);
      wakeVcpu(b.ctrl, v);
    };
    if (action.step !== undefined) {
      this.stepping = true;
      go(action.step - 1, { t: 'resume', step: true, addr: action.addr, skip: true });
    } else {
      this.stepping = false;
      for (let v = 0; v < this.vcpus.length; v++) {
        go(v, { t: 'resume', step: false, addr: v === reportedV ? action.addr : undefined, skip: v === reportedV });
      }
    }
    this.settle();
  }

  interrupt(): void {
    const b = this.boot;
    if (b === null || !this.waiting) return;
    this.vcpus.forEach((s, v) => {
      if (!s.stopped && !s.gone) interruptVcpu(b.ctrl, v);
    });
  }

  detach(): void {
    this.detached = true;
    this.waiting = false;
    this.breakpoints.clear();
    const b = this.boot;
    if (b === null) return;
    this.vcpus.forEach((s, v) => {
      if (s.gone) return;
      b.ports[v].postMessage({ t: 'detach' } satisfies DebugDown);
      // a running vCPU reads its mail at its next slice boundary: ring it there
      Atomics.store(b.ctrl, vcpuWord(v, VC.doorbell), 1);
      wakeVcpu(b.ctrl, v);
    });
  }

  kill(): void {
    this.killed = true;
    this.waiting = false;
    this.boot?.stop();
  }

  // ---- from the workers ----

  private message(v: number, m: DebugUp): void {
    switch (m.t) {
      case 'reply': {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        p.resolve(m.reply);
        return;
      }
      case 'stop': {
        const s = this.vcpus[v];
        if (s === undefined || s.stopped) return;
        s.stopped = true;
        s.ev = m.ev;
        s.started = m.started;
        if (this.first === undefined && m.started) {
          // all-stop: the first stop of a running vCPU stops the others
          this.first = m.ev;
          const b = this.boot;
          if (b !== null) this.vcpus.forEach((o, w) => { if (!o.stopped && !o.gone) interruptVcpu(b.ctrl, w); });
        }
        this.settle();
        return;
      }
      case 'gone': {
        const s = this.vcpus[v];
        if (s === undefined) return;
        s.gone = true;
        for (const [id, p] of this.pending) {
          if (p.v !== v) continue;
          this.pending.delete(id);
          p.resolve(GONE);
        }
        return;
      }
    }
  }

  /** Every vCPU has stopped: tell gdb of the first stop. While any worker has gone the guest is ending:
   *  gdb hears of that instead (GdbServer.finish). */
  private settle(): void {
    if (!this.waiting || this.vcpus.some((s) => !s.stopped || s.gone)) return;
    this.waiting = false;
    const ev = this.first ?? this.vcpus.find((s) => s.ev !== undefined && s.started)?.ev ?? { kind: 'stopped', thread: 1, signal: SIGINT };
    this.report(ev);
  }

  private report(ev: DebugEvent): void {
    this.reported = ev;
    this.onEvent?.(ev);
  }

  /** Keep gdb's breakpoints for a reboot. */
  private remember(req: DebugRequest): void {
    if (req.op !== 'insertBreakpoint' && req.op !== 'removeBreakpoint') return;
    const key = `${req.type},${req.addr},${req.len}`;
    if (req.op === 'insertBreakpoint') this.breakpoints.set(key, { type: req.type, addr: req.addr, len: req.len });
    else this.breakpoints.delete(key);
  }
}

const GONE: DebugReply = { ok: false, error: 'invalid' };

/** Ask vCPU v to stop for gdb: its interrupt word, its doorbell (it leaves run()), its wake word (it
 *  leaves a sleep). */
function interruptVcpu(ctrl: Int32Array, v: number): void {
  Atomics.store(ctrl, vcpuWord(v, VC.debugInterrupt), 1);
  Atomics.store(ctrl, vcpuWord(v, VC.doorbell), 1);
  wakeVcpu(ctrl, v);
}

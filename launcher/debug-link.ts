/**
 * The line between the gdb stub's two halves: the protocol side (launcher/gdb-server.ts: the main
 * thread, asynchronous, a socket) talks to the vCPUs only through a DebugLink, and the vCPUs' side is a
 * synchronous CpuDebugTarget per vCPU (emulator/debug-target.ts) in whatever thread runs it.
 *
 * `LocalDebugLink` is the link when both halves share one thread (bare mode): requests are direct calls,
 * made between two slices of the run loop (launcher/bare.ts runBare), which yields to the event loop after
 * every slice while a debugger is attached. In lguest mode each vCPU runs in a worker; its link carries the
 * same plain-data requests to the worker (see launcher/README.md, "Debugging with gdb").
 */
import {
  TargetState, type CpuDebugTarget, type DebugEvent, type DebugReply, type DebugRequest,
} from '../emulator/debug-target.ts';

/** How gdb lets the guest go: `step` names the one thread that runs one instruction (the others stay
 *  stopped); without it every vCPU continues. `addr`: the EIP to resume at (the stepping thread's, or
 *  the first thread's). */
export interface ResumeAction {
  step?: number;
  addr?: number;
}

export interface DebugLink {
  /** The gdb thread ids of the vCPUs: vCPU n is thread n + 1. */
  readonly threads: readonly number[];
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

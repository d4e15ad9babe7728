/**
 * `lguest-ts run IMAGE` in lguest mode: the Launcher. It lays out the machine's memory, loads the kernel,
 * starts one worker per vCPU (node-worker-threads-pool), streams the guest's console, enforces --timeout,
 * reboots the guest when it asks, and reports how it ended.
 */
import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { StaticPool } from 'node-worker-threads-pool';
import type { ShadowStats } from '../mmu/shadow-api.ts';
import type { BusDevices } from '../devices/lguest-bus.ts';
import { SECTOR_SIZE } from '../devices/virtio-block.ts';
import type { RunOptions } from './run-options.ts';
import { UserError } from './errors.ts';
import { COMPILED } from './root.ts';
import { prepareGuest } from './lguest-layout.ts';
import { emptyHostStats, type Fate, type HostStats } from '../switcher/lguest.ts';
import { CTRL, MAX_VCPUS, newCtrl, ringVcpu, stopAllVcpus, wakeVcpu } from '../switcher/smp.ts';
import { Shadow } from '../mmu/shadow.ts';
import { HCALL_NAMES } from '../switcher/layout.ts';
import type { InputMessage, LiveMessage, VcpuResult, VcpuTask } from './vcpu-worker.ts';
import { WorkerDebugLink } from './debug-link.ts';
import type { HostEventKind } from '../switcher/events.ts';
import { PluginError, PluginSet } from '../switcher/plugins.ts';
import { parseInsnBounds, parseTraceEvents } from './trace.ts';
import type { InsnBounds } from '../switcher/insn-trace.ts';
import { GdbServer } from './gdb-server.ts';
import { EXIT_INTERRUPTED, EXIT_KILLED, EXIT_KILLED_BY_DEBUGGER, EXIT_TIMEOUT } from './exit-status.ts';
import { newOutputFlow, outputWritten } from './output-flow.ts';
import { readInputFile } from './input.ts';
import { runtimePaging } from './elf.ts';
import { EXIT_OUTPUT_CLOSED, EXIT_TERMINATED, OUTPUT_CLOSED, TERMINATED, onOutputClosed, onTerminate, outputClosed } from './stop.ts';
import { SIGALRM, SIGINT as SIGINT_NUMBER, SIGKILL, type DebugEvent } from '../emulator/debug-target.ts';

// The sources (tsx) start workers through vcpu-worker.mjs, which registers tsx in the new thread; the build
// (dist/) starts its compiled vcpu-worker.js directly, with nothing to transpile.
const WORKER_ENTRY = fileURLToPath(new URL(COMPILED ? './vcpu-worker.js' : './vcpu-worker.mjs', import.meta.url));

/** A guest may ask to restart this many times in one run; the next request ends the run. */
export const MAX_RESTARTS = 8;
const INTERRUPTED = 'interrupted (SIGINT): stopped the guest';
/** Why the run was stopped from outside (the interrupt signal's reason) and the status it ends with. */
const STOP_STATUS: Record<string, number> = {
  [INTERRUPTED]: EXIT_INTERRUPTED, [TERMINATED]: EXIT_TERMINATED, [OUTPUT_CLOSED]: EXIT_OUTPUT_CLOSED,
};
/** After a vCPU worker failed, how long the Launcher waits for the others to stop and hand over their
 *  output before it gives up on them (ms). */
const FAILURE_GRACE_MS = 5000;
/** setTimeout's longest delay; a longer --timeout is waited for in pieces. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Text a guest chose (a SHUTDOWN message, and so any kill reason), made safe for one line of a terminal:
 * backslash and every control character (C0, DEL, C1, the Unicode line and paragraph separators) are
 * written as escapes (\n, \r, \t, \e, \xHH, \uHHHH), so guest text can never start a line of its own,
 * forge one of ours ("guest killed: ...") or send the terminal an escape sequence.
 */
export function printable(text: string): string {
  return text.replace(/[\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (ch) => {
    switch (ch) {
      case '\\': return '\\\\';
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      case '\x1b': return '\\e';
    }
    const c = ch.charCodeAt(0);
    return c > 0xff ? `\\u${c.toString(16).padStart(4, '0')}` : `\\x${c.toString(16).padStart(2, '0')}`;
  });
}


export interface LguestBootOptions {
  /** Aborted: stop every vCPU now, as --timeout would (the CLI's Ctrl-C, SIGTERM, stdout closed); the
   *  fate is 'stopped' with the abort's reason when it is a string, else "interrupted (SIGINT) ...". */
  interrupt?: AbortSignal;
  image: Uint8Array;
  imageName: string;
  memMiB: number;
  cpus: number;
  pae: boolean;
  cmdline: string;
  initrd?: Uint8Array;
  initrdName?: string;
  timeoutSec?: number;
  /** The virtio block device's file (`--block`): opened read-write for the whole run; writes persist. */
  block?: string;
  /** Offer the virtio entropy device (`--rng`). */
  rng?: boolean;
  /** Console bytes as the guest writes them. A promise says they are not written yet: until it settles
   *  they count against the guest's output (launcher/output-flow.ts: past OUTPUT_HIGH the guest waits). */
  onConsole?: (bytes: Uint8Array) => unknown;
  /** Console input (the virtio console's input queue): called once per boot with a function that hands
   *  bytes to the guest; returns what stops the input at the end of the boot. */
  consoleInput?: (send: (bytes: Uint8Array) => void) => () => void;
  /** Told before each reboot. */
  onRestart?: (n: number, reason: string) => void;
  /** Reboots allowed before giving up (default MAX_RESTARTS). */
  maxRestarts?: number;
  /** gdb (`--gdb`): the link the vCPUs serve; every boot starts with it (launcher/vcpu-debug.ts). */
  debug?: WorkerDebugLink;
  /** Hypercall plug-in modules (paths), loaded in every vCPU worker (switcher/plugins.ts). */
  plugins?: string[];
  /** Host events to trace as JSON Lines (launcher/trace.ts), to `traceFile` (created empty) or stderr. */
  trace?: HostEventKind[];
  traceFile?: string;
  /** With `insn` in `trace`: which instructions (launcher/trace.ts parseInsnBounds; required then). */
  traceInsn?: InsnBounds;
}

export interface LguestStats {
  boots: number;
  /** Per vCPU; `started` false for a secondary the guest never started (VCPU_START). */
  vcpus: Array<{ vcpu: number; instructions: number; started: boolean }>;
  host: HostStats;
  shadow: ShadowStats | null;
}

export interface LguestResult {
  /** How the last boot ended; 'restart-limit' when the guest kept asking to restart. */
  fate: Fate | { kind: 'restart-limit'; reason: string };
  stats: LguestStats;
  /** A killed guest: its registers, the instruction at EIP and the Host's last events on the vCPU whose kill
   *  stands (switcher/kill-report.ts), one line each. */
  killReport?: string[];
}

/** The one final message of a vCPU worker. */
type VcpuReply = { ok: true; result: VcpuResult } | { ok: false; error: string };

/**
 * The vCPU worker threads (node-worker-threads-pool). Each vCPU of a boot is one long task on one worker;
 * a worker that finished a guest can run the next one (a reboot, or the next test), which saves starting
 * a thread and loading the Host's modules again.
 */
export class VcpuWorkers {
  readonly pool: StaticPool<(task: VcpuTask) => VcpuReply>;
  constructor(readonly size = 1) {
    this.pool = new StaticPool({ size, task: WORKER_ENTRY });
  }
  run(task: VcpuTask): Promise<VcpuReply> {
    const transfer = task.debug === undefined ? [task.port] : [task.port, task.debug.port];
    return this.pool.createExecutor().setTransferList(transfer).exec(task) as Promise<VcpuReply>;
  }
  destroy(): Promise<void> { return this.pool.destroy(); }
}

/** [L:200] Boot one guest (and reboot it on request) until it powers off, dies or runs out of time. */
export async function bootLguest(o: LguestBootOptions, workers?: VcpuWorkers): Promise<LguestResult> {
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > MAX_VCPUS) {
    throw new UserError(`--cpus ${o.cpus}: a guest has 1 to ${MAX_VCPUS} vCPUs`);
  }
  // Every vCPU needs its own worker for the whole boot: a pool too small for this guest is not used.
  const own = workers === undefined || workers.size < o.cpus;
  const w = own ? new VcpuWorkers(o.cpus) : workers;
  let devices: BusDevices | undefined;
  try {
    // A plug-in that does not load, or registers nonsense, is the user's mistake: one line, before any
    // guest runs (each worker then loads its own copy).
    if (o.plugins?.length) {
      try { await PluginSet.load(o.plugins, 0, o.cpus); } catch (e) {
        if (e instanceof PluginError) throw new UserError(e.message);
        throw e;
      }
    }
    if (o.traceFile !== undefined) {
      try { writeFileSync(o.traceFile, ''); } catch (e) {
        throw new UserError(`--trace-file ${o.traceFile}: cannot write it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    }
    devices = openDevices(o);
    return await bootLoop(o, w, devices);
  } finally {
    if (devices?.block) closeSync(devices.block.fd);
    if (own) await w.destroy();
  }
}

/** [L:202] The devices besides the console. The block file is opened here, read-write, as lguest's
 *  Launcher did, and stays open for every boot of the run; the device itself (vCPU 0's worker) reads and
 *  writes it through the descriptor. Its capacity is the file's size in whole 512-byte sectors. */
function openDevices(o: LguestBootOptions): BusDevices {
  const d: BusDevices = { rng: o.rng === true };
  if (o.block === undefined) return d;
  let fd: number;
  try {
    fd = openSync(o.block, 'r+');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new UserError(`no such block file: ${o.block}`);
    if (err.code === 'EISDIR') throw new UserError(`--block ${o.block}: is a directory, not a file`);
    throw new UserError(`--block ${o.block}: cannot open it for reading and writing (${err.code ?? err.message})`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new UserError(`--block ${o.block}: not a regular file`);
  }
  d.block = { path: o.block, fd, capacity: Math.floor(st.size / SECTOR_SIZE) };
  return d;
}

async function bootLoop(o: LguestBootOptions, workers: VcpuWorkers, devices: BusDevices): Promise<LguestResult> {
  const deadline = o.timeoutSec !== undefined ? Date.now() + o.timeoutSec * 1000 : undefined;
  const flow = newOutputFlow();
  let stats: LguestStats | undefined;
  for (let boot = 0; ; boot++) {
    const r = await bootOnce(o, workers, deadline, devices, flow);
    stats = mergeStats(stats, r, boot + 1);
    if (r.fate.kind !== 'restart') return { fate: r.fate, stats, killReport: r.killReport };
    const max = o.maxRestarts ?? MAX_RESTARTS;
    if (boot >= max) {
      return { fate: { kind: 'restart-limit', reason: `the guest asked to restart ${boot + 1} times; giving up after ${max} restarts` }, stats };
    }
    o.onRestart?.(boot + 1, r.fate.reason);
  }
}

/** One boot's ending: the guest's fate and every vCPU's result. */
interface BootResult {
  fate: Fate;
  results: VcpuResult[];
  killReport?: string[];
}

function mergeStats(prev: LguestStats | undefined, r: BootResult, boots: number): LguestStats {
  const s: LguestStats = prev ?? {
    boots, vcpus: [], shadow: null,
    host: emptyHostStats(),
  };
  const add = (a: Record<string, number>, b: Record<string, number>) => { for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v; };
  const h = s.host;
  for (const v of r.results) {
    add(h.exits, v.stats.exits); add(h.traps, v.stats.traps); add(h.hypercalls, v.stats.hypercalls);
    for (const k of ['faultsFixed', 'faultsReflected', 'trapsReflected', 'interruptsDelivered', 'ioEmulated', 'instructions'] as const) h[k] += v.stats[k];
    const row = s.vcpus.find((x) => x.vcpu === v.vcpu);
    if (row) { row.instructions += v.retired; row.started ||= v.started; }
    else s.vcpus.push({ vcpu: v.vcpu, instructions: v.retired, started: v.started });
    if (v.shadow) {
      if (!s.shadow) s.shadow = { ...v.shadow };
      else for (const k of Object.keys(v.shadow) as (keyof ShadowStats)[]) s.shadow[k] += v.shadow[k];
    }
  }
  s.boots = boots;
  return s;
}

/** One boot: fresh memory, one worker per vCPU, until that guest ends. */
async function bootOnce(o: LguestBootOptions, workers: VcpuWorkers, deadline: number | undefined, devices: BusDevices, flow: Int32Array): Promise<BootResult> {
  const g = prepareGuest({
    image: o.image, imageName: o.imageName, memMiB: o.memMiB, pae: o.pae, cmdline: o.cmdline,
    initrd: o.initrd, initrdName: o.initrdName, devices,
  });
  const n = o.cpus;
  const ctrl = newCtrl(n);
  const stop = () => stopAllVcpus(ctrl);
  const trace = o.trace?.length ? { events: o.trace, file: o.traceFile, t0: performance.timeOrigin + performance.now(), insn: o.traceInsn } : undefined;

  // [L:204] gdb: each vCPU's mailbox for this boot (the link outlives reboots).
  const debugTasks = o.debug?.bind(ctrl, stop);
  const poolMap = new SharedArrayBuffer((g.layout.poolBytes >>> 12) * 4);
  const shadowState = new SharedArrayBuffer(Shadow.stateBytes(g.layout.pfnLimit));
  // [L:205] A vCPU worker that fails (its task throws, or its thread dies: its live channel closes without
  // 'end') stops every other vCPU at once; the boot then waits a little for them to hand over their
  // output and ends with the first failure (an internal error), never waiting for --timeout.
  let failure: string | undefined;
  let failed!: () => void;
  const failedOnce = new Promise<void>((res) => { failed = res; });
  const fail = (msg: string) => {
    if (failure !== undefined) return;
    failure = msg;
    stop();
    failed();
  };
  const grace = failedOnce.then(() => new Promise<void>((res) => setTimeout(res, FAILURE_GRACE_MS).unref()));
  // Console bytes count against the guest's output until stdout has taken them (output-flow.ts); each
  // drain wakes vCPU 0, which may be halted with console output waiting.
  const written = (bytes: number) => { outputWritten(flow, bytes); wakeVcpu(ctrl, 0); };
  const channels = Array.from({ length: n }, (_, v) => {
    const { port1, port2 } = new MessageChannel();
    let gotEnd = false;
    let ended!: () => void;
    const done = new Promise<void>((res) => { ended = res; });
    let died!: (r: VcpuReply) => void;
    const death = new Promise<VcpuReply>((res) => { died = res; });
    port1.on('message', (m: LiveMessage) => {
      if (m.t === 'console') {
        const len = m.bytes.length;
        const w = o.onConsole?.(m.bytes);
        if (w instanceof Promise) w.then(() => written(len), () => written(len));
        else written(len);
      } else if (m.t === 'end') { gotEnd = true; ended(); }
    });
    port1.on('close', () => {
      if (gotEnd) return;
      // A secondary that died never left the guest: vCPU 0 must not wait for it before its teardown.
      if (v !== 0) { Atomics.sub(ctrl, CTRL.alive, 1); Atomics.notify(ctrl, CTRL.alive); }
      fail(`the vCPU ${v} worker died before the guest ended`);
      ended();
      died({ ok: false, error: 'died' }); // its task will never answer
    });
    return { port1, port2, done, death };
  });
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  if (deadline !== undefined) {
    // In pieces of at most MAX_TIMER_MS: Node's timers take no longer delay (a --timeout of 25 days or more).
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) { timedOut = true; stop(); return; }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
  }
  const onInterrupt = () => stop();
  o.interrupt?.addEventListener('abort', onInterrupt);
  if (o.interrupt?.aborted) stop();
  const tasks = channels.map((ch, v): VcpuTask => ({
    vcpu: v, memSize: g.mem.size, shared: g.mem.share(), poolMap, poolBytes: g.layout.poolBytes,
    memBase: g.layout.memBase, memBytes: g.layout.memBytes, pfnLimit: g.layout.pfnLimit, pae: o.pae,
    ctrl: ctrl.buffer as SharedArrayBuffer, shadowState, entry: g.entry, initrdBytes: g.initrdBytes,
    deviceGpa: g.bus.descGpa, devicePages: g.bus.pages, devices, port: ch.port2, flow: flow.buffer as SharedArrayBuffer,
    debug: debugTasks?.[v], plugins: o.plugins, trace,
  }));
  // Console input goes to vCPU 0 (which serves the devices) on its channel; the doorbell and the wake
  // word make it look (it reads the channel between slices and before sleeping).
  const stopInput = o.consoleInput?.((bytes) => {
    channels[0].port1.postMessage({ t: 'input', bytes } satisfies InputMessage);
    ringVcpu(ctrl, 0);
  });
  try {
    const runs = tasks.map((t, v) => Promise.race([channels[v].death, workers.run(t)]).then(
      (reply) => { if (!reply.ok) fail(`the vCPU ${v} worker failed: ${reply.error}`); return reply; },
      (e: Error) => { fail(`the vCPU ${v} worker failed: ${e.message}`); return { ok: false, error: e.message } as VcpuReply; },
    ));
    const replies = await Promise.race([Promise.all(runs), grace.then(() => null)]);
    // [L:210] Drain the live channels: everything a worker posted before its result arrives first on
    // its port, ending with 'end'; only then close them. (After a failure, for the grace period at most.)
    await Promise.race([Promise.all(channels.map((c) => c.done)), failure !== undefined ? grace : failedOnce.then(() => grace)]);
    if (failure !== undefined || replies === null) throw new Error(failure ?? 'a vCPU worker failed');
    const results = replies.map((r) => (r as { ok: true; result: VcpuResult }).result);
    // The guest's fate is the one of the vCPU whose kill (or SHUTDOWN) came first.
    const dead = Atomics.load(ctrl, CTRL.dead);
    const first = results[dead > 0 && dead <= n ? dead - 1 : 0];
    let fate = first.fate;
    // With several vCPUs, a kill says on which one it happened.
    if (n > 1 && fate.kind === 'killed') fate = { ...fate, reason: `vCPU ${dead - 1}: ${fate.reason}` };
    if (o.interrupt?.aborted && fate.kind === 'stopped') {
      const why = o.interrupt.reason;
      return { fate: { kind: 'stopped', reason: typeof why === 'string' ? why : INTERRUPTED }, results };
    }
    if (timedOut && fate.kind === 'stopped') return { fate: { kind: 'stopped', reason: `--timeout: stopped the guest after ${o.timeoutSec} s` }, results };
    return { fate, results, killReport: fate.kind === 'killed' ? first.killReport : undefined };
  } finally {
    if (timer) clearTimeout(timer);
    o.interrupt?.removeEventListener('abort', onInterrupt);
    stopInput?.();
    stop();
    for (const c of channels) c.port1.close();
    o.debug?.unbind();
  }
}

function printStats(s: LguestStats): void {
  const line = (rec: Record<string, number>) => Object.entries(rec).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || '-';
  const w = (t: string) => process.stderr.write(t + '\n');
  w(`lguest-ts stats (${s.boots} boot${s.boots > 1 ? 's' : ''}):`);
  w(`  exits: ${line(s.host.exits)}`);
  const nr = Object.fromEntries(Object.entries(HCALL_NAMES).map(([n, name]) => [name, n]));
  w(`  hypercalls: ${line(Object.fromEntries(Object.entries(s.host.hypercalls).map(([k, v]) => [nr[k] !== undefined ? `${k}(${nr[k]})` : k, v])))}`);
  w(`  page faults: ${s.host.faultsFixed} fixed by the shadow, ${s.host.faultsReflected} reflected to the guest`);
  w(`  traps reflected: ${s.host.trapsReflected}; I/O instructions emulated: ${s.host.ioEmulated}`);
  w(`  interrupts delivered: ${s.host.interruptsDelivered}`);
  for (const v of s.vcpus) w(`  vCPU ${v.vcpu}: ${v.started ? `${v.instructions} instructions retired` : 'never started'}`);
  if (s.shadow) w(`  shadow: ${Object.entries(s.shadow).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

/** stdin feeds the virtio console's input queue while a boot runs (read as it comes; a terminal stays
 *  in its normal line mode). */
function stdinInput(send: (bytes: Uint8Array) => void): () => void {
  const stdin = process.stdin;
  const onData = (b: Buffer) => send(new Uint8Array(b));
  stdin.on('data', onData);
  return () => { stdin.off('data', onData); stdin.pause(); };
}

/** The CLI's lguest mode. */
export async function runLguest(opts: RunOptions): Promise<number> {
  // Start the vCPU workers first: each thread starts and loads the Host's modules while this one reads
  // the image and lays out the guest's memory.
  const workers = new VcpuWorkers(opts.cpus);
  try {
    return await runLguestOn(opts, workers);
  } finally {
    await workers.destroy();
  }
}

async function runLguestOn(opts: RunOptions, workers: VcpuWorkers): Promise<number> {
  const memBytes = opts.memMiB * 2 ** 20;
  const memLimit = `the guest memory (--mem ${opts.memMiB})`;
  const image = readInputFile(opts.image, opts.imageArg, memBytes, memLimit);
  // An image of our guest runtime says which paging it was built for (elf.ts): a mismatch is one clear
  // line, not a guest that dies strangely. (Bundled names already pick NAME-pae.elf with --pae.)
  const paging = runtimePaging(image);
  if (paging === '2level' && opts.pae) throw new UserError(`${opts.imageArg}: built for 2-level paging (no PAE): run it without --pae`);
  if (paging === 'pae' && !opts.pae) throw new UserError(`${opts.imageArg}: built for PAE paging: run it with --pae`);
  const initrd = opts.initrd === undefined ? undefined : readInputFile(opts.initrd, `--initrd ${opts.initrd}`, memBytes, memLimit);
  const traceEvents = opts.trace === undefined ? undefined : parseTraceEvents(opts.trace);
  const traceInsn = parseInsnBounds(traceEvents ?? [], opts.traceInsnRange, opts.traceInsnWindow);
  if (traceInsn !== undefined && opts.gdbPort !== undefined) throw new UserError('--trace insn and --gdb both drive the vCPU one instruction at a time: use one of them');
  let lastByte = 10;
  const gdb = opts.gdbPort === undefined ? undefined : await listenForGdb(opts.gdbPort, opts.cpus);
  let r: LguestResult;
  // [L:215] Ctrl-C, SIGTERM and a closed stdout stop every vCPU cleanly (the statistics still print, a
  // block file is closed); a second Ctrl-C or SIGTERM gives up at once.
  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  const offTerm = onTerminate(() => interrupt.abort(TERMINATED));
  const offOut = onOutputClosed(() => interrupt.abort(OUTPUT_CLOSED));
  // stdout's callback says when the bytes are written: until then they hold the guest back (output-flow.ts).
  const write = (b: Uint8Array): Promise<void> | undefined => {
    if (outputClosed()) return undefined;
    if (b.length) lastByte = b[b.length - 1];
    return new Promise((res) => process.stdout.write(b, () => res()));
  };
  try {
    r = await bootLguest({
      interrupt: interrupt.signal,
      image, imageName: opts.imageArg, memMiB: opts.memMiB, cpus: opts.cpus, pae: opts.pae, cmdline: opts.cmdline,
      initrd, initrdName: opts.initrd, timeoutSec: opts.timeoutSec, block: opts.block, rng: opts.rng,
      onConsole: write,
      consoleInput: stdinInput,
      onRestart: (n, reason) => process.stderr.write(`lguest-ts: the guest asked to restart (${printable(reason)}); reboot ${n} of at most ${MAX_RESTARTS}\n`),
      debug: gdb?.link,
      plugins: opts.plugins, trace: traceEvents, traceFile: opts.traceFile, traceInsn,
    }, workers);
  } catch (e) {
    await gdb?.server.finish({ kind: 'terminated', signal: SIGKILL });
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    offTerm();
    offOut();
  }
  if (lastByte !== 10 && !outputClosed()) process.stdout.write('\n');
  if (opts.stats) printStats(r.stats);
  let status: number, end: DebugEvent;
  ({ status, end } = ending(r, gdb?.link.killed === true));
  if (opts.statsJson) {
    try {
      writeFileSync(opts.statsJson, JSON.stringify({ fate: r.fate, ...r.stats }, null, 2) + '\n');
    } catch (e) {
      process.stderr.write(`lguest-ts: --stats-json ${opts.statsJson}: cannot write it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})\n`);
      if (status === 0) status = 2;
    }
  }
  // gdb, if still there, hears how the guest ended: "exited with code N" or the signal of a kill/timeout
  await gdb?.server.finish(end);
  return status;
}

/** The exit status and message for how the guest ended (and what gdb is told). */
function ending(r: LguestResult, killedByGdb: boolean): { status: number; end: DebugEvent } {
  const exited = (status: number) => ({ status, end: { kind: 'exited', status } as DebugEvent });
  switch (r.fate.kind) {
    case 'poweroff': return exited(0);
    case 'stopped': {
      if (killedByGdb) {
        process.stderr.write('lguest-ts: gdb killed the guest\n');
        return { status: EXIT_KILLED_BY_DEBUGGER, end: { kind: 'terminated', signal: SIGKILL } };
      }
      process.stderr.write(`lguest-ts: ${r.fate.reason}\n`);
      const status = STOP_STATUS[r.fate.reason];
      if (status === EXIT_INTERRUPTED) return { status, end: { kind: 'terminated', signal: SIGINT_NUMBER } };
      // gdb hears SIGTERM (15, gdb's number too) for SIGTERM; for a closed stdout, SIGPIPE (13).
      if (status !== undefined) return { status, end: { kind: 'terminated', signal: status === EXIT_TERMINATED ? 15 : 13 } };
      return { status: EXIT_TIMEOUT, end: { kind: 'terminated', signal: SIGALRM } };
    }
    case 'restart-limit':
      process.stderr.write(`lguest-ts: ${printable(r.fate.reason)}\n`);
      return exited(EXIT_KILLED);
    default:
      // The reason may hold the guest's own text (a SHUTDOWN message): escaped, it stays on this line.
      process.stderr.write(`guest killed: ${printable(r.fate.reason)}\n`);
      if (r.killReport) process.stderr.write(r.killReport.map((l) => `  ${printable(l)}\n`).join(''));
      return exited(EXIT_KILLED);
  }
}

/** [L:670] `--gdb PORT`: a server on 127.0.0.1:PORT, one gdb thread per vCPU; the guest waits for gdb
 *  before its first instruction. */
async function listenForGdb(port: number, cpus: number): Promise<{ link: WorkerDebugLink; server: GdbServer }> {
  const link = new WorkerDebugLink(cpus);
  const log = (msg: string) => { process.stderr.write(`lguest-ts: ${msg}\n`); };
  const server = await GdbServer.listen(link, port, log);
  log(`gdb: listening on 127.0.0.1:${server.port}; the guest waits for gdb (target remote 127.0.0.1:${server.port})`);
  return { link, server };
}

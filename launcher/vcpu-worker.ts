/**
 * One vCPU in its worker thread: the Host run loop (switcher/) over the machine's shared memory. The
 * worker receives exactly one task (the guest to run), streams console bytes over its MessagePort while
 * the guest runs, and posts exactly one final message: how the guest ended, with the statistics.
 */
import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { PhysicalMemory } from '../mmu/memory.ts';
import type { ShadowHost, ShadowPageTables, ShadowStats } from '../mmu/shadow-api.ts';
import { Shadow } from '../mmu/shadow.ts';
import { SHADOW_CACHE_SIZE } from '../mmu/shadow-consts.ts';
import { HostPool } from '../switcher/pool.ts';
import { startGuest, startSecondary, type SecondaryStart } from '../switcher/host.ts';
import { runGuest } from '../switcher/core.ts';
import { emptyHostStats, type Fate, type HostStats } from '../switcher/lguest.ts';
import { CTRL, SmpLink, VC, VCPU_STATE_RUNNING, VCPU_STATE_STARTING, stopAllVcpus } from '../switcher/smp.ts';
import { LockedShadow } from '../switcher/shared-shadow.ts';
import { PAGE_SIZE } from '../switcher/layout.ts';
import { LguestDevices, type BusDevices } from '../devices/lguest-bus.ts';
import { VcpuDebugger, type DebugTask } from './vcpu-debug.ts';
import { FLOW_QUEUED, OUTPUT_HIGH, OUTPUT_LOW } from './output-flow.ts';
import { combineSinks, RecentEvents } from '../switcher/events.ts';
import { PluginSet } from '../switcher/plugins.ts';
import { killReport } from '../switcher/kill-report.ts';
import { TraceWriter, type TraceConfig } from './trace.ts';

/** What the Launcher hands a vCPU worker. */
export interface VcpuTask {
  vcpu: number;
  memSize: number;
  shared: { sab: SharedArrayBuffer; meta: SharedArrayBuffer };
  poolMap: SharedArrayBuffer;
  poolBytes: number;
  memBase: number;
  memBytes: number;
  pfnLimit: number;
  pae: boolean;
  /** The guest's control block (switcher/smp.ts). */
  ctrl: SharedArrayBuffer;
  /** The shadow tables' bookkeeping, shared by the guest's vCPUs (Shadow.stateBytes(pfnLimit) bytes). */
  shadowState: SharedArrayBuffer;
  entry: number;
  initrdBytes: number;
  /** Guest-physical range of the device pages (NOTIFY there is for a device, not the console). */
  deviceGpa: number;
  devicePages: number;
  /** The devices offered besides the console (the block file is open in the Launcher: its fd is here). */
  devices: BusDevices;
  port: MessagePort;
  /** The run's console output counter (launcher/output-flow.ts): one Int32 word, shared. */
  flow: SharedArrayBuffer;
  /** gdb is attached (`run --gdb`): this vCPU's mailbox and how it starts (launcher/vcpu-debug.ts). */
  debug?: DebugTask;
  /** Hypercall plug-in modules to load in this worker (`run --plugin`, switcher/plugins.ts). */
  plugins?: string[];
  /** `run --trace`: which Host events to write, and where (launcher/trace.ts). */
  trace?: TraceConfig;
}

/** Messages on the live channel, worker to Launcher. */
export type LiveMessage = { t: 'console'; bytes: Uint8Array } | { t: 'end' };
/** Messages on the live channel, Launcher to worker (read with receiveMessageOnPort between slices). */
export type InputMessage = { t: 'input'; bytes: Uint8Array };

export interface VcpuResult {
  vcpu: number;
  /** False for a secondary vCPU the guest never started. */
  started: boolean;
  fate: Fate;
  stats: HostStats;
  shadow: ShadowStats | null;
  retired: number;
  /** This vCPU's kill ended the guest: what the Host saw (switcher/kill-report.ts). */
  killReport?: string[];
}

/** The largest string one early-console NOTIFY may print. */
const NOTIFY_STRING_MAX = 4096;

/** How long vCPU 0 waits for the other vCPUs to leave before it tears the shadow tables down (ms). */
const TEARDOWN_WAIT_MS = 10_000;

/** A paused vCPU looks at the stop and dead words this often while it waits for its output to drain (ms). */
const DRAIN_POLL_MS = 50;

/** A test hook (test/guests/isolation-launcher.test.ts): `LGUEST_TS_TEST_FAIL_VCPU=K` makes the worker of
 *  vCPU K throw as soon as the guest has started that vCPU; `K:exit` ends its thread instead. It stands for
 *  a Host bug, which no guest can cause on purpose: what matters is how the Launcher copes. */
function injectedFailure(vcpu: number): void {
  const spec = process.env.LGUEST_TS_TEST_FAIL_VCPU;
  if (spec === undefined || Number.parseInt(spec, 10) !== vcpu) return;
  if (spec.endsWith(':exit')) process.exit(1);
  throw new Error(`injected failure (LGUEST_TS_TEST_FAIL_VCPU=${spec})`);
}

/** A secondary vCPU waits here until the guest starts it (VCPU_START), or the guest ends first (null).
 *  With gdb attached it serves gdb meanwhile (and stops when gdb stops the guest). */
function waitForStart(link: SmpLink, dbg: VcpuDebugger | undefined): SecondaryStart | null {
  const ctrl = link.ctrl;
  for (;;) {
    const seq = Atomics.load(ctrl, link.mine(VC.wake));
    if (link.stopRequested() || Atomics.load(ctrl, CTRL.dead) !== 0) return null;
    if (Atomics.load(ctrl, link.mine(VC.state)) === VCPU_STATE_STARTING) {
      Atomics.store(ctrl, link.mine(VC.state), VCPU_STATE_RUNNING);
      return {
        eip: ctrl[link.mine(VC.startEip)] >>> 0, esp: ctrl[link.mine(VC.startEsp)] >>> 0,
        pgdir: ctrl[link.mine(VC.startPgdir)] >>> 0,
      };
    }
    if (dbg !== undefined) {
      dbg.idleUnstarted();
      if (Atomics.load(ctrl, link.mine(VC.wake)) !== seq) continue;
    }
    Atomics.wait(ctrl, link.mine(VC.wake), seq, 1000);
  }
}

/** [L:300] The vCPU's whole life, in its worker. */
export async function runVcpuTask(task: VcpuTask): Promise<VcpuResult> {
  const mem = new PhysicalMemory(task.memSize, task.shared);
  const pool = new HostPool(mem, 0, task.poolBytes, task.poolMap);
  const ctrl = new Int32Array(task.ctrl);
  const link = new SmpLink(ctrl, task.vcpu);
  const port = task.port;
  // [L:302] gdb: the vCPU's debugger exists before the vCPU does (a secondary keeps gdb's breakpoints
  // while it waits for VCPU_START).
  const dbg = task.debug === undefined ? undefined : new VcpuDebugger(link, task.debug.port, task.debug, task.pae);
  const flow = new Int32Array(task.flow);
  // [L:303] Plug-ins and the trace: loaded before the vCPU exists (a bad plug-in never half-runs a guest).
  const plugins = task.plugins?.length ? await PluginSet.load(task.plugins, task.vcpu, link.ncpus) : null;
  const trace = task.trace ? new TraceWriter(task.trace) : null;
  const recent = new RecentEvents();
  // [L:306] `--trace insn`: the tracer steps the vCPU inside its bounds (switcher/insn-trace.ts); loaded
  // only when asked for, so a run without it never loads the disassembler.
  const insnTracer = task.trace?.insn === undefined ? undefined : (await import('../switcher/insn-trace.ts')).InsnTracer;
  let emitConsole: ((b: Uint8Array) => void) | null = null;
  let out: Uint8Array[] = [];
  let outBytes = 0;
  const flush = () => {
    if (outBytes === 0) return;
    const bytes = Buffer.concat(out, outBytes);
    out = [];
    outBytes = 0;
    Atomics.add(flow, FLOW_QUEUED, bytes.length);
    port.postMessage({ t: 'console', bytes } satisfies LiveMessage);
  };
  const consoleOut = (b: Uint8Array) => {
    emitConsole?.(b);
    out.push(b); outBytes += b.length; if (outBytes >= PAGE_SIZE) flush();
  };
  // [L:305] Backpressure (output-flow.ts): past OUTPUT_HIGH bytes not yet written by the Launcher, the
  // virtio console stops consuming, and a vCPU leaving a NOTIFY waits until they are down to OUTPUT_LOW
  // (or the guest must stop). Only there: outside the guest, so no TLB shootdown waits for it.
  const outputBlocked = () => Atomics.load(flow, FLOW_QUEUED) + outBytes >= OUTPUT_HIGH;
  const mustStop = () => link.stopRequested() || Atomics.load(ctrl, CTRL.dead) !== 0;
  const waitForDrain = () => {
    if (!outputBlocked()) return;
    flush();
    for (let q = Atomics.load(flow, FLOW_QUEUED); q > OUTPUT_LOW && !mustStop(); q = Atomics.load(flow, FLOW_QUEUED)) {
      dbg?.idle(); // gdb may stop the guest meanwhile: a paused vCPU stops too
      Atomics.wait(flow, FLOW_QUEUED, q, DRAIN_POLL_MS);
    }
  };
  let left = false;
  const leave = () => { if (!left && task.vcpu !== 0) { left = true; leaveGuest(link); } };
  try {
    return runVcpu();
  } catch (e) {
    // [L:330] This worker failed (a Host bug): every vCPU stops now, the output so far goes out, and the
    // Launcher hears 'end' before the error, so it loses nothing and waits for no one.
    stopAllVcpus(ctrl);
    try { flush(); } catch { /* the port may be gone */ }
    try { trace?.close(); } catch { /* as above */ }
    leave();
    try { dbg?.close(); } catch { /* as above */ }
    port.postMessage({ t: 'end' } satisfies LiveMessage);
    throw e;
  }

  function runVcpu(): VcpuResult {
    // Shadow paging: mmu/shadow.ts, the seed's page_tables.c, over bookkeeping every vCPU shares; vCPU 0
    // sets it up, the others attach, and with more than one vCPU every call takes the guest's shadow lock.
    const makeShadow = (host: ShadowHost): ShadowPageTables => {
      // The seed's 4 cached top levels, or one per vCPU when there are more (each vCPU keeps its own).
      const cacheSize = Math.max(SHADOW_CACHE_SIZE, link.ncpus);
      const s = new Shadow(host, { state: task.shadowState, attach: task.vcpu !== 0, cacheSize, strictKernelReuse: link.ncpus > 1 });
      return link.ncpus > 1 ? new LockedShadow(s, link) : s;
    };
    const base = {
      mem, memBase: task.memBase, memBytes: task.memBytes, pfnLimit: task.pfnLimit, pae: task.pae, pool,
      console: consoleOut, makeShadow, link,
    };
    let started: ReturnType<typeof startGuest>;
    if (task.vcpu === 0) {
      started = startGuest({ ...base, entry: task.entry, initrdBytes: task.initrdBytes });
    } else {
      const start = waitForStart(link, dbg);
      if (start === null) {
        leave();
        dbg?.close();
        port.postMessage({ t: 'end' } satisfies LiveMessage);
        return { vcpu: task.vcpu, started: false, fate: { kind: 'stopped', reason: 'never started' }, stats: emptyHostStats(), shadow: null, retired: 0 };
      }
      started = startSecondary(base, start);
    }
    const { lg, vcpu } = started;
    injectedFailure(task.vcpu);
    dbg?.attach(vcpu);
    lg.plugins = plugins;
    const pluginSink = plugins?.sink(vcpu) ?? null;
    lg.events = combineSinks([recent, ...(trace ? [trace] : []), ...(pluginSink ? [pluginSink] : [])]);
    if (lg.events?.wants('console')) {
      emitConsole = (b) => vcpu.emit({ kind: 'console', bytes: b.length, text: Buffer.from(b).toString('latin1') });
    }
    const limit = lg.pfnLimit * PAGE_SIZE;
    // [L:320] The virtio devices (abi 7.3: the console, and the block device and rng when offered): served
    // by vCPU 0, inside its NOTIFY or, for a kick another vCPU queued, between its time slices. Their IRQs
    // go to vCPU 0. Their bounds checks are their own (devices/virtqueue.ts: a bad ring kills the guest with
    // a reason naming the device and the queue).
    const devs = task.vcpu !== 0 ? null : new LguestDevices({
      limit,
      read8: (a) => mem.read8(task.memBase + a),
      read16: (a) => mem.read16(task.memBase + a),
      read32: (a) => mem.read32(task.memBase + a) >>> 0,
      write16: (a, v) => mem.write16(task.memBase + a, v),
      write32: (a, v) => mem.write32(task.memBase + a, v | 0),
      readBytes: (a, n) => mem.readBytes(task.memBase + a, n),
      writeBytes: (a, b) => mem.writeBytes(task.memBase + a, b),
      fill: (a, n, v) => mem.fill(task.memBase + a, n, v),
      kill: (reason) => lg.kill(reason),
      irq: (n) => { Atomics.or(ctrl, link.mine(VC.irqs), 1 << n); },
      output: consoleOut,
      outputBlocked,
    }, task.deviceGpa, task.devices);
    const deviceNotify = (addr: number) => {
      if (vcpu.wants('kick')) vcpu.emit({ kind: 'kick', addr });
      if (!devs!.notify(addr)) lg.kill(`Bad NOTIFY 0x${addr.toString(16)} (no device there)`);
    };
    const takeInput = () => {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const msg = m.message as InputMessage;
        if (msg.t === 'input') devs?.console.input(msg.bytes);
      }
    };
    const insnTrace = insnTracer === undefined || task.trace?.insn === undefined ? undefined : new insnTracer(vcpu, task.trace.insn);
    const ended = runGuest(vcpu, {
      ctrl,
      debug: dbg,
      insnTrace,
      // Between slices: console input, kicks the other vCPUs queued, then a turn for each device with work
      // left over from an earlier one (a kick's byte budget ran out, or the console waited for stdout).
      poll() {
        takeInput();
        if (devs) {
          link.takeKicks(deviceNotify);
          devs.resume();
        }
        flush();
        trace?.flush();
      },
      busy: () => devs !== null && devs.hasWork(),
      notify(addr) {
        notify(addr);
        waitForDrain();
      },
    });
    // [L:310] NOTIFY: a device address goes to the devices (on vCPU 0; another vCPU queues it for vCPU 0,
    // as lguest's eventfd handed kicks to the Launcher); anything else below the guest's limit is the
    // early console (the NUL-terminated string there, verbatim); at or above it, the Launcher gives up.
    function notify(addr: number): void {
      if (addr >= limit) { lg.kill(`Bad NOTIFY 0x${addr.toString(16)}`); return; }
      if (addr >= task.deviceGpa && addr < task.deviceGpa + task.devicePages * PAGE_SIZE) {
        if (devs) deviceNotify(addr);
        else {
          while (!link.queueKick(addr)) {
            if (link.stopRequested() || Atomics.load(ctrl, CTRL.dead) !== 0) return;
            dbg?.idle(); // vCPU 0 may be stopped in gdb: so may we
            Atomics.wait(ctrl, link.mine(VC.wake), Atomics.load(ctrl, link.mine(VC.wake)), 1);
          }
        }
        return;
      }
      const bytes = lg.readBytes(addr, Math.min(NOTIFY_STRING_MAX, limit - addr));
      const n = bytes.indexOf(0);
      consoleOut(n < 0 ? bytes : bytes.subarray(0, n));
    }
    flush();
    // [L:304] A kill this vCPU made explains itself (switcher/kill-report.ts), before anything is torn down.
    // (Not for a SHUTDOWN: the guest ended itself and said why.)
    const fate: Fate = ended;
    let report: string[] | undefined;
    if (ended.kind === 'killed' && lg.shutdown === null && Atomics.load(ctrl, CTRL.dead) === task.vcpu + 1) {
      try { report = killReport(vcpu, recent); } catch { /* the kill stands without it */ }
    }
    trace?.close();
    let shadow: ShadowStats | null = null;
    if (task.vcpu === 0) {
      // The shadow tables go when every other vCPU has left (they are shared); vCPU 0 reports their figures.
      const deadline = Date.now() + TEARDOWN_WAIT_MS;
      for (let n = Atomics.load(ctrl, CTRL.alive); n > 1 && Date.now() < deadline; n = Atomics.load(ctrl, CTRL.alive)) {
        Atomics.wait(ctrl, CTRL.alive, n, 100);
      }
      shadow = { ...lg.shadow.stats };
      if (Atomics.load(ctrl, CTRL.alive) <= 1) {
        lg.shadow.releaseAll();
        shadow.leakedFrames = lg.shadow.stats.leakedFrames;
      }
    } else {
      leave();
    }
    dbg?.close();
    port.postMessage({ t: 'end' } satisfies LiveMessage);
    return { vcpu: task.vcpu, started: true, fate, stats: lg.stats, shadow, retired: vcpu.cpu.retired, killReport: report };
  }
}

/** A secondary vCPU is done with the guest (vCPU 0 waits for all of them before the teardown). */
function leaveGuest(link: SmpLink): void {
  Atomics.sub(link.ctrl, CTRL.alive, 1);
  Atomics.notify(link.ctrl, CTRL.alive);
}

parentPort?.on('message', (task: VcpuTask) => {
  runVcpuTask(task).then(
    (r) => parentPort!.postMessage({ ok: true, result: r }),
    (e: Error) => parentPort!.postMessage({ ok: false, error: `${e.message}${process.env.LGUEST_TS_DEBUG ? '\n' + e.stack : ''}` }),
  );
});

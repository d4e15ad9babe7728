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
import { HostPool } from '../switcher/pool.ts';
import { startGuest } from '../switcher/host.ts';
import { runGuest } from '../switcher/core.ts';
import { CTRL, type Fate, type HostStats } from '../switcher/lguest.ts';
import { PAGE_SIZE } from '../switcher/layout.ts';
import { VirtioConsole } from '../devices/virtio-console.ts';

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
  ctrl: SharedArrayBuffer;
  entry: number;
  initrdBytes: number;
  /** Guest-physical range of the device pages (NOTIFY there is for a device, not the console). */
  deviceGpa: number;
  devicePages: number;
  port: MessagePort;
}

/** Messages on the live channel, worker to Launcher. */
export type LiveMessage = { t: 'console'; bytes: Uint8Array } | { t: 'end' };
/** Messages on the live channel, Launcher to worker (read with receiveMessageOnPort between slices). */
export type InputMessage = { t: 'input'; bytes: Uint8Array };

export interface VcpuResult {
  vcpu: number;
  fate: Fate;
  stats: HostStats;
  shadow: ShadowStats | null;
  retired: number;
}

/** The largest string one early-console NOTIFY may print. */
const NOTIFY_STRING_MAX = 4096;

/** Shadow paging: mmu/shadow.ts, the seed's page_tables.c. */
function makeShadow(host: ShadowHost): ShadowPageTables {
  return new Shadow(host);
}

/** [L:300] The vCPU's whole life, in its worker. */
export async function runVcpuTask(task: VcpuTask): Promise<VcpuResult> {
  const mem = new PhysicalMemory(task.memSize, task.shared);
  const pool = new HostPool(mem, 0, task.poolBytes, task.poolMap);
  const ctrl = new Int32Array(task.ctrl);
  const port = task.port;
  let out: Uint8Array[] = [];
  let outBytes = 0;
  const flush = () => {
    if (outBytes === 0) return;
    const bytes = Buffer.concat(out, outBytes);
    out = [];
    outBytes = 0;
    port.postMessage({ t: 'console', bytes } satisfies LiveMessage);
  };
  const consoleOut = (b: Uint8Array) => { out.push(b); outBytes += b.length; if (outBytes >= PAGE_SIZE) flush(); };
  const { lg, vcpu } = startGuest({
    mem, memBase: task.memBase, memBytes: task.memBytes, pfnLimit: task.pfnLimit, pae: task.pae, pool,
    console: consoleOut, makeShadow, entry: task.entry, initrdBytes: task.initrdBytes,
    doorbell: new Int32Array(task.ctrl, CTRL.doorbell * 4, 1),
  });
  const limit = lg.pfnLimit * PAGE_SIZE;
  // [L:320] The virtio console (abi 7.3): served here, inside the guest's NOTIFY; its IRQs go through
  // CTRL.irqs like any Launcher interrupt. Its bounds checks are its own (a bad ring kills the guest
  // with a reason naming the ring).
  const vcon = new VirtioConsole({
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
    irq: (n) => { Atomics.or(ctrl, CTRL.irqs, 1 << n); },
    output: consoleOut,
  }, task.deviceGpa);
  const takeInput = () => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      const msg = m.message as InputMessage;
      if (msg.t === 'input') vcon.input(msg.bytes);
    }
  };
  const fate = runGuest(vcpu, {
    ctrl,
    poll() { takeInput(); flush(); },
    // [L:310] NOTIFY: a device address goes to the devices; anything else below the guest's limit is the
    // early console (the NUL-terminated string there, verbatim); at or above it, the Launcher gives up.
    notify(addr) {
      if (addr >= limit) { lg.kill(`Bad NOTIFY 0x${addr.toString(16)}`); return; }
      if (addr >= task.deviceGpa && addr < task.deviceGpa + task.devicePages * PAGE_SIZE) {
        if (!vcon.notify(addr)) lg.kill(`Bad NOTIFY 0x${addr.toString(16)} (no device there)`);
        return;
      }
      const bytes = lg.readBytes(addr, Math.min(NOTIFY_STRING_MAX, limit - addr));
      const n = bytes.indexOf(0);
      consoleOut(n < 0 ? bytes : bytes.subarray(0, n));
    },
  });
  flush();
  const shadow = { ...lg.shadow.stats };
  lg.shadow.releaseAll();
  shadow.leakedFrames = lg.shadow.stats.leakedFrames;
  port.postMessage({ t: 'end' } satisfies LiveMessage);
  return { vcpu: task.vcpu, fate, stats: lg.stats, shadow, retired: vcpu.cpu.retired };
}

parentPort?.on('message', (task: VcpuTask) => {
  runVcpuTask(task).then(
    (r) => parentPort!.postMessage({ ok: true, result: r }),
    (e: Error) => parentPort!.postMessage({ ok: false, error: `${e.message}${process.env.LGUEST_TS_DEBUG ? '\n' + e.stack : ''}` }),
  );
});

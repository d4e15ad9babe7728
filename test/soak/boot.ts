/**
 * One boot of an lguest guest for the soak and the fuzz tests, with what `bootLguest` does not show: the
 * machine's memory after the run. The Launcher's own steps (prepareGuest, one VcpuWorkers task per vCPU,
 * the live channels) are used as they are; around them this adds
 *
 * - canary pages: the first and the last page of the Host pool (taken out of the pool's map, so the Host
 *   never allocates them) and every device page above the guest's frame limit (pfnLimit: nobody may
 *   touch them), filled with a pattern before the boot and compared after it. Any byte changed there
 *   is an access outside the guest's memory and the pages the Host owns;
 * - the Host pool's use after the boot: with the shadow torn down, only the Switcher's pages may remain;
 * - the shadow's own balance (leakedFrames: every reference count back to zero);
 * - a wall-time bound: a guest still running after `wallMs` is stopped and reported as a hang;
 * - every failure of a worker (an exception out of the Host, a worker that dies) as an error.
 */
import { MessageChannel } from 'node:worker_threads';
import { prepareGuest } from '../../launcher/lguest-layout.ts';
import { newOutputFlow, outputWritten } from '../../launcher/output-flow.ts';
import type { VcpuWorkers } from '../../launcher/lguest.ts';
import type { LiveMessage, VcpuResult, VcpuTask } from '../../launcher/vcpu-worker.ts';
import { Shadow } from '../../mmu/shadow.ts';
import type { Fate } from '../../switcher/lguest.ts';
import { CTRL, newCtrl, stopAllVcpus } from '../../switcher/smp.ts';

const PAGE = 4096;
/** How long after the stop request a vCPU may take to leave before its worker counts as stuck. */
const WEDGE_GRACE_MS = 10_000;

export interface SoakBootOptions {
  image: Uint8Array;
  name: string;
  memMiB: number;
  cpus: number;
  pae: boolean;
  cmdline: string;
  rng?: boolean;
  /** Wall time after which the guest is stopped and the boot counts as a hang. */
  wallMs: number;
}

export interface SoakBootResult {
  fate?: Fate;
  /** The console, every vCPU's bytes in arrival order (per vCPU in order). */
  console: string;
  ms: number;
  hung: boolean;
  /** Host exception or worker failure. */
  error?: string;
  /** What the canary check found (null: intact). */
  canary: string | null;
  /** Pool pages still in use after the teardown (canaries not counted), and how many may be. */
  poolInUse: number;
  poolAllowed: number;
  leakedFrames?: number;
  /** A worker is stuck for good: the pool must be replaced. */
  wedged?: boolean;
  instructions: number;
  exits: number;
}

/** The canary byte at host-physical `hpa`: depends on the address, so a copy of one page onto another shows. */
function canaryByte(hpa: number): number {
  return ((hpa >>> 12) * 131 + (hpa & 0xfff) * 7 + 0x5a) & 0xff;
}

function plant(u8: Uint8Array, start: number, end: number): void {
  for (let a = start; a < end; a++) u8[a] = canaryByte(a);
}

function inspect(u8: Uint8Array, start: number, end: number, what: string): string | null {
  for (let a = start; a < end; a++) {
    if (u8[a] !== canaryByte(a)) return `${what}: byte at host-physical 0x${a.toString(16)} changed to 0x${u8[a].toString(16)}`;
  }
  return null;
}

export async function soakBoot(o: SoakBootOptions, workers: VcpuWorkers): Promise<SoakBootResult> {
  const t0 = Date.now();
  const devices = { rng: o.rng === true };
  const g = prepareGuest({ image: o.image, imageName: o.name, memMiB: o.memMiB, pae: o.pae, cmdline: o.cmdline, devices });
  const { layout, mem } = g;
  const n = o.cpus;
  const ctrl = newCtrl(n);
  const poolPages = layout.poolBytes / PAGE;
  const poolMap = new SharedArrayBuffer(poolPages * 4);
  const map = new Int32Array(poolMap);
  // Canaries: pool pages 0 and last (marked used), and the device pages past pfnLimit.
  const canaries: Array<[number, number, string]> = [
    [0, PAGE, 'canary below the Host pool'],
    [(poolPages - 1) * PAGE, poolPages * PAGE, 'canary between the Host pool and guest RAM'],
    [layout.memBase + layout.pfnLimit * PAGE, layout.totalBytes, 'canary above the guest frames'],
  ];
  map[0] = 1;
  map[poolPages - 1] = 1;
  for (const [s, e] of canaries) plant(mem.u8, s, e);
  const shadowState = new SharedArrayBuffer(Shadow.stateBytes(layout.pfnLimit));

  const chunks: Buffer[] = [];
  // The console's flow control (launcher/output-flow.ts): every byte is taken as soon as it arrives.
  const flow = newOutputFlow();
  let died!: (e: Error) => void;
  const death = new Promise<never>((_, rej) => { died = rej; });
  death.catch(() => {});
  const channels = Array.from({ length: n }, (_, v) => {
    const { port1, port2 } = new MessageChannel();
    let gotEnd = false;
    let ended!: () => void;
    const done = new Promise<void>((res) => { ended = res; });
    port1.on('message', (m: LiveMessage) => {
      if (m.t === 'console') { chunks.push(Buffer.from(m.bytes)); outputWritten(flow, m.bytes.length); }
      else if (m.t === 'end') { gotEnd = true; ended(); }
    });
    port1.on('close', () => { if (!gotEnd) { stopAllVcpus(ctrl); died(new Error(`the vCPU ${v} worker died before the guest ended`)); } });
    return { port1, port2, done };
  });
  let hung = false;
  const timer = setTimeout(() => { hung = true; stopAllVcpus(ctrl); }, o.wallMs);
  // A vCPU that does not even answer the stop (stuck inside the Host) is given up on a little later.
  let wedge!: NodeJS.Timeout;
  const wedged = new Promise<never>((_, rej) => {
    wedge = setTimeout(() => rej(new Error(`hang: a vCPU did not stop within ${WEDGE_GRACE_MS} ms of the stop request (stuck in the Host)`)), o.wallMs + WEDGE_GRACE_MS);
  });
  wedged.catch(() => {});
  const tasks = channels.map((ch, v): VcpuTask => ({
    vcpu: v, memSize: mem.size, shared: mem.share(), poolMap, poolBytes: layout.poolBytes,
    memBase: layout.memBase, memBytes: layout.memBytes, pfnLimit: layout.pfnLimit, pae: o.pae,
    ctrl: ctrl.buffer as SharedArrayBuffer, shadowState, entry: g.entry, initrdBytes: g.initrdBytes,
    deviceGpa: g.bus.descGpa, devicePages: g.bus.pages, devices, port: ch.port2, flow: flow.buffer as SharedArrayBuffer,
  }));
  const out: SoakBootResult = {
    console: '', ms: 0, hung: false, canary: null, poolInUse: 0, poolAllowed: 1 + 3 * n /* the Switcher's code page; each vCPU's regs, read-only and PTE pages */, instructions: 0, exits: 0,
  };
  try {
    const replies = await Promise.race([Promise.all(tasks.map((t) => workers.run(t))), death, wedged]);
    const results: VcpuResult[] = [];
    replies.forEach((reply, v) => {
      if (!reply.ok) throw new Error(`the vCPU ${v} worker failed: ${reply.error}`);
      results.push(reply.result);
    });
    await Promise.race([Promise.all(channels.map((c) => c.done)), death, wedged]);
    const dead = Atomics.load(ctrl, CTRL.dead);
    let fate = results[dead > 0 && dead <= n ? dead - 1 : 0].fate;
    if (n > 1 && fate.kind === 'killed') fate = { kind: 'killed', reason: `vCPU ${dead - 1}: ${fate.reason}` };
    out.fate = fate;
    out.leakedFrames = results[0].shadow?.leakedFrames;
    for (const r of results) {
      out.instructions += r.retired;
      for (const k of Object.values(r.stats.exits)) out.exits += k;
    }
  } catch (e) {
    out.error = e instanceof Error ? e.message : String(e);
    if (/^hang: /.test(out.error)) out.wedged = true;
  } finally {
    clearTimeout(timer);
    clearTimeout(wedge);
    stopAllVcpus(ctrl);
    for (const c of channels) c.port1.close();
  }
  out.hung = hung;
  out.ms = Date.now() - t0;
  out.console = Buffer.concat(chunks).toString('latin1');
  for (const [s, e, what] of canaries) out.canary ??= inspect(mem.u8, s, e, what);
  let inUse = 0;
  for (let i = 1; i < poolPages - 1; i++) inUse += map[i];
  out.poolInUse = inUse;
  return out;
}

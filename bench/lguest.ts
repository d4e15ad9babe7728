/**
 * The lguest half of `npm run bench`: the benchmark guests (guest-images/lguest/guests/bench-*.c) booted
 * through the Launcher's own API (`bootLguest`, one vCPU worker kept warm across runs), and the CLI as a
 * user starts it.
 *
 * Every rate is a difference: a run with a count N minus a run with 0 (boot, page-table set-up and power
 * off cancel out), the events counted by the Host (its --stats counters), the time measured around the
 * whole boot. Each figure is the median over `runs` such pairs.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootLguest, VcpuWorkers, type LguestResult } from '../launcher/lguest.ts';
import { IMAGE_DIR } from '../launcher/images.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Guest memory for the in-process runs: small, so the guest's boot (one SET_PTE per page) is short. */
const MEM_MIB = 16;

interface GuestRun { seconds: number; cpuSeconds: number; result: LguestResult; output: string }

export class LguestBench {
  private readonly workers = new VcpuWorkers(1);
  private readonly images = new Map<string, Uint8Array>();

  constructor(readonly runs: number) {}

  destroy(): Promise<void> { return this.workers.destroy(); }

  /** One boot of guest `name` until it powers off; throws unless it passed its own checks. */
  async run(name: string, cmdline: string, pae = false): Promise<GuestRun> {
    const file = `${name}${pae ? '-pae' : ''}.elf`;
    let image = this.images.get(file);
    if (!image) this.images.set(file, image = readFileSync(join(IMAGE_DIR, file)));
    const chunks: Buffer[] = [];
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const result = await bootLguest({
      image, imageName: name, memMiB: MEM_MIB, cpus: 1, pae, cmdline, timeoutSec: 600,
      onConsole: (b) => chunks.push(Buffer.from(b)),
    }, this.workers);
    const cpu = process.cpuUsage(c0);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const output = Buffer.concat(chunks).toString('latin1');
    if (result.fate.kind !== 'poweroff' || result.fate.reason !== 'CRASH: Power down' || /FAIL|PANIC/.test(output)) {
      throw new Error(`${file} ${cmdline} did not pass (${result.fate.kind}: ${result.fate.reason}): ${output.slice(-300)}`);
    }
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, result, output };
  }

  /**
   * MIPS of the workload guest (bench-lguest, the same instructions as bare mode's bench.elf): retired
   * instructions of a run with `iters` minus those of a run with 0, over the difference of the times.
   * `bareMips`, when given, is called before each lguest run for a bare figure measured right next to it,
   * so each pair sees the same load on a shared machine (the paired ratio).
   */
  async workloadMips(iters: number, pae: boolean, bareMips?: () => number) {
    if (!pae) await this.run('bench-lguest', `iters=${iters}`, pae); // warm-up: V8 optimises the Host and the CPU in the worker
    const samples: { mips: number; cpuMips: number; ratio?: number }[] = [];
    let perIter = 0, startup = 0;
    for (let i = 0; i < this.runs; i++) {
      const bare = bareMips?.();
      const zero = await this.run('bench-lguest', 'iters=0', pae);
      const full = await this.run('bench-lguest', `iters=${iters}`, pae);
      const insns = full.result.stats.vcpus[0].instructions - zero.result.stats.vcpus[0].instructions;
      perIter = insns / iters;
      startup = zero.result.stats.vcpus[0].instructions;
      const mips = insns / (full.seconds - zero.seconds) / 1e6;
      samples.push({ mips, cpuMips: insns / (full.cpuSeconds - zero.cpuSeconds) / 1e6, ratio: bare === undefined ? undefined : mips / bare });
    }
    const ratios = samples.map((s) => s.ratio).filter((r): r is number => r !== undefined);
    return {
      mips: median(samples.map((s) => s.mips)),
      cpuMips: median(samples.map((s) => s.cpuMips)),
      pairedRatioToBare: ratios.length ? median(ratios) : undefined,
      instructionsPerIteration: perIter,
      startupInstructions: startup,
    };
  }

  /**
   * Events per second (of wall time, and of CPU time of the process) of one micro-benchmark guest: `count` reads the Host's counter of the event from a
   * run's statistics. Also returns the counter's difference (it should be n) and the page faults the Host
   * fixed per event.
   */
  async rate(name: string, option: string, n: number, count: (r: LguestResult) => number) {
    await this.run(name, `${option}=${Math.max(1, Math.floor(n / 10))}`); // warm-up
    const rates: number[] = [], cpuRates: number[] = [];
    let events = 0, faultsPerEvent = 0, instructionsPerEvent = 0;
    for (let i = 0; i < this.runs; i++) {
      const zero = await this.run(name, `${option}=0`);
      const full = await this.run(name, `${option}=${n}`);
      events = count(full.result) - count(zero.result);
      faultsPerEvent = (full.result.stats.host.faultsFixed - zero.result.stats.host.faultsFixed) / events;
      instructionsPerEvent = (full.result.stats.vcpus[0].instructions - zero.result.stats.vcpus[0].instructions) / events;
      rates.push(events / (full.seconds - zero.seconds));
      cpuRates.push(events / (full.cpuSeconds - zero.cpuSeconds));
    }
    return { perSecond: median(rates), perCpuSecond: median(cpuRates), events, faultsFixedPerEvent: faultsPerEvent, guestInstructionsPerEvent: instructionsPerEvent };
  }
}

/** The Host's counters the micro-benchmarks read. */
export const counters = {
  newPgtable: (r: LguestResult) => r.stats.host.hypercalls.NEW_PGTABLE ?? 0,
  faultsFixed: (r: LguestResult) => r.stats.host.faultsFixed,
  sendInterrupts: (r: LguestResult) => r.stats.host.hypercalls.SEND_INTERRUPTS ?? 0,
};

const TIME = '/usr/bin/time';

/**
 * `lguest-ts run bench-lguest` as a user starts it (a new node process, default --mem 64): the time from
 * spawning it to the first byte the guest writes to the console (Node and tsx starting, the Launcher
 * laying out memory, the vCPU worker starting, the guest booting), the time to its exit, and its peak
 * resident set (GNU time's %M: the largest RSS of the process, worker threads included).
 */
export async function cliRun(root: string, iters: number): Promise<{ firstByteSeconds: number; exitSeconds: number; peakRssBytes?: number; instructions: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'lguest-bench-'));
  const statsFile = join(dir, 'stats.json');
  const cli = [join(root, 'launcher/bin.mjs'), 'run', 'bench-lguest', '--cmdline', `iters=${iters}`, '--stats-json', statsFile];
  const useTime = existsSync(TIME);
  const [cmd, args] = useTime ? [TIME, ['-f', 'lguest-bench-maxrss-kib=%M', process.execPath, ...cli]] : [process.execPath, cli];
  try {
    return await new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      let first = -1;
      let stdout = '', stderr = '';
      const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
      p.stdout.on('data', (d: Buffer) => {
        if (first < 0) first = Number(process.hrtime.bigint() - t0) / 1e9;
        stdout += d.toString('latin1');
      });
      p.stderr.on('data', (d: Buffer) => { stderr += d.toString('latin1'); });
      p.on('error', reject);
      p.on('close', (status) => {
        const exit = Number(process.hrtime.bigint() - t0) / 1e9;
        if (status !== 0 || !stdout.includes('PASS')) {
          reject(new Error(`lguest-ts run bench-lguest exited ${status}: ${stdout.slice(-200)} ${stderr.slice(-300)}`));
          return;
        }
        const rss = /lguest-bench-maxrss-kib=(\d+)/.exec(stderr);
        const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as { vcpus: { instructions: number }[] };
        resolve({ firstByteSeconds: first, exitSeconds: exit, peakRssBytes: rss ? Number(rss[1]) * 1024 : undefined, instructions: stats.vcpus[0].instructions });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function cliFigures(root: string, iters: number, runs: number) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await cliRun(root, iters));
  const rss = samples.map((s) => s.peakRssBytes).filter((x): x is number => x !== undefined);
  return {
    iterations: iters,
    firstByteSeconds: median(samples.map((s) => s.firstByteSeconds)),
    exitSeconds: median(samples.map((s) => s.exitSeconds)),
    peakRssBytes: rss.length ? median(rss) : undefined,
    peakRssNote: rss.length ? undefined : `${TIME} (GNU time) is not installed`,
  };
}

/**
 * The lguest half of `npm run bench`: the benchmark guests (guest-images/lguest/guests/bench-*.c) booted
 * through the Launcher's own API (`bootLguest`, one vCPU worker kept warm across runs; bench-smp, the SMP
 * guest, on a pool of its own with one worker per vCPU), and the CLI as a user starts it.
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
/** Instructions retired by every vCPU of a run. */
const totalInstructions = (r: GuestRun) => r.result.stats.vcpus.reduce((a, v) => a + v.instructions, 0);

/** Guest memory for the in-process runs: small, so the guest's boot (one SET_PTE per page) is short. */
const MEM_MIB = 16;

interface GuestRun { seconds: number; cpuSeconds: number; result: LguestResult; output: string }

export class LguestBench {
  private readonly workers = new VcpuWorkers(1);
  /** bench-smp's workers, one per vCPU of its largest run: its own pool, so that each of its runs finds
   *  threads that ran the workload before (the pool hands tasks to the first idle worker). */
  private smpWorkers?: VcpuWorkers;
  private readonly images = new Map<string, Uint8Array>();

  constructor(readonly runs: number) {}

  async destroy(): Promise<void> {
    await this.workers.destroy();
    await this.smpWorkers?.destroy();
  }

  /** One boot of guest `name` until it powers off; throws unless it passed its own checks. */
  async run(name: string, cmdline: string, pae = false, cpus = 1, workers = this.workers): Promise<GuestRun> {
    const file = `${name}${pae ? '-pae' : ''}.elf`;
    let image = this.images.get(file);
    if (!image) this.images.set(file, image = readFileSync(join(IMAGE_DIR, file)));
    const chunks: Buffer[] = [];
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const result = await bootLguest({
      image, imageName: name, memMiB: MEM_MIB, cpus, pae, cmdline, timeoutSec: 600,
      onConsole: (b) => chunks.push(Buffer.from(b)),
    }, workers);
    const cpu = process.cpuUsage(c0);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const output = Buffer.concat(chunks).toString('latin1');
    if (result.fate.kind !== 'poweroff' || result.fate.reason !== 'CRASH: Power down' || /FAIL|PANIC/.test(output)) {
      throw new Error(`${file} ${cmdline} --cpus ${cpus} did not pass (${result.fate.kind}: ${result.fate.reason}): ${output.slice(-300)}`);
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
   * How the SMP extension scales: bench-smp, where every vCPU runs `iters` iterations of the workload on
   * its own copy of the workload's state, at each count of `cpuCounts`; and, as the control, `separate`
   * 1-vCPU guests (bench-lguest, each on a worker of its own pool) booted at the same time in this
   * process, which share nothing but the process and the machine (what that many emulator threads get
   * here without the SMP extension).
   *
   * Each figure is a difference, as everywhere: the instructions retired by all the vCPUs of a run with
   * `iters` minus those of a run with 0 (the same vCPUs booting, starting each other and powering off),
   * over the difference of the wall times around the whole boot: the aggregate MIPS; also per CPU-second
   * of the process (every thread), and their ratio, the cores the process kept busy. On a shared machine the load changes from one minute to the next, so
   * the runs go in rounds (each round: every count, then the control, each as a 0 run and an `iters`
   * run) and the speed-up over 1 vCPU is the median of the ratios within a round (paired), next to the
   * ratio of the medians. Before the first round, one warm-up run of every count and of the control:
   * each worker thread has its own V8, which must optimise the Host and the CPU for itself.
   */
  async smpScaling(iters: number, cpuCounts: number[], separate = 0) {
    const started = process.hrtime.bigint();
    const workers = this.smpWorkers ??= new VcpuWorkers(Math.max(...cpuCounts));
    const pools = Array.from({ length: separate }, () => new VcpuWorkers(1));
    type Run = { seconds: number; cpuSeconds: number; instructions: number; perVcpu: number[] };
    const smp = async (cpus: number, n: number): Promise<Run> => {
      const r = await this.run('bench-smp', `iters=${n}`, false, cpus, workers);
      if (!r.output.includes(`bench-smp: vcpus: ${cpus},`)) throw new Error(`bench-smp --cpus ${cpus} did not start ${cpus} vCPUs: ${r.output}`);
      return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, instructions: totalInstructions(r), perVcpu: r.result.stats.vcpus.map((v) => v.instructions) };
    };
    const control = async (n: number): Promise<Run> => {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const runs = await Promise.all(pools.map((p) => this.run('bench-lguest', `iters=${n}`, false, 1, p)));
      const cpu = process.cpuUsage(c0);
      const perVcpu = runs.map(totalInstructions);
      return {
        seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6,
        instructions: perVcpu.reduce((a, b) => a + b, 0), perVcpu,
      };
    };
    // One sample per round and row: 'cpus' rows are bench-smp, the 'separate' row is the control.
    const rows = [
      ...cpuCounts.map((cpus) => ({ kind: 'smp' as const, cpus, go: (n: number) => smp(cpus, n) })),
      ...(separate > 1 ? [{ kind: 'separate' as const, cpus: separate, go: control }] : []),
    ];
    const samples = rows.map(() => [] as { mips: number; cpuMips: number; seconds: number; cores: number; instructions: number; perVcpu: number[] }[]);
    try {
      for (const row of rows) await row.go(iters); // warm-up
      for (let i = 0; i < this.runs; i++) {
        for (const [k, row] of rows.entries()) {
          const zero = await row.go(0);
          const full = await row.go(iters);
          const instructions = full.instructions - zero.instructions;
          const seconds = full.seconds - zero.seconds, cpuSeconds = full.cpuSeconds - zero.cpuSeconds;
          samples[k].push({
            mips: instructions / seconds / 1e6, cpuMips: instructions / cpuSeconds / 1e6, seconds, cores: cpuSeconds / seconds, instructions,
            perVcpu: full.perVcpu.map((x, v) => x - (zero.perVcpu[v] ?? 0)),
          });
        }
      }
    } finally {
      await Promise.all(pools.map((p) => p.destroy()));
    }
    const base = rows.findIndex((r) => r.kind === 'smp' && r.cpus === 1);
    const figures = rows.map((row, k) => {
      const s = samples[k];
      const mips = median(s.map((x) => x.mips));
      return {
        kind: row.kind,
        cpus: row.cpus,
        mips,
        cpuMips: median(s.map((x) => x.cpuMips)),
        seconds: median(s.map((x) => x.seconds)),
        /** CPU time of the process over wall time: how many cores it kept busy (fewer than the vCPUs
         *  when the machine had other work, or when vCPUs waited). */
        cores: median(s.map((x) => x.cores)),
        instructions: s[s.length - 1].instructions,
        instructionsPerVcpu: s[s.length - 1].perVcpu,
        /** Median of this row's MIPS over the 1-vCPU row's of the same round. */
        speedUp: base >= 0 ? median(s.map((x, i) => x.mips / samples[base][i].mips)) : undefined,
        /** This row's median MIPS over the 1-vCPU row's median. */
        speedUpOfMedians: base >= 0 ? mips / median(samples[base].map((x) => x.mips)) : undefined,
        samples: s,
      };
    });
    return {
      iterationsPerVcpu: iters,
      /** How long all of this took, warm-ups included. */
      benchSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      rows: figures.filter((f) => f.kind === 'smp'),
      separate: figures.find((f) => f.kind === 'separate'),
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

/**
 * `npm run bench`: the benchmark table. Each figure is the median of several runs.
 *
 * - bare MIPS: the CPU-bound workload (bench/workload, built as guest-images/build/bench.elf) on the bare
 *   machine, with the block compiler (the default) and with the interpreter alone. The emulator counts retired instructions, so MIPS is exact; a run with iters=0 is subtracted
 *   to remove start-up.
 * - native: the same workload as a 32-bit Linux program (when `gcc -m32` can build it), for the ratio
 *   to the hardware; its instruction count per iteration is the emulator's (the same code).
 * - QEMU: qemu-system-i386 (TCG) on the same bare kernel, when installed.
 * - GC: garbage collections and heap growth during a long bare run (the hot loop allocates nothing).
 * - lguest (bench/lguest.ts): the same workload as an lguest guest (bench-lguest, 2-level and PAE) next to
 *   bare mode, with the ratio; guest context switches, page faults fixed and hypercall round trips per
 *   second (bench-switch, bench-fault, bench-hcall); how SMP guests scale (bench-smp: the workload on every
 *   vCPU at once, at --cpus 1, 2 and 4); and `lguest-ts run` as a user starts it: time to the guest's first
 *   console byte and peak RSS. See bench/README.md.
 *
 * - start-up (bench/startup.ts): `lguest-ts run hello` to its first console byte and its peak RSS, from the
 *   build and from the sources, and `npm start`, each the median over --startup-runs new processes.
 *
 * Options: --iters N (default 2000; bench-smp runs N/2 per vCPU), --runs N (default 3), --startup-runs N
 * (default 7), --json FILE (default bench/results/latest.json), --smp-cpus LIST (default 1,2,4), --skip LIST
 * (any of interp, native, qemu, lguest, pae, micro, smp, cli, startup). Benchmarks are not tests: nothing in npm test asserts a
 * time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { BareMachine, kernelCommandLine } from '../launcher/bare.ts';
import { ExitReason } from '../emulator/exits.ts';
import { cliFigures, counters, LguestBench } from './lguest.ts';
import { startupFigures, startupRows } from './startup.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_ELF = join(ROOT, 'guest-images/build/bench.elf');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : def;
}

const ITERS = Number(arg('iters', '2000'));
const RUNS = Number(arg('runs', '3'));
const JSON_OUT = arg('json', join(ROOT, 'bench/results/latest.json'));
const SKIP = new Set(arg('skip', '').split(',').filter(Boolean));
/** Processes per start-up figure (bench/startup.ts): each a median with its spread. */
const STARTUP_RUNS = Number(arg('startup-runs', '7'));
/** bench-smp's vCPU counts (1 is the base of the speed-up), and its iterations per vCPU. */
const SMP_CPUS = arg('smp-cpus', '1,2,4').split(',').map(Number);
const SMP_ITERS = Math.max(1, Math.floor(ITERS / 2));
if (!Number.isInteger(ITERS) || ITERS < 1 || !Number.isInteger(RUNS) || RUNS < 1 || !Number.isInteger(STARTUP_RUNS) || STARTUP_RUNS < 1) {
  process.stderr.write('bench: --iters, --runs and --startup-runs must be positive integers\n');
  process.exit(2);
}
if (SMP_CPUS.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) {
  process.stderr.write('bench: --smp-cpus takes vCPU counts from 1 to 8, separated by commas\n');
  process.exit(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface BareRun { instructions: number; seconds: number; cpuSeconds: number; output: string }

/** One bare run of bench.elf with `iters`, timed around the run loop only. */
function bareRun(iters: number, interpretOnly = false): BareRun {
  const image = readFileSync(BENCH_ELF);
  const m = new BareMachine(image, { memMiB: 32, cmdline: kernelCommandLine('bench.elf', `iters=${iters}`), what: 'bench.elf' });
  if (interpretOnly) m.cpu.jitThreshold = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let reason: ExitReason;
  do reason = m.run(1 << 22); while (reason === ExitReason.Budget);
  const cpu = process.cpuUsage(c0);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const output = Buffer.from(m.takeOutput()).toString('latin1');
  if (reason !== ExitReason.DeviceStop || !output.includes('PASS')) {
    throw new Error(`bench.elf iters=${iters} did not pass (exit ${reason}): ${output.slice(-200)}`);
  }
  return { instructions: m.cpu.retired, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, output };
}

function bareFigures(interpretOnly: boolean) {
  bareRun(ITERS, interpretOnly); // warm-up: let V8 optimise the interpreter and the compiled blocks first
  const zero = bareRun(0, interpretOnly);
  const runs: { mips: number; cpuMips: number }[] = [];
  let perIter = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = bareRun(ITERS, interpretOnly);
    const insns = r.instructions - zero.instructions;
    perIter = insns / ITERS;
    runs.push({ mips: insns / (r.seconds - zero.seconds) / 1e6, cpuMips: insns / (r.cpuSeconds - zero.cpuSeconds) / 1e6 });
  }
  return {
    mips: median(runs.map((r) => r.mips)),
    cpuMips: median(runs.map((r) => r.cpuMips)),
    instructionsPerIteration: perIter,
    startupInstructions: zero.instructions,
  };
}

/** Garbage collections and heap growth while the interpreter runs a long workload. */
function gcFigures() {
  let collections = 0;
  let gcMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { collections++; gcMs += e.duration; }
  });
  bareRun(20);
  const before = process.memoryUsage();
  obs.observe({ entryTypes: ['gc'] });
  const r = bareRun(ITERS);
  obs.disconnect();
  const after = process.memoryUsage();
  return {
    instructions: r.instructions,
    collections,
    gcMs,
    heapGrowthBytes: after.heapUsed - before.heapUsed,
    rssBytes: after.rss,
  };
}

function nativeFigures(perIter: number) {
  if (SKIP.has('native')) return { skipped: 'skipped by --skip' };
  const dir = join(ROOT, 'bench/workload');
  const bin = join(dir, 'native');
  if (!existsSync(bin)) {
    const r = spawnSync('make', ['-C', dir, 'native'], { encoding: 'utf8' });
    if (r.status !== 0 || !existsSync(bin)) return { skipped: 'cannot build a 32-bit Linux program here (apt-get install gcc-multilib)' };
  }
  const n = Math.max(ITERS * 50, 20000);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const out = execFileSync(bin, [String(n)], { encoding: 'utf8' });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (!/PASS|checksum/.test(out)) return { skipped: `native run did not report a result: ${out.slice(0, 100)}` };
  }
  return { iterations: n, seconds: median(times), mips: (perIter * n) / median(times) / 1e6 };
}

function qemuFigures(perIter: number) {
  if (SKIP.has('qemu')) return { skipped: 'skipped by --skip' };
  if (spawnSync('qemu-system-i386', ['--version']).status !== 0) return { skipped: 'qemu-system-i386 is not installed' };
  const n = Math.max(ITERS * 10, 5000);
  const run = (iters: number) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('qemu-system-i386', ['-kernel', BENCH_ELF, '-append', `iters=${iters}`, '-display', 'none', '-no-reboot',
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-chardev', 'stdio,id=dbg', '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
      '-serial', 'none', '-monitor', 'none', '-m', '32'], { encoding: 'utf8', timeout: 600_000 });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!r.stdout.includes('PASS')) throw new Error(`QEMU run did not pass: ${r.stdout.slice(-200)} ${r.stderr.slice(-200)}`);
    return s;
  };
  const zero = median(Array.from({ length: RUNS }, () => run(0)));
  const full = median(Array.from({ length: RUNS }, () => run(n)));
  return { iterations: n, seconds: full - zero, mips: (perIter * n) / (full - zero) / 1e6 };
}

/** Bare MIPS of one run with ITERS, for the paired lguest/bare ratio (start-up is a few thousand
 *  instructions and microseconds, so it is not subtracted here). */
function bareSample(): number {
  const r = bareRun(ITERS);
  return r.instructions / r.seconds / 1e6;
}

/** Counts for the micro-benchmark guests: each N run takes about half a second here. */
const MICRO = { switches: 4000, faults: 40000, calls: 50000 };

type Skipped = { skipped: string };
type WorkloadFigures = Awaited<ReturnType<LguestBench['workloadMips']>>;
type RateFigures = Awaited<ReturnType<LguestBench['rate']>>;
type SmpFigures = Awaited<ReturnType<LguestBench['smpScaling']>>;
interface LguestFigures {
  workload: WorkloadFigures;
  pae: WorkloadFigures | Skipped;
  micro: { contextSwitches: RateFigures; pageFaultsFixed: RateFigures; hypercalls: RateFigures } | Skipped;
  smp: SmpFigures | Skipped;
}

async function lguestFigures(): Promise<LguestFigures | Skipped> {
  if (SKIP.has('lguest')) return { skipped: 'skipped by --skip' };
  const b = new LguestBench(RUNS);
  try {
    const workload = await b.workloadMips(ITERS, false, bareSample);
    const pae = SKIP.has('pae') ? { skipped: 'skipped by --skip' } : await b.workloadMips(ITERS, true);
    const micro = SKIP.has('micro') ? { skipped: 'skipped by --skip' } : {
      contextSwitches: await b.rate('bench-switch', 'switches', MICRO.switches, counters.newPgtable),
      pageFaultsFixed: await b.rate('bench-fault', 'faults', MICRO.faults, counters.faultsFixed),
      hypercalls: await b.rate('bench-hcall', 'calls', MICRO.calls, counters.sendInterrupts),
    };
    // The control: as many separate 1-vCPU guests at once as there are cores (at most the most vCPUs).
    const smp = SKIP.has('smp') ? { skipped: 'skipped by --skip' }
      : await b.smpScaling(SMP_ITERS, SMP_CPUS, Math.min(availableParallelism(), Math.max(...SMP_CPUS)));
    return { workload, pae, micro, smp };
  } finally {
    await b.destroy();
  }
}

const loadBefore = loadavg();
const started = process.hrtime.bigint();
const bare = bareFigures(false);
const interp = SKIP.has('interp') ? undefined : bareFigures(true);
const gc = gcFigures();
const native = nativeFigures(bare.instructionsPerIteration);
const qemu = qemuFigures(bare.instructionsPerIteration);
const lguest = await lguestFigures();
const cli = SKIP.has('cli') ? { skipped: 'skipped by --skip' } : await cliFigures(ROOT, Math.max(100, Math.floor(ITERS / 4)), RUNS);
const startup = SKIP.has('startup') ? { skipped: 'skipped by --skip' } : await startupFigures(ROOT, STARTUP_RUNS);
const result = {
  date: new Date().toISOString(),
  node: process.version,
  /** 1-, 5- and 15-minute load averages before and after (2 CPUs here: above 2 means other jobs ran too). */
  loadAverage: { before: loadBefore, after: loadavg() },
  benchSeconds: Number(process.hrtime.bigint() - started) / 1e9,
  iterations: ITERS,
  runs: RUNS,
  bare,
  interpreterOnly: interp ?? { skipped: 'skipped by --skip' },
  gc,
  native,
  qemu,
  lguest,
  cli,
  startup,
};

const fmt = (x: number) => x.toFixed(1);
const rows: [string, string, string][] = [
  ['lguest-ts bare', `${fmt(bare.mips)} MIPS`, `interpreter + block compiler (${fmt(bare.cpuMips)} MIPS per CPU-second)`],
  interp
    ? ['lguest-ts bare, interpreter only', `${fmt(interp.mips)} MIPS`, `block compiler off (${fmt(interp.cpuMips)} MIPS per CPU-second)`]
    : ['lguest-ts bare, interpreter only', '-', 'skipped by --skip'],
];
if ('mips' in native && native.mips !== undefined) rows.push(['native (gcc -m32)', `${fmt(native.mips)} MIPS`, `lguest-ts is 1/${fmt(native.mips / bare.mips)} of native`]);
else rows.push(['native (gcc -m32)', '-', (native as { skipped: string }).skipped]);
if ('mips' in qemu && qemu.mips !== undefined) rows.push(['QEMU TCG (bare kernel)', `${fmt(qemu.mips)} MIPS`, `lguest-ts is 1/${fmt(qemu.mips / bare.mips)} of QEMU`]);
else rows.push(['QEMU TCG (bare kernel)', '-', (qemu as { skipped: string }).skipped]);
const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');
if ('workload' in lguest) {
  const w = lguest.workload;
  const ratio = w.mips / bare.mips;
  rows.push(['lguest guest (bench-lguest)', `${fmt(w.mips)} MIPS`,
    `${(ratio * 100).toFixed(0)}% of bare (paired runs: ${((w.pairedRatioToBare ?? ratio) * 100).toFixed(0)}%; the goal is >= 90%), ${fmt(w.cpuMips)} MIPS per CPU-second`]);
  if ('mips' in lguest.pae) rows.push(['lguest guest, PAE', `${fmt(lguest.pae.mips)} MIPS`, `${(lguest.pae.mips / bare.mips * 100).toFixed(0)}% of bare`]);
  else rows.push(['lguest guest, PAE', '-', lguest.pae.skipped]);
  if ('contextSwitches' in lguest.micro) {
    const m = lguest.micro;
    rows.push(['guest context switches', `${fmtInt(m.contextSwitches.perSecond)}/s`,
      `${fmtInt(m.contextSwitches.perCpuSecond)} per CPU-second; bench-switch: 8 ring-3 address spaces, 4 cached shadows, ${fmt(m.contextSwitches.faultsFixedPerEvent)} faults fixed per switch`]);
    rows.push(['guest page faults fixed', `${fmtInt(m.pageFaultsFixed.perSecond)}/s`,
      `${fmtInt(m.pageFaultsFixed.perCpuSecond)} per CPU-second; bench-fault: one write to each of N not-yet-accessed pages`]);
    rows.push(['hypercall round trips', `${fmtInt(m.hypercalls.perSecond)}/s`,
      `${fmtInt(m.hypercalls.perCpuSecond)} per CPU-second; bench-hcall: synchronous SEND_INTERRUPTS in a loop`]);
  } else rows.push(['guest micro-benchmarks', '-', lguest.micro.skipped]);
  if ('rows' in lguest.smp) {
    const cores = availableParallelism();
    const speedUp = (r: { speedUp?: number; speedUpOfMedians?: number }) => r.speedUp === undefined ? 'no 1-vCPU row'
      : `x${r.speedUp.toFixed(2)} over 1 vCPU (paired; medians: x${r.speedUpOfMedians!.toFixed(2)})`;
    for (const r of lguest.smp.rows) {
      const over = r.cpus > cores ? ` ${r.cpus} vCPU threads on ${cores} cores;` : '';
      rows.push([`bench-smp, ${r.cpus} vCPU${r.cpus > 1 ? 's' : ''}`, `${fmt(r.mips)} MIPS`,
        `${speedUp(r)};${over} ${fmt(r.instructions / 1e6)}M instructions in ${r.seconds.toFixed(2)} s, ${r.cores.toFixed(1)} cores busy, ${fmt(r.cpuMips)} MIPS per CPU-second`]);
    }
    const c = lguest.smp.separate;
    if (c) {
      rows.push([`${c.cpus} separate 1-vCPU guests`, `${fmt(c.mips)} MIPS`,
        `${speedUp(c)}; the control: bench-lguest x${c.cpus} at once, no SMP; ${fmt(c.instructions / 1e6)}M instructions in ${c.seconds.toFixed(2)} s, ${c.cores.toFixed(1)} cores busy, ${fmt(c.cpuMips)} MIPS per CPU-second`]);
    }
  } else rows.push(['bench-smp (SMP scaling)', '-', lguest.smp.skipped]);
} else rows.push(['lguest guest', '-', lguest.skipped]);
if ('firstByteSeconds' in cli) {
  rows.push(['run to first console byte', `${(cli.firstByteSeconds * 1000).toFixed(0)} ms`, `lguest-ts run bench-lguest (new process, --mem 64); exits after ${fmt(cli.exitSeconds)} s with iters=${cli.iterations}`]);
  rows.push(['peak RSS of that run', cli.peakRssBytes !== undefined ? `${(cli.peakRssBytes / 1048576).toFixed(0)} MiB` : '-', cli.peakRssNote ?? 'GNU time %M (the process, worker thread included)']);
} else rows.push(['lguest-ts run (CLI)', '-', cli.skipped]);
if ('hello' in startup) rows.push(...startupRows(startup));
else rows.push(['start-up (run hello, npm start)', '-', startup.skipped]);
process.stdout.write(`workload: ${fmt(bare.instructionsPerIteration)} instructions per iteration, ${ITERS} iterations (bench-smp: ${SMP_ITERS} on each vCPU), median of ${RUNS}\n`);
process.stdout.write(`load average ${result.loadAverage.before.map((x) => x.toFixed(1)).join(' ')} before, ${result.loadAverage.after.map((x) => x.toFixed(1)).join(' ')} after; ${result.benchSeconds.toFixed(0)} s\n\n`);
for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(32)} ${b.padStart(14)}   ${c}\n`);
process.stdout.write(`\nGC during ${(gc.instructions / 1e6).toFixed(0)}M instructions: ${gc.collections} collections (${fmt(gc.gcMs)} ms), heap growth ${(gc.heapGrowthBytes / 1024).toFixed(0)} KiB, rss ${(gc.rssBytes / 1048576).toFixed(0)} MiB\n`);
mkdirSync(dirname(JSON_OUT), { recursive: true });
writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`wrote ${JSON_OUT}\n`);

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
 *
 * Options: --iters N (default 2000), --runs N (default 3), --json FILE (default bench/results/latest.json),
 * --skip native,qemu. Benchmarks are not tests: nothing in npm test asserts a time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { BareMachine, kernelCommandLine } from '../launcher/bare.ts';
import { ExitReason } from '../emulator/exits.ts';

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
if (!Number.isInteger(ITERS) || ITERS < 1 || !Number.isInteger(RUNS) || RUNS < 1) {
  process.stderr.write('bench: --iters and --runs must be positive integers\n');
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

const bare = bareFigures(false);
const interp = bareFigures(true);
const gc = gcFigures();
const native = nativeFigures(bare.instructionsPerIteration);
const qemu = qemuFigures(bare.instructionsPerIteration);
const result = {
  date: new Date().toISOString(),
  node: process.version,
  iterations: ITERS,
  runs: RUNS,
  bare,
  interpreterOnly: interp,
  gc,
  native,
  qemu,
  lguest: { skipped: 'the lguest guest build of the workload is not there yet' },
};

const fmt = (x: number) => x.toFixed(1);
const rows: [string, string, string][] = [
  ['lguest-ts bare', `${fmt(bare.mips)} MIPS`, `interpreter + block compiler (${fmt(bare.cpuMips)} MIPS per CPU-second)`],
  ['lguest-ts bare, interpreter only', `${fmt(interp.mips)} MIPS`, `block compiler off (${fmt(interp.cpuMips)} MIPS per CPU-second)`],
];
if ('mips' in native && native.mips !== undefined) rows.push(['native (gcc -m32)', `${fmt(native.mips)} MIPS`, `lguest-ts is 1/${fmt(native.mips / bare.mips)} of native`]);
else rows.push(['native (gcc -m32)', '-', (native as { skipped: string }).skipped]);
if ('mips' in qemu && qemu.mips !== undefined) rows.push(['QEMU TCG (bare kernel)', `${fmt(qemu.mips)} MIPS`, `lguest-ts is 1/${fmt(qemu.mips / bare.mips)} of QEMU`]);
else rows.push(['QEMU TCG (bare kernel)', '-', (qemu as { skipped: string }).skipped]);
rows.push(['lguest guest', '-', result.lguest.skipped]);
process.stdout.write(`workload: ${fmt(bare.instructionsPerIteration)} instructions per iteration, ${ITERS} iterations, median of ${RUNS}\n\n`);
for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(30)} ${b.padStart(14)}   ${c}\n`);
process.stdout.write(`\nGC during ${(gc.instructions / 1e6).toFixed(0)}M instructions: ${gc.collections} collections (${fmt(gc.gcMs)} ms), heap growth ${(gc.heapGrowthBytes / 1024).toFixed(0)} KiB, rss ${(gc.rssBytes / 1048576).toFixed(0)} MiB\n`);
mkdirSync(dirname(JSON_OUT), { recursive: true });
writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`wrote ${JSON_OUT}\n`);

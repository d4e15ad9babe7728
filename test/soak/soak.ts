/**
 * The soak: the fuzz-soak guest (guest-images/lguest/guests/fuzz-soak.c) booted again and again, in
 * long boots that make hostile acts the Host must survive, in a loop (mode=soak), and in short boots
 * that each end with one potentially fatal act (mode=fatal), until a number of hostile acts or a time is
 * reached. Every boot goes through test/soak/boot.ts (canaries, pool and shadow balance, wall bound).
 *
 *   npm run soak -- --minutes N        soak for N minutes (at least one pass over every fatal act)
 *   npm run soak -- --acts N           soak until N hostile acts were made
 *   options: --seed S (first seed, default 1), --boot-acts N (acts per soak boot, default 100000),
 *            --fatal A,B (only these fatal acts; "" for none), --verbose (one line per boot)
 *   FUZZ_KNOWN_BUGS=all (or a list of gates, test/soak/acts.ts) also runs the acts that find Host bugs
 *   known and not fixed yet.
 *
 * The summary counts the hostile acts and their fates: survived (the Host accepted or ignored the act),
 * reflected (a fault or trap handed back to the guest), killed for the right reason. It fails (exit
 * status 1, every problem listed with the command that reproduces it) on any Host exception or worker
 * failure, a leaked frame or pool page, a changed canary byte, a hang, a kill for no act or the wrong
 * reason, an act the Host must refuse that it let pass, or a check of the guest's own that failed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_DIR } from '../../launcher/images.ts';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bareReason, FATAL_ACTS, gateOpen, parseConsole, TALLY_FATES } from './acts.ts';
import { soakBoot, type SoakBootResult } from './boot.ts';

export interface SoakOptions {
  /** Stop when this many hostile acts were made (after the pass over the fatal acts). */
  acts?: number;
  /** Or when this much time has passed. */
  minutes?: number;
  seed?: number;
  bootActs?: number;
  log?: (line: string) => void;
  verbose?: boolean;
  /** Only these fatal acts (default: every act whose gate is open); [] for none. */
  fatalActs?: string[];
}

export interface SoakSummary {
  acts: number;
  fates: { survived: number; reflected: number; killed: number };
  byKind: Record<string, number>;
  killsByAct: Record<string, number>;
  boots: { soak: number; fatal: number };
  instructions: number;
  exits: number;
  problems: string[];
  ms: number;
}

const MEM_MIB = 16;
/** Wall-time bounds per boot (a hang): generous, as a machine shared by many may run a boot at a tenth
 *  of a core; a boot on an idle core takes a tenth of it. */
const SOAK_WALL_MS = 60_000;
const FATAL_WALL_MS = 60_000;
const images = {
  false: readFileSync(join(IMAGE_DIR, 'fuzz-soak.elf')),
  true: readFileSync(join(IMAGE_DIR, 'fuzz-soak-pae.elf')),
};

interface Job { mode: 'soak' | 'fatal'; seed: number; cpus: number; pae: boolean; rng: boolean; act?: string; acts?: number }

function cmdline(j: Job): string {
  // tssjmp=1: the ring-3 far jump to a DPL-0 TSS (gate tss-jmp: the CPU ends the run instead of #GP)
  // (fixed with issue 10 defect 9: #GP(0x80) now, as the i386 raises; always on)
  const tss = ' tssjmp=1';
  return j.mode === 'soak' ? `seed=${j.seed} acts=${j.acts} mode=soak${tss}` : `seed=${j.seed} mode=fatal act=${j.act}${tss}`;
}

export function reproduce(j: Job): string {
  return `lguest-ts run guest-images/build/fuzz-soak${j.pae ? '-pae' : ''}.elf${j.pae ? ' --pae' : ''} --mem ${MEM_MIB}` +
    `${j.cpus > 1 ? ` --cpus ${j.cpus}` : ''}${j.rng ? ' --rng' : ''} --cmdline "${cmdline(j)}"`;
}

/** The boot's problems (empty: a known, right fate). */
function judge(j: Job, r: SoakBootResult): { problems: string[]; killedFor?: string; fatalActs: number } {
  const p: string[] = [];
  if (r.error) p.push(`Host exception or worker failure: ${r.error}`);
  if (r.hung) p.push(`hang: still running after the wall-time bound (${r.ms} ms)`);
  if (r.canary) p.push(`access outside guest memory: ${r.canary}`);
  if (r.fate && r.leakedFrames === undefined) p.push('the shadow was not torn down (a vCPU never left)');
  if (r.leakedFrames !== undefined && r.leakedFrames !== 0) p.push(`leaked ${r.leakedFrames} shadow frames`);
  if (r.fate && r.poolInUse > r.poolAllowed) p.push(`${r.poolInUse} Host pool pages still in use after the teardown (at most ${r.poolAllowed})`);
  const c = parseConsole(r.console);
  for (const f of c.fails) p.push(`the guest's own check failed: ${f}`);
  const f = r.fate;
  if (!f || r.error || r.hung) return { problems: p, fatalActs: 0 };
  if (j.mode === 'soak') {
    if (f.kind !== 'poweroff') p.push(`a soak boot (only survivable acts) ended ${f.kind}: ${f.reason}`);
    else if (!c.done) p.push('a soak boot powered off without its tally');
    return { problems: p, fatalActs: 0 };
  }
  // fatal: the last act announced and not survived is the one a kill must belong to
  let pending: string | undefined;
  let announced = 0;
  for (const a of c.acts) {
    if (a.what === 'fatal') { pending = a.kind; announced++; }
    else if (a.kind === pending) pending = undefined;
  }
  const act = FATAL_ACTS[j.act!];
  if (f.kind === 'killed') {
    const reason = bareReason(f.reason);
    if (pending === undefined) p.push(`killed for no act (none announced or pending): ${f.reason}`);
    else if (act.survive) p.push(`killed for ${pending}, an act a valid guest makes: ${f.reason}`);
    else if (!FATAL_ACTS[pending].reasons.some((re) => re.test(reason))) p.push(`killed for the wrong reason after ${pending}: ${f.reason}`);
    return { problems: p, killedFor: pending, fatalActs: announced };
  }
  if (f.kind !== 'poweroff') {
    p.push(`a fatal-act boot ended ${f.kind}: ${f.reason}`);
    return { problems: p, fatalActs: announced };
  }
  if (!c.skipped && announced === 0) p.push(`the act ${j.act} was never made`);
  const must = act.must === true || (act.must === '2level' && !j.pae) || (act.must === 'pae' && j.pae);
  if (must && announced > 0) p.push(`the Host let ${j.act} pass, an act it must refuse`);
  return { problems: p, fatalActs: announced };
}

function fatalJobs(seed: number, pae: boolean, only?: string[]): Job[] {
  const jobs: Job[] = [];
  for (const [name, act] of Object.entries(FATAL_ACTS)) {
    if (only ? !only.includes(name) : !gateOpen(act.gate)) continue;
    if (act.needs?.pae && !pae) continue;
    const cpus = act.needs?.cpus ?? 1 + (seed % 2);
    jobs.push({ mode: 'fatal', act: name, seed: seed++, cpus, pae, rng: act.needs?.rng ?? seed % 3 === 0 });
  }
  return jobs;
}

const SOAK_SHAPES: Array<{ cpus: number; pae: boolean; rng: boolean }> = [
  { cpus: 1, pae: false, rng: true },
  { cpus: 2, pae: true, rng: false },
  { cpus: 1, pae: true, rng: true },
  { cpus: 2, pae: false, rng: true },
];

/** Run jobs on a pool of two workers: two 1-vCPU boots at once, or one 2-vCPU boot. */
export async function runSoak(o: SoakOptions = {}): Promise<SoakSummary> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = Date.now();
  const until = o.minutes !== undefined ? t0 + o.minutes * 60_000 : undefined;
  const target = o.acts ?? (until === undefined ? 1_000_000 : Infinity);
  const bootActs = o.bootActs ?? 100_000;
  let seed = o.seed ?? 1;
  const s: SoakSummary = {
    acts: 0, fates: { survived: 0, reflected: 0, killed: 0 }, byKind: {}, killsByAct: {},
    boots: { soak: 0, fatal: 0 }, instructions: 0, exits: 0, problems: [], ms: 0,
  };
  let workers = new VcpuWorkers(2);
  let free = 2;
  const waiters: Array<() => void> = [];
  const take = async (n: number) => { while (free < n) await new Promise<void>((res) => waiters.push(res)); free -= n; };
  const give = (n: number) => { free += n; for (const w of waiters.splice(0)) w(); };

  const runJob = async (j: Job) => {
    await take(j.cpus);
    let r: SoakBootResult;
    try {
      r = await soakBoot({
        image: images[`${j.pae}`], name: 'fuzz-soak', memMiB: MEM_MIB, cpus: j.cpus, pae: j.pae, rng: j.rng,
        cmdline: cmdline(j), wallMs: j.mode === 'soak' ? SOAK_WALL_MS + 0.5 * (j.acts ?? 0) : FATAL_WALL_MS,
      }, workers);
    } finally {
      give(j.cpus);
    }
    if (r.wedged) {
      // a worker stuck for good: start a fresh pool (the stuck thread is terminated with the old one)
      const old = workers;
      workers = new VcpuWorkers(2);
      void old.destroy();
    }
    const { problems, killedFor, fatalActs } = judge(j, r);
    for (const p of problems) s.problems.push(`${p}\n    reproduce: ${reproduce(j)}`);
    s.instructions += r.instructions;
    s.exits += r.exits;
    if (j.mode === 'soak') {
      s.boots.soak++;
      const c = parseConsole(r.console);
      for (const [k, n] of Object.entries(c.tally)) {
        const fate = TALLY_FATES[k];
        if (fate === undefined) s.problems.push(`unknown tally counter ${k}`);
        if (!fate) continue;
        s.byKind[k] = (s.byKind[k] ?? 0) + n;
        s.fates[fate] += n;
        s.acts += n;
      }
    } else {
      s.boots.fatal++;
      s.acts += fatalActs;
      if (killedFor && problems.length === 0) {
        s.fates.killed++;
        s.killsByAct[killedFor] = (s.killsByAct[killedFor] ?? 0) + 1;
      } else if (fatalActs > 0) {
        s.fates.survived += fatalActs;
      }
    }
    if (o.verbose) log(`soak: ${j.mode} ${j.act ?? ''} seed ${j.seed} cpus ${j.cpus}${j.pae ? ' pae' : ''}: ${r.fate?.kind ?? 'error'} ${r.fate?.reason ?? r.error ?? ''} (${r.ms} ms)`);
  };

  // A problem ends the soak after the cycle it was found in (its boots all report).
  // Warm both workers up (each loads the Host's modules on its first boot), outside the wall bounds.
  for (const w of await Promise.all([0, 1].map(() => soakBoot({
    image: images.false, name: 'fuzz-soak', memMiB: MEM_MIB, cpus: 1, pae: false, cmdline: 'mode=fatal act=reinit',
    wallMs: 300_000,
  }, workers)))) if (w.error) s.problems.push(`the warm-up boot failed: ${w.error}`);
  const enough = () => s.problems.length > 0 || s.acts >= target || (until !== undefined && Date.now() >= until);
  try {
    let pass = 0;
    // Each cycle: one soak boot (the shapes in turn). The first cycle always completes, so even a short
    // soak tries every fatal act.
    do {
      const jobs: Job[] = [];
      const shape = SOAK_SHAPES[pass % SOAK_SHAPES.length];
      jobs.push({ mode: 'soak', seed: seed++, acts: bootActs, ...shape });
      // The fatal acts: both paging modes in the first cycle; in a timed soak, again every 8 cycles.
      if (pass === 0 || (until !== undefined && pass % 8 === 0)) {
        for (const pae of [false, true]) {
          const fj = fatalJobs(seed, pae, o.fatalActs);
          seed += fj.length;
          jobs.push(...fj);
        }
      }
      pass++;
      let next = 0;
      await Promise.all([0, 1].map(async () => {
        while (next < jobs.length) await runJob(jobs[next++]);
      }));
      if (!o.verbose) log(`soak: ${s.acts.toLocaleString('en-US')} hostile acts, ${s.boots.soak} soak boots, ${s.boots.fatal} fatal-act boots, ${s.problems.length} problems, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    } while (!enough());
  } finally {
    await workers.destroy();
  }
  s.ms = Date.now() - t0;
  return s;
}

export function formatSummary(s: SoakSummary): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `soak: ${n(s.acts)} hostile actions in ${(s.ms / 1000).toFixed(1)} s (${s.boots.soak} soak boots, ${s.boots.fatal} fatal-act boots, ${n(s.instructions)} guest instructions, ${n(s.exits)} exits to the Host)`,
    `  fates: ${n(s.fates.survived)} survived, ${n(s.fates.reflected)} reflected to the guest, ${n(s.fates.killed)} killed for the right reason`,
    `  by kind: ${Object.entries(s.byKind).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`,
    `  kills by act: ${Object.entries(s.killsByAct).sort().map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`,
    s.problems.length === 0 ? '  problems: none (no Host exception, worker failure, leak, canary damage, hang or wrong kill)' : `  PROBLEMS (${s.problems.length}):`,
    ...s.problems.slice(0, 50).map((p) => `  - ${p}`),
  ];
  return lines.join('\n');
}

function parseArgs(argv: string[]): SoakOptions {
  const o: SoakOptions = {};
  const num = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (argv[i + 1] === undefined || !Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--minutes') o.minutes = num(i++, a);
    else if (a === '--acts') o.acts = num(i++, a);
    else if (a === '--seed') o.seed = num(i++, a);
    else if (a === '--boot-acts') o.bootActs = num(i++, a);
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--fatal') {
      o.fatalActs = (argv[++i] ?? '').split(',').filter((x) => x !== '');
      for (const f of o.fatalActs) if (!(f in FATAL_ACTS)) throw new Error(`--fatal: no act ${f} (test/soak/acts.ts lists them)`);
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run soak -- [--minutes N | --acts N] [--seed S] [--boot-acts N] [--fatal A,B] [--verbose]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a} (npm run soak -- --help)`);
  }
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let opts: SoakOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\n`);
    process.exit(2);
  }
  runSoak(opts).then((s) => {
    process.stdout.write(formatSummary(s) + '\n');
    process.exit(s.problems.length === 0 ? 0 : 1);
  }, (e) => {
    process.stderr.write(`soak: internal error: ${(e as Error).message}\n`);
    process.exit(70);
  });
}

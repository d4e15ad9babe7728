/**
 * Start-up as a user meets it (issue 13, part 3), for `npm run bench`: each sample a new process, each
 * figure the median over `runs` processes with the spread (min-max), the commands interleaved round by
 * round so that a change in the machine's load hits all of them alike.
 *
 * - `lguest-ts run hello` (`node launcher/bin.mjs run hello`, default --mem 64) as built by `npm install`
 *   (dist/): the time from spawning it to the first byte on its stdout and to its exit, its peak resident
 *   set and its CPU time (GNU time's %M, %U + %S: the process, worker threads included).
 * - the same from the sources through tsx (`LGUEST_TS_SOURCE=1`): what the build saves.
 * - `npm start` (the bare demo kernel): the wall time from spawning npm to its exit, npm's own start-up
 *   included.
 *
 * The build is brought up to date first (scripts/build.mjs --if-needed), or the first rows would measure
 * tsx.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildIsCurrent } from '../launcher/build-state.mjs';

const TIME = '/usr/bin/time';

export interface Spread { median: number; min: number; max: number }
interface Sample { firstByteMs: number; exitMs: number; rssKiB?: number; cpuMs?: number }

const spread = (xs: number[]): Spread => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};

/** Spawn a command (under GNU time when it is installed) and time it. */
function sample(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, check: (stdout: string) => boolean): Promise<Sample> {
  const useTime = existsSync(TIME);
  const [c, a] = useTime ? [TIME, ['-f', 'lguest-startup %M %U %S', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let first = -1;
    let stdout = '', stderr = '';
    const p = spawn(c, a, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d: Buffer) => {
      if (first < 0) first = ms();
      stdout += d.toString('latin1');
    });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString('latin1'); });
    p.on('error', reject);
    p.on('close', (status) => {
      const exitMs = ms();
      if (status !== 0 || !check(stdout)) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${status}: ${stdout.slice(-200)} ${stderr.slice(-300)}`));
        return;
      }
      const m = /lguest-startup (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
      resolve({ firstByteMs: first, exitMs, rssKiB: m ? Number(m[1]) : undefined, cpuMs: m ? (Number(m[2]) + Number(m[3])) * 1000 : undefined });
    });
  });
}

export interface StartupRow { firstByteMs: Spread; exitMs: Spread; rssMiB?: Spread; cpuMs?: Spread }

function row(samples: Sample[]): StartupRow {
  const rss = samples.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
  const cpu = samples.map((s) => s.cpuMs).filter((x): x is number => x !== undefined);
  return {
    firstByteMs: spread(samples.map((s) => s.firstByteMs)),
    exitMs: spread(samples.map((s) => s.exitMs)),
    rssMiB: rss.length ? spread(rss.map((k) => k / 1024)) : undefined,
    cpuMs: cpu.length ? spread(cpu) : undefined,
  };
}

export async function startupFigures(root: string, runs: number) {
  const rebuilt = !buildIsCurrent(root);
  if (rebuilt) execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-needed'], { cwd: root, stdio: 'inherit' });
  const bin = join(root, 'launcher/bin.mjs');
  const env = { ...process.env, LGUEST_TS_SOURCE: '' };
  const hello = (s: string) => s.includes('hello: done');
  const samples = { build: [] as Sample[], source: [] as Sample[], npmStart: [] as Sample[] };
  for (let i = 0; i < runs; i++) {
    samples.build.push(await sample(root, process.execPath, [bin, 'run', 'hello'], env, hello));
    samples.source.push(await sample(root, process.execPath, [bin, 'run', 'hello'], { ...env, LGUEST_TS_SOURCE: '1' }, hello));
    samples.npmStart.push(await sample(root, 'npm', ['start', '--silent'], env, (s) => s.includes('goodbye')));
  }
  return {
    runs,
    build: rebuilt ? 'rebuilt by the bench' : 'current',
    hello: row(samples.build),
    helloFromSources: row(samples.source),
    npmStart: row(samples.npmStart),
    peakRssNote: existsSync(TIME) ? undefined : `${TIME} (GNU time) is not installed`,
  };
}

/** The rows of the bench table. */
export function startupRows(f: Awaited<ReturnType<typeof startupFigures>>): [string, string, string][] {
  const ms = (s: Spread) => `${s.min.toFixed(0)}-${s.max.toFixed(0)} ms`;
  const cpu = (r: StartupRow) => r.cpuMs ? `, CPU ${r.cpuMs.median.toFixed(0)} ms (${ms(r.cpuMs)})` : '';
  const n = `${f.runs} processes`;
  return [
    ['run hello: first console byte', `${f.hello.firstByteMs.median.toFixed(0)} ms`,
      `lguest-ts run hello (--mem 64), compiled build; spread ${ms(f.hello.firstByteMs)} over ${n}; exits after ${f.hello.exitMs.median.toFixed(0)} ms${cpu(f.hello)}; target <= 200 ms`],
    ['  the same from the sources', `${f.helloFromSources.firstByteMs.median.toFixed(0)} ms`,
      `LGUEST_TS_SOURCE=1 (tsx transpiles the CLI and the worker); spread ${ms(f.helloFromSources.firstByteMs)}; exits after ${f.helloFromSources.exitMs.median.toFixed(0)} ms${cpu(f.helloFromSources)}`],
    ['run hello: peak RSS', f.hello.rssMiB ? `${f.hello.rssMiB.median.toFixed(0)} MiB` : '-',
      f.hello.rssMiB ? `GNU time %M, spread ${f.hello.rssMiB.min.toFixed(0)}-${f.hello.rssMiB.max.toFixed(0)} MiB (from the sources: ${f.helloFromSources.rssMiB!.median.toFixed(0)} MiB); target <= 100 MiB` : f.peakRssNote!],
    ['npm start', `${f.npmStart.exitMs.median.toFixed(0)} ms`,
      `wall time of \`npm start\` (bare demo, npm's own start-up included); spread ${ms(f.npmStart.exitMs)}${cpu(f.npmStart)}; target <= 300 ms`],
  ];
}

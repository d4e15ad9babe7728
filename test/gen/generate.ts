// Generates the CPU test vectors in test/vectors/ from this machine's CPU.
//
//   npx tsx test/gen/generate.ts [--seed N] [--count-scale X] [--mix zero:5,small:20,boundary:35,random:40]
//                                [--out DIR] [--groups alu,shift,...] [--harness PATH]
//
// Each group's templates (templates.ts) build cases from a PRNG seeded by --seed and the group name; the
// cases go through the native oracle (harness.c, built with `make -C test/gen`) and come back as the
// final state the CPU produced; that state is written in the cpu-test format
// (docs/cpu-test-format.md), one file per group, one vector per line.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Case, CODE, Gen, RF, REGIONS } from './case.ts';
import { DEFAULT_MIX, Mix, Rng, parseMix } from './rng.ts';
import { GROUPS } from './templates.ts';

export const DEFAULT_SEED = 20261125;

const here = path.dirname(fileURLToPath(import.meta.url));

interface Options {
  seed: number;
  scale: number;
  mix: Mix;
  out: string;
  groups: string[];
  harness: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seed: DEFAULT_SEED,
    scale: 1,
    mix: DEFAULT_MIX,
    out: path.resolve(here, '../vectors'),
    groups: Object.keys(GROUPS),
    harness: path.resolve(here, 'harness'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seed') o.seed = Number(next()) >>> 0;
    else if (a === '--count-scale') o.scale = Number(next());
    else if (a === '--mix') o.mix = parseMix(next());
    else if (a === '--out') o.out = path.resolve(next());
    else if (a === '--groups') o.groups = next().split(',');
    else if (a === '--harness') o.harness = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      console.log('usage: generate.ts [--seed N] [--count-scale X] [--mix k:w,...] [--out DIR] [--groups a,b] [--harness PATH]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  for (const g of o.groups) if (!(g in GROUPS)) throw new Error(`unknown group ${g}`);
  if (!(o.scale > 0)) throw new Error('--count-scale must be > 0');
  return o;
}

/** FNV-1a, to give every group its own PRNG stream (so --groups subsets reproduce the same vectors). */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (const ch of s) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

// ---- talking to the harness ---------------------------------------------------------------------

const hex = (v: number) => (v >>> 0).toString(16);
const hexBytes = (b: number[]) => b.map((x) => x.toString(16).padStart(2, '0')).join('');

/** Harness register order. */
const HREGS = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'esp'] as const;
const ENC: Record<(typeof HREGS)[number], number> = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 };

function caseInput(c: Case): string {
  const lines = [`C ${HREGS.map((r) => hex(c.r[ENC[r]])).join(' ')} ${hex(c.eflags)} ${hex(c.eip)}`];
  lines.push(`M ${hex(c.eip)} ${hexBytes(c.code)}`);
  const addrs = [...c.mem.keys()].sort((a, b) => a - b);
  for (let i = 0; i < addrs.length; ) {
    let j = i;
    while (j + 1 < addrs.length && addrs[j + 1] === addrs[j] + 1) j++;
    lines.push(`M ${hex(addrs[i])} ${hexBytes(addrs.slice(i, j + 1).map((a) => c.mem.get(a)!))}`);
    i = j + 1;
  }
  lines.push('R');
  return lines.join('\n') + '\n';
}

interface HarnessResult {
  sig: number;
  trapno: number;
  err: number;
  cr2: number;
  regs: Record<string, number>;
  eflags: number;
  eip: number;
  diffs: Map<number, number>;
}

function runHarness(harness: string, cases: Case[]): HarnessResult[] {
  const input = cases.map(caseInput).join('');
  const p = spawnSync(harness, [], { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`harness failed (${p.status} ${p.signal}): ${p.stderr}`);
  const lines = p.stdout.split('\n').filter((l) => l.startsWith('S '));
  if (lines.length !== cases.length) throw new Error(`harness returned ${lines.length} results for ${cases.length} cases`);
  return lines.map((l) => {
    const f = l.split(' ');
    const n = (i: number) => parseInt(f[i], 16) >>> 0;
    const regs: Record<string, number> = {};
    HREGS.forEach((r, i) => (regs[r] = n(5 + i)));
    const diffs = new Map<number, number>();
    for (const d of f.slice(15)) {
      const [a, v] = d.split(':');
      diffs.set(parseInt(a, 16) >>> 0, parseInt(v, 16));
    }
    return { sig: n(1), trapno: n(2), err: n(3), cr2: n(4), regs, eflags: n(13), eip: n(14), diffs };
  });
}

// ---- building vectors -----------------------------------------------------------------------------

const SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGFPE = 8, SIGSEGV = 11;
const VECTOR_PF = 14;

type Regs = Record<string, number>;
interface Vector {
  name: string;
  initial: { regs: Regs; ram: [number, number][] };
  final: { regs: Regs; ram: [number, number][] };
  exception: null | { vector: number; eip: number };
  flags_mask: number;
  end_eip?: number;
  undefined_regs?: string[];
}

function regsOf(c: Case): Regs {
  return {
    eax: c.r[0], ebx: c.r[3], ecx: c.r[1], edx: c.r[2], esi: c.r[6], edi: c.r[7], ebp: c.r[5], esp: c.r[4],
    eip: c.eip, eflags: c.eflags,
  };
}

function disasmHex(c: Case): string {
  return hexBytes(c.code);
}

/** Returns the vector, or a reason to drop the case. */
function toVector(c: Case, res: HarnessResult): Vector | string {
  const next = c.eip + c.code.length;
  const init = regsOf(c);
  const initialRam: [number, number][] = c.code.map((b, i) => [c.eip + i, b] as [number, number]);
  const memAddrs = [...c.mem.keys()].sort((a, b) => a - b);
  for (const a of memAddrs) initialRam.push([a, c.mem.get(a)!]);
  initialRam.sort((a, b) => a[0] - b[0]);

  if (res.sig === 14) return 'timed out';
  let exception: Vector['exception'] = null;
  let finalRegs: Regs;
  const ownTrap = c.trapInsn && res.eip === next && (res.trapno === 3 || res.trapno === 4);
  if (res.sig === SIGTRAP && res.trapno === 3 && !ownTrap) {
    const end = (res.eip - 1) >>> 0;
    const allowed = c.targets ?? [next];
    if (!allowed.includes(end)) return `ended at ${hex(end)}, expected ${allowed.map(hex).join('/')}`;
    finalRegs = { ...res.regs, eip: end, eflags: (res.eflags & ~RF) >>> 0 };
    if (c.expectFault) console.warn(`note: ${c.name} [${disasmHex(c)}] expected a fault but ran normally`);
  } else {
    if (![SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV].includes(res.sig)) return `signal ${res.sig}`;
    if (res.trapno === VECTOR_PF) return `page fault at ${hex(res.cr2)} (eip ${hex(res.eip)})`;
    const expectEip = ownTrap ? next : c.eip;
    if (res.eip !== expectEip) return `vector ${res.trapno} at ${hex(res.eip)}, expected at ${hex(expectEip)}`;
    for (const r of HREGS) if (res.regs[r] !== init[r]) return `vector ${res.trapno} but ${r} changed`;
    if (((res.eflags ^ c.eflags) & ~RF) !== 0) return `vector ${res.trapno} but eflags changed`;
    if (res.diffs.size) return `vector ${res.trapno} but memory changed`;
    exception = { vector: res.trapno, eip: res.eip };
    finalRegs = { ...init };
    if (!c.expectFault && !c.trapInsn) console.warn(`note: ${c.name} [${disasmHex(c)}] faulted with vector ${res.trapno}`);
  }
  // final.ram: every non-code byte listed initially (with its final value) and every changed byte
  const fin = new Map<number, number>();
  for (const a of memAddrs) fin.set(a, res.diffs.get(a) ?? c.mem.get(a)!);
  for (const [a, v] of res.diffs) {
    if (!REGIONS.some((g) => a >= g.base && a < g.base + g.size)) return `diff outside regions`;
    fin.set(a, v);
  }
  const finalRam = [...fin.entries()].sort((a, b) => a[0] - b[0]);
  const ordered = (r: Regs): Regs => ({
    eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx, esi: r.esi, edi: r.edi, ebp: r.ebp, esp: r.esp,
    eip: r.eip, eflags: r.eflags,
  });
  const v: Vector = {
    name: c.name,
    initial: { regs: ordered(init), ram: initialRam },
    final: { regs: ordered(finalRegs), ram: finalRam },
    exception,
    flags_mask: c.mask >>> 0,
  };
  if (c.block) v.end_eip = next;
  if (c.undefinedRegs.size && !exception) v.undefined_regs = [...c.undefinedRegs].sort();
  return v;
}

// ---- main -------------------------------------------------------------------------------------------

/** Stops with one clear line (status 2) where vectors cannot be recorded, saying why. */
function cannotRecord(why: string): never {
  console.error(`generate: cannot record vectors on this machine: ${why}`);
  process.exit(2);
}

function ensureHarness(harness: string): void {
  if (!existsSync(harness)) {
    const p = spawnSync('make', ['-C', here, 'harness'], { stdio: 'inherit' });
    if (p.status !== 0 || !existsSync(harness)) cannotRecord('the 32-bit harness does not build (needs gcc -m32 with static libc: apt-get install gcc-multilib)');
  }
  // The harness is a 32-bit Linux program: many x86-64 kernels refuse to run those (no IA-32 emulation,
  // or it is disabled), and then nothing can be recorded here. The committed vectors need no harness.
  // Node's spawn falls back to /bin/sh on ENOEXEC (as execvp does), so ask bash's exec, which reports
  // "Exec format error" with status 126 instead of running the binary as a script.
  const p = spawnSync('bash', ['-c', 'exec "$0" </dev/null', harness], { encoding: 'utf8' });
  if (p.status === 126 || p.status === 127) {
    cannotRecord(`this kernel refuses to run 32-bit programs (exec of ${path.relative(process.cwd(), harness)} failed with status ${p.status}); record on a machine whose kernel runs them (CONFIG_IA32_EMULATION)`);
  }
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  ensureHarness(o.harness);
  mkdirSync(o.out, { recursive: true });
  let total = 0;
  const summary: string[] = [];
  for (const group of o.groups) {
    const g = new Gen(new Rng((o.seed ^ hashName(group)) >>> 0), o.mix);
    const cases = GROUPS[group](g, o.scale);
    for (const c of cases) {
      if (c.code.length === 0) throw new Error(`empty case ${c.name}`);
      if (c.eip < CODE.base || c.eip + c.code.length > CODE.base + CODE.size) throw new Error(`code outside: ${c.name}`);
    }
    const results = runHarness(o.harness, cases);
    const vectors: Vector[] = [];
    const seen = new Map<string, number>();
    let dropped = 0;
    cases.forEach((c, i) => {
      const v = toVector(c, results[i]);
      if (typeof v === 'string') {
        dropped++;
        console.warn(`dropped ${c.name} [${disasmHex(c)}]: ${v}`);
        return;
      }
      const k = (seen.get(c.name) ?? 0) + 1;
      seen.set(c.name, k);
      v.name = `${c.name} #${k}`;
      vectors.push(v);
    });
    const file = path.join(o.out, `${group}.json`);
    writeFileSync(file, '[\n' + vectors.map((v) => JSON.stringify(v)).join(',\n') + '\n]\n');
    const faults = vectors.filter((v) => v.exception).length;
    summary.push(`${group}: ${vectors.length} vectors (${faults} exceptions, ${dropped} dropped)`);
    total += vectors.length;
  }
  for (const s of summary) console.log(s);
  console.log(`total: ${total} vectors, seed ${o.seed}, count-scale ${o.scale}`);
}

main();

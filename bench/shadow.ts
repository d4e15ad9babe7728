/**
 * Shadow paging benchmark: synthetic guests driving mmu/shadow.ts through the same bench the tests use
 * (fake Host, the CPU's walker with a software TLB, demandPage on #PF). Compares the seed's policies with
 * ours: random vs LRU eviction, SET_PMD full flush vs precise, FLUSH_TLB(1) full vs revalidation, and
 * pre-faulting. Counts are exact; times are the Host's work only (a real fault also costs a world switch).
 *
 *   npx tsx bench/shadow.ts [--seeds N] [--slices N]
 */
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../emulator/constants.ts';
import type { ShadowOptions, ShadowStatsEx } from '../mmu/shadow.ts';
import { type Env, type TestVcpu, gread32, gwriteEntry, makeEnv, mulberry } from '../test/property/shadow-harness.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SEEDS = arg('--seeds', 5);
const SLICES = arg('--slices', 3000);
const KA = 0xc0000000;
const PFN_LIMIT = 8192; // 32 MiB of guest RAM
const USER_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
const KERNEL_FLAGS = PTE_P | PTE_RW | PTE_A | PTE_D;


/** A guest with `procs` address spaces sharing the kernel part; tables allocated from the top of RAM. */
class Guest {
  next = PFN_LIMIT - 40; // below the boot page tables
  tops: number[] = [];
  kernelPmd = 0;
  readonly es: number;
  constructor(readonly env: Env, procs: number) {
    this.es = env.pae ? 8 : 4;
    if (env.pae) {
      this.kernelPmd = this.page();
    }
    const kernelTop = this.page();
    if (env.pae) gwriteEntry(env, kernelTop + 24, this.kernelPmd | PTE_P);
    // kernel: 16 MiB linear map of RAM at KA (every process shares these tables)
    for (let p = 0; p < 4096; p++) this.map(kernelTop, KA + p * 4096, p, KERNEL_FLAGS);
    for (let i = 0; i < procs; i++) {
      const t = this.page();
      if (env.pae) gwriteEntry(env, t + 24, this.kernelPmd | PTE_P);
      else for (let k = KA >>> 22; k < 1023; k++) gwriteEntry(env, t + k * 4, gread32(env, kernelTop + k * 4));
      this.tops.push(t);
    }
  }
  page(): number {
    return this.next-- * 4096;
  }
  dirAddr(top: number, va: number, create: boolean): number {
    const env = this.env;
    let dirAddr: number;
    if (env.pae) {
      const pgdAddr = top + (va >>> 30) * 8;
      if ((gread32(env, pgdAddr) & PTE_P) === 0) {
        if (!create) return -1;
        gwriteEntry(env, pgdAddr, this.page() | PTE_P);
      }
      dirAddr = ((gread32(env, pgdAddr) & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8;
    } else {
      dirAddr = top + (va >>> 22) * 4;
    }
    if ((gread32(env, dirAddr) & PTE_P) === 0) {
      if (!create) return -1;
      gwriteEntry(env, dirAddr, this.page() | (va >= KA ? KERNEL_FLAGS : USER_FLAGS));
    }
    return dirAddr;
  }
  map(top: number, va: number, frame: number, flags: number): number {
    const dirAddr = this.dirAddr(top, va, true);
    const pteAddr = ((gread32(this.env, dirAddr) & ~0xfff) >>> 0) + ((va >>> 12) & (this.env.pae ? 511 : 1023)) * this.es;
    gwriteEntry(this.env, pteAddr, (frame << 12) | flags);
    return pteAddr;
  }
}

interface Result { faults: number; evictions: number; prefaulted: number; hostMs: number; accesses: number }

function finish(env: Env, t0: number, accesses: number): Result {
  const st = env.shadow.stats as ShadowStatsEx;
  return { faults: st.faultsFixed, evictions: st.cacheEvictions, prefaulted: st.prefaulted, hostMs: performance.now() - t0, accesses };
}

/**
 * Context switches among `procs` processes: most switches go among a hot few (a pipeline), some to any.
 * Each slice touches a working set of user pages and of kernel pages. `kernelChange` every N slices:
 * a kernel mapping changes ('pmd': PAE SET_PMD on the kernel PMD page; 'flush': a PTE changed silently,
 * then FLUSH_TLB(1)).
 */
function contextSwitches(pae: boolean, opts: ShadowOptions, seed: number, kernelChange?: { every: number; kind: 'pmd' | 'flush' }): Result {
  const env = makeEnv({ pae, pfnLimit: PFN_LIMIT, poolPages: 4096, shadow: { ...opts, random: mulberry(seed * 31 + 7) } });
  const { shadow } = env;
  shadow.initGuestPagetable(PFN_LIMIT * 4096, 0);
  shadow.guestDataInit(KA);
  const procs = 7;
  const g = new Guest(env, procs);
  const r = mulberry(seed);
  const v: TestVcpu = env.vcpus[0];
  const userPages = 24, kernelPages = 24;
  for (let p = 0; p < procs; p++) {
    for (let i = 0; i < userPages; i++) g.map(g.tops[p], 0x08048000 + i * 0x3000, 100 + p * 64 + i, USER_FLAGS);
    g.map(g.tops[p], 0x40000000 + p * 0x200000, 50, USER_FLAGS); // a user PMD of its own (PAE)
  }
  shadow.newPagetable(v, g.tops[0]);
  shadow.clearAll(v);
  const statsBefore = { ...shadow.stats } as ShadowStatsEx;
  const t0 = performance.now();
  let accesses = 0;
  let cur = 0;
  for (let s = 0; s < SLICES; s++) {
    const hot = r() < 0.75;
    cur = hot ? (cur + 1) % 3 : Math.floor(r() * procs);
    shadow.newPagetable(v, g.tops[cur]);
    for (let i = 0; i < 8; i++) {
      v.access((0x08048000 + Math.floor(r() * userPages) * 0x3000) >>> 0, r() < 0.3, true);
      v.access((KA + Math.floor(r() * kernelPages) * 0x11000) >>> 0, r() < 0.3, false);
      accesses += 2;
    }
    if (kernelChange && s % kernelChange.every === kernelChange.every - 1) {
      const va = (KA + 0x800000 + Math.floor(r() * 256) * 0x1000) >>> 0; // a vmalloc-like area
      if (kernelChange.kind === 'pmd' && pae) {
        // replace the page table of one kernel PMD entry (as a vmalloc-area sync would)
        const j = (va >>> 21) & 511;
        const old = gread32(env, g.kernelPmd + j * 8);
        const fresh = g.page();
        for (let k = 0; k < 512; k++) gwriteEntry(env, fresh + k * 8, gread32(env, ((old & ~0xfff) >>> 0) + k * 8));
        gwriteEntry(env, g.kernelPmd + j * 8, fresh | KERNEL_FLAGS);
        shadow.setPmd(v, g.kernelPmd, j);
      } else {
        const pte = g.map(g.tops[cur], va, 60 + (s % 7), KERNEL_FLAGS);
        void pte;
        shadow.clearAll(v);
      }
    }
  }
  const res = finish(env, t0, accesses);
  res.faults -= statsBefore.faultsFixed;
  res.evictions -= statsBefore.cacheEvictions;
  if (env.host.kills.length) throw new Error(env.host.kills[0]);
  shadow.releaseAll();
  return res;
}

/** Pre-faulting: processes streaming through 64-page buffers (sequential) or touching pages at random,
 *  their PTEs set up accessed as Linux does; each switch to a process flushes its user part. */
function streaming(pae: boolean, prefault: number, seed: number, sequential: boolean): Result {
  const env = makeEnv({ pae, pfnLimit: PFN_LIMIT, poolPages: 4096, shadow: { prefault } });
  const { shadow } = env;
  shadow.initGuestPagetable(PFN_LIMIT * 4096, 0);
  shadow.guestDataInit(KA);
  const g = new Guest(env, 2);
  const r = mulberry(seed);
  const v = env.vcpus[0];
  const pages = 512;
  for (let p = 0; p < 2; p++) for (let i = 0; i < pages; i++) g.map(g.tops[p], 0x10000000 + i * 4096, 200 + ((i * 7 + p) % 4000), USER_FLAGS);
  shadow.newPagetable(v, g.tops[0]);
  const t0 = performance.now();
  let accesses = 0;
  for (let s = 0; s < SLICES / 10; s++) {
    shadow.newPagetable(v, g.tops[s % 2]);
    shadow.flushUser(v);
    const start = Math.floor(r() * (pages - 64));
    for (let i = 0; i < 64; i++) {
      const page = sequential ? start + i : Math.floor(r() * pages);
      v.access((0x10000000 + page * 4096) >>> 0, (i & 3) === 0, true);
      accesses++;
    }
  }
  const res = finish(env, t0, accesses);
  shadow.releaseAll();
  return res;
}

function avg(rs: Result[]): Result {
  const out: Result = { faults: 0, evictions: 0, prefaulted: 0, hostMs: 0, accesses: 0 };
  for (const r of rs) for (const k of Object.keys(out) as (keyof Result)[]) out[k] += r[k] / rs.length;
  return out;
}

function row(name: string, r: Result): string {
  const perK = (r.faults / r.accesses) * 1000;
  return `| ${name} | ${r.accesses.toFixed(0)} | ${r.faults.toFixed(0)} | ${perK.toFixed(1)} | ${r.evictions.toFixed(0)} | ${r.prefaulted.toFixed(0)} | ${r.hostMs.toFixed(1)} |`;
}

const seeds = Array.from({ length: SEEDS }, (_, i) => i + 1);
const lines: string[] = [];
lines.push(`Average of ${SEEDS} seeds, ${SLICES} time slices each. Faults = demand faults fixed; host ms = time in the shadow code and the test bench.`);
lines.push('');
lines.push('| workload / policy | accesses | faults | faults per 1000 | evictions | prefaulted | host ms |');
lines.push('|---|---|---|---|---|---|---|');
for (const pae of [false, true]) {
  const m = pae ? 'PAE' : '2-level';
  for (const eviction of ['random', 'lru'] as const) {
    lines.push(row(`${m} context switches, ${eviction} eviction`, avg(seeds.map((s) => contextSwitches(pae, { eviction }, s)))));
  }
  for (const kernelFlush of ['full', 'revalidate'] as const) {
    lines.push(row(`${m} FLUSH_TLB(1) every 20 slices, ${kernelFlush}`, avg(seeds.map((s) => contextSwitches(pae, { kernelFlush }, s, { every: 20, kind: 'flush' })))));
  }
  if (pae) {
    for (const precisePmd of [false, true]) {
      lines.push(row(`${m} kernel SET_PMD every 20 slices, ${precisePmd ? 'precise' : 'full flush (seed)'}`, avg(seeds.map((s) => contextSwitches(pae, { precisePmd }, s, { every: 20, kind: 'pmd' })))));
    }
  }
  for (const sequential of [true, false]) {
    for (const prefault of [0, 8, 16]) {
      lines.push(row(`${m} ${sequential ? 'sequential' : 'random'} user pages, prefault ${prefault}`, avg(seeds.map((s) => streaming(pae, prefault, s, sequential)))));
    }
  }
}
console.log(lines.join('\n'));

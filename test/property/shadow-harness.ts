/**
 * Test bench for mmu/shadow.ts: a PhysicalMemory with guest RAM at a nonzero memBase and a Host pool above
 * it, a fake Host that records kills and invalidations, vCPUs with a software TLB that only invalidate()
 * or a CR3 change empties (so a missing invalidation shows up as a stale translation), the CPU's own page
 * walker (mmu/paging.ts) on the shadows, and a reference MMU that walks the guest's own tables.
 */
import { CR0_WP, CR4_PAE, PFEC_P, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../emulator/constants.ts';
import type { CPU } from '../../emulator/cpu.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { loadPdptes, walkPageTables } from '../../mmu/paging.ts';
import type { ShadowHost, ShadowVcpu } from '../../mmu/shadow-api.ts';
import { Shadow, type ShadowOptions } from '../../mmu/shadow.ts';

export const MEM_BASE = 0x100000;

export class TestHost implements ShadowHost {
  readonly mem: PhysicalMemory;
  readonly memBase = MEM_BASE;
  readonly pfnLimit: number;
  readonly pae: boolean;
  readonly kills: string[] = [];
  readonly poolBase: number;
  private free: number[] = [];
  readonly outstanding = new Set<number>();
  invalidations = 0;
  fullInvalidations = 0;
  onInvalidate: (lin?: number) => void = () => {};

  constructor(mem: PhysicalMemory, pae: boolean, pfnLimit: number, poolPages: number) {
    this.mem = mem;
    this.pae = pae;
    this.pfnLimit = pfnLimit;
    this.poolBase = MEM_BASE + pfnLimit * 4096;
    for (let i = poolPages - 1; i >= 0; i--) this.free.push(this.poolBase + i * 4096);
  }

  allocPage(): number {
    const p = this.free.pop();
    if (p === undefined) return -1;
    this.mem.fill(p, 4096);
    this.outstanding.add(p);
    return p;
  }

  freePage(hpa: number): void {
    if (!this.outstanding.delete(hpa)) throw new Error(`freePage of ${hpa.toString(16)} that is not allocated`);
    this.mem.fill(hpa, 4096, 0xcc); // freed pages hold junk, so a use after free shows
    this.free.push(hpa);
  }

  /** Drop pool pages until only `n` are left (to test running out). */
  shrinkPool(n: number): void {
    while (this.free.length > n) this.free.pop();
  }

  kill(reason: string): void {
    this.kills.push(reason);
  }

  invalidate(lin?: number): void {
    this.invalidations++;
    if (lin === undefined) this.fullInvalidations++;
    this.onInvalidate(lin);
  }
}

export type Access = { frame: number } | { fault: number } | { killed: string } | { loop: true };

const TLB_R_SUP = 1, TLB_R_USR = 2, TLB_W_SUP = 4, TLB_W_USR = 8;

/** A vCPU as the bench sees it: shadow-paging state, a fake CPU for the walker, and a software TLB. */
export class TestVcpu implements ShadowVcpu {
  pgdIndex = 0;
  esp1 = 0;
  stackPages = 0;
  readonly cpu: CPU;
  readonly tlb = new Map<number, { frame: number; perms: number }>();
  private pdptesStale = true;

  constructor(readonly id: number, readonly env: Env) {
    const mem = env.mem;
    this.cpu = {
      cr0: CR0_WP, cr3: 0, cr4: env.pae ? CR4_PAE : 0, m32: mem.i32, memSize: mem.size, pdpte: new Int32Array(8),
      walkFrame: 0, walkPerms: 0,
    } as unknown as CPU;
  }

  invalidate(lin?: number): void {
    if (lin === undefined) {
      this.tlb.clear();
      this.pdptesStale = true;
    } else {
      this.tlb.delete(lin >>> 12);
    }
  }

  /** Enter the guest: map the Switcher and load CR3 (a new CR3 empties the TLB and reloads PDPTEs). */
  enter(): void {
    const cr3 = this.env.shadow.mapSwitcher(this, this.env.switcherPtePage);
    if (cr3 !== this.cpu.cr3 || this.pdptesStale) {
      if (cr3 !== this.cpu.cr3) this.tlb.clear();
      this.cpu.cr3 = cr3;
      if (this.env.pae && !loadPdptes(this.cpu)) throw new Error('shadow PDPTE with reserved bits');
      this.pdptesStale = false;
    }
  }

  /** One guest access as the machine would do it: TLB, walker, and on #PF the Host's demandPage. */
  access(va: number, write: boolean, user: boolean): Access {
    const host = this.env.host;
    for (let tries = 0; tries < 4; tries++) {
      if (host.kills.length > 0) return { killed: host.kills[0] };
      this.enter();
      const need = user ? (write ? TLB_W_USR : TLB_R_USR) : write ? TLB_W_SUP : TLB_R_SUP;
      const hit = this.tlb.get(va >>> 12);
      if (hit !== undefined && (hit.perms & need) !== 0) return { frame: hit.frame };
      const r = walkPageTables(this.cpu, va, write, user, true);
      if (r < 0) {
        this.tlb.set(va >>> 12, { frame: this.cpu.walkFrame, perms: this.cpu.walkPerms });
        return { frame: this.cpu.walkFrame };
      }
      const fixed = this.env.shadow.demandPage(this, va, r);
      if (host.kills.length > 0) return { killed: host.kills[0] };
      if (!fixed) return { fault: this.env.shadow.faultErrcode };
    }
    return { loop: true };
  }
}

export interface Env {
  mem: PhysicalMemory;
  host: TestHost;
  shadow: Shadow;
  pae: boolean;
  pfnLimit: number;
  switcherPtePage: number;
  /** hpa of the Switcher's code, regs and read-only pages. */
  switcherFrames: number[];
  vcpus: TestVcpu[];
}

const memCache = new Map<number, PhysicalMemory>();

/** A small seeded generator (mulberry32), so a failing history or benchmark run replays. */
export function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeEnv(opts: { pae: boolean; pfnLimit?: number; poolPages?: number; vcpus?: number; shadow?: ShadowOptions }): Env {
  const pfnLimit = opts.pfnLimit ?? 128;
  const poolPages = opts.poolPages ?? 160;
  const size = MEM_BASE + (pfnLimit + poolPages + 8) * 4096;
  let mem = memCache.get(size);
  if (mem === undefined) {
    mem = new PhysicalMemory(size);
    memCache.set(size, mem);
  } else {
    mem.u8.fill(0);
  }
  const host = new TestHost(mem, opts.pae, pfnLimit, poolPages);
  const extra = MEM_BASE + (pfnLimit + poolPages) * 4096;
  const switcherPtePage = extra;
  const switcherFrames = [extra + 4096, extra + 2 * 4096, extra + 3 * 4096];
  const es = opts.pae ? 8 : 4;
  mem.write32(switcherPtePage, switcherFrames[0] | PTE_P | PTE_A);
  mem.write32(switcherPtePage + es, switcherFrames[1] | PTE_P | PTE_A | PTE_RW);
  mem.write32(switcherPtePage + 2 * es, switcherFrames[2] | PTE_P | PTE_A);
  const shadow = new Shadow(host, opts.shadow);
  const env: Env = { mem, host, shadow, pae: opts.pae, pfnLimit, switcherPtePage, switcherFrames, vcpus: [] };
  for (let i = 0; i < (opts.vcpus ?? 1); i++) env.vcpus.push(new TestVcpu(i, env));
  host.onInvalidate = (lin) => { for (const v of env.vcpus) v.invalidate(lin); };
  return env;
}

/** Guest-physical reads and writes of the guest's own tables (as the guest kernel would do them). */
export function gread32(env: Env, gpa: number): number {
  return env.mem.dv.getInt32(MEM_BASE + gpa, true);
}

export function gwrite32(env: Env, gpa: number, v: number): void {
  env.mem.write32(MEM_BASE + gpa, v);
}

/** Write an entry (4 bytes, or 8 on PAE with high word `hi`). */
export function gwriteEntry(env: Env, gpa: number, lo: number, hi = 0): void {
  gwrite32(env, gpa, lo);
  if (env.pae) gwrite32(env, gpa + 4, hi);
}

export type RefResult = { gpa: number; pteAddr: number } | { fault: number };

/** What a real MMU (CR0.WP set, 4 KiB pages) would do walking the guest's own tables at `gpgdir`. */
export function refWalk(env: Env, gpgdir: number, va: number, write: boolean, user: boolean): RefResult {
  const bits = (write ? PFEC_W : 0) | (user ? PFEC_U : 0);
  let dir: number;
  if (env.pae) {
    const pgd = gread32(env, gpgdir + (va >>> 30) * 8);
    if ((pgd & PTE_P) === 0) return { fault: bits };
    dir = gread32(env, ((pgd & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8);
  } else {
    dir = gread32(env, gpgdir + (va >>> 22) * 4);
  }
  if ((dir & PTE_P) === 0) return { fault: bits };
  const es = env.pae ? 8 : 4;
  const pteAddr = ((dir & ~0xfff) >>> 0) + ((va >>> 12) & (env.pae ? 511 : 1023)) * es;
  const pte = gread32(env, pteAddr);
  if ((pte & PTE_P) === 0) return { fault: bits };
  if (user && (dir & pte & PTE_US) === 0) return { fault: bits | PFEC_P };
  if (write && (dir & pte & PTE_RW) === 0) return { fault: bits | PFEC_P };
  return { gpa: (pte & ~0xfff) >>> 0, pteAddr };
}

/** Every present shadow PTE of slot `s` (not the Switcher's): its virtual address, entry and directory. */
export function* shadowPtes(env: Env, s: number): Generator<{ va: number; spte: number; sdir: number }> {
  const top = env.shadow.slotTop(s);
  if (top < 0) return;
  const rd = (hpa: number): number => env.mem.i32[hpa >>> 2];
  if (env.pae) {
    for (let i = 0; i < 4; i++) {
      const pgd = rd(top + i * 8);
      if ((pgd & PTE_P) === 0) continue;
      for (let j = 0; j < 512; j++) {
        if (i === 3 && j === 511) continue;
        const dir = rd(((pgd & ~0xfff) >>> 0) + j * 8);
        if ((dir & PTE_P) === 0) continue;
        for (let k = 0; k < 512; k++) {
          const spte = rd(((dir & ~0xfff) >>> 0) + k * 8);
          if ((spte & PTE_P) !== 0) yield { va: ((i << 30) | (j << 21) | (k << 12)) >>> 0, spte, sdir: dir };
        }
      }
    }
  } else {
    for (let i = 0; i < 1023; i++) {
      const dir = rd(top + i * 4);
      if ((dir & PTE_P) === 0) continue;
      for (let k = 0; k < 1024; k++) {
        const spte = rd(((dir & ~0xfff) >>> 0) + k * 4);
        if ((spte & PTE_P) !== 0) yield { va: ((i << 22) | (k << 12)) >>> 0, spte, sdir: dir };
      }
    }
  }
}

/**
 * The shadows never grant more than the guest's tables: every present shadow PTE maps the frame the guest
 * maps there, below pfnLimit, only for an accessed guest entry, writable only where the guest allows
 * writes and has set dirty, user only where the guest allows user; the Switcher slot holds only the
 * Switcher; frame reference counts equal the present shadow PTEs. Returns a list of problems.
 */
export function checkShadows(env: Env): string[] {
  const problems: string[] = [];
  const counts = new Map<number, number>();
  let total = 0;
  const { shadow, mem } = env;
  for (let s = 0; s < 4; s++) {
    const top = shadow.slotTop(s);
    if (top < 0) continue;
    const gpgdir = shadow.slotGpgdir(s);
    const sw = env.pae ? mem.i32[((mem.i32[(top + 24) >>> 2] & ~0xfff) + 511 * 8) >>> 2] : mem.i32[(top + 1023 * 4) >>> 2];
    if (sw !== 0 && ((sw & ~0xfff) >>> 0) !== env.switcherPtePage) problems.push(`slot ${s}: Switcher slot holds ${(sw >>> 0).toString(16)}`);
    if (env.pae) {
      for (let i = 0; i < 4; i++) {
        const e = mem.i32[(top + i * 8) >>> 2];
        if ((e & PTE_P) !== 0 && (e & 0xfff) !== PTE_P) problems.push(`slot ${s}: PDPTE ${i} flags ${e & 0xfff}`);
      }
    }
    for (const { va, spte, sdir } of shadowPtes(env, s)) {
      const pfn = (((spte & ~0xfff) >>> 0) - MEM_BASE) / 4096;
      if (!(pfn >= 0 && pfn < env.pfnLimit)) {
        problems.push(`slot ${s} va ${va.toString(16)}: frame outside the guest (${(spte >>> 0).toString(16)})`);
        continue;
      }
      counts.set(pfn, (counts.get(pfn) ?? 0) + 1);
      total++;
      const ref = refWalk(env, gpgdir, va, false, false);
      if (!('gpa' in ref)) { problems.push(`slot ${s} va ${va.toString(16)}: mapped, guest has nothing`); continue; }
      if (ref.gpa !== pfn * 4096) problems.push(`slot ${s} va ${va.toString(16)}: frame ${pfn} but guest maps ${ref.gpa / 4096}`);
      const gpte = gread32(env, ref.pteAddr);
      if ((gpte & PTE_A) === 0) problems.push(`slot ${s} va ${va.toString(16)}: guest entry not accessed`);
      const w = refWalk(env, gpgdir, va, true, false);
      if ((sdir & spte & PTE_RW) !== 0 && (!('gpa' in w) || (gpte & PTE_D) === 0)) problems.push(`slot ${s} va ${va.toString(16)}: writable beyond the guest`);
      const u = refWalk(env, gpgdir, va, false, true);
      if ((sdir & spte & PTE_US) !== 0 && !('gpa' in u)) problems.push(`slot ${s} va ${va.toString(16)}: user beyond the guest`);
      if ((spte & 0x100) !== 0) problems.push(`slot ${s} va ${va.toString(16)}: global bit kept`);
    }
  }
  if (total !== shadow.stats.leakedFrames) problems.push(`held references ${shadow.stats.leakedFrames}, present shadow PTEs ${total}`);
  for (let pfn = 0; pfn < env.pfnLimit; pfn++) {
    if (shadow.frameRefs(pfn) !== (counts.get(pfn) ?? 0)) problems.push(`frame ${pfn}: ${shadow.frameRefs(pfn)} references, ${counts.get(pfn) ?? 0} PTEs`);
  }
  return problems;
}

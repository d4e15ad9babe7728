/**
 * Unit tests of mmu/shadow.ts, part by part, in both paging modes; the guest's page tables are built in
 * guest memory by the test, the Host is the bench's fake (test/property/shadow-harness.ts).
 */
import { describe, expect, it } from 'vitest';
import { PFEC_P, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_PWT, PTE_RW, PTE_US } from '../../emulator/constants.ts';
import { Shadow } from '../../mmu/shadow.ts';
import { KillReason, PAGE_KERNEL_EXEC } from '../../mmu/shadow-consts.ts';
import { type Env, MEM_BASE, checkShadows, gread32, gwriteEntry, makeEnv } from '../property/shadow-harness.ts';
import type { ShadowOptions } from '../../mmu/shadow.ts';

const KA = 0xc0000000;
const PFN_LIMIT = 128;
const DIR = PTE_P | PTE_RW | PTE_US | PTE_A; // a user directory entry
const KDIR = PTE_P | PTE_RW | PTE_A | PTE_D;

/** A guest: page tables built by hand from frames 64 up. */
class G {
  next = 64;
  constructor(readonly env: Env) {}
  get es(): number { return this.env.pae ? 8 : 4; }
  page(): number { return this.next++ * 4096; }
  top(): number {
    const t = this.page();
    return t;
  }
  /** Map `va` to `frame` with PTE flags, creating directories (flags `dirFlags`) as needed. Returns the
   *  gpa of the PTE. */
  map(top: number, va: number, frame: number, flags: number, dirFlags = DIR): number {
    const env = this.env;
    let dirAddr: number;
    if (env.pae) {
      const pgdAddr = top + (va >>> 30) * 8;
      if ((gread32(env, pgdAddr) & PTE_P) === 0) gwriteEntry(env, pgdAddr, this.page() | PTE_P);
      dirAddr = ((gread32(env, pgdAddr) & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8;
    } else {
      dirAddr = top + (va >>> 22) * 4;
    }
    if ((gread32(env, dirAddr) & PTE_P) === 0) gwriteEntry(env, dirAddr, this.page() | dirFlags);
    const pteAddr = ((gread32(env, dirAddr) & ~0xfff) >>> 0) + ((va >>> 12) & (env.pae ? 511 : 1023)) * this.es;
    gwriteEntry(env, pteAddr, (frame << 12) | flags);
    return pteAddr;
  }
  dirAddr(top: number, va: number): number {
    const env = this.env;
    if (!env.pae) return top + (va >>> 22) * 4;
    return ((gread32(env, top + (va >>> 30) * 8) & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8;
  }
}

function setup(pae: boolean, opts: { shadow?: ShadowOptions; vcpus?: number; poolPages?: number } = {}) {
  const env = makeEnv({ pae, pfnLimit: PFN_LIMIT, vcpus: opts.vcpus, shadow: opts.shadow, poolPages: opts.poolPages });
  const boot = env.shadow.initGuestPagetable(PFN_LIMIT * 4096, 0);
  env.shadow.guestDataInit(KA);
  const g = new G(env);
  const top = g.top();
  const v = env.vcpus[0];
  env.shadow.newPagetable(v, top);
  return { env, g, top, v, boot, sh: env.shadow, host: env.host };
}

/** The shadow PTE (low word) the current slot of vcpu 0 has for `va`, or 0. */
function spte(env: Env, va: number, slot = env.vcpus[0].pgdIndex): number {
  const top = env.shadow.slotTop(slot);
  const rd = (hpa: number): number => env.mem.i32[hpa >>> 2];
  let dir: number;
  if (env.pae) {
    const pgd = rd(top + (va >>> 30) * 8);
    if ((pgd & PTE_P) === 0) return 0;
    dir = rd(((pgd & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8);
  } else {
    dir = rd(top + (va >>> 22) * 4);
  }
  if ((dir & PTE_P) === 0) return 0;
  return rd(((dir & ~0xfff) >>> 0) + ((va >>> 12) & (env.pae ? 511 : 1023)) * (env.pae ? 8 : 4));
}

const modes = [false, true];

describe('(vii) boot page tables', () => {
  it('2-level: top level just below the initrd, PTE pages below it, identity and PAGE_OFFSET maps', () => {
    const env = makeEnv({ pae: false, pfnLimit: 2048 + 16, poolPages: 8 });
    const mem = 2048 * 4096; // 8 MiB: two PTE pages
    const top = env.shadow.initGuestPagetable(mem, 5000); // initrd rounds up to 2 pages
    expect(top).toBe(mem - 2 * 4096 - 4096);
    const linear = top - 2 * 4096;
    expect(gread32(env, linear)).toBe(0x007);
    expect(gread32(env, linear + 1025 * 4)).toBe((1025 << 12) | 0x007);
    expect(gread32(env, linear + 2047 * 4)).toBe((2047 << 12) | 0x007);
    for (const k of [0, 1]) {
      expect(gread32(env, top + k * 4)).toBe((linear + k * 4096) | 0x007);
      expect(gread32(env, top + (768 + k) * 4)).toBe((linear + k * 4096) | 0x007);
    }
    expect(gread32(env, top + 2 * 4)).toBe(0);
    expect(env.shadow.slotTop(0)).toBeGreaterThan(0);
    expect(env.shadow.slotGpgdir(0)).toBe(top);
    expect(env.host.kills).toEqual([]);
  });

  it('PAE: PMD page below the PTE pages, PGD 0 and 3 carry only PRESENT, every PMD entry filled (abi 6.7 item 1)', () => {
    const env = makeEnv({ pae: true, pfnLimit: 2048 + 16, poolPages: 8 });
    const mem = 2048 * 4096; // 8 MiB: four PTE pages of 512
    const top = env.shadow.initGuestPagetable(mem, 0);
    expect(top).toBe(mem - 4096);
    const linear = top - 4 * 4096;
    const pmd = linear - 4096;
    expect(gread32(env, linear + 600 * 8)).toBe((600 << 12) | 0x007);
    expect(gread32(env, linear + 600 * 8 + 4)).toBe(0);
    for (let j = 0; j < 4; j++) expect(gread32(env, pmd + j * 8)).toBe((linear + j * 4096) | 0x007);
    expect(gread32(env, pmd + 4 * 8)).toBe(0);
    expect(gread32(env, top)).toBe(pmd | PTE_P);
    expect(gread32(env, top + 3 * 8)).toBe(pmd | PTE_P);
    expect(gread32(env, top + 8)).toBe(0);
    // The shadow: blank, except a PMD page hooked at PGD 3 with PRESENT only.
    const stop = env.shadow.slotTop(0);
    expect(env.mem.i32[stop >>> 2]).toBe(0);
    expect(env.mem.i32[(stop + 24) >>> 2] & 0xfff).toBe(PTE_P);
  });

  for (const pae of modes) {
    it(`${pae ? 'PAE' : '2-level'}: the guest runs on them (identity and linear)`, () => {
      const env = makeEnv({ pae, pfnLimit: PFN_LIMIT });
      env.shadow.initGuestPagetable(PFN_LIMIT * 4096, 0);
      const v = env.vcpus[0];
      expect(v.access(0x5123, true, false)).toEqual({ frame: MEM_BASE + 0x5000 });
      expect(v.access(KA + 0x7000, false, true)).toEqual({ frame: MEM_BASE + 0x7000 });
      expect(env.shadow.guestPa(v, KA + 0x7abc)).toBe(0x7abc);
    });

    it(`${pae ? 'PAE' : '2-level'}: tables that do not fit kill`, () => {
      const env = makeEnv({ pae, pfnLimit: PFN_LIMIT });
      expect(env.shadow.initGuestPagetable(PFN_LIMIT * 4096, PFN_LIMIT * 4096)).toBe(-1);
      expect(env.host.kills[0]).toMatch(new RegExp('^' + KillReason.bootTables));
    });
  }
});

describe('LGUEST_INIT: kernel_address', () => {
  it('kills when it reaches the Switcher slot', () => {
    for (const [pae, bad, good] of [[false, 0xffc00000, 0xff800000], [true, 0xffe00000, 0xffc00000]] as const) {
      const env = makeEnv({ pae });
      env.shadow.guestDataInit(good);
      expect(env.host.kills).toEqual([]);
      env.shadow.guestDataInit(bad);
      expect(env.host.kills[0]).toBe(`${KillReason.kernelAddress} 0x${bad.toString(16)}`);
    }
  });
});

for (const pae of modes) {
  const mode = pae ? 'PAE' : '2-level';
  describe(`(i) demandPage, ${mode}`, () => {
    it('a read installs a read-only entry and marks the guest entry accessed; a write makes it dirty and writable', () => {
      const { env, g, top, v, sh } = setup(pae);
      const pteAddr = g.map(top, 0x400000, 9, PTE_P | PTE_RW | PTE_US | PTE_G);
      expect(v.access(0x400010, false, true)).toEqual({ frame: MEM_BASE + 9 * 4096 });
      expect(gread32(env, pteAddr) & (PTE_A | PTE_D)).toBe(PTE_A);
      expect(spte(env, 0x400000) & (PTE_RW | PTE_G)).toBe(0); // read-only until dirty, global stripped
      expect(sh.stats.faultsFixed).toBe(1);
      expect(v.access(0x400010, true, true)).toEqual({ frame: MEM_BASE + 9 * 4096 });
      expect(gread32(env, pteAddr) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
      expect(spte(env, 0x400000) & PTE_RW).toBe(PTE_RW);
      expect(sh.frameRefs(9)).toBe(1);
      expect(sh.stats.leakedFrames).toBe(1);
    });

    it('faults the guest must see: not present (P clear) and protection (P set), also from the directory', () => {
      const { g, top, v, sh } = setup(pae);
      expect(v.access(0x400000, false, false)).toEqual({ fault: 0 });
      g.map(top, 0x400000, 9, PTE_P | PTE_US);
      expect(v.access(0x401000, true, true)).toEqual({ fault: PFEC_W | PFEC_U });
      expect(v.access(0x400000, true, true)).toEqual({ fault: PFEC_P | PFEC_W | PFEC_U });
      g.map(top, 0x400000 + (pae ? 2 << 20 : 4 << 20), 9, PTE_P | PTE_RW | PTE_US, PTE_P | PTE_US | PTE_A); // read-only directory
      expect(v.access(0x400000 + (pae ? 2 << 20 : 4 << 20), true, false)).toEqual({ fault: PFEC_P | PFEC_W });
      g.map(top, 0x800000 + (pae ? 2 << 20 : 4 << 20), 9, PTE_P | PTE_RW | PTE_US, PTE_P | PTE_RW | PTE_A); // supervisor directory
      expect(v.access(0x800000 + (pae ? 2 << 20 : 4 << 20), false, true)).toEqual({ fault: PFEC_P | PFEC_U });
      expect(sh.stats.faultsReflected).toBe(5);
    });

    it('kills on a PSE page', () => {
      const { g, top, v, host } = setup(pae);
      g.map(top, 0x400000, 9, PTE_P | PTE_PS);
      expect(v.access(0x400000, false, false)).toEqual({ killed: `${KillReason.psePage} at 0x400000` });
      expect(host.kills).toHaveLength(1);
    });

    it('kills on a frame at or beyond pfnLimit', () => {
      const { g, top, v } = setup(pae);
      g.map(top, 0x400000, PFN_LIMIT, PTE_P);
      expect(v.access(0x400000, false, false)).toEqual({ killed: `${KillReason.pteFrame} at 0x400000` });
    });

    it('kills on a top-level entry with bad flags', () => {
      const { env, g, top, v } = setup(pae);
      g.map(top, 0x400000, 9, PTE_P);
      const pgdAddr = pae ? top : top + 4;
      gwriteEntry(env, pgdAddr, gread32(env, pgdAddr) | (pae ? PTE_RW : PTE_PS));
      expect(v.access(0x400000, false, false)).toEqual({ killed: `${KillReason.pgdFlags} 0x${(pae ? PTE_P | PTE_RW : DIR | PTE_PS).toString(16)}` });
    });

    it('kills on a top-level entry beyond pfnLimit', () => {
      const { env, top, v } = setup(pae);
      gwriteEntry(env, pae ? top : top + 4, (PFN_LIMIT << 12) | (pae ? PTE_P : DIR));
      expect(v.access(0x400000, false, false)).toEqual({ killed: KillReason.pgdFrame });
    });

    if (pae) {
      it('kills on a middle-level entry with bad flags or beyond pfnLimit', () => {
        const a = setup(true);
        a.g.map(a.top, 0x400000, 9, PTE_P, DIR | PTE_PWT);
        expect(a.v.access(0x400000, false, false)).toEqual({ killed: `${KillReason.pmdFlags} 0x${(DIR | PTE_PWT).toString(16)}` });
        const b = setup(true);
        b.g.map(b.top, 0x400000, 9, PTE_P);
        gwriteEntry(b.env, b.g.dirAddr(b.top, 0x400000), (PFN_LIMIT + 1) << 12 | DIR);
        expect(b.v.access(0x400000, false, false)).toEqual({ killed: KillReason.pmdFrame });
      });
    }

    it('kills on the Switcher\'s addresses', () => {
      const { env, g, top, v } = setup(pae);
      const sw = pae ? 0xffe00000 : 0xffc00000;
      g.map(top, sw + 0x3000, 9, PTE_P | PTE_RW);
      env.shadow.mapSwitcher(v, env.switcherPtePage);
      expect(v.access(sw + 0x3000, false, false)).toEqual({ killed: `${KillReason.switcher} 0x${(sw + 0x3000).toString(16)}` });
    });

    it('kills when the Host pool runs out and there is nothing to reclaim', () => {
      const { env, g, top, v, boot, sh, host } = setup(pae, { vcpus: 2 });
      sh.newPagetable(env.vcpus[1], boot); // the other top level is in use: not to be evicted
      g.map(top, 0x400000, 9, PTE_P);
      host.shrinkPool(0);
      expect(v.access(0x400000, false, false)).toEqual({ killed: KillReason.outOfPages });
    });

    // S:340: sparse mappings (one shadow page-table page each) in 3 top levels, more than the pool holds.
    // (The guest's own tables stay below PFN_LIMIT: the harness's pool follows guest RAM.)
    it('a dry pool evicts unused top levels, then page-table pages; references stay exact', () => {
      const { env, g, top, v, sh, host } = setup(pae, { poolPages: 24 });
      const tops = [top, g.top(), g.top()];
      const span = pae ? 2 << 20 : 4 << 20;
      const vas = Array.from({ length: 8 }, (_, i) => 0x400000 + i * 2 * span);
      tops.forEach((t, n) => vas.forEach((va, i) => g.map(t, va, 1 + ((n * 8 + i) % 60), PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)));
      v.esp1 = 0; v.stackPages = 0;
      for (let round = 0; round < 3; round++) {
        for (const [n, t] of tops.entries()) {
          sh.newPagetable(v, t);
          for (const [i, va] of vas.entries()) {
            expect(v.access(va, true, true)).toEqual({ frame: MEM_BASE + ((1 + ((n * 8 + i) % 60)) << 12) });
          }
          expect(checkShadows(env)).toEqual([]);
        }
      }
      expect(host.kills).toEqual([]);
      expect(sh.stats.poolEvictedSlots).toBeGreaterThan(0);
      // One top level alone needs more than the pool: its own page-table pages go too.
      const big = g.top();
      const many = Array.from({ length: 24 }, (_, i) => 0x400000 + i * span);
      many.forEach((va, i) => g.map(big, va, 1 + (i % 60), PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D));
      expect(g.next).toBeLessThanOrEqual(PFN_LIMIT);
      sh.newPagetable(v, big);
      for (const [i, va] of many.entries()) expect(v.access(va, false, true)).toEqual({ frame: MEM_BASE + ((1 + (i % 60)) << 12) });
      expect(host.kills).toEqual([]);
      expect(sh.stats.poolEvictedTables).toBeGreaterThan(0);
      expect(checkShadows(env)).toEqual([]);
      sh.releaseAll();
      expect(sh.stats.leakedFrames).toBe(0);
      expect(sh.stats.shadowPagesInUse).toBe(0);
      for (let pfn = 0; pfn < PFN_LIMIT; pfn++) expect(sh.frameRefs(pfn)).toBe(0);
    });

    it('reclaim never drops the pinned kernel stack', () => {
      const { g, top, v, sh, host } = setup(pae, { poolPages: 8 });
      const span = pae ? 2 << 20 : 4 << 20;
      const STACK = KA + 0x10000;
      g.map(top, STACK, 20, PTE_P | PTE_RW | PTE_A | PTE_D, KDIR);
      v.esp1 = STACK + 0x1000; v.stackPages = 1;
      sh.pinStackPages(v);
      const vas = Array.from({ length: 12 }, (_, i) => 0x400000 + i * span);
      vas.forEach((va, i) => g.map(top, va, 30 + i, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D));
      for (const va of vas) v.access(va, false, true);
      expect(host.kills).toEqual([]);
      expect(sh.stats.poolEvictedTables).toBeGreaterThan(0);
      expect(spte(v.env, STACK) & (PTE_P | PTE_RW)).toBe(PTE_P | PTE_RW);
    });

    it('kills when the top level is not in guest memory', () => {
      const { v, sh, host } = setup(pae);
      sh.newPagetable(v, PFN_LIMIT * 4096);
      expect(v.access(0x1000, false, false)).toEqual({ killed: `${KillReason.tableAddress} 0x${(PFN_LIMIT * 4096).toString(16)}` });
      expect(host.kills).toHaveLength(1);
    });

    it('pre-faulting fills the neighbours the guest marked accessed, and only those', () => {
      const { env, g, top, v, sh } = setup(pae, { shadow: { prefault: 8 } });
      for (let p = 0; p < 8; p++) g.map(top, 0x400000 + p * 4096, 10 + p, PTE_P | PTE_RW | (p % 2 ? PTE_A : 0) | (p === 3 ? PTE_D : 0));
      g.map(top, 0x400000 + 5 * 4096, PFN_LIMIT + 1, PTE_P | PTE_A); // bad, but never touched: no kill
      v.access(0x400000, false, false);
      expect(sh.stats.prefaulted).toBe(3); // pages 1, 3, 7
      expect(spte(env, 0x401000) & PTE_P).toBe(PTE_P);
      expect(spte(env, 0x402000)).toBe(0);
      expect(spte(env, 0x403000) & PTE_RW).toBe(PTE_RW); // dirty: writable
      expect(spte(env, 0x405000)).toBe(0);
      expect(env.host.kills).toEqual([]);
      expect(checkShadows(env)).toEqual([]);
    });
  });

  describe(`(ii) pinStackPages, ${mode}`, () => {
    it('maps the stack writable, and kills when the guest has no stack there', () => {
      const { env, g, top, v, sh, host } = setup(pae);
      g.map(top, KA + 0x10000, 20, PTE_P | PTE_RW);
      g.map(top, KA + 0x11000, 21, PTE_P | PTE_RW);
      v.esp1 = KA + 0x12000;
      v.stackPages = 2;
      sh.pinStackPages(v);
      expect(spte(env, KA + 0x11000) & (PTE_P | PTE_RW)).toBe(PTE_P | PTE_RW);
      expect(spte(env, KA + 0x10000) & (PTE_P | PTE_RW)).toBe(PTE_P | PTE_RW);
      expect(host.kills).toEqual([]);
      v.esp1 = KA + 0x20000;
      sh.pinStackPages(v);
      expect(host.kills[0]).toBe(`${KillReason.stackPage} 0x${(KA + 0x1ffff).toString(16)}`);
    });

    it('after a flush another vCPU\'s stack is pinned again before it enters', () => {
      const { env, g, top, sh } = setup(pae, { vcpus: 2, shadow: { kernelFlush: 'full' } });
      const [v0, v1] = env.vcpus;
      g.map(top, KA + 0x10000, 20, PTE_P | PTE_RW, KDIR);
      const top2 = g.top();
      const k = pae ? 3 * 8 : (KA >>> 22) * 4;
      gwriteEntry(env, top2 + k, gread32(env, top + k));
      for (const v of [v0, v1]) { v.esp1 = KA + 0x11000; v.stackPages = 1; }
      sh.newPagetable(v1, top2);
      expect(spte(env, KA + 0x10000, v1.pgdIndex) & PTE_RW).toBe(PTE_RW);
      sh.clearAll(v0);
      expect(spte(env, KA + 0x10000, v1.pgdIndex)).toBe(0);
      sh.mapSwitcher(v1, env.switcherPtePage);
      expect(spte(env, KA + 0x10000, v1.pgdIndex) & (PTE_P | PTE_RW)).toBe(PTE_P | PTE_RW);
    });
  });

  describe(`(iii) setPte, setPgd, setPmd, ${mode}`, () => {
    it('SET_PTE: accessed installs read-only, dirty writable, neither removes; kernel addresses reach every shadow', () => {
      const { env, g, top, v, sh } = setup(pae);
      const top2 = g.top();
      if (pae) gwriteEntry(env, top2 + 24, gread32(env, top + 24));
      g.map(top, 0x400000, 9, PTE_P | PTE_RW);
      g.map(top, KA, 11, PTE_P | PTE_RW | PTE_A);
      if (!pae) gwriteEntry(env, top2 + (KA >>> 22) * 4, gread32(env, top + (KA >>> 22) * 4));
      else gwriteEntry(env, top2 + 24, gread32(env, top + 24));
      v.access(0x400000, false, false);
      v.access(KA, false, false);
      sh.newPagetable(v, top2);
      v.access(KA, false, false);
      sh.newPagetable(v, top);
      sh.setPte(v, top, 0x400000, (12 << 12) | PTE_P | PTE_RW | PTE_A, 0);
      expect(spte(env, 0x400000)).toBe((MEM_BASE + 12 * 4096) | PTE_P | PTE_A);
      sh.setPte(v, top, 0x400000, (12 << 12) | PTE_P | PTE_RW | PTE_A | PTE_D, 0);
      expect(spte(env, 0x400000)).toBe((MEM_BASE + 12 * 4096) | PTE_P | PTE_RW | PTE_A | PTE_D);
      sh.setPte(v, top, 0x400000, (12 << 12) | PTE_P | PTE_RW, 0);
      expect(spte(env, 0x400000)).toBe(0);
      sh.setPte(v, top2, 0x400000, (13 << 12) | PTE_P | PTE_A, 0); // no shadow for that in top2: nothing
      sh.setPte(v, top, KA, (14 << 12) | PTE_P | PTE_A, 0);
      for (let s = 0; s < 4; s++) if (sh.slotTop(s) >= 0 && spte(env, KA, s) !== 0) expect(spte(env, KA, s)).toBe((MEM_BASE + 14 * 4096) | PTE_P | PTE_A);
      expect(sh.frameRefs(14)).toBe(2);
      expect(sh.frameRefs(11)).toBe(0);
    });

    it('SET_PTE at the Switcher\'s addresses kills', () => {
      const { v, sh, top, host } = setup(pae);
      sh.mapSwitcher(v, sh.slotTop(0));
      v.access(KA, false, false); // something in the kernel part (PAE: PGD 3 is there anyway)
      sh.setPte(v, top, pae ? 0xffe01000 : 0xffc01000, PTE_P | PTE_A, 0);
      expect(host.kills[0]).toMatch(new RegExp('^' + KillReason.switcher));
    });

    it('SET_PGD drops the entry, ignores the Switcher slot', () => {
      const { env, g, top, v, sh, host } = setup(pae);
      g.map(top, 0x400000, 9, PTE_P);
      v.access(0x400000, false, false);
      const sw = pae ? 3 : 1023;
      sh.mapSwitcher(v, env.switcherPtePage);
      sh.setPgd(top, sw);
      expect(v.access(pae ? 0xffe00000 : 0xffc00000, false, false)).toEqual({ frame: env.switcherFrames[0] });
      sh.setPgd(top, pae ? 0 : 1);
      expect(spte(env, 0x400000)).toBe(0);
      expect(sh.frameRefs(9)).toBe(0);
      expect(host.kills).toEqual([]);
    });

    if (pae) {
      it('SET_PMD drops only that entry, in every shadow mirroring the PMD page (the seed dropped everything)', () => {
        for (const precisePmd of [true, false]) {
          const { env, g, top, v, sh } = setup(true, { shadow: { precisePmd } });
          const kpmd = g.page();
          gwriteEntry(env, top + 24, kpmd | PTE_P);
          g.map(top, KA, 11, PTE_P | PTE_RW, KDIR);
          g.map(top, KA + (2 << 20), 12, PTE_P | PTE_RW, KDIR);
          g.map(top, 0x400000, 9, PTE_P);
          const top2 = g.top();
          gwriteEntry(env, top2 + 24, kpmd | PTE_P);
          for (const t of [top2, top]) {
            sh.newPagetable(v, t);
            v.access(KA, false, false);
            v.access(KA + (2 << 20), false, false);
          }
          v.access(0x400000, false, false);
          gwriteEntry(env, kpmd + 8, 0);
          sh.setPmd(v, kpmd, 1);
          expect(spte(env, KA + (2 << 20))).toBe(0);
          expect(spte(env, KA) !== 0).toBe(precisePmd);
          expect(spte(env, 0x400000) !== 0).toBe(precisePmd);
          expect(checkShadows(env)).toEqual([]);
        }
      });
    } else {
      it('SET_PMD without PAE kills', () => {
        const { v, sh, host } = setup(false);
        sh.setPmd(v, 0, 0);
        expect(host.kills).toEqual([KillReason.setPmdNoPae]);
      });
    }
  });

  describe(`(iv) newPagetable, ${mode}`, () => {
    it('reuses a cached shadow; evicts the least recently used; keeps the kernel part', () => {
      const { env, g, top, v, sh } = setup(pae);
      const tops = [top, g.top(), g.top(), g.top(), g.top()];
      for (const t of tops) {
        if (pae) gwriteEntry(env, t + 24, gread32(env, top + 24) || 0);
      }
      g.map(top, KA, 11, PTE_P | PTE_A, KDIR);
      if (pae) for (const t of tops) gwriteEntry(env, t + 24, gread32(env, top + 24));
      else for (const t of tops) gwriteEntry(env, t + (KA >>> 22) * 4, gread32(env, top + (KA >>> 22) * 4));
      g.map(top, 0x400000, 9, PTE_P);
      v.access(KA, false, false);
      v.access(0x400000, false, false);
      // slots: 0 = boot, 1 = top
      sh.newPagetable(v, tops[1]); // slot 2
      v.access(KA, false, false);
      sh.newPagetable(v, tops[2]); // slot 3
      sh.newPagetable(v, tops[0]); // hit
      expect(sh.stats.cacheHits).toBe(1);
      sh.newPagetable(v, tops[3]); // evicts the boot top level (never used since)
      expect(sh.slotGpgdir(0)).toBe(tops[3]);
      sh.newPagetable(v, tops[4]); // evicts tops[1] (slot 2)
      expect(sh.slotGpgdir(2)).toBe(tops[4]);
      expect(sh.stats.cacheEvictions).toBe(2);
      expect(spte(env, KA)).not.toBe(0); // the reused slot kept its kernel part
      expect(sh.stats.faultsFixed).toBe(3);
      sh.newPagetable(v, tops[0]);
      expect(spte(env, 0x400000)).not.toBe(0); // still cached
      expect(env.host.kills).toEqual([]);
    });

    it('random eviction (the seed) is still there', () => {
      const { g, v, sh } = setup(pae, { shadow: { eviction: 'random', random: () => 0.3 } });
      sh.newPagetable(v, g.top());
      expect(v.pgdIndex).toBe(1);
    });

    // Issue 10, defect 1: a top level's Switcher entry maps one vCPU's Switcher pages only, so two vCPUs
    // on the same guest top level each get a shadow of their own, and changes reach both.
    it('two vCPUs on one guest top level get a shadow each, each with its own Switcher PTE page', () => {
      const { env, g, top, sh, host } = setup(pae, { vcpus: 2 });
      const [v0, v1] = env.vcpus;
      sh.newPagetable(v1, top);
      expect(v1.pgdIndex).not.toBe(v0.pgdIndex);
      expect(sh.slotGpgdir(v1.pgdIndex)).toBe(top);
      const pte0 = env.switcherPtePage, pte1 = pte0 + 0x1000; // any page-aligned hpa will do for the entry
      const entryOf = (slot: number): number => {
        const t = sh.slotTop(slot);
        return pae ? ((env.mem.i32[(t + 24) >>> 2] & ~0xfff) >>> 0) + 511 * 8 : t + 1023 * 4;
      };
      sh.mapSwitcher(v0, pte0);
      sh.mapSwitcher(v1, pte1);
      expect(env.mem.i32[entryOf(v0.pgdIndex) >>> 2]).toBe(pte0 | PAGE_KERNEL_EXEC);
      expect(env.mem.i32[entryOf(v1.pgdIndex) >>> 2]).toBe(pte1 | PAGE_KERNEL_EXEC);
      // A user mapping both shadows hold: SET_PTE and FLUSH_TLB(0) reach both.
      const pteAddr = g.map(top, 0x400000, 9, PTE_P | PTE_RW | PTE_US | PTE_A);
      for (const v of [v0, v1]) expect(v.access(0x400000, false, true)).toEqual({ frame: MEM_BASE + (9 << 12) });
      gwriteEntry(env, pteAddr, (10 << 12) | PTE_P | PTE_RW | PTE_US | PTE_A);
      sh.setPte(v0, top, 0x400000, (10 << 12) | PTE_P | PTE_RW | PTE_US | PTE_A, 0);
      for (const v of [v0, v1]) expect(spte(env, 0x400000, v.pgdIndex) & ~0xfff).toBe(MEM_BASE + (10 << 12));
      sh.flushUser(v1);
      for (const v of [v0, v1]) expect(spte(env, 0x400000, v.pgdIndex)).toBe(0);
      expect(host.kills).toEqual([]);
      expect(checkShadows(env).filter((p) => !p.includes('Switcher slot'))).toEqual([]);
    });

    it('mapSwitcher refuses to map a vCPU\'s Switcher pages into a top level another vCPU runs on', () => {
      const { env, sh, host } = setup(pae, { vcpus: 2 });
      const [v0, v1] = env.vcpus;
      v1.pgdIndex = v0.pgdIndex; // a Host bug: v1 never switched to a slot of its own
      sh.mapSwitcher(v1, env.switcherPtePage);
      expect(host.kills[0]).toBe(`${KillReason.sharedTop} ${v0.pgdIndex}`);
    });

    it('LRU does not take a slot another vCPU runs on', () => {
      const { env, g, sh } = setup(pae, { vcpus: 2 });
      const [v0, v1] = env.vcpus;
      const t = [g.top(), g.top(), g.top(), g.top()];
      sh.newPagetable(v1, t[0]);
      sh.newPagetable(v0, t[1]);
      sh.newPagetable(v0, t[2]);
      const mine = v1.pgdIndex;
      sh.newPagetable(v0, t[3]);
      sh.newPagetable(v0, g.top());
      expect(v1.pgdIndex).toBe(mine);
      expect(sh.slotGpgdir(mine)).toBe(t[0]);
    });
  });

  describe(`(v) flushes, ${mode}`, () => {
    it('flushUser drops the user part of the current shadow only', () => {
      const { env, g, top, v, sh } = setup(pae);
      g.map(top, 0x400000, 9, PTE_P);
      g.map(top, KA, 11, PTE_P, KDIR);
      v.access(0x400000, false, false);
      v.access(KA, false, false);
      sh.flushUser(v);
      expect(spte(env, 0x400000)).toBe(0);
      expect(spte(env, KA)).not.toBe(0);
      expect(sh.frameRefs(9)).toBe(0);
    });

    it('clearAll: revalidation keeps what still agrees, drops what changed; full drops everything', () => {
      for (const kernelFlush of ['revalidate', 'full'] as const) {
        const { env, g, top, v, sh } = setup(pae, { shadow: { kernelFlush } });
        const a = g.map(top, KA, 11, PTE_P, KDIR);
        g.map(top, KA + 0x1000, 12, PTE_P, KDIR);
        g.map(top, 0x400000, 9, PTE_P);
        for (const va of [KA, KA + 0x1000, 0x400000]) v.access(va, false, false);
        gwriteEntry(env, a, (13 << 12) | PTE_P | PTE_A); // changed behind our back
        sh.clearAll(v);
        expect(spte(env, KA)).toBe(0);
        expect(spte(env, KA + 0x1000) !== 0).toBe(kernelFlush === 'revalidate');
        expect(spte(env, 0x400000) !== 0).toBe(kernelFlush === 'revalidate');
        expect(v.access(KA, false, false)).toEqual({ frame: MEM_BASE + 13 * 4096 });
        expect(checkShadows(env)).toEqual([]);
      }
    });
  });

  describe(`(vi) mapSwitcher, ${mode}`, () => {
    it('hooks the Switcher PTE page at the Switcher slot, supervisor only, and returns CR3', () => {
      const { env, v, sh } = setup(pae);
      const cr3 = sh.mapSwitcher(v, env.switcherPtePage);
      expect(cr3).toBe(sh.slotTop(v.pgdIndex));
      const entry = pae ? (env.mem.i32[(cr3 + 24) >>> 2] & ~0xfff) + 511 * 8 : cr3 + 1023 * 4;
      expect(env.mem.i32[entry >>> 2]).toBe(env.switcherPtePage | PAGE_KERNEL_EXEC);
      const sw = pae ? 0xffe00000 : 0xffc00000;
      expect(v.access(sw + 0x1000, true, false)).toEqual({ frame: env.switcherFrames[1] });
      expect(v.access(sw + 0x1000, false, true)).toEqual({ fault: PFEC_U }); // the guest has nothing there
    });
  });

  describe(`guestPa, ${mode}`, () => {
    it('walks the guest\'s tables; a hole at any level kills without crashing', () => {
      const { env, g, top, v, sh, host } = setup(pae);
      g.map(top, 0x400000, 9, PTE_P);
      expect(sh.guestPa(v, 0x400123)).toBe(9 * 4096 + 0x123);
      expect(sh.guestPa(v, 0x401000)).toBe(-1);
      expect(host.kills[0]).toBe(`${KillReason.badAddress} 0x401000`);
      if (pae) {
        gwriteEntry(env, g.dirAddr(top, 0x400000), 0); // PMD gone: the seed BUG()ed here
        expect(sh.guestPa(v, 0x400000)).toBe(-1);
      }
      expect(sh.guestPa(v, 0x80000000)).toBe(-1);
    });
  });

  describe(`releaseAll, ${mode}`, () => {
    it('puts back every frame reference and frees every page', () => {
      const { env, g, top, v, sh, host } = setup(pae, { shadow: { prefault: 4 } });
      for (let p = 0; p < 6; p++) g.map(top, 0x400000 + p * 4096, 9 + (p % 2), PTE_P | PTE_A | PTE_RW);
      g.map(top, KA, 11, PTE_P, KDIR);
      for (let p = 0; p < 6; p++) v.access(0x400000 + p * 4096, p % 2 === 0, false);
      v.access(KA, false, false);
      sh.newPagetable(v, g.top());
      expect(sh.stats.leakedFrames).toBeGreaterThan(0);
      sh.releaseAll();
      expect(sh.stats.leakedFrames).toBe(0);
      expect(sh.stats.shadowPagesInUse).toBe(0);
      expect(host.outstanding.size).toBe(0);
      for (let pfn = 0; pfn < PFN_LIMIT; pfn++) expect(sh.frameRefs(pfn)).toBe(0);
      expect(env.host.kills).toEqual([]);
    });
  });
}

describe('shared bookkeeping', () => {
  it('a second Shadow attached to the same state sees the same slots and counts', () => {
    const { env, g, top, v, sh } = setup(false);
    g.map(top, 0x400000, 9, PTE_P);
    v.access(0x400000, false, false);
    const other = new Shadow(env.host, { state: sh.state, attach: true });
    expect(other.slotGpgdir(v.pgdIndex)).toBe(top);
    expect(other.frameRefs(9)).toBe(1);
    expect(other.stats.faultsFixed).toBe(1);
    other.releaseAll();
    expect(sh.stats.leakedFrames).toBe(0);
  });

  // Each of 5 vCPUs switches to a top level of its own mapping VA to frame 100 + i.
  function fiveVcpus(pae: boolean, cacheSize?: number) {
    const env = makeEnv({ pae, pfnLimit: 128, vcpus: 5, shadow: cacheSize === undefined ? {} : { cacheSize } });
    const sh = env.shadow;
    sh.initGuestPagetable(128 * 4096, 0);
    sh.guestDataInit(0xc0000000);
    let next = 64;
    const page = () => next++ * 4096;
    const VA = 0x400000;
    const tops: number[] = [];
    for (let i = 0; i < 5; i++) {
      const top = page(), pt = page();
      if (pae) {
        const pmd = page();
        gwriteEntry(env, top, pmd | PTE_P);
        gwriteEntry(env, pmd + ((VA >>> 21) & 511) * 8, pt | PTE_P | PTE_RW | PTE_US);
        gwriteEntry(env, pt + ((VA >>> 12) & 511) * 8, ((100 + i) << 12) | PTE_P | PTE_RW | PTE_US);
      } else {
        gwriteEntry(env, top + (VA >>> 22) * 4, pt | PTE_P | PTE_RW | PTE_US);
        gwriteEntry(env, pt + ((VA >>> 12) & 1023) * 4, ((100 + i) << 12) | PTE_P | PTE_RW | PTE_US);
      }
      tops.push(top);
    }
    for (let i = 0; i < 5; i++) sh.newPagetable(env.vcpus[i], tops[i]);
    const frames = env.vcpus.map((v) => {
      const a = v.access(VA, false, false);
      return 'frame' in a ? (a.frame - MEM_BASE) >>> 12 : a;
    });
    return { env, frames };
  }

  it.each([false, true])('with a slot per vCPU, 5 vCPUs on 5 top levels each keep their own (pae %s)', (pae) => {
    const { env, frames } = fiveVcpus(pae, 5);
    expect(env.host.kills).toEqual([]);
    expect(frames).toEqual([100, 101, 102, 103, 104]);
  });

  it.each([false, true])('with too few slots, a vCPU is never given one another vCPU runs on: the guest dies (pae %s)', (pae) => {
    const { env, frames } = fiveVcpus(pae);
    expect(env.host.kills[0]).toBe('no shadow top level to switch to: every cached one is in use by another vCPU');
    // Nobody reads another vCPU's frame: the guest is dead, its accesses stop there.
    frames.forEach((f) => expect(f).toEqual({ killed: env.host.kills[0] }));
  });

  // 2-level: two top levels X and Y share the kernel entry for 0xD0000000. The guest replaces the page
  // table under it in every top level, Y first, X last, each with SET_PGD; in between another vCPU
  // switches to Y and the Host reuses X's slot for it. The seed keeps a reused slot's kernel part (every
  // top level has the same, abi 6.2): Y's shadow keeps the old table, and SET_PGD for X, no longer cached,
  // drops nothing. An SMP guest breaks the rule for that moment, so an SMP Host reuses strictly.
  function kernelPartRace(strictKernelReuse: boolean): unknown {
    const env = makeEnv({ pae: false, pfnLimit: 128, vcpus: 2, shadow: { strictKernelReuse } });
    const sh = env.shadow;
    sh.initGuestPagetable(128 * 4096, 0);
    sh.guestDataInit(0xc0000000);
    const boot = sh.currentGpgdir(env.vcpus[0]);
    const [v0, v1] = env.vcpus;
    let next = 64;
    const page = () => next++ * 4096;
    const KVA = 0xd0000000, idx = KVA >>> 22;
    const KDIR = PTE_P | PTE_RW | PTE_A | PTE_D;
    const oldPt = page(), newPt = page();
    gwriteEntry(env, oldPt + ((KVA >>> 12) & 1023) * 4, (100 << 12) | KDIR);
    gwriteEntry(env, newPt + ((KVA >>> 12) & 1023) * 4, (101 << 12) | KDIR);
    const X = page(), Y = page(), others = [page(), page()];
    for (const t of [X, Y]) gwriteEntry(env, t + idx * 4, oldPt | KDIR);
    sh.newPagetable(v0, X);
    expect(v0.access(KVA, false, false)).toEqual({ frame: MEM_BASE + (100 << 12) });
    sh.newPagetable(v1, boot);
    sh.newPagetable(v1, others[0]);
    sh.newPagetable(v1, others[1]);
    sh.newPagetable(v0, others[0]); // X's slot: cached, unowned, least recently used
    gwriteEntry(env, Y + idx * 4, newPt | KDIR);
    sh.setPgd(Y, idx);
    sh.newPagetable(v1, Y);          // reuses X's slot
    expect(sh.slotGpgdir(v1.pgdIndex)).toBe(Y);
    gwriteEntry(env, X + idx * 4, newPt | KDIR);
    sh.setPgd(X, idx);
    return v1.access(KVA, false, false);
  }

  it('strictKernelReuse: a reused slot never keeps a kernel entry its new top level does not have', () => {
    expect(kernelPartRace(true)).toEqual({ frame: MEM_BASE + (101 << 12) });
  });

  it("without it (the seed's rule, a uniprocessor Host), the old kernel entry survives the reuse", () => {
    expect(kernelPartRace(false)).toEqual({ frame: MEM_BASE + (100 << 12) });
  });

  it('refuses a bad prefault window', () => {
    const env = makeEnv({ pae: false });
    expect(() => new Shadow(env.host, { prefault: 3 })).toThrow(RangeError);
  });
});

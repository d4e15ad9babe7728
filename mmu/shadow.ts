/**
 * lguest's shadow page tables (the seed, drivers/lguest/page_tables.c), re-implemented for lguest-ts.
 *
 * The guest keeps page tables in its own memory, but the CPU never walks them: it walks the shadows built
 * here, in pages from the Host pool, which translate guest virtual addresses straight to host-physical
 * frames (hpa = memBase + gpa). Shadows are filled lazily, on the guest's page faults, and every guest
 * entry is checked before it is trusted. The tour comments (H:3nn) follow the seed's seven parts.
 *
 * Differences from the seed, all deliberate (mmu/README.md has the numbers):
 * - eviction among the 4 cached top levels is least-recently-used, avoiding slots other vCPUs run on
 *   (the seed's random choice stays selectable); a top level runs one vCPU at a time (its Switcher
 *   entry maps that vCPU's Switcher pages only), so vCPUs on one guest top level have a shadow each;
 * - a dry Host pool evicts (unused top levels, then page-table pages) instead of killing (S:340);
 * - PAE SET_PMD drops only the middle-level entry that changed, in every shadow built from that PMD page;
 *   FLUSH_TLB(1) revalidates every shadow entry against the guest's tables instead of dropping them all
 *   (both selectable back to the seed's discard-everything);
 * - pre-faulting of neighbouring PTEs that the guest already marked accessed (the seed's M:014 idea);
 * - permission checks look at every level (the seed only looked at the PTE, so a read-only directory
 *   entry made a write fault forever), SET_PTE never installs a writable entry the guest has not dirtied,
 *   nothing is installed after a kill, guestPa checks each level before reading the next (abi 6.7).
 *
 * All bookkeeping (the 4 slots, frame reference counts, statistics) is in one buffer, which may be a
 * SharedArrayBuffer shared by every vCPU worker (options.state / attach); callers hold the Host's lock.
 */
import { PFEC_P, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../emulator/constants.ts';
import type { PhysicalMemory } from './memory.ts';
import type { ShadowHost, ShadowPageTables, ShadowStats, ShadowVcpu } from './shadow-api.ts';
import {
  BOOT_PAGE_OFFSET, BOOT_PTE_FLAGS, DIR_COMPARE_FLAGS, ENTRIES_2LEVEL, ENTRIES_PAE, FLAGS_MASK, KillReason,
  PAE_PGD_ENTRIES, PAGE_KERNEL_EXEC, PAGE_SHIFT, PAGE_SIZE, PAGE_TABLE_FLAGS, SHADOW_CACHE_SIZE,
  SWITCHER_PGD_INDEX_2LEVEL, SWITCHER_PGD_INDEX_PAE, SWITCHER_PMD_INDEX, hex,
} from './shadow-consts.ts';

export type EvictionPolicy = 'lru' | 'random';
export type KernelFlushPolicy = 'revalidate' | 'full';

export interface ShadowOptions {
  /** Which cached top level NEW_PGTABLE throws out: 'lru' (default) or the seed's 'random'. */
  eviction?: EvictionPolicy;
  /** PAE SET_PMD: drop only the changed entry (default true) or, like the seed, everything. */
  precisePmd?: boolean;
  /** clearAll (FLUSH_TLB 1): 'revalidate' keeps every entry that still agrees with the guest (default);
   *  'full' drops everything like the seed. */
  kernelFlush?: KernelFlushPolicy;
  /** On a fault, also fill up to this many neighbouring PTEs (an aligned block) that the guest already
   *  marked accessed. 0 (off) or a power of two; DEFAULT_PREFAULT when not given. */
  prefault?: number;
  /** Random source for the 'random' policy (default Math.random). */
  random?: () => number;
  /** Keep the bookkeeping in this buffer (at least Shadow.stateBytes(pfnLimit) bytes), e.g. a
   *  SharedArrayBuffer another vCPU worker's Shadow also uses. */
  state?: ArrayBufferLike;
  /** With `state`: attach to bookkeeping another Shadow already set up instead of resetting it. */
  attach?: boolean;
  /** Cached top levels (the seed's 4 by default; at most MAX_CACHE_SLOTS). An SMP guest needs at least
   *  one per vCPU, or a vCPU switching page tables would find every slot in use by the others; every
   *  Shadow over one `state` must be given the same number. */
  cacheSize?: number;
  /** A reused slot keeps its kernel part only where it provably mirrors the new top level (PAE: the same
   *  guest PMD page), instead of trusting the seed's rule that every top level has the same kernel part.
   *  An SMP guest breaks that rule for a moment whenever it updates its top levels one by one while
   *  another vCPU switches; the Host sets this for SMP guests. */
  strictKernelReuse?: boolean;
}

/** Statistics beyond the contract's. */
export interface ShadowStatsEx extends ShadowStats {
  /** PTEs filled by pre-faulting. */
  prefaulted: number;
  /** clearAll in 'revalidate' mode: shadow PTEs kept and dropped. */
  revalidateKept: number;
  revalidateDropped: number;
  /** Shadow PTEs installed by demandPage, setPte and pre-faulting. */
  ptesInstalled: number;
  /** The Host pool ran dry (S:340): cached top levels no vCPU ran on thrown out whole, page-table pages
   *  (with their PTEs) dropped from the shadows, and pages given back to the pool by both. */
  poolEvictedSlots: number;
  poolEvictedTables: number;
  poolReclaimed: number;
}

const STAT_NAMES = [
  'faultsFixed', 'faultsReflected', 'cacheHits', 'cacheMisses', 'cacheEvictions', 'flushUser', 'flushAll',
  'setPte', 'setPgd', 'setPmd', 'prefaulted', 'revalidateKept', 'revalidateDropped', 'ptesInstalled',
  'poolEvictedSlots', 'poolEvictedTables', 'poolReclaimed',
] as const;
type StatName = (typeof STAT_NAMES)[number];
const STAT: Record<StatName, number> = Object.fromEntries(STAT_NAMES.map((n, i) => [n, i])) as Record<StatName, number>;

// Layout of the bookkeeping buffer: slots, then a few words, then statistics, then frame reference counts.
const SLOT_GPGDIR = 0; // guest-physical address of the guest top level this slot shadows
const SLOT_TOP = 1; // hpa of the shadow top level, -1 when the slot was never allocated
const SLOT_LAST_USE = 2; // LRU clock value of the last switch to this slot
const SLOT_OWNERS = 3; // bit n: vCPU n runs on this slot
const SLOT_PMD_SRC = 4; // PAE: per PGD index, gpa of the guest PMD page the shadow PMD page mirrors, or -1
const SLOT_WORDS = 8;
const MISC_KERNEL_ADDRESS = 0;
const MISC_CLOCK = 1;
const MISC_HELD_REFS = 2;
const MISC_SHADOW_PAGES = 3;
const MISC_DROP_GEN = 4; // bumped whenever a present shadow PTE goes (the stacks may need pinning again)
const MISC_PINNED_GEN = 5; // per vCPU id (up to 32): MISC_DROP_GEN when its stack was last pinned
const MAX_VCPUS = 32;
const MISC_WORDS = MISC_PINNED_GEN + MAX_VCPUS;
/** Room for this many cached top levels in the bookkeeping, whatever options.cacheSize says. */
export const MAX_CACHE_SLOTS = 16;
const SLOTS_BYTES = MAX_CACHE_SLOTS * SLOT_WORDS * 4;
const MISC_OFFSET = SLOTS_BYTES;
const STATS_OFFSET = Math.ceil((MISC_OFFSET + MISC_WORDS * 4) / 8) * 8;
const REFS_OFFSET = STATS_OFFSET + STAT_NAMES.length * 8;

const NO_PAGE = -1;
/** Pre-fault window by default: bench/shadow.ts measured 92% fewer faults on sequential access and 54% on
 *  random access, for about the same Host time (mmu/README.md). */
export const DEFAULT_PREFAULT = 16;

export class Shadow implements ShadowPageTables {
  readonly stats: ShadowStatsEx;
  /** The bookkeeping buffer (hand it to other vCPU workers with `attach`). */
  readonly state: ArrayBufferLike;
  /** After demandPage returned false: the error code the guest must see. */
  faultErrcode = 0;

  private readonly host: ShadowHost;
  private readonly mem: PhysicalMemory;
  private readonly i32: Int32Array;
  private readonly memBase: number;
  private readonly pfnLimit: number;
  private readonly pae: boolean;
  /** Bytes per entry, entries per page, the Switcher's top-level index. */
  private readonly entrySize: number;
  private readonly entries: number;
  private readonly switcherPgd: number;
  private readonly eviction: EvictionPolicy;
  private readonly precisePmd: boolean;
  private readonly kernelFlush: KernelFlushPolicy;
  private readonly prefault: number;
  private readonly random: () => number;
  /** Cached top levels (slots) in use. */
  readonly cacheSize: number;
  private readonly strictKernelReuse: boolean;

  private readonly slots: Int32Array;
  private readonly misc: Int32Array;
  private readonly statv: Float64Array;
  private readonly refs: Int32Array;

  /** The vCPU whose call is running (demandPage, newPagetable), for reclaim (S:340). */
  private curVcpu: ShadowVcpu | null = null;

  /** The last guest entry read by gread (low and high words). */
  private rLo = 0;
  private rHi = 0;

  static stateBytes(pfnLimit: number): number {
    return REFS_OFFSET + pfnLimit * 4;
  }

  constructor(host: ShadowHost, options: ShadowOptions = {}) {
    this.host = host;
    this.mem = host.mem;
    this.i32 = host.mem.i32;
    this.memBase = host.memBase;
    this.pfnLimit = host.pfnLimit;
    this.pae = host.pae;
    this.entrySize = this.pae ? 8 : 4;
    this.entries = this.pae ? ENTRIES_PAE : ENTRIES_2LEVEL;
    this.switcherPgd = this.pae ? SWITCHER_PGD_INDEX_PAE : SWITCHER_PGD_INDEX_2LEVEL;
    this.eviction = options.eviction ?? 'lru';
    this.precisePmd = options.precisePmd ?? true;
    this.kernelFlush = options.kernelFlush ?? 'revalidate';
    const pf = options.prefault ?? DEFAULT_PREFAULT;
    if (pf < 0 || (pf & (pf - 1)) !== 0 || pf > this.entries) throw new RangeError(`prefault must be 0 or a power of two up to ${this.entries}`);
    this.prefault = pf;
    this.random = options.random ?? Math.random;
    this.cacheSize = options.cacheSize ?? SHADOW_CACHE_SIZE;
    this.strictKernelReuse = options.strictKernelReuse ?? false;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1 || this.cacheSize > MAX_CACHE_SLOTS) {
      throw new RangeError(`cacheSize must be 1 to ${MAX_CACHE_SLOTS}`);
    }
    if ((this.memBase & (PAGE_SIZE - 1)) !== 0) throw new RangeError('memBase must be page aligned');

    const bytes = Shadow.stateBytes(this.pfnLimit);
    this.state = options.state ?? new ArrayBuffer(bytes);
    if (this.state.byteLength < bytes) throw new RangeError(`shadow state needs ${bytes} bytes`);
    this.slots = new Int32Array(this.state, 0, MAX_CACHE_SLOTS * SLOT_WORDS);
    this.misc = new Int32Array(this.state, MISC_OFFSET, MISC_WORDS);
    this.statv = new Float64Array(this.state, STATS_OFFSET, STAT_NAMES.length);
    this.refs = new Int32Array(this.state, REFS_OFFSET, this.pfnLimit);
    if (!options.attach) {
      new Uint8Array(this.state, 0, bytes).fill(0);
      for (let s = 0; s < this.cacheSize; s++) this.resetSlot(s);
    }

    const stats = {} as ShadowStatsEx;
    const statv = this.statv;
    for (const name of STAT_NAMES) {
      const i = STAT[name];
      Object.defineProperty(stats, name, { enumerable: true, get: () => statv[i], set: (v: number) => { statv[i] = v; } });
    }
    Object.defineProperty(stats, 'shadowPagesInUse', { enumerable: true, get: () => this.misc[MISC_SHADOW_PAGES] });
    Object.defineProperty(stats, 'leakedFrames', { enumerable: true, get: () => this.misc[MISC_HELD_REFS] });
    this.stats = stats;
  }

  /** References shadow PTEs hold to guest frame `pfn` (the seed's get_pfn/put_page balance). */
  frameRefs(pfn: number): number {
    return pfn >= 0 && pfn < this.pfnLimit ? this.refs[pfn] : 0;
  }

  /** hpa of slot `s`'s shadow top level, or -1 (tests and the debugger look at shadows through this). */
  slotTop(s: number): number {
    return this.slots[s * SLOT_WORDS + SLOT_TOP];
  }

  /** Guest top level slot `s` shadows (meaningful when slotTop(s) >= 0). */
  slotGpgdir(s: number): number {
    return this.slots[s * SLOT_WORDS + SLOT_GPGDIR] >>> 0;
  }

  get kernelAddress(): number {
    return this.misc[MISC_KERNEL_ADDRESS] >>> 0;
  }

  // ---------------------------------------------------------------------------------------------------
  // Small helpers: guest memory (checked), shadow entries, frame references.

  private bump(name: StatName, by = 1): void {
    this.statv[STAT[name]] += by;
  }

  private kill(reason: string): false {
    this.host.kill(reason);
    return false;
  }

  /** Read a guest entry of `size` bytes at guest-physical `gpa` into rLo/rHi; kills on a bad address. */
  private gread(gpa: number, size: number): boolean {
    if (this.greadQuiet(gpa, size)) return true;
    return this.kill(`${KillReason.tableAddress} ${hex(gpa)}`);
  }

  /** The same without killing (revalidation reads tables the guest may have given up). */
  private greadQuiet(gpa: number, size: number): boolean {
    if (!(gpa >= 0 && gpa + size <= this.pfnLimit * PAGE_SIZE)) {
      this.rLo = this.rHi = 0;
      return false;
    }
    const hpa = this.memBase + gpa;
    this.rLo = this.mem.dv.getInt32(hpa, true);
    this.rHi = size === 8 ? this.mem.dv.getInt32(hpa + 4, true) : 0;
    return true;
  }

  /** Update the low word of a guest entry from `old` to `val`, unless the guest changed it meanwhile. */
  private gupdate(gpa: number, old: number, val: number): boolean {
    const hpa = this.memBase + gpa;
    let ok: boolean;
    if ((hpa & 3) === 0) {
      ok = Atomics.compareExchange(this.i32, hpa >>> 2, old, val) === old;
    } else {
      ok = this.mem.dv.getInt32(hpa, true) === old;
      if (ok) this.mem.dv.setInt32(hpa, val, true);
    }
    if (ok) this.mem.touched(hpa, 4);
    return ok;
  }

  /** Guest frame number of an entry (any high bit makes it a frame far beyond RAM: this CPU has no NX). */
  private static pfnOf(lo: number, hi: number): number {
    return hi !== 0 ? Infinity : lo >>> PAGE_SHIFT;
  }

  private sload(hpa: number): number {
    return this.i32[hpa >>> 2];
  }

  private sstore(hpa: number, v: number): void {
    Atomics.store(this.i32, hpa >>> 2, v);
  }

  /** A page for the shadow from the Host pool; when the pool is dry, reclaim (S:340) and try again.
   *  `keep`: the hpa of the shadow directory entry the page is for (it must survive the reclaim). Only a
   *  pool with nothing left to reclaim kills the guest. */
  private allocShadowPage(keep: number): number {
    let hpa = this.host.allocPage();
    if (hpa < 0 && this.reclaim(keep)) hpa = this.host.allocPage();
    if (hpa < 0) {
      this.kill(KillReason.outOfPages);
      return NO_PAGE;
    }
    this.misc[MISC_SHADOW_PAGES]++;
    return hpa;
  }

  /** A page for a new top level (and, PAE, the PMD page the Switcher hangs from): allocPage, reclaiming
   *  once when the pool is dry. -1 when there is none. */
  private allocTopPage(): number {
    const hpa = this.host.allocPage();
    return hpa >= 0 || !this.reclaim(-1) ? hpa : this.host.allocPage();
  }

  /** [H:303] The Host pool is dry. The seed's pool was as big as the guest could ever need; ours is fixed,
   * so a valid guest with many sparse mappings could run out. We evict instead of killing, in the
   * order the seed's design allows: first whole cached top levels that no vCPU runs on, least recently
   * used first (they are only a cache); then, if that was not enough, page-table pages (a 2-level PDE,
   * a PAE PMD entry, with every PTE under them) from every shadow, least recently used top level first.
   * Never the entry being filled (`keep`), the current vCPU's pinned kernel stack, the Switcher's entry,
   * a top level or a PAE PMD page a vCPU runs on. Every PTE dropped gives its frame reference back, and
   * every vCPU flushes its TLB; what was dropped faults back in. Aims at an eighth of the shadow pages
   * in use (at least one), so a guest larger than the pool pays a reclaim per many faults, not per
   * fault. True if any page went back to the pool. */
  private reclaim(keep: number): boolean {
    const before = this.misc[MISC_SHADOW_PAGES];
    const want = Math.max(1, before >>> 3);
    const cur = this.curVcpu;
    const mine = cur === null ? -1 : cur.pgdIndex;
    const freed = (): number => before - this.misc[MISC_SHADOW_PAGES];
    // By last use, least recent first; the current vCPU's slot last of all.
    const order: number[] = [];
    for (let s = 0; s < this.cacheSize; s++) if (this.slotTop(s) !== NO_PAGE) order.push(s);
    order.sort((a, b) => (a === mine ? 1 : 0) - (b === mine ? 1 : 0) ||
      this.slots[a * SLOT_WORDS + SLOT_LAST_USE] - this.slots[b * SLOT_WORDS + SLOT_LAST_USE]);
    for (const s of order) {
      if (freed() >= want) break;
      if (s === mine || this.slots[s * SLOT_WORDS + SLOT_OWNERS] !== 0) continue;
      this.freeSlot(s);
      this.bump('poolEvictedSlots');
    }
    for (const s of order) {
      if (freed() >= want) break;
      if (this.slotTop(s) === NO_PAGE) continue;
      this.dropTables(s, keep, s === mine ? cur : null, want - freed());
    }
    const n = freed();
    if (n > 0) {
      this.bump('poolReclaimed', n);
      this.host.invalidate();
    }
    return n > 0;
  }

  /** Release slot `s` whole: its entries, its PAE Switcher PMD page and its top level. */
  private freeSlot(s: number): void {
    const top = this.slotTop(s);
    this.releaseSlotEntries(s);
    if (this.pae) this.freeShadowPage(this.switcherPmdPage(top));
    this.freeShadowPage(top);
    this.resetSlot(s);
  }

  /** Reclaim: drop up to `n` page-table pages of slot `s` (but `keep`, and the directory entries over
   *  `stackOf`'s kernel stack). */
  private dropTables(s: number, keep: number, stackOf: ShadowVcpu | null, n: number): void {
    const top = this.slotTop(s);
    const pinned = (i: number, j: number): boolean => {
      if (stackOf === null) return false;
      for (let p = 0; p < stackOf.stackPages; p++) {
        const va = (stackOf.esp1 - 1 - p * PAGE_SIZE) >>> 0;
        if (this.pae ? va >>> 30 === i && ((va >>> 21) & (ENTRIES_PAE - 1)) === j : va >>> 22 === i) return true;
      }
      return false;
    };
    let dropped = 0;
    const drop = (dirAddr: number, i: number, j: number): void => {
      if (dropped >= n || dirAddr === keep || pinned(i, j)) return;
      if (this.releaseDir(dirAddr)) {
        dropped++;
        this.bump('poolEvictedTables');
      }
    };
    if (this.pae) {
      for (let i = 0; i < PAE_PGD_ENTRIES && dropped < n; i++) {
        const pgd = this.sload(top + i * 8);
        if ((pgd & PTE_P) === 0) continue;
        const pmd = (pgd & ~FLAGS_MASK) >>> 0;
        const last = i === SWITCHER_PGD_INDEX_PAE ? SWITCHER_PMD_INDEX : ENTRIES_PAE;
        for (let j = 0; j < last && dropped < n; j++) drop(pmd + j * 8, i, j);
      }
    } else {
      for (let i = 0; i < SWITCHER_PGD_INDEX_2LEVEL && dropped < n; i++) drop(top + i * 4, i, 0);
    }
  }

  private freeShadowPage(hpa: number): void {
    this.host.freePage(hpa);
    this.misc[MISC_SHADOW_PAGES]--;
  }

  /** The shadow PTE for guest PTE (lo, hi), already validated: host frame, the guest's flags without the
   *  global bit, and writable only once the guest's entry is dirty. */
  private spteFor(lo: number): number {
    let flags = lo & FLAGS_MASK & ~PTE_G;
    if ((flags & PTE_D) === 0) flags &= ~PTE_RW;
    return (this.memBase + (lo >>> PAGE_SHIFT) * PAGE_SIZE) | flags;
  }

  /** get_pfn: install a present shadow PTE, taking a reference to its guest frame. */
  private installPte(hpa: number, glo: number): void {
    this.sstore(hpa, this.spteFor(glo));
    this.refs[glo >>> PAGE_SHIFT]++;
    this.misc[MISC_HELD_REFS]++;
    this.bump('ptesInstalled');
  }

  /** release_pte: drop a shadow PTE, putting back its frame reference. True if it was present. */
  private releasePte(hpa: number): boolean {
    const v = this.sload(hpa);
    if ((v & PTE_P) === 0) {
      if (v !== 0) this.sstore(hpa, 0);
      return false;
    }
    const pfn = (((v & ~FLAGS_MASK) >>> 0) - this.memBase) / PAGE_SIZE;
    if (pfn >= 0 && pfn < this.pfnLimit) {
      this.refs[pfn]--;
      this.misc[MISC_HELD_REFS]--;
    }
    this.sstore(hpa, 0);
    this.misc[MISC_DROP_GEN]++;
    return true;
  }

  /** Release a directory entry that points at a shadow PTE page (2-level top level, PAE middle level):
   *  every PTE in it, then the page. True if it was present. */
  private releaseDir(hpa: number): boolean {
    const v = this.sload(hpa);
    if ((v & PTE_P) === 0) return false;
    const page = (v & ~FLAGS_MASK) >>> 0;
    for (let k = 0; k < this.entries; k++) this.releasePte(page + k * this.entrySize);
    this.freeShadowPage(page);
    this.sstore(hpa, 0);
    return true;
  }

  /** PAE: release a PDPTE with its PMD page and everything below it. True if it was present. */
  private releasePgdPae(hpa: number): boolean {
    const v = this.sload(hpa);
    if ((v & PTE_P) === 0) return false;
    const pmd = (v & ~FLAGS_MASK) >>> 0;
    for (let j = 0; j < ENTRIES_PAE; j++) this.releaseDir(pmd + j * 8);
    this.freeShadowPage(pmd);
    this.sstore(hpa, 0);
    return true;
  }

  private resetSlot(s: number): void {
    const b = s * SLOT_WORDS;
    this.slots[b + SLOT_GPGDIR] = 0;
    this.slots[b + SLOT_TOP] = NO_PAGE;
    this.slots[b + SLOT_LAST_USE] = 0;
    this.slots[b + SLOT_OWNERS] = 0;
    for (let i = 0; i < PAE_PGD_ENTRIES; i++) this.slots[b + SLOT_PMD_SRC + i] = -1;
  }

  private pmdSrc(s: number, i: number): number {
    return this.slots[s * SLOT_WORDS + SLOT_PMD_SRC + i];
  }

  private setPmdSrc(s: number, i: number, gpa: number): void {
    this.slots[s * SLOT_WORDS + SLOT_PMD_SRC + i] = gpa;
  }

  /** PAE: hpa of the shadow PMD page hooked at the Switcher's PGD index (always there). */
  private switcherPmdPage(top: number): number {
    return (this.sload(top + SWITCHER_PGD_INDEX_PAE * 8) & ~FLAGS_MASK) >>> 0;
  }

  private slotOf(vcpu: ShadowVcpu): number {
    const s = vcpu.pgdIndex;
    if (s >= 0 && s < this.cacheSize && this.slotTop(s) !== NO_PAGE) return s;
    this.kill(`${KillReason.noShadow} ${vcpu.id}`);
    return -1;
  }

  // ---------------------------------------------------------------------------------------------------
  // Validation of guest entries (check_gpte, check_gpgd, check_gpmd), each failure with its own reason.

  private checkGpte(lo: number, hi: number, vaddr: number): boolean {
    if ((lo & PTE_PS) !== 0) return this.kill(`${KillReason.psePage} at ${hex(vaddr)}`);
    if (Shadow.pfnOf(lo, hi) >= this.pfnLimit) return this.kill(`${KillReason.pteFrame} at ${hex(vaddr)}`);
    return true;
  }

  private checkGpgd(lo: number, hi: number): boolean {
    const allowed = this.pae ? PTE_P : PAGE_TABLE_FLAGS;
    if ((lo & FLAGS_MASK & ~allowed) !== 0) return this.kill(`${KillReason.pgdFlags} ${hex(lo & FLAGS_MASK)}`);
    if (Shadow.pfnOf(lo, hi) >= this.pfnLimit) return this.kill(KillReason.pgdFrame);
    return true;
  }

  private checkGpmd(lo: number, hi: number): boolean {
    if ((lo & FLAGS_MASK & ~PAGE_TABLE_FLAGS) !== 0) return this.kill(`${KillReason.pmdFlags} ${hex(lo & FLAGS_MASK)}`);
    if (Shadow.pfnOf(lo, hi) >= this.pfnLimit) return this.kill(KillReason.pmdFrame);
    return true;
  }

  /** Would a guest PTE be installed as it stands (present, accessed, valid)? Never kills. */
  private usablePte(lo: number, hi: number): boolean {
    return (lo & (PTE_P | PTE_A)) === (PTE_P | PTE_A) && (lo & PTE_PS) === 0 && Shadow.pfnOf(lo, hi) < this.pfnLimit;
  }

  private reflect(errcode: number, guestPresent: boolean): false {
    this.faultErrcode = guestPresent ? errcode | PFEC_P : errcode & ~PFEC_P;
    this.bump('faultsReflected');
    return false;
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:300] (i) demandPage: the guest faulted. Shadows are filled lazily, so most faults are ours: find the
   * guest's entry, check it at every level, and copy it into the shadow. Only when the guest's own tables
   * forbid the access does the guest see the fault. */
  demandPage(vcpu: ShadowVcpu, vaddr: number, errcode: number): boolean {
    vaddr >>>= 0;
    this.faultErrcode = errcode;
    this.curVcpu = vcpu;
    const s = this.slotOf(vcpu);
    if (s < 0) return false;
    return this.pae ? this.demandPagePae(s, vaddr, errcode) : this.demandPage2(s, vaddr, errcode);
  }

  private demandPage2(s: number, vaddr: number, errcode: number): boolean {
    const top = this.slotTop(s);
    const i = vaddr >>> 22;
    const gpdeAddr = this.slotGpgdir(s) + i * 4;
    if (!this.gread(gpdeAddr, 4)) return false;
    const gpde = this.rLo;
    if ((gpde & PTE_P) === 0) return this.reflect(errcode, false);
    if (i >= SWITCHER_PGD_INDEX_2LEVEL) return this.kill(`${KillReason.switcher} ${hex(vaddr)}`);

    const spdeAddr = top + i * 4;
    let spde = this.sload(spdeAddr);
    // The guest changed this directory entry's permissions without SET_PGD: rebuild it rather than
    // letting the stale one fault forever.
    if ((spde & PTE_P) !== 0 && (spde & DIR_COMPARE_FLAGS) !== (gpde & DIR_COMPARE_FLAGS)) {
      this.releaseDir(spdeAddr);
      this.host.invalidate();
      spde = 0;
    }
    if ((spde & PTE_P) === 0 && !this.checkGpgd(gpde, 0)) return false;

    const gpteAddr = ((gpde & ~FLAGS_MASK) >>> 0) + ((vaddr >>> 12) & (ENTRIES_2LEVEL - 1)) * 4;
    if (!this.gread(gpteAddr, 4)) return false;
    const gpte = this.rLo;
    if (!this.accessAllowed(gpde, gpte, errcode)) return this.reflect(errcode, (gpte & PTE_P) !== 0);
    if (!this.checkGpte(gpte, 0, vaddr)) return false;

    if ((spde & PTE_P) === 0) {
      const page = this.allocShadowPage(spdeAddr);
      if (page === NO_PAGE) return false;
      spde = page | (gpde & FLAGS_MASK);
      this.sstore(spdeAddr, spde);
    }
    if ((gpde & PTE_A) === 0) this.gupdate(gpdeAddr, gpde, gpde | PTE_A);
    return this.fillPte(((spde & ~FLAGS_MASK) >>> 0), (vaddr >>> 12) & (ENTRIES_2LEVEL - 1), gpteAddr, gpte, vaddr, errcode);
  }

  private demandPagePae(s: number, vaddr: number, errcode: number): boolean {
    const top = this.slotTop(s);
    const i = vaddr >>> 30;
    if (!this.gread(this.slotGpgdir(s) + i * 8, 8)) return false;
    const gpgd = this.rLo, gpgdHi = this.rHi;
    if ((gpgd & PTE_P) === 0) return this.reflect(errcode, false);
    const gpmdPage = (gpgd & ~FLAGS_MASK) >>> 0;

    const spgdAddr = top + i * 8;
    let spgd = this.sload(spgdAddr);
    if ((spgd & PTE_P) !== 0 && this.pmdSrc(s, i) !== gpmdPage && this.pmdSrc(s, i) !== -1) {
      // The guest pointed this PGD entry at another PMD page without telling us: start it afresh.
      this.dropPmdPage(s, i);
      spgd = this.sload(spgdAddr);
    }
    // The seed checks the guest's PGD entry only when it creates the shadow's; PGD 3 always has a shadow
    // (the Switcher's), so we also check whenever we start mirroring a PMD page we have not checked.
    if (((spgd & PTE_P) === 0 || this.pmdSrc(s, i) !== gpmdPage) && !this.checkGpgd(gpgd, gpgdHi)) return false;

    const j = (vaddr >>> 21) & (ENTRIES_PAE - 1);
    const gpmdAddr = gpmdPage + j * 8;
    if (!this.gread(gpmdAddr, 8)) return false;
    const gpmd = this.rLo, gpmdHi = this.rHi;
    if ((gpmd & PTE_P) === 0) return this.reflect(errcode, false);
    if (i === SWITCHER_PGD_INDEX_PAE && j >= SWITCHER_PMD_INDEX) return this.kill(`${KillReason.switcher} ${hex(vaddr)}`);

    let spmdAddr = -1;
    let spmd = 0;
    if ((spgd & PTE_P) !== 0) {
      spmdAddr = ((spgd & ~FLAGS_MASK) >>> 0) + j * 8;
      spmd = this.sload(spmdAddr);
      if ((spmd & PTE_P) !== 0 && (spmd & DIR_COMPARE_FLAGS) !== (gpmd & DIR_COMPARE_FLAGS)) {
        this.releaseDir(spmdAddr);
        this.host.invalidate();
        spmd = 0;
      }
    }
    if ((spmd & PTE_P) === 0 && !this.checkGpmd(gpmd, gpmdHi)) return false;

    const k = (vaddr >>> 12) & (ENTRIES_PAE - 1);
    const gpteAddr = ((gpmd & ~FLAGS_MASK) >>> 0) + k * 8;
    if (!this.gread(gpteAddr, 8)) return false;
    const gpte = this.rLo, gpteHi = this.rHi;
    if (!this.accessAllowed(gpmd, gpte, errcode)) return this.reflect(errcode, (gpte & PTE_P) !== 0);
    if (!this.checkGpte(gpte, gpteHi, vaddr)) return false;

    if ((spgd & PTE_P) === 0) {
      const pmd = this.allocShadowPage(spgdAddr);
      if (pmd === NO_PAGE) return false;
      spgd = pmd | PTE_P; // a PDPTE may only carry PRESENT
      this.sstore(spgdAddr, spgd);
      this.host.invalidate(); // a PDPTE changed: every vCPU reloads them
      spmdAddr = pmd + j * 8;
    }
    this.setPmdSrc(s, i, gpmdPage);
    if ((spmd & PTE_P) === 0) {
      const page = this.allocShadowPage(spmdAddr);
      if (page === NO_PAGE) return false;
      spmd = page | (gpmd & FLAGS_MASK);
      this.sstore(spmdAddr, spmd);
    }
    if ((gpmd & PTE_A) === 0) this.gupdate(gpmdAddr, gpmd, gpmd | PTE_A);
    return this.fillPte(((spmd & ~FLAGS_MASK) >>> 0), k, gpteAddr, gpte, vaddr, errcode);
  }

  /** The guest's own rules for this access: present, and writable/user at the directory and PTE level. */
  private accessAllowed(gdir: number, gpte: number, errcode: number): boolean {
    if ((gpte & PTE_P) === 0) return false;
    if ((errcode & PFEC_W) !== 0 && (gdir & gpte & PTE_RW) === 0) return false;
    if ((errcode & PFEC_U) !== 0 && (gdir & gpte & PTE_US) === 0) return false;
    return true;
  }

  /** The last step of demandPage: mark the guest's PTE accessed (and dirty on a write), then install it. */
  private fillPte(sptPage: number, k: number, gpteAddr: number, gpte: number, vaddr: number, errcode: number): boolean {
    let updated = gpte | PTE_A;
    if ((errcode & PFEC_W) !== 0) updated |= PTE_D;
    // Another vCPU (or the guest) changed the entry under us: let the access fault again and look anew.
    if (updated !== gpte && !this.gupdate(gpteAddr, gpte, updated)) return true;
    const spteAddr = sptPage + k * this.entrySize;
    this.releasePte(spteAddr);
    this.installPte(spteAddr, updated);
    this.host.invalidate(vaddr);
    this.bump('faultsFixed');
    if (this.prefault > 1) this.prefaultAround(sptPage, k, gpteAddr - k * this.entrySize, vaddr);
    return true;
  }

  /** [H:305] Pre-faulting (the seed's M:014 wish): a fault is expensive, and neighbouring pages are likely to
   * be touched next. Fill the aligned block around the fault with the guest PTEs that are already marked
   * accessed (so no A bit is set on the guest's behalf) and valid; anything doubtful is left to a fault. */
  private prefaultAround(sptPage: number, k: number, gptPage: number, vaddr: number): void {
    const first = k & ~(this.prefault - 1);
    const pageBase = ((vaddr & ~FLAGS_MASK) >>> 0) - k * PAGE_SIZE;
    for (let n = first; n < first + this.prefault; n++) {
      if (n === k) continue;
      const spteAddr = sptPage + n * this.entrySize;
      if ((this.sload(spteAddr) & PTE_P) !== 0) continue;
      if (!this.greadQuiet(gptPage + n * this.entrySize, this.entrySize)) return;
      if (!this.usablePte(this.rLo, this.rHi)) continue;
      this.installPte(spteAddr, this.rLo);
      this.host.invalidate((pageBase + n * PAGE_SIZE) >>> 0);
      this.bump('prefaulted');
    }
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:310] (ii) The guest kernel stack must always be mapped and writable: a direct trap that faults while
   * the CPU pushes its frame would be a double fault. Check the shadow quickly; demand-page it if not. */
  pinStackPages(vcpu: ShadowVcpu): void {
    for (let n = 0; n < vcpu.stackPages; n++) this.pinPage(vcpu, (vcpu.esp1 - 1 - n * PAGE_SIZE) >>> 0);
    this.misc[MISC_PINNED_GEN + (vcpu.id & (MAX_VCPUS - 1))] = this.misc[MISC_DROP_GEN];
  }

  pinPage(vcpu: ShadowVcpu, vaddr: number): void {
    const s = this.slotOf(vcpu);
    if (s < 0) return;
    // Never a stack in the Switcher's region, whatever the guest's tables say: the shadow maps the
    // Switcher's own pages there (PAE found the regs page "writable" and took it as a kernel stack).
    if (this.inSwitcher(vaddr)) {
      this.kill(`${KillReason.stackPage} ${hex(vaddr)} in the Switcher's pages`);
      return;
    }
    if (!this.pageWritable(s, vaddr) && !this.demandPage(vcpu, vaddr, PFEC_W)) this.kill(`${KillReason.stackPage} ${hex(vaddr)}`);
  }

  /** Is `vaddr` in the Switcher's region (2-level: top-level slot 1023; PAE: PGD 3, PMD 511)? */
  private inSwitcher(vaddr: number): boolean {
    return this.pae
      ? vaddr >>> 30 === SWITCHER_PGD_INDEX_PAE && ((vaddr >>> 21) & (ENTRIES_PAE - 1)) === SWITCHER_PMD_INDEX
      : vaddr >>> 22 >= SWITCHER_PGD_INDEX_2LEVEL;
  }

  /** Does the shadow map `vaddr` present and writable (at every level)? */
  private pageWritable(s: number, vaddr: number): boolean {
    const want = PTE_P | PTE_RW;
    const top = this.slotTop(s);
    let dir: number;
    if (this.pae) {
      const pgd = this.sload(top + (vaddr >>> 30) * 8);
      if ((pgd & PTE_P) === 0) return false;
      dir = this.sload(((pgd & ~FLAGS_MASK) >>> 0) + ((vaddr >>> 21) & (ENTRIES_PAE - 1)) * 8);
    } else {
      if (vaddr >>> 22 >= SWITCHER_PGD_INDEX_2LEVEL) return false;
      dir = this.sload(top + (vaddr >>> 22) * 4);
    }
    if ((dir & want) !== want) return false;
    const pte = this.sload(((dir & ~FLAGS_MASK) >>> 0) + this.pteIndex(vaddr) * this.entrySize);
    return (pte & want) === want;
  }

  private pteIndex(vaddr: number): number {
    return (vaddr >>> 12) & (this.entries - 1);
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:320] (iii) The guest tells us it changed an entry. Kernel mappings (at or above kernel_address) are
   * the same in every guest top level, so they change in every shadow; a user mapping only in the shadow
   * of the top level named. A new PTE the guest already marked accessed goes straight in (read-only until
   * dirty); otherwise the old shadow entry just goes and the next access faults it in. */
  setPte(vcpu: ShadowVcpu, gpgdir: number, vaddr: number, pteLo: number, pteHi: number): void {
    void vcpu;
    this.bump('setPte');
    vaddr >>>= 0;
    gpgdir >>>= 0;
    if (!this.pae) pteHi = 0;
    if (vaddr >= this.kernelAddress) {
      for (let s = 0; s < this.cacheSize; s++) if (this.slotTop(s) !== NO_PAGE) this.doSetPte(s, vaddr, pteLo | 0, pteHi | 0);
    } else {
      // Every slot shadowing that top level (two vCPUs on one guest top level have a shadow each).
      for (let s = 0; s < this.cacheSize; s++) {
        if (this.slotTop(s) !== NO_PAGE && this.slotGpgdir(s) === gpgdir) this.doSetPte(s, vaddr, pteLo | 0, pteHi | 0);
      }
    }
  }

  private doSetPte(s: number, vaddr: number, lo: number, hi: number): void {
    const top = this.slotTop(s);
    let dir: number;
    if (this.pae) {
      const i = vaddr >>> 30;
      const pgd = this.sload(top + i * 8);
      if ((pgd & PTE_P) === 0) return;
      const j = (vaddr >>> 21) & (ENTRIES_PAE - 1);
      if (i === SWITCHER_PGD_INDEX_PAE && j >= SWITCHER_PMD_INDEX) {
        this.kill(`${KillReason.switcher} ${hex(vaddr)}`);
        return;
      }
      dir = this.sload(((pgd & ~FLAGS_MASK) >>> 0) + j * 8);
    } else {
      const i = vaddr >>> 22;
      if (i >= SWITCHER_PGD_INDEX_2LEVEL) {
        this.kill(`${KillReason.switcher} ${hex(vaddr)}`);
        return;
      }
      dir = this.sload(top + i * 4);
    }
    if ((dir & PTE_P) === 0) return;
    const spteAddr = ((dir & ~FLAGS_MASK) >>> 0) + this.pteIndex(vaddr) * this.entrySize;
    const was = this.releasePte(spteAddr);
    // Entries with D but not A are left to a fault so that A gets set in the guest's entry.
    if ((lo & (PTE_P | PTE_A)) === (PTE_P | PTE_A) && this.checkGpte(lo, hi, vaddr)) this.installPte(spteAddr, lo);
    else if (!was) return;
    this.host.invalidate(vaddr);
  }

  /** [H:325] SET_PGD: a top-level entry of `gpgdir` changed; if we shadow that top level, drop the entry and
   * everything under it. The Switcher's slot (and on PAE the PGD holding it) is never the guest's. */
  setPgd(gpgdir: number, index: number): void {
    this.bump('setPgd');
    index >>>= 0;
    if (index >= this.switcherPgd) return;
    gpgdir >>>= 0;
    for (let s = 0; s < this.cacheSize; s++) {
      if (this.slotTop(s) === NO_PAGE || this.slotGpgdir(s) !== gpgdir) continue;
      const top = this.slotTop(s);
      if (this.pae) {
        if (this.releasePgdPae(top + index * 8)) this.host.invalidate();
        this.setPmdSrc(s, index, -1);
      } else if (this.releaseDir(top + index * 4)) {
        this.host.invalidate();
      }
    }
  }

  /** [H:327] SET_PMD (PAE): entry `index` of the guest PMD page at `pmdGpa` changed. The seed threw every
   * shadow away; we know which shadow PMD pages mirror which guest PMD page, so only that entry goes, in
   * each of them (a kernel PMD page is mirrored by every shadow). */
  setPmd(vcpu: ShadowVcpu, pmdGpa: number, index: number): void {
    this.bump('setPmd');
    if (!this.pae) {
      this.kill(KillReason.setPmdNoPae);
      return;
    }
    if (!this.precisePmd) {
      this.clearAllFull();
      this.pinStackPages(vcpu);
      return;
    }
    index >>>= 0;
    if (index >= ENTRIES_PAE) return;
    const page = (pmdGpa & ~FLAGS_MASK) >>> 0;
    let changed = false;
    for (let s = 0; s < this.cacheSize; s++) {
      const top = this.slotTop(s);
      if (top === NO_PAGE) continue;
      for (let i = 0; i < PAE_PGD_ENTRIES; i++) {
        if (this.pmdSrc(s, i) !== page) continue;
        if (i === SWITCHER_PGD_INDEX_PAE && index === SWITCHER_PMD_INDEX) continue;
        const pgd = this.sload(top + i * 8);
        if ((pgd & PTE_P) !== 0 && this.releaseDir(((pgd & ~FLAGS_MASK) >>> 0) + index * 8)) changed = true;
      }
    }
    if (changed) this.host.invalidate();
  }

  /** PAE: forget shadow PGD `i` of slot `s` (for the Switcher's PGD: all but the Switcher's entry). */
  private dropPmdPage(s: number, i: number): void {
    const top = this.slotTop(s);
    if (i === SWITCHER_PGD_INDEX_PAE) {
      const pmd = this.switcherPmdPage(top);
      for (let j = 0; j < SWITCHER_PMD_INDEX; j++) this.releaseDir(pmd + j * 8);
    } else {
      this.releasePgdPae(top + i * 8);
    }
    this.setPmdSrc(s, i, -1);
    this.host.invalidate();
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:330] (iv) NEW_PGTABLE: the guest switched top level (nearly every context switch). Reuse its shadow if
   * we have one; otherwise take a slot: a never-used one, else the least recently used that no other vCPU
   * runs on (the seed picked at random). A reused slot keeps its kernel part, identical in every guest top
   * level, which is what makes a context switch cheap. */
  newPagetable(vcpu: ShadowVcpu, gpgdir: number): void {
    gpgdir >>>= 0;
    this.curVcpu = vcpu;
    let s = this.findSlot(gpgdir, vcpu);
    if (s >= 0) {
      this.bump('cacheHits');
    } else {
      this.bump('cacheMisses');
      s = this.newSlot(vcpu, gpgdir);
      if (s < 0) return;
    }
    this.takeSlot(vcpu, s);
    // The seed pinned only into a brand-new top level; but a cached or reused one may have lost the
    // stack too (clearAll pins only the current shadow). Checking is a few reads, so always pin.
    this.pinStackPages(vcpu);
  }

  /** The slot shadowing `gpgdir` that no vCPU but `vcpu` runs on. A top level is never shared by two
   *  vCPUs: its Switcher entry maps the Switcher pages of the one that runs on it (mapSwitcher), so two
   *  vCPUs on the same guest top level each get a shadow of their own. */
  private findSlot(gpgdir: number, vcpu: ShadowVcpu): number {
    const others = ~(1 << (vcpu.id & 31));
    for (let s = 0; s < this.cacheSize; s++) {
      if (this.slotTop(s) !== NO_PAGE && this.slotGpgdir(s) === gpgdir && (this.slots[s * SLOT_WORDS + SLOT_OWNERS] & others) === 0) return s;
    }
    return -1;
  }

  private takeSlot(vcpu: ShadowVcpu, s: number): void {
    const bit = 1 << (vcpu.id & 31);
    for (let t = 0; t < this.cacheSize; t++) this.slots[t * SLOT_WORDS + SLOT_OWNERS] &= ~bit;
    this.slots[s * SLOT_WORDS + SLOT_OWNERS] |= bit;
    this.slots[s * SLOT_WORDS + SLOT_LAST_USE] = ++this.misc[MISC_CLOCK];
    vcpu.pgdIndex = s;
  }

  private chooseVictim(vcpu: ShadowVcpu): number {
    // Never a slot another vCPU runs on: its CR3 points there. (With cacheSize at least the number of
    // vCPUs there is always one; -1 means a Host that gave too few slots.)
    const others = ~(1 << (vcpu.id & 31));
    if (this.eviction === 'random') {
      const pick = Math.min(this.cacheSize - 1, Math.floor(this.random() * this.cacheSize));
      for (let n = 0; n < this.cacheSize; n++) {
        const s = (pick + n) % this.cacheSize;
        if ((this.slots[s * SLOT_WORDS + SLOT_OWNERS] & others) === 0) return s;
      }
      return -1;
    }
    for (let s = 0; s < this.cacheSize; s++) if (this.slotTop(s) === NO_PAGE) return s;
    let best = -1, bestUse = Infinity;
    for (let s = 0; s < this.cacheSize; s++) {
      const use = this.slots[s * SLOT_WORDS + SLOT_LAST_USE];
      if ((this.slots[s * SLOT_WORDS + SLOT_OWNERS] & others) === 0 && use < bestUse) { best = s; bestUse = use; }
    }
    return best;
  }

  /** Returns the slot for `gpgdir` (brand new or reused); -1 when nothing could be had. */
  private newSlot(vcpu: ShadowVcpu, gpgdir: number): number {
    let s = this.chooseVictim(vcpu);
    if (s < 0) {
      this.kill('no shadow top level to switch to: every cached one is in use by another vCPU');
      return -1;
    }
    let blank = false;
    if (this.slotTop(s) === NO_PAGE) {
      const top = this.allocTopPage();
      let pmd = NO_PAGE;
      if (top >= 0 && this.pae) {
        pmd = this.allocTopPage();
        if (pmd < 0) this.host.freePage(top);
      }
      if (top < 0 || (this.pae && pmd < 0)) {
        // No room for another top level: keep using the current one (as the seed does), if it is ours.
        s = vcpu.pgdIndex;
        if (s < 0 || s >= this.cacheSize || this.slotTop(s) === NO_PAGE ||
            (this.slots[s * SLOT_WORDS + SLOT_OWNERS] & ~(1 << (vcpu.id & 31))) !== 0) {
          this.kill(KillReason.outOfPages);
          return -1;
        }
      } else {
        this.resetSlot(s);
        this.slots[s * SLOT_WORDS + SLOT_TOP] = top;
        this.misc[MISC_SHADOW_PAGES]++;
        if (this.pae) {
          this.misc[MISC_SHADOW_PAGES]++;
          this.sstore(top + SWITCHER_PGD_INDEX_PAE * 8, pmd | PTE_P);
        }
        blank = true;
      }
    }
    if (!blank) this.bump('cacheEvictions');
    this.slots[s * SLOT_WORDS + SLOT_GPGDIR] = gpgdir;
    if (this.releaseUser(s)) this.host.invalidate();
    if (this.pae) this.adoptKernelPmds(s, gpgdir);
    else if (this.strictKernelReuse && !blank && this.releaseKernel2Level(s)) this.host.invalidate();
    return s;
  }

  /** PAE: a reused slot keeps its kernel part; from now on it mirrors the new top level's kernel PMD
   *  pages (the same contents, by the kernel-part rule), so SET_PMD on those must reach it. */
  private adoptKernelPmds(s: number, gpgdir: number): void {
    for (let i = this.kernelAddress >>> 30; i < PAE_PGD_ENTRIES; i++) {
      if (this.pmdSrc(s, i) === -1) continue;
      if (this.greadQuiet(gpgdir + i * 8, 8) && (this.rLo & PTE_P) !== 0 && this.rHi === 0 &&
          (!this.strictKernelReuse || this.pmdSrc(s, i) === (this.rLo & ~FLAGS_MASK) >>> 0)) {
        this.setPmdSrc(s, i, (this.rLo & ~FLAGS_MASK) >>> 0);
      } else {
        this.dropPmdPage(s, i);
      }
    }
  }

  /** 2-level, strictKernelReuse: a reused slot drops its kernel part too (it refills from the new top
   *  level's own entries on the next faults). Everything but the Switcher's entry. */
  private releaseKernel2Level(s: number): boolean {
    const top = this.slotTop(s);
    let changed = false;
    for (let i = this.kernelAddress >>> 22; i < SWITCHER_PGD_INDEX_2LEVEL; i++) if (this.releaseDir(top + i * 4)) changed = true;
    return changed;
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:340] (v) Flushing. FLUSH_TLB 0 drops the user part (below kernel_address) of the current shadow,
   *  and of every other vCPU's shadow of the same guest top level (each vCPU has its own, findSlot). */
  flushUser(vcpu: ShadowVcpu): void {
    this.bump('flushUser');
    const cur = this.slotOf(vcpu);
    if (cur < 0) return;
    const gpgdir = this.slotGpgdir(cur);
    let changed = false;
    for (let s = 0; s < this.cacheSize; s++) {
      if (this.slotTop(s) !== NO_PAGE && this.slotGpgdir(s) === gpgdir && this.releaseUser(s)) changed = true;
    }
    if (changed) this.host.invalidate();
  }

  /** Release everything below kernel_address in slot `s` (also the part of a directory it cuts through). */
  private releaseUser(s: number): boolean {
    const ka = this.kernelAddress;
    if (ka === 0) return false;
    const top = this.slotTop(s);
    let changed = false;
    if (this.pae) {
      const full = ka >>> 30;
      for (let i = 0; i < full; i++) {
        if (this.releasePgdPae(top + i * 8)) changed = true;
        this.setPmdSrc(s, i, -1);
      }
      if ((ka & 0x3fffffff) !== 0) {
        const pgd = this.sload(top + full * 8);
        if ((pgd & PTE_P) !== 0) changed = this.releaseBelow((pgd & ~FLAGS_MASK) >>> 0, (ka >>> 21) & (ENTRIES_PAE - 1), ka, 0x1fffff) || changed;
      }
    } else {
      const full = Math.min(ka >>> 22, SWITCHER_PGD_INDEX_2LEVEL);
      for (let i = 0; i < full; i++) if (this.releaseDir(top + i * 4)) changed = true;
      if ((ka & 0x3fffff) !== 0 && full < SWITCHER_PGD_INDEX_2LEVEL) {
        const pde = this.sload(top + full * 4);
        if ((pde & PTE_P) !== 0) changed = this.releasePtesBelow((pde & ~FLAGS_MASK) >>> 0, ka) || changed;
      }
    }
    return changed;
  }

  /** PAE: in a shadow PMD page, release entries [0, jFull) and the PTEs below `ka` in entry jFull. */
  private releaseBelow(pmd: number, jFull: number, ka: number, within: number): boolean {
    let changed = false;
    for (let j = 0; j < jFull; j++) if (this.releaseDir(pmd + j * 8)) changed = true;
    if ((ka & within) !== 0) {
      const e = this.sload(pmd + jFull * 8);
      if ((e & PTE_P) !== 0) changed = this.releasePtesBelow((e & ~FLAGS_MASK) >>> 0, ka) || changed;
    }
    return changed;
  }

  private releasePtesBelow(pt: number, ka: number): boolean {
    let changed = false;
    for (let k = 0; k < this.pteIndex(ka); k++) if (this.releasePte(pt + k * this.entrySize)) changed = true;
    return changed;
  }

  /** [H:345] FLUSH_TLB 1: kernel mappings changed, and the guest does not say which. The seed threw every
   * shadow away and let everything fault back in ("trapped in amber", its M:009). We instead look at each
   * shadow entry we hold and keep it only if the guest's tables would still give exactly that entry:
   * the same work as releasing them, and none of the faults afterwards. Then the stack is pinned again. */
  clearAll(vcpu: ShadowVcpu): void {
    this.bump('flushAll');
    if (this.kernelFlush === 'full') this.clearAllFull();
    else this.revalidateAll();
    this.pinStackPages(vcpu);
  }

  private clearAllFull(): void {
    let changed = false;
    for (let s = 0; s < this.cacheSize; s++) if (this.slotTop(s) !== NO_PAGE && this.releaseSlotEntries(s)) changed = true;
    if (changed) this.host.invalidate();
  }

  /** Drop every entry of slot `s` except the Switcher's (the seed's release_all_pagetables for one slot). */
  private releaseSlotEntries(s: number): boolean {
    const top = this.slotTop(s);
    let changed = false;
    if (this.pae) {
      const pmd = this.switcherPmdPage(top);
      for (let j = 0; j < SWITCHER_PMD_INDEX; j++) if (this.releaseDir(pmd + j * 8)) changed = true;
      for (let i = 0; i < SWITCHER_PGD_INDEX_PAE; i++) if (this.releasePgdPae(top + i * 8)) changed = true;
      for (let i = 0; i < PAE_PGD_ENTRIES; i++) this.setPmdSrc(s, i, -1);
    } else {
      for (let i = 0; i < SWITCHER_PGD_INDEX_2LEVEL; i++) if (this.releaseDir(top + i * 4)) changed = true;
    }
    return changed;
  }

  private revalidateAll(): void {
    let changed = false;
    for (let s = 0; s < this.cacheSize; s++) {
      const top = this.slotTop(s);
      if (top === NO_PAGE) continue;
      const gpgdir = this.slotGpgdir(s);
      if (this.pae) {
        for (let i = 0; i < PAE_PGD_ENTRIES; i++) {
          const spgd = this.sload(top + i * 8);
          if ((spgd & PTE_P) === 0) continue;
          const ok = this.greadQuiet(gpgdir + i * 8, 8) && (this.rLo & PTE_P) !== 0 && (this.rLo & FLAGS_MASK & ~PTE_P) === 0 &&
            Shadow.pfnOf(this.rLo, this.rHi) < this.pfnLimit && ((this.rLo & ~FLAGS_MASK) >>> 0) === this.pmdSrc(s, i);
          if (!ok) {
            // (The Switcher's PMD page mirrors nothing until a kernel fault comes through it.)
            if (i !== SWITCHER_PGD_INDEX_PAE || this.pmdSrc(s, i) !== -1) {
              this.countDropped(spgd, i === SWITCHER_PGD_INDEX_PAE ? SWITCHER_PMD_INDEX : ENTRIES_PAE);
              this.dropPmdPage(s, i);
              changed = true;
            }
            continue;
          }
          const gpmdPage = (this.rLo & ~FLAGS_MASK) >>> 0;
          const pmd = (spgd & ~FLAGS_MASK) >>> 0;
          const last = i === SWITCHER_PGD_INDEX_PAE ? SWITCHER_PMD_INDEX : ENTRIES_PAE;
          for (let j = 0; j < last; j++) if (this.revalidateDir(pmd + j * 8, gpmdPage + j * 8)) changed = true;
        }
      } else {
        for (let i = 0; i < SWITCHER_PGD_INDEX_2LEVEL; i++) if (this.revalidateDir(top + i * 4, gpgdir + i * 4)) changed = true;
      }
    }
    if (changed) this.host.invalidate();
  }

  /** Count, for the statistics, the shadow PTEs under the first `dirs` entries of a shadow PMD page. */
  private countDropped(spgd: number, dirs: number): void {
    const pmd = (spgd & ~FLAGS_MASK) >>> 0;
    for (let j = 0; j < dirs; j++) this.countPtes(this.sload(pmd + j * 8));
  }

  private countPtes(sdir: number): void {
    if ((sdir & PTE_P) === 0) return;
    const pt = (sdir & ~FLAGS_MASK) >>> 0;
    for (let k = 0; k < this.entries; k++) if ((this.sload(pt + k * this.entrySize) & PTE_P) !== 0) this.bump('revalidateDropped');
  }

  /** Revalidate one shadow directory entry (2-level PDE / PAE PMD entry) and the PTEs under it against
   *  the guest's entry at `gdirAddr`. True if anything changed. */
  private revalidateDir(sdirAddr: number, gdirAddr: number): boolean {
    const sdir = this.sload(sdirAddr);
    if ((sdir & PTE_P) === 0) return false;
    const ok = this.greadQuiet(gdirAddr, this.entrySize) && (this.rLo & PTE_P) !== 0 &&
      (this.rLo & FLAGS_MASK & ~PAGE_TABLE_FLAGS) === 0 && Shadow.pfnOf(this.rLo, this.rHi) < this.pfnLimit &&
      (this.rLo & DIR_COMPARE_FLAGS) === (sdir & DIR_COMPARE_FLAGS);
    if (!ok) {
      this.countPtes(sdir);
      this.releaseDir(sdirAddr);
      return true;
    }
    const gpt = (this.rLo & ~FLAGS_MASK) >>> 0;
    const pt = (sdir & ~FLAGS_MASK) >>> 0;
    let changed = false;
    for (let k = 0; k < this.entries; k++) {
      const spteAddr = pt + k * this.entrySize;
      const spte = this.sload(spteAddr);
      if ((spte & PTE_P) === 0) continue;
      this.greadQuiet(gpt + k * this.entrySize, this.entrySize);
      if (this.usablePte(this.rLo, this.rHi) && this.spteFor(this.rLo) === spte) {
        this.bump('revalidateKept');
      } else {
        this.releasePte(spteAddr);
        this.bump('revalidateDropped');
        changed = true;
      }
    }
    return changed;
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:350] (vi) Before the guest runs: hook this vCPU's Switcher PTE page into the current shadow, at top
   * level 1023 (PAE: PMD 511 of the PMD page at PGD 3), supervisor-only. Returns the CR3 to load. If
   * shadow entries went since this vCPU's stack was last pinned, pin it first (which may kill). */
  mapSwitcher(vcpu: ShadowVcpu, switcherPtePage: number): number {
    const s = this.slotOf(vcpu);
    if (s < 0) return 0;
    // The seed pinned only the stack of the vCPU that flushed; another vCPU's may have gone since.
    if (this.misc[MISC_PINNED_GEN + (vcpu.id & (MAX_VCPUS - 1))] !== this.misc[MISC_DROP_GEN]) this.pinStackPages(vcpu);
    // This vCPU's Switcher pages go into a top level only it runs on (findSlot, chooseVictim): another
    // vCPU on it would see them, and could rewrite this one's saved registers.
    if ((this.slots[s * SLOT_WORDS + SLOT_OWNERS] & ~(1 << (vcpu.id & 31))) !== 0) {
      this.kill(`${KillReason.sharedTop} ${s}`);
      return 0;
    }
    const top = this.slotTop(s);
    const entry = this.pae ? this.switcherPmdPage(top) + SWITCHER_PMD_INDEX * 8 : top + SWITCHER_PGD_INDEX_2LEVEL * 4;
    const want = (switcherPtePage & ~FLAGS_MASK) | PAGE_KERNEL_EXEC;
    if (this.sload(entry) !== want) {
      this.sstore(entry, want);
      this.host.invalidate();
    }
    return top;
  }

  // ---------------------------------------------------------------------------------------------------
  /** [H:360] (vii) The boot page tables: the guest starts with paging on, so the Host lays out tables that map
   * all of RAM twice, at 0 (identity) and at PAGE_OFFSET (linear), just below the initrd: the top level,
   * below it one PTE page per 4 MiB (PAE: 2 MiB), and on PAE one PMD page below those. */
  initGuestPagetable(memBytes: number, initrdBytes: number): number {
    if (this.slotTop(0) !== NO_PAGE || this.slotTop(1) !== NO_PAGE) this.releaseAll();
    const initrd = Math.ceil(initrdBytes / PAGE_SIZE) * PAGE_SIZE;
    const mappedPages = Math.floor(memBytes / PAGE_SIZE);
    const ptePages = Math.ceil(mappedPages / this.entries);
    const topGpa = mappedPages * PAGE_SIZE - initrd - PAGE_SIZE;
    const linearGpa = topGpa - ptePages * PAGE_SIZE;
    const pmdGpa = linearGpa - PAGE_SIZE;
    const lowest = this.pae ? pmdGpa : linearGpa;
    if (mappedPages > this.pfnLimit || lowest < 0 || this.memBase + mappedPages * PAGE_SIZE > this.mem.size) {
      this.kill(`${KillReason.bootTables} (${memBytes} bytes of RAM, ${initrdBytes} of initrd)`);
      return -1;
    }
    const dv = this.mem.dv;
    const base = this.memBase;
    this.mem.fill(base + lowest, topGpa + PAGE_SIZE - lowest); // tables start empty
    for (let p = 0; p < mappedPages; p++) {
      dv.setInt32(base + linearGpa + p * this.entrySize, p * PAGE_SIZE | BOOT_PTE_FLAGS, true);
    }
    if (this.pae) {
      // The seed left its PMD index uninitialised (abi 6.7 item 1): fill PMD entries 0.. properly.
      const pmds = Math.min(ptePages, ENTRIES_PAE);
      for (let j = 0; j < pmds; j++) dv.setInt32(base + pmdGpa + j * 8, (linearGpa + j * PAGE_SIZE) | BOOT_PTE_FLAGS, true);
      // One PMD page serves both the identity map (PGD 0) and PAGE_OFFSET (PGD 3); PDPTEs carry only P.
      dv.setInt32(base + topGpa, pmdGpa | PTE_P, true);
      dv.setInt32(base + topGpa + (BOOT_PAGE_OFFSET >>> 30) * 8, pmdGpa | PTE_P, true);
    } else {
      const linearIndex = BOOT_PAGE_OFFSET >>> 22;
      for (let k = 0; k < ptePages; k++) {
        const pde = (linearGpa + k * PAGE_SIZE) | BOOT_PTE_FLAGS;
        if (k < linearIndex) dv.setInt32(base + topGpa + k * 4, pde, true);
        if (linearIndex + k < SWITCHER_PGD_INDEX_2LEVEL) dv.setInt32(base + topGpa + (linearIndex + k) * 4, pde, true);
      }
    }
    this.mem.touched(base + lowest, topGpa + PAGE_SIZE - lowest);

    // Slot 0 shadows it, starting blank (PAE: with the PMD page that will hold the Switcher).
    const top = this.host.allocPage();
    const pmd = top >= 0 && this.pae ? this.host.allocPage() : 0;
    if (top < 0 || pmd < 0) {
      if (top >= 0) this.host.freePage(top);
      this.kill(KillReason.outOfPages);
      return topGpa;
    }
    this.resetSlot(0);
    this.slots[SLOT_TOP] = top;
    this.slots[SLOT_GPGDIR] = topGpa;
    this.slots[SLOT_OWNERS] = 1; // vCPU 0 boots on it
    this.misc[MISC_SHADOW_PAGES] += this.pae ? 2 : 1;
    if (this.pae) this.sstore(top + SWITCHER_PGD_INDEX_PAE * 8, pmd | PTE_P);
    return topGpa;
  }

  /** At LGUEST_INIT: remember kernel_address; above it every guest top level maps the same. It must stop
   *  short of the Switcher. The Host then throws the shadows away (clearAll), as the seed does. */
  guestDataInit(kernelAddress: number): void {
    kernelAddress >>>= 0;
    this.misc[MISC_KERNEL_ADDRESS] = kernelAddress;
    const clash = this.pae
      ? kernelAddress >>> 30 === SWITCHER_PGD_INDEX_PAE && ((kernelAddress >>> 21) & (ENTRIES_PAE - 1)) === SWITCHER_PMD_INDEX
      : kernelAddress >>> 22 >= SWITCHER_PGD_INDEX_2LEVEL;
    if (clash) this.kill(`${KillReason.kernelAddress} ${hex(kernelAddress)}`);
  }

  currentGpgdir(vcpu: ShadowVcpu): number {
    const s = vcpu.pgdIndex;
    return s >= 0 && s < this.cacheSize && this.slotTop(s) !== NO_PAGE ? this.slotGpgdir(s) : 0;
  }

  /** [H:370] guestPa: a guest virtual address to guest-physical through the guest's own tables (for emulating
   * an instruction at EIP or pushing onto the guest stack). Each level is checked before the next is read,
   * and a hole kills the guest (abi 6.7 items 2-3). */
  guestPa(vcpu: ShadowVcpu, vaddr: number): number {
    vaddr >>>= 0;
    const s = this.slotOf(vcpu);
    if (s < 0) return -1;
    const bad = (): number => {
      this.kill(`${KillReason.badAddress} ${hex(vaddr)}`);
      return -1;
    };
    const gpgdir = this.slotGpgdir(s);
    let dir: number;
    if (this.pae) {
      if (!this.gread(gpgdir + (vaddr >>> 30) * 8, 8)) return -1;
      if ((this.rLo & PTE_P) === 0 || this.rHi !== 0) return bad();
      if (!this.gread(((this.rLo & ~FLAGS_MASK) >>> 0) + ((vaddr >>> 21) & (ENTRIES_PAE - 1)) * 8, 8)) return -1;
      if ((this.rLo & PTE_P) === 0 || this.rHi !== 0) return bad();
      dir = this.rLo;
    } else {
      if (!this.gread(gpgdir + (vaddr >>> 22) * 4, 4)) return -1;
      if ((this.rLo & PTE_P) === 0) return bad();
      dir = this.rLo;
    }
    if (!this.gread(((dir & ~FLAGS_MASK) >>> 0) + this.pteIndex(vaddr) * this.entrySize, this.entrySize)) return -1;
    if ((this.rLo & PTE_P) === 0 || Shadow.pfnOf(this.rLo, this.rHi) >= this.pfnLimit) return bad();
    return ((this.rLo & ~FLAGS_MASK) >>> 0) + (vaddr & FLAGS_MASK);
  }

  /** [H:390] Teardown: every shadow entry released (every frame reference put back), every page freed. */
  releaseAll(): void {
    let any = false;
    for (let s = 0; s < this.cacheSize; s++) {
      const top = this.slotTop(s);
      if (top === NO_PAGE) continue;
      any = true;
      this.releaseSlotEntries(s);
      if (this.pae) this.freeShadowPage(this.switcherPmdPage(top));
      this.freeShadowPage(top);
      this.resetSlot(s);
    }
    if (any) this.host.invalidate();
  }
}

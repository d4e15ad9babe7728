/**
 * The contract between the Host (switcher/) and lguest's shadow page tables (mmu/shadow.ts, the seed
 * re-implemented). Types only: the Host codes against these, mmu/shadow.ts implements them.
 *
 * Addresses: "guest-physical" (gpa) is what the guest sees; "host-physical" (hpa) is an offset in the
 * machine's PhysicalMemory (the CPU's physical address space). Guest RAM starts at hpa `memBase`, so
 * hpa = memBase + gpa for guest frames. Shadow page-table pages and the Switcher pages live in a Host pool
 * outside the guest's frames. The CPU walks the shadows: its CR3 holds the hpa of a shadow top level.
 */
import type { PhysicalMemory } from './memory.ts';

/** What shadow paging needs from the Host. */
export interface ShadowHost {
  readonly mem: PhysicalMemory;
  /** hpa of guest-physical 0. */
  readonly memBase: number;
  /** Guest frames (gpa >> 12) at or above this are not the guest's. */
  readonly pfnLimit: number;
  /** PAE (3-level, 64-bit entries) instead of 2-level paging. */
  readonly pae: boolean;
  /** A zeroed 4 KiB page from the Host pool (hpa), or -1 when the pool is exhausted. */
  allocPage(): number;
  freePage(hpa: number): void;
  /** killGuest: record the first reason; the guest never runs again. Callers carry on regardless. */
  kill(reason: string): void;
  /** Every vCPU must drop cached translations before it next uses them (a shadow entry changed).
   *  `lin` narrows it to one page; undefined means everything. PAE: a shadow PDPTE (top-level entry) only
   *  ever changes with `lin` undefined, and the CPU caches PDPTEs when CR3 is loaded, so on invalidate()
   *  without `lin` each vCPU must also reload its four PDPTEs from CR3 (as MOV CR3 does) before the guest
   *  runs again; the real Switcher reloads CR3 on every guest entry, which does it for the vCPU at hand. */
  invalidate(lin?: number): void;
}

/** Per-vCPU state shadow paging keeps (lg_cpu's cpu_pgd, esp1, stack pages). */
export interface ShadowVcpu {
  readonly id: number;
  /** Index of the shadow top level in use (cpu_pgd). */
  pgdIndex: number;
  /** Guest kernel stack top and page count from SET_STACK, for pinStackPages. */
  esp1: number;
  stackPages: number;
}

export interface ShadowStats {
  faultsFixed: number;
  faultsReflected: number;
  shadowPagesInUse: number;
  cacheHits: number;
  cacheMisses: number;
  cacheEvictions: number;
  flushUser: number;
  flushAll: number;
  setPte: number;
  setPgd: number;
  setPmd: number;
  /** Guest frame references still held (get_pfn without put_page); must be 0 after teardown. */
  leakedFrames: number;
}

/** lguest's page_tables.c, part by part (the seed's seven parts). */
export interface ShadowPageTables {
  /** (vii) Build the boot page tables in guest memory (seed layout, 2-level or PAE) for `memBytes` of RAM
   *  with an initrd of `initrdBytes` at the top, and an empty shadow for them. Returns their gpa
   *  (reported to the guest in lguest_data.pgdir). */
  initGuestPagetable(memBytes: number, initrdBytes: number): number;
  /** At LGUEST_INIT: remember kernel_address (kills the guest if it collides with the Switcher slot). */
  guestDataInit(kernelAddress: number): void;
  /** (i) A guest page fault at `vaddr` with error code `errcode`: fill the shadow from the guest's tables.
   *  True when fixed; false when the guest must see the fault (reflect it with `faultErrcode`). */
  demandPage(vcpu: ShadowVcpu, vaddr: number, errcode: number): boolean;
  /** After demandPage returned false: the #PF error code the guest must see. It is the hardware's code with
   *  the P bit as a real MMU walking the guest's own tables would report it (the shadow may not have been
   *  filled yet, so the hardware's P bit can be wrong). Optional for backward compatibility: a Host that
   *  reflects the hardware's code unchanged behaves like the seed. */
  readonly faultErrcode?: number;
  /** (ii) Make sure the guest kernel stack (esp1, stackPages) is mapped writable. */
  pinStackPages(vcpu: ShadowVcpu): void;
  /** (iii) SET_PTE: the guest changed the PTE for `vaddr` in top level `gpgdir` (gpa). */
  setPte(vcpu: ShadowVcpu, gpgdir: number, vaddr: number, pteLo: number, pteHi: number): void;
  /** SET_PGD: top-level entry `index` of `gpgdir` changed. */
  setPgd(gpgdir: number, index: number): void;
  /** SET_PMD (PAE): middle-level entry `index` of the PMD page at `pmdGpa` changed. */
  setPmd(vcpu: ShadowVcpu, pmdGpa: number, index: number): void;
  /** (iv) NEW_PGTABLE: switch `vcpu` to the shadow of guest top level `gpgdir`. */
  newPagetable(vcpu: ShadowVcpu, gpgdir: number): void;
  /** (v) FLUSH_TLB 0: drop the user part of the current shadow. */
  flushUser(vcpu: ShadowVcpu): void;
  /** (v) FLUSH_TLB 1 / kernel mappings changed: drop everything, then re-pin the stack. */
  clearAll(vcpu: ShadowVcpu): void;
  /** (vi) Before entering the guest: hook this vCPU's Switcher PTE page (hpa) into the current shadow at
   *  the Switcher slot; returns the hpa to load into CR3. */
  mapSwitcher(vcpu: ShadowVcpu, switcherPtePage: number): number;
  /** Walk the guest's own tables (current top level): gpa for a guest virtual address, or -1 (and the
   *  guest killed) when it is not mapped. */
  guestPa(vcpu: ShadowVcpu, vaddr: number): number;
  /** The guest top level `vcpu` is running on (its CR3 as the guest sees it). */
  currentGpgdir(vcpu: ShadowVcpu): number;
  /** Free every shadow page and release every guest frame reference (teardown). */
  releaseAll(): void;
  readonly stats: ShadowStats;
}

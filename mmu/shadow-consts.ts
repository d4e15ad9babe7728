/**
 * Numbers of lguest's shadow paging (the seed, page_tables.c) for 2-level and PAE paging, and the reasons it
 * kills a guest. Page-table bits themselves are the CPU's (emulator/constants.ts).
 */
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../emulator/constants.ts';

export { PAGE_SIZE } from '../emulator/constants.ts';
export const PAGE_SHIFT = 12;
/** Low 12 bits of an entry: its flags. */
export const FLAGS_MASK = 0xfff;

/** How many shadow top levels a guest keeps (the seed's pgdirs[4]). */
export const SHADOW_CACHE_SIZE = 4;

/** What a guest may put in a top-level (2-level) or middle-level (PAE) entry: _PAGE_TABLE. */
export const PAGE_TABLE_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D; // 0x67
/** Flags of the entry hooking the Switcher's PTE page in: __PAGE_KERNEL_EXEC (supervisor, writable). */
export const PAGE_KERNEL_EXEC = PTE_P | PTE_RW | PTE_A | PTE_D; // 0x63
/** Flags of every PTE of the boot page tables: present, writable, user. */
export const BOOT_PTE_FLAGS = PTE_P | PTE_RW | PTE_US; // 0x007
/** Flags a shadow directory entry must agree on with the guest's (A and D may differ). */
export const DIR_COMPARE_FLAGS = PTE_P | PTE_RW | PTE_US;

/** The boot page tables alias RAM at PAGE_OFFSET (the 3G/1G split), as the seed does. */
export const BOOT_PAGE_OFFSET = 0xc0000000;

/** 2-level paging: 1024 four-byte entries per page; the Switcher owns the top 4 MiB (index 1023). */
export const ENTRIES_2LEVEL = 1024;
export const SWITCHER_PGD_INDEX_2LEVEL = ENTRIES_2LEVEL - 1;
export const SWITCHER_ADDR_2LEVEL = 0xffc00000;
export const RESERVE_MEM_2LEVEL = 4 << 20;

/** PAE: 4 PDPTEs, 512 eight-byte entries per directory and table page; the Switcher owns the top 2 MiB
 *  (PMD 511 of the PMD page at PGD 3). */
export const PAE_PGD_ENTRIES = 4;
export const ENTRIES_PAE = 512;
export const SWITCHER_PGD_INDEX_PAE = PAE_PGD_ENTRIES - 1;
export const SWITCHER_PMD_INDEX = ENTRIES_PAE - 1;
export const SWITCHER_ADDR_PAE = 0xffe00000;
export const RESERVE_MEM_PAE = 2 << 20;

/** The top of the guest's virtual space it must leave to the Switcher (lguest_data.reserve_mem). */
export function reserveMem(pae: boolean): number {
  return pae ? RESERVE_MEM_PAE : RESERVE_MEM_2LEVEL;
}

/** Why shadow paging kills a guest. The reason recorded is one of these followed by details. */
export const KillReason = {
  psePage: 'bad page table entry: PSE page',
  pteFrame: 'bad page table entry: frame beyond pfn_limit',
  pgdFlags: 'bad page directory entry: flags',
  pgdFrame: 'bad page directory entry: frame beyond pfn_limit',
  pmdFlags: 'bad page middle directory entry: flags',
  pmdFrame: 'bad page middle directory entry: frame beyond pfn_limit',
  switcher: 'attempt to access switcher pages',
  outOfPages: 'out of memory allocating a shadow page',
  stackPage: 'bad stack page',
  tableAddress: 'bad guest page table address',
  badAddress: 'bad address',
  kernelAddress: 'bad kernel address',
  bootTables: 'boot page tables do not fit',
  noShadow: 'no shadow page table for this vcpu',
  setPmdNoPae: 'bad hypercall: SET_PMD without PAE',
  sharedTop: 'a shadow top level in use by two vCPUs: slot',
} as const;

export function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}

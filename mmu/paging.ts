/**
 * The hardware page walker: 2-level paging with 4 KiB and 4 MiB (CR4.PSE) pages, and PAE with its four
 * PDPTEs (loaded on CR3 writes), 4 KiB and 2 MiB pages. It checks the access, sets accessed and dirty
 * bits atomically (other vCPUs share the tables), and reports the frame and the TLB permissions the
 * translation grants. The rules are those of the Intel SDM volume 3, chapter 4.
 */
import {
  CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS,
  PTE_RW, PTE_US,
} from '../emulator/constants.ts';
import type { CPU } from '../emulator/cpu.ts';

const TLB_R_SUP = 1, TLB_R_USR = 2, TLB_W_SUP = 4, TLB_W_USR = 8, TLB_GLOBAL = 16;

/** Physical address width for PAE entries (P6 with PAE: 36 bits): high-word bits 4..31 are reserved. */
const PAE_HIGH_RESERVED = 0xfffffff0 | 0;
/** Reserved bits of a 4 MiB PDE without PSE-36 (bits 13..21). */
const PSE_RESERVED = 0x003fe000;
/** Reserved bits of a 2 MiB PAE PDE (bits 13..20). */
const PAE_2M_RESERVED = 0x001fe000;

function readEntry(cpu: CPU, pa: number): number {
  return pa >= 0 && pa + 4 <= cpu.memSize ? cpu.m32[pa >>> 2] : 0;
}

function setBits(cpu: CPU, pa: number, bits: number): void {
  if (pa >= 0 && pa + 4 <= cpu.memSize) Atomics.or(cpu.m32, pa >>> 2, bits);
}

/**
 * Walk the tables for linear address `lin`. Returns -1 on success, with `cpu.walkFrame` (physical frame
 * address of the 4 KiB page, possibly beyond RAM) and `cpu.walkPerms` (TLB permission bits) set; or the
 * #PF error code (>= 0) of the fault the access raises. With `update` false (debugger translation) no
 * accessed/dirty bit is written.
 */
export function walkPageTables(cpu: CPU, lin: number, write: boolean, user: boolean, update: boolean): number {
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const faultBits = (write ? PFEC_W : 0) | (user ? PFEC_U : 0);
  let leaf: number; // the entry holding the final flags (low word)
  let leafAddr: number;
  let rw: number, us: number;
  let frame: number;

  if ((cpu.cr4 & CR4_PAE) === 0) {
    const pdeAddr = ((cpu.cr3 & ~0xfff) >>> 0) + ((lin >>> 22) << 2);
    const pde = readEntry(cpu, pdeAddr);
    if ((pde & PTE_P) === 0) return faultBits;
    if ((pde & PTE_PS) !== 0 && (cpu.cr4 & CR4_PSE) !== 0) {
      if ((pde & PSE_RESERVED) !== 0) return faultBits | PFEC_P | PFEC_RSVD;
      leaf = pde;
      leafAddr = pdeAddr;
      rw = pde & PTE_RW;
      us = pde & PTE_US;
      frame = ((pde & 0xffc00000) >>> 0) + (lin & 0x003ff000);
    } else {
      if (update && (pde & PTE_A) === 0) setBits(cpu, pdeAddr, PTE_A);
      const pteAddr = ((pde & ~0xfff) >>> 0) + (((lin >>> 12) & 0x3ff) << 2);
      const pte = readEntry(cpu, pteAddr);
      if ((pte & PTE_P) === 0) return faultBits;
      leaf = pte;
      leafAddr = pteAddr;
      rw = pde & pte & PTE_RW;
      us = pde & pte & PTE_US;
      frame = (pte & ~0xfff) >>> 0;
    }
  } else {
    const i = lin >>> 30;
    const pdpLo = cpu.pdpte[i * 2];
    if ((pdpLo & PTE_P) === 0) return faultBits;
    const pdeAddr = ((pdpLo & ~0xfff) >>> 0) + (((lin >>> 21) & 0x1ff) << 3);
    if (cpu.pdpte[i * 2 + 1] !== 0) return faultBits; // table above 4 GiB: nothing there
    const pde = readEntry(cpu, pdeAddr);
    const pdeHi = readEntry(cpu, pdeAddr + 4);
    if ((pde & PTE_P) === 0) return faultBits;
    if ((pdeHi & PAE_HIGH_RESERVED) !== 0) return faultBits | PFEC_P | PFEC_RSVD;
    if ((pde & PTE_PS) !== 0) {
      if ((pde & PAE_2M_RESERVED) !== 0) return faultBits | PFEC_P | PFEC_RSVD;
      leaf = pde;
      leafAddr = pdeAddr;
      rw = pde & PTE_RW;
      us = pde & PTE_US;
      frame = pdeHi * 4294967296 + ((pde & 0xffe00000) >>> 0) + (lin & 0x001ff000);
    } else {
      if (update && (pde & PTE_A) === 0) setBits(cpu, pdeAddr, PTE_A);
      const pteAddr = pdeHi !== 0 ? -1 : ((pde & ~0xfff) >>> 0) + (((lin >>> 12) & 0x1ff) << 3);
      const pte = readEntry(cpu, pteAddr);
      const pteHi = readEntry(cpu, pteAddr + 4);
      if ((pte & PTE_P) === 0) return faultBits;
      if ((pteHi & PAE_HIGH_RESERVED) !== 0) return faultBits | PFEC_P | PFEC_RSVD;
      leaf = pte;
      leafAddr = pteAddr;
      rw = pde & pte & PTE_RW;
      us = pde & pte & PTE_US;
      frame = pteHi * 4294967296 + ((pte & ~0xfff) >>> 0);
    }
  }

  // Access rights (no SMEP/SMAP on this CPU: supervisor may touch user pages).
  if (user && us === 0) return faultBits | PFEC_P;
  if (write && rw === 0 && (user || wp)) return faultBits | PFEC_P;

  let dirty = (leaf & PTE_D) !== 0;
  if (update) {
    const want = PTE_A | (write ? PTE_D : 0);
    if ((leaf & want) !== want) setBits(cpu, leafAddr, want);
    if (write) dirty = true;
  }

  let perms = TLB_R_SUP;
  if (us !== 0) perms |= TLB_R_USR;
  if (dirty) {
    if (rw !== 0 || !wp) perms |= TLB_W_SUP;
    if (rw !== 0 && us !== 0) perms |= TLB_W_USR;
  }
  if ((leaf & PTE_G) !== 0 && (cpu.cr4 & CR4_PGE) !== 0) perms |= TLB_GLOBAL;
  cpu.walkFrame = frame;
  cpu.walkPerms = perms;
  return -1;
}

/** Load the four PDPTEs from CR3 (PAE). Returns false when one has reserved bits set (#GP on MOV CR3). */
export function loadPdptes(cpu: CPU): boolean {
  const base = (cpu.cr3 & ~0x1f) >>> 0;
  for (let i = 0; i < 4; i++) {
    const lo = readEntry(cpu, base + i * 8);
    const hi = readEntry(cpu, base + i * 8 + 4);
    // present PDPTEs must have bits 1, 2, 5-8 and the high bits above 36 clear
    if ((lo & PTE_P) !== 0 && ((lo & 0x1e6) !== 0 || (hi & PAE_HIGH_RESERVED) !== 0)) return false;
    cpu.pdpte[i * 2] = lo;
    cpu.pdpte[i * 2 + 1] = hi;
  }
  return true;
}

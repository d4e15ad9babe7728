/**
 * The guest's GDT and IDT (lguest's segments.c and the IDT half of interrupts_and_traps.c): what the guest
 * asked for, fixed up, and the real tables in the vCPU's read-only Switcher page that the CPU uses while
 * the guest runs (abi 4.3 - 4.5, 5.2).
 */
import {
  BOOT_KERNEL_CS_HI, BOOT_KERNEL_CS_LO, BOOT_KERNEL_DS_HI, BOOT_KERNEL_DS_LO, DESC_ACCESSED, DESC_DPL_MASK, DESC_PRESENT,
  DESC_SYSTEM_S,
  DESC_DPL_SHIFT, GATE_HI_KEEP, GATE_PRESENT, GATE_TYPE_INTERRUPT, GATE_TYPE_SHIFT, GATE_TYPE_TRAP, GDT_ENTRIES,
  GDT_ENTRY_DOUBLEFAULT_TSS, GDT_ENTRY_KERNEL_CS, GDT_ENTRY_KERNEL_DS, GDT_ENTRY_LGUEST_CS, GDT_ENTRY_LGUEST_DS,
  GDT_ENTRY_TLS_ENTRIES, GDT_ENTRY_TLS_MIN, GDT_ENTRY_TSS, GUEST_PL, IDT_ENTRIES, KERNEL_CS, LGUEST_CS, LGUEST_CS_HI,
  LGUEST_CS_LO, LGUEST_DS, LGUEST_DS_HI, LGUEST_DS_LO, LGUEST_REGS_PAGE_OFFSET, LGUEST_REGS_SIZE, LGUEST_RO_STATE,
  LGUEST_SYSCALL_VECTOR, LGUEST_TRAP_ENTRY, PAGE_SIZE, SWITCHER_GATE_FLAGS, TSS, TSS_DESC_TYPE, TSS_LIMIT,
  _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW,
} from './layout.ts';
import type { LgCpu } from './lguest.ts';

export const CHANGED_IDT = 1;
export const CHANGED_GDT = 2;
export const CHANGED_GDT_TLS = 4;
export const CHANGED_ALL = CHANGED_IDT | CHANGED_GDT;

const NMI_VECTOR = 2, DOUBLE_FAULT_VECTOR = 8, SPURIOUS_VECTOR = 15;
const UD_VECTOR = 6, NM_VECTOR = 7, GP_VECTOR = 13, PF_VECTOR = 14;

/** Entries the guest may never place in the real GDT. */
function ignoredGdt(num: number): boolean {
  return num === GDT_ENTRY_TSS || num === GDT_ENTRY_LGUEST_CS || num === GDT_ENTRY_LGUEST_DS
    || num === GDT_ENTRY_DOUBLEFAULT_TSS;
}

/** [H:610] Every guest-supplied descriptor is fixed up: a DPL of 0 becomes GUEST_PL (the guest never gets
 *  ring 0), and the accessed bit is set because the real GDT is read-only to the CPU while the guest runs. */
function fixupGdtEntry(c: LgCpu, num: number): void {
  if (ignoredGdt(num)) return;
  let hi = c.gdt[num * 2 + 1];
  if ((hi & DESC_DPL_MASK) === 0) hi |= GUEST_PL << DESC_DPL_SHIFT;
  // A system descriptor (S clear: call gate, task gate, TSS, LDT) could lead through LGUEST_CS to ring 0
  // or into a task switch. lguest's accessed-bit fixup happens to turn a 32-bit call gate into a reserved
  // type; we say it outright: no guest gets one, it is stored not present. (Our own choice, not lguest's.)
  if ((hi & DESC_SYSTEM_S) === 0) hi &= ~DESC_PRESENT;
  c.gdt[num * 2 + 1] = hi | DESC_ACCESSED;
}

/** The boot GDT (abi 3.6): only the kernel code and data segments, flat, DPL 1. */
export function setupGuestGdt(c: LgCpu): void {
  c.gdt.fill(0);
  c.gdt[GDT_ENTRY_KERNEL_CS * 2] = BOOT_KERNEL_CS_LO;
  c.gdt[GDT_ENTRY_KERNEL_CS * 2 + 1] = BOOT_KERNEL_CS_HI;
  c.gdt[GDT_ENTRY_KERNEL_DS * 2] = BOOT_KERNEL_DS_LO;
  c.gdt[GDT_ENTRY_KERNEL_DS * 2 + 1] = BOOT_KERNEL_DS_HI;
  c.changed |= CHANGED_ALL;
}

/** LOAD_GDT_ENTRY. */
export function loadGuestGdtEntry(c: LgCpu, num: number, lo: number, hi: number): void {
  if (num >>> 0 >= GDT_ENTRIES) {
    c.lg.kill(`too many gdt entries ${num >>> 0}`);
    return;
  }
  c.gdt[num * 2] = lo;
  c.gdt[num * 2 + 1] = hi;
  fixupGdtEntry(c, num);
  c.changed |= CHANGED_GDT;
}

/** LOAD_TLS: three descriptors at guest-physical `gpa` into entries 6..8. */
export function guestLoadTls(c: LgCpu, gpa: number): void {
  const bytes = c.lg.readBytes(gpa, GDT_ENTRY_TLS_ENTRIES * 8);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < GDT_ENTRY_TLS_ENTRIES; i++) {
    const num = GDT_ENTRY_TLS_MIN + i;
    c.gdt[num * 2] = dv.getInt32(i * 8, true);
    c.gdt[num * 2 + 1] = dv.getInt32(i * 8 + 4, true);
    fixupGdtEntry(c, num);
  }
  c.changed |= CHANGED_GDT_TLS;
}

/** [H:620] LOAD_IDT_ENTRY: NMI, double fault, the spurious vector and our own 0x1F are the Host's;
 *  anything else must be an interrupt or trap gate, stored with the guest's kernel CS. */
export function loadGuestIdtEntry(c: LgCpu, num: number, lo: number, hi: number): void {
  num >>>= 0;
  if (num === NMI_VECTOR || num === DOUBLE_FAULT_VECTOR || num === SPURIOUS_VECTOR || num === LGUEST_TRAP_ENTRY) return;
  c.changed |= CHANGED_IDT;
  if (num >= IDT_ENTRIES) {
    c.lg.kill(`bad IDT vector ${num}`);
    return;
  }
  if ((hi & GATE_PRESENT) === 0) {
    c.idt[num * 2] = 0;
    c.idt[num * 2 + 1] = 0;
    return;
  }
  const type = (hi >>> GATE_TYPE_SHIFT) & 0xf;
  if (type !== GATE_TYPE_INTERRUPT && type !== GATE_TYPE_TRAP) {
    c.lg.kill(`bad IDT type ${type}`);
    return;
  }
  c.idt[num * 2] = (KERNEL_CS << 16) | (lo & 0xffff);
  c.idt[num * 2 + 1] = hi & GATE_HI_KEEP;
}

export function idtPresent(hi: number): boolean { return (hi & GATE_PRESENT) !== 0; }
export function idtType(hi: number): number { return (hi >>> GATE_TYPE_SHIFT) & 0xf; }
export function idtAddress(lo: number, hi: number): number { return ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0; }

/** Which vectors may go straight to the guest without the Host (abi 4.5). */
export function directTrap(num: number): boolean {
  if (num >= 32) return num === LGUEST_SYSCALL_VECTOR;
  return num !== UD_VECTOR && num !== NM_VECTOR && num !== GP_VECTOR && num !== PF_VECTOR && num !== LGUEST_TRAP_ENTRY;
}

/** Write one 8-byte descriptor into the read-only page. */
function putDesc(c: LgCpu, off: number, lo: number, hi: number): void {
  c.lg.mem.write32(c.roPage + off, lo);
  c.lg.mem.write32(c.roPage + off + 4, hi);
}

/** A Switcher gate: present interrupt gate into the stub for `vector`, DPL per abi 4.5. */
function defaultIdtEntry(c: LgCpu, vector: number, guestHi: number | null): [number, number] {
  const handler = (c.lg.paging.switcherAddr + c.lg.switcher.stubOffset[vector]) >>> 0;
  let flags = SWITCHER_GATE_FLAGS;
  if (vector === LGUEST_TRAP_ENTRY) flags |= GUEST_PL << DESC_DPL_SHIFT;
  else if (guestHi !== null) flags |= guestHi & DESC_DPL_MASK;
  return [(LGUEST_CS << 16) | (handler & 0xffff), (handler & 0xffff0000) | flags];
}

/** [H:030] Populate the Switcher PTE page (seed populate_switcher_pte_page): the code page read-only,
 *  this vCPU's regs page writable, its read-only page read-only; nothing else, and no USER bit anywhere.
 *  Every vCPU has its own such page (the seed's is per physical CPU), and the Switcher slot of a shadow
 *  top level points at the page of the one vCPU that runs on it (ShadowPageTables.mapSwitcher; a top
 *  level is never shared by two vCPUs, mmu/README.md). Another vCPU's pages, at their slots, are simply
 *  not mapped: touching them is a page fault, and no vCPU can rewrite another's saved registers. */
export function populateSwitcherPtePage(c: LgCpu): void {
  const { mem, paging } = c.lg;
  const first = 0; // SWITCHER_ADDR is the start of the slot this page maps
  const put = (index: number, hpa: number, flags: number) => {
    mem.write32(c.switcherPtePage + index * paging.pteSize, hpa | flags);
    if (paging.pteSize === 8) mem.write32(c.switcherPtePage + index * 8 + 4, 0);
  };
  mem.fill(c.switcherPtePage, PAGE_SIZE, 0);
  put(first, c.lg.switcherCodePage, _PAGE_PRESENT | _PAGE_ACCESSED);
  put(first + 1 + 2 * c.id, c.regsPage, _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_RW);
  put(first + 2 + 2 * c.id, c.roPage, _PAGE_PRESENT | _PAGE_ACCESSED);
}

/** [H:040] Set up the read-only page once: the TSS (ring-0 stack = the end of lguest_regs in the regs page, no
 *  I/O bitmap), the Switcher's own GDT entries and the TSS descriptor, and the default IDT. */
export function setupReadOnlyPage(c: LgCpu): void {
  const { mem } = c.lg;
  mem.fill(c.roPage, PAGE_SIZE, 0);
  const tss = c.roPage + LGUEST_RO_STATE.guest_tss;
  mem.write32(tss + TSS.esp0, (c.regsVa + LGUEST_REGS_PAGE_OFFSET + LGUEST_REGS_SIZE) | 0);
  mem.write32(tss + TSS.ss0, LGUEST_DS);
  mem.write16(tss + TSS.io_bitmap_base, TSS.size);
  const gdt = LGUEST_RO_STATE.guest_gdt;
  putDesc(c, gdt + GDT_ENTRY_LGUEST_CS * 8, LGUEST_CS_LO, LGUEST_CS_HI);
  putDesc(c, gdt + GDT_ENTRY_LGUEST_DS * 8, LGUEST_DS_LO, LGUEST_DS_HI);
  const base = (c.roVa + LGUEST_RO_STATE.guest_tss) >>> 0;
  const tssLo = (TSS_LIMIT & 0xffff) | ((base & 0xffff) << 16);
  const tssHi = ((base >>> 16) & 0xff) | (TSS_DESC_TYPE << 8) | (TSS_LIMIT & 0xf0000) | (base & 0xff000000);
  putDesc(c, gdt + GDT_ENTRY_TSS * 8, tssLo, tssHi);
  for (let v = 0; v < IDT_ENTRIES; v++) {
    const [lo, hi] = defaultIdtEntry(c, v, null);
    putDesc(c, LGUEST_RO_STATE.guest_idt + v * 8, lo, hi);
  }
  c.changed |= CHANGED_ALL;
}

/** [H:130] copy_in_guest_info: before every entry, the kernel stack the guest registered goes into the
 *  TSS (ring 1), and whatever the guest changed in its IDT or GDT is copied into the real tables. A direct
 *  trap whose guest gate is a trap gate is copied verbatim (the CPU enters the guest without us);
 *  everything else keeps a Switcher gate. */
export function copyInGuestInfo(c: LgCpu): void {
  const { mem } = c.lg;
  const tss = c.roPage + LGUEST_RO_STATE.guest_tss;
  mem.write32(tss + TSS.esp1, c.esp1);
  mem.write32(tss + TSS.ss1, c.ss1);
  if (c.changed & CHANGED_IDT) {
    for (let v = 0; v < IDT_ENTRIES; v++) {
      if (!directTrap(v)) continue;
      const lo = c.idt[v * 2], hi = c.idt[v * 2 + 1];
      if (idtPresent(hi) && idtType(hi) === GATE_TYPE_TRAP) putDesc(c, LGUEST_RO_STATE.guest_idt + v * 8, lo, hi);
      else {
        const [dlo, dhi] = defaultIdtEntry(c, v, hi);
        putDesc(c, LGUEST_RO_STATE.guest_idt + v * 8, dlo, dhi);
      }
    }
  }
  if (c.changed & CHANGED_GDT) {
    for (let i = 0; i < GDT_ENTRIES; i++) {
      if (!ignoredGdt(i)) putDesc(c, LGUEST_RO_STATE.guest_gdt + i * 8, c.gdt[i * 2], c.gdt[i * 2 + 1]);
    }
  } else if (c.changed & CHANGED_GDT_TLS) {
    for (let i = GDT_ENTRY_TLS_MIN; i < GDT_ENTRY_TLS_MIN + GDT_ENTRY_TLS_ENTRIES; i++) {
      putDesc(c, LGUEST_RO_STATE.guest_gdt + i * 8, c.gdt[i * 2], c.gdt[i * 2 + 1]);
    }
  }
  c.changed = 0;
}

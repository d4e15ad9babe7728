/**
 * Protected-mode segmentation: reading descriptors from the GDT and LDT, and loading segment registers
 * with the type, privilege and present checks of the Intel SDM (volume 3, 5.5-5.8 and the instruction
 * pages of MOV, POP, LDS/LES/LFS/LGS/LSS). Every check raises the exception and error code the manual
 * gives, before anything changes.
 */
import { DS, ES, FS, GP, GS, NP, SS, SS_VEC } from './constants.ts';
import type { CPU } from './cpu.ts';

/** Scratch: the descriptor read by the last readDescriptor call. */
export const desc = { lo: 0, hi: 0, addr: 0 };

/** Read the 8-byte descriptor for `sel` from the GDT or LDT into `desc`. Returns false when the
 *  selector's index lies beyond the table's limit. */
export function readDescriptor(cpu: CPU, sel: number): boolean {
  const index = sel & 0xfff8;
  let base: number, limit: number;
  if ((sel & 4) !== 0) {
    if ((cpu.ldtSel & 0xfffc) === 0) return false;
    base = cpu.ldtBase;
    limit = cpu.ldtLimit;
  } else {
    base = cpu.gdtBase;
    limit = cpu.gdtLimit;
  }
  if (index + 7 > limit) return false;
  desc.addr = (base + index) | 0;
  desc.lo = cpu.readSys32(desc.addr);
  desc.hi = cpu.readSys32((desc.addr + 4) | 0);
  return true;
}

export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
}

export function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return (hi & 0x800000) !== 0 ? ((raw << 12) | 0xfff) >>> 0 : raw;
}

/** Descriptor bits 40-55 as stored in CPU.segAttr. */
export function descAttr(hi: number): number {
  return (hi >>> 8) & 0xf0ff;
}

/** Set the accessed bit of the descriptor last read, as the CPU does when it loads a segment register. */
export function setAccessed(cpu: CPU): void {
  if ((desc.hi & 0x100) === 0) {
    desc.hi |= 0x100;
    cpu.writeSys32((desc.addr + 4) | 0, desc.hi);
  }
}

/**
 * Load a data or stack segment register (ES, SS, DS, FS, GS) in protected mode, as MOV Sreg, POP Sreg
 * and LxS do. CS is loaded only by control transfers (see ops/control.ts).
 */
export function loadSegment(cpu: CPU, s: number, sel: number): void {
  sel &= 0xffff;
  if ((cpu.cr0 & 1) === 0) {
    cpu.setSegCache(s, sel, sel << 4, cpu.segLimit[s], cpu.segAttr[s]);
    return;
  }
  const err = sel & 0xfffc;
  const rpl = sel & 3;
  const cpl = cpu.cpl;
  if (s === SS) {
    if (err === 0) cpu.raise(GP, 0);
    if (!readDescriptor(cpu, sel)) cpu.raise(GP, err);
    const hi = desc.hi;
    const dpl = (hi >>> 13) & 3;
    const type = (hi >>> 8) & 0x1f; // S bit + type
    // writable data segment: S=1, code=0, W=1
    if (rpl !== cpl || dpl !== cpl || (type & 0x1a) !== 0x12) cpu.raise(GP, err);
    if ((hi & 0x8000) === 0) cpu.raise(SS_VEC, err);
    setAccessed(cpu);
    cpu.setSegCache(SS, sel, descBase(desc.lo, desc.hi), descLimit(desc.lo, desc.hi), descAttr(desc.hi));
    return;
  }
  if (err === 0) {
    // A null selector may be loaded into a data segment register; using it faults later.
    cpu.setSegCache(s, sel, 0, 0, 0);
    return;
  }
  if (!readDescriptor(cpu, sel)) cpu.raise(GP, err);
  const hi = desc.hi;
  const dpl = (hi >>> 13) & 3;
  const sType = (hi >>> 8) & 0x1f;
  const isCode = (sType & 0x18) === 0x18;
  const isData = (sType & 0x18) === 0x10;
  if (!isData && !(isCode && (sType & 2) !== 0)) cpu.raise(GP, err); // system, or execute-only code
  const conforming = isCode && (sType & 4) !== 0;
  if (!conforming && (dpl < cpl || dpl < rpl)) cpu.raise(GP, err);
  if ((hi & 0x8000) === 0) cpu.raise(NP, err);
  setAccessed(cpu);
  cpu.setSegCache(s, sel, descBase(desc.lo, desc.hi), descLimit(desc.lo, desc.hi), descAttr(desc.hi));
}

/** After a return to an outer privilege level: data segment registers the new CPL may not use are
 *  nulled (SDM RET/IRET: "segment registers with DPL < CPL are loaded with null"). */
export function nullInaccessibleSegments(cpu: CPU): void {
  for (const s of [ES, DS, FS, GS]) {
    const attr = cpu.segAttr[s];
    const dpl = (attr >>> 5) & 3;
    const type = attr & 0xf;
    const conformingCode = (type & 0xc) === 0xc;
    const isDataOrNonConf = (attr & 0x10) !== 0 && !conformingCode;
    if ((cpu.segSel[s] & 0xfffc) !== 0 && isDataOrNonConf && dpl < cpu.cpl) cpu.setSegCache(s, 0, 0, 0, 0);
  }
}


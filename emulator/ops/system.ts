/**
 * System instructions: CLI/STI (IOPL rules), HLT, the descriptor-table registers (LGDT LIDT SGDT SIDT
 * LLDT SLDT LTR STR), the machine status word (LMSW SMSW CLTS), control and debug registers, INVLPG,
 * INVD/WBINVD, RDMSR/WRMSR, the segment inspectors ARPL LAR LSL VERR VERW, and port I/O (IN OUT INS OUTS)
 * with the IOPL and TSS I/O-permission-bitmap checks. Privileged ones raise #GP(0) above CPL 0.
 */
import {
  CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR0_AM, CR4_PAE, CR4_PGE, CR4_PSE, DF, ECX, EDI, EDX, ES, ESI, GP, IF,
  IOPL_MASK, ZF, EAX,
} from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { ExitReason } from '../exits.ts';
import { loadPdptes } from '../../mmu/paging.ts';
import { defineOp } from './registry.ts';
import { DR6_FIXED, DR7_FIXED, writeDr7 } from '../debug.ts';
import { desc, descBase, descLimit, readDescriptor } from '../segments.ts';

function requireCpl0(c: CPU): void {
  if (c.cpl !== 0) c.raise(GP, 0);
}

function iopl(c: CPU): number {
  return (c.flags & IOPL_MASK) >>> 12;
}

// ---- interrupt flag and halt ----
export const CLI = defineOp('CLI', (c) => {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  c.flags &= ~IF;
});
export const STI = defineOp('STI', (c) => {
  if (c.cpl > iopl(c)) c.raise(GP, 0);
  if ((c.flags & IF) === 0) c.inhibitIrq = true;
  c.flags |= IF;
  c.stop = 1;
});
export const HLT = defineOp('HLT', (c) => {
  requireCpl0(c);
  c.halted = true;
  c.exitReason = ExitReason.Hlt;
  c.stop = 1;
});

// ---- descriptor tables (iFlags bit 16: 16-bit operand size) ----
export const LGDT = defineOp('LGDT', (c, k) => {
  requireCpl0(c);
  const s = c.iSeg[k], ea = c.ea(k);
  const limit = c.read16(s, ea);
  let base = c.read32(s, (ea + 2) | 0);
  if ((c.iFlags[k] & 16) !== 0) base &= 0xffffff;
  c.gdtLimit = limit;
  c.gdtBase = base;
});
export const LIDT = defineOp('LIDT', (c, k) => {
  requireCpl0(c);
  const s = c.iSeg[k], ea = c.ea(k);
  const limit = c.read16(s, ea);
  let base = c.read32(s, (ea + 2) | 0);
  if ((c.iFlags[k] & 16) !== 0) base &= 0xffffff;
  c.idtLimit = limit;
  c.idtBase = base;
});
export const SGDT = defineOp('SGDT', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k);
  c.read32(s, (ea + 2) | 0); // probe the whole operand first
  c.write16(s, ea, c.gdtLimit);
  c.write32(s, (ea + 2) | 0, c.gdtBase);
});
export const SIDT = defineOp('SIDT', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k);
  c.read32(s, (ea + 2) | 0);
  c.write16(s, ea, c.idtLimit);
  c.write32(s, (ea + 2) | 0, c.idtBase);
});

/** Read the selector operand of a 0F 00 instruction (register or 16-bit memory). */
function selOperand(c: CPU, k: number): number {
  return (c.iFlags[k] & 64) !== 0 ? c.read16(c.iSeg[k], c.ea(k)) : c.r16[c.iRm[k] << 1];
}

/** Store a selector-like value: 16 bits to memory, operand size to a register (zero-extended). */
function storeSel(c: CPU, k: number, v: number): void {
  if ((c.iFlags[k] & 64) !== 0) c.write16(c.iSeg[k], c.ea(k), v);
  else if ((c.iFlags[k] & 16) !== 0) c.r16[c.iRm[k] << 1] = v;
  else c.r32[c.iRm[k]] = v & 0xffff;
}

export const SLDT = defineOp('SLDT', (c, k) => storeSel(c, k, c.ldtSel));
export const STR = defineOp('STR', (c, k) => storeSel(c, k, c.trSel));
export const SMSW = defineOp('SMSW', (c, k) => {
  if ((c.iFlags[k] & 64) !== 0) c.write16(c.iSeg[k], c.ea(k), c.cr0 & 0xffff);
  else if ((c.iFlags[k] & 16) !== 0) c.r16[c.iRm[k] << 1] = c.cr0 & 0xffff;
  else c.r32[c.iRm[k]] = c.cr0;
});

export const LLDT = defineOp('LLDT', (c, k) => {
  requireCpl0(c);
  const sel = selOperand(c, k);
  const err = sel & 0xfffc;
  if (err === 0) {
    c.ldtSel = sel;
    c.ldtBase = 0;
    c.ldtLimit = 0;
    return;
  }
  if ((sel & 4) !== 0) c.raise(GP, err);
  if (!readDescriptor(c, sel)) c.raise(GP, err);
  if (((desc.hi >>> 8) & 0x1f) !== 0x02) c.raise(GP, err);
  if ((desc.hi & 0x8000) === 0) c.raise(11, err);
  c.ldtSel = sel;
  c.ldtBase = descBase(desc.lo, desc.hi);
  c.ldtLimit = descLimit(desc.lo, desc.hi);
});

export const LTR = defineOp('LTR', (c, k) => {
  requireCpl0(c);
  const sel = selOperand(c, k);
  const err = sel & 0xfffc;
  if (err === 0) c.raise(GP, 0);
  if ((sel & 4) !== 0) c.raise(GP, err);
  if (!readDescriptor(c, sel)) c.raise(GP, err);
  const type = (desc.hi >>> 8) & 0x1f;
  if (type !== 0x09 && type !== 0x01) c.raise(GP, err); // available 32- or 16-bit TSS
  if ((desc.hi & 0x8000) === 0) c.raise(11, err);
  desc.hi |= 0x200; // busy
  c.writeSys32((desc.addr + 4) | 0, desc.hi);
  c.trSel = sel;
  c.trBase = descBase(desc.lo, desc.hi);
  c.trLimit = descLimit(desc.lo, desc.hi);
  c.trAttr = (desc.hi >>> 8) & 0xf0ff;
});

export const LMSW = defineOp('LMSW', (c, k) => {
  requireCpl0(c);
  const v = (c.iFlags[k] & 64) !== 0 ? c.read16(c.iSeg[k], c.ea(k)) : c.r16[c.iRm[k] << 1];
  // only PE, MP, EM, TS; PE cannot be cleared this way
  writeCr0(c, (c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & CR0_PE));
});
export const CLTS = defineOp('CLTS', (c) => {
  requireCpl0(c);
  c.cr0 &= ~CR0_TS;
});
export const INVLPG = defineOp('INVLPG', (c, k) => {
  requireCpl0(c);
  c.invalidatePage((c.segBase[c.iSeg[k]] + c.ea(k)) | 0);
  c.stop = 1;
});
export const INVD = defineOp('INVD', (c) => { requireCpl0(c); });

// ---- control registers ----
export function writeCr0(c: CPU, v: number): void {
  v |= 0x10; // ET is hard-wired on P6
  if ((v & CR0_PG) !== 0 && (v & CR0_PE) === 0) c.raise(GP, 0);
  if ((v & 0x1ffaffc0 & ~0x1fffffff) !== 0) c.raise(GP, 0);
  const changed = c.cr0 ^ v;
  c.cr0 = v | 0;
  if ((changed & (CR0_PG | CR0_WP | CR0_PE)) !== 0) c.flushTlb(true);
  if ((changed & CR0_PG) !== 0 && (v & CR0_PG) !== 0 && (c.cr4 & CR4_PAE) !== 0 && !loadPdptes(c)) c.raise(GP, 0);
  if ((changed & CR0_AM) !== 0) c.updateAccessBits();
  c.stop = 1;
}

export function writeCr3(c: CPU, v: number): void {
  c.cr3 = v | 0;
  if ((c.cr0 & CR0_PG) !== 0 && (c.cr4 & CR4_PAE) !== 0 && !loadPdptes(c)) c.raise(GP, 0);
  c.flushTlb(false);
  c.stop = 1;
}

/** CR4 bits this CPU implements: VME PVI TSD DE PSE PAE MCE PGE (VME/PVI/DE/MCE accepted, inert). */
const CR4_VALID = 0xff;
export function writeCr4(c: CPU, v: number): void {
  if ((v & ~CR4_VALID) !== 0) c.raise(GP, 0);
  const changed = c.cr4 ^ v;
  if ((changed & CR4_PAE) !== 0 && (v & CR4_PAE) !== 0 && (c.cr0 & CR0_PG) !== 0) {
    c.cr4 = v;
    if (!loadPdptes(c)) c.raise(GP, 0);
  }
  c.cr4 = v;
  if ((changed & (CR4_PGE | CR4_PAE | CR4_PSE)) !== 0) c.flushTlb(true);
  c.stop = 1;
}

export const MOV_RdCd = defineOp('MOV_RdCd', (c, k) => {
  requireCpl0(c);
  const n = c.iSub[k];
  c.r32[c.iRm[k]] = n === 0 ? c.cr0 : n === 2 ? c.cr2 : n === 3 ? c.cr3 : c.cr4;
});
export const MOV_CdRd = defineOp('MOV_CdRd', (c, k) => {
  requireCpl0(c);
  const v = c.r32[c.iRm[k]];
  switch (c.iSub[k]) {
    case 0: writeCr0(c, v); break;
    case 2: c.cr2 = v; break;
    case 3: writeCr3(c, v); break;
    default: writeCr4(c, v); break;
  }
});
export const MOV_RdDd = defineOp('MOV_RdDd', (c, k) => {
  requireCpl0(c);
  let n = c.iSub[k];
  if (n === 4 || n === 5) n += 2; // aliases of DR6/DR7 while CR4.DE is clear
  c.r32[c.iRm[k]] = n === 6 ? (c.dr[6] | DR6_FIXED) : n === 7 ? (c.dr[7] | DR7_FIXED) : c.dr[n];
});
export const MOV_DdRd = defineOp('MOV_DdRd', (c, k) => {
  requireCpl0(c);
  let n = c.iSub[k];
  if (n === 4 || n === 5) n += 2;
  if (n === 7) writeDr7(c, c.r32[c.iRm[k]]);
  else c.dr[n] = c.r32[c.iRm[k]];
  c.stop = 1;
});

// ---- MSRs: only the time-stamp counter ----
const MSR_TSC = 0x10;
export const RDMSR = defineOp('RDMSR', (c) => {
  requireCpl0(c);
  const n = c.r32[ECX] >>> 0;
  if (n !== MSR_TSC) {
    if (c.msrs === null || !c.msrs.rdmsr(n, c.r32)) c.raise(GP, 0); // (EAX = r32[0], EDX = r32[2])
    return;
  }
  const t = c.retired + c.tsc;
  c.r32[EAX] = t % 4294967296 | 0;
  c.r32[EDX] = Math.floor(t / 4294967296) | 0;
});
export const WRMSR = defineOp('WRMSR', (c) => {
  requireCpl0(c);
  const n = c.r32[ECX] >>> 0;
  if (n !== MSR_TSC) {
    if (c.msrs === null || !c.msrs.wrmsr(n, c.r32[EAX], c.r32[EDX])) c.raise(GP, 0);
    return;
  }
  c.tsc = (c.r32[EDX] >>> 0) * 4294967296 + (c.r32[EAX] >>> 0) - c.retired;
});

// ---- segment inspectors ----
export const ARPL = defineOp('ARPL', (c, k) => {
  const src = c.r16[c.iReg[k] << 1];
  const mem = (c.iFlags[k] & 64) !== 0;
  const dst = mem ? c.rmwRead16(c.iSeg[k], c.ea(k)) : c.r16[c.iRm[k] << 1];
  c.materializeFlags();
  if ((dst & 3) < (src & 3)) {
    const v = (dst & ~3) | (src & 3);
    if (mem) c.rmwWrite16(v); else c.r16[c.iRm[k] << 1] = v;
    c.flags |= ZF;
  } else {
    if (mem) c.rmwWrite16(dst);
    c.flags &= ~ZF;
  }
});

/** Common checks of LAR/LSL/VERR/VERW: is the descriptor visible at CPL/RPL? Leaves it in `desc`. */
function inspect(c: CPU, sel: number, allowedSystem: number): boolean {
  if ((sel & 0xfffc) === 0 || !readDescriptor(c, sel)) return false;
  const hi = desc.hi;
  const type = (hi >>> 8) & 0x1f;
  const dpl = (hi >>> 13) & 3;
  if ((type & 0x10) === 0) {
    if ((allowedSystem & (1 << type)) === 0) return false;
  } else if ((type & 0x1c) === 0x1c) {
    return true; // conforming code: no privilege check
  }
  return dpl >= c.cpl && dpl >= (sel & 3);
}

const LAR_SYSTEM = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 11) | (1 << 12);
const LSL_SYSTEM = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 9) | (1 << 11);

export const LAR = defineOp('LAR', (c, k) => {
  const sel = selOperand(c, k);
  c.materializeFlags();
  if (!inspect(c, sel, LAR_SYSTEM)) { c.flags &= ~ZF; return; }
  c.flags |= ZF;
  if ((c.iFlags[k] & 16) !== 0) c.r16[c.iReg[k] << 1] = desc.hi & 0xff00;
  else c.r32[c.iReg[k]] = desc.hi & 0x00ffff00;
});
export const LSL = defineOp('LSL', (c, k) => {
  const sel = selOperand(c, k);
  c.materializeFlags();
  if (!inspect(c, sel, LSL_SYSTEM)) { c.flags &= ~ZF; return; }
  c.flags |= ZF;
  const limit = descLimit(desc.lo, desc.hi);
  if ((c.iFlags[k] & 16) !== 0) c.r16[c.iReg[k] << 1] = limit;
  else c.r32[c.iReg[k]] = limit | 0;
});
export const VERR = defineOp('VERR', (c, k) => {
  const sel = selOperand(c, k);
  c.materializeFlags();
  const ok = inspect(c, sel, 0) && ((desc.hi & 0x800) === 0 || (desc.hi & 0x200) !== 0);
  c.flags = ok ? c.flags | ZF : c.flags & ~ZF;
});
export const VERW = defineOp('VERW', (c, k) => {
  const sel = selOperand(c, k);
  c.materializeFlags();
  const ok = inspect(c, sel, 0) && (desc.hi & 0x800) === 0 && (desc.hi & 0x200) !== 0;
  c.flags = ok ? c.flags | ZF : c.flags & ~ZF;
});

// ---- port I/O ----
/** May the current CPL access `size` ports at `port`? (IOPL, then the TSS I/O permission bitmap.) */
export function checkIo(c: CPU, port: number, size: number): void {
  if (c.cpl <= iopl(c)) return;
  const type = c.trAttr & 0xf;
  if ((c.trSel & 0xfffc) === 0 || (type !== 0x9 && type !== 0xb) || c.trLimit < 0x67) c.raise(GP, 0);
  const mapBase = c.readSys16((c.trBase + 0x66) | 0);
  const byte = mapBase + (port >>> 3);
  if (byte + 1 > c.trLimit) c.raise(GP, 0);
  const bits = c.readSys16((c.trBase + byte) | 0);
  const mask = ((1 << size) - 1) << (port & 7);
  if ((bits & mask) !== 0) c.raise(GP, 0);
}

function ioIn(c: CPU, port: number, n: 1 | 2 | 4): number {
  checkIo(c, port, n);
  return c.io.in(port, n);
}

function ioOut(c: CPU, port: number, n: 1 | 2 | 4, v: number): void {
  checkIo(c, port, n);
  c.io.out(port, n, n === 4 ? v | 0 : v & (n === 1 ? 0xff : 0xffff));
  if (c.exitReason !== ExitReason.None) c.stop = 1;
}

/** IN/OUT: iImm = port for the immediate forms, -1 for the DX forms; iSub = size in bytes. */
export const IN_ = defineOp('IN', (c, k) => {
  const port = c.iImm[k] >= 0 ? c.iImm[k] : c.r16[EDX << 1];
  const n = c.iSub[k] as 1 | 2 | 4;
  const v = ioIn(c, port, n);
  if (n === 1) c.r8[0] = v; else if (n === 2) c.r16[0] = v; else c.r32[EAX] = v;
});
export const OUT_ = defineOp('OUT', (c, k) => {
  const port = c.iImm[k] >= 0 ? c.iImm[k] : c.r16[EDX << 1];
  const n = c.iSub[k] as 1 | 2 | 4;
  ioOut(c, port, n, n === 1 ? c.r8[0] : n === 2 ? c.r16[0] : c.r32[EAX]);
});

/** INS/OUTS, with REP: one port access per iteration, registers committed per iteration. */
function insOuts(out: boolean) {
  return (c: CPU, k: number) => {
    const n = c.iSub[k] as 1 | 2 | 4;
    const fl = c.iFlags[k];
    const a16 = (fl & 1) !== 0;
    const rep = (fl & 6) !== 0;
    const delta = (c.flags & DF) !== 0 ? -n : n;
    const port = c.r16[EDX << 1];
    let count = rep ? (a16 ? c.r16[ECX << 1] : c.r32[ECX] >>> 0) : 1;
    if (count !== 0) checkIo(c, port, n); // the permission check comes before any memory access
    let chunk = 4096; // as REP string instructions: give the run loop a turn now and then
    while (count !== 0) {
      if (out) {
        const off = a16 ? c.r16[ESI << 1] : c.r32[ESI];
        const s = c.iSeg[k];
        const v = n === 1 ? c.read8(s, off) : n === 2 ? c.read16(s, off) : c.read32(s, off);
        ioOut(c, port, n, v);
        if (a16) c.r16[ESI << 1] += delta; else c.r32[ESI] = (c.r32[ESI] + delta) | 0;
      } else {
        const off = a16 ? c.r16[EDI << 1] : c.r32[EDI];
        // the destination is probed before the port is read
        if (n === 1) c.write8(ES, off, c.read8(ES, off)); else if (n === 2) c.write16(ES, off, c.read16(ES, off)); else c.write32(ES, off, c.read32(ES, off));
        const v = ioIn(c, port, n);
        if (n === 1) c.write8(ES, off, v); else if (n === 2) c.write16(ES, off, v); else c.write32(ES, off, v);
        if (a16) c.r16[EDI << 1] += delta; else c.r32[EDI] = (c.r32[EDI] + delta) | 0;
      }
      if (!rep) return;
      count--;
      if (a16) c.r16[ECX << 1] = count; else c.r32[ECX] = count | 0;
      if (c.exitReason !== ExitReason.None && count !== 0) {
        c.eip = c.prevEip;
        return;
      }
      if (--chunk === 0 && count !== 0) {
        c.eip = c.prevEip;
        c.retired--;
        c.budget -= 4096;
        c.stop = 1;
        return;
      }
    }
  };
}
export const INS = defineOp('INS', insOuts(false));
export const OUTS = defineOp('OUTS', insOuts(true));


/**
 * Memory access, the middle layer of the CPU (cpu.ts): segment caches and their fast-path limits, the
 * paging registers, the TLB (one entry per 4 KiB virtual page) and page walks, and every data access:
 * fast paths (aligned or in-page, segment within its fast limit, TLB entry with the right permission
 * bit) that inline into handlers and compiled code, the slow paths with every check, read-modify-writes,
 * locked read-modify-writes across vCPUs, the stack.
 */
import {
  AC, AC_VEC, CR0_AM, CR0_PG, CS, ESP, GP, PF_VEC, SS, SS_VEC, PAGE_SIZE,
} from './constants.ts';
import {
  LockKind, TLB_GLOBAL, TLB_R_SUP, TLB_R_USR, TLB_W_SUP, TLB_W_USR,
} from './access.ts';
import type { CPU } from './cpu.ts';
import { FlagsUnit } from './flags.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { walkPageTables } from '../mmu/paging.ts';
import { dataAccess } from './debug.ts';

const TLB_LIST_MAX = 16384;

/** Where the operand of a read-modify-write is (cpu.rmwPa2; a value >= 0 is the second page of an operand
 *  that straddles two). Only Direct stays on the fast path. */
const enum Rmw {
  /** In one page of RAM that holds no decoded code. */
  Direct = -1,
  /** In one page of RAM that holds decoded code: the write checks whether it hit instructions. */
  Code = -2,
  /** Beyond RAM: byte by byte through the bus. */
  Bus = -3,
  /** In RAM, read by a locked instruction: the write is a compare-exchange (ops/locked.ts). */
  Locked = -4,
}

/** Physical addresses beyond RAM (memory-mapped devices: bare mode's local and I/O APIC). Byte accesses;
 *  a wider access comes as its bytes, lowest address first. */
export interface MmioBus {
  read8(pa: number): number;
  write8(pa: number, v: number): void;
}

export abstract class MemoryUnit extends FlagsUnit {
  /** Devices beyond RAM (null: none; accesses read all ones, writes are dropped). */
  mmio: MmioBus | null = null;

  // ---- segment registers and their descriptor caches (ES CS SS DS FS GS) ----
  readonly segSel = new Int32Array(6);
  readonly segBase = new Int32Array(6);
  /** Effective limit in bytes (the highest valid offset for expand-up), as an unsigned number. */
  readonly segLimit = new Float64Array(6);
  /** Descriptor bits 40-55: type (0-3), S (4), DPL (5-6), P (7), AVL (12), L (13), D/B (14), G (15). */
  readonly segAttr = new Int32Array(6);
  /** Highest offset a read may start at and take the fast path (-1: always the slow path). */
  readonly segRLim = new Float64Array(6);
  /** Same for writes. */
  readonly segWLim = new Float64Array(6);
  /** SS is a 32-bit stack (B bit). */
  stack32 = true;

  // ---- system registers ----
  cr0 = 0x10; // ET
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  gdtBase = 0;
  gdtLimit = 0;
  idtBase = 0;
  idtLimit = 0x3ff;
  ldtSel = 0;
  ldtBase = 0;
  ldtLimit = 0;
  trSel = 0;
  trBase = 0;
  trLimit = 0;
  trAttr = 0;
  /** The four PAE page-directory-pointer entries, loaded on CR3 writes (low and high words). */
  readonly pdpte = new Int32Array(8);
  tsc = 0;
  readonly msr = new Map<number, bigint>();

  // ---- memory ----
  readonly mem: PhysicalMemory;
  readonly m8: Uint8Array;
  readonly m32: Int32Array;
  readonly m64: BigInt64Array;
  readonly dv: DataView;
  readonly memSize: number;

  // ---- TLB: one entry per 4 KiB virtual page, frame | permission bits, 0 = empty ----
  readonly tlb = new Int32Array(1 << 20);
  readonly tlbList = new Int32Array(TLB_LIST_MAX);
  tlbCount = 0;
  /** The TLB bit a data read needs at the current CPL (0 while alignment checking forces the slow path). */
  readBit = TLB_R_SUP;
  writeBit = TLB_W_SUP;
  fetchBit = TLB_R_SUP;
  // results of the last page walk
  walkFrame = 0;
  walkPerms = 0;

  /** Bumped when a translation, CS, the CPL or the code cache changes (with mem.codeEpoch: chain validity). */
  epoch = 0;
  /** Decode with 32-bit default operand and address size (CS.D). */
  code32 = true;
  /** Enabled data breakpoints (bit n = DRn; emulator/debug.ts): data accesses take the slow path. */
  dataBp = 0;

  constructor(mem: PhysicalMemory) {
    super();
    this.mem = mem;
    this.m8 = mem.u8;
    this.m32 = mem.i32;
    this.m64 = mem.i64;
    this.dv = mem.dv;
    this.memSize = mem.size;
  }

  /** The whole CPU, for the helpers that take one (page walks, data breakpoints). */
  private cpu(): CPU {
    return this as unknown as CPU;
  }

  /** Raise a fault (cpu.ts). */
  abstract raise(vector: number, error: number): never;
  /** A write hit a physical page that holds decoded code (code-cache.ts). */
  abstract codeWritten(page: number): void;
  /** Drop every decoded instruction (code-cache.ts). */
  abstract flushCodeCache(): void;

  // =====================================================================================================
  // Segments (fast-path limits; the descriptor checks of segment loads live in segments.ts)
  // =====================================================================================================

  setSegCache(s: number, sel: number, base: number, limit: number, attr: number): void {
    this.segSel[s] = sel & 0xffff;
    this.segBase[s] = base | 0;
    this.segLimit[s] = limit >>> 0;
    this.segAttr[s] = attr;
    const present = (attr & 0x80) !== 0 && (attr & 0x10) !== 0;
    const type = attr & 0xf;
    const code = (type & 8) !== 0;
    const expandDown = !code && (type & 4) !== 0;
    const usable = present && !(s !== CS && (sel & 0xfffc) === 0 && (this.cr0 & 1) !== 0 && s !== SS);
    const readable = usable && !expandDown && (!code || (type & 2) !== 0);
    const writable = usable && !expandDown && !code && (type & 2) !== 0;
    this.segRLim[s] = readable ? limit >>> 0 : -1;
    this.segWLim[s] = writable ? limit >>> 0 : -1;
    if (s === SS) this.stack32 = (attr & 0x4000) !== 0;
    if (s === CS) {
      this.epoch++;
      const c32 = (attr & 0x4000) !== 0;
      if (c32 !== this.code32) {
        this.code32 = c32;
        this.flushCodeCache();
      }
    }
  }

  // =====================================================================================================
  // Memory access: fast paths
  // =====================================================================================================

  read8(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) > this.segRLim[s] || (e & this.readBit) === 0) return this.readSlow(s, off, 1);
    return this.m8[(e & ~0xfff) | (lin & 0xfff)];
  }

  read16(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 1 > this.segRLim[s] || (e & this.readBit) === 0 || (lin & 0xfff) === 0xfff) {
      return this.readSlow(s, off, 2);
    }
    return this.dv.getUint16((e & ~0xfff) | (lin & 0xfff), true);
  }

  read32(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 3 > this.segRLim[s] || (e & this.readBit) === 0 || (lin & 0xfff) > 0xffc) {
      return this.readSlow(s, off, 4);
    }
    const pa = (e & ~0xfff) | (lin & 0xfff);
    return (pa & 3) === 0 ? this.m32[pa >> 2] : this.dv.getInt32(pa, true);
  }

  write8(s: number, off: number, v: number): void {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) > this.segWLim[s] || (e & this.writeBit) === 0) {
      this.writeSlow(s, off, 1, v);
      return;
    }
    this.m8[(e & ~0xfff) | (lin & 0xfff)] = v;
  }

  write16(s: number, off: number, v: number): void {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 1 > this.segWLim[s] || (e & this.writeBit) === 0 || (lin & 0xfff) === 0xfff) {
      this.writeSlow(s, off, 2, v);
      return;
    }
    this.dv.setUint16((e & ~0xfff) | (lin & 0xfff), v, true);
  }

  write32(s: number, off: number, v: number): void {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 3 > this.segWLim[s] || (e & this.writeBit) === 0 || (lin & 0xfff) > 0xffc) {
      this.writeSlow(s, off, 4, v);
      return;
    }
    const pa = (e & ~0xfff) | (lin & 0xfff);
    if ((pa & 3) === 0) this.m32[pa >> 2] = v;
    else this.dv.setInt32(pa, v, true);
  }

  // Read-modify-write: rmwRead* checks write access (so a fault happens before anything changes) and
  // remembers where the operand is; rmwWrite* stores the result there. rmwPa2 says how: Rmw.Direct (the
  // fast path), Rmw.Code, Rmw.Bus, Rmw.Locked (all in rmwWriteSlow), or the physical address of the
  // operand's part on a second page (its first rmwSplit bytes are at rmwPa).
  rmwPa = 0;
  rmwPa2 = Rmw.Direct;
  rmwSplit = 0;
  /** CMPXCHG8B: the high dword of the operand rmwRead64 read. */
  rmwHi = 0;

  // Locked read-modify-write (ops/locked.ts): while lockMode is set, rmwReadSlow reads the operand
  // atomically with the aligned word holding it (lockKind says which kind of word, lockOld* what it held)
  // and rmwWriteSlow stores the result only if that word still holds it; otherwise it sets lockFailed
  // and the LOCKED op runs the instruction again.
  /** Other CPUs share this memory (an SMP guest): locked instructions must be atomic across threads.
   *  False (one CPU: bare mode, a uniprocessor guest), they run as plain read-modify-writes, which no
   *  other thread can observe, at full speed. */
  sharedMemory = false;
  /** Called when a physical page becomes code for the first CPU (no CPU had code there). Other CPUs
   *  sharing the memory may hold TLB entries that write to that page without looking for code; an SMP
   *  Host makes them flush (TLB shootdown) so that their next write there finds the code and drops it. */
  onNewCodePage: ((page: number) => void) | null = null;
  lockMode = 0;
  /** The writeBit of the CPU in lock mode (where writeBit is 0 to keep the fast paths away). */
  lockWriteBit = 0;
  lockKind: LockKind = LockKind.None;
  lockFailed = 0;
  lockOld = 0;
  lockOldHi = 0;
  lockOldQ = 0n;
  /** Locked instructions started again because another vCPU wrote their operand meanwhile. */
  lockRetries = 0;

  rmwRead8(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) > this.segWLim[s] || (e & this.writeBit) === 0) return this.rmwReadSlow(s, off, 1);
    const pa = (e & ~0xfff) | (lin & 0xfff);
    this.rmwPa = pa;
    this.rmwPa2 = Rmw.Direct;
    return this.m8[pa];
  }

  rmwRead16(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 1 > this.segWLim[s] || (e & this.writeBit) === 0 || (lin & 0xfff) === 0xfff) {
      return this.rmwReadSlow(s, off, 2);
    }
    const pa = (e & ~0xfff) | (lin & 0xfff);
    this.rmwPa = pa;
    this.rmwPa2 = Rmw.Direct;
    return this.dv.getUint16(pa, true);
  }

  rmwRead32(s: number, off: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + 3 > this.segWLim[s] || (e & this.writeBit) === 0 || (lin & 0xfff) > 0xffc) {
      return this.rmwReadSlow(s, off, 4);
    }
    const pa = (e & ~0xfff) | (lin & 0xfff);
    this.rmwPa = pa;
    this.rmwPa2 = Rmw.Direct;
    return (pa & 3) === 0 ? this.m32[pa >> 2] : this.dv.getInt32(pa, true);
  }

  rmwWrite8(v: number): void {
    if (this.rmwPa2 === Rmw.Direct) this.m8[this.rmwPa] = v;
    else this.rmwWriteSlow(v, 1);
  }

  rmwWrite16(v: number): void {
    if (this.rmwPa2 === Rmw.Direct) this.dv.setUint16(this.rmwPa, v, true);
    else this.rmwWriteSlow(v, 2);
  }

  rmwWrite32(v: number): void {
    const pa = this.rmwPa;
    if (this.rmwPa2 !== Rmw.Direct) this.rmwWriteSlow(v, 4);
    else if ((pa & 3) === 0) this.m32[pa >> 2] = v;
    else this.dv.setInt32(pa, v, true);
  }

  // Stack
  push32(v: number): void {
    if (this.stack32) {
      const sp = (this.r32[ESP] - 4) | 0;
      this.write32(SS, sp, v);
      this.r32[ESP] = sp;
    } else {
      const sp = (this.r32[ESP] - 4) & 0xffff;
      this.write32(SS, sp, v);
      this.r16[ESP << 1] = sp;
    }
  }

  push16(v: number): void {
    if (this.stack32) {
      const sp = (this.r32[ESP] - 2) | 0;
      this.write16(SS, sp, v);
      this.r32[ESP] = sp;
    } else {
      const sp = (this.r32[ESP] - 2) & 0xffff;
      this.write16(SS, sp, v);
      this.r16[ESP << 1] = sp;
    }
  }

  /** Read the dword at the top of the stack without popping it. */
  peek32(delta: number): number {
    const sp = this.stack32 ? (this.r32[ESP] + delta) | 0 : (this.r32[ESP] + delta) & 0xffff;
    return this.read32(SS, sp);
  }

  peek16(delta: number): number {
    const sp = this.stack32 ? (this.r32[ESP] + delta) | 0 : (this.r32[ESP] + delta) & 0xffff;
    return this.read16(SS, sp);
  }

  /** ESP += n, honouring a 16-bit stack. */
  adjustSp(n: number): void {
    if (this.stack32) this.r32[ESP] = (this.r32[ESP] + n) | 0;
    else this.r16[ESP << 1] = (this.r32[ESP] + n) & 0xffff;
  }

  pop32(): number {
    const v = this.peek32(0);
    this.adjustSp(4);
    return v;
  }

  pop16(): number {
    const v = this.peek16(0);
    this.adjustSp(2);
    return v;
  }

  // =====================================================================================================
  // Memory access: slow paths
  // =====================================================================================================

  /** Check an access of `size` bytes at offset `off` of segment s against its type and limit; raise
   *  #GP(0), or #SS(0) for the stack segment, when it fails. */
  segCheck(s: number, off: number, size: number, write: boolean): void {
    const attr = this.segAttr[s];
    const sel = this.segSel[s];
    const fault = s === SS ? SS_VEC : GP;
    if ((this.cr0 & 1) !== 0 && s !== CS && s !== SS && (sel & 0xfffc) === 0) this.raise(GP, 0);
    if ((attr & 0x80) === 0) this.raise(fault, 0);
    const type = attr & 0xf;
    const code = (type & 8) !== 0;
    if (write ? code || (type & 2) === 0 : code && (type & 2) === 0) this.raise(fault, 0);
    const o = off >>> 0;
    const last = o + size - 1;
    const limit = this.segLimit[s];
    if (!code && (type & 4) !== 0) {
      // expand-down: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF (B bit)
      const top = (attr & 0x4000) !== 0 ? 0xffffffff : 0xffff;
      if (o <= limit || last > top) this.raise(fault, 0);
    } else if (last > limit) {
      // a flat 4 GiB segment wraps around instead of faulting
      if (!(limit === 0xffffffff)) this.raise(fault, 0);
    }
  }

  private alignCheck(lin: number, size: number): void {
    if ((lin & (size - 1)) !== 0 && this.cpl === 3 && (this.cr0 & CR0_AM) !== 0 && (this.flags & AC) !== 0) {
      this.raise(AC_VEC, 0);
    }
  }

  readSlow(s: number, off: number, size: number): number {
    this.segCheck(s, off, size, false);
    const lin = (this.segBase[s] + off) | 0;
    this.alignCheck(lin, size);
    if (this.dataBp !== 0) dataAccess(this.cpu(), lin, size, false);
    return this.readLinear(lin, size, this.cpl === 3);
  }

  writeSlow(s: number, off: number, size: number, v: number): void {
    const wc = this.writeBit << 3;
    if (wc !== 0) {
      // second chance: a writable page that also holds code
      const lin = (this.segBase[s] + off) | 0;
      const e = this.tlb[lin >>> 12];
      if ((e & wc) !== 0 && (off >>> 0) + size - 1 <= this.segWLim[s] && (lin & 0xfff) <= 0x1000 - size) {
        this.writeCodePage((e & ~0xfff) | (lin & 0xfff), size, v);
        return;
      }
    }
    this.segCheck(s, off, size, true);
    const lin = (this.segBase[s] + off) | 0;
    this.alignCheck(lin, size);
    if (this.dataBp !== 0) dataAccess(this.cpu(), lin, size, true);
    this.writeLinear(lin, size, v, this.cpl === 3);
  }

  rmwReadSlow(s: number, off: number, size: number): number {
    if (this.lockMode !== 0) return this.lockedRead(s, off, size);
    this.rmwLocate(s, off, size);
    return this.rmwReadBytes(0, size);
  }

  /** The checks of a read-modify-write access (segment, alignment, data breakpoints, paging for writing),
   *  raising its fault; then note where the operand is for rmwWrite*. */
  private rmwLocate(s: number, off: number, size: number): void {
    this.segCheck(s, off, size, true);
    const lin = (this.segBase[s] + off) | 0;
    this.alignCheck(lin, size);
    if (this.dataBp !== 0) dataAccess(this.cpu(), lin, size, true);
    const user = this.cpl === 3;
    const first = PAGE_SIZE - (lin & 0xfff);
    const pa = this.translate(lin, true, user);
    this.rmwPa = pa;
    if (first >= size) {
      // beyond RAM: byte-wise through the bus; a page with code: checked write; else direct
      this.rmwPa2 = pa >= this.memSize ? Rmw.Bus : this.mem.codePages[pa >>> 12] !== 0 ? Rmw.Code : Rmw.Direct;
      this.rmwSplit = size;
    } else {
      this.rmwPa2 = this.translate((lin + first) | 0, true, user);
      this.rmwSplit = first;
    }
  }

  /** Physical address of byte i of the operand rmwLocate found. */
  private rmwByte(i: number): number {
    return i < this.rmwSplit ? this.rmwPa + i : this.rmwPa2 + i - this.rmwSplit;
  }

  /** Bytes [from, from + n) of that operand (n <= 4), little-endian. */
  private rmwReadBytes(from: number, n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v |= this.physRead8(this.rmwByte(from + i)) << (i * 8);
    return n === 4 ? v | 0 : v;
  }

  /** Write `size` bytes (within one page of RAM) to a page that holds decoded code, and drop that code
   *  if the write touched its bytes. */
  private writeCodePage(pa: number, size: number, v: number): void {
    if (size === 1) this.m8[pa] = v;
    else if (size === 2) this.dv.setUint16(pa, v, true);
    else this.dv.setInt32(pa, v, true);
    if (this.mem.codeHit(pa, size)) this.codeWritten(pa >>> 12);
  }

  rmwWriteSlow(v: number, size: number): void {
    if (this.lockKind !== LockKind.None) {
      this.lockedWrite(v, size);
      return;
    }
    if (this.rmwPa2 === Rmw.Code) {
      this.writeCodePage(this.rmwPa, size, v);
      return;
    }
    for (let i = 0; i < size; i++) this.physWrite8(this.rmwByte(i), (v >>> (i * 8)) & 0xff);
  }

  /** CMPXCHG8B's operand: checked for writing as two dword accesses would be (the high one first), then
   *  read whole. Returns the low dword and leaves the high one in rmwHi. Always the slow path. */
  rmwRead64(s: number, off: number): number {
    this.rmwLocate(s, (off + 4) | 0, 4);
    this.rmwLocate(s, off, 4);
    const lin = (this.segBase[s] + off) | 0;
    const user = this.cpl === 3;
    const first = PAGE_SIZE - (lin & 0xfff);
    const pa = this.translate(lin, true, user);
    this.rmwPa = pa;
    if (first >= 8) {
      this.rmwPa2 = pa >= this.memSize ? Rmw.Bus : Rmw.Direct;
      this.rmwSplit = 8;
    } else {
      this.rmwPa2 = this.translate((lin + first) | 0, true, user);
      this.rmwSplit = first;
    }
    if (this.lockMode !== 0 && this.rmwPa2 === Rmw.Direct && (pa & 7) === 0) {
      const q = Atomics.load(this.m64, pa >> 3);
      this.lockKind = LockKind.Qword;
      this.lockOldQ = q;
      this.rmwHi = Number(q >> 32n);
      return Number(BigInt.asIntN(32, q));
    }
    if (this.lockMode !== 0 && this.rmwPa2 !== Rmw.Bus) this.lockKind = LockKind.Split;
    const lo = this.rmwReadBytes(0, 4);
    this.rmwHi = this.rmwReadBytes(4, 4);
    this.lockOld = lo;
    this.lockOldHi = this.rmwHi;
    return lo;
  }

  /** Store CMPXCHG8B's result where rmwRead64 found its operand. */
  rmwWrite64(lo: number, hi: number): void {
    if (this.lockKind === LockKind.Qword) {
      const pa = this.rmwPa, old = this.lockOldQ;
      const q = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      if (Atomics.compareExchange(this.m64, pa >> 3, old, q) !== old) this.lockFailed = 1;
      else if (this.mem.codePages[pa >>> 12] !== 0 && this.mem.codeHit(pa, 8)) this.codeWritten(pa >>> 12);
      return;
    }
    if (this.lockKind === LockKind.Split) {
      this.splitLockedWrite(8, lo, hi);
      return;
    }
    for (let i = 0; i < 8; i++) this.physWrite8(this.rmwByte(i), ((i < 4 ? lo : hi) >>> ((i & 3) * 8)) & 0xff);
  }

  /**
   * rmwReadSlow in lock mode: find the operand as the fast path (with the CPU's real writeBit) or
   * rmwLocate would, then read the aligned dword holding it (or the aligned qword, when it crosses a
   * dword boundary inside one) with one atomic load and remember it; lockedWrite stores the result with a
   * compare-exchange of that word. An operand that straddles two qwords or two pages is read byte by byte
   * and checked again under the machine's split lock (the bus lock of a real CPU); one beyond RAM is a
   * plain access through the bus.
   */
  private lockedRead(s: number, off: number, size: number): number {
    const lin = (this.segBase[s] + off) | 0;
    const e = this.tlb[lin >>> 12];
    if ((off >>> 0) + size - 1 <= this.segWLim[s] && (e & this.lockWriteBit) !== 0 && (lin & 0xfff) <= PAGE_SIZE - size) {
      // what the fast path would have taken: one page of RAM without code
      this.rmwPa = (e & ~0xfff) | (lin & 0xfff);
      this.rmwPa2 = Rmw.Direct;
      this.rmwSplit = size;
    } else {
      this.rmwLocate(s, off, size);
      if (this.rmwPa2 === Rmw.Bus) return this.rmwReadBytes(0, size);
    }
    const pa = this.rmwPa;
    if (this.rmwPa2 < 0) {
      // one page of RAM (direct or holding code): rmwWrite* must come to rmwWriteSlow
      this.rmwPa2 = Rmw.Locked;
      if ((pa & 3) + size <= 4) {
        const w = Atomics.load(this.m32, pa >> 2);
        this.lockKind = LockKind.Dword;
        this.lockOld = w;
        if (size === 4) return w;
        const sh = (pa & 3) << 3;
        return size === 1 ? (w >>> sh) & 0xff : (w >>> sh) & 0xffff;
      }
      if ((pa & 7) + size <= 8) {
        const q = Atomics.load(this.m64, pa >> 3);
        this.lockKind = LockKind.Qword;
        this.lockOldQ = q;
        const v = Number(BigInt.asUintN(size * 8, q >> BigInt((pa & 7) << 3)));
        return size === 4 ? v | 0 : v;
      }
    }
    this.lockKind = LockKind.Split;
    const v = this.rmwReadBytes(0, size);
    this.lockOld = v;
    return v;
  }

  /** The write of a locked read-modify-write: store only if the operand's word still holds what
   *  lockedRead read (else set lockFailed, the LOCKED op starts the instruction again); then drop any
   *  decoded code the write touched. */
  private lockedWrite(v: number, size: number): void {
    const pa = this.rmwPa;
    if (this.lockKind === LockKind.Dword) {
      const old = this.lockOld, sh = (pa & 3) << 3;
      const mask = size === 4 ? -1 : (size === 1 ? 0xff : 0xffff) << sh;
      if (Atomics.compareExchange(this.m32, pa >> 2, old, (old & ~mask) | ((v << sh) & mask)) !== old) {
        this.lockFailed = 1;
        return;
      }
    } else if (this.lockKind === LockKind.Qword) {
      const old = this.lockOldQ, sh = BigInt((pa & 7) << 3);
      const mask = ((1n << BigInt(size * 8)) - 1n) << sh;
      if (Atomics.compareExchange(this.m64, pa >> 3, old, (old & ~mask) | ((BigInt(v) << sh) & mask)) !== old) {
        this.lockFailed = 1;
        return;
      }
    } else {
      this.splitLockedWrite(size, v, 0);
      return;
    }
    if (this.mem.codePages[pa >>> 12] !== 0 && this.mem.codeHit(pa, size)) this.codeWritten(pa >>> 12);
  }

  /** A locked write of an operand that straddles two qwords or two pages: under the machine's split lock,
   *  check the operand still holds what was read, then write it byte by byte (physWrite8 drops code it
   *  touches). Atomic with respect to other split-locked writes only (emulator/README.md). */
  private splitLockedWrite(size: number, lo: number, hi: number): void {
    const lock = this.mem.splitLock;
    while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) { /* held for a few byte accesses: spin */ }
    const n = size < 4 ? size : 4;
    if (this.rmwReadBytes(0, n) !== this.lockOld || (size === 8 && this.rmwReadBytes(4, 4) !== this.lockOldHi)) {
      this.lockFailed = 1;
    } else {
      for (let i = 0; i < size; i++) this.physWrite8(this.rmwByte(i), ((i < 4 ? lo : hi) >>> ((i & 3) * 8)) & 0xff);
    }
    Atomics.store(lock, 0, 0);
  }

  /** Read `size` bytes (little-endian) at a linear address, with user or supervisor rights. */
  readLinear(lin: number, size: number, user: boolean): number {
    const first = PAGE_SIZE - (lin & 0xfff);
    if (first >= size) {
      const pa = this.translate(lin, false, user);
      if (pa + size <= this.memSize) {
        if (size === 1) return this.m8[pa];
        if (size === 2) return this.dv.getUint16(pa, true);
        return this.dv.getInt32(pa, true);
      }
      let v = 0;
      for (let i = 0; i < size; i++) v |= this.physRead8(pa + i) << (i * 8);
      return size === 4 ? v | 0 : v;
    }
    const pa1 = this.translate(lin, false, user);
    const pa2 = this.translate((lin + first) | 0, false, user);
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.physRead8(i < first ? pa1 + i : pa2 + i - first) << (i * 8);
    return size === 4 ? v | 0 : v;
  }

  writeLinear(lin: number, size: number, v: number, user: boolean): void {
    const first = PAGE_SIZE - (lin & 0xfff);
    if (first >= size) {
      const pa = this.translate(lin, true, user);
      for (let i = 0; i < size; i++) this.physWrite8(pa + i, (v >>> (i * 8)) & 0xff);
      return;
    }
    // translate both pages before writing anything, so a fault on the second changes nothing
    const pa1 = this.translate(lin, true, user);
    const pa2 = this.translate((lin + first) | 0, true, user);
    for (let i = 0; i < size; i++) this.physWrite8(i < first ? pa1 + i : pa2 + i - first, (v >>> (i * 8)) & 0xff);
  }

  /** Supervisor-mode (implicit) accesses to system structures: GDT, LDT, IDT, TSS. */
  readSys32(lin: number): number { return this.readLinear(lin, 4, false); }
  readSys16(lin: number): number { return this.readLinear(lin, 2, false); }
  writeSys32(lin: number, v: number): void { this.writeLinear(lin, 4, v, false); }

  physRead8(pa: number): number {
    return pa >= 0 && pa < this.memSize ? this.m8[pa] : this.mmio !== null ? this.mmio.read8(pa >>> 0) : 0xff;
  }

  physWrite8(pa: number, v: number): void {
    if (pa < 0 || pa >= this.memSize) {
      if (this.mmio !== null) this.mmio.write8(pa >>> 0, v);
      return;
    }
    this.m8[pa] = v;
    if (this.mem.codePages[pa >>> 12] !== 0 && this.mem.codeHit(pa, 1)) this.codeWritten(pa >>> 12);
  }

  // =====================================================================================================
  // TLB and paging
  // =====================================================================================================

  /** Recompute which TLB permission bits the fast paths need (CPL, alignment checking). */
  updateAccessBits(): void {
    const user = this.cpl === 3;
    // alignment checking and data breakpoints send every data access to the slow path
    const slowData = (user && (this.cr0 & CR0_AM) !== 0 && (this.flags & AC) !== 0) || this.dataBp !== 0;
    this.readBit = slowData ? 0 : user ? TLB_R_USR : TLB_R_SUP;
    this.writeBit = slowData ? 0 : user ? TLB_W_USR : TLB_W_SUP;
    this.fetchBit = user ? TLB_R_USR : TLB_R_SUP;
  }

  /** Translate a linear address for an access, filling the TLB; raises #PF. Returns the physical address. */
  translate(lin: number, write: boolean, user: boolean): number {
    const need = write ? (user ? TLB_W_USR : TLB_W_SUP) : (user ? TLB_R_USR : TLB_R_SUP);
    const vpn = lin >>> 12;
    const e = this.tlb[vpn];
    if ((e & need) !== 0) return (e & ~0xfff) | (lin & 0xfff);
    this.fillTlb(lin, write, user, false);
    return this.walkFrame + (lin & 0xfff);
  }

  /** Walk the page tables for `lin` (or map it 1:1 with paging off), check the access, set A/D bits and
   *  cache the translation. Leaves the frame in walkFrame. */
  fillTlb(lin: number, write: boolean, user: boolean, fetch: boolean): void {
    let perms: number;
    if ((this.cr0 & CR0_PG) === 0) {
      this.walkFrame = (lin & ~0xfff) >>> 0; // unsigned: addresses above 2 GiB are beyond RAM, not negative
      perms = TLB_R_SUP | TLB_R_USR | TLB_W_SUP | TLB_W_USR;
    } else {
      const code = walkPageTables(this.cpu(), lin, write, user, true);
      if (code >= 0) {
        this.cr2 = lin;
        // a fetch fault belongs to the instruction being fetched (no instruction has started yet)
        if (fetch) this.prevEip = this.eip;
        this.raise(PF_VEC, code);
      }
      perms = this.walkPerms;
    }
    const frame = this.walkFrame;
    if (frame >= 0 && frame < this.memSize) {
      if (this.mem.codePages[frame >>> 12] !== 0) perms = (perms & ~(TLB_W_SUP | TLB_W_USR)) | ((perms & (TLB_W_SUP | TLB_W_USR)) << 3);
      const vpn = lin >>> 12;
      if (this.tlb[vpn] === 0) {
        if (this.tlbCount === TLB_LIST_MAX) this.flushTlb(true);
        this.tlbList[this.tlbCount++] = vpn;
      }
      this.tlb[vpn] = frame | perms;
    }
  }

  /** Drop cached translations; `all` also drops global pages. */
  flushTlb(all: boolean): void {
    this.epoch++;
    const list = this.tlbList;
    const tlb = this.tlb;
    if (this.tlbCount === TLB_LIST_MAX && all) {
      tlb.fill(0);
      this.tlbCount = 0;
      return;
    }
    let keep = 0;
    for (let i = 0; i < this.tlbCount; i++) {
      const vpn = list[i];
      const e = tlb[vpn];
      if (e === 0) continue;
      if (!all && (e & TLB_GLOBAL) !== 0) list[keep++] = vpn;
      else tlb[vpn] = 0;
    }
    this.tlbCount = keep;
  }

  /** INVLPG: drop one page's translation, global or not. */
  invalidatePage(lin: number): void {
    this.epoch++;
    this.tlb[lin >>> 12] = 0;
  }

  /** Translation for debuggers and the Host: sets no accessed/dirty bits and raises nothing.
   *  Returns the physical address, or -1 when the address is not mapped. */
  debugTranslate(lin: number, user = false, write = false): number {
    if ((this.cr0 & CR0_PG) === 0) return lin >>> 0;
    const code = walkPageTables(this.cpu(), lin, write, user, false);
    return code >= 0 ? -1 : this.walkFrame + (lin & 0xfff);
  }

}

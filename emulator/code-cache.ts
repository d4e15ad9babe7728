/**
 * The code cache, the third layer of the CPU (cpu.ts): the decoded-instruction pool (struct of arrays)
 * grouped in blocks that end at control transfers, found by physical address through a per-page entry
 * table; instructions that straddle pages; compiled blocks and block chaining; dropping code that was
 * written to (self-modifying code, the Host, other vCPUs).
 */
import { CS, GP, PAGE_SIZE } from './constants.ts';
import { TLB_W_SUP, TLB_W_USR } from './access.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { decodeInstruction, DECODE_INCOMPLETE } from './decoder.ts';
import { TERMINATES_BLOCK } from './optable.ts';
import { MemoryUnit } from './memory.ts';
import type { BlockFn } from './jit.ts';

const MAX_BLOCK = 48;
export const POOL_SIZE = 1 << 18;
/** Entries of the cache of instructions that straddle a page boundary. */
const CROSS_CACHE = 256;
/** Entry-table marker: the instruction at this offset straddles the page boundary. */
const CROSSES_PAGE = -1;
/** Runs of a block in the interpreter before it is compiled (LGUEST_TS_JIT_THRESHOLD overrides it; 0 turns
 *  the block compiler off). */
const JIT_THRESHOLD = envThreshold(process.env.LGUEST_TS_JIT_THRESHOLD, 24);

function envThreshold(v: string | undefined, def: number): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : def;
}

export abstract class CodeCache extends MemoryUnit {
  // ---- decoded-instruction pool (struct of arrays); index 0 is scratch for page-crossing code ----
  readonly iOp = new Uint16Array(POOL_SIZE);
  readonly iLen = new Uint8Array(POOL_SIZE);
  readonly iReg = new Uint8Array(POOL_SIZE);
  readonly iRm = new Uint8Array(POOL_SIZE);
  readonly iBase = new Uint8Array(POOL_SIZE);
  readonly iIdx = new Uint8Array(POOL_SIZE);
  readonly iScale = new Uint8Array(POOL_SIZE);
  readonly iSeg = new Uint8Array(POOL_SIZE);
  readonly iFlags = new Uint8Array(POOL_SIZE);
  readonly iSub = new Uint8Array(POOL_SIZE);
  readonly iDisp = new Int32Array(POOL_SIZE);
  readonly iImm = new Int32Array(POOL_SIZE);
  readonly iImm2 = new Int32Array(POOL_SIZE);
  /** The real op of an instruction decoded as LOCKED (ops/locked.ts). */
  readonly iLockOp = new Uint16Array(POOL_SIZE);
  readonly blkLen = new Uint8Array(POOL_SIZE);
  poolNext = 1;
  /** Compiled blocks (emulator/jit.ts), by first pool row; how often each block ran interpreted. */
  readonly blkFn: (BlockFn | undefined)[] = new Array(POOL_SIZE);
  readonly blkHits = new Uint8Array(POOL_SIZE);
  /** Compile a block after it ran this many times interpreted (0: never compile). */
  jitThreshold = JIT_THRESHOLD;
  /** Testing aid: single steps run each instruction as a freshly compiled one-instruction block. */
  jitSteps = false;
  /** Index, within the running compiled block, of the instruction that may fault next. */
  jitIdx = 0;
  /** Block chaining: for each block, the last two (next EIP -> next block) it was followed by, valid while
   *  the translation and code epoch is the one recorded; spares the full lookup between blocks. */
  readonly chainEip = new Int32Array(POOL_SIZE * 2);
  readonly chainK = new Int32Array(POOL_SIZE * 2);
  readonly chainPage = new Int32Array(POOL_SIZE * 2);
  readonly chainEpoch = new Int32Array(POOL_SIZE * 2).fill(-1);
  /** The block that ran last (0: none). */
  lastBlock = 0;

  // ---- code cache: physical page -> slot; slot -> block index per byte offset ----
  readonly codePageSlot: Int32Array;
  readonly codeSlots: number;
  readonly slotPage: Int32Array;
  readonly slotGen: Int32Array;
  readonly slotEntries: Int32Array;
  nextSlot = 0;
  /** Bit of this vCPU in memory.codePages. */
  codeBit = 1;
  /** Physical page of the block being executed (to notice writes into it). */
  curCodePage = -1;
  /** Scratch for decoding an instruction that crosses a page boundary, and the cache of such decoded
   *  instructions (physical address of the first byte -> pool row, with the epoch it is valid in). */
  private readonly crossBuf = new Uint8Array(16);
  private readonly crossPa = new Int32Array(CROSS_CACHE).fill(-1);
  private readonly crossK = new Int32Array(CROSS_CACHE);
  private readonly crossEpoch = new Int32Array(CROSS_CACHE);

  /** Set by a handler to end the current block after this instruction. */
  stop = 0;

  constructor(mem: PhysicalMemory, vcpuId: number, codeSlots: number) {
    super(mem);
    this.codeSlots = codeSlots;
    this.slotPage = new Int32Array(this.codeSlots).fill(-1);
    this.slotGen = new Int32Array(this.codeSlots);
    this.slotEntries = new Int32Array(this.codeSlots * PAGE_SIZE);
    this.codePageSlot = new Int32Array(mem.pages);
    this.codeBit = 1 << (vcpuId & 7);
  }

  /** An instruction fetch from beyond RAM: the machine stops (cpu.ts). */
  abstract fetchOutsideRam(lin: number): number;

  // =====================================================================================================
  // Effective addresses
  // =====================================================================================================

  /** Effective address (offset within the segment) of decoded instruction k's memory operand. */
  ea(k: number): number {
    if ((this.iFlags[k] & 1) !== 0) return this.ea16(k);
    return (this.r32[this.iBase[k]] + (this.r32[this.iIdx[k]] << this.iScale[k]) + this.iDisp[k]) | 0;
  }

  ea16(k: number): number {
    return ((this.r32[this.iBase[k]] & 0xffff) + (this.r32[this.iIdx[k]] & 0xffff) + this.iDisp[k]) & 0xffff;
  }

  /** Strip write permission from every TLB entry that maps physical page `page` (it now holds code). */
  private protectCodePage(page: number): void {
    const list = this.tlbList;
    const tlb = this.tlb;
    for (let i = 0; i < this.tlbCount; i++) {
      const vpn = list[i];
      const e = tlb[vpn];
      if (e !== 0 && (e >>> 12) === page) tlb[vpn] = (e & ~(TLB_W_SUP | TLB_W_USR)) | ((e & (TLB_W_SUP | TLB_W_USR)) << 3);
    }
  }

  // =====================================================================================================
  // Code cache
  // =====================================================================================================

  /** A write hit a physical page that holds decoded code. */
  codeWritten(page: number): void {
    this.mem.invalidateCode(page);
    if (page === this.curCodePage) this.stop = 1;
  }

  flushCodeCache(): void {
    this.epoch++;
    this.lastBlock = 0;
    this.crossPa.fill(-1);
    this.codePageSlot.fill(0);
    this.slotPage.fill(-1);
    this.blkFn.fill(undefined, 0, this.poolNext);
    this.blkHits.fill(0, 0, this.poolNext);
    this.poolNext = 1;
  }

  private newCodeSlot(page: number): number {
    let slot = this.codePageSlot[page] - 1;
    if (slot < 0) {
      slot = this.nextSlot;
      this.nextSlot = (slot + 1) % this.codeSlots;
      const old = this.slotPage[slot];
      if (old >= 0) {
        this.codePageSlot[old] = 0;
        Atomics.and(this.mem.codePages, old, ~this.codeBit & 0xff);
      }
      this.slotPage[slot] = page;
      this.codePageSlot[page] = slot + 1;
    }
    if ((this.mem.codePages[page] & this.codeBit) === 0) {
      const others = Atomics.or(this.mem.codePages, page, this.codeBit);
      this.protectCodePage(page);
      if (others === 0 && this.onNewCodePage !== null) this.onNewCodePage(page);
    }
    this.slotGen[slot] = Atomics.load(this.mem.codeGen, page);
    this.slotEntries.fill(0, slot << 12, (slot + 1) << 12);
    return slot;
  }

  /** Find (or decode) the block at the current EIP and return its first pool index. */
  lookupBlock(): number {
    const eip = this.eip;
    if ((eip >>> 0) > this.segLimit[CS]) this.raiseFetchLimit();
    const lin = (this.segBase[CS] + eip) | 0;
    let e = this.tlb[lin >>> 12];
    if ((e & this.fetchBit) === 0) {
      this.fillTlb(lin, false, this.cpl === 3, true);
      e = this.tlb[lin >>> 12];
      if ((e & this.fetchBit) === 0) return this.fetchOutsideRam(lin);
    }
    const pa = (e & ~0xfff) | (lin & 0xfff);
    const page = pa >>> 12;
    let slot = this.codePageSlot[page] - 1;
    if (slot < 0 || this.slotGen[slot] !== this.mem.codeGen[page]) slot = this.newCodeSlot(page);
    this.curCodePage = page;
    const k = this.slotEntries[(slot << 12) | (pa & 0xfff)];
    if (k > 0) return k;
    if (k === CROSSES_PAGE) return this.decodeCrossPage(eip, pa);
    return this.decodeBlock(slot, pa, eip);
  }

  private raiseFetchLimit(): never {
    this.prevEip = this.eip;
    return this.raise(GP, 0);
  }

  private decodeBlock(slot: number, pa: number, eip: number): number {
    if (this.poolNext + MAX_BLOCK >= POOL_SIZE) {
      this.flushCodeCache();
      slot = this.newCodeSlot(pa >>> 12);
    }
    const k0 = this.poolNext;
    let k = k0;
    let off = pa & 0xfff;
    const pageBase = pa & ~0xfff;
    let cur = eip;
    let n = 0;
    for (;;) {
      const limitLeft = this.segLimit[CS] - (cur >>> 0) + 1;
      const pageLeft = PAGE_SIZE - off;
      const len = decodeInstruction(this, k, this.m8, pageBase + off, Math.min(pageLeft, 15), limitLeft, this.code32);
      if (len === DECODE_INCOMPLETE) {
        if (n !== 0) break;
        this.slotEntries[(slot << 12) | (pa & 0xfff)] = CROSSES_PAGE;
        return this.decodeCrossPage(eip, pa);
      }
      n++;
      k++;
      off += len;
      cur = (cur + len) | 0;
      if (TERMINATES_BLOCK[this.iOp[k - 1]] !== 0 || n === MAX_BLOCK || off >= PAGE_SIZE) break;
    }
    this.blkLen[k0] = n;
    this.poolNext = k;
    this.mem.markCode(pa >>> 12, pa & 0xfff, off);
    this.slotEntries[(slot << 12) | (pa & 0xfff)] = k0;
    return k0;
  }

  /**
   * An instruction whose bytes straddle two pages. Fetching the second page may raise #PF with CR2 at its
   * start, as the hardware does. Decoded ones are kept in a small cache by the physical address of their
   * first byte, valid while the CPU's translation and code epoch is the one they were decoded in (so a
   * new mapping of the second page, or a write to either page's code, decodes it again). They are blocks
   * of one instruction; with the cache off (full) they use scratch row 0, which is never cached.
   */
  private decodeCrossPage(eip: number, pa: number): number {
    const ep = (this.epoch + this.mem.codeEpoch[0]) | 0;
    const h = (pa ^ (pa >>> 12)) & (CROSS_CACHE - 1);
    if (this.crossPa[h] === pa && this.crossEpoch[h] === ep) return this.crossK[h];
    const lin = (this.segBase[CS] + eip) | 0;
    const first = PAGE_SIZE - (lin & 0xfff);
    const buf = this.crossBuf;
    for (let i = 0; i < first; i++) buf[i] = this.physRead8(pa + i);
    // The decoder asks for more only if it needs it: decode with what we have, then with the second page.
    const limitLeft = this.segLimit[CS] - (eip >>> 0) + 1;
    let len = decodeInstruction(this, 0, buf, 0, first, limitLeft, this.code32);
    let pa2 = -1;
    if (len === DECODE_INCOMPLETE) {
      pa2 = this.translateFetch((lin + first) | 0);
      for (let i = first; i < 16; i++) buf[i] = this.physRead8(pa2 + i - first);
      len = decodeInstruction(this, 0, buf, 0, 15, limitLeft, this.code32);
    }
    this.blkLen[0] = 1;
    // keep it: copy row 0 into a pool row and note both pages as holding code
    if (pa2 < 0 || pa2 >= this.memSize || this.poolNext + 1 >= POOL_SIZE) return 0;
    const k = this.poolNext++;
    this.iOp[k] = this.iOp[0]; this.iLen[k] = this.iLen[0]; this.iReg[k] = this.iReg[0]; this.iRm[k] = this.iRm[0];
    this.iBase[k] = this.iBase[0]; this.iIdx[k] = this.iIdx[0]; this.iScale[k] = this.iScale[0];
    this.iSeg[k] = this.iSeg[0]; this.iFlags[k] = this.iFlags[0]; this.iSub[k] = this.iSub[0];
    this.iDisp[k] = this.iDisp[0]; this.iImm[k] = this.iImm[0]; this.iImm2[k] = this.iImm2[0];
    this.iLockOp[k] = this.iLockOp[0];
    this.blkLen[k] = 1;
    this.blkFn[k] = undefined;
    this.blkHits[k] = 0;
    const page2 = pa2 >>> 12;
    this.mem.markCode(pa >>> 12, pa & 0xfff, PAGE_SIZE);
    if ((this.mem.codePages[page2] & this.codeBit) === 0) {
      const others = Atomics.or(this.mem.codePages, page2, this.codeBit);
      this.protectCodePage(page2);
      if (others === 0 && this.onNewCodePage !== null) this.onNewCodePage(page2);
    }
    this.mem.markCode(page2, 0, len - first);
    this.crossPa[h] = pa;
    this.crossK[h] = k;
    this.crossEpoch[h] = (this.epoch + this.mem.codeEpoch[0]) | 0;
    return k;
  }

  private translateFetch(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & this.fetchBit) !== 0) return (e & ~0xfff) | (lin & 0xfff);
    this.fillTlb(lin, false, this.cpl === 3, true);
    return this.walkFrame + (lin & 0xfff);
  }

}

/**
 * The i386 CPU: architectural state, lazy flags, memory access through segmentation and the TLB, the
 * decoded-instruction cache, exception delivery and the run loop. It knows nothing of lguest: it executes
 * until something needs the outside world and returns an ExitReason (emulator/exits.ts).
 *
 * Speed notes (the hot loop allocates nothing):
 * - Every 32-bit value is kept as a signed int32 (`| 0`): on this Node build such values are Smis, so
 *   storing them in fields and returning them never boxes. `>>> 0` appears only inside comparisons.
 * - Instructions are decoded once into a pool of typed arrays (struct of arrays) grouped in blocks that
 *   end at control transfers; a block is found by physical address through a per-page entry table.
 * - Memory accesses take a fast path (aligned or in-page, segment within its fast limit, TLB entry with
 *   the right permission bit) that inlines into handlers; everything else goes to a `...Slow` function.
 */
import {
  AC, AC_VEC, AF, CF, CR0_AM, CR0_PG, CS, DF, DF_VEC, ESP, GP, ID, IF, IOPL_MASK, NT, OF,
  PF, PF_VEC, RF, SF, SS, SS_VEC, TF, VM, ZF, PAGE_SIZE,
} from './constants.ts';
import { ExitReason, FAULT } from './exits.ts';
import { LF_ADC1, LF_ADD, LF_LOGIC, LF_SBB1, LF_SUB, PARITY } from './flags.ts';
import {
  LockKind, TLB_GLOBAL, TLB_R_SUP, TLB_R_USR, TLB_W_SUP, TLB_W_USR,
} from './access.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { walkPageTables } from '../mmu/paging.ts';
import { HANDLERS, interpretBlock } from './ops/index.ts';
import { decodeInstruction, DECODE_INCOMPLETE } from './decoder.ts';
import { TERMINATES_BLOCK } from './optable.ts';
import { deliverInterrupt } from './interrupts.ts';
import { dataAccess, debugTrap, hostRunLength, instructionBreakpoint, type HostDebug } from './debug.ts';
import { compileBlock, type BlockFn } from './jit.ts';

export { FAULT, LF_ADC1, LF_ADD, LF_LOGIC, LF_SBB1, LF_SUB, PARITY };
export * from './access.ts';

const TLB_LIST_MAX = 16384;
const MAX_BLOCK = 48;
const CODE_SLOTS = 2048;
const POOL_SIZE = 1 << 18;
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

/** What `cpu-test` wants: stop at an exception instead of delivering it. */
export const enum ExceptionMode { Deliver = 0, Stop = 1 }

/** The I/O port bus the CPU's IN/OUT instructions use, after the CPU's own permission checks. */
export interface IoBus {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}

const NO_IO: IoBus = {
  in: (_port, size) => (size === 4 ? -1 : (1 << (size * 8)) - 1),
  out: () => {},
};

export class CPU {
  // ---- general registers: index 8 always reads 0 (absent base/index in effective addresses) ----
  readonly r32 = new Int32Array(9);
  readonly r16 = new Uint16Array(this.r32.buffer);
  readonly r8 = new Uint8Array(this.r32.buffer);

  eip = 0;
  /** EIP of the instruction being executed (where a fault restarts it). */
  prevEip = 0;
  /** EFLAGS, except the arithmetic flags named in lfMask, which come from the lazy state. */
  flags = 2;
  lfOp = 0;
  lfA = 0;
  lfB = 0;
  lfRes = 0;
  lfMask = 0;
  cpl = 0;

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
  io: IoBus = NO_IO;

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
  /** Bumped when a translation, CS, the CPL or the code cache changes (with mem.codeEpoch: chain validity). */
  epoch = 0;
  /** The block that ran last (0: none). */
  lastBlock = 0;

  // ---- code cache: physical page -> slot; slot -> block index per byte offset ----
  readonly codePageSlot: Int32Array;
  readonly codeSlots: number;
  readonly slotPage: Int32Array;
  readonly slotGen: Int32Array;
  readonly slotEntries: Int32Array;
  nextSlot = 0;
  /** Decode with 32-bit default operand and address size (CS.D). */
  code32 = true;
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

  // ---- run state ----
  exitReason: ExitReason = ExitReason.None;
  /** Set by a handler to end the current block after this instruction. */
  stop = 0;
  budget = 0;
  /** Instructions retired since reset. */
  retired = 0;
  halted = false;
  exceptionMode = ExceptionMode.Deliver;
  exceptionVector = -1;
  exceptionError = -1;
  exceptionEip = 0;
  exitMessage = '';
  /** Vector being delivered (-1 when none), for the double- and triple-fault rules. */
  delivering = -1;
  /** A debug trap (#DB) is due after the current instruction (TF was set when it started). */
  tfTrap = false;
  /** Enabled DR0-DR3 instruction breakpoints and data breakpoints (bit n = DRn), set by MOV DR7
   *  (emulator/debug.ts); while any is enabled, debugActive makes the run loop step one instruction at a
   *  time. dbgHits collects data-breakpoint matches of the current instruction. */
  execBp = 0;
  dataBp = 0;
  debugActive = false;
  dbgHits = 0;
  /** The debugger's breakpoints and watchpoints (emulator/debug.ts HostDebug; null: no debugger). */
  hostDebug: HostDebug | null = null;
  /** External doorbell: a nonzero word makes the run loop return ExitReason.Doorbell. */
  doorbell: Int32Array = new Int32Array(1);
  /** Pending maskable interrupt vector from the outside (-1: none). */
  pendingIrq = -1;
  /** Interrupts are inhibited for one instruction (after STI, MOV SS, POP SS). */
  inhibitIrq = false;

  constructor(mem: PhysicalMemory, vcpuId = 0, opts: { codeSlots?: number } = {}) {
    this.mem = mem;
    this.codeSlots = opts.codeSlots ?? CODE_SLOTS;
    this.slotPage = new Int32Array(this.codeSlots).fill(-1);
    this.slotGen = new Int32Array(this.codeSlots);
    this.slotEntries = new Int32Array(this.codeSlots * PAGE_SIZE);
    this.m8 = mem.u8;
    this.m32 = mem.i32;
    this.m64 = mem.i64;
    this.dv = mem.dv;
    this.memSize = mem.size;
    this.codePageSlot = new Int32Array(mem.pages);
    this.codeBit = 1 << (vcpuId & 7);
    this.resetFlat(0);
  }

  // =====================================================================================================
  // Reset helpers
  // =====================================================================================================

  /** Flat 32-bit protected mode at the given CPL: every segment base 0, limit 4 GiB, paging off. The
   *  selectors are those a real GDT would need; callers that build a GDT set them to match. */
  resetFlat(cpl: number): void {
    this.cr0 = 0x11; // PE | ET
    this.cpl = cpl;
    for (let s = 0; s < 6; s++) {
      const code = s === CS;
      // type: code = execute/read accessed (0xB), data = read/write accessed (0x3); S=1, P=1, D/B=1, G=1
      const attr = (code ? 0xb : 0x3) | 0x10 | (cpl << 5) | 0x80 | 0x4000 | 0x8000;
      this.setSegCache(s, (code ? 0x08 : 0x10) | cpl, 0, 0xffffffff, attr);
    }
    this.flags = 2;
    this.lfMask = 0;
    this.updateAccessBits();
  }

  // =====================================================================================================
  // Flags
  // =====================================================================================================

  getCF(): boolean {
    if ((this.lfMask & CF) === 0) return (this.flags & CF) !== 0;
    switch (this.lfOp) {
      case LF_ADD: return (this.lfRes >>> 0) < (this.lfA >>> 0);
      case LF_SUB: return (this.lfA >>> 0) < (this.lfB >>> 0);
      case LF_ADC1: return (this.lfRes >>> 0) <= (this.lfA >>> 0);
      case LF_SBB1: return (this.lfA >>> 0) <= (this.lfB >>> 0);
      default: return false;
    }
  }

  getOF(): boolean {
    if ((this.lfMask & OF) === 0) return (this.flags & OF) !== 0;
    switch (this.lfOp) {
      case LF_ADD: case LF_ADC1: return ((this.lfA ^ this.lfRes) & (this.lfB ^ this.lfRes)) < 0;
      case LF_SUB: case LF_SBB1: return ((this.lfA ^ this.lfB) & (this.lfA ^ this.lfRes)) < 0;
      default: return false;
    }
  }

  getAF(): boolean {
    if ((this.lfMask & AF) === 0) return (this.flags & AF) !== 0;
    if (this.lfOp === LF_LOGIC) return false;
    return ((this.lfA ^ this.lfB ^ this.lfRes) & 0x10) !== 0;
  }

  getZF(): boolean {
    return (this.lfMask & ZF) !== 0 ? this.lfRes === 0 : (this.flags & ZF) !== 0;
  }

  getSF(): boolean {
    return (this.lfMask & SF) !== 0 ? this.lfRes < 0 : (this.flags & SF) !== 0;
  }

  getPF(): boolean {
    return (this.lfMask & PF) !== 0 ? PARITY[this.lfRes & 0xff] !== 0 : (this.flags & PF) !== 0;
  }

  /** Evaluate condition code cc (the low nibble of Jcc/SETcc/CMOVcc). */
  cond(cc: number): boolean {
    switch (cc) {
      case 0x0: return this.getOF();
      case 0x1: return !this.getOF();
      case 0x2: return this.getCF();
      case 0x3: return !this.getCF();
      case 0x4: return this.getZF();
      case 0x5: return !this.getZF();
      case 0x6: return this.getCF() || this.getZF();
      case 0x7: return !(this.getCF() || this.getZF());
      case 0x8: return this.getSF();
      case 0x9: return !this.getSF();
      case 0xa: return this.getPF();
      case 0xb: return !this.getPF();
      case 0xc: return this.lessThan();
      case 0xd: return !this.lessThan();
      case 0xe: return this.getZF() || this.lessThan();
      default: return !(this.getZF() || this.lessThan());
    }
  }

  /** SF != OF, with a shortcut for the common CMP/SUB case (signed a < b). */
  lessThan(): boolean {
    if (this.lfMask === 0x8d5 && (this.lfOp === LF_SUB)) return this.lfA < this.lfB;
    return this.getSF() !== this.getOF();
  }

  /** The full EFLAGS value. */
  getEflags(): number {
    const m = this.lfMask;
    if (m === 0) return this.flags;
    let f = this.flags & ~m;
    if (m & CF && this.getCF()) f |= CF;
    if (m & PF && this.getPF()) f |= PF;
    if (m & AF && this.getAF()) f |= AF;
    if (m & ZF && this.getZF()) f |= ZF;
    if (m & SF && this.getSF()) f |= SF;
    if (m & OF && this.getOF()) f |= OF;
    return f;
  }

  /** Replace EFLAGS wholesale (bits the caller may not change must already be merged in). */
  setEflags(v: number): void {
    const oldAc = this.flags & AC;
    this.flags = (v & 0x3f7fd5) | 2;
    this.lfMask = 0;
    if ((this.flags & AC) !== oldAc) this.updateAccessBits();
    if (this.flags & TF) this.tfPending();
  }

  /** Fold the lazy arithmetic flags into `flags` (before an instruction that keeps some of them). */
  materializeFlags(): void {
    if (this.lfMask !== 0) {
      this.flags = this.getEflags();
      this.lfMask = 0;
    }
  }

  /** Set the six arithmetic flags from explicit values (for instructions with eager flag logic). */
  setArith(f: number): void {
    this.flags = (this.flags & ~0x8d5) | (f & 0x8d5);
    this.lfMask = 0;
  }

  /** Flags of an add of sign-extended operands a + b = res (res also sign-extended to the size). */
  lfAdd(a: number, b: number, res: number): void {
    this.lfOp = LF_ADD; this.lfA = a; this.lfB = b; this.lfRes = res; this.lfMask = 0x8d5;
  }

  lfSub(a: number, b: number, res: number): void {
    this.lfOp = LF_SUB; this.lfA = a; this.lfB = b; this.lfRes = res; this.lfMask = 0x8d5;
  }

  lfLogic(res: number): void {
    this.lfOp = LF_LOGIC; this.lfRes = res; this.lfMask = 0x8d5;
  }

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
    if (this.dataBp !== 0) dataAccess(this, lin, size, false);
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
    if (this.dataBp !== 0) dataAccess(this, lin, size, true);
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
    if (this.dataBp !== 0) dataAccess(this, lin, size, true);
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
    return pa >= 0 && pa < this.memSize ? this.m8[pa] : 0xff;
  }

  physWrite8(pa: number, v: number): void {
    if (pa < 0 || pa >= this.memSize) return;
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
      const code = walkPageTables(this, lin, write, user, true);
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
    const code = walkPageTables(this, lin, write, user, false);
    return code >= 0 ? -1 : this.walkFrame + (lin & 0xfff);
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

  private fetchOutsideRam(lin: number): number {
    this.exitReason = ExitReason.Unsupported;
    this.exitMessage = `instruction fetch from 0x${(lin >>> 0).toString(16)} outside RAM`;
    this.prevEip = this.eip;
    throw FAULT;
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

  // =====================================================================================================
  // Exceptions
  // =====================================================================================================

  /** Raise a fault: restart point is the current instruction. Never returns. */
  raise(vector: number, error: number): never {
    this.eip = this.prevEip;
    this.exception(vector, error, this.prevEip);
    throw FAULT;
  }

  /** Raise #PF for a linear address with an error code (P/W/U bits). */
  pageFault(lin: number, code: number): never {
    this.cr2 = lin;
    return this.raise(PF_VEC, code);
  }

  /** Deliver (or, in Stop mode, record) an exception whose saved EIP is `eip`. */
  exception(vector: number, error: number, eip: number): void {
    if (this.exceptionMode === ExceptionMode.Stop) {
      this.exceptionVector = vector;
      this.exceptionError = error;
      this.exceptionEip = eip;
      this.exitReason = ExitReason.Exception;
      this.stop = 1;
      return;
    }
    const prev = this.delivering;
    if (prev === DF_VEC) {
      this.delivering = -1;
      this.exitReason = ExitReason.TripleFault;
      this.exitMessage = `triple fault: vector ${vector} while delivering a double fault`;
      this.stop = 1;
      return;
    }
    if (prev >= 0 && isDoubleFault(prev, vector)) {
      vector = DF_VEC;
      error = 0;
    }
    this.delivering = vector;
    deliverInterrupt(this, vector, error, eip, false, true);
    this.delivering = -1;
  }

  /** A software interrupt (INT n, INT3, INTO): the saved EIP is the next instruction. */
  softwareInterrupt(vector: number): void {
    deliverInterrupt(this, vector, -1, this.eip, true, false);
    this.stop = 1;
  }

  /** Called when TF becomes set: single-step from the next instruction on. */
  tfPending(): void {
    this.stop = 1;
  }


  // =====================================================================================================
  // The run loop
  // =====================================================================================================

  /** Run up to `budget` instructions. Returns why it stopped. */
  run(budget: number): ExitReason {
    this.exitReason = ExitReason.None;
    this.budget = budget;
    while (this.exitReason === ExitReason.None) {
      if (this.doorbell[0] !== 0) {
        this.exitReason = ExitReason.Doorbell;
        break;
      }
      if (this.pendingIrq >= 0 && (this.flags & IF) !== 0 && !this.inhibitIrq) this.deliverExternal();
      this.inhibitIrq = false;
      const tf = (this.flags & TF) !== 0;
      const stepping = tf || this.debugActive || this.singleStep;
      let start = 0;
      this.stop = 0;
      try {
        if (!stepping) {
          // The common case: a burst of blocks with none of the per-instruction checks. Whatever could
          // change that (STI, POPF, IRET, MOV SS, MOV DR7, device exits, a write into running code)
          // sets `stop`, which ends the burst; the doorbell is polled every 256 blocks.
          for (let blocks = 0; ; blocks++) {
            this.jitIdx = 0;
            start = this.nextBlock();
            let fn: BlockFn | undefined;
            if (start !== 0 && this.jitThreshold !== 0) {
              fn = this.blkFn[start];
              if (fn === undefined && ++this.blkHits[start] >= this.jitThreshold) fn = this.blkFn[start] = compileBlock(this, start, this.blkLen[start]);
            }
            const n = fn !== undefined ? fn(this) : this.interpret(start, this.blkLen[start]);
            this.retired += n;
            if ((this.budget -= n) <= 0 || this.stop !== 0) break;
            if ((blocks & 255) === 255 && this.doorbell[0] !== 0) break;
          }
          if (this.budget <= 0 && this.exitReason === ExitReason.None) this.exitReason = ExitReason.Budget;
          continue;
        }
        if (this.debugActive && instructionBreakpoint(this)) {
          this.budget--;
          if (this.budget <= 0 && this.exitReason === ExitReason.None) this.exitReason = ExitReason.Budget;
          continue;
        }
        this.jitIdx = 0;
        start = this.nextBlock();
        const fn = this.jitSteps && this.singleStep && start !== 0 ? compileBlock(this, start, 1) : undefined;
        // (one instruction, or with only debugger breakpoints set a run up to the next one)
        const n = fn !== undefined ? fn(this) : this.interpret(start, this.hostDebug === null ? 1 : hostRunLength(this, start, tf));
        this.retired += n;
        this.budget -= n;
        if ((tf || this.debugActive) && n > 0 && this.exitReason === ExitReason.None) {
          try { debugTrap(this, tf); } catch (e) { if (e !== FAULT) throw e; }
        }
      } catch (e) {
        if (e !== FAULT) throw e;
        this.lastBlock = 0;
        this.dbgHits = 0; // a faulting instruction does not single-step or report data breakpoints
        const n = this.jitIdx;
        this.retired += n;
        this.budget -= n;
        if (this.singleStep && this.exitReason === ExitReason.None) this.exitReason = ExitReason.Step;
      }
      if (this.budget <= 0 && this.exitReason === ExitReason.None) this.exitReason = ExitReason.Budget;
    }
    return this.exitReason;
  }

  /** The block at EIP: a successor remembered by the previous block when its epoch still holds, else a
   *  full lookup (which may fault: instruction fetch). */
  private nextBlock(): number {
    const prev = this.lastBlock;
    const eip = this.eip;
    let k: number;
    if (prev !== 0) {
      const ep = (this.epoch + this.mem.codeEpoch[0]) | 0;
      const ch = prev << 1;
      if (this.chainEip[ch] === eip && this.chainEpoch[ch] === ep) {
        k = this.chainK[ch];
        this.curCodePage = this.chainPage[ch];
      } else if (this.chainEip[ch + 1] === eip && this.chainEpoch[ch + 1] === ep) {
        k = this.chainK[ch + 1];
        this.curCodePage = this.chainPage[ch + 1];
      } else {
        k = this.lookupBlock();
        if (k !== 0 && ep === ((this.epoch + this.mem.codeEpoch[0]) | 0)) {
          // remember this successor: in the free way if there is one, else in the first
          const w = this.chainEpoch[ch] === ep && this.chainEpoch[ch + 1] !== ep ? ch + 1 : ch;
          this.chainEip[w] = eip;
          this.chainK[w] = k;
          this.chainPage[w] = this.curCodePage;
          this.chainEpoch[w] = ep;
        }
      }
    } else {
      k = this.lookupBlock();
    }
    this.lastBlock = k;
    return k;
  }


  /**
   * Interpret `count` instructions of the block at pool row k0 (fewer if one sets `stop`). Returns how
   * many completed; `jitIdx` always holds the number completed before the current one, so a fault
   * counts exactly what retired.
   */
  interpret(k0: number, count: number): number {
    if (this.referenceDispatch) return this.interpretByHandlers(k0, count);
    return interpretBlock(this, k0, count);
  }

  /** Testing aid: interpret every op through its handler, the hot ones included (the vectors and the
   *  differential fuzzer check that it agrees with the inline cases and the compiled code). */
  referenceDispatch = false;

  private interpretByHandlers(k0: number, count: number): number {
    const end = k0 + count;
    for (let k = k0; k < end; k++) {
      this.jitIdx = k - k0;
      const e0 = this.eip;
      this.prevEip = e0;
      this.eip = (e0 + this.iLen[k]) | 0;
      HANDLERS[this.iOp[k]](this, k);
      if (this.stop !== 0) return k - k0 + 1;
    }
    return count;
  }

  /** Execute exactly one instruction (stopping at exceptions when in Stop mode). It takes the same path
   *  through the run loop as everything else, so tests that step exercise what runs. */
  step(): ExitReason {
    this.singleStep = true;
    try {
      const r = this.run(1);
      return r === ExitReason.Budget ? ExitReason.Step : r;
    } finally {
      this.singleStep = false;
    }
  }

  /** Run one instruction per run-loop iteration (step()). */
  singleStep = false;

  jumpNear(target: number): void {
    if ((target >>> 0) > this.segLimit[CS]) this.raise(GP, 0);
    this.eip = target;
  }

  private deliverExternal(): void {
    const v = this.pendingIrq;
    this.pendingIrq = -1;
    this.halted = false;
    try {
      this.prevEip = this.eip;
      deliverInterrupt(this, v, -1, this.eip, false, true);
    } catch (e) {
      if (e !== FAULT) throw e;
    }
  }

  /** Set CPL and everything that depends on it. */
  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.epoch++;
    this.updateAccessBits();
  }

  /** Report the state of the general registers, for dumps. */
  regsSnapshot(): Record<string, number> {
    const names = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
    const out: Record<string, number> = {};
    for (let i = 0; i < 8; i++) out[names[i]] = this.r32[i] >>> 0;
    out.eip = this.eip >>> 0;
    out.eflags = this.getEflags() >>> 0;
    return out;
  }

  /** Bits of EFLAGS that POPF / IRET may change at the current CPL and IOPL (size 4 or 2). */
  popfMask(size: number): number {
    let mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT | AC | ID;
    if (this.cpl === 0) mask |= IOPL_MASK;
    if (this.cpl <= ((this.flags & IOPL_MASK) >>> 12)) mask |= IF;
    if (size === 2) mask &= 0xffff;
    return mask & ~(RF | VM);
  }
}

/** Is the pair (first exception being delivered, second raised meanwhile) a double fault? (SDM 6.15) */
function isDoubleFault(first: number, second: number): boolean {
  const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
  if (contributory(first)) return contributory(second);
  if (first === PF_VEC) return contributory(second) || second === PF_VEC;
  return false;
}


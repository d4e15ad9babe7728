/**
 * The i386 CPU: architectural state, lazy flags, memory access through segmentation and the TLB, the
 * decoded-instruction cache, exception delivery and the run loop. One class in four layers, one file
 * each: flags.ts (registers, lazy flags) < memory.ts (segments, TLB, paging, data accesses) <
 * code-cache.ts (decoded blocks, compiled blocks, self-modifying code) < this file (system state,
 * exceptions, the run loop). It knows nothing of lguest: it executes
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
import { CS, DF_VEC, GP, ID, IF, IOPL_MASK, NT, OF, PF, RF, SF, TF, VM, ZF, AC, AF, CF, DF, PF_VEC } from './constants.ts';
import { ExitReason, FAULT } from './exits.ts';
import { LF_ADC1, LF_ADD, LF_LOGIC, LF_SBB1, LF_SUB, PARITY } from './flags.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { HANDLERS, interpretBlock } from './ops/index.ts';
import { deliverInterrupt } from './interrupts.ts';
import { debugTrap, hostRunLength, instructionBreakpoint, type HostDebug } from './debug.ts';
import { compileBlock, type BlockFn } from './jit.ts';
import { CodeCache } from './code-cache.ts';
import { FPU } from './fpu/fpu.ts';

export { FAULT, LF_ADC1, LF_ADD, LF_LOGIC, LF_SBB1, LF_SUB, PARITY };
export * from './access.ts';

const CODE_SLOTS = 2048;

/** What `cpu-test` wants: stop at an exception instead of delivering it. */
export const enum ExceptionMode { Deliver = 0, Stop = 1 }

/** The I/O port bus the CPU's IN/OUT instructions use, after the CPU's own permission checks. */
export interface IoBus {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}

export type { MmioBus } from './memory.ts';

/** Model-specific registers besides the TSC (bare mode's IA32_APIC_BASE): false raises #GP(0). */
export interface MsrBus {
  rdmsr(n: number, r32: Int32Array): boolean; // sets r32[EAX] and r32[EDX]
  wrmsr(n: number, lo: number, hi: number): boolean;
}

const NO_IO: IoBus = {
  in: (_port, size) => (size === 4 ? -1 : (1 << (size * 8)) - 1),
  out: () => {},
};

export class CPU extends CodeCache {
  // ---- run state ----
  exitReason: ExitReason = ExitReason.None;
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
  debugActive = false;
  dbgHits = 0;
  /** The debugger's breakpoints and watchpoints (emulator/debug.ts HostDebug; null: no debugger). */
  hostDebug: HostDebug | null = null;
  /** External doorbell: a nonzero word makes the run loop return ExitReason.Doorbell. */
  doorbell: Int32Array = new Int32Array(1);
  /** Pending maskable interrupt vector from the outside (-1: none). With `intrAck` set it is the INTR
   *  line instead (>= 0: asserted) and the vector comes from intrAck() when the CPU takes it. */
  pendingIrq = -1;
  /** Interrupts are inhibited for one instruction (after STI, MOV SS, POP SS). */
  inhibitIrq = false;

  io: IoBus = NO_IO;
  /** The interrupt controller's acknowledge cycle (bare mode's PIC/APIC): returns the vector to deliver. */
  intrAck: (() => number) | null = null;
  /** Extra MSRs (null: none). */
  msrs: MsrBus | null = null;
  /** CPUID.1:EDX.APIC (bit 9): a local APIC is present. */
  apicPresent = false;
  /** The x87 FPU (emulator/fpu/, instructions in ops/x87.ts); last of the fields, so the hot ones keep
   *  their places in the object. */
  readonly fpu = new FPU();

  constructor(mem: PhysicalMemory, vcpuId = 0, opts: { codeSlots?: number } = {}) {
    super(mem, vcpuId, opts.codeSlots ?? CODE_SLOTS);
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
      // (an interrupt held back by the STI / MOV SS shadow: run the one instruction alone, then take it)
      const shadow = this.inhibitIrq && this.pendingIrq >= 0;
      if (this.pendingIrq >= 0 && (this.flags & IF) !== 0 && !this.inhibitIrq) this.deliverExternal();
      this.inhibitIrq = false;
      const tf = (this.flags & TF) !== 0;
      const stepping = tf || this.debugActive || this.singleStep || shadow;
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
    let v = this.pendingIrq;
    this.pendingIrq = -1;
    if (this.intrAck !== null) v = this.intrAck(); // (it may raise the line again for the next one)
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
  fetchOutsideRam(lin: number): number {
    this.exitReason = ExitReason.Unsupported;
    this.exitMessage = `instruction fetch from 0x${(lin >>> 0).toString(16)} outside RAM`;
    this.prevEip = this.eip;
    throw FAULT;
  }

}

/** Is the pair (first exception being delivered, second raised meanwhile) a double fault? (SDM 6.15) */
function isDoubleFault(first: number, second: number): boolean {
  const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
  if (contributory(first)) return contributory(second);
  if (first === PF_VEC) return contributory(second) || second === PF_VEC;
  return false;
}


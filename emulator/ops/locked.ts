/**
 * Locked instructions: a read-modify-write with a LOCK prefix (ADD ADC SBB SUB AND OR XOR NOT NEG INC DEC
 * BTS BTR BTC XADD CMPXCHG CMPXCHG8B on memory) and XCHG with a memory operand, which is locked without
 * one. Several vCPUs in several worker threads share the machine's memory; x86 makes these atomic with
 * respect to every other access of every other CPU, plain stores included (emulator/README.md).
 *
 * The decoder gives such an instruction the op LOCKED and keeps its real op in iLockOp. LOCKED runs the
 * real handler in lock mode: every rmwRead* takes the slow path (writeBit is 0 meanwhile, which the fast
 * paths test), which reads the aligned word holding the operand with one atomic load, and rmwWrite*
 * stores the result with a compare-exchange against that word (cpu.ts, lockedRead/lockedWrite). When
 * another vCPU changed the word in between, the exchange fails: LOCKED puts back the registers and flags
 * as they were before the instruction and runs it again, now on the new value. Nothing here is on a hot
 * path: LOCKED is not a hot op, so the interpreter and the block compiler call it as a handler. A CPU
 * alone on its memory (cpu.sharedMemory false: bare mode, a uniprocessor guest) runs the real handler
 * directly, since no other thread can come between its read and its write.
 */
import type { CPU } from '../cpu.ts';
import { LockKind } from '../access.ts';
import { HANDLERS, defineOp } from './registry.ts';

/** The general registers before the instruction (one locked instruction runs at a time per thread). */
const savedRegs = new Int32Array(8);

export const LOCKED = defineOp('LOCKED', (c: CPU, k: number) => {
  const real = HANDLERS[c.iLockOp[k]];
  // With no other CPU on this memory, nobody can see the read and the write apart.
  if (!c.sharedMemory) { real(c, k); return; }
  const r32 = c.r32;
  for (let i = 0; i < 8; i++) savedRegs[i] = r32[i];
  const flags = c.flags, lfOp = c.lfOp, lfA = c.lfA, lfB = c.lfB, lfRes = c.lfRes, lfMask = c.lfMask;
  const writeBit = c.writeBit;
  c.lockWriteBit = writeBit;
  c.writeBit = 0;
  c.lockMode = 1;
  try {
    for (;;) {
      c.lockKind = LockKind.None;
      c.lockFailed = 0;
      real(c, k);
      if (c.lockFailed === 0) break;
      // another vCPU wrote the operand's word between the read and the write: start again
      c.lockRetries++;
      for (let i = 0; i < 8; i++) r32[i] = savedRegs[i];
      c.flags = flags; c.lfOp = lfOp; c.lfA = lfA; c.lfB = lfB; c.lfRes = lfRes; c.lfMask = lfMask;
    }
  } catch (e) {
    // a fault, whose delivery may have changed the CPL: recompute the access bits rather than restore
    c.lockMode = 0;
    c.lockKind = LockKind.None;
    c.updateAccessBits();
    throw e;
  }
  c.lockMode = 0;
  c.lockKind = LockKind.None;
  c.writeBit = writeBit;
});

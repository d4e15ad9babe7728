/**
 * Constants of the CPU's memory access paths (cpu.ts): the permission bits of a TLB entry, where the
 * kind of word a locked read-modify-write read, so how it is written. Imports nothing.
 */

// TLB entry permission bits (low 12 bits of an entry; the high 20 bits are the physical frame).
export const TLB_R_SUP = 1;
export const TLB_R_USR = 2;
export const TLB_W_SUP = 4;
export const TLB_W_USR = 8;
export const TLB_GLOBAL = 16;
/** Writable by the page tables, but the page holds decoded code: writes take the slow path, which checks
 *  whether they hit instructions (the W bits shifted left by 3). */
export const TLB_WC_SUP = 32;
export const TLB_WC_USR = 64;

/** What the read of a locked read-modify-write read (cpu.lockKind), so how its write is done. */
export const enum LockKind {
  /** Not a locked access (or beyond RAM, where the bus decides). */
  None = 0,
  /** The aligned dword holding the operand, with one atomic load. */
  Dword = 1,
  /** The aligned qword holding the operand (it crosses a dword boundary inside one, or is CMPXCHG8B's). */
  Qword = 2,
  /** The bytes of an operand that straddles two qwords or two pages: written under the split lock. */
  Split = 3,
}

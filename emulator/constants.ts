/** Architectural constants of the i386: EFLAGS bits, segment register numbers, control-register bits and
 *  exception vectors. Everything here is straight from the Intel SDM, volume 3. */

// EFLAGS
export const CF = 1 << 0;
export const FLAG_RESERVED1 = 1 << 1; // always reads as 1
export const PF = 1 << 2;
export const AF = 1 << 4;
export const ZF = 1 << 6;
export const SF = 1 << 7;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DF = 1 << 10;
export const OF = 1 << 11;
export const IOPL_MASK = 3 << 12;
export const IOPL_SHIFT = 12;
export const NT = 1 << 14;
export const RF = 1 << 16;
export const VM = 1 << 17;
export const AC = 1 << 18;
export const VIF = 1 << 19;
export const VIP = 1 << 20;
export const ID = 1 << 21;
/** The six arithmetic flags that instructions compute. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

// Segment registers, in the order of the ModRM `sreg` field.
export const ES = 0;
export const CS = 1;
export const SS = 2;
export const DS = 3;
export const FS = 4;
export const GS = 5;
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

// General registers, in encoding order. Index 8 is a register that always reads 0 (used for an absent
// base or index in effective-address computation).
export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7, ZERO_REG = 8;
export const REG32_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];

// CR0
export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;

// CR4
export const CR4_VME = 1 << 0;
export const CR4_PVI = 1 << 1;
export const CR4_TSD = 1 << 2;
export const CR4_DE = 1 << 3;
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_MCE = 1 << 6;
export const CR4_PGE = 1 << 7;

// Exception vectors
export const DE = 0; // divide error
export const DB = 1; // debug
export const NMI = 2;
export const BP = 3; // breakpoint
export const OF_VEC = 4; // overflow (into)
export const BR = 5; // bound range
export const UD = 6; // invalid opcode
export const NM = 7; // device not available
export const DF_VEC = 8; // double fault
export const TS_VEC = 10; // invalid TSS
export const NP = 11; // segment not present
export const SS_VEC = 12; // stack-segment fault
export const GP = 13; // general protection
export const PF_VEC = 14; // page fault
export const MF = 16;
export const AC_VEC = 17; // alignment check

/** Vectors whose delivery pushes an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

// Page-fault error code bits
export const PFEC_P = 1;
export const PFEC_W = 2;
export const PFEC_U = 4;
export const PFEC_RSVD = 8;
export const PFEC_I = 16;

// Page-table entry bits
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7;
export const PTE_G = 1 << 8;

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/**
 * The instruction decoder: turns i386 machine code into a decoded instruction, a row of the CPU's
 * struct-of-arrays pool (emulator/cpu.ts): the handler's op id, the length, the register operands (as
 * indexes into r8/r16/r32 for the operand size), the memory operand (base, index, scale, displacement,
 * segment) and immediates. Handlers never look at instruction bytes again, which is also what a block
 * compiler backend would consume.
 *
 * Register operand indexes: 32-bit operands index r32 by register number; 16-bit operands index r16 by
 * 2*number; 8-bit operands index r8 by the byte offset (AL=0 CL=4 DL=8 BL=12 AH=1 CH=5 DH=9 BH=13).
 * System instructions that pick their own size (0F 00, 0F 01, LAR, LSL, ARPL) get raw register numbers.
 *
 * Invalid encodings decode to the INVALID op (#UD when executed), instructions longer than 15 bytes or
 * running past the CS limit to GP0; the decoder itself never raises anything.
 */
import * as alu from './ops/alu.ts';
import * as mov from './ops/mov.ts';
import * as bit from './ops/bit.ts';
import * as bcd from './ops/bcd.ts';
import * as ctl from './ops/control.ts';
import * as misc from './ops/misc.ts';
import { LOCKED } from './ops/locked.ts';
import * as x87 from './ops/x87.ts';
import * as stk from './ops/stack.ts';
import * as sys from './ops/system.ts';
import { SHIFT_OPS, SHLD_OPS } from './ops/shift.ts';
import { MULDIV_OPS, IMUL_GdEd_M, IMUL_GdEd_R, IMUL_GdEdI_M, IMUL_GdEdI_R, IMUL_GwEw_M, IMUL_GwEw_R, IMUL_GwEwI_M, IMUL_GwEwI_R } from './ops/muldiv.ts';
import { STRING_OPS } from './ops/string.ts';
import { ALWAYS_LOCKED, LOCKABLE, LOCK_PREFIX_OK } from './optable.ts';
import { CS, DS, ES, FS, GS, SS, ZERO_REG } from './constants.ts';

export const DECODE_INCOMPLETE = -1;

// iFlags bits
export const F_A16 = 1;
export const F_REP = 2;
export const F_REPNE = 4;
export const F_LOCK = 8;
export const F_O16 = 16;
export const F_SEGOVR = 32;
export const F_MEM = 64;

/** The decoded-instruction fields (the CPU's pool, or a scratch pool for probing). */
export interface DecodedPool {
  iOp: Uint16Array; iLen: Uint8Array; iReg: Uint8Array; iRm: Uint8Array; iBase: Uint8Array;
  iIdx: Uint8Array; iScale: Uint8Array; iSeg: Uint8Array; iFlags: Uint8Array; iSub: Uint8Array;
  iDisp: Int32Array; iImm: Int32Array; iImm2: Int32Array;
  /** The real op of an instruction decoded as LOCKED. */
  iLockOp: Uint16Array;
}

/** r8 byte offset of 8-bit register number r. */
const R8 = [0, 4, 8, 12, 1, 5, 9, 13];

// ---- decoder state for the instruction being decoded (module-level: nothing is allocated) ----
let B: Uint8Array = new Uint8Array(0);
let P = 0;
let END = 0;
let START = 0;
let MOD = 0;
let REG = 0;
let RM = 0;
let A16 = false;
let SEG = -1;

/** Ran out of bytes: either the instruction crosses the end of what is available (the caller fetches
 *  more), or it is already longer than 15 bytes (#GP). */
const SHORT = -2;

function have(n: number): boolean {
  return P + n <= END;
}

function u8(): number { return B[P++]; }
function s8(): number { return (B[P++] << 24) >> 24; }
function u16(): number { const v = B[P] | (B[P + 1] << 8); P += 2; return v; }
function s32(): number { const v = B[P] | (B[P + 1] << 8) | (B[P + 2] << 16) | (B[P + 3] << 24); P += 4; return v; }

/** Decode the ModRM byte (and SIB and displacement) at P. Returns false when bytes are missing. */
function modrm(d: DecodedPool, k: number): boolean {
  if (!have(1)) return false;
  const m = u8();
  MOD = m >> 6;
  REG = (m >> 3) & 7;
  RM = m & 7;
  if (MOD === 3) return true;
  let base = ZERO_REG, index = ZERO_REG, scale = 0, disp = 0, seg = DS;
  if (A16) {
    switch (RM) {
      case 0: base = 3; index = 6; break; // bx+si
      case 1: base = 3; index = 7; break; // bx+di
      case 2: base = 5; index = 6; seg = SS; break; // bp+si
      case 3: base = 5; index = 7; seg = SS; break; // bp+di
      case 4: base = 6; break; // si
      case 5: base = 7; break; // di
      case 6: if (MOD === 0) base = ZERO_REG; else { base = 5; seg = SS; } break; // disp16 / bp
      default: base = 3; break; // bx
    }
    if (MOD === 1) { if (!have(1)) return false; disp = s8(); }
    else if (MOD === 2 || (MOD === 0 && RM === 6)) { if (!have(2)) return false; disp = u16(); }
  } else {
    if (RM === 4) {
      if (!have(1)) return false;
      const sib = u8();
      scale = sib >> 6;
      const i = (sib >> 3) & 7;
      const b = sib & 7;
      index = i === 4 ? ZERO_REG : i;
      if (b === 5 && MOD === 0) {
        base = ZERO_REG;
        if (!have(4)) return false;
        disp = s32();
      } else {
        base = b;
        if (b === 4 || b === 5) seg = SS;
      }
    } else if (RM === 5 && MOD === 0) {
      if (!have(4)) return false;
      disp = s32();
    } else {
      base = RM;
      if (RM === 5) seg = SS;
    }
    if (MOD === 1) { if (!have(1)) return false; disp = s8(); }
    else if (MOD === 2) { if (!have(4)) return false; disp = s32(); }
  }
  d.iBase[k] = base;
  d.iIdx[k] = index;
  d.iScale[k] = scale;
  d.iDisp[k] = disp;
  d.iSeg[k] = SEG >= 0 ? SEG : seg;
  d.iFlags[k] |= F_MEM;
  return true;
}

/** Operand-size-appropriate index of register r. */
function rix(r: number, size: number): number {
  return size === 1 ? R8[r] : size === 2 ? r << 1 : r;
}

/**
 * Decode one instruction from `bytes` at `pos` into pool row k. `avail` bytes may be read (page end);
 * `limitLeft` bytes remain before the CS limit. Returns the length, or DECODE_INCOMPLETE when the
 * instruction needs bytes beyond `avail`.
 */
export function decodeInstruction(d: DecodedPool, k: number, bytes: Uint8Array, pos: number, avail: number, limitLeft: number, code32: boolean): number {
  B = bytes;
  P = pos;
  START = pos;
  END = pos + avail;
  d.iFlags[k] = 0;
  d.iSub[k] = 0;
  d.iImm[k] = 0;
  d.iImm2[k] = 0;
  d.iReg[k] = 0;
  d.iRm[k] = 0;
  d.iSeg[k] = DS;
  d.iBase[k] = ZERO_REG;
  d.iIdx[k] = ZERO_REG;
  d.iScale[k] = 0;
  d.iDisp[k] = 0;
  let op = decodeBody(d, k, code32);
  let len = P - START;
  if (op === SHORT) {
    if (len < 15 && END - START < 15) return DECODE_INCOMPLETE;
    op = misc.GP0;
    len = 15;
  }
  if (len > 15 || len > limitLeft) op = misc.GP0;
  else if (LOCKABLE[op] === ALWAYS_LOCKED || (LOCKABLE[op] === LOCK_PREFIX_OK && (d.iFlags[k] & F_LOCK) !== 0)) {
    // atomic with respect to the other vCPUs: the LOCKED op runs the real one (ops/locked.ts)
    d.iLockOp[k] = op;
    op = LOCKED;
  }
  d.iOp[k] = op;
  d.iLen[k] = len > 15 ? 15 : len;
  return len > 15 ? 15 : len;
}

function decodeBody(d: DecodedPool, k: number, code32: boolean): number {
  let o16 = !code32;
  A16 = !code32;
  SEG = -1;
  let lock = false;
  let b: number;
  // prefixes
  for (;;) {
    if (!have(1)) return SHORT;
    b = u8();
    switch (b) {
      case 0x66: o16 = code32; continue;
      case 0x67: A16 = code32; continue;
      case 0x26: SEG = ES; continue;
      case 0x2e: SEG = CS; continue;
      case 0x36: SEG = SS; continue;
      case 0x3e: SEG = DS; continue;
      case 0x64: SEG = FS; continue;
      case 0x65: SEG = GS; continue;
      case 0xf0: lock = true; continue;
      case 0xf2: d.iFlags[k] = (d.iFlags[k] & ~F_REP) | F_REPNE; continue;
      case 0xf3: d.iFlags[k] = (d.iFlags[k] & ~F_REPNE) | F_REP; continue;
    }
    break;
  }
  if (o16) d.iFlags[k] |= F_O16;
  if (A16) d.iFlags[k] |= F_A16;
  if (lock) d.iFlags[k] |= F_LOCK;
  if (SEG >= 0) { d.iFlags[k] |= F_SEGOVR; d.iSeg[k] = SEG; }
  const vs = o16 ? 2 : 4; // operand size in bytes
  if (b === 0x0f) {
    if (!have(1)) return SHORT;
    return decode0F(d, k, u8(), vs, lock);
  }
  // LOCK is valid only on the memory forms of a few instructions: checked per opcode below.
  const noLock = (id: number) => (lock ? misc.INVALID : id);

  if (b < 0x40 && (b & 7) < 6) {
    // ALU group: ADD OR ADC SBB AND SUB XOR CMP
    const sub = b >> 3;
    d.iSub[k] = sub;
    const form = b & 7;
    if (form === 4) { if (!have(1)) return SHORT; d.iImm[k] = u8(); d.iRm[k] = 0; return noLock(alu.ALU_EbIb_R); }
    if (form === 5) {
      if (!have(vs)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      d.iRm[k] = 0;
      return noLock(vs === 2 ? alu.ALU_EwIw_R : alu.ALU32[sub][4]);
    }
    if (!modrm(d, k)) return SHORT;
    const size = form & 1 ? vs : 1;
    const mem = MOD !== 3;
    d.iReg[k] = rix(REG, size);
    if (!mem) d.iRm[k] = rix(RM, size);
    const lockOk = mem && form < 2 && sub !== 7;
    if (lock && !lockOk) return misc.INVALID;
    if (form === 0) return mem ? alu.ALU_EbGb_M : alu.ALU_EbGb_R;
    if (form === 1) return size === 2 ? (mem ? alu.ALU_EwGw_M : alu.ALU_EwGw_R) : alu.ALU32[sub][mem ? 1 : 0];
    if (form === 2) return mem ? alu.ALU_GbEb_M : alu.ALU_GbEb_R;
    if (size === 2) return mem ? alu.ALU_GwEw_M : alu.ALU_GwEw_R;
    return alu.ALU32[sub][mem ? 3 : 2];
  }

  switch (b) {
    case 0x06: case 0x0e: case 0x16: case 0x1e:
      d.iSub[k] = b >> 3;
      return noLock(vs === 2 ? stk.PUSH_Sw : stk.PUSH_Sd);
    case 0x07: case 0x17: case 0x1f:
      d.iSub[k] = b >> 3;
      return noLock(vs === 2 ? stk.POP_Sw : stk.POP_Sd);
    case 0x27: return noLock(bcd.DAA);
    case 0x2f: return noLock(bcd.DAS);
    case 0x37: return noLock(bcd.AAA);
    case 0x3f: return noLock(bcd.AAS);
  }
  if (b >= 0x40 && b <= 0x4f) {
    d.iRm[k] = rix(b & 7, vs);
    if (b < 0x48) return noLock(vs === 2 ? alu.INC_Ew_R : alu.INC_Ed_R);
    return noLock(vs === 2 ? alu.DEC_Ew_R : alu.DEC_Ed_R);
  }
  if (b >= 0x50 && b <= 0x5f) {
    d.iRm[k] = rix(b & 7, vs);
    if (b < 0x58) return noLock(vs === 2 ? stk.PUSH_Rw : stk.PUSH_Rd);
    return noLock(vs === 2 ? stk.POP_Rw : stk.POP_Rd);
  }
  if (b >= 0x70 && b <= 0x7f) {
    if (!have(1)) return SHORT;
    d.iImm[k] = s8();
    d.iSub[k] = b & 0xf;
    if (vs === 2) return noLock(ctl.Jcc_Jw);
    if (b === 0x74) return noLock(ctl.JZ_Jd);
    if (b === 0x75) return noLock(ctl.JNZ_Jd);
    return noLock(ctl.Jcc_Jd);
  }
  if (b >= 0x91 && b <= 0x97) {
    d.iRm[k] = rix(b & 7, vs);
    d.iReg[k] = 0;
    return noLock(vs === 2 ? mov.XCHG_EwGw_R : mov.XCHG_EdGd_R);
  }
  if (b >= 0xb0 && b <= 0xb7) {
    if (!have(1)) return SHORT;
    d.iImm[k] = u8();
    d.iRm[k] = R8[b & 7];
    return noLock(mov.MOV_EbIb_R);
  }
  if (b >= 0xb8 && b <= 0xbf) {
    if (!have(vs)) return SHORT;
    d.iImm[k] = vs === 2 ? u16() : s32();
    d.iRm[k] = rix(b & 7, vs);
    return noLock(vs === 2 ? mov.MOV_EwIw_R : mov.MOV_EdId_R);
  }
  if (b >= 0xd8 && b <= 0xdf) {
    // x87 (ops/x87.ts): the opcode byte and ModRM go to the handler in iImm
    if (!modrm(d, k)) return SHORT;
    d.iImm[k] = (b << 8) | (MOD << 6) | (REG << 3) | RM;
    return noLock(x87.X87);
  }

  switch (b) {
    case 0x60: return noLock(vs === 2 ? stk.PUSHAW : stk.PUSHAD);
    case 0x61: return noLock(vs === 2 ? stk.POPAW : stk.POPAD);
    case 0x62: // BOUND Gv, Ma (register form is #UD)
      if (!modrm(d, k)) return SHORT;
      if (MOD === 3 || lock) return misc.INVALID;
      d.iReg[k] = rix(REG, vs);
      return vs === 2 ? ctl.BOUND_GwMa : ctl.BOUND_GdMa;
    case 0x63: // ARPL Ew, Gw
      if (!modrm(d, k)) return SHORT;
      d.iReg[k] = REG;
      d.iRm[k] = RM;
      return noLock(sys.ARPL);
    case 0x68:
      if (!have(vs)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      return noLock(vs === 2 ? stk.PUSH_Iw : stk.PUSH_Id);
    case 0x6a:
      if (!have(1)) return SHORT;
      d.iImm[k] = s8();
      return noLock(vs === 2 ? stk.PUSH_Iw : stk.PUSH_Id);
    case 0x69: case 0x6b: {
      if (!modrm(d, k)) return SHORT;
      const n = b === 0x6b ? 1 : vs;
      if (!have(n)) return SHORT;
      d.iImm[k] = n === 1 ? s8() : n === 2 ? (u16() << 16) >> 16 : s32();
      d.iReg[k] = rix(REG, vs);
      if (MOD === 3) d.iRm[k] = rix(RM, vs);
      if (vs === 2) return noLock(MOD === 3 ? IMUL_GwEwI_R : IMUL_GwEwI_M);
      return noLock(MOD === 3 ? IMUL_GdEdI_R : IMUL_GdEdI_M);
    }
    case 0x6c: case 0x6d: case 0x6e: case 0x6f:
      d.iSub[k] = b & 1 ? vs : 1;
      if (SEG < 0) d.iSeg[k] = DS;
      return noLock(b < 0x6e ? sys.INS : sys.OUTS);
    case 0x80: case 0x81: case 0x82: case 0x83: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      const n = b === 0x81 ? vs : 1;
      if (!have(n)) return SHORT;
      d.iImm[k] = n === 1 ? s8() : n === 2 ? u16() : s32();
      d.iSub[k] = REG;
      const mem = MOD !== 3;
      if (lock && (!mem || REG === 7)) return misc.INVALID;
      if (!mem) d.iRm[k] = rix(RM, size);
      if (size === 1) return mem ? alu.ALU_EbIb_M : alu.ALU_EbIb_R;
      if (size === 2) return mem ? alu.ALU_EwIw_M : alu.ALU_EwIw_R;
      return alu.ALU32[REG][mem ? 5 : 4];
    }
    case 0x84: case 0x85: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      d.iReg[k] = rix(REG, size);
      if (MOD === 3) d.iRm[k] = rix(RM, size);
      const mem = MOD !== 3;
      if (size === 1) return noLock(mem ? alu.TEST_EbGb_M : alu.TEST_EbGb_R);
      if (size === 2) return noLock(mem ? alu.TEST_EwGw_M : alu.TEST_EwGw_R);
      return noLock(mem ? alu.TEST_EdGd_M : alu.TEST_EdGd_R);
    }
    case 0x86: case 0x87: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      d.iReg[k] = rix(REG, size);
      const mem = MOD !== 3;
      if (!mem) d.iRm[k] = rix(RM, size);
      if (lock && !mem) return misc.INVALID;
      if (size === 1) return mem ? mov.XCHG_EbGb_M : mov.XCHG_EbGb_R;
      if (size === 2) return mem ? mov.XCHG_EwGw_M : mov.XCHG_EwGw_R;
      return mem ? mov.XCHG_EdGd_M : mov.XCHG_EdGd_R;
    }
    case 0x88: case 0x89: case 0x8a: case 0x8b: {
      if (!modrm(d, k)) return SHORT;
      if (lock) return misc.INVALID;
      const size = b & 1 ? vs : 1;
      const mem = MOD !== 3;
      if (b >= 0x8a) {
        // MOV G, E: register form is the same move as E, G with the roles swapped
        if (!mem) { d.iRm[k] = rix(REG, size); d.iReg[k] = rix(RM, size); }
        else d.iReg[k] = rix(REG, size);
        if (size === 1) return mem ? mov.MOV_GbEb_M : mov.MOV_EbGb_R;
        if (size === 2) return mem ? mov.MOV_GwEw_M : mov.MOV_EwGw_R;
        return mem ? mov.MOV_GdEd_M : mov.MOV_EdGd_R;
      }
      d.iReg[k] = rix(REG, size);
      if (!mem) d.iRm[k] = rix(RM, size);
      if (size === 1) return mem ? mov.MOV_EbGb_M : mov.MOV_EbGb_R;
      if (size === 2) return mem ? mov.MOV_EwGw_M : mov.MOV_EwGw_R;
      return mem ? mov.MOV_EdGd_M : mov.MOV_EdGd_R;
    }
    case 0x8c: // MOV Ev, Sreg
      if (!modrm(d, k)) return SHORT;
      if (REG > 5 || lock) return misc.INVALID;
      d.iSub[k] = REG;
      if (MOD !== 3) return mov.MOV_EwSw_M;
      d.iRm[k] = rix(RM, vs);
      return vs === 2 ? mov.MOV_EwSw_R : mov.MOV_EdSw_R;
    case 0x8d: // LEA
      if (!modrm(d, k)) return SHORT;
      if (MOD === 3 || lock) return misc.INVALID;
      d.iReg[k] = rix(REG, vs);
      return vs === 2 ? mov.LEA_Gw : mov.LEA_Gd;
    case 0x8e: // MOV Sreg, Ew
      if (!modrm(d, k)) return SHORT;
      if (REG > 5 || REG === CS || lock) return misc.INVALID;
      d.iSub[k] = REG;
      if (MOD !== 3) return mov.MOV_SwEw_M;
      d.iRm[k] = RM << 1;
      return mov.MOV_SwEw_R;
    case 0x8f: // POP Ev
      if (!modrm(d, k)) return SHORT;
      if (REG !== 0 || lock) return misc.INVALID;
      if (MOD === 3) { d.iRm[k] = rix(RM, vs); return vs === 2 ? stk.POP_Rw : stk.POP_Rd; }
      return vs === 2 ? stk.POP_Ew_M : stk.POP_Ed_M;
    case 0x90: return noLock(misc.NOP); // also PAUSE (F3 90)
    case 0x98: return noLock(vs === 2 ? mov.CBW : mov.CWDE);
    case 0x99: return noLock(vs === 2 ? mov.CWD : mov.CDQ);
    case 0x9a: case 0xea: // CALL/JMP ptr16:16/32
      if (!have(vs + 2)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      d.iImm2[k] = u16();
      return noLock(b === 0x9a ? ctl.CALLF_Ap : ctl.JMPF_Ap);
    case 0x9b: return noLock(x87.FWAIT);
    case 0x9c: return noLock(vs === 2 ? stk.PUSHFW : stk.PUSHFD);
    case 0x9d: return noLock(vs === 2 ? stk.POPFW : stk.POPFD);
    case 0x9e: return noLock(mov.SAHF);
    case 0x9f: return noLock(mov.LAHF);
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
      // MOV AL/eAX <-> moffs: the offset has the address size
      const na = A16 ? 2 : 4;
      if (!have(na)) return SHORT;
      d.iDisp[k] = na === 2 ? u16() : s32();
      d.iBase[k] = ZERO_REG;
      d.iIdx[k] = ZERO_REG;
      d.iFlags[k] |= F_MEM;
      d.iReg[k] = 0;
      const size = b & 1 ? vs : 1;
      if (lock) return misc.INVALID;
      if (b < 0xa2) return size === 1 ? mov.MOV_GbEb_M : size === 2 ? mov.MOV_GwEw_M : mov.MOV_GdEd_M;
      return size === 1 ? mov.MOV_EbGb_M : size === 2 ? mov.MOV_EwGw_M : mov.MOV_EdGd_M;
    }
    case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf: {
      const kind = b < 0xa6 ? 0 : b < 0xa8 ? 1 : b < 0xac ? 2 : b < 0xae ? 3 : 4;
      const size = b & 1 ? vs : 1;
      if (SEG < 0) d.iSeg[k] = DS;
      return noLock(STRING_OPS[kind][size >> 1]);
    }
    case 0xa8:
      if (!have(1)) return SHORT;
      d.iImm[k] = u8();
      d.iRm[k] = 0;
      return noLock(alu.TEST_EbIb_R);
    case 0xa9:
      if (!have(vs)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      d.iRm[k] = 0;
      return noLock(vs === 2 ? alu.TEST_EwIw_R : alu.TEST_EdId_R);
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      if (!modrm(d, k)) return SHORT;
      if (lock) return misc.INVALID;
      const size = b & 1 ? vs : 1;
      const form = b < 0xd0 ? 2 : b < 0xd2 ? 0 : 1;
      if (form === 2) { if (!have(1)) return SHORT; d.iImm[k] = u8(); }
      d.iSub[k] = REG;
      if (MOD === 3) d.iRm[k] = rix(RM, size);
      return SHIFT_OPS[size >> 1][form][MOD === 3 ? 0 : 1];
    }
    case 0xc2: case 0xca:
      if (!have(2)) return SHORT;
      d.iImm[k] = u16();
      if (b === 0xc2) return noLock(vs === 2 ? ctl.RETW_Iw : ctl.RETD_Iw);
      return noLock(vs === 2 ? ctl.RETFW_Iw : ctl.RETFD_Iw);
    case 0xc3: return noLock(vs === 2 ? ctl.RETW : ctl.RETD);
    case 0xcb: return noLock(vs === 2 ? ctl.RETFW : ctl.RETFD);
    case 0xc4: case 0xc5: // LES, LDS
      if (!modrm(d, k)) return SHORT;
      if (MOD === 3 || lock) return misc.INVALID;
      d.iReg[k] = rix(REG, vs);
      d.iSub[k] = b === 0xc4 ? ES : DS;
      return vs === 2 ? LXS_W : LXS_D;
    case 0xc6: case 0xc7: {
      if (!modrm(d, k)) return SHORT;
      if (REG !== 0 || lock) return misc.INVALID;
      const size = b & 1 ? vs : 1;
      if (!have(size)) return SHORT;
      d.iImm[k] = size === 1 ? u8() : size === 2 ? u16() : s32();
      if (MOD === 3) d.iRm[k] = rix(RM, size);
      if (size === 1) return MOD === 3 ? mov.MOV_EbIb_R : mov.MOV_EbIb_M;
      if (size === 2) return MOD === 3 ? mov.MOV_EwIw_R : mov.MOV_EwIw_M;
      return MOD === 3 ? mov.MOV_EdId_R : mov.MOV_EdId_M;
    }
    case 0xc8:
      if (!have(3)) return SHORT;
      d.iImm[k] = u16();
      d.iImm2[k] = u8();
      return noLock(vs === 2 ? stk.ENTERW : stk.ENTERD);
    case 0xc9: return noLock(vs === 2 ? stk.LEAVEW : stk.LEAVED);
    case 0xcc: return noLock(ctl.INT3);
    case 0xcd:
      if (!have(1)) return SHORT;
      d.iImm[k] = u8();
      return noLock(ctl.INT_Ib);
    case 0xce: return noLock(ctl.INTO);
    case 0xcf: return noLock(vs === 2 ? ctl.IRETW : ctl.IRETD);
    case 0xd4: case 0xd5:
      if (!have(1)) return SHORT;
      d.iImm[k] = u8();
      return noLock(b === 0xd4 ? bcd.AAM : bcd.AAD);
    case 0xd6: return noLock(mov.SALC);
    case 0xd7:
      if (SEG < 0) d.iSeg[k] = DS;
      return noLock(mov.XLAT);
    case 0xe0: case 0xe1: case 0xe2: case 0xe3:
      if (!have(1)) return SHORT;
      d.iImm[k] = s8();
      d.iSub[k] = b & 3;
      return noLock(vs === 2 ? ctl.LOOP_Jw : ctl.LOOP_Jd);
    case 0xe4: case 0xe5: case 0xe6: case 0xe7:
      if (!have(1)) return SHORT;
      d.iImm[k] = u8();
      d.iSub[k] = b & 1 ? vs : 1;
      return noLock(b < 0xe6 ? sys.IN_ : sys.OUT_);
    case 0xec: case 0xed: case 0xee: case 0xef:
      d.iImm[k] = -1;
      d.iSub[k] = b & 1 ? vs : 1;
      return noLock(b < 0xee ? sys.IN_ : sys.OUT_);
    case 0xe8:
      if (!have(vs)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      return noLock(vs === 2 ? ctl.CALL_Jw : ctl.CALL_Jd);
    case 0xe9:
      if (!have(vs)) return SHORT;
      d.iImm[k] = vs === 2 ? u16() : s32();
      return noLock(vs === 2 ? ctl.JMP_Jw : ctl.JMP_Jd);
    case 0xeb:
      if (!have(1)) return SHORT;
      d.iImm[k] = s8();
      return noLock(vs === 2 ? ctl.JMP_Jw : ctl.JMP_Jd);
    case 0xf1: return noLock(ctl.INT1);
    case 0xf4: return noLock(sys.HLT);
    case 0xf5: return noLock(misc.CMC);
    case 0xf6: case 0xf7: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      const mem = MOD !== 3;
      if (!mem) d.iRm[k] = rix(RM, size);
      const si = size >> 1;
      if (REG < 2) {
        if (!have(size)) return SHORT;
        d.iImm[k] = size === 1 ? u8() : size === 2 ? u16() : s32();
        if (lock) return misc.INVALID;
        if (size === 1) return mem ? alu.TEST_EbIb_M : alu.TEST_EbIb_R;
        if (size === 2) return mem ? alu.TEST_EwIw_M : alu.TEST_EwIw_R;
        return mem ? alu.TEST_EdId_M : alu.TEST_EdId_R;
      }
      if (lock && (!mem || REG > 3)) return misc.INVALID;
      if (REG === 2) return [[alu.NOT_Eb_R, alu.NOT_Eb_M], [alu.NOT_Ew_R, alu.NOT_Ew_M], [alu.NOT_Ed_R, alu.NOT_Ed_M]][si][mem ? 1 : 0];
      if (REG === 3) return [[alu.NEG_Eb_R, alu.NEG_Eb_M], [alu.NEG_Ew_R, alu.NEG_Ew_M], [alu.NEG_Ed_R, alu.NEG_Ed_M]][si][mem ? 1 : 0];
      return MULDIV_OPS[REG - 4][si][mem ? 1 : 0];
    }
    case 0xf8: return noLock(misc.CLC);
    case 0xf9: return noLock(misc.STC);
    case 0xfa: return noLock(sys.CLI);
    case 0xfb: return noLock(sys.STI);
    case 0xfc: return noLock(misc.CLD);
    case 0xfd: return noLock(misc.STD);
    case 0xfe: {
      if (!modrm(d, k)) return SHORT;
      const mem = MOD !== 3;
      if (REG > 1 || (lock && !mem)) return misc.INVALID;
      if (!mem) d.iRm[k] = R8[RM];
      if (REG === 0) return mem ? alu.INC_Eb_M : alu.INC_Eb_R;
      return mem ? alu.DEC_Eb_M : alu.DEC_Eb_R;
    }
    case 0xff: {
      if (!modrm(d, k)) return SHORT;
      const mem = MOD !== 3;
      if (REG === 7) return misc.INVALID;
      if (lock && (REG > 1 || !mem)) return misc.INVALID;
      if (!mem) d.iRm[k] = rix(RM, vs);
      const w = vs === 2;
      switch (REG) {
        case 0: return w ? (mem ? alu.INC_Ew_M : alu.INC_Ew_R) : (mem ? alu.INC_Ed_M : alu.INC_Ed_R);
        case 1: return w ? (mem ? alu.DEC_Ew_M : alu.DEC_Ew_R) : (mem ? alu.DEC_Ed_M : alu.DEC_Ed_R);
        case 2: return w ? (mem ? ctl.CALL_Ew_M : ctl.CALL_Ew_R) : (mem ? ctl.CALL_Ed_M : ctl.CALL_Ed_R);
        case 3: return mem ? ctl.CALLF_Mp : misc.INVALID;
        case 4: return w ? (mem ? ctl.JMP_Ew_M : ctl.JMP_Ew_R) : (mem ? ctl.JMP_Ed_M : ctl.JMP_Ed_R);
        case 5: return mem ? ctl.JMPF_Mp : misc.INVALID;
        default: return w ? (mem ? stk.PUSH_Ew_M : stk.PUSH_Rw) : (mem ? stk.PUSH_Ed_M : stk.PUSH_Rd);
      }
    }
  }
  return misc.INVALID;
}

function decode0F(d: DecodedPool, k: number, b: number, vs: number, lock: boolean): number {
  const noLock = (id: number) => (lock ? misc.INVALID : id);
  if (b >= 0x80 && b <= 0x8f) {
    if (!have(vs)) return SHORT;
    d.iImm[k] = vs === 2 ? u16() : s32();
    d.iSub[k] = b & 0xf;
    if (vs === 2) return noLock(ctl.Jcc_Jw);
    if (b === 0x84) return noLock(ctl.JZ_Jd);
    if (b === 0x85) return noLock(ctl.JNZ_Jd);
    return noLock(ctl.Jcc_Jd);
  }
  if (b >= 0x90 && b <= 0x9f) {
    if (!modrm(d, k)) return SHORT;
    d.iSub[k] = b & 0xf;
    if (MOD === 3) { d.iRm[k] = R8[RM]; return noLock(bit.SETcc_Eb_R); }
    return noLock(bit.SETcc_Eb_M);
  }
  if (b >= 0x40 && b <= 0x4f) {
    if (!modrm(d, k)) return SHORT;
    d.iSub[k] = b & 0xf;
    d.iReg[k] = rix(REG, vs);
    if (MOD === 3) d.iRm[k] = rix(RM, vs);
    if (vs === 2) return noLock(MOD === 3 ? bit.CMOVcc_GwEw_R : bit.CMOVcc_GwEw_M);
    return noLock(MOD === 3 ? bit.CMOVcc_GdEd_R : bit.CMOVcc_GdEd_M);
  }
  if (b >= 0xc8 && b <= 0xcf) {
    d.iRm[k] = rix(b & 7, vs);
    return noLock(vs === 2 ? mov.BSWAP_Rw : mov.BSWAP_Rd);
  }
  if (b >= 0x18 && b <= 0x1f) {
    // hint NOPs with a ModRM operand (0F 1F /0 is the documented multi-byte NOP)
    if (!modrm(d, k)) return SHORT;
    return noLock(misc.NOP);
  }
  switch (b) {
    case 0x00: {
      if (!modrm(d, k)) return SHORT;
      if (REG > 5 || lock) return misc.INVALID;
      d.iRm[k] = RM;
      return [sys.SLDT, sys.STR, sys.LLDT, sys.LTR, sys.VERR, sys.VERW][REG];
    }
    case 0x01: {
      if (!modrm(d, k)) return SHORT;
      if (lock) return misc.INVALID;
      d.iRm[k] = RM;
      if (REG === 4) return sys.SMSW;
      if (REG === 6) return sys.LMSW;
      if (MOD === 3 || REG === 5) return misc.INVALID;
      return [sys.SGDT, sys.SIDT, sys.LGDT, sys.LIDT, 0, 0, 0, sys.INVLPG][REG];
    }
    case 0x02: case 0x03:
      if (!modrm(d, k)) return SHORT;
      d.iReg[k] = REG;
      d.iRm[k] = RM;
      return noLock(b === 0x02 ? sys.LAR : sys.LSL);
    case 0x06: return noLock(sys.CLTS);
    case 0x08: case 0x09: return noLock(sys.INVD);
    case 0x0b: return misc.INVALID; // UD2
    case 0x20: case 0x21: case 0x22: case 0x23: {
      // MOV to/from control and debug registers: the ModRM always names registers
      if (!have(1)) return SHORT;
      const m = u8();
      const r = (m >> 3) & 7;
      d.iRm[k] = m & 7;
      d.iSub[k] = r;
      if (lock) return misc.INVALID;
      if (b === 0x20 || b === 0x22) {
        if (r === 1 || r > 4) return misc.INVALID;
        return b === 0x20 ? sys.MOV_RdCd : sys.MOV_CdRd;
      }
      return b === 0x21 ? sys.MOV_RdDd : sys.MOV_DdRd;
    }
    case 0x30: return noLock(sys.WRMSR);
    case 0x31: return noLock(misc.RDTSC);
    case 0x32: return noLock(sys.RDMSR);
    case 0xa0: case 0xa8: d.iSub[k] = b === 0xa0 ? FS : GS; return noLock(vs === 2 ? stk.PUSH_Sw : stk.PUSH_Sd);
    case 0xa1: case 0xa9: d.iSub[k] = b === 0xa1 ? FS : GS; return noLock(vs === 2 ? stk.POP_Sw : stk.POP_Sd);
    case 0xa2: return noLock(misc.CPUID);
    case 0xa3: case 0xab: case 0xb3: case 0xbb: {
      if (!modrm(d, k)) return SHORT;
      const mem = MOD !== 3;
      d.iSub[k] = b === 0xa3 ? 0 : b === 0xab ? 1 : b === 0xb3 ? 2 : 3;
      if (lock && (!mem || b === 0xa3)) return misc.INVALID;
      d.iReg[k] = REG;
      if (!mem) d.iRm[k] = rix(RM, vs);
      d.iReg[k] = rix(REG, vs);
      return bit.BT_OPS[vs === 2 ? 0 : 1][0][mem ? 1 : 0];
    }
    case 0xba: {
      if (!modrm(d, k)) return SHORT;
      if (!have(1)) return SHORT;
      d.iImm[k] = u8();
      if (REG < 4) return misc.INVALID;
      const mem = MOD !== 3;
      d.iSub[k] = REG - 4;
      if (lock && (!mem || REG === 4)) return misc.INVALID;
      if (!mem) d.iRm[k] = rix(RM, vs);
      return bit.BT_OPS[vs === 2 ? 0 : 1][1][mem ? 1 : 0];
    }
    case 0xa4: case 0xa5: case 0xac: case 0xad: {
      if (!modrm(d, k)) return SHORT;
      const byCl = (b & 1) === 1;
      if (!byCl) { if (!have(1)) return SHORT; d.iImm[k] = u8(); }
      d.iReg[k] = rix(REG, vs);
      if (MOD === 3) d.iRm[k] = rix(RM, vs);
      return noLock(SHLD_OPS[b < 0xa8 ? 0 : 1][vs === 2 ? 0 : 1][byCl ? 1 : 0][MOD === 3 ? 0 : 1]);
    }
    case 0xaf:
      if (!modrm(d, k)) return SHORT;
      d.iReg[k] = rix(REG, vs);
      if (MOD === 3) d.iRm[k] = rix(RM, vs);
      if (vs === 2) return noLock(MOD === 3 ? IMUL_GwEw_R : IMUL_GwEw_M);
      return noLock(MOD === 3 ? IMUL_GdEd_R : IMUL_GdEd_M);
    case 0xb0: case 0xb1: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      const mem = MOD !== 3;
      if (lock && !mem) return misc.INVALID;
      d.iReg[k] = rix(REG, size);
      if (!mem) d.iRm[k] = rix(RM, size);
      if (size === 1) return mem ? mov.CMPXCHG_EbGb_M : mov.CMPXCHG_EbGb_R;
      if (size === 2) return mem ? mov.CMPXCHG_EwGw_M : mov.CMPXCHG_EwGw_R;
      return mem ? mov.CMPXCHG_EdGd_M : mov.CMPXCHG_EdGd_R;
    }
    case 0xb2: case 0xb4: case 0xb5:
      if (!modrm(d, k)) return SHORT;
      if (MOD === 3 || lock) return misc.INVALID;
      d.iReg[k] = rix(REG, vs);
      d.iSub[k] = b === 0xb2 ? SS : b === 0xb4 ? FS : GS;
      return vs === 2 ? LXS_W : LXS_D;
    case 0xb6: case 0xb7: case 0xbe: case 0xbf: {
      if (!modrm(d, k)) return SHORT;
      if (lock) return misc.INVALID;
      const src = b & 1 ? 2 : 1;
      d.iReg[k] = rix(REG, vs);
      const mem = MOD !== 3;
      if (!mem) d.iRm[k] = rix(RM, src);
      const sx = b >= 0xbe;
      if (vs === 2) {
        if (src === 1) return sx ? (mem ? mov.MOVSX_GwEb_M : mov.MOVSX_GwEb_R) : (mem ? mov.MOVZX_GwEb_M : mov.MOVZX_GwEb_R);
        return mem ? mov.MOVZX_GwEw_M : mov.MOVZX_GwEw_R; // 16-bit from 16-bit: a plain move either way
      }
      if (src === 1) return sx ? (mem ? mov.MOVSX_GdEb_M : mov.MOVSX_GdEb_R) : (mem ? mov.MOVZX_GdEb_M : mov.MOVZX_GdEb_R);
      return sx ? (mem ? mov.MOVSX_GdEw_M : mov.MOVSX_GdEw_R) : (mem ? mov.MOVZX_GdEw_M : mov.MOVZX_GdEw_R);
    }
    case 0xbc: case 0xbd: {
      if (!modrm(d, k)) return SHORT;
      if (lock) return misc.INVALID;
      d.iReg[k] = rix(REG, vs);
      if (MOD === 3) d.iRm[k] = rix(RM, vs);
      return bit.BSF_OPS[b === 0xbd ? 1 : 0][vs === 2 ? 0 : 1][MOD === 3 ? 0 : 1];
    }
    case 0xc0: case 0xc1: {
      if (!modrm(d, k)) return SHORT;
      const size = b & 1 ? vs : 1;
      const mem = MOD !== 3;
      if (lock && !mem) return misc.INVALID;
      d.iReg[k] = rix(REG, size);
      if (!mem) d.iRm[k] = rix(RM, size);
      if (size === 1) return mem ? mov.XADD_EbGb_M : mov.XADD_EbGb_R;
      if (size === 2) return mem ? mov.XADD_EwGw_M : mov.XADD_EwGw_R;
      return mem ? mov.XADD_EdGd_M : mov.XADD_EdGd_R;
    }
    case 0xc7:
      if (!modrm(d, k)) return SHORT;
      if (REG !== 1 || MOD === 3) return misc.INVALID;
      return mov.CMPXCHG8B_Mq;
  }
  return misc.INVALID;
}

// LDS/LES/LSS/LFS/LGS: load a far pointer; defined here to keep the segment-pointer loads with their
// decoder (the segment register is in iSub).
import { defineOp } from './ops/registry.ts';
import { loadSegment } from './segments.ts';
import type { CPU } from './cpu.ts';
const LXS_D = defineOp('LxS_GdMp', (c: CPU, k: number) => {
  const s = c.iSeg[k], ea = c.ea(k);
  const off = c.read32(s, ea);
  const sel = c.read16(s, (ea + 4) | 0);
  loadSegment(c, c.iSub[k], sel);
  c.r32[c.iReg[k]] = off;
  if (c.iSub[k] === SS) c.inhibitIrq = true;
  c.stop = 1;
});
const LXS_W = defineOp('LxS_GwMp', (c: CPU, k: number) => {
  const s = c.iSeg[k], ea = c.ea(k);
  const off = c.read16(s, ea);
  const sel = c.read16(s, (ea + 2) | 0);
  loadSegment(c, c.iSub[k], sel);
  c.r16[c.iReg[k]] = off;
  if (c.iSub[k] === SS) c.inhibitIrq = true;
  c.stop = 1;
});

/** (Which ops end a block and which may be locked: emulator/optable.ts.) */
export { TERMINATES_BLOCK } from './optable.ts';

// ---- probing (for tests and tools) ----
let probePool: DecodedPool | null = null;

/** Decode one instruction for inspection: returns its length (1..15), -6 if it raises #UD, -13 if it is
 *  longer than 15 bytes. `code` must hold enough bytes after offset (16 is always enough). */
export function probeInstruction(code: Uint8Array, offset: number, codeSize32 = true): number {
  const p = (probePool ??= {
    iOp: new Uint16Array(1), iLen: new Uint8Array(1), iReg: new Uint8Array(1), iRm: new Uint8Array(1),
    iBase: new Uint8Array(1), iIdx: new Uint8Array(1), iScale: new Uint8Array(1), iSeg: new Uint8Array(1),
    iFlags: new Uint8Array(1), iSub: new Uint8Array(1), iDisp: new Int32Array(1), iImm: new Int32Array(1),
    iImm2: new Int32Array(1), iLockOp: new Uint16Array(1),
  });
  const avail = Math.min(code.length - offset, 64);
  const len = decodeInstruction(p, 0, code, offset, avail, 0x100000000, codeSize32);
  if (len < 0) return -13;
  if (p.iOp[0] === misc.GP0) return -13;
  if (p.iOp[0] === misc.INVALID) return -6;
  return len;
}

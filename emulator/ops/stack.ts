/**
 * The stack: PUSH and POP of registers, immediates, memory and segment registers, PUSHA/POPA,
 * PUSHF/POPF (with the IF/IOPL rules of CPL and IOPL), ENTER and LEAVE. Every form leaves ESP unchanged
 * when it faults.
 */
import { EBP, ESP, IF, SS, TF } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { bodyOp, defineOp } from './registry.ts';
import { loadSegment } from '../segments.ts';

// ---- registers (iRm = register index for the size) ----
export const PUSH_Rd = bodyOp('PUSH_Rd');
export const PUSH_Rw = defineOp('PUSH_Rw', (c, k) => { c.push16(c.r16[c.iRm[k]]); });
export const POP_Rd = bodyOp('POP_Rd'); // (POP ESP: the popped value wins)
export const POP_Rw = defineOp('POP_Rw', (c, k) => {
  const v = c.peek16(0);
  c.adjustSp(2);
  c.r16[c.iRm[k]] = v;
});

export const PUSH_Id = defineOp('PUSH_Id', (c, k) => { c.push32(c.iImm[k]); });
export const PUSH_Iw = defineOp('PUSH_Iw', (c, k) => { c.push16(c.iImm[k]); });

export const PUSH_Ed_M = defineOp('PUSH_Ed_M', (c, k) => { c.push32(c.read32(c.iSeg[k], c.ea(k))); });
export const PUSH_Ew_M = defineOp('PUSH_Ew_M', (c, k) => { c.push16(c.read16(c.iSeg[k], c.ea(k))); });

/** POP m: the address is computed with ESP already incremented (SDM POP), but a faulting write must
 *  leave ESP as it was when the exception is delivered (delivery happens inside the write, so ESP is put
 *  back before it rather than restored after). */
function popMem(c: CPU, k: number, n: 2 | 4): void {
  const v = n === 4 ? c.peek32(0) : c.peek16(0);
  const sp = c.r32[ESP];
  c.adjustSp(n);
  const ea = c.ea(k);
  c.r32[ESP] = sp;
  if (n === 4) c.write32(c.iSeg[k], ea, v);
  else c.write16(c.iSeg[k], ea, v);
  c.adjustSp(n);
}

export const POP_Ed_M = defineOp('POP_Ed_M', (c, k) => popMem(c, k, 4));
export const POP_Ew_M = defineOp('POP_Ew_M', (c, k) => popMem(c, k, 2));

// ---- segment registers (iSub = segment). With a 32-bit operand the CPU moves 4 bytes of stack but
// writes only the 16-bit selector, leaving the upper half of the slot alone. ----
export const PUSH_Sd = defineOp('PUSH_Sd', (c, k) => {
  const sp = c.stack32 ? (c.r32[ESP] - 4) | 0 : (c.r32[ESP] - 4) & 0xffff;
  c.write16(SS, sp, c.segSel[c.iSub[k]]);
  c.adjustSp(-4);
});
export const PUSH_Sw = defineOp('PUSH_Sw', (c, k) => { c.push16(c.segSel[c.iSub[k]]); });
export const POP_Sd = defineOp('POP_Sd', (c, k) => {
  const v = c.peek32(0) & 0xffff;
  loadSegment(c, c.iSub[k], v);
  c.adjustSp(4);
  if (c.iSub[k] === SS) c.inhibitIrq = true;
  c.stop = 1;
});
export const POP_Sw = defineOp('POP_Sw', (c, k) => {
  const v = c.peek16(0);
  loadSegment(c, c.iSub[k], v);
  c.adjustSp(2);
  if (c.iSub[k] === SS) c.inhibitIrq = true;
  c.stop = 1;
});

// ---- PUSHA / POPA ----
export const PUSHAD = defineOp('PUSHAD', (c) => {
  const sp = c.r32[ESP];
  const mask = c.stack32 ? -1 : 0xffff;
  c.segCheck(SS, ((sp - 32) & mask) | 0, 32, true);
  for (let i = 0; i < 8; i++) c.write32(SS, ((sp - 4 - i * 4) & mask) | 0, c.r32[i]);
  c.adjustSp(-32);
});
export const PUSHAW = defineOp('PUSHAW', (c) => {
  const sp = c.r32[ESP];
  const mask = c.stack32 ? -1 : 0xffff;
  c.segCheck(SS, ((sp - 16) & mask) | 0, 16, true);
  for (let i = 0; i < 8; i++) c.write16(SS, ((sp - 2 - i * 2) & mask) | 0, c.r16[i << 1]);
  c.adjustSp(-16);
});
const popaScratch = new Int32Array(8);
export const POPAD = defineOp('POPAD', (c) => {
  const v = popaScratch;
  for (let i = 0; i < 8; i++) v[i] = c.peek32(28 - i * 4);
  for (let i = 0; i < 8; i++) if (i !== ESP) c.r32[i] = v[i];
  c.adjustSp(32);
});
export const POPAW = defineOp('POPAW', (c) => {
  const v = popaScratch;
  for (let i = 0; i < 8; i++) v[i] = c.peek16(14 - i * 2);
  for (let i = 0; i < 8; i++) if (i !== ESP) c.r16[i << 1] = v[i];
  c.adjustSp(16);
});

// ---- PUSHF / POPF ----
/** PUSHF stores EFLAGS with VM and RF cleared. */
export const PUSHFD = defineOp('PUSHFD', (c) => { c.push32(c.getEflags() & 0x00fcffff); });
export const PUSHFW = defineOp('PUSHFW', (c) => { c.push16(c.getEflags() & 0xffff); });

function popf(c: CPU, v: number, size: number): void {
  const mask = c.popfMask(size);
  const old = c.getEflags();
  c.setEflags((old & ~mask) | (v & mask));
  // a change of IF or TF must be seen before the next instruction
  if (((old ^ c.flags) & (IF | TF)) !== 0) c.stop = 1;
}

export const POPFD = defineOp('POPFD', (c) => {
  const v = c.peek32(0);
  popf(c, v, 4);
  c.adjustSp(4);
});
export const POPFW = defineOp('POPFW', (c) => {
  const v = c.peek16(0);
  popf(c, v, 2);
  c.adjustSp(2);
});

// ---- ENTER / LEAVE ----
function enter(c: CPU, k: number, n: number): void {
  const size = c.iImm[k] & 0xffff;
  const level = c.iImm2[k] & 31;
  const mask = c.stack32 ? -1 : 0xffff;
  const sp0 = c.r32[ESP];
  let sp = sp0;
  const push = (v: number) => {
    sp = (sp - n) & mask;
    if (n === 4) c.write32(SS, sp, v);
    else c.write16(SS, sp, v);
  };
  const bp = c.r32[EBP];
  // check the frame pointer, the display and the locals before changing anything
  const total = n * (1 + level) + size;
  c.segCheck(SS, ((sp0 - total) & mask) | 0, total, true);
  push(n === 4 ? bp : bp & 0xffff);
  const frameTemp = sp;
  if (level > 0) {
    let b = bp;
    for (let i = 1; i < level; i++) {
      b = c.stack32 ? (b - n) | 0 : (b - n) & 0xffff;
      push(n === 4 ? c.read32(SS, b) : c.read16(SS, b));
    }
    push(n === 4 ? frameTemp : frameTemp & 0xffff);
  }
  if (n === 4) c.r32[EBP] = frameTemp;
  else c.r16[EBP << 1] = frameTemp;
  sp = (sp - size) & mask;
  if (c.stack32) c.r32[ESP] = sp;
  else c.r16[ESP << 1] = sp;
}

export const ENTERD = defineOp('ENTERD', (c, k) => enter(c, k, 4));
export const ENTERW = defineOp('ENTERW', (c, k) => enter(c, k, 2));
export const LEAVED = defineOp('LEAVED', (c) => {
  const bp = c.stack32 ? c.r32[EBP] : c.r32[EBP] & 0xffff;
  const v = c.read32(SS, bp);
  if (c.stack32) c.r32[ESP] = (bp + 4) | 0;
  else c.r16[ESP << 1] = bp + 4;
  c.r32[EBP] = v;
});
export const LEAVEW = defineOp('LEAVEW', (c) => {
  const bp = c.stack32 ? c.r32[EBP] : c.r32[EBP] & 0xffff;
  const v = c.read16(SS, bp);
  if (c.stack32) c.r32[ESP] = (bp + 2) | 0;
  else c.r16[ESP << 1] = bp + 2;
  c.r16[EBP << 1] = v;
});


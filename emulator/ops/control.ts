/**
 * Control transfers: JMP, Jcc, CALL, RET (near, relative and indirect), LOOP/LOOPE/LOOPNE/JECXZ, the
 * software interrupts INT n / INT3 / INTO / INT1, BOUND, and the far transfers JMP/CALL/RET far and IRET
 * in protected mode, with call gates (privilege change and parameter copy). A task gate or TSS that is
 * not present, busy or not allowed raises #NP/#GP as the i386 does; the task switch itself is not
 * implemented and ends the run with ExitReason.Unsupported.
 */
import { BR, CS, DB, ECX, ESP, GP, IF, IOPL_MASK, NP, NT, OF_VEC, SS, SS_VEC, TS_VEC, VM } from '../constants.ts';
import type { CPU } from '../cpu.ts';
import { FAULT } from '../exits.ts';
import { ExitReason } from '../exits.ts';
import { checkTaskGateTss } from '../interrupts.ts';
import { bodyOp, defineOp } from './registry.ts';
import { desc, descAttr, descBase, descLimit, nullInaccessibleSegments, readDescriptor, setAccessed } from '../segments.ts';

/** Jump to a near target, checking it against the CS limit. */
function jumpNear(c: CPU, target: number): void {
  if ((target >>> 0) > c.segLimit[CS]) c.raise(GP, 0);
  c.eip = target;
}

// ---- JMP / Jcc / CALL / RET near ----
export const JMP_Jd = bodyOp('JMP_Jd');
export const JMP_Jw = defineOp('JMP_Jw', (c, k) => { jumpNear(c, (c.eip + c.iImm[k]) & 0xffff); });
export const Jcc_Jd = bodyOp('Jcc_Jd');
export const Jcc_Jw = defineOp('Jcc_Jw', (c, k) => { if (c.cond(c.iSub[k])) jumpNear(c, (c.eip + c.iImm[k]) & 0xffff); });
export const JZ_Jd = bodyOp('JZ_Jd');
export const JNZ_Jd = bodyOp('JNZ_Jd');

export const CALL_Jd = bodyOp('CALL_Jd');
export const CALL_Jw = defineOp('CALL_Jw', (c, k) => {
  const t = (c.eip + c.iImm[k]) & 0xffff;
  if (t > c.segLimit[CS]) c.raise(GP, 0);
  c.push16(c.eip);
  c.eip = t;
});
export const CALL_Ed_R = defineOp('CALL_Ed_R', (c, k) => {
  const t = c.r32[c.iRm[k]];
  if ((t >>> 0) > c.segLimit[CS]) c.raise(GP, 0);
  c.push32(c.eip);
  c.eip = t;
});
export const CALL_Ed_M = defineOp('CALL_Ed_M', (c, k) => {
  const t = c.read32(c.iSeg[k], c.ea(k));
  if ((t >>> 0) > c.segLimit[CS]) c.raise(GP, 0);
  c.push32(c.eip);
  c.eip = t;
});
export const CALL_Ew_R = defineOp('CALL_Ew_R', (c, k) => {
  const t = c.r16[c.iRm[k]];
  if (t > c.segLimit[CS]) c.raise(GP, 0);
  c.push16(c.eip);
  c.eip = t;
});
export const CALL_Ew_M = defineOp('CALL_Ew_M', (c, k) => {
  const t = c.read16(c.iSeg[k], c.ea(k));
  if (t > c.segLimit[CS]) c.raise(GP, 0);
  c.push16(c.eip);
  c.eip = t;
});
export const JMP_Ed_R = defineOp('JMP_Ed_R', (c, k) => { jumpNear(c, c.r32[c.iRm[k]]); });
export const JMP_Ed_M = defineOp('JMP_Ed_M', (c, k) => { jumpNear(c, c.read32(c.iSeg[k], c.ea(k))); });
export const JMP_Ew_R = defineOp('JMP_Ew_R', (c, k) => { jumpNear(c, c.r16[c.iRm[k]]); });
export const JMP_Ew_M = defineOp('JMP_Ew_M', (c, k) => { jumpNear(c, c.read16(c.iSeg[k], c.ea(k))); });

export const RETD = bodyOp('RETD');
export const RETW = defineOp('RETW', (c) => {
  const t = c.peek16(0);
  jumpNear(c, t);
  c.adjustSp(2);
});
export const RETD_Iw = defineOp('RETD_Iw', (c, k) => {
  const t = c.peek32(0);
  jumpNear(c, t);
  c.adjustSp(4 + c.iImm[k]);
});
export const RETW_Iw = defineOp('RETW_Iw', (c, k) => {
  const t = c.peek16(0);
  jumpNear(c, t);
  c.adjustSp(2 + c.iImm[k]);
});

// ---- LOOP family (the counter is CX or ECX by address size; iSub: 0 LOOPNE, 1 LOOPE, 2 LOOP, 3 JECXZ) ----
function loopOp(c: CPU, k: number, mask: number): void {
  const a16 = (c.iFlags[k] & 1) !== 0;
  const op = c.iSub[k];
  let taken: boolean;
  if (op === 3) {
    taken = (a16 ? c.r16[ECX << 1] : c.r32[ECX]) === 0;
  } else {
    let n: number;
    if (a16) { n = (c.r16[ECX << 1] - 1) & 0xffff; } else { n = (c.r32[ECX] - 1) | 0; }
    taken = n !== 0 && (op === 2 || (op === 1 ? c.getZF() : !c.getZF()));
    const t = (c.eip + c.iImm[k]) & mask;
    if (taken && (t >>> 0) > c.segLimit[CS]) c.raise(GP, 0);
    if (a16) c.r16[ECX << 1] = n;
    else c.r32[ECX] = n;
    if (taken) c.eip = t;
    return;
  }
  if (taken) jumpNear(c, (c.eip + c.iImm[k]) & mask);
}
export const LOOP_Jd = defineOp('LOOP_Jd', (c, k) => loopOp(c, k, -1));
export const LOOP_Jw = defineOp('LOOP_Jw', (c, k) => loopOp(c, k, 0xffff));

// ---- software interrupts ----
export const INT_Ib = defineOp('INT_Ib', (c, k) => { c.softwareInterrupt(c.iImm[k] & 0xff); });
export const INT3 = defineOp('INT3', (c) => { c.softwareInterrupt(3); });
export const INTO = defineOp('INTO', (c) => { if (c.getOF()) c.softwareInterrupt(OF_VEC); });
/** INT1 / ICEBP (F1): a debug trap delivered like a hardware exception (no DPL check). */
export const INT1 = defineOp('INT1', (c) => {
  c.exception(DB, -1, c.eip);
  c.stop = 1;
});

// ---- BOUND: signed index against [lower, upper] in memory ----
export const BOUND_GdMa = defineOp('BOUND_GdMa', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k);
  const lo = c.read32(s, ea), hi = c.read32(s, (ea + 4) | 0), v = c.r32[c.iReg[k]];
  if (v < lo || v > hi) c.raise(BR, -1);
});
export const BOUND_GwMa = defineOp('BOUND_GwMa', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k);
  const lo = (c.read16(s, ea) << 16) >> 16, hi = (c.read16(s, (ea + 2) | 0) << 16) >> 16;
  const v = (c.r16[c.iReg[k]] << 16) >> 16;
  if (v < lo || v > hi) c.raise(BR, -1);
});

// =====================================================================================================
// Far transfers (protected mode)
// =====================================================================================================

function unsupported(c: CPU, what: string): never {
  c.exitReason = ExitReason.Unsupported;
  c.exitMessage = what;
  c.eip = c.prevEip;
  c.stop = 1;
  throw FAULT;
}

/** Load CS from the descriptor in `desc` with RPL/CPL `cpl`, and jump to offset. */
function commitCs(c: CPU, sel: number, cpl: number, offset: number): void {
  const limit = descLimit(desc.lo, desc.hi);
  if ((offset >>> 0) > limit) c.raise(GP, 0);
  setAccessed(c);
  c.setSegCache(CS, (sel & ~3) | cpl, descBase(desc.lo, desc.hi), limit, descAttr(desc.hi));
  if (cpl !== c.cpl) c.setCpl(cpl);
  c.eip = offset | 0;
  c.stop = 1;
}

/** Check a code-segment descriptor (in `desc`) as the target of a far JMP/CALL. */
function checkDirectCode(c: CPU, sel: number): void {
  const hi = desc.hi;
  const dpl = (hi >>> 13) & 3;
  const conforming = (hi & 0x400) !== 0;
  const err = sel & 0xfffc;
  if (conforming ? dpl > c.cpl : (sel & 3) > c.cpl || dpl !== c.cpl) c.raise(GP, err);
  if ((hi & 0x8000) === 0) c.raise(NP, err);
}

function farJump(c: CPU, sel: number, offset: number, call: boolean, opsize: number): void {
  sel &= 0xffff;
  const err = sel & 0xfffc;
  if (err === 0) c.raise(GP, 0);
  if (!readDescriptor(c, sel)) c.raise(GP, err);
  const hi = desc.hi;
  const type = (hi >>> 8) & 0x1f;
  if ((type & 0x18) === 0x18) {
    checkDirectCode(c, sel);
    if (call) {
      const mask = c.stack32 ? -1 : 0xffff;
      const sp = c.r32[ESP];
      c.segCheck(SS, ((sp - 2 * opsize) & mask) | 0, 2 * opsize, true);
      const saveLo = desc.lo, saveHi = desc.hi, saveAddr = desc.addr;
      if (opsize === 4) { c.push32(c.segSel[CS]); c.push32(c.eip); } else { c.push16(c.segSel[CS]); c.push16(c.eip); }
      desc.lo = saveLo; desc.hi = saveHi; desc.addr = saveAddr;
    }
    commitCs(c, sel, c.cpl, opsize === 4 ? offset : offset & 0xffff);
    return;
  }
  switch (type) {
    case 0x0c: case 0x04: return callGate(c, sel, call);
    case 0x05: case 0x01: case 0x09: {
      // A task gate or an available TSS: the i386's checks (SDM JMP/CALL, TASK-GATE and TASK-STATE-
      // SEGMENT), then the task switch, which is not implemented. A busy TSS falls to #GP below.
      const dpl = (hi >>> 13) & 3;
      if (dpl < c.cpl || dpl < (sel & 3)) c.raise(GP, err);
      if ((hi & 0x8000) === 0) c.raise(NP, err);
      if (type === 0x05) checkTaskGateTss(c, desc.lo >>> 16, 0);
      return unsupported(c, `far ${call ? 'call' : 'jmp'} to task gate or TSS 0x${sel.toString(16)}: task switching is not supported`);
    }
    default: c.raise(GP, err);
  }
}

/** Far JMP/CALL through a call gate, with a stack switch and parameter copy for a more privileged CALL. */
function callGate(c: CPU, gateSel: number, call: boolean): void {
  const gLo = desc.lo, gHi = desc.hi;
  const gErr = gateSel & 0xfffc;
  const gDpl = (gHi >>> 13) & 3;
  const gate32 = (gHi & 0x800) !== 0;
  if (gDpl < c.cpl || gDpl < (gateSel & 3)) c.raise(GP, gErr);
  if ((gHi & 0x8000) === 0) c.raise(NP, gErr);
  const sel = gLo >>> 16;
  const offset = gate32 ? (gLo & 0xffff) | (gHi & 0xffff0000) : gLo & 0xffff;
  const params = gHi & 0x1f;
  const err = sel & 0xfffc;
  if (err === 0) c.raise(GP, 0);
  if (!readDescriptor(c, sel)) c.raise(GP, err);
  const hi = desc.hi;
  const dpl = (hi >>> 13) & 3;
  const conforming = (hi & 0x400) !== 0;
  if ((((hi >>> 8) & 0x18) !== 0x18) || dpl > c.cpl) c.raise(GP, err);
  if ((hi & 0x8000) === 0) c.raise(NP, err);
  const n = gate32 ? 4 : 2;
  if (!call) {
    if (!conforming && dpl !== c.cpl) c.raise(GP, err);
    commitCs(c, sel, c.cpl, offset);
    return;
  }
  if (conforming || dpl === c.cpl) {
    const cLo = desc.lo, cHi = desc.hi, cAddr = desc.addr;
    if (n === 4) { c.push32(c.segSel[CS]); c.push32(c.eip); } else { c.push16(c.segSel[CS]); c.push16(c.eip); }
    desc.lo = cLo; desc.hi = cHi; desc.addr = cAddr;
    commitCs(c, sel, c.cpl, offset);
    return;
  }
  // More privileged: new stack from the TSS.
  const cLo = desc.lo, cHi = desc.hi, cAddr = desc.addr;
  const newCpl = dpl;
  const tssOff = 4 + newCpl * 8;
  if (tssOff + 5 > c.trLimit) c.raise(TS_VEC, c.trSel & 0xfffc);
  const newEsp = c.readSys32((c.trBase + tssOff) | 0);
  const newSs = c.readSys16((c.trBase + tssOff + 4) | 0);
  const ssErr = newSs & 0xfffc;
  if (ssErr === 0) c.raise(TS_VEC, 0);
  if ((newSs & 3) !== newCpl) c.raise(TS_VEC, ssErr);
  if (!readDescriptor(c, newSs)) c.raise(TS_VEC, ssErr);
  const sLo = desc.lo, sHi = desc.hi;
  if (((sHi >>> 13) & 3) !== newCpl || (((sHi >>> 8) & 0x1a) !== 0x12)) c.raise(TS_VEC, ssErr);
  if ((sHi & 0x8000) === 0) c.raise(SS_VEC, ssErr);
  const ssBase = descBase(sLo, sHi), ssLimit = descLimit(sLo, sHi);
  const ss32 = (sHi & 0x400000) !== 0;
  // read the parameters from the old stack first
  const oldSs = c.segSel[SS], oldEsp = c.r32[ESP];
  const vals: number[] = [];
  for (let i = params - 1; i >= 0; i--) {
    const off = c.stack32 ? (oldEsp + i * n) | 0 : (oldEsp + i * n) & 0xffff;
    vals.push(n === 4 ? c.read32(SS, off) : c.read16(SS, off));
  }
  const frame = n * (4 + params);
  let sp = ss32 ? newEsp | 0 : newEsp & 0xffff;
  const bottom = (sp - frame) >>> 0;
  if (bottom + frame - 1 > ssLimit && ssLimit !== 0xffffffff) c.raise(SS_VEC, ssErr);
  const push = (v: number) => {
    sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xffff;
    c.writeLinear((ssBase + sp) | 0, n, n === 4 ? v : v & 0xffff, false);
  };
  push(oldSs);
  push(oldEsp);
  for (const v of vals) push(v);
  push(c.segSel[CS]);
  push(c.eip);
  desc.lo = cLo; desc.hi = cHi; desc.addr = cAddr;
  const limit = descLimit(cLo, cHi);
  if ((offset >>> 0) > limit) c.raise(GP, 0);
  c.setCpl(newCpl);
  c.setSegCache(SS, (newSs & ~3) | newCpl, ssBase, ssLimit, descAttr(sHi) | 1);
  if (ss32) c.r32[ESP] = sp; else c.r16[ESP << 1] = sp;
  c.setSegCache(CS, (sel & ~3) | newCpl, descBase(cLo, cHi), limit, descAttr(cHi) | 1);
  c.eip = offset | 0;
  c.stop = 1;
}

export const JMPF_Ap = defineOp('JMPF_Ap', (c, k) => farJump(c, c.iImm2[k], c.iImm[k], false, (c.iFlags[k] & 16) !== 0 ? 2 : 4));
export const CALLF_Ap = defineOp('CALLF_Ap', (c, k) => farJump(c, c.iImm2[k], c.iImm[k], true, (c.iFlags[k] & 16) !== 0 ? 2 : 4));
export const JMPF_Mp = defineOp('JMPF_Mp', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), n = (c.iFlags[k] & 16) !== 0 ? 2 : 4;
  const off = n === 4 ? c.read32(s, ea) : c.read16(s, ea);
  farJump(c, c.read16(s, (ea + n) | 0), off, false, n);
});
export const CALLF_Mp = defineOp('CALLF_Mp', (c, k) => {
  const s = c.iSeg[k], ea = c.ea(k), n = (c.iFlags[k] & 16) !== 0 ? 2 : 4;
  const off = n === 4 ? c.read32(s, ea) : c.read16(s, ea);
  farJump(c, c.read16(s, (ea + n) | 0), off, true, n);
});

/** Check the CS selector a RETF/IRET returns to; leaves its descriptor in `desc`. */
function checkReturnCs(c: CPU, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0) c.raise(GP, 0);
  if (!readDescriptor(c, sel)) c.raise(GP, err);
  const hi = desc.hi;
  const rpl = sel & 3;
  const dpl = (hi >>> 13) & 3;
  if (((hi >>> 8) & 0x18) !== 0x18 || rpl < c.cpl) c.raise(GP, err);
  if ((hi & 0x400) !== 0 ? dpl > rpl : dpl !== rpl) c.raise(GP, err);
  if ((hi & 0x8000) === 0) c.raise(NP, err);
}

/** Check the SS selector for a return to an outer level; returns it with desc holding its descriptor. */
function checkReturnSs(c: CPU, ssSel: number, rpl: number): void {
  const err = ssSel & 0xfffc;
  if (err === 0) c.raise(GP, 0);
  if (!readDescriptor(c, ssSel)) c.raise(GP, err);
  const hi = desc.hi;
  if ((ssSel & 3) !== rpl || ((hi >>> 13) & 3) !== rpl || ((hi >>> 8) & 0x1a) !== 0x12) c.raise(GP, err);
  if ((hi & 0x8000) === 0) c.raise(SS_VEC, err);
}

function farReturn(c: CPU, n: number, imm: number): void {
  const eip = n === 4 ? c.peek32(0) : c.peek16(0);
  const csSel = (n === 4 ? c.peek32(n) : c.peek16(n)) & 0xffff;
  checkReturnCs(c, csSel);
  const rpl = csSel & 3;
  if (rpl === c.cpl) {
    c.adjustSp(2 * n + imm);
    commitCs(c, csSel, c.cpl, n === 4 ? eip : eip & 0xffff);
    return;
  }
  const cLo = desc.lo, cHi = desc.hi, cAddr = desc.addr;
  const esp = n === 4 ? c.peek32(2 * n + imm) : c.peek16(2 * n + imm);
  const ssSel = (n === 4 ? c.peek32(3 * n + imm) : c.peek16(3 * n + imm)) & 0xffff;
  checkReturnSs(c, ssSel, rpl);
  const sLo = desc.lo, sHi = desc.hi;
  desc.lo = cLo; desc.hi = cHi; desc.addr = cAddr;
  commitCs(c, csSel, rpl, n === 4 ? eip : eip & 0xffff);
  c.setSegCache(SS, ssSel, descBase(sLo, sHi), descLimit(sLo, sHi), descAttr(sHi) | 1);
  if (c.stack32) c.r32[ESP] = (esp + imm) | 0;
  else c.r16[ESP << 1] = esp + imm;
  nullInaccessibleSegments(c);
}

export const RETFD = defineOp('RETFD', (c) => farReturn(c, 4, 0));
export const RETFW = defineOp('RETFW', (c) => farReturn(c, 2, 0));
export const RETFD_Iw = defineOp('RETFD_Iw', (c, k) => farReturn(c, 4, c.iImm[k]));
export const RETFW_Iw = defineOp('RETFW_Iw', (c, k) => farReturn(c, 2, c.iImm[k]));

function iret(c: CPU, n: number): void {
  if ((c.flags & NT) !== 0) unsupported(c, 'IRET with NT set (task return): task switching is not supported');
  const eip = n === 4 ? c.peek32(0) : c.peek16(0);
  const csSel = (n === 4 ? c.peek32(n) : c.peek16(n)) & 0xffff;
  const fl = n === 4 ? c.peek32(2 * n) : (c.getEflags() & 0xffff0000) | c.peek16(2 * n);
  if ((fl & VM) !== 0 && c.cpl === 0 && n === 4) unsupported(c, 'IRET to virtual-8086 mode is not supported');
  checkReturnCs(c, csSel);
  const rpl = csSel & 3;
  const oldCpl = c.cpl;
  // EFLAGS bits the return may change are decided by the CPL *before* the return.
  const ioplOld = (c.flags & IOPL_MASK) >>> 12;
  let mask = 0x254dd5; // CF PF AF ZF SF TF DF OF NT RF AC ID
  if (oldCpl === 0) mask |= IOPL_MASK | 0x1a0000 /* VIF VIP VM */;
  if (oldCpl <= ioplOld) mask |= IF;
  if (n === 2) mask &= 0xffff;
  mask &= ~VM;
  const newFlags = (c.getEflags() & ~mask) | (fl & mask);
  if (rpl === oldCpl) {
    c.adjustSp(3 * n);
    commitCs(c, csSel, oldCpl, n === 4 ? eip : eip & 0xffff);
    c.setEflags(newFlags);
    return;
  }
  const cLo = desc.lo, cHi = desc.hi, cAddr = desc.addr;
  const esp = n === 4 ? c.peek32(3 * n) : c.peek16(3 * n);
  const ssSel = (n === 4 ? c.peek32(4 * n) : c.peek16(4 * n)) & 0xffff;
  checkReturnSs(c, ssSel, rpl);
  const sLo = desc.lo, sHi = desc.hi;
  desc.lo = cLo; desc.hi = cHi; desc.addr = cAddr;
  commitCs(c, csSel, rpl, n === 4 ? eip : eip & 0xffff);
  c.setSegCache(SS, ssSel, descBase(sLo, sHi), descLimit(sLo, sHi), descAttr(sHi) | 1);
  if ((sHi & 0x400000) !== 0) c.r32[ESP] = esp;
  else c.r16[ESP << 1] = esp;
  c.setEflags(newFlags);
  nullInaccessibleSegments(c);
}

export const IRETD = defineOp('IRETD', (c) => iret(c, 4));
export const IRETW = defineOp('IRETW', (c) => iret(c, 2));

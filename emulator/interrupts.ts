/**
 * Interrupt and exception delivery through the IDT in protected mode (SDM volume 3, 6.12): interrupt and
 * trap gates (32- and 16-bit), the DPL check of software interrupts, privilege change through the TSS
 * stack pointers, and the frame the CPU pushes. Task gates are not supported: they end the run with
 * ExitReason.Unsupported and a message.
 */
import { CS, GP, IF, NP, NT, RF, SS, SS_VEC, TF, TS_VEC, VM, ESP } from './constants.ts';
import type { CPU } from './cpu.ts';
import { ExitReason, FAULT } from './exits.ts';
import { desc, descAttr, descBase, descLimit, readDescriptor } from './segments.ts';

/**
 * The TSS a task gate names (an IDT task gate, or a far JMP/CALL through a GDT/LDT one), checked before
 * the task switch as the SDM's INT n and JMP/CALL pseudo-code does: a local selector or one beyond the
 * GDT limit, or a descriptor that is not an available TSS (busy, or not a TSS at all), is #GP(selector);
 * a TSS not present is #NP(selector). `ext` is the EXT bit of the error codes. Returns when the switch
 * itself would start.
 */
export function checkTaskGateTss(cpu: CPU, tssSel: number, ext: number): void {
  const err = (tssSel & 0xfffc) | ext;
  if ((tssSel & 4) !== 0 || !readDescriptor(cpu, tssSel)) cpu.raise(GP, err);
  const type = (desc.hi >>> 8) & 0x1f;
  if (type !== 0x01 && type !== 0x09) cpu.raise(GP, err);
  if ((desc.hi & 0x8000) === 0) cpu.raise(NP, err);
}

/**
 * Deliver `vector`. `error` is the error code to push (-1: none), `eip` the return address to save,
 * `soft` true for INT n / INT3 / INTO (gate DPL is checked against CPL), `ext` true for events not caused
 * by a software interrupt (sets the EXT bit in error codes of faults raised while delivering).
 */
export function deliverInterrupt(cpu: CPU, vector: number, error: number, eip: number, soft: boolean, ext: boolean): void {
  const extBit = ext && !soft ? 1 : 0;
  const gateOff = vector << 3;
  const idtErr = gateOff | 2 | extBit;
  if (gateOff + 7 > cpu.idtLimit) cpu.raise(GP, idtErr);
  const lo = cpu.readSys32((cpu.idtBase + gateOff) | 0);
  const hi = cpu.readSys32((cpu.idtBase + gateOff + 4) | 0);
  const type = (hi >>> 8) & 0x1f;
  const gateDpl = (hi >>> 13) & 3;
  if (type !== 0x05 && type !== 0x0e && type !== 0x0f && type !== 0x06 && type !== 0x07) cpu.raise(GP, idtErr);
  if (soft && gateDpl < cpu.cpl) cpu.raise(GP, idtErr);
  if ((hi & 0x8000) === 0) cpu.raise(NP, idtErr);
  if (type === 0x05) {
    // A task gate: its TSS is checked as the i386 checks it; only the switch itself is not implemented.
    checkTaskGateTss(cpu, lo >>> 16, extBit);
    cpu.exitReason = ExitReason.Unsupported;
    cpu.exitMessage = `task gate in IDT entry ${vector}: hardware task switching is not supported`;
    cpu.stop = 1;
    throw FAULT;
  }
  if (cpu.exceptionMode === 1 && soft) {
    // cpu-test: the software interrupt passed its checks; stop here as the hardware would enter the gate
    cpu.exceptionVector = vector;
    cpu.exceptionError = -1;
    cpu.exceptionEip = eip;
    cpu.exitReason = ExitReason.Exception;
    cpu.eip = cpu.prevEip;
    cpu.stop = 1;
    throw FAULT;
  }
  const gate32 = (type & 8) !== 0;
  const trapGate = (type & 1) !== 0;
  const sel = lo >>> 16;
  const target = gate32 ? (lo & 0xffff) | (hi & 0xffff0000) : lo & 0xffff;

  // The target code segment.
  const selErr = (sel & 0xfffc) | extBit;
  if ((sel & 0xfffc) === 0) cpu.raise(GP, extBit);
  if (!readDescriptor(cpu, sel)) cpu.raise(GP, selErr);
  const cLo = desc.lo, cHi = desc.hi;
  const cType = (cHi >>> 8) & 0x1f;
  const cDpl = (cHi >>> 13) & 3;
  if ((cType & 0x18) !== 0x18 || cDpl > cpu.cpl) cpu.raise(GP, selErr);
  if ((cHi & 0x8000) === 0) cpu.raise(NP, selErr);
  const conforming = (cType & 4) !== 0;
  const cLimit = descLimit(cLo, cHi);
  if ((target >>> 0) > cLimit) cpu.raise(GP, extBit);

  const flags = cpu.getEflags();
  const oldCs = cpu.segSel[CS];
  const n = gate32 ? 4 : 2;
  const hasErr = error >= 0;

  if (!conforming && cDpl < cpu.cpl) {
    // Inter-privilege: the new stack comes from the TSS.
    const newCpl = cDpl;
    const tssOff = 4 + newCpl * 8;
    if ((cpu.trSel & 0xfffc) === 0 || tssOff + 5 > cpu.trLimit) cpu.raise(TS_VEC, (cpu.trSel & 0xfffc) | extBit);
    const newEsp = cpu.readSys32((cpu.trBase + tssOff) | 0);
    const newSs = cpu.readSys16((cpu.trBase + tssOff + 4) | 0);
    const ssErr = (newSs & 0xfffc) | extBit;
    if ((newSs & 0xfffc) === 0) cpu.raise(TS_VEC, extBit);
    if ((newSs & 3) !== newCpl) cpu.raise(TS_VEC, ssErr);
    if (!readDescriptor(cpu, newSs)) cpu.raise(TS_VEC, ssErr);
    const sLo = desc.lo, sHi = desc.hi;
    const sType = (sHi >>> 8) & 0x1f;
    if (((sHi >>> 13) & 3) !== newCpl || (sType & 0x1a) !== 0x12) cpu.raise(TS_VEC, ssErr);
    if ((sHi & 0x8000) === 0) cpu.raise(SS_VEC, ssErr);
    const ssBase = descBase(sLo, sHi);
    const ssLimit = descLimit(sLo, sHi);
    const ss32 = (sHi & 0x400000) !== 0;
    const frame = n * (5 + (hasErr ? 1 : 0));
    let sp = ss32 ? newEsp | 0 : newEsp & 0xffff;
    const bottom = ((sp - frame) >>> 0) & (ss32 ? 0xffffffff : 0xffff);
    if (!stackRangeOk(bottom, frame, ssLimit, sType, ss32)) cpu.raise(SS_VEC, ssErr);
    const push = (v: number) => {
      sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xffff;
      if (n === 4) cpu.writeLinear((ssBase + sp) | 0, 4, v, false);
      else cpu.writeLinear((ssBase + sp) | 0, 2, v & 0xffff, false);
    };
    push(cpu.segSel[SS]);
    push(cpu.r32[ESP]);
    push(flags);
    push(oldCs);
    push(eip);
    if (hasErr) push(error);
    // Commit.
    cpu.setCpl(newCpl);
    cpu.setSegCache(SS, (newSs & ~3) | newCpl, ssBase, ssLimit, descAttr(sHi) | 1);
    if (ss32) cpu.r32[ESP] = sp;
    else cpu.r16[ESP << 1] = sp;
  } else {
    // Same privilege (or a conforming segment: CPL does not change).
    if (!conforming && cDpl !== cpu.cpl) cpu.raise(GP, selErr);
    const frame = n * (3 + (hasErr ? 1 : 0));
    let sp = cpu.r32[ESP];
    const mask = cpu.stack32 ? -1 : 0xffff;
    // check the whole frame first, so a fault leaves ESP alone
    cpu.segCheck(SS, ((sp - frame) & mask) | 0, frame, true);
    const push = (v: number) => {
      sp = (sp - n) & mask;
      if (n === 4) cpu.write32(SS, sp, v);
      else cpu.write16(SS, sp, v & 0xffff);
    };
    push(flags);
    push(oldCs);
    push(eip);
    if (hasErr) push(error);
    if (cpu.stack32) cpu.r32[ESP] = sp;
    else cpu.r16[ESP << 1] = sp;
  }
  cpu.setSegCache(CS, (sel & ~3) | cpu.cpl, descBase(cLo, cHi), cLimit, descAttr(cHi) | 1);
  cpu.eip = target | 0;
  let f = flags & ~(TF | NT | RF | VM);
  if (!trapGate) f &= ~IF;
  cpu.setEflags(f);
  cpu.stop = 1;
}

/** Does [bottom, bottom+size) fit a stack segment with this limit and type? */
function stackRangeOk(bottom: number, size: number, limit: number, type: number, big: boolean): boolean {
  const last = bottom + size - 1;
  if ((type & 4) !== 0) return bottom > limit && last <= (big ? 0xffffffff : 0xffff);
  return last <= limit || limit === 0xffffffff;
}

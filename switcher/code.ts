/**
 * The Switcher's code page: real i386 machine code, hand-assembled here at start-up and run by the CPU at
 * ring 0 from SWITCHER_ADDR while a guest runs. Two pieces:
 *
 * 1. The trap path (guest -> Host). One stub per vector; the IDT gate of every vector that is not a
 *    direct trap points at its stub. The CPU has just switched to ring 0 on the TSS's esp0/ss0, which is
 *    the end of lguest_regs in this vCPU's regs page, and pushed SS ESP EFLAGS CS EIP (and an error code
 *    for 8, 10-14, 17). The stub makes the frame uniform and joins `save`:
 *
 *        stub_N:  push 0            6A 00           (only where the CPU pushes no error code)
 *                 push N            68 imm32        (imm32: vectors >= 0x80 must not sign-extend)
 *                 jmp  save         E9 rel32
 *        save:    push es; push ds  06 1E
 *                 push fs; push gs  0F A0 0F A8
 *                 push ebp edi esi edx ecx ebx eax   55 57 56 52 51 53 50
 *                 hlt               F4
 *
 *    Now ESP = the start of lguest_regs: the trap frame lies in the regs page in exactly lguest_regs order
 *    (abi 5.2). HLT makes the machine return ExitReason.Hlt with EIP inside this page, which the Host reads
 *    as "the guest trapped into the Host". (Real lguest switches CR3/GDT/IDT/TSS back to the Host here;
 *    our Host is TypeScript outside the machine, so the HLT *is* the switch.)
 *
 * 2. The return path (Host -> guest), entered with CPL 0, CS = LGUEST_CS, SS = LGUEST_DS and ESP = the
 *    start of lguest_regs:
 *
 *        return:  pop eax ebx ecx edx esi edi ebp   58 5B 59 5A 5E 5F 5D
 *                 pop gs; pop fs    0F A9 0F A1
 *                 pop ds; pop es    1F 07
 *                 add esp, 8        83 C4 08        (trapnum and errcode)
 *                 iret              CF
 *
 *    The CPU does every check of the segment loads and of the IRET to ring 1 or 3. If one of them faults,
 *    the fault arrives at ring 0 through a stub with no privilege change, which the Host recognises
 *    (the frame does not end at the top of the regs page) and kills the guest ("unhandled trap 256").
 */
import { IDT_ENTRIES } from './layout.ts';

/** Vectors for which the CPU pushes an error code (the stub pushes none). */
export function vectorHasErrorCode(v: number): boolean {
  return v === 8 || (v >= 10 && v <= 14) || v === 17;
}

export interface SwitcherCode {
  /** The page's bytes (4096, padded with HLT so a stray jump stops the machine). */
  bytes: Uint8Array;
  /** Offset of stub N in the page. */
  stubOffset: Int32Array;
  /** Offset of the return path's first instruction. */
  returnOffset: number;
  /** Offset just after the trap path's HLT (where EIP is when the machine stops after a trap). */
  trapHltEnd: number;
}

const OP_PUSH_IMM8 = 0x6a, OP_PUSH_IMM32 = 0x68, OP_JMP_REL32 = 0xe9, OP_HLT = 0xf4;
const SAVE_SEQUENCE = [
  0x06, 0x1e, // push es; push ds
  0x0f, 0xa0, 0x0f, 0xa8, // push fs; push gs
  0x55, 0x57, 0x56, 0x52, 0x51, 0x53, 0x50, // push ebp edi esi edx ecx ebx eax
  OP_HLT,
];
const RETURN_SEQUENCE = [
  0x58, 0x5b, 0x59, 0x5a, 0x5e, 0x5f, 0x5d, // pop eax ebx ecx edx esi edi ebp
  0x0f, 0xa9, 0x0f, 0xa1, // pop gs; pop fs
  0x1f, 0x07, // pop ds; pop es
  0x83, 0xc4, 0x08, // add esp, 8
  0xcf, // iret
];

/** [H:005] At start-up the Host assembles the Switcher: the return path, the common save code and one
 *  stub per vector, all in one page that every guest maps read-only at SWITCHER_ADDR. */
export function assembleSwitcher(): SwitcherCode {
  const bytes = new Uint8Array(4096).fill(OP_HLT);
  let at = 0;
  const emit = (...b: number[]) => { for (const x of b) bytes[at++] = x & 0xff; };
  const returnOffset = at;
  emit(...RETURN_SEQUENCE);
  const saveOffset = at;
  emit(...SAVE_SEQUENCE);
  const trapHltEnd = at;
  const stubOffset = new Int32Array(IDT_ENTRIES);
  for (let v = 0; v < IDT_ENTRIES; v++) {
    stubOffset[v] = at;
    if (!vectorHasErrorCode(v)) emit(OP_PUSH_IMM8, 0);
    emit(OP_PUSH_IMM32, v, v >>> 8, 0, 0);
    const rel = saveOffset - (at + 5);
    emit(OP_JMP_REL32, rel, rel >> 8, rel >> 16, rel >> 24);
  }
  if (at > 4096) throw new Error(`the Switcher does not fit in a page (${at} bytes)`);
  return { bytes, stubOffset, returnOffset, trapHltEnd };
}

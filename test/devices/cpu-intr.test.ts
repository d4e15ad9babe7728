/**
 * The CPU's external-interrupt input as bare mode's interrupt controllers use it (emulator/cpu.ts
 * `pendingIrq` as the INTR line, `intrAck` as the acknowledge): taken at instruction boundaries while
 * IF = 1, one instruction late after STI (the interrupt shadow), waking HLT, the vector asked for only
 * when the CPU takes the interrupt. Interpreter and block compiler.
 */
import { describe, expect, it } from 'vitest';
import { CPU } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { IF } from '../../emulator/constants.ts';

const EBX = 3, ECX = 1, EDX = 2;

/** A flat machine: GDT at 0x3000 (code 0x08, data 0x10), IDT at 0x2000 with vector 0x30 -> 0x1800
 *  (`inc ebx; iret`), `code` at 0x1000; OUT to port 0x80 raises INTR. */
function machine(code: number[], jit: boolean) {
  const mem = new PhysicalMemory(1 << 20);
  const cpu = new CPU(mem, 0, { codeSlots: 16 });
  cpu.resetFlat(0);
  cpu.jitThreshold = jit ? 1 : 0;
  const dv = new DataView(mem.sab);
  dv.setUint32(0x3008, 0x0000ffff, true); dv.setUint32(0x300c, 0x00cf9b00, true);
  dv.setUint32(0x3010, 0x0000ffff, true); dv.setUint32(0x3014, 0x00cf9300, true);
  cpu.gdtBase = 0x3000; cpu.gdtLimit = 0x17;
  cpu.idtBase = 0x2000; cpu.idtLimit = 0x7ff;
  dv.setUint32(0x2000 + 0x30 * 8, 0x00081800, true); dv.setUint32(0x2004 + 0x30 * 8, 0x00008e00, true);
  mem.writeBytes(0x1800, Uint8Array.from([0x43, 0xcf])); // inc ebx; iret
  mem.writeBytes(0x1000, Uint8Array.from(code));
  cpu.eip = 0x1000;
  cpu.r32[4] = 0x8000;
  let acks = 0;
  cpu.intrAck = () => { acks++; return 0x30; };
  cpu.io = { in: () => 0xff, out: (port) => { if (port === 0x80) { cpu.pendingIrq = 0; cpu.stop = 1; } } };
  return { cpu, acks: () => acks };
}

const OUT80 = [0xe6, 0x80], STI = [0xfb], HLT = [0xf4], NOP = [0x90];
const MOV_ECX_EBX = [0x89, 0xd9], MOV_EDX_EBX = [0x89, 0xda];

for (const jit of [false, true]) {
  describe(`external interrupts (${jit ? 'block compiler' : 'interpreter'})`, () => {
    it('held while IF = 0; after STI, taken after exactly one more instruction', () => {
      const { cpu, acks } = machine([...OUT80, ...NOP, ...NOP, ...STI, ...MOV_ECX_EBX, ...MOV_EDX_EBX, ...HLT], jit);
      expect(cpu.run(1000)).toBe(ExitReason.Hlt);
      expect(acks()).toBe(1);
      expect(cpu.r32[EBX]).toBe(1);
      expect(cpu.r32[ECX]).toBe(0); // the instruction in STI's shadow ran first
      expect(cpu.r32[EDX]).toBe(1); // the next one after the handler
    });
    it('raised in the middle of a block with IF = 1: taken right after the instruction that raised it', () => {
      const { cpu } = machine([...STI, ...NOP, ...NOP, ...OUT80, ...MOV_ECX_EBX, ...HLT], jit);
      cpu.run(1000);
      expect(cpu.r32[ECX]).toBe(1);
    });
    it('wakes HLT: the handler runs and returns after the HLT', () => {
      const { cpu } = machine([...STI, ...NOP, ...HLT, ...MOV_ECX_EBX, ...HLT], jit);
      expect(cpu.run(1000)).toBe(ExitReason.Hlt);
      expect(cpu.halted).toBe(true);
      cpu.pendingIrq = 0;
      expect(cpu.run(1000)).toBe(ExitReason.Hlt);
      expect(cpu.r32[EBX]).toBe(1);
      expect(cpu.r32[ECX]).toBe(1);
      expect(cpu.eip).toBe(0x1000 + 1 + 1 + 1 + 2 + 1);
    });
    it('a line dropped before the CPU takes it is not acknowledged', () => {
      const { cpu, acks } = machine([...OUT80, ...NOP, ...HLT], jit);
      cpu.run(1000);
      cpu.pendingIrq = -1;
      cpu.flags |= IF;
      cpu.run(1000);
      expect(acks()).toBe(0);
    });
  });
}

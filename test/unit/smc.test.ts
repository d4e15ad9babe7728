/**
 * Self-modifying code stays correct: decoded blocks (and compiled ones) are thrown away when the bytes
 * they came from are written, by the running code itself or by the Host.
 */
import { describe, expect, it } from 'vitest';
import { CPU } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';

function machine(code: number[], jit: boolean) {
  const mem = new PhysicalMemory(1 << 20);
  const cpu = new CPU(mem, 0, { codeSlots: 16 });
  cpu.resetFlat(0);
  cpu.jitThreshold = jit ? 4 : 0;
  mem.writeBytes(0x1000, Uint8Array.from(code));
  cpu.eip = 0x1000;
  cpu.r32[4] = 0x8000;
  return { mem, cpu };
}

function runToHlt(cpu: CPU): void {
  expect(cpu.run(1_000_000)).toBe(ExitReason.Hlt);
}

for (const jit of [false, true]) {
  describe(`self-modifying code (${jit ? 'block compiler' : 'interpreter'})`, () => {
    it('a store into the next instruction of the same block takes effect', () => {
      const { cpu } = machine([
        0xc6, 0x05, 0x08, 0x10, 0x00, 0x00, 0x07, // mov byte [0x1008], 7   (the immediate below)
        0xb8, 0x01, 0x00, 0x00, 0x00, //             mov eax, 1   -> becomes mov eax, 7
        0xf4, //                                     hlt
      ], jit);
      runToHlt(cpu);
      expect(cpu.r32[0]).toBe(7);
    });

    it('a loop that ran hot (and was compiled) is patched and runs the new code', () => {
      const { cpu } = machine([
        0xb9, 0x64, 0x00, 0x00, 0x00, //             mov ecx, 100
        0xbb, 0x00, 0x00, 0x00, 0x00, //             mov ebx, 0
        0xb8, 0x01, 0x00, 0x00, 0x00, // 0x100a loop: mov eax, 1
        0x49, //                                     dec ecx
        0x75, 0xf8, //                               jnz loop
        0x85, 0xdb, //                               test ebx, ebx
        0x75, 0x0f, //                               jnz done
        0xc6, 0x05, 0x0b, 0x10, 0x00, 0x00, 0x02, // mov byte [0x100b], 2
        0x43, //                                     inc ebx
        0xb9, 0x01, 0x00, 0x00, 0x00, //             mov ecx, 1
        0xeb, 0xe5, //                               jmp loop
        0xf4, //                              done:  hlt
      ], jit);
      runToHlt(cpu);
      expect(cpu.r32[0]).toBe(2);
      expect(cpu.r32[3]).toBe(1);
      if (jit) expect(cpu.blkFn.some((f) => f !== undefined)).toBe(true);
    });

    it('code rewritten by the Host between runs is seen', () => {
      const { mem, cpu } = machine([
        0xb8, 0x05, 0x00, 0x00, 0x00, // mov eax, 5
        0xf4, //                         hlt
      ], jit);
      for (let i = 0; i < 10; i++) {
        cpu.eip = 0x1000;
        runToHlt(cpu);
      }
      expect(cpu.r32[0]).toBe(5);
      mem.write8(0x1001, 9); // the Host's checked write tells the code cache
      cpu.eip = 0x1000;
      runToHlt(cpu);
      expect(cpu.r32[0]).toBe(9);
    });

    it('an instruction straddling two pages runs hot, then its second half is patched', () => {
      // mov eax, imm32 at 0x1ffd: opcode and one immediate byte in page 1, the rest in page 2
      const { mem, cpu } = machine([], jit);
      const code = [
        0xb9, 0x64, 0x00, 0x00, 0x00, //                  mov ecx, 100
        0xe9, 0xf3, 0x0f, 0x00, 0x00, //                  jmp 0x1ffd
      ];
      mem.writeBytes(0x1000, Uint8Array.from(code));
      mem.writeBytes(0x1100, Uint8Array.from([
        0xc6, 0x05, 0x01, 0x20, 0x00, 0x00, 0x55, // mov byte [0x2001], 0x55
        0xb9, 0x01, 0x00, 0x00, 0x00, //             mov ecx, 1
        0xe9, 0xec, 0x0e, 0x00, 0x00, //             jmp 0x1ffd
      ]));
      mem.writeBytes(0x1ffd, Uint8Array.from([
        0xb8, 0x11, 0x22, 0x33, 0x44, // 0x1ffd loop: mov eax, 0x44332211 (straddles 0x2000)
        0x49, //                                      dec ecx
        0x75, 0xf8, //                                jnz loop
        0xf4, //                                      hlt
      ]));
      runToHlt(cpu);
      expect(cpu.r32[0] >>> 0).toBe(0x44332211);
      mem.write8(0x2001, 0x99); // the Host patches the last immediate byte, in the second page
      cpu.eip = 0x1000;
      runToHlt(cpu);
      expect(cpu.r32[0] >>> 0).toBe(0x99332211);
      // and now the guest code patches it itself (its routine was written before any of this ran)
      cpu.eip = 0x1100;
      runToHlt(cpu);
      expect(cpu.r32[0] >>> 0).toBe(0x55332211);
    });

    it('data written next to code does not disturb the code', () => {
      const { cpu } = machine([
        0xb9, 0xe8, 0x03, 0x00, 0x00, //             mov ecx, 1000
        0x89, 0x0d, 0x00, 0x18, 0x00, 0x00, // 0x1005: mov [0x1800], ecx   (same page, other chunk)
        0x49, //                                     dec ecx
        0x75, 0xf7, //                               jnz 0x1005
        0xa1, 0x00, 0x18, 0x00, 0x00, //             mov eax, [0x1800]
        0xf4, //                                     hlt
      ], jit);
      runToHlt(cpu);
      expect(cpu.r32[0]).toBe(1);
    });
  });
}

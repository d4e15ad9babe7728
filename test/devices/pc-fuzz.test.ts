/**
 * Nothing a kernel does to the PC's devices throws (devices/pc.ts): seeded random port accesses of every
 * size over every decoded port, MMIO bytes over both APIC pages, APIC base MSR writes and the clock
 * moving on, on a real CPU attached (so interrupts are raised and acknowledged as in a run).
 */
import { describe, expect, it } from 'vitest';
import { CPU } from '../../emulator/cpu.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { VirtualClock } from '../../devices/clock.ts';
import { PcDevices } from '../../devices/pc.ts';

const PORTS = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x60, 0x64, 0x70, 0x71,
  0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x3c2, 0x3cc, 0x3d4, 0x3d5, 0x3da, 0x510, 0x511, 0xe9, 0x80, 0x2f8];

describe('the PC under random programming', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: 50,000 accesses, no exception, INTR and acknowledge stay consistent`, () => {
      let t = 0;
      const mem = new PhysicalMemory(1 << 20);
      const cpu = new CPU(mem, 0, { codeSlots: 16 });
      const clock = new VirtualClock('icount', () => t);
      const out: number[] = [];
      const pc = new PcDevices({ memBytes: 1 << 20, clock, serial: (b) => out.push(b), debugcon: (b) => out.push(b), stop: () => {}, reset: () => {} });
      pc.attach(cpu);
      let x = seed * 2654435761 >>> 0;
      const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
      for (let i = 0; i < 50_000; i++) {
        const r = rnd();
        const size = ([1, 1, 1, 2, 4] as const)[r % 5];
        const port = PORTS[(r >>> 3) % PORTS.length];
        switch ((r >>> 10) % 8) {
          case 0: case 1: pc.out(port, size, rnd()); break;
          case 2: case 3: {
            const v = pc.in(port, size);
            expect(Number.isInteger(v)).toBe(true);
            break;
          }
          case 4: { const base = (r & 1) ? 0xfee00000 : 0xfec00000; pc.write8(base + (rnd() & 0x3ff), rnd() & 0xff); break; }
          case 5: { const base = (r & 1) ? 0xfee00000 : 0xfec00000; const v = pc.read8(base + (rnd() & 0x3ff)); expect(v).toBeGreaterThanOrEqual(0); expect(v).toBeLessThan(256); break; }
          case 6: t += rnd() % 100_000; clock.poll(); break;
          default:
            if ((r >>> 13) % 50 === 0) pc.wrmsr(0x1b, (rnd() & 0xfffff000) | 0x900, 0);
            if (cpu.pendingIrq >= 0) {
              const v = cpu.intrAck!();
              expect(v).toBeGreaterThanOrEqual(0);
              expect(v).toBeLessThan(256);
            }
        }
      }
    });
  }
});

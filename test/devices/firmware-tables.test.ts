/** The ACPI (RSDP, RSDT, MADT) and MP tables of the bare machine (devices/firmware-tables.ts), found and
 *  parsed the way kernels do: a 16-byte aligned scan of 0xE0000-0xFFFFF, checksums, the entries. */
import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { writeFirmwareTables } from '../../devices/firmware-tables.ts';

const mem = new PhysicalMemory(2 << 20);
writeFirmwareTables(mem, 1);
const u8 = mem.u8;
const u32 = (a: number) => (u8[a] | (u8[a + 1] << 8) | (u8[a + 2] << 16) | (u8[a + 3] << 24)) >>> 0;
const sig = (a: number, n: number) => String.fromCharCode(...u8.subarray(a, a + n));
const sum = (a: number, n: number) => u8.subarray(a, a + n).reduce((s, b) => (s + b) & 0xff, 0);
const scan = (s: string) => { for (let a = 0xe0000; a < 0x100000; a += 16) if (sig(a, s.length) === s) return a; return -1; };

describe('firmware tables', () => {
  it('ACPI: RSDP -> RSDT -> MADT with one local APIC, the I/O APIC, IRQ 0 -> GSI 2', () => {
    const rsdp = scan('RSD PTR ');
    expect(rsdp).toBeGreaterThan(0);
    expect(sum(rsdp, 20)).toBe(0);
    const rsdt = u32(rsdp + 16);
    expect(sig(rsdt, 4)).toBe('RSDT');
    expect(sum(rsdt, u32(rsdt + 4))).toBe(0);
    const madt = u32(rsdt + 36);
    expect(sig(madt, 4)).toBe('APIC');
    const len = u32(madt + 4);
    expect(sum(madt, len)).toBe(0);
    expect(u32(madt + 36)).toBe(0xfee00000);
    const types: number[][] = [];
    for (let p = madt + 44; p < madt + len; p += u8[p + 1]) types.push([...u8.subarray(p, p + u8[p + 1])]);
    expect(types.filter((e) => e[0] === 0)).toEqual([[0, 8, 0, 0, 1, 0, 0, 0]]);
    const io = types.find((e) => e[0] === 1)!;
    expect(io.slice(4, 8)).toEqual([0, 0, 0xc0, 0xfe]);
    expect(types.find((e) => e[0] === 2)).toEqual([2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
  });
  it('MP: the floating pointer and a PCMP table with one processor (BSP), the I/O APIC and IRQ 0 on pin 2', () => {
    const mpf = scan('_MP_');
    expect(mpf).toBeGreaterThan(0);
    expect(sum(mpf, 16)).toBe(0);
    const cfg = u32(mpf + 4);
    expect(sig(cfg, 4)).toBe('PCMP');
    const len = u8[cfg + 4] | (u8[cfg + 5] << 8);
    expect(sum(cfg, len)).toBe(0);
    const count = u8[cfg + 34] | (u8[cfg + 35] << 8);
    const sizes = [20, 8, 8, 8, 8];
    const entries: number[][] = [];
    for (let p = cfg + 44, i = 0; i < count; i++) { entries.push([...u8.subarray(p, p + sizes[u8[p]])]); p += sizes[u8[p]]; }
    expect(entries.filter((e) => e[0] === 0).map((e) => e[3])).toEqual([3]); // enabled | BSP
    expect(entries.find((e) => e[0] === 2)!.slice(4, 8)).toEqual([0, 0, 0xc0, 0xfe]);
    expect(entries.find((e) => e[0] === 3 && e[5] === 0)![7]).toBe(2);
  });
});

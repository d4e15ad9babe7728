/**
 * The tables kernels use to find CPUs and the I/O APIC, as SeaBIOS provides them under QEMU: an ACPI
 * RSDP (revision 0) -> RSDT -> MADT, and an Intel MultiProcessor table (floating pointer "_MP_" and a
 * "PCMP" configuration table, spec 1.4), in the BIOS area at 0xF0000 where kernels search for them
 * (16-byte aligned, checksums valid). They describe the bare machine: `cpus` local APICs (IDs 0..n-1),
 * the I/O APIC at 0xFEC00000 with GSI base 0 (ID 0 in the MADT, as QEMU's; ID `cpus` in the MP table,
 * as SeaBIOS's), ISA IRQ 0 on GSI 2 (an interrupt source override / I/O interrupt entry), LINT0
 * ExtINT and LINT1 NMI on every CPU.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { APIC_BASE_DEFAULT } from './lapic.ts';
import { IOAPIC_BASE } from './ioapic.ts';

export const TABLES_BASE = 0xf0000;
export const TABLES_SIZE = 0x1000;
const OEM = 'LGTSTS';

class Writer {
  readonly b = new Uint8Array(TABLES_SIZE);
  at = 0;
  u8(v: number) { this.b[this.at++] = v & 0xff; }
  u16(v: number) { this.u8(v); this.u8(v >> 8); }
  u32(v: number) { this.u16(v & 0xffff); this.u16(v >>> 16); }
  str(s: string, n = s.length) { for (let i = 0; i < n; i++) this.u8(i < s.length ? s.charCodeAt(i) : 0x20); }
  align(n: number) { while (this.at % n !== 0) this.u8(0); }
  /** Set the byte at `pos` so that bytes [start, end) sum to 0. */
  checksum(start: number, end: number, pos: number) {
    let s = 0;
    for (let i = start; i < end; i++) if (i !== pos) s += this.b[i];
    this.b[pos] = (256 - (s & 0xff)) & 0xff;
  }
  /** An ACPI table header; returns its start (length and checksum are patched by endAcpi). */
  acpiHeader(sig: string): number {
    const start = this.at;
    this.str(sig); this.u32(0); this.u8(1); this.u8(0); this.str(OEM, 6); this.str('LGTSBARE', 8); this.u32(1);
    this.str('LGTS', 4); this.u32(1);
    return start;
  }
  endAcpi(start: number) {
    const len = this.at - start;
    this.b[start + 4] = len & 0xff; this.b[start + 5] = (len >> 8) & 0xff;
    this.checksum(start, this.at, start + 9);
  }
}

/** Write the tables into memory at TABLES_BASE. */
export function writeFirmwareTables(mem: PhysicalMemory, cpus: number): void {
  const w = new Writer();
  const addr = (off: number) => TABLES_BASE + off;
  const ioapicId = cpus; // the MP table's (SeaBIOS)

  // ACPI: RSDP, RSDT, MADT
  const rsdp = w.at;
  w.str('RSD PTR '); w.u8(0); w.str(OEM, 6); w.u8(0); const rsdtPtr = w.at; w.u32(0);
  w.align(16);
  const madt = w.acpiHeader('APIC');
  w.u32(APIC_BASE_DEFAULT); w.u32(1); // PCAT_COMPAT: 8259s present
  for (let i = 0; i < cpus; i++) { w.u8(0); w.u8(8); w.u8(i); w.u8(i); w.u32(1); }
  w.u8(1); w.u8(12); w.u8(0); w.u8(0); w.u32(IOAPIC_BASE); w.u32(0);
  w.u8(2); w.u8(10); w.u8(0); w.u8(0); w.u32(2); w.u16(0); // ISA IRQ 0 -> GSI 2
  w.u8(4); w.u8(6); w.u8(0xff); w.u16(0); w.u8(1); // LINT1 of every CPU: NMI
  w.endAcpi(madt);
  w.align(16);
  const rsdt = w.acpiHeader('RSDT');
  w.u32(addr(madt));
  w.endAcpi(rsdt);
  w.b.set([addr(rsdt) & 0xff, (addr(rsdt) >> 8) & 0xff, (addr(rsdt) >> 16) & 0xff, addr(rsdt) >>> 24], rsdtPtr);
  w.checksum(rsdp, rsdp + 20, rsdp + 8);
  w.align(16);

  // MP: floating pointer, then the configuration table
  const mpf = w.at;
  w.str('_MP_'); const cfgPtr = w.at; w.u32(0); w.u8(1); w.u8(4); w.u8(0); w.u8(0); w.u32(0);
  w.checksum(mpf, mpf + 16, mpf + 10);
  const cfg = w.at;
  w.str('PCMP'); w.u16(0); w.u8(4); w.u8(0); w.str('LGTS    ', 8); w.str('BARE        ', 12);
  w.u32(0); w.u16(0); const countPos = w.at; w.u16(0); w.u32(APIC_BASE_DEFAULT); w.u16(0); w.u8(0); w.u8(0);
  let entries = 0;
  for (let i = 0; i < cpus; i++) { w.u8(0); w.u8(i); w.u8(0x14); w.u8(i === 0 ? 3 : 1); w.u32(0x600); w.u32(0x201); w.u32(0); w.u32(0); entries++; }
  w.u8(1); w.u8(0); w.str('ISA   ', 6); entries++;
  w.u8(2); w.u8(ioapicId); w.u8(0x20); w.u8(1); w.u32(IOAPIC_BASE); entries++;
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue;
    w.u8(3); w.u8(0); w.u16(0); w.u8(0); w.u8(irq); w.u8(ioapicId); w.u8(irq === 0 ? 2 : irq); entries++;
  }
  w.u8(4); w.u8(3); w.u16(0); w.u8(0); w.u8(0); w.u8(0xff); w.u8(0); entries++; // ExtINT -> LINT0
  w.u8(4); w.u8(1); w.u16(0); w.u8(0); w.u8(0); w.u8(0xff); w.u8(1); entries++; // NMI -> LINT1
  const len = w.at - cfg;
  w.b[cfg + 4] = len & 0xff; w.b[cfg + 5] = len >> 8;
  w.b[countPos] = entries & 0xff; w.b[countPos + 1] = entries >> 8;
  w.checksum(cfg, w.at, cfg + 7);
  w.b.set([addr(cfg) & 0xff, (addr(cfg) >> 8) & 0xff, (addr(cfg) >> 16) & 0xff, addr(cfg) >>> 24], cfgPtr);
  w.checksum(mpf, mpf + 16, mpf + 10);
  mem.writeBytes(TABLES_BASE, w.b.subarray(0, w.at));
}

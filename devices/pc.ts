/**
 * The bare-mode PC (docs/design.md, "Two ways to boot"): every device a Multiboot kernel sees
 * with `run --bare`, wired as QEMU's pc machine wires them, in the state SeaBIOS hands over to
 * QEMU's `-kernel` loader. One file per device; this one routes ports, MMIO, the MSR and interrupts.
 *
 * | ports / addresses | device | file |
 * |---|---|---|
 * | 0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1 | 8259A pair (IRQ 0-15) | pic.ts |
 * | 0x40-0x43, 0x61 | 8254 PIT (IRQ 0), channel 2 gate/output | pit.ts |
 * | 0x60, 0x64 | 8042 + PS/2 keyboard (IRQ 1) | ps2.ts |
 * | 0x70-0x71 | CMOS RTC (IRQ 8) | rtc.ts |
 * | 0x3F8-0x3FF | 16550A COM1 (IRQ 4); absent with `--serial none` | uart.ts |
 * | 0x3C2, 0x3CC, 0x3D4-0x3D5, 0x3DA, 0xB8000 | VGA text mode | vga.ts |
 * | 0x510-0x511 | QEMU fw_cfg | fw-cfg.ts |
 * | 0xE9 | isa-debugcon (reads 0xE9); absent with `--debugcon none` | here |
 * | 0xF4 | isa-debug-exit: a write of v ends the run with status (v << 1) \| 1 | here |
 * | 0xFEE00000, MSR 0x1B | local APIC | lapic.ts |
 * | 0xFEC00000 | I/O APIC (ISA IRQ n on pin n, IRQ 0 on pin 2) | ioapic.ts |
 *
 * Other ports read all ones and drop writes; other addresses beyond RAM read all ones. A 16- or 32-bit
 * access to a byte-wide device is split into byte accesses at consecutive ports, as QEMU splits them.
 * Interrupts: the CPU's INTR is asserted while the local APIC has a deliverable vector or the 8259's
 * output is high and reaches the CPU through LINT0; the acknowledge asks the APIC first, then the 8259.
 */
import type { CPU, IoBus, MmioBus, MsrBus } from '../emulator/cpu.ts';
import { EAX, EDX } from '../emulator/constants.ts';
import type { VirtualClock } from './clock.ts';
import { PicPair } from './pic.ts';
import { Pit } from './pit.ts';
import { Rtc } from './rtc.ts';
import { Uart } from './uart.ts';
import { Ps2 } from './ps2.ts';
import { Vga } from './vga.ts';
import { FwCfg } from './fw-cfg.ts';
import { LocalApic, MSR_APIC_BASE } from './lapic.ts';
import { IoApic, IOAPIC_BASE } from './ioapic.ts';

export const PORT_DEBUGCON = 0xe9;
export const PORT_DEBUG_EXIT = 0xf4;
export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;

/** The exit status isa-debug-exit gives for a write of `value`. */
export function debugExitStatus(value: number): number {
  return ((value << 1) | 1) >>> 0;
}

export interface PcOptions {
  memBytes: number;
  cpus?: number;
  clock: VirtualClock;
  /** COM1's transmitted bytes; null: no COM1 at all (`--serial none`). */
  serial: ((byte: number) => void) | null;
  /** Port 0xE9's bytes; null: no debugcon (`--debugcon none`). */
  debugcon: ((byte: number) => void) | null;
  /** VGA ports present (`--vga` not none). */
  vga?: boolean;
  /** isa-debug-exit was written. */
  stop: () => void;
  /** The machine asked for a reset (8042 pulse). */
  reset: () => void;
  /** The RTC's time at boot (ms since the epoch; default the host's clock). */
  rtcBaseMs?: number;
}

export class PcDevices implements IoBus, MmioBus, MsrBus {
  /** Set when the guest wrote to isa-debug-exit: the value it wrote. */
  exitValue: number | undefined = undefined;
  readonly pic: PicPair;
  readonly pit: Pit;
  readonly rtc: Rtc;
  readonly uart: Uart | null;
  readonly ps2: Ps2;
  readonly vga: Vga | null;
  readonly fwcfg: FwCfg;
  readonly lapic: LocalApic;
  readonly ioapic: IoApic;
  private cpu: CPU | null = null;
  private readonly debugcon: ((byte: number) => void) | null;
  private readonly stop: () => void;

  constructor(opts: PcOptions) {
    const clock = opts.clock;
    const now = () => clock.now();
    this.stop = opts.stop;
    this.debugcon = opts.debugcon;
    this.pic = new PicPair(() => this.updateIntr());
    this.lapic = new LocalApic(now, () => this.updateIntr(), (v) => this.ioapic.eoi(v));
    this.ioapic = new IoApic(this.lapic);
    this.pit = new Pit((l) => this.isaIrq(0, l), now);
    this.rtc = new Rtc((l) => this.isaIrq(8, l), now, { memBytes: opts.memBytes, cpus: opts.cpus, baseMs: opts.rtcBaseMs });
    this.uart = opts.serial === null ? null : new Uart(opts.serial, (l) => this.isaIrq(COM1_IRQ, l));
    this.ps2 = new Ps2((l) => this.isaIrq(1, l), opts.reset);
    this.vga = opts.vga === false ? null : new Vga();
    this.fwcfg = new FwCfg({ memBytes: opts.memBytes, cpus: opts.cpus ?? 1 });
    clock.add(this.pit);
    clock.add(this.rtc);
    clock.add(this.lapic);
  }

  /** Connect the CPU: its INTR input and acknowledge, MMIO beyond RAM, the APIC MSR, CPUID's APIC bit. */
  attach(cpu: CPU): void {
    this.cpu = cpu;
    cpu.io = this;
    cpu.mmio = this;
    cpu.msrs = this;
    cpu.apicPresent = true;
    cpu.intrAck = () => this.acknowledge();
    this.updateIntr();
  }

  /** Drive ISA interrupt line `irq` (to the 8259 and the I/O APIC). */
  isaIrq(irq: number, level: boolean): void {
    this.pic.setIrq(irq, level);
    this.ioapic.setIrq(IoApic.gsi(irq), level);
  }

  private updateIntr(): void {
    const c = this.cpu;
    if (c === null) return;
    const line = this.lapic.pending() || (this.pic.intr && this.lapic.acceptsPic());
    if (line && c.pendingIrq < 0) {
      c.pendingIrq = 0;
      c.stop = 1; // end the current block, so the run loop looks at INTR
    } else if (!line) c.pendingIrq = -1;
  }

  private acknowledge(): number {
    const v = this.lapic.acknowledge();
    if (v >= 0) return v;
    return this.pic.acknowledge();
  }

  // ---- ports ----
  private in8(port: number): number {
    if (port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1 || port === 0x4d0 || port === 0x4d1) return this.pic.in(port);
    if ((port >= 0x40 && port <= 0x43) || port === 0x61) return this.pit.in(port);
    if (port === 0x60 || port === 0x64) return this.ps2.in(port);
    if (port === 0x70 || port === 0x71) return this.rtc.in(port);
    if (port >= COM1_BASE && port <= COM1_BASE + 7 && this.uart !== null) return this.uart.in(port - COM1_BASE);
    if (port >= 0x3c0 && port <= 0x3df && this.vga !== null) return this.vga.in(port);
    if (port === 0x510 || port === 0x511) return this.fwcfg.in(port, 1);
    if (port === PORT_DEBUGCON && this.debugcon !== null) return PORT_DEBUGCON;
    return 0xff;
  }

  private out8(port: number, v: number): void {
    if (port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1 || port === 0x4d0 || port === 0x4d1) {
      this.pic.out(port, v);
      // a kernel that set up the 8259 itself and unmasked IRQ 1 wants the keyboard
      if (port === 0x21 && this.pic.reprogrammed && this.pic.master.initState === 0 && (v & 2) === 0) this.ps2.used = true;
    } else if ((port >= 0x40 && port <= 0x43) || port === 0x61) this.pit.out(port, v);
    else if (port === 0x60 || port === 0x64) this.ps2.out(port, v);
    else if (port === 0x70 || port === 0x71) this.rtc.out(port, v);
    else if (port >= COM1_BASE && port <= COM1_BASE + 7 && this.uart !== null) this.uart.out(port - COM1_BASE, v);
    else if (port >= 0x3c0 && port <= 0x3df && this.vga !== null) this.vga.out(port, v);
    else if (port === 0x510 || port === 0x511) this.fwcfg.out(port, v);
    else if (port === PORT_DEBUGCON && this.debugcon !== null) this.debugcon(v);
  }

  in(port: number, size: 1 | 2 | 4): number {
    if (size === 1) return this.in8(port);
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.in8((port + i) & 0xffff) << (8 * i);
    return size === 4 ? v | 0 : v;
  }

  out(port: number, size: 1 | 2 | 4, value: number): void {
    if (port === PORT_DEBUG_EXIT) {
      // QEMU's device takes the whole value written, whatever the access size
      this.exitValue = size === 4 ? value >>> 0 : value & (size === 1 ? 0xff : 0xffff);
      this.stop();
      return;
    }
    if (port === 0x510 && size >= 2) { this.fwcfg.out(0x510, value & 0xffff); return; }
    if (port === PORT_DEBUGCON) { this.out8(port, value & 0xff); return; } // debugcon takes the low byte
    for (let i = 0; i < size; i++) this.out8((port + i) & 0xffff, (value >>> (8 * i)) & 0xff);
  }

  // ---- beyond RAM ----
  read8(pa: number): number {
    const b = this.lapic.base;
    if (this.lapic.msrEnabled && pa >= b && pa < b + 0x1000) return this.lapic.read8(pa - b);
    if (pa >= IOAPIC_BASE && pa < IOAPIC_BASE + 0x20) return this.ioapic.read8(pa - IOAPIC_BASE);
    return 0xff;
  }

  write8(pa: number, v: number): void {
    const b = this.lapic.base;
    if (this.lapic.msrEnabled && pa >= b && pa < b + 0x1000) this.lapic.write8(pa - b, v);
    else if (pa >= IOAPIC_BASE && pa < IOAPIC_BASE + 0x20) this.ioapic.write8(pa - IOAPIC_BASE, v);
  }

  rdmsr(n: number, r32: Int32Array): boolean {
    if (n !== MSR_APIC_BASE) return false;
    r32[EAX] = this.lapic.readMsr() | 0;
    r32[EDX] = 0;
    return true;
  }

  wrmsr(n: number, lo: number, hi: number): boolean {
    if (n !== MSR_APIC_BASE || hi !== 0 || (lo & 0x6ff) !== 0) return false; // reserved bits: #GP
    this.lapic.writeMsr(lo >>> 0);
    return true;
  }
}

/**
 * The console both output ports share when both go to stdout: every byte is printed, except a byte on
 * one port that repeats what the other port printed and this one has not yet (so a kernel that writes
 * each character to COM1 and 0xE9 prints it once, whether it alternates per character or per string).
 * Bytes of the other port not yet repeated are remembered up to 4096; a byte that differs forgets them.
 */
export class SharedConsole {
  private pend: number[] = [];
  private head = 0;
  private pendPort = -1;

  constructor(private readonly sink: (byte: number) => void) {}

  write(port: number, b: number): void {
    if (this.pendPort !== port && this.head < this.pend.length) {
      if (this.pend[this.head] === b) {
        this.head++;
        return;
      }
    }
    if (this.pendPort !== port) {
      this.pend = [];
      this.head = 0;
      this.pendPort = port;
    }
    if (this.pend.length - this.head >= 4096) this.head++;
    if (this.head > 4096) { this.pend = this.pend.slice(this.head); this.head = 0; }
    this.pend.push(b);
    this.sink(b);
  }
}

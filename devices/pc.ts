/**
 * The bare-mode PC test devices (docs/design.md, "Two ways to boot"): the whole device model a
 * Multiboot kernel sees with `run --bare`.
 *
 * - port 0xE9: QEMU's isa-debugcon (Bochs' "port E9 hack"): a byte written appears on the console; a
 *   read returns 0xE9, which is how kernels detect it.
 * - ports 0x3F8-0x3FF: COM1, a 16550 UART reduced to its transmit path. A write to THR goes to the same
 *   console; LSR always says the transmitter is empty (THRE and TEMT); the other registers hold what is
 *   written to them and do nothing, so a driver's initialisation (divisor latch, FIFO control) is harmless.
 * - port 0xF4: QEMU's isa-debug-exit: a write of v ends the run with exit status (v << 1) | 1.
 * - the 8259 PICs (0x20/0x21, 0xA0/0xA1): writes ignored, so kernels may mask them.
 * Reads of any other port return all ones (nothing answers on the bus); writes are dropped.
 */
import type { IoBus } from '../emulator/cpu.ts';

export const PORT_DEBUGCON = 0xe9;
export const PORT_DEBUG_EXIT = 0xf4;
export const COM1_BASE = 0x3f8;
const COM1_LAST = COM1_BASE + 7;

// 16550 register offsets from the base, and the bits we model.
const UART_THR = 0; // transmit holding register (write, DLAB = 0); receive buffer on read
const UART_IIR = 2; // interrupt identification (read); FIFO control on write
const UART_LCR = 3; // line control: bit 7 = DLAB (divisor latch access)
const UART_LSR = 5; // line status
const LCR_DLAB = 0x80;
const IIR_NO_INTERRUPT = 0x01;
const LSR_THRE = 0x20; // transmit holding register empty
const LSR_TEMT = 0x40; // transmitter empty
/** The line status the UART always reports: nothing received, transmitter idle. */
export const UART_LSR_VALUE = LSR_THRE | LSR_TEMT;

/** The exit status isa-debug-exit gives for a write of `value`. */
export function debugExitStatus(value: number): number {
  return ((value << 1) | 1) >>> 0;
}

export class PcDevices implements IoBus {
  /** Set when the guest wrote to isa-debug-exit: the value it wrote. */
  exitValue: number | undefined = undefined;
  /** The UART's registers other than THR/LSR (scratch, IER, FCR, LCR, MCR, divisor latch). */
  private readonly uart = new Uint8Array(8);
  private readonly divisor = new Uint8Array(2);

  /**
   * @param console receives every byte the guest writes to the console ports
   * @param stop called when the guest asks to end the run (isa-debug-exit)
   */
  constructor(private readonly console: (byte: number) => void, private readonly stop: () => void) {}

  in(port: number, size: 1 | 2 | 4): number {
    const ones = size === 4 ? -1 : (1 << (size * 8)) - 1;
    if (port === PORT_DEBUGCON && size === 1) return PORT_DEBUGCON;
    if (port >= COM1_BASE && port <= COM1_LAST && size === 1) return this.uartRead(port - COM1_BASE);
    return ones;
  }

  out(port: number, size: 1 | 2 | 4, value: number): void {
    if (port === PORT_DEBUG_EXIT) {
      // QEMU's device takes the whole value written, whatever the access size
      this.exitValue = size === 4 ? value >>> 0 : value & (size === 1 ? 0xff : 0xffff);
      this.stop();
      return;
    }
    if (port === PORT_DEBUGCON) {
      this.console(value & 0xff);
      return;
    }
    if (port >= COM1_BASE && port <= COM1_LAST && size === 1) this.uartWrite(port - COM1_BASE, value & 0xff);
  }

  private uartRead(reg: number): number {
    const dlab = (this.uart[UART_LCR] & LCR_DLAB) !== 0;
    if (dlab && reg <= 1) return this.divisor[reg];
    if (reg === UART_LSR) return UART_LSR_VALUE;
    if (reg === UART_THR) return 0; // nothing is ever received
    if (reg === UART_IIR) return IIR_NO_INTERRUPT;
    return this.uart[reg];
  }

  private uartWrite(reg: number, v: number): void {
    const dlab = (this.uart[UART_LCR] & LCR_DLAB) !== 0;
    if (dlab && reg <= 1) this.divisor[reg] = v;
    else if (reg === UART_THR) this.console(v);
    else if (reg !== UART_LSR) this.uart[reg] = v;
  }
}

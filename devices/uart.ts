/**
 * A 16550A UART (COM1 at 0x3F8, IRQ 4), per the National PC16550D datasheet and QEMU's serial.c:
 * - RBR/THR, IER (4 bits), IIR/FCR, LCR (DLAB), MCR (5 bits; loopback), LSR, MSR, SCR; DLL/DLM.
 * - Transmission is instant: a byte written to THR goes to the output (or, in loopback, back into the
 *   receiver) and THRE/TEMT stay set; the THRE interrupt is pending after each write and when IER
 *   enables it while THR is empty, until IIR is read with it as the source or THR is written.
 * - 16-byte receive FIFO when FCR bit 0 is set (trigger level 1, 4, 8 or 14), a 1-byte RBR otherwise;
 *   a received byte with no room sets OE. Bytes from the input queue (stdin) enter the receiver only
 *   while there is room, so typing ahead is never lost. Interrupt priority as the datasheet's: line
 *   status, received data (at the trigger level) or character timeout (data below it), THRE, modem
 *   status. IRQ 4 follows "an interrupt is pending" (as QEMU's: OUT2 does not gate it).
 * - Reset state as QEMU + SeaBIOS leave it: divisor 12 (9600 baud), MCR = OUT2, MSR = DCD|DSR|CTS.
 */
const IER_RDI = 1, IER_THRI = 2, IER_RLSI = 4, IER_MSI = 8;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_BI = 0x10, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const MCR_LOOP = 0x10;
const FIFO_SIZE = 16;
const TRIGGER = [1, 4, 8, 14];

export class Uart {
  ier = 0;
  lcr = 0;
  mcr = 0x08;
  lsr = LSR_THRE | LSR_TEMT;
  msr = 0xb0;
  scr = 0;
  divisor = 12;
  fcr = 0;
  private rx: number[] = [];
  private thrPending = false;
  private timeoutPending = false;
  private irqLevel = false;
  /** Bytes waiting to be received (stdin). */
  private readonly input: number[] = [];
  /** Set once the guest reads RBR or enables the receive interrupt (bare.ts routes stdin here then). */
  used = false;

  /**
   * @param output receives every byte the guest transmits
   * @param irq drives IRQ 4
   */
  constructor(private readonly output: (byte: number) => void, private readonly irq: (level: boolean) => void) {}

  /** Queue bytes for the receiver. */
  feed(bytes: Iterable<number>): void {
    for (const b of bytes) this.input.push(b & 0xff);
    this.pump();
  }

  /** Bytes queued but not yet received. */
  get queued(): number {
    return this.input.length;
  }

  private fifo(): boolean {
    return (this.fcr & 1) !== 0;
  }

  private receive(b: number): void {
    const cap = this.fifo() ? FIFO_SIZE : 1;
    if (this.rx.length >= cap) {
      this.lsr |= LSR_OE;
      return;
    }
    this.rx.push(b);
    this.lsr |= LSR_DR;
    this.timeoutPending = true;
  }

  private pump(): void {
    const cap = this.fifo() ? FIFO_SIZE : 1;
    if ((this.mcr & MCR_LOOP) === 0) {
      while (this.input.length > 0 && this.rx.length < cap) this.receive(this.input.shift()!);
    }
    this.updateIrq();
  }

  /** The interrupt identification (bits 3-0), 1 = none. */
  private iid(): number {
    if ((this.ier & IER_RLSI) !== 0 && (this.lsr & (LSR_OE | 0x0c | LSR_BI)) !== 0) return 0x06;
    if ((this.ier & IER_RDI) !== 0 && this.rx.length > 0) {
      if (!this.fifo() || this.rx.length >= TRIGGER[this.fcr >> 6]) return 0x04;
      if (this.timeoutPending) return 0x0c;
    }
    if ((this.ier & IER_THRI) !== 0 && this.thrPending) return 0x02;
    if ((this.ier & IER_MSI) !== 0 && (this.msr & 0x0f) !== 0) return 0x00;
    return 0x01;
  }

  private updateIrq(): void {
    const on = this.iid() !== 0x01;
    if (on !== this.irqLevel) {
      this.irqLevel = on;
      this.irq(on);
    }
  }

  in(reg: number): number {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (reg) {
      case 0: {
        if (dlab) return this.divisor & 0xff;
        this.used = true;
        const v = this.rx.length > 0 ? this.rx.shift()! : 0;
        if (this.rx.length === 0) { this.lsr &= ~LSR_DR; this.timeoutPending = false; }
        this.pump();
        return v;
      }
      case 1: return dlab ? this.divisor >> 8 : this.ier;
      case 2: {
        const id = this.iid();
        if (id === 0x02) this.thrPending = false;
        this.updateIrq();
        return id | (this.fifo() ? 0xc0 : 0);
      }
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: {
        const v = this.lsr;
        this.lsr &= ~(LSR_OE | 0x0c | LSR_BI);
        this.updateIrq();
        return v;
      }
      case 6: {
        if ((this.mcr & MCR_LOOP) !== 0) {
          // loopback: CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2
          const m = this.mcr;
          return ((m & 2) << 3) | ((m & 1) << 5) | ((m & 4) << 4) | ((m & 8) << 4);
        }
        const v = this.msr;
        this.msr &= 0xf0; // reading clears the delta bits
        this.updateIrq();
        return v;
      }
      default: return this.scr;
    }
  }

  out(reg: number, v: number): void {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (reg) {
      case 0:
        if (dlab) { this.divisor = (this.divisor & 0xff00) | v; break; }
        if ((this.mcr & MCR_LOOP) !== 0) this.receive(v);
        else this.output(v);
        this.thrPending = true;
        break;
      case 1:
        if (dlab) { this.divisor = (this.divisor & 0xff) | (v << 8); break; }
        if ((v & IER_RDI) !== 0) this.used = true;
        if ((v & IER_THRI) !== 0 && (this.ier & IER_THRI) === 0) this.thrPending = true;
        this.ier = v & 0x0f;
        break;
      case 2: {
        const was = this.fcr & 1;
        if ((v & 1) !== was) this.rx = [];
        if ((v & 2) !== 0) { this.rx = []; this.timeoutPending = false; }
        this.fcr = v & 0xc9;
        if (this.rx.length === 0) this.lsr &= ~LSR_DR;
        break;
      }
      case 3: this.lcr = v; break;
      case 4: this.mcr = v & 0x1f; break;
      case 5: break; // LSR: factory test only
      case 6: break;
      default: this.scr = v; break;
    }
    this.pump();
  }
}

/**
 * The two cascaded Intel 8259A programmable interrupt controllers of the PC (master at 0x20/0x21,
 * slave at 0xA0/0xA1 on the master's IRQ 2), with the edge/level control registers at 0x4D0/0x4D1.
 * Behaviour per the 8259A datasheet and QEMU's i8259 (hw/intc/i8259.c), which is what kernels written
 * for `qemu -kernel` meet:
 * - ICW1 (bit 4 set on the command port) starts initialisation: IMR, IRR, ISR, rotation and modes are
 *   cleared; ICW2 (vector base, low 3 bits ignored), ICW3 unless single (SNGL), ICW4 if IC4 (AEOI, SFNM).
 *   LTIM makes every input of that chip level-triggered (as if its ELCR were 0xFF).
 * - OCW1 = IMR; OCW2: non-specific EOI, specific EOI, rotate on (non-)specific EOI, set priority,
 *   rotate in auto-EOI mode; OCW3: read IRR or ISR, poll, special mask mode.
 * - Edge inputs latch a rising edge in IRR; level inputs follow the line. INTA (the CPU's acknowledge)
 *   moves the highest-priority request to ISR (not in auto-EOI mode) and returns base + irq; with no
 *   request left it returns the spurious base + 7 (slave: base + 7 with the master's IRQ 2 in service).
 * - Reset state is what SeaBIOS leaves under QEMU (`handoff()`): vectors 0x08/0x70, IMR 0xB8/0x8E,
 *   ELCR 0x00/0x0C. A kernel that never touches the PIC meets exactly that.
 */

class Chip {
  irr = 0;
  imr = 0;
  isr = 0;
  lastIrr = 0; // input levels, for edge detection
  elcr = 0;
  ltim = false;
  priorityAdd = 0;
  base = 0;
  readIsr = false;
  poll = false;
  specialMask = false;
  initState = 0;
  init4 = false;
  single = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  sfnm = false;

  constructor(readonly master: boolean) {}

  level(mask: number): boolean {
    return this.ltim || (this.elcr & mask) !== 0;
  }

  setInput(irq: number, level: boolean): void {
    const mask = 1 << irq;
    if (this.level(mask)) {
      if (level) { this.irr |= mask; this.lastIrr |= mask; } else { this.irr &= ~mask; this.lastIrr &= ~mask; }
    } else if (level) {
      if ((this.lastIrr & mask) === 0) this.irr |= mask;
      this.lastIrr |= mask;
    } else {
      this.lastIrr &= ~mask;
    }
  }

  /** Priority (0 highest) of the highest-priority bit of `mask`; 8 when none. */
  priority(mask: number): number {
    if ((mask & 0xff) === 0) return 8;
    let p = 0;
    while ((mask & (1 << ((p + this.priorityAdd) & 7))) === 0) p++;
    return p;
  }

  /** The request the chip would present to the CPU now, or -1. */
  pending(): number {
    const p = this.priority(this.irr & ~this.imr);
    if (p === 8) return -1;
    let inService = this.isr;
    if (this.specialMask) inService &= ~this.imr;
    if (this.sfnm && this.master) inService &= ~(1 << 2);
    return p < this.priority(inService) ? (p + this.priorityAdd) & 7 : -1;
  }

  intack(irq: number): void {
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
    } else {
      this.isr |= 1 << irq;
    }
    if (!this.level(1 << irq)) this.irr &= ~(1 << irq);
  }

  reset(): void {
    this.lastIrr = 0; this.irr = 0; this.imr = 0; this.isr = 0; this.priorityAdd = 0; this.base = 0;
    this.readIsr = false; this.poll = false; this.specialMask = false; this.initState = 0; this.autoEoi = false;
    this.rotateOnAutoEoi = false; this.sfnm = false; this.init4 = false; this.single = false; this.ltim = false;
  }

  writeCommand(v: number): void {
    if ((v & 0x10) !== 0) { // ICW1
      this.reset();
      this.initState = 1;
      this.init4 = (v & 1) !== 0;
      this.single = (v & 2) !== 0;
      this.ltim = (v & 8) !== 0;
    } else if ((v & 0x08) !== 0) { // OCW3
      if ((v & 0x04) !== 0) this.poll = true;
      if ((v & 0x02) !== 0) this.readIsr = (v & 1) !== 0;
      if ((v & 0x40) !== 0) this.specialMask = (v & 0x20) !== 0;
    } else { // OCW2
      const cmd = v >> 5;
      switch (cmd) {
        case 0: case 4: this.rotateOnAutoEoi = cmd === 4; break;
        case 1: case 5: { // non-specific EOI (and rotate)
          const p = this.priority(this.isr);
          if (p !== 8) {
            const irq = (p + this.priorityAdd) & 7;
            this.isr &= ~(1 << irq);
            if (cmd === 5) this.priorityAdd = (irq + 1) & 7;
          }
          break;
        }
        case 3: this.isr &= ~(1 << (v & 7)); break; // specific EOI
        case 6: this.priorityAdd = (v + 1) & 7; break; // set priority: IRQ v lowest
        case 7: this.isr &= ~(1 << (v & 7)); this.priorityAdd = ((v & 7) + 1) & 7; break;
        default: break; // 2: no operation
      }
    }
  }

  writeData(v: number): void {
    switch (this.initState) {
      case 0: this.imr = v; break;
      case 1: this.base = v & 0xf8; this.initState = this.single ? (this.init4 ? 3 : 0) : 2; break;
      case 2: this.initState = this.init4 ? 3 : 0; break; // ICW3: the cascade is wired, not programmed
      default: this.sfnm = (v & 0x10) !== 0; this.autoEoi = (v & 2) !== 0; this.initState = 0; break;
    }
  }
}

export class PicPair {
  readonly master = new Chip(true);
  readonly slave = new Chip(false);
  /** The master's INTR output as last reported. */
  intr = false;
  /** The kernel initialised the master itself (ICW1) since the hand-off. */
  reprogrammed = false;

  /** @param onIntr called whenever the INTR output to the CPU changes */
  constructor(private readonly onIntr: (level: boolean) => void) {
    this.handoff();
  }

  /** The state SeaBIOS leaves the PICs in under QEMU (measured: test/machine/kernels/pcstate.c). */
  handoff(): void {
    for (const [c, base, imr] of [[this.master, 0x08, 0xb8], [this.slave, 0x70, 0x8e]] as const) {
      c.reset();
      c.base = base;
      c.imr = imr;
    }
    this.slave.elcr = 0x0c;
    this.update();
  }

  /** Drive ISA interrupt input `irq` (0-15). */
  setIrq(irq: number, level: boolean): void {
    if (irq >= 8) this.slave.setInput(irq - 8, level);
    else this.master.setInput(irq, level);
    this.update();
  }

  private update(): void {
    // the slave's output is the master's IRQ 2 input
    this.master.setInput(2, this.slave.pending() >= 0);
    const out = this.master.pending() >= 0;
    if (out !== this.intr) {
      this.intr = out;
      this.onIntr(out);
    }
  }

  /** The CPU's interrupt acknowledge: the vector to deliver. */
  acknowledge(): number {
    const m = this.master, s = this.slave;
    let vector: number;
    const irq = m.pending();
    if (irq >= 0) {
      m.intack(irq);
      if (irq === 2) {
        const irq2 = s.pending();
        if (irq2 >= 0) s.intack(irq2);
        vector = s.base + (irq2 >= 0 ? irq2 : 7);
      } else {
        vector = m.base + irq;
      }
    } else {
      vector = m.base + 7; // spurious
    }
    this.update();
    return vector;
  }

  in(port: number): number {
    const c = (port & 0x80) !== 0 ? this.slave : this.master;
    if (port === 0x4d0 || port === 0x4d1) return (port === 0x4d0 ? this.master : this.slave).elcr;
    if (c.poll) {
      c.poll = false;
      const irq = c.pending();
      if (irq < 0) return 0;
      c.intack(irq);
      this.update();
      return irq | 0x80;
    }
    if ((port & 1) === 0) return c.readIsr ? c.isr : c.irr;
    return c.imr;
  }

  out(port: number, v: number): void {
    if (port === 0x4d0) this.master.elcr = v & 0xf8; // IRQ 0, 1, 2 are always edge (QEMU's masks)
    else if (port === 0x4d1) this.slave.elcr = v & 0xde; // IRQ 8 and 13 too
    else {
      const c = (port & 0x80) !== 0 ? this.slave : this.master;
      if ((port & 1) === 0) c.writeCommand(v); else c.writeData(v);
      if (c === this.master && (port & 1) === 0 && (v & 0x10) !== 0) this.reprogrammed = true;
    }
    this.update();
  }
}

/**
 * The Intel 8254 programmable interval timer (ports 0x40-0x43) at 1.193182 MHz, and port 0x61's timer
 * bits (channel 2's gate, bit 0, and output, bit 5). Per the 8254 datasheet and QEMU's i8254
 * (hw/timer/i8254.c): counters are computed from the virtual clock (devices/clock.ts), not stepped.
 * - Modes 0 (interrupt on terminal count), 1 (hardware one-shot), 2 and 6 (rate generator), 3 and 7
 *   (square wave), 4 and 5 (strobes); binary counting (the BCD bit is kept and reported, counting stays
 *   binary, as QEMU's).
 * - Access LSB, MSB or LSB then MSB; counter latch (access 0) and the read-back command (status and/or
 *   count of several channels at once); a count of 0 means 65536.
 * - Channel 0's output drives IRQ 0; channel 2's gate is port 0x61 bit 0.
 * - Reset is what SeaBIOS leaves: channel 0 in mode 2 with count 65536 (18.2 Hz), channels 1 and 2
 *   in mode 3 as the chip powers up (status 0x06), channel 2's gate low.
 */
import type { Timed } from './clock.ts';

export const PIT_HZ = 1193182;
const NS = 1e9;
const RW_MSB = 2, RW_WORD0 = 3, RW_WORD1 = 4;

class Channel {
  count = 0x10000;
  loadTime = 0;
  mode = 3;
  bcd = 0;
  gate = true;
  rwMode = 0;
  readState = 0;
  writeState = 0;
  writeLatch = 0;
  latchedCount = 0;
  countLatched = 0;
  statusLatched = false;
  status = 0;
  /** For channel 0: when its output next changes (ns), and its level. */
  next = Infinity;
  out = false;

  ticks(now: number): number {
    return Math.floor(Math.max(0, now - this.loadTime) * PIT_HZ / NS);
  }

  getCount(now: number): number {
    const d = this.ticks(now);
    switch (this.mode) {
      case 0: case 1: case 4: case 5: return (this.count - d) & 0xffff;
      case 3: return this.count - ((2 * d) % this.count);
      default: return this.count - (d % this.count);
    }
  }

  getOut(now: number): boolean {
    const d = this.ticks(now);
    switch (this.mode) {
      case 1: return d < this.count;
      case 2: return d % this.count === 0 && d !== 0 ? true : false;
      case 3: return d % this.count < ((this.count + 1) >> 1);
      case 4: case 5: return d === this.count;
      default: return d >= this.count;
    }
  }

  /** When the output next changes after `now` (ns), or Infinity. */
  nextTransition(now: number): number {
    const d = this.ticks(now);
    const c = this.count;
    let t: number;
    switch (this.mode) {
      // mode 2: the output pulses for one PIT clock at each terminal count (QEMU's level convention)
      case 2: t = d % c === 0 && d !== 0 ? d + 1 : (Math.floor(d / c) + 1) * c; break;
      case 3: { const base = Math.floor(d / c) * c, half = (c + 1) >> 1; t = d - base < half ? base + half : base + c; break; }
      case 4: case 5: if (d < c) t = c; else if (d === c) t = c + 1; else return Infinity; break;
      default: if (d < c) t = c; else return Infinity;
    }
    let ns = this.loadTime + Math.ceil(t * NS / PIT_HZ);
    if (ns <= now) ns = now + 1;
    return ns;
  }
}

export class Pit implements Timed {
  readonly ch = [new Channel(), new Channel(), new Channel()];
  /** Port 0x61 bit 1 (speaker data), kept for reads; and the refresh bit that toggles on every read. */
  private speakerData = 0;
  private refresh = 0;

  /** @param irq0 drives IRQ 0 from channel 0's output; @param now the virtual clock */
  constructor(private readonly irq0: (level: boolean) => void, private readonly now: () => number) {
    this.ch[2].gate = false;
    const c0 = this.ch[0];
    c0.mode = 2;
    c0.rwMode = c0.readState = c0.writeState = RW_WORD0;
    this.load(0, 0x10000);
  }

  private load(i: number, v: number): void {
    const s = this.ch[i];
    s.count = v === 0 ? 0x10000 : v;
    s.loadTime = this.now();
    if (i === 0) this.timerUpdate(s.loadTime);
  }

  private timerUpdate(now: number): void {
    const s = this.ch[0];
    s.next = s.nextTransition(now);
    const out = s.getOut(now);
    if (out !== s.out) { s.out = out; this.irq0(out); }
  }

  update(now: number): void {
    const s = this.ch[0];
    if (s.next > now) return;
    // Every output change due by now, in order, so no edge is lost. After a long gap (a busy host, a
    // long halt) the periods in between are dropped, as the PIC would have merged their edges anyway.
    if (s.mode === 2 || s.mode === 3) {
      const period = s.count * NS / PIT_HZ;
      const periods = Math.floor((now - s.next) / period) - 1;
      if (periods > 0) {
        s.loadTime += periods * period;
        s.next = s.nextTransition(now - period);
      }
    }
    for (let guard = 0; s.next <= now && guard < 16; guard++) {
      const t = s.next;
      const out = s.getOut(t);
      if (out !== s.out) { s.out = out; this.irq0(out); }
      s.next = s.nextTransition(t);
    }
  }

  deadline(): number {
    return this.ch[0].next;
  }

  in(port: number): number {
    if (port === 0x61) {
      this.refresh ^= 0x10;
      const c2 = this.ch[2];
      return (c2.gate ? 1 : 0) | (this.speakerData << 1) | this.refresh | (c2.getOut(this.now()) ? 0x20 : 0);
    }
    const i = port & 3;
    if (i === 3) return 0; // the control word register is write-only
    const s = this.ch[i];
    if (s.statusLatched) {
      s.statusLatched = false;
      return s.status;
    }
    if (s.countLatched !== 0) {
      switch (s.countLatched) {
        case RW_MSB: s.countLatched = 0; return (s.latchedCount >> 8) & 0xff;
        case RW_WORD0: s.countLatched = RW_MSB; return s.latchedCount & 0xff;
        default: s.countLatched = 0; return s.latchedCount & 0xff;
      }
    }
    const count = s.getCount(this.now());
    switch (s.readState) {
      case RW_MSB: return (count >> 8) & 0xff;
      case RW_WORD0: s.readState = RW_WORD1; return count & 0xff;
      case RW_WORD1: s.readState = RW_WORD0; return (count >> 8) & 0xff;
      default: return count & 0xff;
    }
  }

  out(port: number, v: number): void {
    if (port === 0x61) {
      this.setGate2((v & 1) !== 0);
      this.speakerData = (v >> 1) & 1;
      return;
    }
    const i = port & 3;
    const now = this.now();
    if (i === 3) {
      const sel = v >> 6;
      if (sel === 3) { // read-back
        for (let c = 0; c < 3; c++) {
          if ((v & (2 << c)) === 0) continue;
          const s = this.ch[c];
          if ((v & 0x20) === 0) this.latch(s, now);
          if ((v & 0x10) === 0 && !s.statusLatched) {
            s.status = (s.getOut(now) ? 0x80 : 0) | (s.rwMode << 4) | (s.mode << 1) | s.bcd;
            s.statusLatched = true;
          }
        }
        return;
      }
      const s = this.ch[sel];
      const access = (v >> 4) & 3;
      if (access === 0) { this.latch(s, now); return; }
      s.rwMode = s.readState = s.writeState = access;
      s.mode = (v >> 1) & 7;
      if (s.mode >= 6) s.mode -= 4; // 6 and 7 are 2 and 3
      s.bcd = v & 1;
      return;
    }
    const s = this.ch[i];
    switch (s.writeState) {
      case RW_MSB: this.load(i, v << 8); break;
      case RW_WORD0: s.writeLatch = v; s.writeState = RW_WORD1; break;
      case RW_WORD1: this.load(i, s.writeLatch | (v << 8)); s.writeState = RW_WORD0; break;
      default: this.load(i, v); break;
    }
  }

  private latch(s: Channel, now: number): void {
    if (s.countLatched === 0) {
      s.latchedCount = s.getCount(now);
      s.countLatched = s.rwMode;
    }
  }

  private setGate2(level: boolean): void {
    const s = this.ch[2];
    if (level && !s.gate && s.mode !== 0 && s.mode !== 4) s.loadTime = this.now(); // a rising edge restarts
    s.gate = level;
  }
}

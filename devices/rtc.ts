/**
 * The MC146818 CMOS real-time clock and its RAM, ports 0x70 (index; bit 7 = the NMI mask, kept but
 * without effect: nothing in bare mode raises an NMI) and 0x71 (data). Per the MC146818 datasheet and
 * QEMU's mc146818rtc (hw/rtc/mc146818rtc.c):
 * - Time (registers 0-9) is the host's time in UTC at boot (QEMU's `-rtc base=utc`), advancing with the
 *   virtual clock; BCD or binary (register B bit 2) and 24 or 12 hour (bit 1; PM = bit 7 of the hour).
 *   A guest's writes to the time registers set the clock; SET (B bit 7) stops updates while set.
 * - Register A: divider and rate select (periodic rate 32768 >> (rate - 1) Hz, rates 1 and 2 as 8 and
 *   9, 0 = off); UIP (bit 7) reads 1 in the 244 us before each second's update.
 * - Register C: IRQF, PF (periodic), AF (alarm), UF (update ended): set whenever their event happens,
 *   IRQ 8 raised while an enabled one (B bits 6, 5, 4) is set; reading C clears it and lowers IRQ 8.
 * - Register D: VRT (valid RAM and time) always set.
 * - The CMOS bytes QEMU's pc machine sets (measured under QEMU 7.2 + SeaBIOS): equipment 0x14, base
 *   memory 0x15/0x16 (640 KiB), extended memory in KiB at 0x17/0x18 and 0x30/0x31, memory above 16 MiB
 *   in 64 KiB at 0x34/0x35, the century at 0x32 and 0x37, boot settings at 0x38 and 0x3D, CPU count
 *   - 1 at 0x5F. 128 bytes in all.
 */
import type { Timed } from './clock.ts';

const UIP_NS = Math.round(8e9 / 32768); // 244 us
const A = 10, B = 11, C = 12, D = 13;
const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;

export interface RtcOptions {
  memBytes: number;
  cpus?: number;
  /** The time at boot, ms since the epoch (default: the host's clock). */
  baseMs?: number;
}

export class Rtc implements Timed {
  readonly cmos = new Uint8Array(128);
  index = 0;
  nmiMasked = false;
  /** The RTC's time = offsetMs + now / 1e6. */
  private offsetMs: number;
  private lastSecond = 0;
  private lastPeriod = 0;
  private irqLevel = false;

  constructor(private readonly irq8: (level: boolean) => void, private readonly now: () => number, opts: RtcOptions) {
    this.offsetMs = opts.baseMs ?? Date.now();
    const c = this.cmos;
    c[A] = 0x26;
    c[B] = B_24H;
    c[D] = 0x80;
    c[0x14] = 0x06;
    c[0x15] = 0x80; c[0x16] = 0x02;
    const extKiB = Math.min(Math.max(opts.memBytes / 1024 - 1024, 0), 0xffff);
    c[0x17] = c[0x30] = extKiB & 0xff;
    c[0x18] = c[0x31] = extKiB >> 8;
    const above16 = opts.memBytes > 16 << 20 ? Math.min((opts.memBytes - (16 << 20)) / 65536, 0xffff) : 0;
    c[0x34] = above16 & 0xff;
    c[0x35] = above16 >> 8;
    c[0x32] = c[0x37] = 0x20;
    c[0x38] = 0x30;
    c[0x3d] = 0x12;
    c[0x5f] = (opts.cpus ?? 1) - 1;
    const n = this.now();
    this.lastSecond = Math.floor(this.ms(n) / 1000);
  }

  private ms(now: number): number {
    return this.offsetMs + now / 1e6;
  }

  /** The periodic interrupt's period in ns (0: off). */
  private periodNs(): number {
    let rate = this.cmos[A] & 0x0f;
    if (rate === 0) return 0;
    if (rate <= 2) rate += 7;
    return (1 << (rate - 1)) * 1e9 / 32768;
  }

  update(now: number): void {
    const c = this.cmos;
    const sec = Math.floor(this.ms(now) / 1000);
    if (sec > this.lastSecond && (c[B] & B_SET) === 0) {
      this.lastSecond = sec;
      c[C] |= C_UF;
      if (this.alarmMatches(sec)) c[C] |= C_AF;
    } else if ((c[B] & B_SET) !== 0) {
      this.lastSecond = sec;
    }
    const p = this.periodNs();
    if (p > 0) {
      const k = Math.floor(now / p);
      if (k > this.lastPeriod) c[C] |= C_PF;
      this.lastPeriod = k;
    }
    this.updateIrq();
  }

  deadline(): number {
    const c = this.cmos;
    let d = Infinity;
    if ((c[B] & (B_UIE | B_AIE)) !== 0 && (c[C] & C_IRQF) === 0) {
      const nextSecMs = (this.lastSecond + 1) * 1000;
      d = Math.max((nextSecMs - this.offsetMs) * 1e6, 0);
    }
    const p = this.periodNs();
    if (p > 0 && (c[B] & B_PIE) !== 0 && (c[C] & C_IRQF) === 0) d = Math.min(d, (this.lastPeriod + 1) * p);
    return d;
  }

  private updateIrq(): void {
    const c = this.cmos;
    const on = (c[C] & c[B] & (C_PF | C_AF | C_UF)) !== 0; // the enables in B sit at the flags' bits in C
    if (on) c[C] |= C_IRQF; else c[C] &= ~C_IRQF;
    if (on !== this.irqLevel) {
      this.irqLevel = on;
      this.irq8(on);
    }
  }

  private alarmMatches(sec: number): boolean {
    const t = this.fields(sec * 1000);
    const m = (reg: number, v: number) => (this.cmos[reg] & 0xc0) === 0xc0 || this.cmos[reg] === this.enc(v, reg === 5);
    return m(1, t[0]) && m(3, t[1]) && m(5, t[2]);
  }

  /** [sec, min, hour, weekday 1-7, day, month, year % 100, century] of a time. */
  private fields(ms: number): number[] {
    const d = new Date(ms);
    const y = d.getUTCFullYear();
    return [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours(), d.getUTCDay() + 1, d.getUTCDate(), d.getUTCMonth() + 1, y % 100, Math.floor(y / 100)];
  }

  /** A value as the guest reads it: BCD or binary, and for the hour 12-hour with the PM bit. */
  private enc(v: number, hour = false): number {
    let pm = 0;
    if (hour && (this.cmos[B] & B_24H) === 0) {
      pm = v >= 12 ? 0x80 : 0;
      v = v % 12 === 0 ? 12 : v % 12;
    }
    return ((this.cmos[B] & B_DM) !== 0 ? v : ((v / 10) | 0) * 16 + (v % 10)) | pm;
  }

  private dec(v: number, hour = false): number {
    const pm = hour && (this.cmos[B] & B_24H) === 0 && (v & 0x80) !== 0;
    if (hour) v &= 0x7f;
    let n = (this.cmos[B] & B_DM) !== 0 ? v : (v >> 4) * 10 + (v & 15);
    if (hour && (this.cmos[B] & B_24H) === 0) n = (n % 12) + (pm ? 12 : 0);
    return n;
  }

  private readTime(reg: number): number {
    const t = this.fields(Math.floor(this.ms(this.now())));
    switch (reg) {
      case 0: return this.enc(t[0]);
      case 2: return this.enc(t[1]);
      case 4: return this.enc(t[2], true);
      case 6: return this.enc(t[3]);
      case 7: return this.enc(t[4]);
      case 8: return this.enc(t[5]);
      case 9: return this.enc(t[6]);
      default: return this.cmos[reg]; // the alarms (1, 3, 5)
    }
  }

  private writeTime(reg: number, v: number): void {
    if (reg === 1 || reg === 3 || reg === 5) { this.cmos[reg] = v; return; }
    const now = this.now();
    const t = this.fields(Math.floor(this.ms(now)));
    const sub = this.ms(now) % 1000;
    const idx = [0, -1, 1, -1, 2, -1, -1, 4, 5, 6][reg];
    if (idx < 0) return; // day of week: derived from the date
    t[idx] = this.dec(v, reg === 4);
    const year = t[7] * 100 + t[6];
    const ms = Date.UTC(year, t[5] - 1, t[4], t[2], t[1], t[0]) + sub;
    if (Number.isFinite(ms)) this.offsetMs = ms - now / 1e6;
  }

  in(port: number): number {
    if (port === 0x70) return 0xff; // the index register is write-only
    const r = this.index;
    if (r <= 9) return this.readTime(r);
    if (r === A) {
      const uip = (this.cmos[B] & B_SET) === 0 && (this.ms(this.now()) % 1000) * 1e6 >= 1e9 - UIP_NS;
      return (this.cmos[A] & 0x7f) | (uip ? 0x80 : 0);
    }
    if (r === C) {
      this.update(this.now());
      const v = this.cmos[C];
      this.cmos[C] = 0;
      this.updateIrq();
      return v;
    }
    return this.cmos[r];
  }

  out(port: number, v: number): void {
    if (port === 0x70) {
      this.index = v & 0x7f;
      this.nmiMasked = (v & 0x80) !== 0;
      return;
    }
    const r = this.index;
    if (r <= 9) this.writeTime(r, v);
    else if (r === A) {
      this.update(this.now());
      this.cmos[A] = v & 0x7f;
      const p = this.periodNs();
      this.lastPeriod = p > 0 ? Math.floor(this.now() / p) : 0;
    } else if (r === B) {
      this.update(this.now());
      this.cmos[B] = (v & B_SET) !== 0 ? v & ~B_UIE : v; // SET clears UIE (datasheet)
      this.updateIrq();
    } else if (r !== C && r !== D) this.cmos[r] = v;
  }
}

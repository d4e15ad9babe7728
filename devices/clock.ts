/**
 * The virtual clock every bare-mode timer follows (PIT, RTC, local APIC timer): nanoseconds since boot.
 *
 * - `wall` (the default): the host's monotonic clock, so a kernel's timer ticks at the real rate.
 * - `icount` (`--icount`): time = retired instructions x `nsPerInsn` (1 ns by default, a 1 GHz CPU),
 *   plus the time skipped while the CPU was halted (a HLT with a timer armed jumps to its deadline at
 *   once). Two runs of the same kernel with the same input are then identical.
 *
 * Devices with timers register a `Timed`: `update(now)` brings the device up to `now` (raising the
 * interrupts due by then), `deadline()` says when it next needs that (Infinity: never). The machine's
 * run loop runs the CPU in slices that end at the earliest deadline and calls `poll()` after each.
 */
export interface Timed {
  update(now: number): void;
  deadline(): number;
}

export type ClockMode = 'wall' | 'icount';

export class VirtualClock {
  private readonly timed: Timed[] = [];
  /** icount: time skipped while halted. */
  private idle = 0;
  private readonly wallStart: number;

  constructor(readonly mode: ClockMode, private readonly retired: () => number, readonly nsPerInsn = 1) {
    this.wallStart = performance.now();
  }

  add(t: Timed): void {
    this.timed.push(t);
  }

  now(): number {
    if (this.mode === 'icount') return this.retired() * this.nsPerInsn + this.idle;
    // performance.now(): monotonic, sub-microsecond, and (unlike hrtime.bigint) allocates nothing
    return (performance.now() - this.wallStart) * 1e6;
  }

  /** Bring every timed device up to now. */
  poll(): void {
    const now = this.now();
    for (const t of this.timed) t.update(now);
  }

  /** The earliest deadline of any device (ns since boot; Infinity: none). */
  next(): number {
    let d = Infinity;
    for (const t of this.timed) d = Math.min(d, t.deadline());
    return d;
  }

  /** icount while halted: jump to `t` (nothing to do in wall mode, where the caller sleeps). */
  skipTo(t: number): void {
    if (this.mode === 'icount') {
      const now = this.now();
      if (t > now) this.idle += t - now;
    }
  }
}

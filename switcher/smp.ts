/**
 * What the vCPUs of one guest share across worker threads (the lguest-ts SMP extension, switcher/README.md):
 * one Int32Array of control words over a SharedArrayBuffer, with guest-wide words first and then a block
 * per vCPU, and the Host-side protocols built on them with Atomics:
 * - the first kill wins (`dead` holds 1 + the id of the vCPU whose reason stands) and stops every vCPU;
 * - the shadow page tables are changed under one lock (`shadowLock`);
 * - TLB shootdown: a shadow change that may leave stale translations in another vCPU's TLB bumps that
 *   vCPU's `flushReq` and rings its doorbell, and the changer waits until the vCPU has flushed (`flushAck`)
 *   or is outside the guest (`inGuest` 0: it flushes before it enters again), so the change has reached
 *   every TLB before the hypercall that made it returns;
 * - starting a secondary vCPU (VCPU_START), inter-processor interrupts (SEND_IPI), device kicks from any
 *   vCPU handed to vCPU 0, which serves the devices.
 */

/** Guest-wide words. */
export const CTRL = {
  /** Nonzero: the Launcher asks every vCPU to stop (--timeout, a worker died, the user gave up). */
  stop: 0,
  /** 0 while the guest lives; then 1 + the id of the vCPU whose kill (or SHUTDOWN) ended it. */
  dead: 1,
  /** The shadow page tables' lock: 0 free, else 1 + the holder's id. */
  shadowLock: 2,
  /** Lock of the device-kick queue. */
  kickLock: 3,
  /** Device kicks queued for vCPU 0 (a ring of KICK_SLOTS addresses at `kicks`). */
  kickHead: 4,
  kickTail: 5,
  /** vCPUs in this guest (--cpus). */
  ncpus: 6,
  /** Workers still running this guest; the last one out tears the shadow tables down. */
  alive: 7,
  kicks: 8,
  /** hpa of the guest's Switcher code page (set up by vCPU 0; each vCPU has its own Switcher PTE page). */
  switcherCode: 24,
  /** First word of vCPU 0's block. */
  vcpuBase: 32,
  vcpuWords: 16,
} as const;
export const KICK_SLOTS = 16;

/** Words of one vCPU's block. */
export const VC = {
  /** Nonzero: the CPU leaves run() at the next block boundary it polls (cpu.doorbell views this word). */
  doorbell: 0,
  /** Bumped and Atomics.notify'd whenever a sleeping vCPU (halted, or not started) should look again. */
  wake: 1,
  /** Virtual IRQs raised for this vCPU by devices and other vCPUs (bit n = IRQ n), taken with exchange. */
  irqs: 2,
  /** VCPU_STATE_*. */
  state: 3,
  /** TLB shootdown: requests made, requests answered (the last request value this vCPU flushed for). */
  flushReq: 4,
  flushAck: 5,
  /** VCPU_START's arguments: EIP, ESP and the starter's guest top level. */
  startEip: 6,
  startEsp: 7,
  startPgdir: 8,
  /** 1 while this vCPU is inside the guest (its TLB in use). */
  inGuest: 9,
  /** Nonzero: gdb (`run --gdb`) asks this vCPU to stop for the debugger (launcher/vcpu-debug.ts). */
  debugInterrupt: 10,
} as const;

export const VCPU_STATE_WAITING = 0;
export const VCPU_STATE_STARTING = 1;
export const VCPU_STATE_RUNNING = 2;

/** The most vCPUs a guest may have (the shadow's per-vCPU bookkeeping holds 32; threads cost memory). */
export const MAX_VCPUS = 8;

/** Words of a control block for `ncpus` vCPUs. */
export function ctrlWords(ncpus: number): number {
  return CTRL.vcpuBase + ncpus * CTRL.vcpuWords;
}

/** A fresh control block (vCPU 0 running, the others waiting). */
export function newCtrl(ncpus: number): Int32Array {
  const ctrl = new Int32Array(new SharedArrayBuffer(ctrlWords(ncpus) * 4));
  ctrl[CTRL.ncpus] = ncpus;
  ctrl[CTRL.alive] = ncpus;
  ctrl[CTRL.vcpuBase + VC.state] = VCPU_STATE_RUNNING;
  return ctrl;
}

/** Index of word `w` (VC.*) of vCPU `v`'s block. */
export function vcpuWord(v: number, w: number): number {
  return CTRL.vcpuBase + v * CTRL.vcpuWords + w;
}

/** Wake vCPU `v` if it sleeps (halted, not started, stopped in the debugger): it looks again. */
export function wakeVcpu(ctrl: Int32Array, v: number): void {
  Atomics.add(ctrl, vcpuWord(v, VC.wake), 1);
  Atomics.notify(ctrl, vcpuWord(v, VC.wake));
}

/** Make vCPU `v` look around: leave run() soon, and wake up if it sleeps. */
export function ringVcpu(ctrl: Int32Array, v: number): void {
  Atomics.store(ctrl, vcpuWord(v, VC.doorbell), 1);
  wakeVcpu(ctrl, v);
}

/** Ask every vCPU of the guest to stop (the Launcher: --timeout, Ctrl-C, a worker that died). */
export function stopAllVcpus(ctrl: Int32Array): void {
  Atomics.store(ctrl, CTRL.stop, 1);
  for (let v = 0; v < (ctrl[CTRL.ncpus] || 1); v++) ringVcpu(ctrl, v);
}

/** How long a shootdown waits for another vCPU before it gives up on the guest (ms). A vCPU inside the
 *  guest answers within one doorbell poll (256 blocks); this only catches a worker that stopped dead. */
const SHOOTDOWN_TIMEOUT_MS = 10_000;

/** One vCPU's handle on the shared control block. */
export class SmpLink {
  readonly ncpus: number;
  /** The last flush request this vCPU answered. */
  private flushSeen = 0;
  /** Flush this vCPU's own TLB: shootdown() answers requests made to this vCPU while it waits for the
   *  others, so two vCPUs that shoot at each other from inside the guest do not wait for each other. */
  selfFlush: (() => void) | null = null;

  constructor(readonly ctrl: Int32Array, readonly id: number) {
    this.ncpus = ctrl[CTRL.ncpus] || 1;
  }

  /** Index of word `w` of vCPU `v`'s block. */
  at(v: number, w: number): number { return vcpuWord(v, w); }
  mine(w: number): number { return this.at(this.id, w); }

  /** This vCPU's doorbell word, for cpu.doorbell. */
  doorbellView(): Int32Array {
    return new Int32Array(this.ctrl.buffer, this.mine(VC.doorbell) * 4, 1);
  }

  /** Make vCPU `v` look around: leave run() soon, and wake up if it sleeps. */
  ring(v: number): void { ringVcpu(this.ctrl, v); }

  ringAll(): void { for (let v = 0; v < this.ncpus; v++) this.ring(v); }

  stopRequested(): boolean { return Atomics.load(this.ctrl, CTRL.stop) !== 0; }
  deadElsewhere(): boolean {
    const d = Atomics.load(this.ctrl, CTRL.dead);
    return d !== 0 && d !== this.id + 1;
  }

  /** The guest was killed on this vCPU: claim the kill if it is the first, and stop every vCPU. */
  claimDeath(): boolean {
    const won = Atomics.compareExchange(this.ctrl, CTRL.dead, 0, this.id + 1) === 0;
    this.ringAll();
    return won;
  }

  /** Virtual IRQs raised for this vCPU since the last call. */
  takeIrqs(): number {
    const i = this.mine(VC.irqs);
    return this.ctrl[i] !== 0 ? Atomics.exchange(this.ctrl, i, 0) : 0;
  }

  raiseIrq(v: number, irq: number): void {
    Atomics.or(this.ctrl, this.at(v, VC.irqs), 1 << irq);
    this.ring(v);
  }

  // ---- locks (spin briefly, then sleep on the word) ----
  lock(word: number): void {
    const tag = this.id + 1;
    for (let spins = 0; ; spins++) {
      const cur = Atomics.compareExchange(this.ctrl, word, 0, tag);
      if (cur === 0) return;
      if (cur === tag) throw new Error('lguest-ts: a Host lock taken twice by one vCPU');
      if (spins > 64) Atomics.wait(this.ctrl, word, cur, 1);
    }
  }

  unlock(word: number): void {
    Atomics.store(this.ctrl, word, 0);
    Atomics.notify(this.ctrl, word, 1);
  }

  // ---- TLB shootdown ----
  /** The shadow changed: every other vCPU drops its cached translations before it uses them again.
   *  Returns false when a vCPU did not answer in time (the caller kills the guest). */
  shootdown(): boolean {
    let ok = true;
    for (let v = 0; v < this.ncpus; v++) {
      if (v === this.id) continue;
      const req = Atomics.add(this.ctrl, this.at(v, VC.flushReq), 1) + 1;
      if (Atomics.load(this.ctrl, this.at(v, VC.inGuest)) === 0) continue;
      Atomics.store(this.ctrl, this.at(v, VC.doorbell), 1);
      const ackAt = this.at(v, VC.flushAck), inAt = this.at(v, VC.inGuest);
      const deadline = Date.now() + SHOOTDOWN_TIMEOUT_MS;
      for (;;) {
        const ack = Atomics.load(this.ctrl, ackAt);
        if (ack - req >= 0 || Atomics.load(this.ctrl, inAt) === 0) break;
        if (this.selfFlush !== null && this.flushPending()) { this.selfFlush(); this.flushed(); }
        if (this.stopRequested() || Date.now() > deadline) { ok = this.stopRequested(); break; }
        Atomics.wait(this.ctrl, ackAt, ack, 1);
      }
    }
    return ok;
  }

  /** This vCPU enters the guest: from now on shootdowns wait for it. True when it must flush first. */
  enter(): boolean {
    Atomics.store(this.ctrl, this.mine(VC.inGuest), 1);
    return this.flushPending();
  }

  /** This vCPU left the guest (a trap, a stop): shootdowns need not wait for it any more. */
  leave(): void {
    Atomics.store(this.ctrl, this.mine(VC.inGuest), 0);
    Atomics.notify(this.ctrl, this.mine(VC.flushAck));
  }

  /** A shootdown is waiting for this vCPU: take it (the caller flushes, then calls flushed()). */
  flushPending(): boolean {
    const req = Atomics.load(this.ctrl, this.mine(VC.flushReq));
    if (req === this.flushSeen) return false;
    this.flushSeen = req;
    return true;
  }

  flushed(): void {
    Atomics.store(this.ctrl, this.mine(VC.flushAck), this.flushSeen);
    Atomics.notify(this.ctrl, this.mine(VC.flushAck));
  }

  // ---- device kicks (any vCPU to vCPU 0) ----
  /** Queue a device NOTIFY for vCPU 0. False when the queue is full (the caller retries later). */
  queueKick(addr: number): boolean {
    this.lock(CTRL.kickLock);
    try {
      const head = this.ctrl[CTRL.kickHead], tail = this.ctrl[CTRL.kickTail];
      if (tail - head >= KICK_SLOTS) return false;
      this.ctrl[CTRL.kicks + (tail % KICK_SLOTS)] = addr;
      Atomics.store(this.ctrl, CTRL.kickTail, tail + 1);
    } finally {
      this.unlock(CTRL.kickLock);
    }
    this.ring(0);
    return true;
  }

  /** vCPU 0: the queued kicks, oldest first. */
  takeKicks(handle: (addr: number) => void): void {
    if (Atomics.load(this.ctrl, CTRL.kickHead) === Atomics.load(this.ctrl, CTRL.kickTail)) return;
    const got: number[] = [];
    this.lock(CTRL.kickLock);
    try {
      let head = this.ctrl[CTRL.kickHead];
      const tail = this.ctrl[CTRL.kickTail];
      for (; head !== tail; head++) got.push(this.ctrl[CTRL.kicks + (head % KICK_SLOTS)] >>> 0);
      Atomics.store(this.ctrl, CTRL.kickHead, head);
    } finally {
      this.unlock(CTRL.kickLock);
    }
    for (const a of got) handle(a);
  }
}

/**
 * switcher/smp.ts on its own, one thread playing several vCPUs over one control block: who wins a kill,
 * device kicks queued for vCPU 0, IPIs, and the TLB-shootdown handshake (the request, the answer, and
 * when a shootdown need not wait). test/guests/smp.test.ts checks the same end to end across threads.
 */
import { describe, expect, it } from 'vitest';
import { CTRL, KICK_SLOTS, SmpLink, VC, newCtrl } from '../../switcher/smp.ts';

function vcpus(n: number): SmpLink[] {
  const ctrl = newCtrl(n);
  return Array.from({ length: n }, (_, id) => new SmpLink(ctrl, id));
}

describe('the shared control block', () => {
  it('the first kill wins and rings every vCPU', () => {
    const [a, b, c] = vcpus(3);
    expect(b.claimDeath()).toBe(true);
    expect(c.claimDeath()).toBe(false);
    expect(Atomics.load(a.ctrl, CTRL.dead)).toBe(2);
    expect(a.deadElsewhere()).toBe(true);
    expect(b.deadElsewhere()).toBe(false);
    for (const v of [0, 1, 2]) expect(a.ctrl[a.at(v, VC.doorbell)]).toBe(1);
  });

  it('device kicks reach vCPU 0 in order; a full queue says so instead of losing one', () => {
    const [v0, v1, v2] = vcpus(3);
    for (let i = 0; i < KICK_SLOTS; i++) expect((i % 2 ? v1 : v2).queueKick(0x1000 + i)).toBe(true);
    expect(v1.queueKick(0x9999)).toBe(false);
    expect(v0.ctrl[v0.at(0, VC.doorbell)]).toBe(1);
    const got: number[] = [];
    v0.takeKicks((a) => got.push(a));
    expect(got).toEqual(Array.from({ length: KICK_SLOTS }, (_, i) => 0x1000 + i));
    expect(v1.queueKick(0x2000)).toBe(true);
    got.length = 0;
    v0.takeKicks((a) => got.push(a));
    expect(got).toEqual([0x2000]);
  });

  it('an IPI sets the IRQ bit on its target only, and the target takes it once', () => {
    const [v0, v1] = vcpus(2);
    v0.raiseIrq(1, 5);
    v0.raiseIrq(1, 7);
    expect(v0.takeIrqs()).toBe(0);
    expect(v1.takeIrqs()).toBe((1 << 5) | (1 << 7));
    expect(v1.takeIrqs()).toBe(0);
  });
});

describe('TLB shootdown', () => {
  it('a vCPU outside the guest is not waited for; it flushes when it enters', () => {
    const [v0, v1] = vcpus(2);
    expect(v0.shootdown()).toBe(true); // v1 is not in the guest: no wait
    expect(v1.enter()).toBe(true);     // ... so it must flush before it runs
    v1.flushed();
    expect(v1.flushPending()).toBe(false);
    v1.leave();
  });

  it('every request is taken exactly once, and a later request needs a new flush', () => {
    const [v0, v1] = vcpus(2);
    v0.shootdown();
    v0.shootdown();
    expect(v1.flushPending()).toBe(true); // both requests, one flush
    v1.flushed();
    expect(Atomics.load(v1.ctrl, v1.at(1, VC.flushAck))).toBe(2);
    expect(v1.flushPending()).toBe(false);
    v0.shootdown();
    expect(v1.enter()).toBe(true);
    v1.flushed();
    v1.leave();
  });

  it('while it waits, a vCPU answers requests made to it (two vCPUs shooting at each other do not deadlock)', () => {
    const [v0, v1] = vcpus(2);
    let flushes = 0;
    v0.selfFlush = () => { flushes++; };
    // v1 is "in the guest" and has asked v0 to flush; v0 is also in the guest and now shoots at v1.
    v1.enter();
    v0.enter();
    Atomics.add(v0.ctrl, v0.at(0, VC.flushReq), 1);
    // v1 answers nothing (it is this same thread), so v0's wait ends only at v1 leaving; make it leave
    // from a timer-free path: stop requested, which shootdown treats as the end of the guest.
    Atomics.store(v0.ctrl, CTRL.stop, 1);
    expect(v0.shootdown()).toBe(true);
    expect(flushes).toBe(1);
    expect(v0.flushPending()).toBe(false);
  });
});

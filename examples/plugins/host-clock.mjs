// host-clock.mjs: a paravirtual clock as a hypercall plug-in (the pvclock guest uses it).
//
//   lguest-ts run pvclock --plugin examples/plugins/host-clock.mjs
//
// HOST_TIME_NS (0x1000) returns the Host's wall clock in nanoseconds since the epoch as a 64-bit value
// (a bigint result lands in EDX:EAX). SET_TICK (0x1001, arg1 = period in microseconds, 0 = off) makes the
// plug-in raise virtual IRQ 0 on the calling vCPU every period: it observes the world switches out of the
// guest ('switch' events, several per millisecond while the guest runs or halts) and raises the IRQ when
// the period has passed. Each vCPU worker loads its own copy, so the state below is per vCPU.
const HOST_TIME_NS = 0x1000;
const SET_TICK = 0x1001;

const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

export default function hostClock(host) {
  let periodNs = 0n;
  let next = 0n;
  host.hypercall(HOST_TIME_NS, 'HOST_TIME_NS', () => nowNs());
  host.hypercall(SET_TICK, 'SET_TICK', (vcpu, call) => {
    periodNs = BigInt(call.args[0]) * 1000n;
    next = nowNs() + periodNs;
    return 0;
  });
  host.on('switch', (ev, vcpu) => {
    if (periodNs === 0n || ev.dir !== 'out') return;
    const t = nowNs();
    if (t >= next) {
      next = t + periodNs;
      vcpu.raiseInterrupt(0);
    }
  });
}

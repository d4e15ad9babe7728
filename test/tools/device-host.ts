/** A device's view of guest memory for the device tests: a plain byte array (guest-physical 0 .. limit)
 *  that records kills, interrupts and console output, and throws on any byte access outside it (a device
 *  must check before it touches memory; the word accessors read 0 outside, as the Host's do). */
import type { DeviceHost } from '../../devices/virtio-console.ts';

export function plainDeviceHost(limit: number) {
  const buf = new Uint8Array(limit);
  const dv = new DataView(buf.buffer);
  const killed: string[] = [];
  const irqs: number[] = [];
  const out: number[] = [];
  const ok = (a: number, n: number) => a >= 0 && a + n <= limit;
  const host: DeviceHost = {
    limit,
    read8: (a) => (ok(a, 1) ? buf[a] : 0), read16: (a) => (ok(a, 2) ? dv.getUint16(a, true) : 0),
    read32: (a) => (ok(a, 4) ? dv.getUint32(a, true) : 0),
    write16: (a, v) => dv.setUint16(a, v, true), write32: (a, v) => dv.setUint32(a, v >>> 0, true),
    readBytes: (a, n) => { if (!ok(a, n)) throw new Error(`device read outside memory 0x${a.toString(16)}`); return buf.slice(a, a + n); },
    writeBytes: (a, b) => { if (!ok(a, b.length)) throw new Error('device write outside memory'); buf.set(b, a); },
    fill: (a, n, v) => buf.fill(v, a, a + n),
    kill: (r) => killed.push(r), irq: (n) => irqs.push(n), output: (b) => out.push(...b),
  };
  return { host, buf, dv, killed, irqs, out };
}

/**
 * The benchmark guests (guest-images/lguest/guests/bench-*.c, what bench/run.ts times) boot and check
 * themselves with small counts, in 2-level and PAE paging, and the Host's statistics show the events each
 * one exists to cause; bench-smp runs the workload on 2 and 3 vCPUs at once. Nothing here asserts a time:
 * benchmarks are not tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { VcpuWorkers, type LguestResult } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';

const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

const boot = (name: string, pae: boolean, cmdline: string, cpus = 1, pool = workers) =>
  bootGuest(name, { pae, cmdline, cpus, timeoutSec: 120 }, pool);

function expectPowerOff(out: string, r: LguestResult): void {
  expect(out).not.toMatch(/FAIL|PANIC/);
  expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
  expect(r.stats.shadow?.leakedFrames).toBe(0);
}

describe.concurrent.each([false, true])('benchmark guests (pae %s)', (pae) => {
  test('bench-lguest runs the workload and matches the reference checksum', async () => {
    const { out, r } = await boot('bench-lguest', pae, 'iters=10');
    expectPowerOff(out, r);
    // The same report as the bare kernel's (bench/workload/bench-10.expected) after its own first line.
    const expected = readFileSync(join(__dirname, '../../bench/workload/bench-10.expected'), 'latin1');
    expect(out).toBe('bench: the lguest-ts CPU workload, lguest guest\n' + expected.slice(expected.indexOf('\n') + 1));
    expect(out).toContain('checksum 0x061e6e72 (matches the reference)');
  });

  test('bench-lguest with no iterations passes too (bench/run.ts subtracts that run)', async () => {
    const { out, r } = await boot('bench-lguest', pae, 'iters=0');
    expectPowerOff(out, r);
    expect(out).toMatch(/\nPASS\n$/);
  });

  test('bench-hcall makes the hypercalls it was asked for', async () => {
    const { out, r } = await boot('bench-hcall', pae, 'calls=500');
    expectPowerOff(out, r);
    expect(out).toContain('bench-hcall: done\n');
    expect(r.stats.host.hypercalls.SEND_INTERRUPTS).toBe(500);
  });

  test('bench-fault: every touched page is a fault the Host fixes', async () => {
    const [small, big] = [await boot('bench-fault', pae, 'faults=0'), await boot('bench-fault', pae, 'faults=5000')];
    for (const { out, r } of [small, big]) expectPowerOff(out, r);
    expect(big.out).toContain('check: every write of the last round is in its frame (0 wrong): ok');
    // More than the window (4096 pages): the second round must fault again.
    expect(big.r.stats.host.faultsFixed - small.r.stats.host.faultsFixed).toBe(5000);
  });

  test('bench-switch: tasks in eight address spaces keep their memory across every switch', async () => {
    const [small, big] = [await boot('bench-switch', pae, 'switches=0'), await boot('bench-switch', pae, 'switches=160')];
    for (const { out, r } of [small, big]) expectPowerOff(out, r);
    expect(big.out).toContain('check: 8 of 8 tasks kept their memory and pid across every switch: ok');
    const pgtables = (x: LguestResult) => x.stats.host.hypercalls.NEW_PGTABLE ?? 0;
    expect(pgtables(big.r) - pgtables(small.r)).toBe(160);
    // Eight address spaces, four cached shadows: the cache misses on every switch.
    expect(big.r.stats.shadow!.cacheMisses - small.r.stats.shadow!.cacheMisses).toBeGreaterThanOrEqual(160);
  });
});

// bench-smp boots several vCPUs, each of which holds a worker for the whole boot: its own pool, and one
// test at a time (sharing the pool above with the concurrent tests could leave a boot waiting for a worker).
describe('bench-smp: the workload on every vCPU at once', () => {
  const smpWorkers = new VcpuWorkers(3);
  afterAll(() => smpWorkers.destroy());
  const PER_ITERATION = 178_000; // a little under the workload's 178,374 instructions per iteration

  /** The guest's output (its header comment says the same). */
  function expected(cpus: number, iters: number, pae: boolean, checksum: string, passed: number, reference: boolean): string {
    return [
      `bench-smp: the lguest-ts CPU workload on every vCPU at once (paging: ${pae ? 'PAE' : '2-level'})`,
      `bench-smp: vcpus: ${cpus}, iterations: ${iters} each`,
      ...Array.from({ length: cpus }, (_, v) => `bench-smp: vCPU ${v}: checksum ${checksum}, self-checks ${passed} passed, 0 failed`),
      reference
        ? `check: every vCPU's checksum is the reference for ${iters} iterations (${checksum}): ok`
        : `check: every vCPU's checksum is vCPU 0's (no reference for ${iters} iterations): ok`,
      'check: every vCPU passed its self-checks: ok',
      'bench-smp: done',
    ].join('\n') + '\n';
  }

  test.each([false, true])('--cpus 2, iters=10 (pae %s): both vCPUs get the reference checksum', async (pae) => {
    const { out, r } = await boot('bench-smp', pae, 'iters=10', 2, smpWorkers);
    expectPowerOff(out, r);
    // bench-lguest's checksum and self-checks for 10 iterations (21 per iteration), on each vCPU.
    expect(out).toBe(expected(2, 10, pae, '0x061e6e72', 210, true));
    // vCPU 0 started vCPU 1 and asked for a vCPU 2 that does not exist; vCPU 1 said it was done by IPI.
    expect(r.stats.host.hypercalls.VCPU_START).toBe(2);
    expect(r.stats.host.hypercalls.LGUEST_INIT).toBe(2);
    expect(r.stats.host.hypercalls.SEND_IPI).toBe(1);
    // Each vCPU retired the workload's instructions itself (what bench/run.ts adds up).
    expect(r.stats.vcpus.map((v) => v.vcpu)).toEqual([0, 1]);
    for (const v of r.stats.vcpus) expect(v.instructions).toBeGreaterThan(10 * PER_ITERATION);
  });

  test('--cpus 3, a count with no reference: every vCPU agrees with vCPU 0', async () => {
    const { out, r } = await boot('bench-smp', false, 'iters=3', 3, smpWorkers);
    expectPowerOff(out, r);
    expect(out).toBe(expected(3, 3, false, out.match(/vCPU 0: checksum (0x[0-9a-f]{8})/)![1], 63, false));
    for (const v of r.stats.vcpus) expect(v.instructions).toBeGreaterThan(3 * PER_ITERATION);
  });

  test('--cpus 1 with no iterations passes too (bench/run.ts subtracts that run)', async () => {
    const { out, r } = await boot('bench-smp', false, 'iters=0', 1, smpWorkers);
    expectPowerOff(out, r);
    expect(out).toBe(expected(1, 0, false, '0x00000000', 0, true));
    expect(r.stats.host.hypercalls.VCPU_START).toBe(1);
  });
});

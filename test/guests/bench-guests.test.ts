/**
 * The benchmark guests (guest-images/lguest/guests/bench-*.c, what bench/run.ts times) boot and check
 * themselves with small counts, in 2-level and PAE paging, and the Host's statistics show the events each
 * one exists to cause. Nothing here asserts a time: benchmarks are not tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bootLguest, VcpuWorkers, type LguestResult } from '../../launcher/lguest.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';

const MEM_MIB = 16;
const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

async function boot(name: string, pae: boolean, cmdline: string): Promise<{ out: string; r: LguestResult }> {
  const chunks: Buffer[] = [];
  const r = await bootLguest({
    image: readFileSync(join(IMAGE_DIR, `${name}${pae ? '-pae' : ''}.elf`)), imageName: name,
    memMiB: MEM_MIB, cpus: 1, pae, cmdline, onConsole: (b) => chunks.push(Buffer.from(b)), timeoutSec: 120,
  }, workers);
  return { out: Buffer.concat(chunks).toString('latin1'), r };
}

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

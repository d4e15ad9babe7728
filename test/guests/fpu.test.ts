/**
 * The fpu guest (guest-images/lguest/guests/fpu.c): lguest's lazy FPU switching. Ring-3 tasks use the
 * x87 at once under a 1 ms tick; the guest kernel asks for CR0.TS (hypercall 8) on every task switch and
 * switches the FPU state in its #NM handler. The Host must enter the guest with TS set exactly when the
 * guest asked (abi 4.10): then the #NM comes, is reflected, and every task's results are exact. A Host
 * that entered with TS clear whatever the guest asked gives no #NM, and the tasks overwrite each other's
 * x87 registers: the guest fails its own checks. With 2 vCPUs, vCPU 1 runs the same x87 loop in its kernel
 * at the same time (its FPU is its own, TS never set there).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';

const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

describe.each([false, true])('fpu guest (pae %s)', (pae) => {
  test.each([1, 2])('%s vCPU(s): lazy switching on a reflected #NM, every result exact', async (cpus) => {
    const { out, r } = await bootGuest('fpu', { pae, cpus, memMiB: 16, timeoutSec: 60 }, workers);
    expect(out).not.toMatch(/FAIL/);
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    const nm = /fpu: #NM handled (\d+) times, (\d+) of them switched the FPU; TS set on (\d+) task switches/.exec(out);
    expect(nm).not.toBeNull();
    // More #NM than tasks: every task took the FPU at least once and some took it back after a switch.
    expect(Number(nm![1])).toBeGreaterThan(4);
    expect(Number(nm![3])).toBeGreaterThan(0);
    for (let t = 1; t <= 4; t++) {
      for (const what of ['finished its work', 'sum ', 'sum of squares', 'series bits', 'control word', 'fsqrt', 'was preempted'])
        expect(out).toMatch(new RegExp(`check: task ${t}:? ${what}.*: ok`));
    }
    expect(out).toContain('check: the Host reflected #NM (lazy switching happened): ok');
    if (cpus === 2) expect(out).toContain('check: vCPU 1: 3 rounds of the loop exact, beside vCPU 0\'s tasks: ok');
    else expect(out).toContain('fpu: vCPU 1 absent (--cpus 1)');
    // The Host saw each #NM (trap 7) and reflected it: none stays in the Host when the guest set TS.
    expect(r.stats.host.traps['7'] ?? 0).toBeGreaterThanOrEqual(Number(nm![1]));
    expect(out).toContain('fpu: done\n');
  }, 90_000);
});

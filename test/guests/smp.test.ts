/**
 * SMP guests (lguest-ts's extension, switcher/README.md): the smp guest starts its secondaries with
 * VCPU_START, and checks on every vCPU at once what the Host promises: per-vCPU lguest_data, IDT, GDT and
 * clock, IPIs that wake a halted vCPU, LOCK-prefixed instructions that stay atomic across worker threads,
 * TLB shootdown that reaches every vCPU before SET_PTE / SET_PGD / SET_PMD returns, and code one vCPU
 * rewrites that another runs. Each forbidden act
 * ends the whole guest with its reason and the vCPU it happened on.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';

// Enough threads for the largest guest below; tests run one at a time (this machine has 2 cores).
const workers = new VcpuWorkers(4);
afterAll(() => workers.destroy());

const boot = (cpus: number, pae = false, cmdline = '', pool: VcpuWorkers = workers) =>
  bootGuest('smp', { cpus, pae, cmdline, timeoutSec: 120 }, pool);

/** The guest's output for `cpus` vCPUs (its header comment says the same). */
function expected(cpus: number, pae: boolean): string {
  const lines = [
    `smp: VCPU_START, SEND_IPI, atomics and TLB shootdown (paging: ${pae ? 'PAE' : '2-level'})`,
    `smp: vcpus: ${cpus}`,
  ];
  if (cpus === 1) lines.push('smp: one vCPU: nothing to check across vCPUs');
  else {
    lines.push(...[
      'every secondary came up: LGUEST_INIT with its own lguest_data, its id in EAX',
      'every secondary took one tick of its own clock through its own IDT (time written)',
      'lock xaddl: 10000 adds per vCPU, total exact, old values sum to 0+1+...+(total-1)',
      'lock incl: 10000 per vCPU, total exact',
      'lock cmpxchgl retry loop: 10000 increments per vCPU, total exact',
      'xchg spinlock around a plain read-increment-write: 10000 per vCPU, total exact',
      'IPIs: 5 rounds; each IPI woke its secondary from HALT and ran its handler once',
      'an IPI to a blocked IRQ waited, and was delivered once unblocked',
      'TLB shootdown (SET_PTE): no secondary read the old frame after the remap; all read the new',
      `TLB shootdown (${pae ? 'SET_PMD' : 'SET_PGD'}): no secondary read the old frame after the remap; all read the new`,
      "per-vCPU GDT: every vCPU's TLS segment (%gs:0) is its own",
      'cross-modifying code: every secondary ran the instructions vCPU 0 rewrote, not its old copy',
      'every secondary parked',
    ].map((l) => `check: ${l}: ok`));
  }
  lines.push('smp: done');
  return lines.join('\n') + '\n';
}

describe('the smp guest', () => {
  test.each([
    [1, false], [2, false], [4, false], [2, true], [3, true],
  ])('--cpus %i (pae %s): every check passes and the guest powers off', async (cpus, pae) => {
    const { out, r } = await boot(cpus, pae);
    expect(out).toBe(expected(cpus, pae));
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    // vCPU 0 asked for vCPUs 1..cpus-1 and then for one more, which does not exist.
    expect(r.stats.host.hypercalls.VCPU_START).toBe(cpus);
    expect(r.stats.vcpus.map((v) => v.vcpu)).toEqual([...Array(cpus).keys()]);
    for (const v of r.stats.vcpus) {
      expect(v.started).toBe(true);
      expect(v.instructions).toBeGreaterThan(0);
    }
    if (cpus > 1) {
      expect(r.stats.host.hypercalls.SEND_IPI).toBeGreaterThan(0);
      expect(r.stats.host.hypercalls.LGUEST_INIT).toBe(cpus);
    }
    // The shared shadow tables were torn down once, with every guest frame reference given back.
    expect(r.stats.shadow?.leakedFrames).toBe(0);
  });

  test('a secondary the guest never starts costs nothing and does not hold the guest up', async () => {
    const { out, r } = await bootGuest('hello', { memMiB: 8, cpus: 3 }, workers);
    expect(r.fate.kind).toBe('poweroff');
    expect(out).toContain('hello: done');
    expect(r.stats.vcpus).toEqual([
      expect.objectContaining({ vcpu: 0, started: true }),
      { vcpu: 1, instructions: 0, started: false },
      { vcpu: 2, instructions: 0, started: false },
    ]);
  });

  test('a worker pool smaller than the guest is not used: the boot gets its own', async () => {
    const small = new VcpuWorkers(1);
    try {
      const { out, r } = await boot(2, false, '', small);
      expect(r.fate.kind).toBe('poweroff');
      expect(out).toBe(expected(2, false));
    } finally {
      await small.destroy();
    }
  });
});

describe('misbehaving SMP guests: the whole guest ends, with the reason and the vCPU', () => {
  test.each([
    ['bad-start', 'vCPU 0: VCPU_START: vCPU 1 is already running'],
    ['start0', 'vCPU 0: VCPU_START: vCPU 0 is already running'],
    ['bad-ipi', 'vCPU 0: SEND_IPI to vCPU 99: the guest has 2'],
    ['bad-irq', 'vCPU 0: SEND_IPI of IRQ 32'],
    ['noinit', 'vCPU 1: hypercall 5 before INIT'],
    ['sec-hcall', 'vCPU 1: Bad hypercall 99'],
    ['sec-fault', /^vCPU 1: CRASH: vCPU 1: unexpected trap 0 \(divide error\) at eip [0-9a-f]+/],
  ] as Array<[string, string | RegExp]>)('smp=%s', async (name, reason) => {
    const { out, r } = await boot(2, false, `smp=${name}`);
    expect(out).toContain(`smp: misbehave ${name}: `);
    expect(out).not.toContain('FAIL');
    expect(r.fate.kind).toBe('killed');
    if (typeof reason === 'string') expect(r.fate.reason).toBe(reason);
    else expect(r.fate.reason).toMatch(reason);
  });
});

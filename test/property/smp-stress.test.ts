/**
 * The Host's shared shadow paging under contention (switcher/README.md, "SMP guests"): the smp-stress
 * guest (guest-images/lguest/guests/smp-stress.c) has every vCPU at once remap, unmap, silently change and
 * re-table pages of its own top levels (3 per vCPU, so 3N + 1 top levels for the Host's 4 cached shadows:
 * evictions while other vCPUs run), switch between them, and read shared kernel pages that their owners
 * remap and whose page table one vCPU at a time replaces, all in a seeded order; it checks every read
 * itself and its locked counters at the end, and shuts down naming the vCPU, round and what was wrong.
 * Here: --cpus 2 and 3, 2-level and PAE, one boot per seed, each must power off with exactly the lines
 * the guest's header comment gives for (N, seed, rounds), give back every guest frame reference, evict
 * shadows, and show the Host the hypercalls the guest says it made.
 *
 * SMP_STRESS_RUNS seeds per configuration (default 3: 12 boots, the file takes about 20 s on two cores;
 * a boot is about 0.8 s plus 10-25 ms a round), SMP_STRESS_SEED the first seed (default 1),
 * SMP_STRESS_ROUNDS rounds per boot (default 40). A failing
 * boot names its seed; run it alone with `lguest-ts run guest-images/build/smp-stress[-pae].elf [--pae]
 * --cpus N --mem 8 --stats --cmdline "seed=S rounds=M"`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest } from '../tools/boot.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';

const RUNS = Number(process.env.SMP_STRESS_RUNS ?? 3);
const FIRST_SEED = Number(process.env.SMP_STRESS_SEED ?? 1);
const ROUNDS = Number(process.env.SMP_STRESS_ROUNDS ?? 40);
const MEM_MIB = 8;

// The guest's numbers (smp-stress.c): top levels per vCPU, shared pages and their remaps per round of
// their owner, pages per async batch, and each vCPU's operations per round.
const NSPACES = 3, NSHARED = 4, SH_REMAPS = 2, ASYNC_PAGES = 4;
const PER_ROUND = { switch: 3, remap: 4, unmap: 2, async: 2, silentUser: 1, silentKernel: 1, table: 1, visit: 1 };

const workers = new VcpuWorkers(3);
afterAll(() => workers.destroy());
const images = {
  false: readFileSync(join(IMAGE_DIR, 'smp-stress.elf')),
  true: readFileSync(join(IMAGE_DIR, 'smp-stress-pae.elf')),
};

const boot = (cpus: number, pae: boolean, seed: number, rounds: number) =>
  bootGuest('smp-stress', { image: images[`${pae}`], memMiB: MEM_MIB, cpus, pae, cmdline: `seed=${seed} rounds=${rounds}`, timeoutSec: 300 }, workers);

/** The guest's output for N vCPUs, a seed and M rounds: only counts that do not depend on timing. */
function expected(n: number, pae: boolean, seed: number, m: number): string {
  const nm = n * m;
  const table = pae ? 'SET_PMD' : 'SET_PGD';
  return [
    `smp-stress: shadow paging from every vCPU at once (paging: ${pae ? 'PAE' : '2-level'})`,
    `smp-stress: vcpus: ${n}, seed: ${seed}, rounds: ${m}`,
    'check: every secondary came up, waiting for the others to be set up: ok',
    `smp-stress: ${n} vCPUs x ${NSPACES} top levels + kernel_mm = ${n * NSPACES + 1} top levels for the Host's 4 cached shadows`,
    `check: private pages: ${PER_ROUND.remap * nm} remaps (SET_PTE), ${PER_ROUND.unmap * nm} unmapped first, ` +
      `${PER_ROUND.async * ASYNC_PAGES * nm} via the async ring, ${PER_ROUND.silentUser * nm} silent + FLUSH_TLB(0): ok`,
    `check: page tables replaced under live mappings: ${PER_ROUND.table * nm} with ${table}: ok`,
    `check: own kernel pages: ${PER_ROUND.silentKernel * nm} silent changes + FLUSH_TLB(1), seen at once: ok`,
    `check: address-space switches: ${PER_ROUND.switch * nm} NEW_PGTABLE, ${PER_ROUND.visit * nm} visits checking a whole top level: ok`,
    `check: shared pages: ${NSHARED * SH_REMAPS * m} remaps (SET_PTE), ${m} tables replaced (${table}); no read older than the last published: ok`,
    "check: locked counters: every total equals the sum of the vCPUs' own counts: ok",
    `check: afterwards, every page of the ${n * NSPACES} top levels read back on vCPU 0: ok`,
    'smp-stress: done',
  ].join('\n') + '\n';
}

const configs: Array<[number, boolean]> = [[2, false], [2, true], [3, false], [3, true]];
const cases: Array<[number, boolean, number]> = [];
for (const [cpus, pae] of configs) {
  for (let i = 0; i < RUNS; i++) cases.push([cpus, pae, FIRST_SEED + i]);
}

describe('smp-stress: shadow paging from every vCPU at once', () => {
  test.each(cases)('--cpus %i (pae %s), seed %i', async (cpus, pae, seed) => {
    const { out, r } = await boot(cpus, pae, seed, ROUNDS);
    const tag = `seed=${seed} rounds=${ROUNDS} --cpus ${cpus}${pae ? ' --pae' : ''}`;
    expect(r.fate, tag).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(out, tag).toBe(expected(cpus, pae, seed, ROUNDS));
    expect(r.stats.vcpus.map((v) => v.started)).toEqual(Array(cpus).fill(true));
    // Every guest frame reference given back at teardown; 3N + 1 top levels cannot stay in 4 slots.
    expect(r.stats.shadow?.leakedFrames).toBe(0);
    expect(r.stats.shadow?.cacheEvictions).toBeGreaterThan(0);
    // The Host saw at least what the guest did in its rounds (the ring's calls are counted too).
    const h = r.stats.host.hypercalls, nm = cpus * ROUNDS;
    expect(h.LGUEST_INIT).toBe(cpus);
    expect(h.NEW_PGTABLE).toBeGreaterThanOrEqual((PER_ROUND.switch + PER_ROUND.visit) * nm);
    expect(h.FLUSH_TLB).toBeGreaterThanOrEqual((PER_ROUND.silentUser + PER_ROUND.silentKernel) * nm);
    expect(h.SET_PTE).toBeGreaterThanOrEqual((PER_ROUND.remap + 2 * PER_ROUND.unmap + PER_ROUND.async * ASYNC_PAGES) * nm + NSHARED * SH_REMAPS * ROUNDS);
    if (pae) expect(h.SET_PMD).toBeGreaterThanOrEqual(PER_ROUND.table * nm + ROUNDS);
    else expect(h.SET_PGD).toBeGreaterThanOrEqual(PER_ROUND.table * nm + ROUNDS * (cpus * NSPACES + 1));
  });

  // More vCPUs than the seed's 4 cached shadow top levels, each on a top level of its own: the Host keeps
  // a slot per vCPU (mmu/shadow.ts cacheSize), never one another vCPU runs on. (It once handed a running
  // vCPU's slot to the one switching, which then read through another vCPU's top level.)
  test('--cpus 5: more vCPUs than the seed\'s 4 cached top levels', async () => {
    const { out, r } = await boot(5, false, FIRST_SEED, ROUNDS);
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(out).toBe(expected(5, false, FIRST_SEED, ROUNDS));
  });
});

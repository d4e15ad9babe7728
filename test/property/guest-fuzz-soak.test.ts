/**
 * The soak at CI size (test/soak/soak.ts; `npm run soak -- --minutes N` is the long one): the fuzz-soak
 * guest's hostile acts, survivable ones in a loop on 1 and 2 vCPUs, 2-level and PAE, with and without
 * the virtio entropy device, and every potentially fatal act once per paging mode in a short boot of its
 * own, until SOAK_ACTS hostile acts (default 1,000,000) were made. It fails on any Host exception or
 * worker failure, leaked shadow frame or Host pool page, changed canary byte around guest RAM and the
 * Host pool, hang (a wall-time bound per boot), kill for no act or for a reason that does not belong to
 * the act announced, act the Host must refuse that it let pass, or failed check of the guest's own.
 *
 * SOAK_SEED moves the seeds (default 1). FUZZ_KNOWN_BUGS=all adds the acts that find Host bugs not fixed
 * on this branch yet (test/soak/acts.ts: smp-regs, pae-stack, shadow-pool).
 */
import { describe, expect, it } from 'vitest';
import { formatSummary, runSoak } from '../soak/soak.ts';

const ACTS = Number(process.env.SOAK_ACTS ?? 1_000_000);
const SEED = Number(process.env.SOAK_SEED ?? 1);

describe('the soak at CI size', () => {
  it(`${ACTS.toLocaleString('en-US')} hostile acts: no Host exception, leak, canary damage, hang or wrong kill`, async () => {
    const s = await runSoak({ acts: ACTS, seed: SEED, log: () => {} });
    console.log(formatSummary(s));
    expect(s.problems).toEqual([]);
    expect(s.acts).toBeGreaterThanOrEqual(ACTS);
    // every fatal act that is not gated was made and killed for its reason at least once
    expect(s.fates.killed).toBeGreaterThan(60);
  }, 20 * 60_000);
});

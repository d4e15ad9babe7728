/**
 * The x87 vectors recorded on hardware (test/gen-fpu, docs/cpu-test-format-x87.md) through every engine.
 * Every vector must match; the transcendental vectors (fpu-trans.json) carry ulp_tolerance 1 (the SDM
 * specifies those results to within an error, and the recording CPU's are not correctly rounded), so a
 * result register there may differ by one unit in the last place (C1 then not compared) -- but only
 * rarely: 97% of them must be bit-exact too.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VectorRunner, loadVectorFile } from '../../emulator/cputest.ts';

const dir = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir).filter((f) => f.startsWith('fpu-') && f.endsWith('.json')).sort();

for (const engine of ['interpreter', 'handlers', 'compiled'] as const)
describe(`x87 vectors from this machine's CPU (${engine})`, () => {
  const runner = new VectorRunner({ engine });
  it('has the committed x87 vector set (at least 20,000 vectors)', () => {
    expect(files.length).toBe(7);
    const n = files.reduce((s, f) => s + loadVectorFile(join(dir, f)).length, 0);
    expect(n).toBeGreaterThanOrEqual(20000);
  });
  for (const f of files) {
    it(f, () => {
      const failures: string[] = [];
      let exact = 0, total = 0;
      for (const v of loadVectorFile(join(dir, f))) {
        const r = runner.run(v);
        total++;
        if (r.ok && !r.approx) exact++;
        if (!r.ok && failures.length < 10) failures.push(`${r.name}: ${r.problems.join('; ')}`);
      }
      expect(failures).toEqual([]);
      // the tolerance must stay an exception: 97% of the transcendentals are bit-exact, the rest all
      if (f === 'fpu-trans.json') expect(exact / total).toBeGreaterThan(0.97);
      else expect(exact).toBe(total);
    });
  }
});

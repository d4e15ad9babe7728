/**
 * Every committed CPU test vector (made on real hardware by test/gen) runs through the cpu-test runner.
 * One test per file; a failure lists the first vectors that differ.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VectorRunner, loadVectorFile } from '../../emulator/cputest.ts';

const dir = dirname(fileURLToPath(import.meta.url));
// the x87 vectors (fpu-*.json) have their own test: fpu-vectors.test.ts
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('fpu-')).sort();

for (const engine of ['interpreter', 'handlers', 'compiled'] as const)
describe(`CPU test vectors from this machine's CPU (${engine})`, () => {
  const runner = new VectorRunner({ engine });
  it('has the committed vector set', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });
  for (const f of files) {
    it(f, () => {
      const vectors = loadVectorFile(join(dir, f));
      expect(vectors.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const v of vectors) {
        const r = runner.run(v);
        if (!r.ok && failures.length < 10) failures.push(`${r.name}: ${r.problems.join('; ')}`);
      }
      expect(failures).toEqual([]);
    });
  }
});

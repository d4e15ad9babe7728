/**
 * The bare-mode system test kernels (test/machine/kernels/README.md), each booted in-process: console
 * output plus `exit status: N`, line for line against NAME.manual, what a machine that follows the Intel
 * SDM on every check prints.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNELS, KERNEL_DIR, lineDiff, lines, runKernel } from './helpers.ts';

describe('bare-mode test kernels against the manual', () => {
  for (const name of KERNELS) {
    it(`${name}: every check as the SDM prescribes`, () => {
      const want = lines(readFileSync(resolve(KERNEL_DIR, `${name}.manual`), 'utf8'));
      const { lines: got, result } = runKernel(name);
      expect(lineDiff(got, want), `${name} differs from ${name}.manual`).toEqual([]);
      expect(result.reason).toBe('device-exit');
      expect(got[got.length - 2]).toMatch(/^summary: \d+ checks, 0 failed$/);
    });
  }
});

/**
 * Tests that need an outside tool (QEMU, gdb, a 32-bit-capable gcc, nasm) go through `skipUnless`.
 * Outside CI, a missing tool skips the suite and says why on stderr. In CI (CI=true, as `.ci/run` runs),
 * a missing tool is a failure: the suite is replaced by one failing test naming the tool, so a green CI run
 * can never hide a skipped comparison. `.ci/run` installs every tool these tests use.
 */
import { spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';

/** True when running under CI (CI=true or any non-empty value other than "false"/"0"). */
export const inCI = (() => {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
})();

/** Null when `command args...` runs and exits 0, else a sentence saying what is missing. */
export function probe(command: string, args: string[], what = command): string | null {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0 ? null : `${what} is not available`;
}

/**
 * Returns true when the suite must be skipped (`describe.skipIf(skipUnless(...))`). `missing` is null when
 * everything is there, else why not. In CI it registers a failing test instead and returns true.
 */
export function skipUnless(suite: string, missing: string | null, install: string): boolean {
  if (missing === null) return false;
  if (inCI) {
    describe(suite, () => {
      it('has the tools it needs (CI=true: a missing tool fails the run)', () => {
        throw new Error(`${missing}; in CI this is a failure, not a skip (install: ${install})`);
      });
    });
  } else {
    console.warn(`${suite}: skipped: ${missing} (install: ${install})`);
  }
  return true;
}

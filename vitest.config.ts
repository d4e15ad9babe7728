import { defineConfig } from 'vitest/config';

// A test that hangs must fail in about a minute, not after five: 90 s is the budget of any one test (the
// slowest, make check of every image, takes ~15 s on an idle 2-core machine and ~45 s on a loaded one);
// the few longer runs (property tests) set their own, larger bound next to their size knob.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: 'forks',
  },
});

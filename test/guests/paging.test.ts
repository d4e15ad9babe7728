/**
 * The paging guest (guest-images/lguest/guests/paging.c) stresses shadow paging end to end: copy-on-write
 * between ring-3 address spaces, more address spaces than the Host caches shadows for, a large mapping,
 * kernel-mapping changes that must reach every cached shadow, unmapping, protection changes, SET_PMD /
 * SET_PGD, FLUSH_TLB, and accessed/dirty write-back. Booted through the CLI as a user would, in 2-level and
 * PAE paging: every check passes, exit status 0, and the statistics show no leaked frame references and
 * shadow cache evictions (10 address spaces, 4 cached top levels).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cli } from '../tools/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'lguest-paging-'));


/** Check lines both variants print, in this order. */
const COMMON: RegExp[] = [
  /^check: ring-3 agent reads its data and fills its pages in 10 address spaces: ok$/,
  /^check: ring-3 writes reached each space's own frames \(0 wrong\): ok$/,
  /^check: ring-3 read of a kernel page faults \(error 5, cr2 d0000000\): ok$/,
  /^check: user PTEs: read sets A, write sets A\|D, read then write ends A\|D .*: ok$/,
  /^check: user PTEs: A and D come back after the guest cleared them .*: ok$/,
  /^check: kernel PTE: read sets A, write sets D, D comes back after clearing .*: ok$/,
  /^check: 10 spaces read the shared copy-on-write frame: ok$/,
  /^check: a ring-3 write to the shared page faulted \(error 7\), was copied and resumed: ok$/,
  /^check: after the copy the writer sees its data, the others the shared frame .*: ok$/,
  /^check: a second space copies too: .*: ok$/,
  /^check: the copied page is writable without further faults: ok$/,
  /^check: 6144 KiB mapped at 10200000, written from ring 3, right frames \(0 wrong\): ok$/,
  /^check: read back in place and through a read-only alias in another space: ok$/,
  /^check: a write through the read-only alias faults \(error 7\): ok$/,
  /^check: every written page is A\|D, every aliased read-only page A only \(0 wrong\): ok$/,
  /^check: 60 visits over 6 rounds: .*: ok$/,
  /^check: every space has its own COW copy \(10 faults\), the shared frame is unchanged: ok$/,
  /^check: kernel SET_PTE \(through kernel_mm\) seen by 10 of 10 spaces: ok$/,
  /^check: kernel SET_PTE \(through a user top level\) seen by 10 of 10 spaces: ok$/,
  /^check: an unmapped kernel page faults \(error 0\) in 10 of 10 spaces: ok$/,
  /^check: kernel RW -> RO: 10 spaces read it, 10 writes fault \(error 3\): ok$/,
  /^check: silent kernel PTE change \+ FLUSH_TLB\(1\) seen by 10 of 10 spaces: ok$/,
  /^check: and back with SET_PTE in 10 of 10 spaces: ok$/,
  /^check: unmapped user page faults \(error 4\), the same address in another space still works: ok$/,
  /^check: mapped again, it reads [0-9a-f]{8}: ok$/,
  /^check: user RW -> RO: the write faults \(error 7\), reads still work, other spaces still write: ok$/,
  /^check: RO -> RW: writable again, D set: ok$/,
  /^check: user SET_P(GD|MD): a new PTE page for 00c00000 is used, the rest unchanged: ok$/,
  /^check: ring-3 writes through the new table reach its frames: ok$/,
  /^check: silent user PTE change \+ FLUSH_TLB\(0\) reads the new frame \(f1005ed0\): ok$/,
  /^check: and back \([0-9a-f]{8}\): ok$/,
  /^check: after everything, all 10 spaces and the large mapping are intact: ok$/,
];

/** Lines only the PAE variant prints (kernel SET_PMD). */
const PAE_ONLY: RegExp[] = [
  /^check: kernel SET_PMD: a new PTE page seen by 10, its replacement by 10 of 10 spaces: ok$/,
  /^check: kernel SET_PMD clearing the entry: 10 of 10 spaces fault: ok$/,
];

describe.concurrent.each([false, true])('paging guest (pae %s)', (pae) => {
  test('every check passes, exit 0, no leaked frames, shadow cache evictions', async () => {
    const json = join(dir, `stats-${pae ? 'pae' : '2level'}.json`);
    const r = await cli('run', 'paging', '--mem', '16', ...(pae ? ['--pae'] : []), '--stats-json', json);
    expect(r.stdout).not.toMatch(/FAIL|PANIC/);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`paging: ${pae ? 'PAE' : '2-level'}, 10 address spaces, agent 117 bytes`);
    const checks = lines.filter((l) => l.startsWith('check: '));
    expect(checks.every((l) => l.endsWith(': ok'))).toBe(true);
    expect(checks).toHaveLength(COMMON.length + (pae ? PAE_ONLY.length : 0));
    for (const re of [...COMMON, ...(pae ? PAE_ONLY : [])]) expect(checks.some((l) => re.test(l)), `${re}`).toBe(true);
    expect(checks.some((l) => l.includes(pae ? 'user SET_PMD' : 'user SET_PGD'))).toBe(true);
    expect(r.stdout).toMatch(/\npaging: done\n$/);

    const stats = JSON.parse(readFileSync(json, 'utf8'));
    expect(stats.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(stats.shadow.leakedFrames).toBe(0);
    // 10 address spaces round robin, 4 cached shadow top levels: the cache must have thrown some out.
    expect(stats.shadow.cacheEvictions).toBeGreaterThan(0);
    expect(stats.host.hypercalls.FLUSH_TLB).toBe(4);
    if (pae) expect(stats.host.hypercalls.SET_PMD).toBeGreaterThan(0);
  });
});

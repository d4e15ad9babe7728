/** When the CLI runs the compiled build and when it falls back to the sources (launcher/build-state.mjs,
 *  launcher/bin.mjs): a stale build must never run in place of the code on disk. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildIsCurrent } from '../../launcher/build-state.mjs';

const dir = mkdtempSync(join(tmpdir(), 'lguest-build-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tree(name: string, sourcesAt: number | undefined, sources: Record<string, number>): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'dist'), { recursive: true });
  if (sourcesAt !== undefined) writeFileSync(join(root, 'dist/build.json'), JSON.stringify({ sourcesAt }));
  for (const [file, mtimeMs] of Object.entries(sources)) {
    const p = join(root, file);
    mkdirSync(resolve(p, '..'), { recursive: true });
    writeFileSync(p, '');
    utimesSync(p, mtimeMs / 1000, mtimeMs / 1000);
  }
  return root;
}

describe('build-state', () => {
  const t = 1_700_000_000_000;
  test('current: every source older than the build', () => {
    expect(buildIsCurrent(tree('a', t, { 'emulator/cpu.ts': t - 5000, 'launcher/commands/run.ts': t - 1 }))).toBe(true);
  });
  test('stale: one source, however deep, changed after the build started', () => {
    expect(buildIsCurrent(tree('b', t, { 'emulator/cpu.ts': t - 5000, 'launcher/commands/run.ts': t + 1000 }))).toBe(false);
    expect(buildIsCurrent(tree('c', t, { 'devices/virtio/x.ts': t + 1 }))).toBe(false);
  });
  test('no build, or no stamp: not current', () => {
    expect(buildIsCurrent(tree('d', undefined, { 'emulator/cpu.ts': t }))).toBe(false);
    expect(buildIsCurrent(join(dir, 'nowhere'))).toBe(false);
  });
  test('an installed package (a build, no sources) is current; other files do not count', () => {
    expect(buildIsCurrent(tree('e', t, {}))).toBe(true);
    expect(buildIsCurrent(tree('f', t, { 'test/x.ts': t + 1000, 'emulator/README.md': t + 1000 }))).toBe(true);
  });
  test('the command says what is wrong when there is neither a build nor tsx', () => {
    const root = tree('g', undefined, {});
    mkdirSync(join(root, 'launcher'));
    for (const f of ['bin.mjs', 'build-state.mjs']) writeFileSync(join(root, 'launcher', f), readFileSync(resolve(__dirname, '../../launcher', f)));
    const r = spawnSync(process.execPath, [join(root, 'launcher/bin.mjs'), '--version'], { encoding: 'utf8', timeout: 30_000, cwd: root });
    expect(r.stderr.trim()).toBe('lguest-ts: no current build in dist/ and tsx is not installed: run `npm install` (or `npm run build`)');
    expect(r.status).toBe(70);
  });
});

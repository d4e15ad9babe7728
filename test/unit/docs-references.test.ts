/**
 * The project's own documentation is in the repository: every "abi N.N" a comment, header or README cites
 * is a section of docs/abi.md, and no file sends a reader to a shared/ folder a clone does not have.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const DIRS = ['launcher', 'switcher', 'mmu', 'devices', 'emulator', 'test', 'bench', 'guest-images', 'docs'];
const TEXT = /\.(ts|mjs|md|c|h|S|ld|mk|sh|json)$|^Makefile$/;
const SKIP = new Set(['node_modules', 'build', 'vectors', '.git']);

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (TEXT.test(name)) yield p;
  }
}

const sources = [join(ROOT, 'README.md'), ...DIRS.flatMap((d) => [...files(join(ROOT, d))])]
  .map((f) => ({ file: relative(ROOT, f), text: readFileSync(f, 'utf8') }));

const abi = readFileSync(join(ROOT, 'docs/abi.md'), 'utf8');
/** Section numbers of docs/abi.md ("1", "1.3", ...) and the numbered items of 6.7. */
const sections = new Set([...abi.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]));
const items67 = abi.slice(abi.indexOf('### 6.7'), abi.indexOf('## 7.'));
const itemCount = [...items67.matchAll(/^(\d+)\. /gm)].length;

test('docs/abi.md has the sections the code cites', () => {
  expect(sections.size).toBeGreaterThan(40);
  const bad: string[] = [];
  for (const { file, text } of sources) {
    if (file === 'docs/abi.md') continue;
    for (const m of text.matchAll(/\babi (?:section |sections )?(\d+(?:\.\d+)?)(?:\.(\d+)|(?: items?) (\d+)(?:-(\d+))?)?/g)) {
      const [, sec, dotted, item, itemTo] = m;
      if (!sections.has(sec)) bad.push(`${file}: ${m[0]}`);
      for (const n of [dotted, item, itemTo]) if (n !== undefined && (sec !== '6.7' || Number(n) > itemCount)) bad.push(`${file}: ${m[0]}`);
    }
  }
  expect(bad).toEqual([]);
});

test('no file sends a reader to a shared/ folder (the docs are in docs/)', () => {
  const hits = sources.filter(({ text }) => /\bshared\/(docs|seeds)\b|lguest-abi\.md|\bDESIGN\.md/.test(text)).map((s) => s.file);
  expect(hits).toEqual([]);
});

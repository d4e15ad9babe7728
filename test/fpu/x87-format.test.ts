/**
 * The x87 fields of a vector file are checked when it is loaded: a malformed one is one clear error, never
 * a JavaScript exception while running (docs/cpu-test-format-x87.md).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadVectorFile } from '../../emulator/cputest.ts';

const good = JSON.parse(readFileSync(join(__dirname, '../vectors/fpu-arith.json'), 'utf8'))[0];
const dir = mkdtempSync(join(tmpdir(), 'x87-format-'));

function load(v: unknown): string {
  const p = join(dir, 'v.json');
  writeFileSync(p, JSON.stringify([v]));
  try {
    loadVectorFile(p);
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
}

it('accepts a recorded x87 vector', () => {
  expect(load(good)).toBe('ok');
});

it.each([
  ['a register that is not 20 hex digits', (v: any) => { v.initial.fpu.st[2] = '3fff8000'; }, /st must be 8 strings/],
  ['seven registers', (v: any) => { v.final.fpu.st.pop(); }, /st must be 8 strings/],
  ['no control word', (v: any) => { delete v.initial.fpu.fcw; }, /lacks fcw/],
  ['a status mask that is not a number', (v: any) => { v.fsw_mask = '0xffff'; }, /fsw_mask must be a number/],
  ['a ram mask that is not addresses', (v: any) => { v.ram_mask = [1, 'x']; }, /ram_mask must be an array/],
])('rejects %s with one line naming the vector', (_name, mutate, re) => {
  const v = structuredClone(good);
  mutate(v);
  const msg = load(v);
  expect(msg).toMatch(re);
  expect(msg).toContain(good.name);
  expect(msg).not.toContain('\n');
});

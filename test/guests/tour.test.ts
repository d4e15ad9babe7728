/**
 * The guided tour (npm run tour, test/tools/tour.ts): one tag syntax, each tag once, the Launcher, the
 * whole Host and the devices on it in reading order, and no tagged comment that the tour would skip.
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { expect, test } from 'vitest';
import { collectTour, STOP, TAG_LIKE, tourFiles } from '../tools/tour.ts';

const ROOT = resolve(__dirname, '../..');
const stops = collectTour();
const tags = stops.map((s) => `${s.part}:${s.num}`);
const folder = (file: string) => file.split('/')[0];

test('each tag once, each stop says something, parts in reading order (Launcher, Host, Devices)', () => {
  expect(new Set(tags).size).toBe(tags.length);
  for (const s of stops) expect(s.text.length, `${s.file}:${s.line}`).toBeGreaterThan(10);
  expect([...new Set(stops.map((s) => s.part))]).toEqual(['L', 'H', 'D']);
  expect(tags.indexOf('L:100')).toBe(0);
  expect(stops.filter((s) => s.part === 'L').length).toBeGreaterThanOrEqual(5);
  expect(stops.filter((s) => s.part === 'H').length).toBeGreaterThanOrEqual(25);
});

test('every Host folder is on the tour: switcher/, mmu/, launcher/, devices/', () => {
  const seen = new Set(stops.map((s) => folder(s.file)));
  for (const d of ['switcher', 'mmu', 'launcher', 'devices']) expect(seen, `${d}/ has no stop`).toContain(d);
});

test('the Host reads in order: start-up and run loop, traps, then shadow paging (mmu/) as one chapter, then interrupts and hypercalls', () => {
  const host = stops.filter((s) => s.part === 'H');
  const inMmu = host.map((s) => folder(s.file) === 'mmu');
  const first = inMmu.indexOf(true), last = inMmu.lastIndexOf(true);
  expect(first).toBeGreaterThan(0);
  expect(inMmu.slice(first, last + 1).every(Boolean), 'the shadow paging stops are not contiguous').toBe(true);
  // The page-fault trap leads into demandPage, and the interrupts follow the shadow chapter.
  expect(host[first - 1].file).toBe('switcher/core.ts');
  expect(host[first].text).toMatch(/demandPage/);
  expect(host[last + 1].file).toBe('switcher/interrupts.ts');
});

test('no tagged comment is skipped: every comment that starts with something like a tag is a stop', () => {
  const skipped: string[] = [];
  for (const f of tourFiles()) {
    readFileSync(f, 'utf8').split('\n').forEach((l, i) => {
      if (TAG_LIKE.test(l) && !STOP.test(l)) skipped.push(`${relative(ROOT, f)}:${i + 1}: ${l.trim()}`);
    });
  }
  expect(skipped).toEqual([]);
});

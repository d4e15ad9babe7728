/** The Host's guided tour (npm run tour) has its stops, each tag once. */
import { expect, test } from 'vitest';
import { collectTour } from '../tools/tour.ts';

test('the tour covers the Launcher and the Host, each tag once, in order', () => {
  const stops = collectTour();
  const tags = stops.map((s) => `${s.part}:${s.num}`);
  expect(new Set(tags).size).toBe(tags.length);
  expect(stops.filter((s) => s.part === 'L').length).toBeGreaterThanOrEqual(5);
  expect(stops.filter((s) => s.part === 'H').length).toBeGreaterThanOrEqual(25);
  expect(tags.indexOf('L:100')).toBeGreaterThanOrEqual(0);
  expect(tags.indexOf('L:100')).toBeLessThan(tags.indexOf('H:10'));
  for (const s of stops) expect(s.text.length, `${s.file}:${s.line}`).toBeGreaterThan(10);
});

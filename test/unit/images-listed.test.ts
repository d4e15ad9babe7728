/** `lguest-ts images` lists every bundled image (a guest built but listed nowhere is one a user never finds). */
import { readdirSync } from 'node:fs';
import { expect, test } from 'vitest';
import { IMAGE_DIR, listImages } from '../../launcher/images.ts';

test('every image in guest-images/build is listed once, each lguest guest with its -pae build', () => {
  const built = readdirSync(IMAGE_DIR).filter((f) => f.endsWith('.elf')).map((f) => f.slice(0, -4));
  const listed = listImages();
  expect(new Set(listed.map((i) => i.name)).size).toBe(listed.length);
  const names = new Set(listed.flatMap((i) => (i.kind === 'lguest' ? [i.name, `${i.name}-pae`] : [i.name])));
  expect(built.filter((f) => !names.has(f)), 'built but not listed').toEqual([]);
  expect([...names].filter((n) => !built.includes(n)), 'listed but not built').toEqual([]);
  for (const i of listed) expect(i.description.length).toBeGreaterThan(20);
});

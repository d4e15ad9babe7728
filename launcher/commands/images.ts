/** `lguest-ts images`: the bundled guest images, one line each. */
import type { Argv } from 'yargs';
import { listImages } from '../images.ts';

export function imagesCommand(y: Argv): Argv {
  return y.command('images', 'List the bundled guest images', (a) => a, () => {
    for (const img of listImages()) process.stdout.write(`${img.name.padEnd(16)} ${img.kind.padEnd(6)} ${img.description}\n`);
  });
}

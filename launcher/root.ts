/**
 * Where the package lies on disk, for the files it ships besides code (guest-images/build/, package.json).
 * The sources run from launcher/ (through tsx), the build from dist/launcher/ (`npm run build`), so the
 * root is one or two folders up depending on which of them this module was loaded from.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this module runs as the compiled build (dist/), false when tsx runs the sources. */
export const COMPILED = !import.meta.url.endsWith('.ts');

/** The package's root folder (where package.json and guest-images/ are). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), COMPILED ? '../..' : '..');

/** The package's version, from its package.json (`lguest-ts --version`). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

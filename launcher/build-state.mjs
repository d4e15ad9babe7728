// Whether dist/ (the compiled build, scripts/build.mjs) is there and current. Shared by the CLI's entry
// (launcher/bin.mjs) and the build script. Plain JavaScript: it runs before anything could be compiled.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The folders whose TypeScript the build compiles (tsconfig.build.json's include). */
export const SOURCE_DIRS = ['emulator', 'mmu', 'switcher', 'launcher', 'devices'];

/**
 * True when ROOT/dist/build.json exists and no .ts file under the source folders was modified after the
 * build started. An installed package has no sources: its build is current by definition. About 1 ms
 * (one stat per source file).
 */
export function buildIsCurrent(root) {
  let sourcesAt;
  try {
    sourcesAt = JSON.parse(readFileSync(join(root, 'dist/build.json'), 'utf8')).sourcesAt;
  } catch {
    return false;
  }
  if (typeof sourcesAt !== 'number') return false;
  for (const dir of SOURCE_DIRS) {
    let names;
    try {
      names = readdirSync(join(root, dir), { recursive: true });
    } catch {
      continue; // not shipped (an installed package)
    }
    for (const name of names) {
      if (typeof name === 'string' && name.endsWith('.ts') && statSync(join(root, dir, name)).mtimeMs > sourcesAt) return false;
    }
  }
  return true;
}

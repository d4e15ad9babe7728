#!/usr/bin/env node
// `npm run build`, also run by `npm install` and `npm ci` (the `prepare` script) and by `npm pack`: compile
// the TypeScript sources into dist/ (JavaScript and .d.ts, tsconfig.build.json), so that neither the CLI
// nor a vCPU worker transpiles anything when it starts. dist/ is not committed. Afterwards:
// - the .d.ts files import each other as .js (tsc rewrites the .ts specifiers of the JavaScript it emits,
//   not those of declarations), so that a TypeScript user without allowImportingTsExtensions can read them;
// - dist/build.json records when the build started: launcher/bin.mjs runs the build only while no source
//   file is newer than that, and the sources through tsx otherwise.
// Usage: node scripts/build.mjs [--if-needed]   (--if-needed: do nothing while the build is current)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIsCurrent, SOURCE_DIRS } from '../launcher/build-state.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
// Built beside dist/ and moved into place at the end, so that a CLI started meanwhile finds either the old
// build or the new one, never a half-written one.
const NEXT = join(ROOT, 'dist.next');

if (process.argv.includes('--if-needed') && buildIsCurrent(ROOT)) process.exit(0);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // e.g. `npm install --omit=dev` in a checkout: the CLI then needs tsx, which is a devDependency too
  process.stderr.write('lguest-ts build: typescript is not installed (a devDependency): not building dist/\n');
  process.exit(0);
}
const startedAt = Date.now();
rmSync(NEXT, { recursive: true, force: true }); // a fresh folder: no module left over from a deleted source
const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', NEXT], { stdio: 'inherit', cwd: ROOT });
if (r.status !== 0) {
  rmSync(NEXT, { recursive: true, force: true });
  rmSync(join(DIST, 'build.json'), { force: true }); // the old build no longer matches the sources
  process.stderr.write('lguest-ts build: tsc failed; the CLI will run the sources through tsx\n');
  process.exit(r.status ?? 1);
}
let declarations = 0;
for (const dir of SOURCE_DIRS) {
  const base = join(NEXT, dir);
  if (!existsSync(base)) continue;
  for (const name of readdirSync(base, { recursive: true })) {
    if (!String(name).endsWith('.d.ts')) continue;
    const file = join(base, String(name));
    const text = readFileSync(file, 'utf8');
    // relative specifiers only: from './x.ts' / import('../y/z.ts')
    const fixed = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1$2.js$3');
    if (fixed !== text) writeFileSync(file, fixed);
    declarations++;
  }
}
writeFileSync(join(NEXT, 'build.json'), JSON.stringify({ sourcesAt: startedAt, builtAt: Date.now(), node: process.version }, null, 2) + '\n');
const old = join(ROOT, 'dist.old');
rmSync(old, { recursive: true, force: true });
if (existsSync(DIST)) renameSync(DIST, old);
renameSync(NEXT, DIST);
rmSync(old, { recursive: true, force: true });
process.stderr.write(`lguest-ts build: dist/ built in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (${declarations} declaration files)\n`);


#!/usr/bin/env node
// Entry point of the `lguest-ts` command. It runs the compiled JavaScript in dist/ (built by `npm install`
// through the package's `prepare` script, or by `npm run build`) when that build is current, so nothing
// is transpiled at start-up. In a checkout whose sources changed since the build (or with
// LGUEST_TS_SOURCE=1) it registers tsx's loader and runs the TypeScript sources as they are: slower to
// start (about 1 s) but always the code on disk. launcher/README.md, "Start-up".
import { fileURLToPath } from 'node:url';
import { buildIsCurrent } from './build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = process.env.LGUEST_TS_SOURCE !== '1' && buildIsCurrent(root);
let cli, stop;
if (built) {
  cli = await import('../dist/launcher/cli.js');
  stop = await import('../dist/launcher/stop.js');
} else {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    process.stderr.write('lguest-ts: no current build in dist/ and tsx is not installed: run `npm install` (or `npm run build`)\n');
    process.exit(70);
  }
  cli = await import('./cli.ts');
  stop = await import('./stop.ts');
}
// SIGTERM and a closed stdout (`| head`) end the run with one line and a documented status (stop.ts).
stop.installStopHandlers();
process.exitCode = await cli.main(process.argv.slice(2));

#!/usr/bin/env node
// Entry point of the `lguest-ts` command: register tsx's loader so the TypeScript sources run as they
// are, then hand over to the yargs CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
// SIGTERM and a closed stdout (`| head`) end the run with one line and a documented status (stop.ts).
const { installStopHandlers } = await import('./stop.ts');
installStopHandlers();
process.exitCode = await main(process.argv.slice(2));

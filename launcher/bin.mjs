#!/usr/bin/env node
// Entry point of the `lguest-ts` command: register tsx's loader so the TypeScript sources run as they
// are, then hand over to the yargs CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));

/**
 * The decoder-agreement comparison outside vitest, for long fuzzing runs and other seeds:
 *
 *   tsx test/tools/decoder-iced.ts [--samples 10000000] [--seed 0x1ced86] [--keep 50] [--bits 32|16]
 *                                  [--decoder path]
 *
 * Prints the rule tallies and the first disagreements; exits 1 if there are any.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type ProbeInstruction, formatReport, runAgreement } from './iced-oracle.ts';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '0x1ced86' },
    keep: { type: 'string', default: '50' },
    bits: { type: 'string', default: '32' },
    decoder: { type: 'string', default: new URL('../../emulator/decoder.ts', import.meta.url).pathname },
  },
});

const module = (await import(pathToFileURL(resolve(values.decoder!)).href)) as { probeInstruction: ProbeInstruction };
const started = performance.now();
const report = runAgreement(module.probeInstruction, {
  samples: Number(values.samples),
  seed: Number(values.seed),
  keep: Number(values.keep),
  codeSize32: values.bits !== '16',
});
console.log(formatReport(report));
console.log(`${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exitCode = report.totalDisagreements === 0 ? 0 : 1;

// A bare Multiboot kernel from TypeScript: boot the bundled `bench` workload on the bare machine, with a
// deadline, and report its speed from the typed result. Stop it early with a signal.
//   npx tsx examples/bare.ts [ITERS]
import { boot, type RunResult, type BootOptions } from 'lguest-ts';

const iters = Number(process.argv[2] ?? 200);
const options: BootOptions = {
  image: 'bench',
  bare: true,
  memMiB: 32,
  cmdline: `iters=${iters}`,
  timeoutSec: 60,
  onMessage: (text) => process.stderr.write(text),
};
const guest = boot(options);
let output = '';
for await (const chunk of guest.console) output += new TextDecoder().decode(chunk);
const r: RunResult = await guest.result;
if (r.mode !== 'bare') throw new Error('expected a bare run');
const mips = r.stats.instructions / r.stats.seconds / 1e6;
const last = output.trim().split('\n').pop();
console.log(`${last}`);
console.log(`fate ${r.fate.kind}${r.fate.kind === 'exit' ? ` (isa-debug-exit ${r.fate.value})` : ''}, exit status ${r.exitStatus}, ` +
  `${r.stats.instructions} instructions in ${r.stats.seconds.toFixed(2)} s (${mips.toFixed(0)} MIPS)`);

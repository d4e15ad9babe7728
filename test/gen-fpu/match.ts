// Match rate of the emulator against the x87 vectors, per instruction form (the vector name without its
// "#k"), for the report: npx tsx test/gen-fpu/match.ts [--engine E] [--show N] [--filter TEXT] FILE...
import { VectorRunner, loadVectorFile } from '../../emulator/cputest.ts';

const args = process.argv.slice(2);
let engine: 'interpreter' | 'handlers' | 'compiled' = 'interpreter';
let show = 0;
let filter = '';
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--engine') engine = args[++i] as typeof engine;
  else if (args[i] === '--show') show = Number(args[++i]);
  else if (args[i] === '--filter') filter = args[++i];
  else files.push(args[i]);
}
const runner = new VectorRunner({ engine });
const stats = new Map<string, [number, number, number]>();
let exactAll = 0;
let shown = 0, pass = 0, total = 0;
for (const f of files) {
  for (const v of loadVectorFile(f)) {
    if (filter && !v.name.includes(filter)) continue;
    const key = v.name.replace(/ #\d+$/, '').replace(/ st\d(,st0)?( \(dc\))?$/, '').replace(/ st0,st\d$/, '');
    const r = runner.run(v);
    const s = stats.get(key) ?? [0, 0, 0];
    s[1]++;
    total++;
    if (r.ok && !r.approx) { s[2]++; exactAll++; }
    if (r.ok) { s[0]++; pass++; } else if (shown++ < show) console.log(`FAIL ${v.name}: ${r.problems.join('; ')}\n   init ${JSON.stringify(v.initial.fpu)}`);
    stats.set(key, s);
  }
}
console.log('  pass   bit-exact    n   form');
for (const [k, [p, n, x]] of stats) console.log(`${(100 * p / n).toFixed(1).padStart(6)}% ${(100 * x / n).toFixed(1).padStart(6)}%  ${String(n).padStart(5)}  ${k}`);
console.log(`total ${pass}/${total} pass (${(100 * pass / total).toFixed(2)}%), ${exactAll} bit-exact (${(100 * exactAll / total).toFixed(2)}%)`);

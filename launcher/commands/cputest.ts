/** `lguest-ts cpu-test FILE...`: run CPU test vectors (docs/cpu-test-format.md). */
import type { Argv } from 'yargs';
import { VectorRunner, loadVectorFile, type VectorResult } from '../../emulator/cputest.ts';
import { disassembleOne } from '../../emulator/disasm.ts';
import { UserError } from '../errors.ts';
import { EXIT_OK, EXIT_VECTORS_FAILED } from '../exit-status.ts';

export function cpuTestCommand(y: Argv): Argv {
  return y.command(
    'cpu-test <files..>',
    'Run CPU test vectors and compare with the state real hardware produced',
    (a) => a
      .positional('files', { type: 'string', array: true, describe: 'vector files (JSON arrays in the cpu-test format)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the results as JSON' })
      .option('filter', { type: 'string', describe: 'run only vectors whose name contains TEXT' })
      .option('max-failures', { type: 'number', default: 10, describe: 'how many failures to describe in full' })
      .option('engine', { choices: ['interpreter', 'handlers', 'compiled'] as const, default: 'interpreter' as const, describe: 'how to execute: the interpreter, every op through its reference handler, or each instruction through the block compiler' })
      .check((args) => {
        const n = args['max-failures'];
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return '--max-failures must be a non-negative integer';
        return true;
      }),
    (args) => {
      const files = (args.files ?? []) as string[];
      const runner = new VectorRunner({ engine: args.engine as 'interpreter' | 'handlers' | 'compiled' });
      let passed = 0, failed = 0;
      const failures: VectorResult[] = [];
      for (const f of files) {
        let vectors;
        try {
          vectors = loadVectorFile(f);
        } catch (e) {
          throw new UserError((e as Error).message);
        }
        for (const v of vectors) {
          if (args.filter && !v.name.includes(args.filter)) continue;
          const r = runner.run(v);
          if (r.ok) passed++;
          else {
            failed++;
            if (failures.length < (args['max-failures'] as number)) failures.push(r);
          }
        }
      }
      if (args.json) {
        process.stdout.write(JSON.stringify({ passed, failed, failures: failures.map((r) => ({ name: r.name, problems: r.problems })) }, null, 2) + '\n');
      } else {
        for (const r of failures) {
          process.stdout.write(`FAIL ${r.name}\n  ${hexEip(r.eip)}: ${disassembleOne(r.code, r.eip)}\n`);
          for (const p of r.problems) process.stdout.write(`    ${p}\n`);
        }
        process.stdout.write(`${passed} passed, ${failed} failed\n`);
      }
      args.exitStatus = failed === 0 ? EXIT_OK : EXIT_VECTORS_FAILED;
    },
  );
}

function hexEip(eip: number): string {
  return (eip >>> 0).toString(16).padStart(8, '0');
}

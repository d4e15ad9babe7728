/** `lguest-ts trace-view TRACE.jsonl [-o FILE.html]`: a `run --trace` file as one self-contained HTML page. */
import type { Argv } from 'yargs';
import { writeFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { defaultOutput, readTrace, renderTraceView, traceTitle } from '../trace-view/index.ts';

export function traceViewCommand(y: Argv): Argv {
  return y.command(
    'trace-view <trace>',
    'Turn a run --trace file (JSON Lines) into one self-contained HTML page: a timeline per vCPU',
    (a) => a
      .positional('trace', { type: 'string', describe: 'the trace: lguest-ts run IMAGE --trace all --trace-file TRACE.jsonl' })
      .option('output', { alias: 'o', type: 'string', describe: 'write the page here (default: TRACE with .html for .jsonl; - for stdout)' })
      .example('$0 run smp --cpus 2 --trace all --trace-file smp.jsonl', '')
      .example('$0 trace-view smp.jsonl', 'writes smp.html; open it in any browser'),
    (args) => {
      const trace = args.trace as string;
      const out = (args.output as string | undefined) ?? defaultOutput(trace);
      const events = readTrace(trace);
      const html = renderTraceView(events, traceTitle(trace));
      if (out === '-') { process.stdout.write(html); return; }
      try {
        writeFileSync(out, html);
      } catch (e) {
        throw new UserError(`trace-view: cannot write ${out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      const vcpus = new Set(events.map((e) => e.vcpu)).size;
      process.stdout.write(`${out}: ${events.length} events, ${vcpus} vCPU${vcpus === 1 ? '' : 's'}\n`);
    },
  );
}

/**
 * The `lguest-ts` command line (yargs). Every command has --help; unknown commands and bad options get
 * one clear line and a non-zero exit. Errors meant for the user (UserError) print as one line; anything
 * else is a bug and says so.
 */
import yargs, { type Argv } from 'yargs';
import { EXIT_INTERNAL } from './exit-status.ts';
import { UserError } from './errors.ts';
import { cpuTestCommand } from './commands/cputest.ts';
import { runCommand } from './commands/run.ts';
import { imagesCommand } from './commands/images.ts';
import { traceViewCommand } from './commands/trace-view.ts';

export type Command = (y: Argv) => Argv;

/** Run the CLI with these arguments; resolves to the process exit status. */
export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const cli = yargs(argv)
    .scriptName('lguest-ts')
    .usage('$0 <command> [options]')
    .epilogue('An lguest-style hypervisor and i386 emulator: boot tiny paravirtualized guests or bare Multiboot kernels.')
    .strict()
    .demandCommand(1, 'Give a command: run, images, trace-view or cpu-test (see --help).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(process.stdout.isTTY ? Math.min(110, process.stdout.columns || 100) : null)
    .fail((msg, err) => {
      // validation failures (bad options, unknown commands) come with a message; errors thrown by a
      // command's handler come without one and keep their own type
      if (err && !msg) throw err;
      throw new UserError((msg || err.message).replace(/\s*\n\s*/g, ' '));
    })
    .exitProcess(false);
  for (const cmd of [runCommand, imagesCommand, traceViewCommand, cpuTestCommand]) cmd(cli);
  try {
    const parsed = await cli.parseAsync();
    status = typeof parsed.exitStatus === 'number' ? parsed.exitStatus : 0;
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`lguest-ts: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`lguest-ts: internal error: ${err.message}\n${process.env.LGUEST_TS_DEBUG ? err.stack + '\n' : ''}`);
    return EXIT_INTERNAL;
  }
  return status;
}

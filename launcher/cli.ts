/**
 * The `lguest-ts` command line (yargs). Every command has --help; unknown commands and bad options get
 * one clear line and a non-zero exit. Errors meant for the user (UserError) print as one line; anything
 * else is a bug and says so.
 */
import yargs, { type Argv } from 'yargs';
import { EXIT_INTERNAL } from './exit-status.ts';
import { UserError } from './errors.ts';
import { packageVersion } from './root.ts';
import { cpuTestCommand } from './commands/cputest.ts';
import { runCommand } from './commands/run.ts';
import { imagesCommand } from './commands/images.ts';
import { traceViewCommand } from './commands/trace-view.ts';

export type Command = (y: Argv) => Argv;

const COMMANDS = ['run', 'images', 'cpu-test'];

/** yargs' "Unknown argument(s): a, b" as the user typed them: "unknown option --a" for an option,
 *  "unexpected argument a" for a word that is not one. */
function unknownArguments(msg: string | undefined, argv: string[]): string | undefined {
  const m = /^Unknown arguments?: (.*)$/.exec(msg ?? '');
  if (!m) return undefined;
  // No command at all: its options are unknown only because the command is.
  const first = argv.find((a) => !a.startsWith('-'));
  if (first !== undefined && !COMMANDS.includes(first)) return `unknown command ${first} (commands: ${COMMANDS.join(', ')}; see --help)`;
  return m[1].split(', ').map((name) => {
    const flag = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}`
      || (name.length === 1 && /^-[^-]/.test(a) && a.includes(name)));
    return flag !== undefined ? `unknown option ${flag.split('=')[0]}` : `unexpected argument ${name}`;
  }).join('; ');
}

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
    .version(packageVersion())
    .wrap(process.stdout.isTTY ? Math.min(110, process.stdout.columns || 100) : null)
    .fail((msg, err) => {
      // validation failures (bad options, unknown commands) come with a message; errors thrown by a
      // command's handler come without one and keep their own type
      if (err && !msg) throw err;
      throw new UserError(unknownArguments(msg, argv) ?? (msg || err.message).replace(/\s*\n\s*/g, ' '), 2);
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

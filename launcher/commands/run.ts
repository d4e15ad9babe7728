/** `lguest-ts run IMAGE`: boot a guest (lguest mode) or a Multiboot kernel (--bare). */
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { resolveImage } from '../images.ts';
import { MAX_VCPUS } from '../../switcher/smp.ts';

/** Everything `run` was asked to do, validated. */
export interface RunOptions {
  /** Path of the image file. */
  image: string;
  /** What the user typed (a bundled name or a path). */
  imageArg: string;
  bare: boolean;
  memMiB: number;
  cpus: number;
  cmdline: string;
  initrd?: string;
  /** lguest mode: the virtio block device's file. */
  block?: string;
  /** lguest mode: offer the virtio entropy device. */
  rng: boolean;
  pae: boolean;
  /** Stop the guest after this many seconds (undefined: no limit). */
  timeoutSec?: number;
  stats: boolean;
  statsJson?: string;
  /** Bare mode: a write of this value to isa-debug-exit ends the run with exit status 0. */
  debugExitOk?: number;
  /** Serve gdb on 127.0.0.1:PORT (0: any free port) and wait for it before the first instruction (one gdb
   *  thread per vCPU in lguest mode). */
  gdbPort?: number;
  /** lguest mode: hypercall plug-in modules (switcher/plugins.ts). */
  plugins?: string[];
  /** lguest mode: `--trace` as typed (comma-separated Host events) and `--trace-file`. */
  trace?: string;
  traceFile?: string;
  /** `--trace insn`'s bounds as typed: LO-HI guest addresses, N-M retired instructions. */
  traceInsnRange?: string;
  traceInsnWindow?: string;
}

export function runCommand(y: Argv): Argv {
  return y.command(
    'run <image>',
    'Boot IMAGE: a bundled guest name (see `images`) or a path to an ELF file',
    (a) => a
      .positional('image', { type: 'string', describe: 'bundled image name or path' })
      .option('bare', { type: 'boolean', default: false, describe: 'boot a Multiboot v1 kernel on the bare machine (no Host)' })
      .option('mem', { type: 'number', default: 64, describe: 'guest memory in MiB' })
      .option('cpus', { type: 'number', default: 1, describe: `number of vCPUs, 1 to ${MAX_VCPUS} (lguest mode; the SMP extension: switcher/README.md)` })
      .option('cmdline', { type: 'string', default: '', describe: 'kernel command line' })
      .option('initrd', { type: 'string', describe: 'initial ramdisk file (lguest mode)' })
      .option('block', { type: 'string', describe: 'lguest mode: a virtio block device backed by FILE (read and written in place; capacity = its size in 512-byte sectors)' })
      .option('rng', { type: 'boolean', default: false, describe: 'lguest mode: a virtio entropy device (random bytes from node:crypto)' })
      .option('pae', { type: 'boolean', default: false, describe: 'PAE paging (lguest mode)' })
      .option('timeout', { type: 'number', describe: 'stop the guest after S seconds' })
      .option('stats', { type: 'boolean', default: false, describe: 'print statistics when the guest ends' })
      .option('stats-json', { type: 'string', describe: 'write statistics as JSON to FILE' })
      .option('debug-exit-ok', { type: 'number', describe: 'bare mode: a write of V to isa-debug-exit (port 0xF4) means success, exit status 0 instead of (V << 1) | 1' })
      .option('gdb', { type: 'number', describe: 'wait for gdb on 127.0.0.1:PORT before the first instruction (0: any free port, printed on stderr); lguest mode: one gdb thread per vCPU' })
      .option('plugin', { type: 'string', array: true, describe: 'lguest mode: load a hypercall plug-in (JS or TS module) in every vCPU worker; repeatable (switcher/plugins.ts)' })
      .option('trace', { type: 'string', describe: 'lguest mode: write Host events as JSON Lines: a comma-separated list of hypercall, trap, pagefault, interrupt, ipi, switch, kick, console, shootdown, or all; and insn (guest instructions, with --trace-insn-range and/or --trace-insn-window)' })
      .option('trace-file', { type: 'string', describe: 'write the --trace lines to FILE instead of stderr' })
      .option('trace-insn-range', { type: 'string', describe: '--trace insn: trace guest instructions at addresses LO <= EIP < HI (LO-HI, hex with 0x)' })
      .option('trace-insn-window', { type: 'string', describe: '--trace insn: trace instructions while the vCPU\'s retired count is N <= count < M (N-M)' })
      .check((args) => {
        const mem = args.mem as number;
        if (!Number.isInteger(mem) || mem < 2 || mem > 1024) return `--mem must be an integer from 2 to 1024 MiB, not ${args.mem}`;
        const cpus = args.cpus as number;
        if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_VCPUS) return `--cpus must be an integer from 1 to ${MAX_VCPUS}, not ${args.cpus}`;
        const t = args.timeout as number | undefined;
        if (t !== undefined && (!Number.isFinite(t) || t <= 0)) return `--timeout must be a positive number of seconds, not ${t}`;
        const gdb = args.gdb as number | undefined;
        if (gdb !== undefined && (!Number.isInteger(gdb) || gdb < 0 || gdb > 65535)) return `--gdb must be a TCP port from 1 to 65535 (0: any free one), not ${args.gdb}`;
        const ok = args['debug-exit-ok'] as number | undefined;
        if (ok !== undefined && (!Number.isInteger(ok) || ok < 0 || ok > 0xffffffff)) return `--debug-exit-ok must be an integer from 0 to 0xffffffff, not ${ok}`;
        if (ok !== undefined && !args.bare) return '--debug-exit-ok is for bare mode (--bare)';
        if (args.bare && (args.block !== undefined || args.rng)) return '--block and --rng are for lguest mode (not --bare)';
        if (args.bare && (args.plugin !== undefined || args.trace !== undefined)) return '--plugin and --trace are for lguest mode (not --bare)';
        if (args['trace-file'] !== undefined && args.trace === undefined) return '--trace-file needs --trace EVENTS';
        return true;
      }),
    async (args) => {
      const imageArg = args.image as string;
      const { path, info } = resolveImage(imageArg, args.pae as boolean);
      if (!existsSync(path)) throw new UserError(`no such image: ${imageArg} (not a bundled image name, see 'lguest-ts images', nor a file)`);
      if (info?.kind === 'bare' && !args.bare) throw new UserError(`${imageArg} is a bare Multiboot kernel: run it with --bare`);
      const opts: RunOptions = {
        image: path,
        imageArg,
        bare: args.bare as boolean,
        memMiB: args.mem as number,
        cpus: args.cpus as number,
        cmdline: args.cmdline as string,
        initrd: args.initrd as string | undefined,
        block: args.block as string | undefined,
        rng: args.rng as boolean,
        pae: args.pae as boolean,
        timeoutSec: args.timeout as number | undefined,
        stats: args.stats as boolean,
        statsJson: args['stats-json'] as string | undefined,
        debugExitOk: args['debug-exit-ok'] as number | undefined,
        gdbPort: args.gdb as number | undefined,
        plugins: args.plugin as string[] | undefined,
        trace: args.trace as string | undefined,
        traceFile: args['trace-file'] as string | undefined,
        traceInsnRange: args['trace-insn-range'] as string | undefined,
        traceInsnWindow: args['trace-insn-window'] as string | undefined,
      };
      if (opts.bare) {
        const { runBare } = await import('../bare.ts');
        args.exitStatus = await runBare(opts);
      } else {
        const { runLguest } = await import('../lguest.ts');
        args.exitStatus = await runLguest(opts);
      }
    },
  );
}

/** `lguest-ts run IMAGE`: boot a guest (lguest mode) or a Multiboot kernel (--bare). */
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { resolveImage } from '../images.ts';
import { runArgsProblem, type RunOptions } from '../run-options.ts';
import { MAX_VCPUS } from '../../switcher/smp.ts';
import { checkInputFile, checkOutputFile } from '../input.ts';

// RunOptions and its checks live in run-options.ts, which the library's types can reach without yargs.
export { runArgsProblem, type RunOptions };

export function runCommand(y: Argv): Argv {
  return y.command(
    // [image], not <image>: with a required positional yargs would blame a missing image for an unknown
    // option that took the image as its value (`run --frob hello`); strict mode then names the option.
    'run [image]',
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
      .option('icount', { type: 'boolean', describe: 'bare mode: the timers (PIT, RTC, APIC timer) follow retired instructions, 1 ns each, instead of the wall clock: identical runs' })
      .option('icount-shift', { type: 'number', describe: 'bare mode, with --icount: each instruction counts 2^N ns (0 to 10, default 0), as QEMU\'s -icount shift=N' })
      .option('serial', { type: 'string', describe: 'bare mode: COM1 to stdio (default), none (no COM1) or file:PATH' })
      .option('debugcon', { type: 'string', describe: 'bare mode: port 0xE9 to stdio (default), none (no debugcon) or file:PATH; when both go to stdio a character written to both is printed once' })
      .option('vga', { type: 'string', describe: 'bare mode: the VGA text screen at the end: tty (on stderr, the default), none, or a FILE to write it to' })
      .option('plugin', { type: 'string', array: true, describe: 'lguest mode: load a hypercall plug-in (JS or TS module) in every vCPU worker; repeatable (switcher/plugins.ts)' })
      .option('trace', { type: 'string', describe: 'lguest mode: write Host events as JSON Lines: a comma-separated list of hypercall, trap, pagefault, interrupt, ipi, switch, kick, console, shootdown, or all; and insn (guest instructions, with --trace-insn-range and/or --trace-insn-window)' })
      .option('trace-file', { type: 'string', describe: 'write the --trace lines to FILE instead of stderr' })
      .option('trace-insn-range', { type: 'string', describe: '--trace insn: trace guest instructions at addresses LO <= EIP < HI (LO-HI, hex with 0x)' })
      .option('trace-insn-window', { type: 'string', describe: '--trace insn: trace instructions while the vCPU\'s retired count is N <= count < M (N-M)' })
      .check((args) => runArgsProblem({
        bare: args.bare as boolean, mem: args.mem as number, cpus: args.cpus as number, timeout: args.timeout as number | undefined,
        gdb: args.gdb as number | undefined, debugExitOk: args['debug-exit-ok'] as number | undefined,
        block: args.block as string | undefined, rng: args.rng as boolean,
        plugins: args.plugin as string[] | undefined, trace: args.trace as string | undefined, traceFile: args['trace-file'] as string | undefined,
        icount: args.icount as boolean | undefined, icountShift: args['icount-shift'] as number | undefined,
        serial: args.serial as string | undefined, debugcon: args.debugcon as string | undefined, vga: args.vga as string | undefined,
      }) ?? true),
    async (args) => {
      const imageArg = args.image as string | undefined;
      if (imageArg === undefined || imageArg === '') throw new UserError('run: give an IMAGE (a bundled image name, see \'lguest-ts images\', or a path)');
      const { path, info } = resolveImage(imageArg, args.pae as boolean);
      if (!existsSync(path)) throw new UserError(`no such image: ${imageArg} (not a bundled image name, see 'lguest-ts images', nor a file)`);
      if (info?.kind === 'bare' && !args.bare) throw new UserError(`${imageArg} is a bare Multiboot kernel: run it with --bare`);
      // Inputs are checked before anything runs: regular files the guest's memory can hold.
      const mem = args.mem as number;
      const memLimit = `the guest memory (--mem ${mem})`;
      checkInputFile(path, imageArg, mem * 2 ** 20, memLimit);
      const initrd = args.initrd as string | undefined;
      if (initrd !== undefined) {
        if (!existsSync(initrd)) throw new UserError(`no such initrd: ${initrd}`);
        checkInputFile(initrd, `--initrd ${initrd}`, mem * 2 ** 20, memLimit);
      }
      const statsJson = args['stats-json'] as string | undefined;
      if (statsJson !== undefined) checkOutputFile(statsJson, `--stats-json ${statsJson}`);
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
        icount: args.icount as boolean | undefined,
        icountShift: args['icount-shift'] as number | undefined,
        serial: args.serial as string | undefined,
        debugcon: args.debugcon as string | undefined,
        vga: args.vga as string | undefined,
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

/** `lguest-ts run IMAGE`: boot a guest (lguest mode) or a Multiboot kernel (--bare). */
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { resolveImage } from '../images.ts';

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
  /** Bare mode: timers follow retired instructions (deterministic runs). */
  icount?: boolean;
  /** With icount: each instruction is 2^N ns. */
  icountShift?: number;
  /** Bare mode: where COM1 and port 0xE9 go ('stdio', 'none', 'file:PATH'), and the VGA screen
   *  ('tty', 'none', a file). */
  serial?: string;
  debugcon?: string;
  vga?: string;
}

export function runCommand(y: Argv): Argv {
  return y.command(
    'run <image>',
    'Boot IMAGE: a bundled guest name (see `images`) or a path to an ELF file',
    (a) => a
      .positional('image', { type: 'string', describe: 'bundled image name or path' })
      .option('bare', { type: 'boolean', default: false, describe: 'boot a Multiboot v1 kernel on the bare machine (no Host)' })
      .option('mem', { type: 'number', default: 64, describe: 'guest memory in MiB' })
      .option('cpus', { type: 'number', default: 1, describe: 'number of vCPUs, 1 to 8 (lguest mode; the SMP extension: switcher/README.md)' })
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
      .check((args) => {
        const mem = args.mem as number;
        if (!Number.isInteger(mem) || mem < 2 || mem > 1024) return `--mem must be an integer from 2 to 1024 MiB, not ${args.mem}`;
        const cpus = args.cpus as number;
        if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8) return `--cpus must be an integer from 1 to 8, not ${args.cpus}`;
        const t = args.timeout as number | undefined;
        if (t !== undefined && (!Number.isFinite(t) || t <= 0)) return `--timeout must be a positive number of seconds, not ${t}`;
        const gdb = args.gdb as number | undefined;
        if (gdb !== undefined && (!Number.isInteger(gdb) || gdb < 0 || gdb > 65535)) return `--gdb must be a TCP port from 1 to 65535 (0: any free one), not ${args.gdb}`;
        const ok = args['debug-exit-ok'] as number | undefined;
        if (ok !== undefined && (!Number.isInteger(ok) || ok < 0 || ok > 0xffffffff)) return `--debug-exit-ok must be an integer from 0 to 0xffffffff, not ${ok}`;
        if (ok !== undefined && !args.bare) return '--debug-exit-ok is for bare mode (--bare)';
        if (args.bare && (args.block !== undefined || args.rng)) return '--block and --rng are for lguest mode (not --bare)';
        if (!args.bare && (args.icount !== undefined || args.serial !== undefined || args.debugcon !== undefined || args.vga !== undefined)) return '--icount, --serial, --debugcon and --vga are for bare mode (--bare)';
        for (const k of ['serial', 'debugcon'] as const) {
          const v = args[k] as string | undefined;
          if (v !== undefined && !(v === 'stdio' || v === 'none' || (v.startsWith('file:') && v.length > 5))) return `--${k} must be stdio, none or file:PATH, not ${JSON.stringify(v)}`;
        }
        const shift = args['icount-shift'] as number | undefined;
        if (shift !== undefined && (!Number.isInteger(shift) || shift < 0 || shift > 10)) return `--icount-shift must be an integer from 0 to 10, not ${args['icount-shift']}`;
        if (shift !== undefined && !args.icount) return '--icount-shift needs --icount';
        if (args.vga !== undefined && (args.vga as string) === '') return '--vga must be tty, none or a file name';
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
        icount: args.icount as boolean | undefined,
        icountShift: args['icount-shift'] as number | undefined,
        serial: args.serial as string | undefined,
        debugcon: args.debugcon as string | undefined,
        vga: args.vga as string | undefined,
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

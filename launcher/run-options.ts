/**
 * What `lguest-ts run` is asked to do, and the rules its options follow: shared by the CLI
 * (commands/run.ts) and the library API (api.ts). Nothing here imports yargs, so that the library's
 * declarations (dist/launcher/api.d.ts and what it reaches) need no yargs types.
 */
import { MAX_VCPUS } from '../switcher/smp.ts';

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

/** What is wrong with these `run` options, in the CLI's words, or undefined when nothing is (the CLI and
 *  the library API, launcher/api.ts, check the same rules). */
export function runArgsProblem(a: {
  bare: boolean; mem: number; cpus: number; timeout?: number; gdb?: number; debugExitOk?: number; block?: string; rng: boolean;
  plugins?: string[]; trace?: string; traceFile?: string;
  icount?: boolean; icountShift?: number; serial?: string; debugcon?: string; vga?: string;
}): string | undefined {
  if (!Number.isInteger(a.mem) || a.mem < 2 || a.mem > 1024) return `--mem must be an integer from 2 to 1024 MiB, not ${a.mem}`;
  if (!Number.isInteger(a.cpus) || a.cpus < 1 || a.cpus > MAX_VCPUS) return `--cpus must be an integer from 1 to ${MAX_VCPUS}, not ${a.cpus}`;
  const t = a.timeout;
  if (t !== undefined && (!Number.isFinite(t) || t <= 0)) return `--timeout must be a positive number of seconds, not ${t}`;
  if (a.gdb !== undefined && (!Number.isInteger(a.gdb) || a.gdb < 0 || a.gdb > 65535)) return `--gdb must be a TCP port from 1 to 65535 (0: any free one), not ${a.gdb}`;
  const ok = a.debugExitOk;
  if (ok !== undefined && (!Number.isInteger(ok) || ok < 0 || ok > 0xffffffff)) return `--debug-exit-ok must be an integer from 0 to 0xffffffff, not ${ok}`;
  if (ok !== undefined && !a.bare) return '--debug-exit-ok is for bare mode (--bare)';
  if (a.bare && (a.block !== undefined || a.rng)) return '--block and --rng are for lguest mode (not --bare)';
  if (a.bare && (a.plugins !== undefined || a.trace !== undefined)) return '--plugin and --trace are for lguest mode (not --bare)';
  if (a.traceFile !== undefined && a.trace === undefined) return '--trace-file needs --trace EVENTS';
  if (!a.bare && (a.icount !== undefined || a.serial !== undefined || a.debugcon !== undefined || a.vga !== undefined)) return '--icount, --serial, --debugcon and --vga are for bare mode (--bare)';
  for (const [k, v] of [['serial', a.serial], ['debugcon', a.debugcon]] as const) {
    if (v !== undefined && !(v === 'stdio' || v === 'none' || (v.startsWith('file:') && v.length > 5))) return `--${k} must be stdio, none or file:PATH, not ${JSON.stringify(v)}`;
  }
  const shift = a.icountShift;
  if (shift !== undefined && (!Number.isInteger(shift) || shift < 0 || shift > 10)) return `--icount-shift must be an integer from 0 to 10, not ${shift}`;
  if (shift !== undefined && !a.icount) return '--icount-shift needs --icount';
  if (a.vga !== undefined && a.vga === '') return '--vga must be tty, none or a file name';
  return undefined;
}

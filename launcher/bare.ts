/**
 * Bare mode (`lguest-ts run --bare`): no Host. A Multiboot v1 kernel is loaded the way QEMU's `-kernel`
 * loads it and runs on the machine alone, with the PC test devices of devices/pc.ts. This is how the
 * system-architecture test kernels run (test/machine/) and how toy kernels written for QEMU run here
 * unchanged. See docs/design.md, "Two ways to boot", and launcher/README.md for the conventions.
 *
 * Two entry points share one BareMachine: `runBare` for the CLI (console to stdout as it comes, a
 * timeout, a message on stderr when the guest ends badly) and `bootBare` for tests (synchronous,
 * in-process, everything returned).
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { RunOptions } from './commands/run.ts';
import { UserError } from './errors.ts';
import { PACKAGE_ROOT as REPO_ROOT } from './root.ts';
import { CPU } from '../emulator/cpu.ts';
import { ExitReason, EXIT_NAMES } from '../emulator/exits.ts';
import { CS, DS, ES, FS, GS, IF, SS, EAX, EBX, ESP } from '../emulator/constants.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { PcDevices, debugExitStatus } from '../devices/pc.ts';
import { CpuDebugTarget, SIGALRM, SIGKILL } from '../emulator/debug-target.ts';
import { LocalDebugLink } from './debug-link.ts';
import { GdbServer } from './gdb-server.ts';
import {
  BOOT_GDT_LIMIT, BOOT_LAYOUT, MULTIBOOT_BOOTLOADER_MAGIC, checkFits, loadSegments, parseMultiboot, writeBootInfo,
} from './multiboot.ts';

import { EXIT_GUEST_STOPPED, EXIT_INTERRUPTED, EXIT_KILLED_BY_DEBUGGER, EXIT_TIMEOUT } from './exit-status.ts';
/** The library API's stop() (launcher/api.ts) ends a bare run as Ctrl-C ends an lguest one. */
export const EXIT_STOPPED = EXIT_INTERRUPTED;

/** How a bare run ended. */
export type BareEnd = 'device-exit' | 'halt' | 'triple-fault' | 'unsupported' | 'budget' | 'timeout' | 'stopped';

export interface BareBootOptions {
  /** RAM in MiB (default 32, what the test kernels' QEMU runs use). */
  memMiB?: number;
  /** The user's part of the command line (QEMU's -append). */
  cmdline?: string;
  /** The kernel's name as the loader passes it first on the command line (QEMU: the -kernel path). */
  imageName?: string;
  /** Stop after this many instructions (default 2e9). */
  maxInstructions?: number;
}

export interface BareResult {
  /** Everything the guest wrote to the console ports. */
  output: string;
  /** (v << 1) | 1 when the guest wrote v to isa-debug-exit, else undefined. */
  exitStatus: number | undefined;
  reason: BareEnd;
  /** One line that says how the run ended (empty for a device exit). */
  message: string;
  instructions: number;
}

const SLICE = 1 << 20;
/** The slice while gdb is attached: the run loop yields to the event loop after each one, so gdb's
 *  packets and Ctrl-C are served within a few milliseconds even at the stepping path's speed. */
const DEBUG_SLICE = 1 << 16;

/** [L:410] The bare machine: memory, one CPU, the PC devices, and the kernel loaded into it. */
export class BareMachine {
  readonly mem: PhysicalMemory;
  readonly cpu: CPU;
  readonly devices: PcDevices;
  /** Console bytes not yet taken by the caller. */
  private out: number[] = [];

  constructor(image: Uint8Array, opts: { memMiB: number; cmdline: string; what: string }) {
    const memSize = opts.memMiB * 1024 * 1024;
    const img = parseMultiboot(image, opts.what);
    checkFits(img, memSize, opts.what);
    this.mem = new PhysicalMemory(memSize);
    loadSegments(this.mem, image, img);
    const info = writeBootInfo(this.mem, opts.cmdline);

    this.cpu = new CPU(this.mem);
    this.devices = new PcDevices((b) => this.out.push(b), () => {
      this.cpu.exitReason = ExitReason.DeviceStop;
    });
    this.cpu.io = this.devices;

    /** [L:420] The CPU as QEMU's -kernel leaves it (Multiboot spec 3.2): protected mode with paging off, CPL
     * 0, CS and the data segments flat 4 GiB through a real GDT in low memory (the kernel may reload
     * them before it sets up its own), interrupts off, EAX = the boot magic, EBX = the info. The IDTR
     * keeps its reset value (the real-mode table at 0), and so do LDTR and TR (null). */
    const c = this.cpu;
    c.resetFlat(0);
    c.gdtBase = BOOT_LAYOUT.gdt;
    c.gdtLimit = BOOT_GDT_LIMIT;
    c.idtBase = 0;
    c.idtLimit = 0x3ff;
    c.r32[EAX] = MULTIBOOT_BOOTLOADER_MAGIC | 0;
    c.r32[EBX] = info;
    c.r32[ESP] = BOOT_LAYOUT.stackTop;
    c.eip = img.entry | 0;
    c.setEflags(2);
  }

  /** Run up to `budget` instructions. */
  run(budget: number): ExitReason {
    return this.cpu.run(budget);
  }

  /** Take the console bytes written since the last call. */
  takeOutput(): Uint8Array {
    const b = Uint8Array.from(this.out);
    this.out = [];
    return b;
  }

  /** If the run is over, how it ended and a one-line message; undefined while it may go on. */
  ending(reason: ExitReason): { end: BareEnd; message: string } | undefined {
    const c = this.cpu;
    switch (reason) {
      case ExitReason.DeviceStop:
        return { end: 'device-exit', message: '' };
      case ExitReason.Hlt:
        /** [L:430] Bare mode has no interrupt sources, so a HLT ends the run either way: with IF clear it is
         * how a kernel stops for good; with IF set nothing would ever wake it. */
        return {
          end: 'halt',
          message: (c.flags & IF) === 0
            ? `the guest halted with interrupts disabled (hlt at 0x${hex8(c.eip - 1)})`
            : `the guest halted waiting for an interrupt, and bare mode has no interrupt sources (hlt at 0x${hex8(c.eip - 1)})`,
        };
      case ExitReason.TripleFault:
        return { end: 'triple-fault', message: `triple fault: the machine would reset (${c.exitMessage})` };
      case ExitReason.Unsupported:
        return { end: 'unsupported', message: `the guest used something lguest-ts does not implement: ${c.exitMessage}` };
      case ExitReason.Budget:
        return undefined;
      default:
        return { end: 'unsupported', message: `the machine stopped unexpectedly (${EXIT_NAMES[reason] ?? reason})` };
    }
  }

  /** A dump of the CPU's registers, a few lines of text. */
  registerDump(): string {
    const c = this.cpu;
    const r = c.regsSnapshot();
    const sel = (s: number) => c.segSel[s].toString(16).padStart(4, '0');
    return [
      `eax=${hex8(r.eax)} ebx=${hex8(r.ebx)} ecx=${hex8(r.ecx)} edx=${hex8(r.edx)}`,
      `esi=${hex8(r.esi)} edi=${hex8(r.edi)} ebp=${hex8(r.ebp)} esp=${hex8(r.esp)}`,
      `eip=${hex8(r.eip)} eflags=${hex8(r.eflags)} cpl=${c.cpl}`,
      `cs=${sel(CS)} ss=${sel(SS)} ds=${sel(DS)} es=${sel(ES)} fs=${sel(FS)} gs=${sel(GS)}`,
      `cr0=${hex8(c.cr0)} cr2=${hex8(c.cr2)} cr3=${hex8(c.cr3)} cr4=${hex8(c.cr4)}`,
    ].join('\n');
  }
}

function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

/** The command line a kernel receives: like QEMU and GRUB, the kernel's file name, a space, the user's
 *  text (QEMU leaves the space even when there is no text). */
export function kernelCommandLine(imageName: string, cmdline: string): string {
  return `${imageName} ${cmdline}`;
}

/** Boot a kernel in-process and run it to the end (for tests). Throws UserError for a bad image. */
export function bootBare(image: Uint8Array, opts: BareBootOptions = {}): BareResult {
  const name = opts.imageName ?? 'kernel.elf';
  const m = new BareMachine(image, { memMiB: opts.memMiB ?? 32, cmdline: kernelCommandLine(name, opts.cmdline ?? ''), what: name });
  let left = opts.maxInstructions ?? 2e9;
  const chunks: Uint8Array[] = [];
  for (;;) {
    const reason = m.run(Math.min(SLICE, left));
    chunks.push(m.takeOutput());
    left -= SLICE;
    const end = m.ending(reason);
    const output = Buffer.concat(chunks).toString('latin1');
    if (end) {
      const exitStatus = end.end === 'device-exit' ? debugExitStatus(m.devices.exitValue ?? 0) : undefined;
      const message = end.message ? `${end.message}\n${m.registerDump()}` : '';
      return { output, exitStatus, reason: end.end, message, instructions: m.cpu.retired };
    }
    if (left <= 0) {
      return { output, exitStatus: undefined, reason: 'budget', message: `stopped after ${m.cpu.retired} instructions\n${m.registerDump()}`, instructions: m.cpu.retired };
    }
  }
}

/** The name the kernel sees for the image: a bundled image by its path in the repository (what QEMU run
 *  from the repository root would pass), a file by the path the user typed. */
function imageNameFor(opts: RunOptions): string {
  if (opts.imageArg.includes('/') || opts.imageArg.endsWith('.elf')) return opts.imageArg;
  return relative(REPO_ROOT, opts.image);
}

/** How a run of `runBare` ended, for the library API (launcher/api.ts). */
export interface BareEnding {
  end: BareEnd | 'killed-by-debugger';
  /** The value the guest wrote to isa-debug-exit ('device-exit'). */
  exitValue?: number;
  /** One line saying how it ended (empty for a device exit). */
  message: string;
  /** The register dump printed with the message. */
  registers: string;
  instructions: number;
  seconds: number;
}

/** Where `runBare` sends what it prints: the process's stdout and stderr for the CLI, callbacks for the
 *  library API (launcher/api.ts). */
export interface BareIo {
  /** Console bytes; resolves once they are handed over. */
  console(bytes: Uint8Array): Promise<void>;
  /** lguest-ts's own messages (stderr), whole lines. */
  message(text: string): void;
  /** The console is a terminal: our messages then start on a line of their own. */
  isTTY: boolean;
  /** Yield to the event loop after every slice (the API's caller shares this thread). */
  cooperative?: boolean;
  /** Aborted: stop the guest now, as --timeout does (the API's stop()). */
  stop?: AbortSignal;
  /** Told once, just before runBare returns, how the run ended. */
  ended?(e: BareEnding): void;
}

const PROCESS_IO: BareIo = {
  console: write,
  message: (text) => { process.stderr.write(text); },
  get isTTY() { return process.stdout.isTTY === true; },
};

/** `lguest-ts run --bare IMAGE`: boot it, copy the console to stdout (or `io`), return the process exit
 *  status. */
export async function runBare(opts: RunOptions, io: BareIo = PROCESS_IO): Promise<number> {
  let image: Uint8Array;
  try {
    image = readFileSync(opts.image);
  } catch (e) {
    throw new UserError(`cannot read ${opts.imageArg}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (opts.cpus !== 1) throw new UserError('bare mode runs one CPU: drop --cpus');
  if (opts.initrd) throw new UserError('bare mode loads no modules: drop --initrd');
  const m = new BareMachine(image, { memMiB: opts.memMiB, cmdline: kernelCommandLine(imageNameFor(opts), opts.cmdline), what: opts.imageArg });
  const deadline = opts.timeoutSec === undefined ? Infinity : Date.now() + opts.timeoutSec * 1000;
  const gdb = opts.gdbPort === undefined ? undefined : await attachGdb(m, opts.gdbPort, io);
  const started = Date.now();
  const ended = (end: BareEnding['end'], message: string, exitValue?: number) => io.ended?.({
    end, exitValue, message, registers: m.registerDump(), instructions: m.cpu.retired, seconds: (Date.now() - started) / 1000,
  });
  let midLine = false; // the console's last byte was not a newline

  for (;;) {
    let reason: ExitReason;
    if (gdb === undefined) {
      reason = m.run(SLICE);
    } else {
      /* [L:630] With gdb attached, each slice first waits while gdb holds the guest stopped (before the
       * first instruction, it waits for gdb to connect and say go), runs through the debug target (one
       * instruction when gdb steps), and reports a stop instead of going on. */
      const go = await gdb.link.waitToRun(deadline);
      if (go === 'kill') {
        io.message(`lguest-ts: gdb killed the guest\n${m.registerDump()}\n`);
        ended('killed-by-debugger', 'gdb killed the guest');
        await gdb.server.finish({ kind: 'terminated', signal: SIGKILL });
        return EXIT_KILLED_BY_DEBUGGER;
      }
      reason = go === 'run' ? gdb.target.run(DEBUG_SLICE) : ExitReason.Budget; // 'timeout': caught below
    }
    const bytes = m.takeOutput();
    if (bytes.length > 0) {
      await io.console(bytes);
      midLine = bytes[bytes.length - 1] !== 0x0a;
    }
    if (gdb !== undefined) {
      const stop = gdb.target.stopAfter(reason);
      if (stop !== undefined) {
        gdb.link.emit(stop);
        continue;
      }
      if (reason === ExitReason.Doorbell) reason = ExitReason.Budget; // a Ctrl-C that came as gdb left
    }
    // on a terminal, start our own messages on a line of their own
    const stopped = io.stop?.aborted === true;
    if (midLine && io.isTTY && (m.ending(reason) || Date.now() >= deadline || stopped)) {
      await io.console(new Uint8Array([0x0a]));
      midLine = false;
    }
    const end = m.ending(reason);
    if (end) {
      let status: number;
      if (end.end === 'device-exit') {
        const v = m.devices.exitValue ?? 0;
        if (opts.stats) printStats(m, started, io);
        status = opts.debugExitOk !== undefined && v === opts.debugExitOk ? 0 : debugExitStatus(v) & 0xff;
        ended(end.end, '', v);
      } else {
        io.message(`lguest-ts: ${end.message}\n${m.registerDump()}\n`);
        if (opts.stats) printStats(m, started, io);
        status = EXIT_GUEST_STOPPED;
        ended(end.end, end.message);
      }
      await gdb?.server.finish({ kind: 'exited', status });
      return status;
    }
    if (Date.now() >= deadline || stopped) {
      const message = stopped ? 'stopped the guest' : `timeout: stopped the guest after ${opts.timeoutSec} s`;
      io.message(`lguest-ts: ${message} (${m.cpu.retired} instructions)\n${m.registerDump()}\n`);
      ended(stopped ? 'stopped' : 'timeout', message);
      await gdb?.server.finish({ kind: 'terminated', signal: SIGALRM });
      return stopped ? EXIT_STOPPED : EXIT_TIMEOUT;
    }
    if (gdb !== undefined || io.cooperative) await new Promise<void>((res) => setImmediate(res));
  }
}

/** `--gdb PORT`: the guest's vCPU as a debug target, served to gdb on 127.0.0.1:PORT. */
async function attachGdb(m: BareMachine, port: number, io: BareIo): Promise<{ target: CpuDebugTarget; link: LocalDebugLink; server: GdbServer }> {
  const target = new CpuDebugTarget(m.cpu, 1);
  const link = new LocalDebugLink(target);
  const log = (msg: string) => { io.message(`lguest-ts: ${msg}\n`); };
  const server = await GdbServer.listen(link, port, log);
  log(`gdb: listening on 127.0.0.1:${server.port}; the guest waits for gdb (target remote 127.0.0.1:${server.port})`);
  return { target, link, server };
}

function printStats(m: BareMachine, started: number, io: BareIo): void {
  const s = (Date.now() - started) / 1000;
  const n = m.cpu.retired;
  io.message(`lguest-ts: ${n} instructions in ${s.toFixed(3)} s (${s > 0 ? (n / s / 1e6).toFixed(1) : '-'} MIPS)\n`);
}

/** Write console bytes to stdout, waiting until they are handed over (so a pipe is never flooded). */
function write(bytes: Uint8Array): Promise<void> {
  return new Promise((res) => process.stdout.write(bytes, () => res()));
}

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
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { relative } from 'node:path';
import type { RunOptions } from './commands/run.ts';
import { UserError } from './errors.ts';
import { PACKAGE_ROOT as REPO_ROOT } from './root.ts';
import { CPU } from '../emulator/cpu.ts';
import { ExitReason, EXIT_NAMES } from '../emulator/exits.ts';
import { CS, DS, ES, FS, GS, IF, SS, EAX, EBX, ESP } from '../emulator/constants.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { PcDevices, SharedConsole, debugExitStatus, PORT_DEBUGCON, COM1_BASE } from '../devices/pc.ts';
import { VirtualClock } from '../devices/clock.ts';
import { TABLES_BASE, TABLES_SIZE, writeFirmwareTables } from '../devices/firmware-tables.ts';
import { CpuDebugTarget, SIGALRM, SIGKILL } from '../emulator/debug-target.ts';
import { LocalDebugLink } from './debug-link.ts';
import { GdbServer } from './gdb-server.ts';
import {
  BOOT_GDT_LIMIT, MULTIBOOT_BOOTLOADER_MAGIC, bootLayout, checkFits, loadSegments, parseMultiboot, writeBootInfo,
} from './multiboot.ts';

import { EXIT_GUEST_STOPPED, EXIT_INTERRUPTED, EXIT_KILLED_BY_DEBUGGER, EXIT_TIMEOUT } from './exit-status.ts';
/** The library API's stop() (launcher/api.ts) ends a bare run as Ctrl-C ends an lguest one. */
export const EXIT_STOPPED = EXIT_INTERRUPTED;

/** How a bare run ended. */
export type BareEnd = 'device-exit' | 'halt' | 'triple-fault' | 'unsupported' | 'budget' | 'timeout' | 'reset' | 'stopped';

/** Options of the machine itself (what `run --bare` and bootBare share). */
export interface BareMachineOptions {
  memMiB: number;
  cmdline: string;
  what: string;
  icount?: boolean;
  icountShift?: number;
  /** 'stdio' | 'none' | 'file:PATH' (default 'stdio' for both). */
  serial?: string;
  debugcon?: string;
  rtcBaseMs?: number;
}

/** Check an output option's value: 'stdio', 'none' or 'file:PATH'. */
export function checkOutputSpec(name: string, v: string): void {
  if (v === 'stdio' || v === 'none' || (v.startsWith('file:') && v.length > 5)) return;
  throw new UserError(`--${name} must be stdio, none or file:PATH, not ${JSON.stringify(v)}`);
}

export interface BareBootOptions {
  /** RAM in MiB (default 32, what the test kernels' QEMU runs use). */
  memMiB?: number;
  /** The user's part of the command line (QEMU's -append). */
  cmdline?: string;
  /** The kernel's name as the loader passes it first on the command line (QEMU: the -kernel path). */
  imageName?: string;
  /** Stop after this many instructions (default 2e9). */
  maxInstructions?: number;
  /** Timers follow retired instructions (deterministic) instead of the wall clock... */
  icount?: boolean;
  /** ... each one 2^icountShift ns (default 0: 1 ns), as QEMU's -icount shift=N. */
  icountShift?: number;
  /** Where COM1 and port 0xE9 go: 'stdio' (the returned output; the default for both), 'none' (no
   *  such device), or 'file:PATH'. */
  serial?: string;
  debugcon?: string;
  /** Bytes typed on the keyboard / received by COM1 (whichever the kernel uses first). */
  input?: string;
  /** The RTC's time at boot (ms since the epoch). */
  rtcBaseMs?: number;
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
  /** The VGA text screen at the end (lines, trailing blanks dropped; empty if never written). */
  screen: string[];
}

const SLICE = 1 << 20;
/** For sleeping while halted (wall clock): Atomics.wait on a word nobody changes. */
const SLEEP = new Int32Array(new SharedArrayBuffer(4));
/** The slice while gdb is attached: the run loop yields to the event loop after each one, so gdb's
 *  packets and Ctrl-C are served within a few milliseconds even at the stepping path's speed. */
const DEBUG_SLICE = 1 << 16;

/** [L:410] The bare machine: memory, one CPU, the PC devices, and the kernel loaded into it. */
export class BareMachine {
  readonly mem: PhysicalMemory;
  readonly cpu: CPU;
  readonly devices: PcDevices;
  readonly clock: VirtualClock;
  /** Console bytes not yet taken by the caller. */
  private out: number[] = [];
  /** Files opened for --serial/--debugcon file:PATH. */
  private readonly fds: number[] = [];
  /** Input bytes not yet handed to a device, and the device that takes them once the kernel used one. */
  private input: number[] = [];
  private inputTo: 'uart' | 'ps2' | undefined;
  /** More input may come (stdin still open): a halt with nothing else to wake it waits. */
  inputOpen = false;
  /** The 8042 asked for a reset. */
  resetRequested = false;
  /** Wall mode: instructions per ns, measured (for slices that end near a timer deadline). */
  private rate = 0.1;

  constructor(image: Uint8Array, opts: BareMachineOptions) {
    const memSize = opts.memMiB * 1024 * 1024;
    const img = parseMultiboot(image, opts.what);
    checkFits(img, memSize, opts.what);
    this.mem = new PhysicalMemory(memSize);
    const layout = bootLayout(img, memSize, opts.what);
    loadSegments(this.mem, image, img);
    const info = writeBootInfo(this.mem, opts.cmdline, layout);
    // the ACPI and MP tables in the BIOS area, unless the kernel or the loader's block is there
    const clear = (a: number, b: number) => b <= TABLES_BASE || a >= TABLES_BASE + TABLES_SIZE;
    if (img.segments.every((s) => clear(s.paddr, s.paddr + s.memSize)) && clear(layout.end - 0x10000, layout.end)) {
      writeFirmwareTables(this.mem, 1);
    }

    this.cpu = new CPU(this.mem);
    const cpu = this.cpu;
    this.clock = new VirtualClock(opts.icount ? 'icount' : 'wall', () => cpu.retired, 2 ** (opts.icountShift ?? 0));
    /** [L:415] Output routing: 'stdio' bytes go to the caller's console (stdout); when both ports go there
     * they share it through SharedConsole, so a kernel that writes each character to both prints it
     * once (devices/pc.ts). */
    const shared = new SharedConsole((b) => this.out.push(b));
    const sink = (spec: string, port: number): ((b: number) => void) | null => {
      if (spec === 'none') return null;
      if (spec === 'stdio') return (b) => shared.write(port, b);
      const path = spec.slice(5);
      let fd: number;
      try { fd = openSync(path, 'w'); } catch (e) { throw new UserError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
      this.fds.push(fd);
      const buf = new Uint8Array(1);
      return (b) => { buf[0] = b; writeSync(fd, buf); };
    };
    this.devices = new PcDevices({
      memBytes: memSize,
      clock: this.clock,
      serial: sink(opts.serial ?? 'stdio', COM1_BASE),
      debugcon: sink(opts.debugcon ?? 'stdio', PORT_DEBUGCON),
      stop: () => { cpu.exitReason = ExitReason.DeviceStop; },
      reset: () => { this.resetRequested = true; cpu.exitReason = ExitReason.DeviceStop; },
      rtcBaseMs: opts.rtcBaseMs,
    });
    this.devices.attach(cpu);

    /** [L:420] The CPU as QEMU's -kernel leaves it (Multiboot spec 3.2): protected mode with paging off, CPL
     * 0, CS and the data segments flat 4 GiB through a real GDT in low memory (the kernel may reload
     * them before it sets up its own), interrupts off, EAX = the boot magic, EBX = the info. The IDTR
     * keeps its reset value (the real-mode table at 0), and so do LDTR and TR (null). */
    const c = this.cpu;
    c.resetFlat(0);
    c.gdtBase = layout.gdt;
    c.gdtLimit = BOOT_GDT_LIMIT;
    c.idtBase = 0;
    c.idtLimit = 0x3ff;
    c.r32[EAX] = MULTIBOOT_BOOTLOADER_MAGIC | 0;
    c.r32[EBX] = info;
    c.r32[ESP] = layout.stackTop;
    c.eip = img.entry | 0;
    c.setEflags(2);
  }

  /** Close the output files. */
  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }

  /** Bytes typed by the user: the keyboard's or COM1's, whichever the kernel uses first. */
  feed(bytes: Iterable<number>): void {
    for (const b of bytes) this.input.push(b);
    this.routeInput();
  }

  private routeInput(): void {
    const d = this.devices;
    if (this.inputTo === undefined) {
      if (d.uart !== null && d.uart.used) this.inputTo = 'uart';
      else if (d.ps2.used) this.inputTo = 'ps2';
      else return;
    }
    if (this.input.length === 0) return;
    const bytes = this.input;
    this.input = [];
    if (this.inputTo === 'uart') d.uart!.feed(bytes); else d.ps2.feed(bytes);
  }

  /** Could anything still raise an interrupt: a timer armed, or input (waiting or still to come) for a
   *  device the kernel uses? (Input for no device can wake nothing: a halted kernel will not start using one.) */
  private canWake(): boolean {
    if (this.clock.next() !== Infinity) return true;
    const d = this.devices;
    if (this.inputTo === undefined && !(d.uart !== null && d.uart.used) && !d.ps2.used) return false;
    return this.inputOpen || this.input.length > 0 || (d.uart !== null && d.uart.queued > 0) || d.ps2.queued > 0;
  }

  /**
   * Run up to `budget` instructions, in slices that end at the next timer deadline, the devices
   * brought up to date after each. A HLT with interrupts enabled waits for one (icount: the clock jumps
   * to the next deadline; wall clock: sleeps, at most 10 ms per call, returning Budget); it ends the
   * run (Hlt) only with interrupts disabled or when nothing could wake it.
   */
  run(budget: number): ExitReason {
    const c = this.cpu;
    const clock = this.clock;
    let left = budget;
    while (left > 0) {
      if (this.inputTo === undefined && this.input.length > 0) this.routeInput();
      if (c.halted) {
        if ((c.flags & IF) === 0) return ExitReason.Hlt;
        clock.poll();
        if (c.pendingIrq < 0) {
          if (!this.canWake()) return ExitReason.Hlt;
          if (clock.mode === 'icount' && clock.next() !== Infinity) {
            left -= Math.max(1, Math.ceil((clock.next() - clock.now()) / clock.nsPerInsn));
            this.idle();
            continue;
          }
          this.idle();
          return ExitReason.Budget;
        }
      }
      let slice = Math.min(left, SLICE);
      const next = clock.next();
      if (next !== Infinity) {
        const ns = next - clock.now();
        const n = clock.mode === 'icount' ? Math.ceil(ns / clock.nsPerInsn) : Math.ceil(ns * this.rate);
        slice = Math.max(1, Math.min(slice, n));
      }
      const t0 = clock.mode === 'wall' ? clock.now() : 0;
      const r0 = c.retired;
      const reason = c.run(slice);
      const done = c.retired - r0;
      left -= Math.max(done, 1);
      if (clock.mode === 'wall' && done > 10000) {
        const dt = clock.now() - t0;
        if (dt > 0) this.rate = this.rate * 0.75 + (done / dt) * 0.25;
      }
      clock.poll();
      if (reason === ExitReason.Hlt) {
        if ((c.flags & IF) === 0 || !this.canWake()) return reason;
        continue;
      }
      if (reason !== ExitReason.Budget) return reason;
    }
    return ExitReason.Budget;
  }

  /**
   * The CPU is halted with interrupts enabled and nothing pending: let time pass until the next timer
   * deadline (icount: at once; wall clock: sleeping, at most 10 ms) and bring the devices up to date.
   */
  idle(): void {
    const clock = this.clock;
    const next = clock.next();
    if (clock.mode === 'icount' && next !== Infinity) {
      clock.skipTo(next);
    } else {
      // wall clock, or waiting for input: sleep (the caller lets stdin in between)
      const ms = next === Infinity ? 10 : Math.min(10, Math.max(0, (next - clock.now()) / 1e6));
      if (ms > 0) Atomics.wait(SLEEP, 0, 0, ms);
    }
    clock.poll();
    if (this.inputTo === undefined && this.input.length > 0) this.routeInput();
  }

  /** Halted with interrupts enabled and nothing pending (the debugger's path idles instead of running). */
  waiting(): boolean {
    const c = this.cpu;
    return c.halted && (c.flags & IF) !== 0 && c.pendingIrq < 0;
  }

  /** Take the console bytes written since the last call. */
  takeOutput(): Uint8Array {
    const b = Uint8Array.from(this.out);
    this.out = [];
    return b;
  }

  /** The VGA text screen (empty when the kernel never wrote it). */
  screen(): string[] {
    const v = this.devices.vga;
    if (v === null || !v.written(this.mem.u8)) return [];
    return v.screen(this.mem.u8);
  }

  /** If the run is over, how it ended and a one-line message; undefined while it may go on. */
  ending(reason: ExitReason): { end: BareEnd; message: string } | undefined {
    const c = this.cpu;
    switch (reason) {
      case ExitReason.DeviceStop:
        if (this.resetRequested) return { end: 'reset', message: 'the guest reset the machine (8042 reset line)' };
        return { end: 'device-exit', message: '' };
      case ExitReason.Hlt:
        if ((c.flags & IF) !== 0 && this.canWake()) return undefined; // it waits for an interrupt
        /** [L:430] A HLT ends the run with interrupts disabled (how a kernel stops for good), or when
         * nothing could ever wake it: no timer armed, no input to come. */
        return {
          end: 'halt',
          message: (c.flags & IF) === 0
            ? `the guest halted with interrupts disabled (hlt at 0x${hex8(c.eip - 1)})`
            : `the guest halted waiting for an interrupt, and no timer is armed and no input can come (hlt at 0x${hex8(c.eip - 1)})`,
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
  for (const [k, v] of [['serial', opts.serial], ['debugcon', opts.debugcon]] as const) if (v !== undefined) checkOutputSpec(k, v);
  const m = new BareMachine(image, {
    memMiB: opts.memMiB ?? 32, cmdline: kernelCommandLine(name, opts.cmdline ?? ''), what: name,
    icount: opts.icount, icountShift: opts.icountShift, serial: opts.serial, debugcon: opts.debugcon, rtcBaseMs: opts.rtcBaseMs,
  });
  if (opts.input !== undefined) m.feed(Buffer.from(opts.input, 'latin1'));
  let left = opts.maxInstructions ?? 2e9;
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const reason = m.run(Math.min(SLICE, left));
      left -= SLICE;
      chunks.push(m.takeOutput());
      const end = m.ending(reason);
      const output = Buffer.concat(chunks).toString('latin1');
      if (end) {
        const exitStatus = end.end === 'device-exit' ? debugExitStatus(m.devices.exitValue ?? 0) : undefined;
        const message = end.message ? `${end.message}\n${m.registerDump()}` : '';
        return { output, exitStatus, reason: end.end, message, instructions: m.cpu.retired, screen: m.screen() };
      }
      if (left <= 0) {
        return { output, exitStatus: undefined, reason: 'budget', message: `stopped after ${m.cpu.retired} instructions\n${m.registerDump()}`, instructions: m.cpu.retired, screen: m.screen() };
      }
    }
  } finally {
    m.close();
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
  if (opts.cpus !== 1) {
    throw new UserError('--cpus: bare mode runs one CPU (SMP bare kernels start their other CPUs with INIT-SIPI in real mode, which lguest-ts does not have yet)');
  }
  if (opts.initrd) throw new UserError('bare mode loads no modules: drop --initrd');
  checkOutputSpec('serial', opts.serial ?? 'stdio');
  checkOutputSpec('debugcon', opts.debugcon ?? 'stdio');
  const vga = opts.vga ?? 'tty';
  if (vga === '') throw new UserError('--vga must be tty, none or a file name');
  const m = new BareMachine(image, {
    memMiB: opts.memMiB, cmdline: kernelCommandLine(imageNameFor(opts), opts.cmdline), what: opts.imageArg,
    icount: opts.icount, icountShift: opts.icountShift, serial: opts.serial, debugcon: opts.debugcon,
  });
  // stdin feeds the machine only for the CLI (the library API's caller owns its process's stdin)
  const input = io === PROCESS_IO ? attachStdin(m) : undefined;
  try {
    return await runMachine(m, opts, vga, io);
  } finally {
    input?.detach();
    m.close();
  }
}

/** stdin feeds the keyboard or COM1 (whichever the kernel uses first); a terminal is put in raw mode,
 *  where Ctrl-C (0x03) stops the run as SIGINT would, as QEMU's stdio does. */
function attachStdin(m: BareMachine): { detach: () => void; interrupted: () => boolean } {
  const stdin = process.stdin;
  let ctrlC = false;
  const tty = stdin.isTTY === true;
  if (tty) stdin.setRawMode(true);
  m.inputOpen = true;
  const onData = (b: Buffer) => {
    if (tty && b.includes(0x03)) { ctrlC = true; m.cpu.doorbell[0] = 1; return; }
    m.feed(b);
  };
  const onEnd = () => { m.inputOpen = false; };
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  stdin.on('error', onEnd);
  return {
    detach: () => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onEnd);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
    },
    interrupted: () => ctrlC,
  };
}

async function runMachine(m: BareMachine, opts: RunOptions, vga: string, io: BareIo): Promise<number> {
  const deadline = opts.timeoutSec === undefined ? Infinity : Date.now() + opts.timeoutSec * 1000;
  const gdb = opts.gdbPort === undefined ? undefined : await attachGdb(m, opts.gdbPort, io);
  const started = Date.now();
  const ended = (end: BareEnding['end'], message: string, exitValue?: number) => io.ended?.({
    end, exitValue, message, registers: m.registerDump(), instructions: m.cpu.retired, seconds: (Date.now() - started) / 1000,
  });
  let midLine = false; // the console's last byte was not a newline
  let lastYield = started;

  for (;;) {
    let reason: ExitReason;
    if (gdb === undefined) {
      reason = m.run(SLICE);
      if (reason === ExitReason.Doorbell) {
        await io.console(m.takeOutput());
        showScreen(m, vga, io);
        io.message(`\nlguest-ts: interrupted (Ctrl-C)\n`);
        ended('stopped', 'interrupted (Ctrl-C)');
        return EXIT_INTERRUPTED;
      }
      // let stdin's bytes in (and Ctrl-C) every few milliseconds
      const t = Date.now();
      if (t - lastYield >= 5) {
        lastYield = t;
        await new Promise<void>((res) => setImmediate(res));
      }
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
      if (go === 'run' && m.waiting()) {
        m.idle(); // halted: time passes (the interrupt that wakes it is taken through the debug target)
        reason = ExitReason.Budget;
      } else {
        reason = go === 'run' ? gdb.target.run(DEBUG_SLICE) : ExitReason.Budget; // 'timeout': caught below
        m.clock.poll();
      }
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
      showScreen(m, vga, io);
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
      showScreen(m, vga, io);
      const message = stopped ? 'stopped the guest' : `timeout: stopped the guest after ${opts.timeoutSec} s`;
      io.message(`lguest-ts: ${message} (${m.cpu.retired} instructions)\n${m.registerDump()}\n`);
      ended(stopped ? 'stopped' : 'timeout', message);
      await gdb?.server.finish({ kind: 'terminated', signal: SIGALRM });
      return stopped ? EXIT_STOPPED : EXIT_TIMEOUT;
    }
    if (gdb !== undefined || io.cooperative) await new Promise<void>((res) => setImmediate(res));
  }
}

/** `--vga`: the final text screen, if the kernel wrote one: on stderr (tty, so that stdout stays the
 *  serial console, as under QEMU), or into FILE; nothing with none. */
function showScreen(m: BareMachine, vga: string, io: BareIo): void {
  if (vga === 'none') return;
  const lines = m.screen();
  if (lines.length === 0) return;
  const text = lines.join('\n') + '\n';
  if (vga === 'tty') {
    io.message(`lguest-ts: the VGA text screen at the end:\n${text}`);
    return;
  }
  try { writeFileSync(vga, text); } catch (e) {
    io.message(`lguest-ts: cannot write the VGA screen to ${vga}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
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

/**
 * The library: `import { boot, run } from 'lguest-ts'` (package.json `exports` points at the build of this
 * module, dist/launcher/api.js). Everything `lguest-ts run` does, as functions: boot an lguest guest or a
 * bare Multiboot kernel with any of the CLI's options, stream its console, feed its console input, stop
 * it, and learn how it ended (the fate, the exit status the CLI would give, the statistics).
 *
 * It is the CLI's own machinery, not a copy: lguest guests boot through `bootLguest` (launcher/lguest.ts),
 * bare kernels through `runBare` (launcher/bare.ts) with its output taken by callbacks instead of stdout,
 * and options are checked by the CLI's `runArgsProblem` (commands/run.ts). Bad options throw `UserError`
 * with the CLI's one-line message. launcher/README.md, "The library".
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { HostEventKind } from '../switcher/events.ts';
import { parseInsnBounds, parseTraceEvents } from './trace.ts';
import { UserError } from './errors.ts';
import { listImages, resolveImage, type ImageInfo } from './images.ts';
import { runArgsProblem, type RunOptions } from './run-options.ts';
import { bootLguest, MAX_RESTARTS, VcpuWorkers, type LguestResult, type LguestStats } from './lguest.ts';
import { EXIT_INTERRUPTED, EXIT_KILLED, EXIT_KILLED_BY_DEBUGGER, EXIT_TIMEOUT } from './exit-status.ts';
import { runBare, type BareEnding } from './bare.ts';
import { WorkerDebugLink } from './debug-link.ts';
import { GdbServer } from './gdb-server.ts';
import { SIGALRM, SIGINT, SIGKILL, type DebugEvent } from '../emulator/debug-target.ts';
import { packageVersion } from './root.ts';

export type { HostEvent, HostEventKind } from '../switcher/events.ts';
export type { PluginSetup, PluginSetupFunction, PluginVcpu, HypercallCall, HypercallHandler, EventObserver, GuestRegister } from '../switcher/plugins.ts';
export { LHCALL_EXPERIMENT_FIRST, LHCALL_EXPERIMENT_LAST } from '../switcher/layout.ts';
export { UserError, VcpuWorkers, listImages, type ImageInfo, type LguestStats };

/** The package's version (`lguest-ts --version`). */
export const version: string = packageVersion();

/** How to boot: every option of `lguest-ts run`, by the same name where it can be. */
export interface BootOptions {
  /** A bundled image name (`lguest-ts images`; with `pae` the PAE build of an lguest guest), a path to an
   *  ELF file, or the image's bytes (lguest mode). */
  image: string | Uint8Array;
  /** The name the guest sees for an image given as bytes (default 'guest.elf'). */
  imageName?: string;
  /** Boot a Multiboot v1 kernel on the bare machine (no Host): `--bare`. */
  bare?: boolean;
  /** Guest memory in MiB, 2 to 1024 (default 64): `--mem`. */
  memMiB?: number;
  /** vCPUs, 1 to 8 (default 1; lguest mode): `--cpus`. */
  cpus?: number;
  /** The kernel command line: `--cmdline`. */
  cmdline?: string;
  /** An initial ramdisk, a path or bytes (lguest mode): `--initrd`. */
  initrd?: string | Uint8Array;
  /** A virtio block device backed by this file, read and written in place (lguest mode): `--block`. */
  block?: string;
  /** Offer the virtio entropy device (lguest mode): `--rng`. */
  rng?: boolean;
  /** PAE paging (lguest mode): `--pae`. */
  pae?: boolean;
  /** Stop the guest after this many seconds: `--timeout`. */
  timeoutSec?: number;
  /** Bare mode: a write of this value to isa-debug-exit means success (exit status 0): `--debug-exit-ok`. */
  debugExitOk?: number;
  /** Serve gdb on 127.0.0.1:PORT (0: any free port) and wait for it before the first instruction: `--gdb`. */
  gdbPort?: number;
  /** Write the statistics as JSON to this file when the guest ends, as `--stats-json` does (lguest mode). */
  statsJson?: string;
  /** Hypercall plug-in modules (paths), loaded in every vCPU worker (lguest mode): `--plugin`. */
  plugins?: string[];
  /** Host events to trace as JSON Lines, comma-separated as `--trace` takes them, or a list (lguest mode). */
  trace?: string | HostEventKind[];
  /** Where the trace goes (default stderr): `--trace-file`. */
  traceFile?: string;
  /** With 'insn' in `trace`: guest addresses LO-HI and/or retired instructions N-M to trace:
   *  `--trace-insn-range`, `--trace-insn-window`. */
  traceInsnRange?: string;
  traceInsnWindow?: string;
  /** Console bytes as the guest writes them. */
  onConsole?: (bytes: Uint8Array) => void;
  /** lguest-ts's own messages, what the CLI prints on stderr (gdb's port, a reboot, how a bare run ended,
   *  `--stats` in bare mode), one or more whole lines each. */
  onMessage?: (text: string) => void;
  /** Called with the port once gdb can connect (with `gdbPort`). */
  onGdbListening?: (port: number) => void;
  /** Aborting it stops the guest, as `stop()` does. */
  signal?: AbortSignal;
  /** lguest mode: run the vCPUs on these worker threads (kept warm across boots) instead of starting new
   *  ones; a pool smaller than `cpus` is not used. */
  workers?: VcpuWorkers;
}

/** How the guest ended. */
export type RunFate =
  /** lguest: the guest powered off (SHUTDOWN, "Power down"). */
  | { kind: 'poweroff'; reason: string }
  /** bare: the kernel wrote `value` to isa-debug-exit (port 0xF4). */
  | { kind: 'exit'; value: number }
  /** lguest: the Host killed the guest (its first reason: a bad hypercall, a crash report, a bad ring...),
   *  or the guest asked to restart more than MAX_RESTARTS times. `report`: what the Host saw at the kill
   *  (the guest's registers, the instruction at EIP, the last Host events), the lines the CLI prints. */
  | { kind: 'killed'; reason: string; report?: string[] }
  /** bare: HLT with nothing to wake it, a triple fault, or something lguest-ts does not implement. */
  | { kind: 'halt' | 'triple-fault' | 'unsupported'; reason: string; registers: string }
  /** `timeoutSec` ran out. */
  | { kind: 'timeout'; reason: string }
  /** `stop()` or the `signal`. */
  | { kind: 'stopped'; reason: string }
  /** gdb's `kill`. */
  | { kind: 'killed-by-debugger'; reason: string };

/** Bare mode's statistics. */
export interface BareStats {
  instructions: number;
  seconds: number;
}

export type RunResult = {
  fate: RunFate;
  /** What `lguest-ts run` would exit with (launcher/README.md): 0 power-off, 1 killed, 124 timeout, 130
   *  stopped, 6 gdb's kill; bare mode (v << 1) | 1 for isa-debug-exit v (0 for `debugExitOk`), 4 halted. */
  exitStatus: number;
} & ({ mode: 'lguest'; stats: LguestStats } | { mode: 'bare'; stats: BareStats });

/** A booting or running guest. */
export interface Guest {
  /** The console, chunk by chunk, ending when the guest does. Iterate right after `boot()` (output that
   *  came before the first `next()` is kept from then on only); one iterator per guest. */
  readonly console: AsyncIterable<Uint8Array>;
  /** Resolves when the guest has ended. Rejects only for bad options or input (UserError) or an internal
   *  failure, never for anything the guest does. */
  readonly result: Promise<RunResult>;
  /** Console input (lguest mode: the virtio console's input queue; bytes wait until the guest's driver
   *  takes them). */
  write(data: string | Uint8Array): void;
  /** Stop the guest now; `result` then says 'stopped'. */
  stop(): void;
}

/** Boot a guest. Options are checked at once (UserError); the guest runs in the background. */
export function boot(options: BootOptions): Guest {
  const o = normalise(options);
  const stream = new ConsoleStream();
  const abort = new AbortController();
  const stop = () => abort.abort();
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  const input = new InputQueue(o.bare);
  const onConsole = (b: Uint8Array) => { options.onConsole?.(b); stream.push(b); };
  const message = (t: string) => options.onMessage?.(t);
  const result = (o.bare ? bootBareApi(o, onConsole, message, abort.signal) : bootLguestApi(options, o, onConsole, message, abort.signal, input))
    .finally(() => {
      stream.end();
      options.signal?.removeEventListener('abort', stop);
    });
  result.catch(() => {}); // the caller sees the rejection through `result`; an unhandled one must not kill the process
  return {
    console: stream,
    result,
    write: (data) => input.write(typeof data === 'string' ? new TextEncoder().encode(data) : data),
    stop,
  };
}

/** Boot a guest and wait for its end: the result with the whole console output (UTF-8). */
export async function run(options: BootOptions): Promise<RunResult & { output: string }> {
  const chunks: Uint8Array[] = [];
  const g = boot({ ...options, onConsole: (b) => { chunks.push(b); options.onConsole?.(b); } });
  const r = await g.result;
  return { ...r, output: Buffer.concat(chunks).toString('utf8') };
}

/** The options as the CLI's RunOptions, checked by the CLI's rules. */
function normalise(b: BootOptions): RunOptions & { bytes?: Uint8Array } {
  const bare = b.bare === true;
  const problem = runArgsProblem({
    bare, mem: b.memMiB ?? 64, cpus: b.cpus ?? 1, timeout: b.timeoutSec, gdb: b.gdbPort, debugExitOk: b.debugExitOk,
    block: b.block, rng: b.rng === true, plugins: b.plugins,
    trace: Array.isArray(b.trace) ? b.trace.join(',') : b.trace, traceFile: b.traceFile,
  });
  if (problem !== undefined) throw new UserError(problem);
  let image: string, imageArg: string, bytes: Uint8Array | undefined;
  if (typeof b.image === 'string') {
    imageArg = b.image;
    const { path, info } = resolveImage(b.image, b.pae === true);
    if (!existsSync(path)) throw new UserError(`no such image: ${b.image} (not a bundled image name, see 'lguest-ts images', nor a file)`);
    if (info?.kind === 'bare' && !bare) throw new UserError(`${b.image} is a bare Multiboot kernel: run it with --bare`);
    image = path;
  } else if (b.image instanceof Uint8Array) {
    if (bare) throw new UserError('bare mode boots a file: give the image as a path or a bundled name');
    imageArg = image = b.imageName ?? 'guest.elf';
    bytes = b.image;
  } else {
    throw new UserError('image must be a bundled image name, a path, or the image\'s bytes');
  }
  if (typeof b.initrd !== 'string' && b.initrd !== undefined && !(b.initrd instanceof Uint8Array)) throw new UserError('initrd must be a path or bytes');
  return {
    image, imageArg, bytes, bare, memMiB: b.memMiB ?? 64, cpus: b.cpus ?? 1, cmdline: b.cmdline ?? '',
    initrd: typeof b.initrd === 'string' ? b.initrd : undefined, block: b.block, rng: b.rng === true, pae: b.pae === true,
    timeoutSec: b.timeoutSec, stats: false, statsJson: b.statsJson, debugExitOk: b.debugExitOk, gdbPort: b.gdbPort,
    plugins: b.plugins, trace: Array.isArray(b.trace) ? b.trace.join(',') : b.trace, traceFile: b.traceFile,
    traceInsnRange: b.traceInsnRange, traceInsnWindow: b.traceInsnWindow,
  };
}

async function bootBareApi(o: RunOptions, onConsole: (b: Uint8Array) => void, message: (t: string) => void, stop: AbortSignal): Promise<RunResult> {
  let ending: BareEnding | undefined;
  const exitStatus = await runBare(o, {
    console: async (b) => onConsole(b),
    message,
    isTTY: false,
    cooperative: true,
    stop,
    ended: (e) => { ending = e; },
  });
  if (ending === undefined) throw new Error('internal error: the bare run ended without saying how');
  const e = ending;
  const fate: RunFate = e.end === 'device-exit' ? { kind: 'exit', value: e.exitValue ?? 0 }
    : e.end === 'halt' || e.end === 'triple-fault' || e.end === 'unsupported' ? { kind: e.end, reason: e.message, registers: e.registers }
      : e.end === 'killed-by-debugger' ? { kind: 'killed-by-debugger', reason: e.message }
        : e.end === 'stopped' ? { kind: 'stopped', reason: 'stopped by the caller' }
          : { kind: 'timeout', reason: e.message };
  return { mode: 'bare', fate, exitStatus, stats: { instructions: e.instructions, seconds: e.seconds } };
}

async function bootLguestApi(
  b: BootOptions, o: RunOptions & { bytes?: Uint8Array }, onConsole: (b: Uint8Array) => void, message: (t: string) => void,
  stop: AbortSignal, input: InputQueue,
): Promise<RunResult> {
  const image = o.bytes ?? readFile(o.image, 'image');
  let initrd: Uint8Array | undefined;
  let initrdName: string | undefined;
  if (b.initrd instanceof Uint8Array) { initrd = b.initrd; initrdName = 'initrd'; }
  else if (typeof b.initrd === 'string') {
    if (!existsSync(b.initrd)) throw new UserError(`no such initrd: ${b.initrd}`);
    initrd = readFile(b.initrd, 'initrd');
    initrdName = b.initrd;
  }
  let gdb: { link: WorkerDebugLink; server: GdbServer } | undefined;
  if (o.gdbPort !== undefined) {
    const link = new WorkerDebugLink(o.cpus);
    const server = await GdbServer.listen(link, o.gdbPort, (msg) => message(`lguest-ts: ${msg}\n`));
    gdb = { link, server };
    message(`lguest-ts: gdb: listening on 127.0.0.1:${server.port}; the guest waits for gdb (target remote 127.0.0.1:${server.port})\n`);
    b.onGdbListening?.(server.port);
  }
  const traceEvents = o.trace === undefined ? undefined : parseTraceEvents(o.trace);
  let r: LguestResult;
  try {
    r = await bootLguest({
      interrupt: stop, image, imageName: o.imageArg, memMiB: o.memMiB, cpus: o.cpus, pae: o.pae, cmdline: o.cmdline,
      initrd, initrdName, timeoutSec: o.timeoutSec, block: o.block, rng: o.rng,
      onConsole, consoleInput: (send) => input.attach(send),
      onRestart: (n, reason) => message(`lguest-ts: the guest asked to restart (${reason}); reboot ${n} of at most ${MAX_RESTARTS}\n`),
      debug: gdb?.link,
      plugins: o.plugins, trace: traceEvents, traceFile: o.traceFile,
      traceInsn: parseInsnBounds(traceEvents ?? [], o.traceInsnRange, o.traceInsnWindow),
    }, b.workers);
  } catch (e) {
    await gdb?.server.finish({ kind: 'terminated', signal: SIGKILL });
    throw e;
  }
  if (o.statsJson) writeFileSync(o.statsJson, JSON.stringify({ fate: r.fate, ...r.stats }, null, 2) + '\n');
  // The same statuses as the CLI's lguest mode (launcher/lguest.ts).
  let fate: RunFate, exitStatus: number, end: DebugEvent;
  const f = r.fate;
  if (f.kind === 'poweroff') {
    fate = { kind: 'poweroff', reason: f.reason }; exitStatus = 0; end = { kind: 'exited', status: 0 };
  } else if (f.kind === 'stopped' && gdb?.link.killed) {
    fate = { kind: 'killed-by-debugger', reason: 'gdb killed the guest' }; exitStatus = EXIT_KILLED_BY_DEBUGGER; end = { kind: 'terminated', signal: SIGKILL };
  } else if (f.kind === 'stopped' && stop.aborted) {
    fate = { kind: 'stopped', reason: 'stopped by the caller' }; exitStatus = EXIT_INTERRUPTED; end = { kind: 'terminated', signal: SIGINT };
  } else if (f.kind === 'stopped') {
    fate = { kind: 'timeout', reason: f.reason }; exitStatus = EXIT_TIMEOUT; end = { kind: 'terminated', signal: SIGALRM };
  } else {
    fate = { kind: 'killed', reason: f.reason, ...(r.killReport ? { report: r.killReport } : {}) };
    exitStatus = EXIT_KILLED; end = { kind: 'exited', status: EXIT_KILLED };
  }
  await gdb?.server.finish(end);
  return { mode: 'lguest', fate, exitStatus, stats: r.stats };
}

function readFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Console input for the guest: held until a boot takes it (lguest's virtio console), then handed over. */
class InputQueue {
  private send: ((b: Uint8Array) => void) | undefined;
  private pending: Uint8Array[] = [];
  constructor(private readonly bare: boolean) {}
  write(b: Uint8Array): void {
    if (this.bare) throw new UserError('bare mode has no console input');
    if (this.send) this.send(b);
    else this.pending.push(b);
  }
  attach(send: (b: Uint8Array) => void): () => void {
    this.send = send;
    for (const b of this.pending.splice(0)) send(b);
    return () => { if (this.send === send) this.send = undefined; };
  }
}

/** The console as an async iterable: chunks are kept from the moment someone iterates. */
class ConsoleStream implements AsyncIterable<Uint8Array> {
  private chunks: Uint8Array[] = [];
  private waiter: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  private done = false;
  private iterating = false;

  push(b: Uint8Array): void {
    if (!this.iterating || this.done) return;
    const w = this.waiter;
    if (w) { this.waiter = undefined; w({ value: b, done: false }); } else this.chunks.push(b);
  }

  end(): void {
    this.done = true;
    const w = this.waiter;
    if (w) { this.waiter = undefined; w({ value: undefined, done: true }); }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterating) throw new Error('a guest\'s console has one iterator');
    this.iterating = true;
    return {
      next: () => {
        const b = this.chunks.shift();
        if (b !== undefined) return Promise.resolve({ value: b, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((res) => { this.waiter = res; });
      },
      return: () => {
        this.chunks = [];
        this.done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

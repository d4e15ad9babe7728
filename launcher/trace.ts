/**
 * `run --trace EVENTS [--trace-file FILE]`: the Host's events as JSON Lines, one object per line:
 *
 *     {"t":12.345,"vcpu":0,"insn":48211,"event":"hypercall","nr":14,"name":"SET_PTE","args":[...],"sync":false}
 *
 * `t` is milliseconds since the boot started (every vCPU worker shares that origin), `insn` the vCPU's
 * retired-instruction count, `event` one of switcher/events.ts's kinds, and the rest that event's fields.
 * Each vCPU worker writes its own lines, buffered and written whole (O_APPEND), so lines of different vCPUs
 * interleave but never mix; within a vCPU they are in order. Default destination: stderr.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { HOST_EVENT_KINDS, type HostEvent, type HostEventKind, type HostEventSink } from '../switcher/events.ts';
import { UserError } from './errors.ts';
import { INSN_TRACE_LIMIT, type InsnBounds } from '../switcher/insn-trace.ts';

export interface TraceConfig {
  events: HostEventKind[];
  /** Append to this file (the Launcher created it empty); undefined: stderr. */
  file?: string;
  /** performance.timeOrigin + performance.now() at the boot's start. */
  t0: number;
  /** `insn` is in `events`: which instructions (parseInsnBounds). */
  insn?: InsnBounds;
}

/** `--trace a,b,c` (or `all`) as event kinds; one clear error for anything else. */
export function parseTraceEvents(spec: string): HostEventKind[] {
  const words = spec.split(',').map((w) => w.trim()).filter((w) => w !== '');
  if (words.length === 0) throw new UserError(`--trace needs a comma-separated list of events (${HOST_EVENT_KINDS.join(', ')}, or all)`);
  const out = new Set<HostEventKind>();
  for (const w of words) {
    if (w === 'all') { for (const k of HOST_EVENT_KINDS) out.add(k); continue; }
    if (w === 'insn') { out.add('insn'); continue; }
    if (!(HOST_EVENT_KINDS as readonly string[]).includes(w)) throw new UserError(`--trace: no event '${w}' (events: ${HOST_EVENT_KINDS.join(', ')}, or all)`);
    out.add(w as HostEventKind);
  }
  return [...out];
}

/** A number as typed: decimal, or hex with 0x; `what` names the option for the error. */
function parseCount(text: string, what: string, max: number): number {
  const t = text.trim().replace(/_/g, '');
  const v = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^[0-9]+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(v) || v > max) throw new UserError(`${what}: '${text}' is not a number from 0 to ${max === 0xffffffff ? '0xffffffff' : max} (decimal, or hex with 0x)`);
  return v;
}

function parsePair(spec: string, what: string, form: string, max: number): [number, number] {
  const m = /^([^-]+)-([^-]+)$/.exec(spec.trim());
  if (!m) throw new UserError(`${what} takes ${form}, not '${spec}'`);
  const lo = parseCount(m[1], what, max), hi = parseCount(m[2], what, max);
  if (hi <= lo) throw new UserError(`${what} ${spec}: the end must be above the start (${form}: the start is in, the end is not)`);
  return [lo, hi];
}

/**
 * `--trace insn`'s bounds: `--trace-insn-range LO-HI` (guest linear EIP, LO <= EIP < HI) and/or
 * `--trace-insn-window N-M` (the vCPU's retired-instruction count, N <= count < M). One of the two is
 * required, so an instruction trace is always bounded; neither is allowed without `insn`.
 */
export function parseInsnBounds(events: HostEventKind[], range?: string, window?: string): InsnBounds | undefined {
  const insn = events.includes('insn');
  if (!insn) {
    if (range !== undefined || window !== undefined) throw new UserError('--trace-insn-range and --trace-insn-window need --trace insn');
    return undefined;
  }
  if (range === undefined && window === undefined) {
    throw new UserError('--trace insn needs bounds, so it cannot flood: --trace-insn-range LO-HI (addresses) and/or --trace-insn-window N-M (retired instructions)');
  }
  const [lo, hi] = range === undefined ? [0, 0x1_0000_0000] : parsePair(range, '--trace-insn-range', 'LO-HI, guest addresses', 0xffffffff);
  const [from, to] = window === undefined ? [0, Number.MAX_SAFE_INTEGER] : parsePair(window, '--trace-insn-window', 'N-M, retired-instruction counts', Number.MAX_SAFE_INTEGER);
  return { lo, hi: range === undefined ? hi : hi, from, to, limit: INSN_TRACE_LIMIT };
}

const FLUSH_LINES = 256;

export class TraceWriter implements HostEventSink {
  private readonly kinds: Set<HostEventKind>;
  private readonly fd: number;
  private readonly own: boolean;
  private lines: string[] = [];

  constructor(readonly cfg: TraceConfig) {
    this.kinds = new Set(cfg.events);
    this.own = cfg.file !== undefined;
    this.fd = cfg.file !== undefined ? openSync(cfg.file, 'a') : 2;
  }

  wants(kind: HostEventKind): boolean { return this.kinds.has(kind); }

  emit(vcpu: number, retired: number, ev: HostEvent): void {
    const t = Math.round((performance.timeOrigin + performance.now() - this.cfg.t0) * 1000) / 1000;
    const { kind, ...fields } = ev;
    this.lines.push(JSON.stringify({ t, vcpu, insn: retired, event: kind, ...fields }));
    if (this.lines.length >= FLUSH_LINES) this.flush();
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    try {
      writeSync(this.fd, text);
    } catch {
      // A trace that cannot be written (a closed pipe, a full disk) must not take the guest down.
    }
  }

  close(): void {
    this.flush();
    if (this.own) closeSync(this.fd);
  }
}

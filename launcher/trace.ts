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

export interface TraceConfig {
  events: HostEventKind[];
  /** Append to this file (the Launcher created it empty); undefined: stderr. */
  file?: string;
  /** performance.timeOrigin + performance.now() at the boot's start. */
  t0: number;
}

/** `--trace a,b,c` (or `all`) as event kinds; one clear error for anything else. */
export function parseTraceEvents(spec: string): HostEventKind[] {
  const words = spec.split(',').map((w) => w.trim()).filter((w) => w !== '');
  if (words.length === 0) throw new UserError(`--trace needs a comma-separated list of events (${HOST_EVENT_KINDS.join(', ')}, or all)`);
  const out = new Set<HostEventKind>();
  for (const w of words) {
    if (w === 'all') { for (const k of HOST_EVENT_KINDS) out.add(k); continue; }
    if (w === 'insn') throw new UserError('--trace insn: instruction tracing is not implemented yet (use gdb to step instructions)');
    if (!(HOST_EVENT_KINDS as readonly string[]).includes(w)) throw new UserError(`--trace: no event '${w}' (events: ${HOST_EVENT_KINDS.join(', ')}, or all)`);
    out.add(w as HostEventKind);
  }
  return [...out];
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

/**
 * What happens in the Host, as events: hypercalls, traps, page faults, interrupts, IPIs, world switches,
 * device kicks, console output. The Host emits them only when someone listens (`--trace`, a plug-in's
 * `on(...)`, the kill report's recent-events ring): a vCPU without listeners pays one null check per Host
 * event and nothing in the CPU's own loop.
 */
export type HostEvent =
  /** A hypercall ran: from the registers (sync) or from the async ring. `result` is what EAX (and EDX
   *  for a 64-bit plug-in result) got, when the call returns something. */
  | { kind: 'hypercall'; nr: number; name: string; args: [number, number, number, number]; sync: boolean; result?: number | string }
  /** A trap reached the Host. fate: what the Host did with it. */
  | { kind: 'trap'; vector: number; errcode: number; eip: number; fate: 'handled' | 'reflected' | 'hypercall' | 'host-irq' | 'emulated' | 'killed' }
  /** A page fault: fixed by the shadow (the guest never sees it) or reflected with lguest_data.cr2. */
  | { kind: 'pagefault'; addr: number; errcode: number; eip: number; fate: 'fixed' | 'reflected' }
  /** A virtual interrupt delivered through the guest's IDT. */
  | { kind: 'interrupt'; irq: number; vector: number }
  | { kind: 'ipi'; target: number; irq: number }
  /** The world switch: into the guest, and back out (with the trap number that brought it out). */
  | { kind: 'switch'; dir: 'in' | 'out'; trap?: number }
  | { kind: 'kick'; addr: number }
  | { kind: 'console'; bytes: number; text: string }
  | { kind: 'shootdown' }
  /** `--trace insn` (switcher/insn-trace.ts): a guest instruction that ran, its bytes, its disassembly and
   *  the registers before it; `faulted` when it raised an exception instead of retiring; `last` when the
   *  per-vCPU limit ends the instruction trace. */
  | { kind: 'insn'; eip: number; cpl: number; bytes: string; asm: string; eax: number; ecx: number; edx: number; ebx: number;
      esp: number; ebp: number; esi: number; edi: number; eflags: number; faulted?: boolean; last?: string };

export type HostEventKind = HostEvent['kind'];
/** The kinds `--trace all` means (and plug-ins observe); `insn` is asked for by name, with its bounds. */
export const HOST_EVENT_KINDS: readonly HostEventKind[] = ['hypercall', 'trap', 'pagefault', 'interrupt', 'ipi', 'switch', 'kick', 'console', 'shootdown'];

/** Where a vCPU's events go: `emit` gets the event with its vCPU and retired-instruction count. */
export interface HostEventSink {
  /** Which kinds anyone wants (the Host skips building the others). */
  wants(kind: HostEventKind): boolean;
  emit(vcpu: number, retired: number, ev: HostEvent): void;
}

/** Several sinks as one (the trace writer, plug-ins' observers, the kill report's ring). */
export function combineSinks(sinks: HostEventSink[]): HostEventSink | null {
  const live = sinks.filter((s) => s !== null);
  if (live.length === 0) return null;
  if (live.length === 1) return live[0];
  return {
    wants: (k) => live.some((s) => s.wants(k)),
    emit: (vcpu, retired, ev) => { for (const s of live) if (s.wants(ev.kind)) s.emit(vcpu, retired, ev); },
  };
}

/** The last N events of a vCPU, for the report of a killed guest ("what happened just before"). */
export class RecentEvents implements HostEventSink {
  private readonly ring: Array<{ retired: number; ev: HostEvent } | undefined>;
  private next = 0;
  constructor(readonly size = 12) { this.ring = new Array(size); }
  wants(kind: HostEventKind): boolean { return kind !== 'switch' && kind !== 'console' && kind !== 'insn'; }
  emit(_vcpu: number, retired: number, ev: HostEvent): void {
    this.ring[this.next] = { retired, ev };
    this.next = (this.next + 1) % this.size;
  }
  /** Oldest first. */
  list(): Array<{ retired: number; ev: HostEvent }> {
    const out = [];
    for (let i = 0; i < this.size; i++) {
      const e = this.ring[(this.next + i) % this.size];
      if (e) out.push(e);
    }
    return out;
  }
}

/** One line for a human (the kill report). */
export function describeEvent(ev: HostEvent): string {
  const h = (n: number) => `0x${(n >>> 0).toString(16)}`;
  switch (ev.kind) {
    case 'hypercall': return `hypercall ${ev.name}(${ev.args.map(h).join(', ')})${ev.sync ? '' : ' [async ring]'}${ev.result !== undefined ? ` -> ${typeof ev.result === 'number' ? h(ev.result) : ev.result}` : ''}`;
    case 'trap': return `trap ${ev.vector} err ${h(ev.errcode)} at ${h(ev.eip)}: ${ev.fate}`;
    case 'pagefault': return `page fault at ${h(ev.addr)} err ${h(ev.errcode)} eip ${h(ev.eip)}: ${ev.fate}`;
    case 'interrupt': return `interrupt IRQ ${ev.irq} (vector ${ev.vector}) delivered`;
    case 'ipi': return `IPI IRQ ${ev.irq} to vCPU ${ev.target}`;
    case 'switch': return `switch ${ev.dir}${ev.trap !== undefined ? ` (trap ${ev.trap})` : ''}`;
    case 'kick': return `device kick at ${h(ev.addr)}`;
    case 'console': return `console ${ev.bytes} bytes`;
    case 'shootdown': return 'TLB shootdown';
    case 'insn': return `${h(ev.eip)}: ${ev.asm}`;
  }
}

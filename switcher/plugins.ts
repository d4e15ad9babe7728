/**
 * Hypercall plug-ins (`lguest-ts run IMAGE --plugin FILE`, or `plugins` in the library API): a JavaScript
 * or TypeScript module, loaded in every vCPU worker, that serves hypercall numbers of the experiment range
 * (LHCALL_EXPERIMENT_FIRST..LAST, 0x1000-0x1FFF; lguest's own numbers stay below 64) and may observe every
 * Host event (switcher/events.ts).
 *
 * A plug-in module's default export (or its export `plugin`) is a function that gets a PluginSetup:
 *
 *     export default function (host) {
 *       host.hypercall(0x1000, 'HOST_TIME_NS', (vcpu) => process.hrtime.bigint());
 *       host.on('pagefault', (ev, vcpu) => { ... });
 *     }
 *
 * A handler gets a PluginVcpu (registers, checked guest-physical and guest-virtual memory, lguest_data,
 * raising a virtual interrupt, killing the guest) and the call's four arguments. Its return value goes to
 * the guest: a number is EAX (32 bits), a bigint is EDX:EAX (64 bits), undefined leaves the registers as
 * they were. A handler that throws kills the guest with "plug-in NAME: MESSAGE"; so does an observer. A
 * number in the range that no plug-in registered kills the guest as any unknown hypercall does. Nothing a
 * plug-in does reaches the Host's own state except through these checked calls.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { LGUEST_DATA, LGUEST_IRQS, LHCALL_EXPERIMENT_FIRST, LHCALL_EXPERIMENT_LAST, PAGE_SIZE } from './layout.ts';
import type { LgCpu } from './lguest.ts';
import type { HostEvent, HostEventKind, HostEventSink } from './events.ts';
import { HOST_EVENT_KINDS } from './events.ts';

export { LHCALL_EXPERIMENT_FIRST, LHCALL_EXPERIMENT_LAST };

const PTE_PRESENT = 1;
const PTE_LARGE = 0x80;

/** The guest-physical address of `va` through the guest's own page tables as vCPU `c` uses them now, or
 *  -1 when they do not map it. Unlike the shadow's guestPa (which kills on a hole, as lguest does for the
 *  Host's own emulation), this only looks: a plug-in or a report decides what a hole means. Every table
 *  read is checked against the guest's memory. */
export function guestTranslate(c: LgCpu, va: number): number {
  const lg = c.lg;
  va >>>= 0;
  const top = lg.shadow.currentGpgdir(c);
  if (top <= 0) return -1;
  const entry = (gpa: number): number => (lg.addressOk(gpa, 4) ? lg.mem.read32(lg.memBase + gpa) >>> 0 : 0);
  const high = (gpa: number): number => (lg.addressOk(gpa + 4, 4) ? lg.mem.read32(lg.memBase + gpa + 4) >>> 0 : 1);
  let pte: number;
  if (lg.pae) {
    const pdpte = top + (va >>> 30) * 8;
    if ((entry(pdpte) & PTE_PRESENT) === 0 || high(pdpte) !== 0) return -1;
    const pmd = ((entry(pdpte) & ~0xfff) >>> 0) + ((va >>> 21) & 511) * 8;
    const dir = entry(pmd);
    if ((dir & PTE_PRESENT) === 0 || high(pmd) !== 0 || (dir & PTE_LARGE) !== 0) return -1;
    const pt = ((dir & ~0xfff) >>> 0) + ((va >>> 12) & 511) * 8;
    if (high(pt) !== 0) return -1;
    pte = entry(pt);
  } else {
    const dir = entry(top + (va >>> 22) * 4);
    if ((dir & PTE_PRESENT) === 0 || (dir & PTE_LARGE) !== 0) return -1;
    pte = entry(((dir & ~0xfff) >>> 0) + ((va >>> 12) & 1023) * 4);
  }
  if ((pte & PTE_PRESENT) === 0) return -1;
  const gpa = ((pte & ~0xfff) >>> 0) + (va & 0xfff);
  return lg.addressOk(gpa, 1) ? gpa : -1;
}

/** The guest registers a plug-in may read and write (lguest_regs, as the guest will see them on return). */
export type GuestRegister = 'eax' | 'ebx' | 'ecx' | 'edx' | 'esi' | 'edi' | 'ebp' | 'esp' | 'eip' | 'eflags' | 'cs' | 'ss' | 'ds' | 'es' | 'fs' | 'gs';
const WRITABLE: ReadonlySet<string> = new Set(['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp']);

/** A plug-in's typed, checked view of one vCPU. Every memory access is bounds-checked by the Host: a bad
 *  address kills the guest (as a bad hypercall argument does) and reads as zeros. */
export interface PluginVcpu {
  /** This vCPU's number (0 for the boot vCPU). */
  readonly id: number;
  /** Instructions this vCPU has retired. */
  readonly retired: number;
  /** Is the guest using PAE paging? */
  readonly pae: boolean;
  reg(name: GuestRegister): number;
  /** General registers only (eax..ebp): segment registers, EIP, ESP and EFLAGS stay the Host's business. */
  setReg(name: GuestRegister, value: number): void;
  readPhys(gpa: number, len: number): Uint8Array;
  writePhys(gpa: number, bytes: Uint8Array): void;
  /** Through the guest's own page tables as this vCPU sees them now; a page it has not mapped kills the
   *  guest with a reason naming the address. */
  readVirt(va: number, len: number): Uint8Array;
  writeVirt(va: number, bytes: Uint8Array): void;
  /** The guest-physical address `va` maps to, or -1. */
  translate(va: number): number;
  /** A 32-bit field of this vCPU's lguest_data (0 before LGUEST_INIT). */
  readData(field: keyof typeof LGUEST_DATA): number;
  writeData(field: keyof typeof LGUEST_DATA, value: number): void;
  /** Raise virtual IRQ `irq` (0..31) on this vCPU, or on vCPU `target`. */
  raiseInterrupt(irq: number, target?: number): void;
  /** End the guest with this reason (the first kill of a guest is its fate). */
  kill(reason: string): void;
}

export interface HypercallCall {
  nr: number;
  args: [number, number, number, number];
  /** False when the call came from the async ring (its result is dropped). */
  sync: boolean;
}

export type HypercallHandler = (vcpu: PluginVcpu, call: HypercallCall) => number | bigint | void;
export type EventObserver = (ev: HostEvent, vcpu: PluginVcpu) => void;

/** What a plug-in's setup function is given. */
export interface PluginSetup {
  /** The vCPU whose worker loaded this copy of the plug-in, and how many the guest has. */
  readonly vcpu: number;
  readonly cpus: number;
  /** Serve hypercall `nr` (in LHCALL_EXPERIMENT_FIRST..LAST); `name` shows in --stats and traces. */
  hypercall(nr: number, name: string, handler: HypercallHandler): void;
  /** Observe every event of a kind (or '*'). */
  on(kind: HostEventKind | '*', observer: EventObserver): void;
}

export type PluginSetupFunction = (host: PluginSetup) => void | Promise<void>;

/** Raised for a plug-in that is bad before any guest runs (the CLI prints one line and exits 2). */
export class PluginError extends Error {}

interface Registered { plugin: string; name: string; handler: HypercallHandler }

/** The plug-ins of one vCPU worker. */
export class PluginSet {
  readonly handlers = new Map<number, Registered>();
  private readonly observers: Array<{ plugin: string; kind: HostEventKind | '*'; fn: EventObserver }> = [];
  private views = new WeakMap<LgCpu, PluginVcpu>();
  /** Who is running now, for kill reasons: "plug-in FILE: NAME". */
  private active = 'plug-in';

  get empty(): boolean { return this.handlers.size === 0 && this.observers.length === 0; }

  /** Load each module and run its setup. Paths are resolved against the current directory. */
  static async load(paths: readonly string[], vcpu: number, cpus: number): Promise<PluginSet> {
    const set = new PluginSet();
    for (const p of paths) await set.add(p, vcpu, cpus);
    return set;
  }

  private async add(path: string, vcpu: number, cpus: number): Promise<void> {
    const file = resolve(path);
    const label = path;
    if (/\.[cm]?ts$/.test(file)) {
      // TypeScript plug-ins go through tsx's loader (a dependency of lguest-ts), registered on demand.
      const { register } = await import('tsx/esm/api');
      register();
    }
    let mod: Record<string, unknown>;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (e) {
      throw new PluginError(`--plugin ${label}: cannot load it: ${(e as Error).message.split('\n')[0]}`);
    }
    const setup = (typeof mod.default === 'function' ? mod.default : mod.plugin) as PluginSetupFunction | undefined;
    if (typeof setup !== 'function') throw new PluginError(`--plugin ${label}: exports no setup function (export default function (host) { ... })`);
    const api: PluginSetup = {
      vcpu, cpus,
      hypercall: (nr, name, handler) => {
        if (!Number.isInteger(nr) || nr < LHCALL_EXPERIMENT_FIRST || nr > LHCALL_EXPERIMENT_LAST) {
          throw new PluginError(`--plugin ${label}: hypercall ${nr} is outside the experiment range 0x${LHCALL_EXPERIMENT_FIRST.toString(16)}-0x${LHCALL_EXPERIMENT_LAST.toString(16)}`);
        }
        const had = this.handlers.get(nr);
        if (had) throw new PluginError(`--plugin ${label}: hypercall 0x${nr.toString(16)} is already served by ${had.plugin} (${had.name})`);
        if (typeof handler !== 'function') throw new PluginError(`--plugin ${label}: hypercall 0x${nr.toString(16)} has no handler function`);
        this.handlers.set(nr, { plugin: label, name: String(name), handler });
      },
      on: (kind, fn) => {
        if (kind !== '*' && !HOST_EVENT_KINDS.includes(kind)) throw new PluginError(`--plugin ${label}: no event kind '${kind}' (${HOST_EVENT_KINDS.join(', ')})`);
        this.observers.push({ plugin: label, kind, fn });
      },
    };
    try {
      await setup(api);
    } catch (e) {
      if (e instanceof PluginError) throw e;
      throw new PluginError(`--plugin ${label}: its setup threw: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** The name a plug-in gave hypercall `nr` (for statistics and traces). */
  nameOf(nr: number): string | undefined { return this.handlers.get(nr)?.name; }

  /** [H:536] A hypercall of the experiment range: the plug-in's handler runs with a checked view of the
   *  vCPU; its result goes to EAX (or EDX:EAX). Returns what the guest got (for the trace), or undefined. */
  call(c: LgCpu, nr: number, args: [number, number, number, number], sync: boolean): number | string | undefined {
    const r = this.handlers.get(nr)!;
    let out: number | bigint | void;
    this.active = `plug-in ${r.plugin}: ${r.name}`;
    try {
      out = r.handler(this.view(c), { nr, args, sync });
    } catch (e) {
      c.lg.kill(`${this.active}: ${(e as Error)?.message ?? String(e)}`);
      return undefined;
    }
    if (out === undefined || !sync || c.lg.dead !== null) return undefined;
    if (typeof out === 'bigint') {
      const v = BigInt.asUintN(64, out);
      c.setReg('eax', Number(v & 0xffffffffn));
      c.setReg('edx', Number(v >> 32n));
      return `0x${v.toString(16)}`;
    }
    if (typeof out !== 'number' || !Number.isFinite(out)) {
      c.lg.kill(`plug-in ${r.plugin}: ${r.name}: returned ${typeof out}, not a number or bigint`);
      return undefined;
    }
    c.setReg('eax', out >>> 0);
    return out >>> 0;
  }

  /** The observers as an event sink (null when there are none). */
  sink(c: LgCpu): HostEventSink | null {
    if (this.observers.length === 0) return null;
    const kinds = new Set(this.observers.map((o) => o.kind));
    return {
      wants: (k) => kinds.has('*') || kinds.has(k),
      emit: (_vcpu, _retired, ev) => {
        for (const o of this.observers) {
          if (o.kind !== '*' && o.kind !== ev.kind) continue;
          this.active = `plug-in ${o.plugin}: observer of ${ev.kind}`;
          try {
            o.fn(ev, this.view(c));
          } catch (e) {
            c.lg.kill(`${this.active}: ${(e as Error)?.message ?? String(e)}`);
          }
        }
      },
    };
  }

  private view(c: LgCpu): PluginVcpu {
    const have = this.views.get(c);
    if (have) return have;
    const lg = c.lg;
    const virt = (va: number, len: number, each: (gpa: number, off: number, n: number) => void): void => {
      if (!Number.isInteger(len) || len < 0 || len > 1 << 24) { lg.kill(`${this.active}: bad length ${len}`); return; }
      let off = 0;
      while (off < len && lg.dead === null) {
        const addr = (va + off) >>> 0;
        const gpa = guestTranslate(c, addr);
        if (gpa < 0) { lg.kill(`${this.active}: guest-virtual 0x${addr.toString(16)} is not mapped`); return; }
        const n = Math.min(len - off, PAGE_SIZE - (addr & (PAGE_SIZE - 1)));
        each(gpa, off, n);
        off += n;
      }
    };
    const v: PluginVcpu = {
      id: c.id,
      get retired() { return c.cpu.retired; },
      pae: lg.pae,
      reg: (name) => c.reg(name),
      setReg: (name, value) => {
        if (!WRITABLE.has(name)) { lg.kill(`${this.active}: may not set ${name}`); return; }
        c.setReg(name, value >>> 0);
      },
      readPhys: (gpa, len) => {
        if (!lg.addressOk(gpa >>> 0, len)) { lg.kill(`${this.active}: guest-physical 0x${(gpa >>> 0).toString(16)} len ${len} is outside the guest`); return new Uint8Array(0); }
        return lg.readBytes(gpa >>> 0, len);
      },
      writePhys: (gpa, bytes) => {
        if (!lg.addressOk(gpa >>> 0, bytes.length)) { lg.kill(`${this.active}: guest-physical 0x${(gpa >>> 0).toString(16)} len ${bytes.length} is outside the guest`); return; }
        lg.writeBytes(gpa >>> 0, bytes);
      },
      readVirt: (va, len) => {
        const out = new Uint8Array(Math.max(0, Math.min(len | 0, 1 << 24)));
        virt(va, len, (gpa, off, n) => out.set(lg.readBytes(gpa, n), off));
        return out;
      },
      writeVirt: (va, bytes) => virt(va, bytes.length, (gpa, off, n) => lg.writeBytes(gpa, bytes.subarray(off, off + n))),
      translate: (va) => guestTranslate(c, va),
      readData: (field) => lg.readData(field),
      writeData: (field, value) => lg.writeData(field, value),
      raiseInterrupt: (irq, target = c.id) => {
        if (!Number.isInteger(irq) || irq < 0 || irq >= LGUEST_IRQS) { lg.kill(`${this.active}: no IRQ ${irq}`); return; }
        if (target === c.id) c.irqsPending |= 1 << irq;
        else if (Number.isInteger(target) && target >= 0 && target < lg.link.ncpus) lg.link.raiseIrq(target, irq);
        else lg.kill(`${this.active}: no vCPU ${target}`);
      },
      kill: (reason) => lg.kill(`${this.active}: ${String(reason)}`),
    };
    this.views.set(c, v);
    return v;
  }
}

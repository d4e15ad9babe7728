/**
 * The Host's state: `Lguest` is one guest (lguest's struct lguest), `LgCpu` one of its vCPUs (struct
 * lg_cpu). Every Host access to guest memory goes through the checked accessors here (lguest_address_ok
 * and friends): a bad address kills the guest and reads return zero, never a stray typed-array index.
 */
import type { CPU } from '../emulator/cpu.ts';
import type { PhysicalMemory } from '../mmu/memory.ts';
import type { ShadowHost, ShadowPageTables, ShadowVcpu } from '../mmu/shadow-api.ts';
import {
  GDT_ENTRIES, IDT_ENTRIES, LGUEST_DATA, LGUEST_REGS, LGUEST_REGS_PAGE_OFFSET, PAGE_SIZE, PAGING_2LEVEL, PAGING_PAE,
  type PagingLayout,
} from './layout.ts';
import type { HostPool } from './pool.ts';
import type { SwitcherCode } from './code.ts';
import type { SmpLink } from './smp.ts';
import type { HostEvent, HostEventKind, HostEventSink } from './events.ts';
import type { PluginSet } from './plugins.ts';

/** How a guest ended. */
export type Fate =
  | { kind: 'poweroff'; reason: string }
  | { kind: 'restart'; reason: string }
  | { kind: 'killed'; reason: string }
  | { kind: 'stopped'; reason: string };

export { CTRL, VC } from './smp.ts';

export interface HostStats {
  exits: Record<string, number>;
  traps: Record<string, number>;
  hypercalls: Record<string, number>;
  faultsFixed: number;
  faultsReflected: number;
  trapsReflected: number;
  interruptsDelivered: number;
  ioEmulated: number;
  instructions: number;
}

/** Statistics of a vCPU (or a sum of them) before anything happened. */
export function emptyHostStats(): HostStats {
  return {
    exits: {}, traps: {}, hypercalls: {}, faultsFixed: 0, faultsReflected: 0, trapsReflected: 0,
    interruptsDelivered: 0, ioEmulated: 0, instructions: 0,
  };
}

export interface GuestConfig {
  mem: PhysicalMemory;
  /** hpa of guest-physical 0. */
  memBase: number;
  /** Bytes of guest RAM. */
  memBytes: number;
  /** Guest frames the guest may touch (RAM plus the device pages already in use). */
  pfnLimit: number;
  pae: boolean;
  pool: HostPool;
  switcher: SwitcherCode;
  /** hpa of the Switcher code page (in the pool). */
  switcherCodePage: number;
  /** Early console bytes (NOTIFY of a string), and device notifications. */
  console(bytes: Uint8Array): void;
  /** A NOTIFY the Launcher's devices should see (an address in the device page or a ring); false: not a
   *  device address (then it is the early console). */
  deviceNotify?(addr: number): boolean;
  makeShadow(host: ShadowHost): ShadowPageTables;
  /** This vCPU's handle on what the guest's vCPUs share (kills, shootdowns, IPIs). */
  link: SmpLink;
}

export class Lguest {
  readonly mem: PhysicalMemory;
  readonly memBase: number;
  readonly memBytes: number;
  readonly pfnLimit: number;
  readonly pae: boolean;
  readonly paging: PagingLayout;
  readonly pool: HostPool;
  readonly switcher: SwitcherCode;
  readonly switcherCodePage: number;
  readonly shadow: ShadowPageTables;
  readonly config: GuestConfig;
  readonly link: SmpLink;
  readonly vcpus: LgCpu[] = [];
  /** First kill reason (lguest's lg->dead); null while alive. */
  dead: string | null = null;
  /** The death was a SHUTDOWN: power-off or restart (the reason is then "CRASH: msg"). */
  shutdown: 'poweroff' | 'restart' | null = null;
  /** gpa of struct lguest_data once LGUEST_INIT registered it; -1 before. */
  lguestData = -1;
  noirqStart = 0;
  noirqEnd = 0;
  kernelAddress = 0;
  /** gpa of the boot page tables' top level (reported in lguest_data.pgdir). */
  bootPgdir = 0;
  readonly stats: HostStats = emptyHostStats();
  /** Who listens to this vCPU's Host events (switcher/events.ts); null: nobody, and nothing is built. */
  events: HostEventSink | null = null;
  /** The hypercall plug-ins loaded in this worker (switcher/plugins.ts); null: none. */
  plugins: PluginSet | null = null;

  constructor(config: GuestConfig) {
    this.config = config;
    this.mem = config.mem;
    this.memBase = config.memBase;
    this.memBytes = config.memBytes;
    this.pfnLimit = config.pfnLimit;
    this.pae = config.pae;
    this.paging = config.pae ? PAGING_PAE : PAGING_2LEVEL;
    this.pool = config.pool;
    this.switcher = config.switcher;
    this.switcherCodePage = config.switcherCodePage;
    this.link = config.link;
    const self = this;
    this.shadow = config.makeShadow({
      mem: config.mem, memBase: config.memBase, pfnLimit: config.pfnLimit, pae: config.pae,
      allocPage: () => config.pool.alloc(),
      freePage: (hpa) => config.pool.free(hpa),
      kill: (reason) => self.kill(reason),
      invalidate: (lin) => {
        for (const v of self.vcpus) v.invalidate(lin);
        // [H:905] The other vCPUs' TLBs: they flush before this hypercall returns (switcher/smp.ts).
        if (self.link.ncpus > 1 && !self.link.shootdown()) self.kill('a vCPU did not answer a TLB shootdown');
      },
    });
  }

  /** [H:900] killGuest: keep the first reason; the guest never runs again, and callers carry on as if
   *  nothing happened (reads return zero). */
  kill(reason: string): void {
    if (this.dead !== null) return;
    this.dead = reason;
    // The whole guest ends: the first vCPU to die tells the Launcher whose reason stands, and rings the rest.
    this.link.claimDeath();
  }

  /** lguest_address_ok: [gpa, gpa+len) lies inside the guest's frames. (Exact: the seed's test of the end
   *  address rejects an access ending exactly at the limit; we do not reproduce that, abi 6.7.10.) */
  addressOk(gpa: number, len: number): boolean {
    return gpa >= 0 && len >= 0 && gpa + len <= this.pfnLimit * PAGE_SIZE;
  }

  private checked(gpa: number, len: number): boolean {
    gpa >>>= 0;
    if (this.addressOk(gpa, len)) return true;
    this.kill(`bad read or write address 0x${gpa.toString(16)} len ${len}`);
    return false;
  }

  read32(gpa: number): number { return this.checked(gpa, 4) ? this.mem.read32(this.memBase + (gpa >>> 0)) >>> 0 : 0; }
  read8(gpa: number): number { return this.checked(gpa, 1) ? this.mem.read8(this.memBase + (gpa >>> 0)) : 0; }
  write32(gpa: number, v: number): void { if (this.checked(gpa, 4)) this.mem.write32(this.memBase + (gpa >>> 0), v | 0); }
  readBytes(gpa: number, len: number): Uint8Array {
    return this.checked(gpa, len) ? this.mem.readBytes(this.memBase + (gpa >>> 0), len) : new Uint8Array(len);
  }
  writeBytes(gpa: number, data: Uint8Array): void { if (this.checked(gpa, data.length)) this.mem.writeBytes(this.memBase + (gpa >>> 0), data); }

  /** lguest_data fields (only once registered). */
  readData(field: keyof typeof LGUEST_DATA): number { return this.lguestData < 0 ? 0 : this.read32(this.lguestData + LGUEST_DATA[field]); }
  writeData(field: keyof typeof LGUEST_DATA, v: number): void { if (this.lguestData >= 0) this.write32(this.lguestData + LGUEST_DATA[field], v); }

  /** Write the wall clock into lguest_data.time (abi 8: the clock event uses the same clock). */
  writeTimestamp(): void {
    const ns = wallClockNs();
    this.writeData('time_tv_sec', Number(ns / 1_000_000_000n));
    this.writeData('time_tv_nsec', Number(ns % 1_000_000_000n));
  }
}

/** The Host's wall clock, in nanoseconds since the epoch. */
export function wallClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** Now on the same clock, in milliseconds (for deadlines). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One vCPU: the machine CPU it drives, its Switcher pages and the Host's per-vCPU state. */
export class LgCpu implements ShadowVcpu {
  readonly id: number;
  readonly lg: Lguest;
  readonly cpu: CPU;
  pgdIndex = 0;
  esp1 = 0;
  ss1 = 0;
  stackPages = 0;
  /** This vCPU's Switcher pages (hpa): the regs page (RW) and the read-only page. */
  readonly regsPage: number;
  readonly roPage: number;
  /** This vCPU's own Switcher PTE page (hpa): the code page and this vCPU's pair, nothing else. */
  readonly switcherPtePage: number;
  /** Their virtual addresses inside the Switcher region. */
  readonly regsVa: number;
  readonly roVa: number;
  /** A hypercall is waiting to be run (lguest's cpu->hcall, set when trapnum was 0x1F). */
  hcallPending = false;
  /** The Host's private cursor into the async ring. */
  nextHcall = 0;
  /** NOTIFY address not yet handed to the Launcher; -1 none. */
  pendingNotify = -1;
  halted = false;
  /** The guest's view of CR0.TS (from the TS hypercall). */
  ts = 0;
  /** Pending virtual interrupts, bit n = IRQ n. */
  irqsPending = 0;
  /** Wall-clock deadline (ms) of the armed clock event; 0 = none. */
  clockDeadline = 0;
  /** The guest's IDT and GDT as it loaded them (lo, hi pairs), fixed up. */
  readonly idt = new Int32Array(IDT_ENTRIES * 2);
  readonly gdt = new Int32Array(GDT_ENTRIES * 2);
  /** Which parts of the real tables in the read-only page must be recopied (CHANGED_*). */
  changed = 0;
  /** Cached translations are stale (the shadow changed) / the last CR3 we loaded. */
  flushAll = true;
  lastCr3 = -1;
  /** CR2 of the last trap, captured right after the switch. */
  lastCr2 = 0;

  constructor(lg: Lguest, id: number, cpu: CPU) {
    this.lg = lg;
    this.id = id;
    this.cpu = cpu;
    const base = lg.paging.switcherAddr;
    this.regsVa = (base + (1 + 2 * id) * PAGE_SIZE) >>> 0;
    this.roVa = (base + (2 + 2 * id) * PAGE_SIZE) >>> 0;
    const r = lg.pool.alloc(), ro = lg.pool.alloc(), pte = lg.pool.alloc();
    if (r < 0 || ro < 0 || pte < 0) throw new Error('the Host pool has no room for the Switcher pages');
    this.regsPage = r;
    this.roPage = ro;
    this.switcherPtePage = pte;

  }

  invalidate(lin?: number): void {
    if (lin === undefined) this.flushAll = true;
    else this.cpu.invalidatePage(lin);
  }

  /** The saved guest registers (lguest_regs in the regs page). */
  reg(name: keyof typeof LGUEST_REGS): number {
    return this.lg.mem.read32(this.regsPage + LGUEST_REGS_PAGE_OFFSET + LGUEST_REGS[name]) >>> 0;
  }
  setReg(name: keyof typeof LGUEST_REGS, v: number): void {
    this.lg.mem.write32(this.regsPage + LGUEST_REGS_PAGE_OFFSET + LGUEST_REGS[name], v | 0);
  }
  /** Does anyone want events of this kind? (Check before building one.) */
  wants(kind: HostEventKind): boolean {
    const e = this.lg.events;
    return e !== null && e.wants(kind);
  }
  emit(ev: HostEvent): void {
    this.lg.events?.emit(this.id, this.cpu.retired, ev);
  }

  /** Virtual address of lguest_regs inside the Switcher mapping (where ESP points on entry and exit). */
  get regsStructVa(): number { return (this.regsVa + LGUEST_REGS_PAGE_OFFSET) >>> 0; }
}

/**
 * The Host's run loop for one vCPU (lguest's core.c run_guest and x86/core.c): enter the guest through the
 * Switcher, let the machine run, read the trap the Switcher saved in the regs page, and dispatch it.
 * abi section 9 is the outline; the [H:nnn] comments are the tour (npm run tour).
 */
import {
  CR0_ET, CR0_NE, CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR4_PAE, CS, ESP, FLAG_RESERVED1, IF, IOPL_MASK, NT, SS, VM, GP, NM, PF_VEC, UD,
} from '../emulator/constants.ts';
import { ExitReason, EXIT_NAMES } from '../emulator/exits.ts';
import { loadPdptes } from '../mmu/paging.ts';
import {
  FIRST_EXTERNAL_VECTOR, GDT_ENTRIES, GUEST_PL, GUEST_TSS_SEL, IDT_ENTRIES, LGUEST_CS, LGUEST_DS, LGUEST_IRQS,
  LGUEST_RO_STATE, LGUEST_SYSCALL_VECTOR, LGUEST_TRAP_ENTRY, TRAPNUM_SWITCHER, TSS_LIMIT, X86_EFLAGS_IF,
} from './layout.ts';
import { wallClockMs, type Fate, type LgCpu } from './lguest.ts';
import { VC } from './smp.ts';
import { copyInGuestInfo } from './segments.ts';
import { checkClock, deliverTrap, interruptPending, tryDeliverInterrupt } from './interrupts.ts';
import { doHypercalls } from './hypercalls.ts';

/** Instructions per slice: between slices the Host looks at its clock, stop requests and device IRQs. */
export const SLICE = 20_000;
/** The vector of the Host's own "hardware interrupt" that pulls a running guest back into the Host
 *  (Linux's local timer vector); the guest never sees it. */
export const HOST_IRQ_VECTOR = 0xef;
/** A halted vCPU with no clock event armed still wakes this often to look around (ms). */
const HALT_POLL_MS = 1000;

/** Segment attributes of the Switcher's flat ring-0 code and data (P, S, DPL 0, 32-bit, 4 KiB granular). */
const SWITCHER_CS_ATTR = 0xc09b, SWITCHER_SS_ATTR = 0xc093;
/** An available TSS descriptor's attribute marked busy, as LTR leaves it. */
const TSS_BUSY_ATTR = 0x8b;
/** What a guest may not bring back into the CPU through its saved EFLAGS. */
const EFLAGS_FORBIDDEN = IOPL_MASK | VM | NT;

/** Things the run loop needs from whoever drives the vCPU (the worker, or a test). */
export interface VcpuIo {
  ctrl: Int32Array;
  /** The guest's NOTIFY: early console or a device. */
  notify(addr: number): void;
  /** Called between slices and before sleeping (flush console output). */
  poll(): void;
  /** True while the Launcher's devices have work left they can do now: a halted vCPU then does not
   *  sleep (poll() does the work). Absent: never. */
  busy?(): boolean;
  /** gdb's hooks (`run --gdb`, launcher/vcpu-debug.ts); absent, the loop is exactly what it is without. */
  debug?: VcpuDebug;
  /** `--trace insn` (insn-trace.ts): runs each slice instead of cpu.run, stepping where it traces. */
  insnTrace?: { run(budget: number): ExitReason };
}

/** [H:147] The debugger's view into the run loop. The CPU runs the guest and the Switcher alike; the
 *  debugger stops a vCPU only where the guest stands (never inside the Switcher), steps one guest
 *  instruction across every exit the Host handles itself, and leaves every other exit to the Host. */
export interface VcpuDebug {
  /** Instead of cpu.run(budget): run as the debugger wants (one instruction while stepping; the
   *  Switcher's instructions one at a time). May stop the vCPU for the debugger first. */
  run(budget: number): ExitReason;
  /** After each run: true when the exit was the debugger's (the loop goes on), false when it is the
   *  Host's. May stop the vCPU for the debugger (it returns when gdb lets it go, or the guest ends). */
  after(exit: ExitReason): boolean;
  /** The vCPU is halted, in the Host: stop here if the debugger asks. */
  idle(): void;
  /** A step is in progress: virtual interrupts wait until it is over (unless the vCPU is halted), as a
   *  real CPU reports a single step before it takes an interrupt. */
  readonly stepping: boolean;
}

function bump(rec: Record<string, number>, key: string): void { rec[key] = (rec[key] ?? 0) + 1; }

/** [H:135] Enter the guest: the CPU state the real Switcher would have after its lcall, i.e. ring 0 on
 *  LGUEST_CS/LGUEST_DS, with GDTR, IDTR and TR at this vCPU's read-only page, CR3 = the shadow top level
 *  with the Switcher hooked in, and ESP at the saved registers. The CPU then runs the return path. */
function enterGuest(c: LgCpu): void {
  const lg = c.lg, cpu = c.cpu;
  copyInGuestInfo(c);
  c.setReg('trapnum', TRAPNUM_SWITCHER);
  const cr3 = lg.shadow.mapSwitcher(c, c.switcherPtePage) >>> 0;
  // [H:136] Lazy FPU switching as lguest does it: the guest runs with CR0.TS set exactly when it asked
  // for it (LHCALL_TS), so its next x87 instruction raises #NM, which handleTrap reflects. The FPU state
  // itself is this vCPU's CPU's (cpu.fpu): no other guest or vCPU ever runs on it, so nothing to save.
  // NE as a Linux Host runs: an unmasked x87 exception is #MF (vector 16), which goes to the guest.
  cpu.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG | (c.ts ? CR0_TS : 0);
  cpu.cr4 = lg.pae ? CR4_PAE : 0;
  cpu.cr3 = cr3;
  // [H:137] Reloading CR3 flushes the TLB on real hardware; we flush when the top level changed or the
  // shadow told us translations went stale (abi 6.7.7), and reload the PAE PDPTEs as MOV CR3 would.
  if (lg.pae && !loadPdptes(cpu)) { lg.kill('bad shadow PDPTE'); return; }
  if (cr3 !== c.lastCr3 || c.flushAll) {
    cpu.flushTlb(true);
    c.flushAll = false;
    c.lastCr3 = cr3;
  }
  cpu.gdtBase = (c.roVa + LGUEST_RO_STATE.guest_gdt) | 0;
  cpu.gdtLimit = GDT_ENTRIES * 8 - 1;
  cpu.idtBase = (c.roVa + LGUEST_RO_STATE.guest_idt) | 0;
  cpu.idtLimit = IDT_ENTRIES * 8 - 1;
  cpu.ldtSel = 0;
  cpu.trSel = GUEST_TSS_SEL;
  cpu.trBase = (c.roVa + LGUEST_RO_STATE.guest_tss) | 0;
  cpu.trLimit = TSS_LIMIT;
  cpu.trAttr = TSS_BUSY_ATTR;
  cpu.setCpl(0);
  cpu.setSegCache(CS, LGUEST_CS, 0, 0xffffffff, SWITCHER_CS_ATTR);
  cpu.setSegCache(SS, LGUEST_DS, 0, 0xffffffff, SWITCHER_SS_ATTR);
  cpu.setEflags(FLAG_RESERVED1);
  cpu.r32[ESP] = c.regsStructVa | 0;
  cpu.eip = (lg.paging.switcherAddr + lg.switcher.returnOffset) | 0;
  cpu.pendingIrq = -1;
  cpu.halted = false;
  // [H:138] Last of all, the saved registers the Switcher's IRET will load. The regs page is writable
  // from ring 1 (as in lguest), but only by this vCPU (its own Switcher PTE page, [H:030]), and this
  // vCPU is here in the Host: nothing can change them between this check and the IRET. Never let the
  // guest's EFLAGS raise its IOPL or turn on VM/NT, nor its CS ask for ring 0 (the IRET runs at ring 0
  // and would allow both).
  c.setReg('eflags', (c.reg('eflags') & ~EFLAGS_FORBIDDEN) | IF | FLAG_RESERVED1);
  const cs = c.reg('cs');
  if ((cs & 3) === 0) lg.kill(`bad guest CS 0x${cs.toString(16)}`);
}

/** Does the Host want the running guest back (an interrupt it could deliver or must flag)? */
function wantsGuestBack(c: LgCpu): boolean {
  const { irq } = interruptPending(c);
  if (irq >= LGUEST_IRQS) return false;
  return (c.lg.readData('irq_enabled') & X86_EFLAGS_IF) !== 0 || c.lg.readData('irq_pending') === 0;
}

/** Virtual IRQs raised for this vCPU by the devices and the other vCPUs. */
function takeLauncherIrqs(c: LgCpu): void {
  c.irqsPending |= c.lg.link.takeIrqs();
}

/** [H:145] A TLB shootdown from another vCPU (switcher/smp.ts): drop every cached translation, and the
 *  PAE PDPTEs the CPU cached at the last CR3 load, as the real Switcher's CR3 reload would. */
function answerShootdown(c: LgCpu): void {
  if (c.wants('shootdown')) c.emit({ kind: 'shootdown' });
  flushVcpuTlb(c);
  c.lg.link.flushed();
}

export function flushVcpuTlb(c: LgCpu): void {
  c.cpu.flushTlb(true);
  // A vCPU that never entered has no CR3 yet (its first entry loads the PDPTEs).
  if (c.lg.pae && c.lastCr3 !== -1 && !loadPdptes(c.cpu)) c.lg.kill('bad shadow PDPTE');
}

/** Must this vCPU stop: the Launcher said so, or another vCPU ended the guest. */
function mustStop(c: LgCpu): boolean {
  return c.lg.link.stopRequested() || c.lg.link.deadElsewhere();
}

const STOPPED = -1;

/** [H:140] Run the guest until it traps into the Host. Returns the trap number from lguest_regs, or
 *  STOPPED. Between slices the guest is still inside the machine; when an interrupt waits, the Host
 *  raises its own IRQ, which the CPU delivers through a Switcher gate like any trap. */
function runGuestOnce(c: LgCpu, io: VcpuIo): number {
  const lg = c.lg, link = lg.link;
  enterGuest(c);
  if (lg.dead !== null) return STOPPED;
  if (c.wants('switch')) c.emit({ kind: 'switch', dir: 'in' });
  // Only now, with every shadow call of the entry done, do shootdowns start waiting for this vCPU.
  if (link.enter()) answerShootdown(c);
  try {
    return runInGuest(c, io);
  } finally {
    link.leave();
  }
}

function runInGuest(c: LgCpu, io: VcpuIo): number {
  const lg = c.lg, cpu = c.cpu, link = lg.link;
  const doorbell = link.mine(VC.doorbell);
  const dbg = io.debug, tracer = io.insnTrace;
  let injected = false;
  for (;;) {
    const before = cpu.retired;
    const exit = dbg !== undefined ? dbg.run(SLICE) : tracer !== undefined ? tracer.run(SLICE) : cpu.run(SLICE);
    lg.stats.instructions += cpu.retired - before;
    if (dbg !== undefined && dbg.after(exit)) continue;
    if (exit === ExitReason.Hlt) {
      cpu.halted = false;
      return readTrap(c);
    }
    if (exit === ExitReason.Budget || exit === ExitReason.Doorbell) {
      bump(lg.stats.exits, exit === ExitReason.Budget ? 'time-slice' : 'doorbell');
      if (exit === ExitReason.Doorbell) Atomics.store(io.ctrl, doorbell, 0);
      if (link.flushPending()) answerShootdown(c);
      io.poll();
      if (mustStop(c) || lg.dead !== null) return STOPPED;
      takeLauncherIrqs(c);
      checkClock(c);
      if (!injected && wantsGuestBack(c)) {
        cpu.pendingIrq = HOST_IRQ_VECTOR;
        injected = true;
      }
      continue;
    }
    bump(lg.stats.exits, EXIT_NAMES[exit] ?? String(exit));
    lg.kill(exit === ExitReason.TripleFault ? `triple fault in the Switcher: ${cpu.exitMessage}`
      : exit === ExitReason.Unsupported ? `unsupported: ${cpu.exitMessage}`
      : `the machine stopped unexpectedly (${EXIT_NAMES[exit] ?? exit})`);
    return STOPPED;
  }
}

/** [H:150] The machine stopped at the Switcher's HLT: a trap arrived. A proper one left ESP exactly at
 *  lguest_regs (the CPU's privilege-change frame plus the stub's and save's pushes); anything else is a
 *  fault in the Switcher's own return path, i.e. the guest state we tried to load was bad. */
function readTrap(c: LgCpu): number {
  const lg = c.lg, cpu = c.cpu;
  const atHlt = (cpu.eip >>> 0) === ((lg.paging.switcherAddr + lg.switcher.trapHltEnd) >>> 0);
  if (!atHlt || cpu.cpl !== 0) {
    lg.kill(`the machine halted outside the Switcher at 0x${(cpu.eip >>> 0).toString(16)}`);
    return STOPPED;
  }
  c.lastCr2 = cpu.cr2 >>> 0;
  if ((cpu.r32[ESP] >>> 0) !== c.regsStructVa) {
    lg.kill(`unhandled trap ${TRAPNUM_SWITCHER} at 0x${c.reg('eip').toString(16)} (the Switcher faulted loading the guest state)`);
    return STOPPED;
  }
  return c.reg('trapnum');
}

/** [H:215] emulate_insn: the guest kernel (ring 1) may not touch I/O ports; IN gives all ones in the
 *  operand's width (and nothing else changes), OUT is ignored. abi 4.2, without its IN quirks. */
function emulateInsn(c: LgCpu): boolean {
  const lg = c.lg;
  if ((c.reg('cs') & 3) !== GUEST_PL) return false;
  const eip = c.reg('eip');
  const byteAt = (off: number): number => {
    const pa = lg.shadow.guestPa(c, (eip + off) >>> 0);
    return pa < 0 ? -1 : lg.read8(pa);
  };
  let len = 0, width = 4;
  let insn = byteAt(0);
  if (insn === 0x66) { width = 2; len = 1; insn = byteAt(1); }
  if (insn < 0) return false;
  let input: boolean;
  switch (insn & 0xfe) {
    case 0xe4: len += 2; input = true; break; // IN AL/eAX, imm8
    case 0xec: len += 1; input = true; break; // IN AL/eAX, DX
    case 0xe6: len += 2; input = false; break; // OUT imm8, AL/eAX
    case 0xee: len += 1; input = false; break; // OUT DX, AL/eAX
    default: return false;
  }
  if ((insn & 1) === 0) width = 1;
  if (input) {
    const mask = width === 4 ? 0xffffffff : width === 2 ? 0xffff : 0xff;
    c.setReg('eax', (c.reg('eax') | mask) >>> 0);
  }
  c.setReg('eip', (eip + len) >>> 0);
  lg.stats.ioEmulated++;
  return true;
}

/** The vmcall rewrite (abi 1.1): a guest kernel's `vmcall` becomes `int $0x1f; nop` in place. */
function rewriteHypercall(c: LgCpu): boolean {
  const lg = c.lg;
  if ((c.reg('cs') & 3) !== GUEST_PL) return false;
  const eip = c.reg('eip');
  const pas = [0, 1, 2].map((i) => lg.shadow.guestPa(c, (eip + i) >>> 0));
  if (pas.some((p) => p < 0)) return false;
  const bytes = pas.map((p) => lg.read8(p));
  if (bytes[0] !== 0x0f || bytes[1] !== 0x01 || bytes[2] !== 0xc1) return false;
  const repl = [0xcd, LGUEST_TRAP_ENTRY, 0x90];
  pas.forEach((p, i) => lg.writeBytes(p, Uint8Array.of(repl[i])));
  lg.shadow.clearAll(c);
  return true;
}

/** [H:200] lguest_arch_handle_trap: what each trap means to the Host (and, for a tracer, what it did). */
function handleTrap(c: LgCpu, trapnum: number): void {
  if (!c.wants('trap') && !c.wants('pagefault')) { dispatchTrap(c, trapnum); return; }
  const errcode = c.reg('errcode'), eip = c.reg('eip');
  const fate = dispatchTrap(c, trapnum);
  if (trapnum === PF_VEC && (fate === 'handled' || fate === 'reflected') && c.wants('pagefault')) {
    c.emit({ kind: 'pagefault', addr: c.lastCr2, errcode, eip, fate: fate === 'handled' ? 'fixed' : 'reflected' });
  }
  if (c.wants('trap')) c.emit({ kind: 'trap', vector: trapnum, errcode, eip, fate });
}

type TrapFate = 'handled' | 'reflected' | 'hypercall' | 'host-irq' | 'emulated' | 'killed';

function dispatchTrap(c: LgCpu, trapnum: number): TrapFate {
  const lg = c.lg;
  bump(lg.stats.traps, String(trapnum));
  switch (trapnum) {
    case GP:
      // [H:210] #GP with error code 0 from the guest kernel: maybe an I/O instruction to emulate.
      if (c.reg('errcode') === 0 && emulateInsn(c)) return 'emulated';
      if (rewriteHypercall(c)) return 'emulated';
      break;
    case UD:
      if (rewriteHypercall(c)) return 'emulated';
      break;
    case PF_VEC: {
      // [H:220] A page fault: most are the shadow catching up with the guest's own page tables. Only
      // when the guest's tables do not allow the access does the guest see it, with lguest_data.cr2.
      const cr2 = c.lastCr2;
      if (lg.shadow.demandPage(c, cr2, c.reg('errcode'))) {
        lg.stats.faultsFixed++;
        c.cpu.invalidatePage(cr2);
        return 'handled';
      }
      const code = lg.shadow.faultErrcode;
      if (code !== undefined) c.setReg('errcode', code);
      lg.writeData('cr2', cr2);
      lg.stats.faultsReflected++;
      break;
    }
    case NM:
      // [H:230] The FPU trap: the Host enters with TS set only when the guest asked (enterGuest), so an
      // #NM with the guest's TS clear cannot come from the guest's view of CR0 (nothing to restore: the
      // state is this vCPU's own cpu.fpu); with it set, the guest's lazy-switch handler gets it.
      if (!c.ts) return 'handled';
      break;
    case LGUEST_TRAP_ENTRY:
      // [H:240] A hypercall: it runs at the top of the next loop iteration, before anything else.
      c.hcallPending = true;
      return 'hypercall';
    default:
      // [H:250] Vectors 32..255 (but the system call vector) are the Host's own interrupts, already
      // handled: back into the guest.
      if (trapnum >= FIRST_EXTERNAL_VECTOR && trapnum < IDT_ENTRIES && trapnum !== LGUEST_SYSCALL_VECTOR) return 'host-irq';
  }
  // [H:260] Everything else is reflected through the guest's IDT, or kills a guest that has no handler.
  if (!deliverTrap(c, trapnum)) {
    const detail = trapnum === PF_VEC ? c.lastCr2 : c.reg('errcode');
    lg.kill(`unhandled trap ${trapnum} at 0x${c.reg('eip').toString(16)} (0x${detail.toString(16)})`);
    return 'killed';
  }
  return 'reflected';
}

/** [H:120] Sleep while HALTed: until the clock event's deadline, a Launcher IRQ or a stop request. */
function sleepUntilInterrupt(c: LgCpu, io: VcpuIo): void {
  io.poll();
  const link = c.lg.link, wake = link.mine(VC.wake);
  const seq = Atomics.load(io.ctrl, wake);
  if (mustStop(c) || io.ctrl[link.mine(VC.irqs)] !== 0 || io.busy?.() === true) return;
  const now = wallClockMs();
  const timeout = c.clockDeadline !== 0 ? Math.max(0, c.clockDeadline - now) : HALT_POLL_MS;
  if (timeout > 0) Atomics.wait(io.ctrl, wake, seq, timeout);
}

function stoppedFate(c: LgCpu): Fate {
  return c.lg.link.deadElsewhere() ? { kind: 'stopped', reason: 'another vCPU ended the guest' } : { kind: 'stopped', reason: 'stopped by the Launcher' };
}

/** [H:110] run_guest: the vCPU's whole life. Returns how the guest ended. */
export function runGuest(c: LgCpu, io: VcpuIo): Fate {
  const lg = c.lg;
  while (lg.dead === null) {
    // Hypercalls first (a NOTIFY among them goes to the Launcher right away).
    if (c.hcallPending) doHypercalls(c, (addr) => io.notify(addr));
    if (lg.dead !== null) break;
    if (mustStop(c)) return stoppedFate(c);
    takeLauncherIrqs(c);
    checkClock(c);
    // [H:125] Deliver the first pending, unblocked interrupt, if the guest can take it now.
    const { irq, more } = interruptPending(c);
    if (irq < LGUEST_IRQS && (io.debug === undefined || c.halted || !io.debug.stepping)) tryDeliverInterrupt(c, irq, more);
    if (lg.dead !== null) break;
    if (c.halted) {
      io.debug?.idle();
      if (interruptPending(c).irq >= LGUEST_IRQS) sleepUntilInterrupt(c, io);
      continue;
    }
    const trap = runGuestOnce(c, io);
    if (trap === STOPPED) {
      if (lg.dead !== null) break;
      return stoppedFate(c);
    }
    bump(lg.stats.exits, trap === HOST_IRQ_VECTOR ? 'host-irq' : trap === LGUEST_TRAP_ENTRY ? 'hypercall' : `trap ${trap}`);
    if (c.wants('switch')) c.emit({ kind: 'switch', dir: 'out', trap });
    handleTrap(c, trap);
  }
  io.poll();
  const reason = lg.dead ?? 'dead';
  if (lg.shutdown === 'restart') return { kind: 'restart', reason };
  // A SHUTDOWN power-off with lguest's own "Power down" message is a clean end; any other message is a
  // crash report (Linux guests send their panic message the same way).
  if (lg.shutdown === 'poweroff' && reason === 'CRASH: Power down') return { kind: 'poweroff', reason };
  return { kind: 'killed', reason };
}

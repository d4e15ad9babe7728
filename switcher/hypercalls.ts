/**
 * Hypercalls (lguest's hypercalls.c, abi 1.2 - 1.4): one dispatcher for the synchronous call in the
 * registers and for the slots of the asynchronous ring in lguest_data. A bad argument kills the guest; no
 * call returns a value.
 */
import {
  HCALL_ARGS_SIZE, HCALL_NAMES, LGUEST_DATA, LGUEST_DATA_SIZE, LGUEST_SHUTDOWN_MSG_MAX, LGUEST_SHUTDOWN_POWEROFF,
  LGUEST_SHUTDOWN_RESTART, LGUEST_SYSCALL_VECTOR, LHCALL_FLUSH_ASYNC, LHCALL_FLUSH_TLB, LHCALL_HALT,
  LHCALL_LGUEST_INIT, LHCALL_LOAD_GDT_ENTRY, LHCALL_LOAD_IDT_ENTRY, LHCALL_LOAD_TLS, LHCALL_NEW_PGTABLE,
  LHCALL_NOTIFY, LHCALL_RING_SIZE, LHCALL_SEND_INTERRUPTS, LHCALL_SET_CLOCKEVENT, LHCALL_SET_PGD, LHCALL_SET_PMD,
  LHCALL_SET_PTE, LHCALL_SET_STACK, LHCALL_SHUTDOWN, LHCALL_STATUS_FREE, LHCALL_TS, GUEST_PL, LHCALL_VCPU_START,
  LHCALL_SEND_IPI, LGUEST_IRQS, VCPU_START_NO_SUCH_VCPU, VCPU_START_OK, LHCALL_EXPERIMENT_FIRST, LHCALL_EXPERIMENT_LAST,
} from './layout.ts';
import { VC, VCPU_STATE_STARTING, VCPU_STATE_WAITING } from './smp.ts';
import type { LgCpu } from './lguest.ts';
import { guestLoadTls, loadGuestGdtEntry, loadGuestIdtEntry } from './segments.ts';
import { guestSetClockevent } from './interrupts.ts';

/** struct hcall_args: arg0 (the call number) .. arg4. */
export type HcallArgs = [number, number, number, number, number];

/** SET_STACK accepts at most this many kernel stack pages. */
const MAX_STACK_PAGES = 2;

function hcallName(c: LgCpu, nr: number): string {
  return HCALL_NAMES[nr] ?? c.lg.plugins?.nameOf(nr) ?? String(nr);
}

function count(c: LgCpu, nr: number): void {
  const name = hcallName(c, nr);
  c.lg.stats.hypercalls[name] = (c.lg.stats.hypercalls[name] ?? 0) + 1;
}

/** [H:530] do_hcall: one hypercall, synchronous or from the ring. */
function doHcall(c: LgCpu, a: HcallArgs, sync: boolean): void {
  const result = runHcall(c, a, sync);
  if (c.wants('hypercall')) {
    c.emit({ kind: 'hypercall', nr: a[0], name: hcallName(c, a[0]), args: [a[1], a[2], a[3], a[4]], sync, result });
  }
}

/** The call itself; returns what EAX got, for the few calls that return something. */
function runHcall(c: LgCpu, a: HcallArgs, sync: boolean): number | string | undefined {
  const lg = c.lg, sh = lg.shadow;
  const [nr, a1, a2, a3, a4] = a;
  count(c, nr);
  switch (nr) {
    case LHCALL_FLUSH_ASYNC:
    case LHCALL_SEND_INTERRUPTS:
      // Nothing to do: the exit itself made us drain the ring and look at pending interrupts.
      break;
    case LHCALL_LGUEST_INIT:
      lg.kill('already have lguest_data');
      break;
    case LHCALL_SHUTDOWN: {
      // [H:540] The message is read in full (128 bytes) and cut at its last byte, like lguest.
      const msg = lg.readBytes(a1, LGUEST_SHUTDOWN_MSG_MAX);
      msg[LGUEST_SHUTDOWN_MSG_MAX - 1] = 0;
      const end = msg.indexOf(0);
      const text = Buffer.from(msg.subarray(0, end)).toString('latin1');
      if (lg.dead === null) {
        lg.kill(`CRASH: ${text}`);
        lg.shutdown = a2 === LGUEST_SHUTDOWN_RESTART ? 'restart' : a2 === LGUEST_SHUTDOWN_POWEROFF ? 'poweroff' : null;
      }
      break;
    }
    case LHCALL_FLUSH_TLB:
      if (a1 !== 0) sh.clearAll(c);
      else sh.flushUser(c);
      break;
    case LHCALL_NEW_PGTABLE:
      sh.newPagetable(c, a1);
      break;
    case LHCALL_SET_STACK:
      guestSetStack(c, a1, a2, a3);
      break;
    case LHCALL_SET_PTE:
      sh.setPte(c, a1, a2, a3, lg.pae ? a4 : 0);
      break;
    case LHCALL_SET_PGD:
      sh.setPgd(a1, a2);
      break;
    case LHCALL_SET_PMD:
      if (!lg.pae) { lg.kill(`Bad hypercall ${nr}`); break; }
      sh.setPmd(c, a1, a2);
      break;
    case LHCALL_SET_CLOCKEVENT:
      guestSetClockevent(c, a1);
      break;
    case LHCALL_TS:
      c.ts = a1;
      break;
    case LHCALL_HALT:
      c.halted = true;
      break;
    case LHCALL_NOTIFY:
      c.pendingNotify = a1;
      break;
    case LHCALL_LOAD_GDT_ENTRY:
      loadGuestGdtEntry(c, a1, a2, a3);
      break;
    case LHCALL_LOAD_IDT_ENTRY:
      loadGuestIdtEntry(c, a1, a2, a3);
      break;
    case LHCALL_LOAD_TLS:
      guestLoadTls(c, a1);
      break;
    case LHCALL_VCPU_START:
      if (!sync) { lg.kill('VCPU_START in the async ring'); break; }
      vcpuStart(c, a1, a2, a3);
      return lg.dead === null ? c.reg('eax') : undefined;
    case LHCALL_SEND_IPI:
      if (a1 >= lg.link.ncpus) { lg.kill(`SEND_IPI to vCPU ${a1}: the guest has ${lg.link.ncpus}`); break; }
      if (a2 >= LGUEST_IRQS) { lg.kill(`SEND_IPI of IRQ ${a2}`); break; }
      lg.link.raiseIrq(a1, a2);
      if (c.wants('ipi')) c.emit({ kind: 'ipi', target: a1, irq: a2 });
      break;
    default:
      // [H:535] The experiment range goes to the plug-ins (switcher/plugins.ts); a number no plug-in
      // serves is as bad as any other unknown number.
      if (nr >= LHCALL_EXPERIMENT_FIRST && nr <= LHCALL_EXPERIMENT_LAST && lg.plugins?.handlers.has(nr)) {
        return lg.plugins.call(c, nr, [a1, a2, a3, a4], sync);
      }
      lg.kill(`Bad hypercall ${nr}`);
  }
  return undefined;
}

/** [H:560] VCPU_START (lguest-ts's SMP extension): start secondary vCPU `id` at `eip` with `esp`, on the
 *  caller's current top level. EAX says whether there is such a vCPU, so a guest counts its vCPUs by
 *  starting 1, 2, ... until the answer is "no such vCPU". */
function vcpuStart(c: LgCpu, id: number, eip: number, esp: number): void {
  const lg = c.lg, link = lg.link;
  if (id >= link.ncpus) { c.setReg('eax', VCPU_START_NO_SUCH_VCPU); return; }
  const gpgdir = lg.shadow.currentGpgdir(c);
  const ctrl = link.ctrl;
  ctrl[link.at(id, VC.startEip)] = eip | 0;
  ctrl[link.at(id, VC.startEsp)] = esp | 0;
  ctrl[link.at(id, VC.startPgdir)] = gpgdir | 0;
  if (Atomics.compareExchange(ctrl, link.at(id, VC.state), VCPU_STATE_WAITING, VCPU_STATE_STARTING) !== VCPU_STATE_WAITING) {
    lg.kill(`VCPU_START: vCPU ${id} is already running`);
    return;
  }
  link.ring(id);
  c.setReg('eax', VCPU_START_OK);
}

/** SET_STACK (abi 1.3, 4.8): the kernel stack for traps from user mode, pinned in the shadow. */
function guestSetStack(c: LgCpu, seg: number, esp: number, pages: number): void {
  if ((seg & 3) !== GUEST_PL) c.lg.kill(`bad stack segment ${seg}`);
  if (pages > MAX_STACK_PAGES) c.lg.kill(`bad stack pages ${pages}`);
  c.ss1 = seg;
  c.esp1 = esp;
  c.stackPages = Math.min(pages, MAX_STACK_PAGES);
  c.lg.shadow.pinStackPages(c);
}

/** [H:520] The async ring: from our cursor, run every slot the guest marked pending (status 0) and
 *  mark it free (0xFF), stopping at the first free slot or when a call set a pending NOTIFY. */
function doAsyncHcalls(c: LgCpu): void {
  const lg = c.lg;
  const statusGpa = lg.lguestData + LGUEST_DATA.hcall_status;
  // Most exits find the ring empty: look at the cursor's slot before copying the status bytes.
  if (lg.read8(statusGpa + c.nextHcall) === LHCALL_STATUS_FREE) return;
  const st = lg.readBytes(statusGpa, LHCALL_RING_SIZE);
  for (let i = 0; i < LHCALL_RING_SIZE; i++) {
    const n = c.nextHcall;
    if (st[n] === LHCALL_STATUS_FREE) break;
    c.nextHcall = (n + 1) % LHCALL_RING_SIZE;
    const slot = lg.lguestData + LGUEST_DATA.hcalls + n * HCALL_ARGS_SIZE;
    const args: HcallArgs = [lg.read32(slot), lg.read32(slot + 4), lg.read32(slot + 8), lg.read32(slot + 12), lg.read32(slot + 16)];
    doHcall(c, args, false);
    lg.writeBytes(statusGpa + n, Uint8Array.of(LHCALL_STATUS_FREE));
    if (c.pendingNotify >= 0 || lg.dead !== null) break;
  }
}

/** [H:510] LGUEST_INIT: the first hypercall, which registers lguest_data. */
function initialize(c: LgCpu, a: HcallArgs): void {
  const lg = c.lg;
  count(c, a[0]);
  if (a[0] !== LHCALL_LGUEST_INIT) {
    lg.kill(`hypercall ${a[0]} before INIT`);
    return;
  }
  const gpa = a[1];
  if (!lg.addressOk(gpa, LGUEST_DATA_SIZE)) {
    lg.kill(`bad lguest_data address 0x${gpa.toString(16)}`);
    return;
  }
  lg.lguestData = gpa;
  // tsc_khz 0: our TSC counts instructions, not time, so the guest must not trust it.
  lg.writeData('tsc_khz', 0);
  if (lg.readData('syscall_vec') !== LGUEST_SYSCALL_VECTOR) lg.kill('bad syscall vector');
  lg.noirqStart = lg.readData('noirq_start');
  lg.noirqEnd = lg.readData('noirq_end');
  lg.writeTimestamp();
  // page_table_guest_data_init
  lg.kernelAddress = lg.readData('kernel_address');
  lg.writeData('reserve_mem', lg.paging.reserveMem);
  lg.writeData('pgdir', lg.bootPgdir);
  lg.shadow.guestDataInit(lg.kernelAddress);
  // Our writes above may be the first to these guest pages: throw every shadow away (abi 6.7.6).
  lg.shadow.clearAll(c);
  c.nextHcall = 0;
}

/** [H:500] do_hypercalls: with the sync call's registers from the regs page; the ring first, then the
 *  call itself. A NOTIFY (from the ring or the call) goes to the Launcher before anything else runs. */
export function doHypercalls(c: LgCpu, handleNotify: (addr: number) => void): void {
  const lg = c.lg;
  const args: HcallArgs = [c.reg('eax'), c.reg('ebx'), c.reg('ecx'), c.reg('edx'), c.reg('esi')];
  if (lg.lguestData < 0) {
    initialize(c, args);
    if (c.wants('hypercall')) c.emit({ kind: 'hypercall', nr: args[0], name: hcallName(c, args[0]), args: [args[1], args[2], args[3], args[4]], sync: true });
    c.hcallPending = false;
    return;
  }
  for (;;) {
    doAsyncHcalls(c);
    if (c.pendingNotify < 0 || lg.dead !== null) break;
    const addr = c.pendingNotify;
    c.pendingNotify = -1;
    handleNotify(addr);
  }
  if (lg.dead === null) doHcall(c, args, true);
  if (c.pendingNotify >= 0 && lg.dead === null) {
    const addr = c.pendingNotify;
    c.pendingNotify = -1;
    handleNotify(addr);
  }
  c.hcallPending = false;
}

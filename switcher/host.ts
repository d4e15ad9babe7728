/**
 * Starting a guest on the Host (lguest_user.c's LHREQ_INITIALIZE and lguest_arch_setup_regs): the
 * Switcher code page, a vCPU with its Switcher pages, the boot page tables and the initial registers.
 */
import { CPU } from '../emulator/cpu.ts';
import { assembleSwitcher } from './code.ts';
import { Lguest, LgCpu, type GuestConfig } from './lguest.ts';
import { CTRL } from './smp.ts';
import { flushVcpuTlb } from './core.ts';
import { INITIAL_EFLAGS, KERNEL_CS, KERNEL_DS, LGUEST_REGS_PAGE_OFFSET, LGUEST_REGS_SIZE } from './layout.ts';
import { populateSwitcherPtePage, setupGuestGdt, setupReadOnlyPage } from './segments.ts';

export interface StartOptions extends Omit<GuestConfig, 'switcher' | 'switcherCodePage'> {
  /** Guest-physical entry point (e_entry). */
  entry: number;
  /** Bytes of initrd at the top of RAM (page-rounded), for the boot page tables' placement. */
  initrdBytes: number;
}

/** A secondary vCPU's start (VCPU_START's arguments, switcher/smp.ts). */
export interface SecondaryStart {
  eip: number;
  esp: number;
  /** The starter's guest top level (gpa): the new vCPU runs on it. */
  pgdir: number;
}

/** The Switcher code page, the guest seen from this vCPU's worker, and the vCPU with its own Switcher pages. */
function createVcpu(opts: StartOptions): { lg: Lguest; vcpu: LgCpu } {
  const switcher = assembleSwitcher();
  const id = opts.link.id, ctrl = opts.link.ctrl;
  // [H:015] The Switcher code page is the guest's, set up by vCPU 0 and mapped read-only by every vCPU.
  // The Switcher PTE page is each vCPU's own (lguest's per-CPU one): it maps the code page and this
  // vCPU's regs and read-only pages, and nothing of any other vCPU's, so no vCPU can even read another's
  // saved registers, let alone rewrite them between the Host's checks and the Switcher's IRET.
  let codePage: number;
  if (id === 0) {
    codePage = opts.pool.alloc();
    if (codePage < 0) throw new Error('the Host pool has no room for the Switcher');
    opts.mem.writeBytes(codePage, switcher.bytes);
    Atomics.store(ctrl, CTRL.switcherCode, codePage);
  } else {
    codePage = Atomics.load(ctrl, CTRL.switcherCode);
  }
  const lg = new Lguest({ ...opts, switcher, switcherCodePage: codePage });
  const cpu = new CPU(opts.mem, id);
  // Locked instructions need real atomics only when another vCPU thread shares the memory.
  cpu.sharedMemory = opts.link.ncpus > 1;
  cpu.doorbell = opts.link.doorbellView();
  const vcpu = new LgCpu(lg, id, cpu);
  lg.vcpus.push(vcpu);
  if (opts.link.ncpus > 1) {
    // [H:027] Cross-modifying code: a page that becomes code must not stay writable, unchecked, in another
    // vCPU's TLB, or that vCPU's writes there would never reach this one's decoded blocks.
    opts.link.selfFlush = () => flushVcpuTlb(vcpu);
    cpu.onNewCodePage = () => {
      if (!opts.link.shootdown()) lg.kill('a vCPU did not answer a TLB shootdown');
    };
  }
  populateSwitcherPtePage(vcpu);
  setupReadOnlyPage(vcpu);
  setupGuestGdt(vcpu);
  return { lg, vcpu };
}

/** [H:020] lguest_arch_setup_regs: a zeroed register block, kernel segments at ring 1, interrupts on
 *  (the CPU's IF is always on in the guest; the virtual one is lguest_data.irq_enabled). */
function setupRegs(vcpu: LgCpu, eip: number): void {
  vcpu.lg.mem.fill(vcpu.regsPage + LGUEST_REGS_PAGE_OFFSET, LGUEST_REGS_SIZE, 0);
  vcpu.setReg('cs', KERNEL_CS);
  vcpu.setReg('ds', KERNEL_DS);
  vcpu.setReg('es', KERNEL_DS);
  vcpu.setReg('ss', KERNEL_DS);
  vcpu.setReg('eflags', INITIAL_EFLAGS);
  vcpu.setReg('eip', eip);
}

/** [H:025] A secondary vCPU's start (VCPU_START, lguest-ts's SMP extension): like vCPU 0's, but on the
 *  starter's page tables (the shadow bookkeeping is shared, so it attaches to it), with the stack the
 *  starter gave and its own id in EAX. Its first hypercall must be its own LGUEST_INIT. */
export function startSecondary(opts: Omit<StartOptions, 'entry' | 'initrdBytes'>, start: SecondaryStart): { lg: Lguest; vcpu: LgCpu } {
  const { lg, vcpu } = createVcpu({ ...opts, entry: start.eip, initrdBytes: 0 });
  lg.bootPgdir = start.pgdir;
  setupRegs(vcpu, start.eip);
  vcpu.setReg('esp', start.esp);
  vcpu.setReg('eax', vcpu.id);
  lg.shadow.newPagetable(vcpu, start.pgdir);
  return { lg, vcpu };
}

/** [H:010] LHREQ_INITIALIZE: assemble the Switcher into a Host page, create the guest and its vCPU 0,
 *  build the boot page tables in guest memory (the Host's job in this lguest era, abi 3.5) and set the
 *  registers the guest starts with (abi 3.6). */
export function startGuest(opts: StartOptions): { lg: Lguest; vcpu: LgCpu } {
  const { lg, vcpu } = createVcpu(opts);
  lg.bootPgdir = lg.shadow.initGuestPagetable(opts.memBytes, opts.initrdBytes);
  setupRegs(vcpu, opts.entry);
  return { lg, vcpu };
}

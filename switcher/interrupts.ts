/**
 * Reflecting traps and delivering virtual interrupts into the guest (lguest's interrupts_and_traps.c,
 * abi 4.6 - 4.8 and 8): the Host builds the frame the CPU would have pushed, on the guest's own stack,
 * through the guest's own page tables.
 */
import {
  FIRST_EXTERNAL_VECTOR, GATE_TYPE_INTERRUPT, GUEST_PL, KERNEL_CS, LGUEST_IRQS, X86_EFLAGS_IF,
} from './layout.ts';
import { wallClockMs, type LgCpu } from './lguest.ts';
import { idtAddress, idtPresent, idtType } from './segments.ts';
import { vectorHasErrorCode } from './code.ts';

/** Push one word onto the guest stack at virtual `esp` (already decremented), through guest_pa. */
function pushGuestStack(c: LgCpu, esp: number, val: number): void {
  const gpa = c.lg.shadow.guestPa(c, esp >>> 0);
  if (gpa < 0) return; // guestPa killed the guest
  c.lg.write32(gpa, val);
}

/** [H:400] set_guest_interrupt: make the guest believe the CPU delivered gate (lo, hi). From user mode
 *  we switch to the kernel stack it gave us with SET_STACK; the pushed EFLAGS carries the *virtual*
 *  interrupt flag; an interrupt gate turns virtual interrupts off. */
export function setGuestInterrupt(c: LgCpu, lo: number, hi: number, hasErr: boolean): void {
  const lg = c.lg;
  let ss: number, esp: number;
  const origSs = c.reg('ss'), origEsp = c.reg('esp');
  if ((origSs & 3) !== GUEST_PL) {
    ss = c.ss1;
    esp = c.esp1;
    esp = (esp - 4) | 0; pushGuestStack(c, esp, origSs);
    esp = (esp - 4) | 0; pushGuestStack(c, esp, origEsp);
  } else {
    ss = origSs;
    esp = origEsp;
  }
  let eflags = c.reg('eflags');
  if ((lg.readData('irq_enabled') & X86_EFLAGS_IF) === 0) eflags &= ~X86_EFLAGS_IF;
  esp = (esp - 4) | 0; pushGuestStack(c, esp, eflags);
  esp = (esp - 4) | 0; pushGuestStack(c, esp, c.reg('cs'));
  esp = (esp - 4) | 0; pushGuestStack(c, esp, c.reg('eip'));
  if (hasErr) { esp = (esp - 4) | 0; pushGuestStack(c, esp, c.reg('errcode')); }
  c.setReg('ss', ss);
  c.setReg('esp', esp);
  c.setReg('cs', KERNEL_CS);
  c.setReg('eip', idtAddress(lo, hi));
  if (idtType(hi) === GATE_TYPE_INTERRUPT) lg.writeData('irq_enabled', 0);
}

/** deliver_trap: reflect trap `num` through the guest's IDT; false when it has no gate for it. */
export function deliverTrap(c: LgCpu, num: number): boolean {
  if (num >= c.idt.length / 2) return false;
  const lo = c.idt[num * 2], hi = c.idt[num * 2 + 1];
  if (!idtPresent(hi)) return false;
  setGuestInterrupt(c, lo, hi, vectorHasErrorCode(num));
  c.lg.stats.trapsReflected++;
  return true;
}

/** interrupt_pending: the first pending, unblocked virtual IRQ (LGUEST_IRQS: none), and whether more. */
export function interruptPending(c: LgCpu): { irq: number; more: boolean } {
  const lg = c.lg;
  if (lg.lguestData < 0) return { irq: LGUEST_IRQS, more: false };
  const pending = c.irqsPending & ~lg.readData('blocked_interrupts');
  if (pending === 0) return { irq: LGUEST_IRQS, more: false };
  const irq = 31 - Math.clz32(pending & -pending);
  return { irq, more: (pending & ~(1 << irq)) !== 0 };
}

/** [H:420] try_deliver_interrupt: not inside the guest's noirq window; a HALTed guest wakes with
 *  interrupts on (HALT means "sti; hlt"); with virtual interrupts off we only flag irq_pending, and the
 *  guest asks again with SEND_INTERRUPTS when it turns them on. */
export function tryDeliverInterrupt(c: LgCpu, irq: number, more: boolean): void {
  const lg = c.lg;
  const eip = c.reg('eip');
  if (eip >= lg.noirqStart && eip < lg.noirqEnd) return;
  if (c.halted) {
    lg.writeData('irq_enabled', X86_EFLAGS_IF);
    c.halted = false;
  } else if ((lg.readData('irq_enabled') & X86_EFLAGS_IF) === 0) {
    lg.writeData('irq_pending', X86_EFLAGS_IF);
    return;
  }
  const v = FIRST_EXTERNAL_VECTOR + irq;
  const lo = c.idt[v * 2], hi = c.idt[v * 2 + 1];
  if (idtPresent(hi)) {
    c.irqsPending &= ~(1 << irq);
    setGuestInterrupt(c, lo, hi, false);
    lg.stats.interruptsDelivered++;
    if (c.wants('interrupt')) c.emit({ kind: 'interrupt', irq, vector: v });
  }
  lg.writeTimestamp();
  if (!more) lg.writeData('irq_pending', 0);
}

/** SET_CLOCKEVENT: arm (or with 0, cancel) the one-shot timer `deltaNs` from now. */
export function guestSetClockevent(c: LgCpu, deltaNs: number): void {
  c.clockDeadline = deltaNs === 0 ? 0 : wallClockMs() + deltaNs / 1e6;
}

/** The timer fired? Then raise IRQ 0 (lguest's hrtimer callback). */
export function checkClock(c: LgCpu, now = wallClockMs()): void {
  if (c.clockDeadline !== 0 && now >= c.clockDeadline) {
    c.clockDeadline = 0;
    c.irqsPending |= 1;
  }
}

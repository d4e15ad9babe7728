/**
 * The lguest device bus as the Launcher serves it (abi 7.1): one descriptor page at guest-physical `mem`
 * (the first page above RAM) holding back-to-back device records, terminated by a record of type 0. We
 * offer no virtio devices yet (the guest's console is the early console, NOTIFY of a string), so the page
 * holds just the terminator; a NOTIFY inside it is a device status change of a device that does not
 * exist, which the Launcher ignores.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { LGUEST_DEVICE_DESC, PAGE_SIZE } from '../switcher/layout.ts';

/** Device type 0 ends the list. */
export const DEVICE_TYPE_END = 0;

export class LguestBus {
  /** Guest-physical address of the descriptor page. */
  readonly descGpa: number;

  constructor(readonly mem: PhysicalMemory, readonly memBase: number, memBytes: number) {
    this.descGpa = memBytes;
  }

  /** Guest pages the devices use (the descriptor page; rings would follow it). */
  get pages(): number { return 1; }

  /** Write the descriptor page: an empty, terminated list. */
  writeDescriptorPage(): void {
    const hpa = this.memBase + this.descGpa;
    this.mem.fill(hpa, PAGE_SIZE, 0);
    this.mem.write8(hpa + LGUEST_DEVICE_DESC.type, DEVICE_TYPE_END);
  }

  /** A NOTIFY at `gpa`: true when it was meant for a device (the descriptor page or a ring). */
  notify(gpa: number): boolean {
    return gpa >= this.descGpa && gpa < this.descGpa + PAGE_SIZE;
  }
}

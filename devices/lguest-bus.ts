/**
 * The lguest device bus as the Launcher serves it (abi 7.1): one descriptor page at guest-physical `mem`
 * (the first page above RAM) holding back-to-back device records, terminated by a record of type 0. The
 * one device is the virtio console (virtio-console.ts), offered first; its two rings follow the
 * descriptor page (3 pages each). The device itself runs in the vCPU worker, which rebuilds the same
 * layout from the descriptor page's address.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { LGUEST_DEVICE_DESC, PAGE_SIZE } from '../switcher/layout.ts';
import { consoleLayout, consoleSpec } from './virtio-console.ts';
import { busLayout, writeRecord } from './virtio-device.ts';

/** Device type 0 ends the list. */
export const DEVICE_TYPE_END = 0;

export class LguestBus {
  /** Guest-physical address of the descriptor page. */
  readonly descGpa: number;

  constructor(readonly mem: PhysicalMemory, readonly memBase: number, memBytes: number) {
    this.descGpa = memBytes;
  }

  /** Guest pages the devices use: the descriptor page and the console's rings. */
  get pages(): number { return 1 + consoleLayout(this.descGpa).pages; }

  /** Write the descriptor page (the console, then the terminator) and zero the rings. */
  writeDescriptorPage(): void {
    const hpa = this.memBase + this.descGpa;
    this.mem.fill(hpa, this.pages * PAGE_SIZE, 0);
    const [con] = busLayout(this.descGpa, [consoleSpec()]).records;
    const n = writeRecord(
      (o, v) => this.mem.write8(hpa + o, v), (o, v) => this.mem.write16(hpa + o, v), (o, v) => this.mem.write32(hpa + o, v),
      con.descOffset, con);
    this.mem.write8(hpa + con.descOffset + n + LGUEST_DEVICE_DESC.type, DEVICE_TYPE_END);
  }

  /** A NOTIFY at `gpa`: true when it was meant for a device (the descriptor page or a ring). */
  notify(gpa: number): boolean {
    return gpa >= this.descGpa && gpa < this.descGpa + this.pages * PAGE_SIZE;
  }
}

/**
 * The lguest device bus as the Launcher serves it (abi 7.1, 7.3): one descriptor page at guest-physical
 * `mem` (the first page above RAM) holding back-to-back device records, terminated by a record of type 0.
 * The devices, in lguest's order: the virtio console (always), the block device (`--block FILE`), the
 * entropy device (`--rng`); their rings follow the descriptor page (3 pages each, in creation order),
 * their IRQs are 1, 2, 3... per virtqueue (virtio-device.ts). The Launcher writes the page (LguestBus);
 * vCPU 0's worker serves the devices (LguestDevices), rebuilding the same layout from the same list.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { LGUEST_DEVICE_DESC, PAGE_SIZE } from '../switcher/layout.ts';
import { FileBackend, VirtioBlock, blockSpec, type BlockBackend, type BlockFile } from './virtio-block.ts';
import { VirtioConsole, consoleSpec, type DeviceHost } from './virtio-console.ts';
import { busLayout, writeRecord, type DeviceRecord, type DeviceSpec, type VirtioDevice } from './virtio-device.ts';
import { VirtioRng, rngSpec } from './virtio-rng.ts';

/** Device type 0 ends the list. */
export const DEVICE_TYPE_END = 0;

/** The devices offered besides the console (structured-cloneable: it goes to the worker in its task). */
export interface BusDevices {
  block?: BlockFile;
  rng?: boolean;
}

/** What is offered, in lguest's order: console, block, rng. */
export function offeredSpecs(d: BusDevices): DeviceSpec[] {
  const specs = [consoleSpec()];
  if (d.block) specs.push(blockSpec(d.block.capacity));
  if (d.rng) specs.push(rngSpec());
  return specs;
}

export class LguestBus {
  /** Guest-physical address of the descriptor page. */
  readonly descGpa: number;
  readonly records: DeviceRecord[];
  /** Guest pages the devices use: the descriptor page and every ring. */
  readonly pages: number;

  constructor(readonly mem: PhysicalMemory, readonly memBase: number, memBytes: number, readonly devices: BusDevices = {}) {
    this.descGpa = memBytes;
    const l = busLayout(this.descGpa, offeredSpecs(devices));
    this.records = l.records;
    this.pages = l.pages;
  }

  /** [D:100] Write the descriptor page (every record, then the terminator) and zero the rings. */
  writeDescriptorPage(): void {
    const hpa = this.memBase + this.descGpa;
    this.mem.fill(hpa, this.pages * PAGE_SIZE, 0);
    let at = 0;
    for (const r of this.records) {
      at += writeRecord(
        (o, v) => this.mem.write8(hpa + o, v), (o, v) => this.mem.write16(hpa + o, v), (o, v) => this.mem.write32(hpa + o, v),
        r.descOffset, r);
    }
    this.mem.write8(hpa + at + LGUEST_DEVICE_DESC.type, DEVICE_TYPE_END);
  }

  /** A NOTIFY at `gpa`: true when it was meant for a device (the descriptor page or a ring). */
  notify(gpa: number): boolean {
    return gpa >= this.descGpa && gpa < this.descGpa + this.pages * PAGE_SIZE;
  }
}

/** The devices as vCPU 0 serves them. */
export class LguestDevices {
  readonly console: VirtioConsole;
  readonly block?: VirtioBlock;
  readonly rng?: VirtioRng;
  readonly all: VirtioDevice[];

  /** `backend` replaces the block file (tests). */
  constructor(host: DeviceHost, descGpa: number, devices: BusDevices, backend?: BlockBackend) {
    const { records } = busLayout(descGpa, offeredSpecs(devices));
    let i = 0;
    this.console = new VirtioConsole(host, descGpa, records[i++]);
    if (devices.block) {
      this.block = new VirtioBlock(host, descGpa, records[i++], devices.block.capacity, backend ?? new FileBackend(devices.block.fd));
    }
    if (devices.rng) this.rng = new VirtioRng(host, descGpa, records[i++]);
    this.all = [this.console];
    if (this.block) this.all.push(this.block);
    if (this.rng) this.all.push(this.rng);
  }

  /** [D:110] A NOTIFY inside the device pages: true when a device took it (a status change or a kick). */
  notify(gpa: number): boolean {
    return this.all.some((d) => d.notify(gpa));
  }

  /** Does a device have work left from an earlier turn that it can do now? (vCPU 0 then does not sleep.) */
  hasWork(): boolean {
    for (const d of this.all) if (d.hasWork()) return true;
    return false;
  }

  /** A turn for every device with work left (vCPU 0, between its time slices). */
  resume(): void {
    for (const d of this.all) d.resume();
  }
}

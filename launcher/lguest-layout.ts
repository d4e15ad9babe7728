/**
 * The Launcher's half of starting an lguest guest: the machine's physical memory layout (abi 3.1, 3.2;
 * docs/design.md "Memory"), loading the kernel, the initrd and boot_params (abi 3.3, 3.4). The Host's half
 * (boot page tables, registers) is switcher/host.ts.
 *
 *   host-physical 0 .. memBase          the Host pool: Switcher pages, shadow page tables
 *   memBase .. memBase+mem              guest RAM (guest-physical 0 .. mem)
 *   memBase+mem .. +DEVICE_PAGES pages  the device pages (the descriptor page first)
 */
import { PhysicalMemory } from '../mmu/memory.ts';
import {
  BOOT_CMDLINE_PHYS, BOOT_PARAMS, BOOT_PARAMS_PHYS, BOOT_PROTOCOL_VERSION, DEVICE_PAGES, E820_ENTRY, E820_RAM,
  HARDWARE_SUBARCH_LGUEST, KEEP_SEGMENTS, LOADER_TYPE_UNDEFINED, PAGE_SIZE, PAGING_2LEVEL, PAGING_PAE,
} from '../switcher/layout.ts';
import { LguestBus, offeredSpecs, type BusDevices } from '../devices/lguest-bus.ts';
import { busLayout } from '../devices/virtio-device.ts';
import { parseElf, type ElfImage } from './elf.ts';
import { UserError } from './errors.ts';

const MIB = 1 << 20;

export interface GuestLayout {
  /** hpa of guest-physical 0 (the Host pool lies below it). */
  memBase: number;
  memBytes: number;
  poolBytes: number;
  /** Guest frames the guest may touch: RAM plus the device pages in use. */
  pfnLimit: number;
  totalBytes: number;
}

/** The Host pool's size: room for the Switcher pages and four cached shadows of the whole RAM. */
export function layoutFor(memBytes: number, devicePages: number): GuestLayout {
  const poolBytes = Math.ceil((2 * MIB + memBytes / 64) / MIB) * MIB;
  return {
    memBase: poolBytes, memBytes, poolBytes,
    pfnLimit: memBytes / PAGE_SIZE + devicePages,
    totalBytes: poolBytes + memBytes + DEVICE_PAGES * PAGE_SIZE,
  };
}

export interface PreparedGuest {
  mem: PhysicalMemory;
  layout: GuestLayout;
  bus: LguestBus;
  entry: number;
  initrdBytes: number;
}

/** Pages the Host's boot page tables take below the initrd (abi 3.5). */
function bootTablePages(memBytes: number, pae: boolean): number {
  const p = pae ? PAGING_PAE : PAGING_2LEVEL;
  return 1 + Math.ceil(memBytes / PAGE_SIZE / p.ptrsPerPte) + (pae ? 1 : 0);
}

/** [L:100] Lay out memory, load the kernel and initrd, write boot_params and the device page. */
export function prepareGuest(o: {
  image: Uint8Array; imageName: string; memMiB: number; pae: boolean; cmdline: string;
  initrd?: Uint8Array; initrdName?: string;
  /** Devices offered besides the console (devices/lguest-bus.ts). */
  devices?: BusDevices;
}): PreparedGuest {
  const memBytes = o.memMiB * MIB;
  const elf: ElfImage = parseElf(o.image, o.imageName, memBytes);
  const initrdBytes = o.initrd ? Math.ceil(o.initrd.length / PAGE_SIZE) * PAGE_SIZE : 0;
  const cmd = Buffer.from(o.cmdline, 'utf8');
  // Everything the Launcher and the Host put in RAM must stay clear of the kernel.
  const low = BOOT_CMDLINE_PHYS + cmd.length + 1;
  const high = memBytes - initrdBytes - bootTablePages(memBytes, o.pae) * PAGE_SIZE;
  for (const s of elf.segments) {
    if (s.paddr < low) {
      // The first two pages are the Launcher's whatever the command line: blame the image there, and the
      // command line only when it is what reaches past them into the kernel.
      throw new UserError(s.paddr < BOOT_CMDLINE_PHYS
        ? `${o.imageName}: a segment at physical 0x${s.paddr.toString(16)} overlaps boot_params (the first page is the Launcher's)`
        : s.paddr < BOOT_CMDLINE_PHYS + PAGE_SIZE
          ? `${o.imageName}: a segment at physical 0x${s.paddr.toString(16)} overlaps the command line page (0x${BOOT_CMDLINE_PHYS.toString(16)}-0x${(BOOT_CMDLINE_PHYS + PAGE_SIZE - 1).toString(16)} is the Launcher's)`
          : `--cmdline is ${cmd.length} bytes: it would overlap the kernel at physical 0x${s.paddr.toString(16)}`);
    }
    if (s.paddr + s.memSize > high) {
      throw new UserError(o.initrd
        ? `${o.initrdName}: the initrd (${o.initrd.length} bytes) and the boot page tables do not fit above the kernel in ${o.memMiB} MiB`
        : `${o.imageName}: the kernel leaves no room for the boot page tables in ${o.memMiB} MiB`);
    }
  }
  // The descriptor page and every device's rings (devices/lguest-bus.ts): the guest may touch them, so
  // they count in pfnLimit.
  const busPages = busLayout(memBytes, offeredSpecs(o.devices ?? {})).pages;
  if (busPages > DEVICE_PAGES) throw new Error(`the devices need ${busPages} pages above RAM, more than the ${DEVICE_PAGES} there are`);
  const layout = layoutFor(memBytes, busPages);
  const mem = new PhysicalMemory(layout.totalBytes);
  const g = (gpa: number) => layout.memBase + gpa;
  for (const s of elf.segments) mem.writeBytes(g(s.paddr), o.image.subarray(s.offset, s.offset + s.fileSize));
  // [L:110] boot_params at guest-physical 0, the command line verbatim at 0x1000.
  const bp = g(BOOT_PARAMS_PHYS);
  mem.write8(bp + BOOT_PARAMS.e820_entries, 1);
  mem.write32(bp + BOOT_PARAMS.e820_map + E820_ENTRY.addr, 0);
  mem.write32(bp + BOOT_PARAMS.e820_map + E820_ENTRY.addr + 4, 0);
  mem.write32(bp + BOOT_PARAMS.e820_map + E820_ENTRY.size, memBytes);
  mem.write32(bp + BOOT_PARAMS.e820_map + E820_ENTRY.size + 4, 0);
  mem.write32(bp + BOOT_PARAMS.e820_map + E820_ENTRY.type, E820_RAM);
  mem.write16(bp + BOOT_PARAMS.version, BOOT_PROTOCOL_VERSION);
  mem.write8(bp + BOOT_PARAMS.loadflags, mem.read8(bp + BOOT_PARAMS.loadflags) | KEEP_SEGMENTS);
  mem.write32(bp + BOOT_PARAMS.cmd_line_ptr, BOOT_CMDLINE_PHYS);
  mem.write32(bp + BOOT_PARAMS.hardware_subarch, HARDWARE_SUBARCH_LGUEST);
  mem.writeBytes(g(BOOT_CMDLINE_PHYS), cmd);
  mem.write8(g(BOOT_CMDLINE_PHYS) + cmd.length, 0);
  if (o.initrd) {
    const at = memBytes - initrdBytes;
    mem.writeBytes(g(at), o.initrd);
    mem.write32(bp + BOOT_PARAMS.ramdisk_image, at);
    mem.write32(bp + BOOT_PARAMS.ramdisk_size, initrdBytes);
    mem.write8(bp + BOOT_PARAMS.type_of_loader, LOADER_TYPE_UNDEFINED);
  }
  const bus = new LguestBus(mem, layout.memBase, memBytes, o.devices);
  bus.writeDescriptorPage();
  return { mem, layout, bus, entry: elf.entry, initrdBytes };
}

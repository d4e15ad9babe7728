/**
 * Multiboot v1 (the 0.6.96 specification): finding the header in a kernel file, loading the kernel into
 * physical memory (ELF32 PT_LOAD segments by physical address, or the a.out-kludge address fields when
 * header flag bit 16 is set), and writing the multiboot information structure the kernel finds in EBX.
 *
 * Everything here is the Launcher's side of "Two ways to boot" (docs/design.md). Bad input is a
 * UserError with one line that says what is wrong with the file; nothing is written to memory before the
 * whole image has been checked.
 */
import type { PhysicalMemory } from '../mmu/memory.ts';
import { UserError } from './errors.ts';

/** [L:400] A Multiboot kernel announces itself with a 12-byte header (magic, flags, checksum) somewhere in
 * the first 8 KiB of the file, 4-byte aligned. The three words sum to zero. */
export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
const HEADER_SEARCH = 8192;

/** Header flags. Bits 0-15 are requirements a loader must honour or refuse; 16-31 are optional. */
const HF_PAGE_ALIGN = 1 << 0; // modules page-aligned: we load no modules, so trivially honoured
const HF_MEMORY_INFO = 1 << 1; // mem_lower/mem_upper: always given
const HF_VIDEO_MODE = 1 << 2; // video mode table: there is no display; QEMU ignores it too
const HF_AOUT_KLUDGE = 1 << 16;
const HF_UNDERSTOOD = HF_PAGE_ALIGN | HF_MEMORY_INFO | HF_VIDEO_MODE;

/** Info flags: which fields of the multiboot info structure are valid. */
const MI_MEMORY = 1 << 0;
const MI_CMDLINE = 1 << 2;
const MI_MMAP = 1 << 6;
const MI_LOADER_NAME = 1 << 9;

/** The multiboot info structure's fields we fill, by byte offset (spec 3.3). */
const MBI = {
  flags: 0, memLower: 4, memUpper: 8, cmdline: 16, mmapLength: 44, mmapAddr: 48, loaderName: 64,
  size: 88,
} as const;

/** Where the loader puts its own structures, all below 1 MiB (conventional memory). */
export const BOOT_LAYOUT = {
  /** The GDT the kernel is entered with (null, flat code 0x08, flat data 0x10). */
  gdt: 0x0800,
  /** The multiboot info structure. */
  info: 0x9000,
  /** The memory map (two 24-byte entries). */
  mmap: 0x9100,
  /** The boot loader's name. */
  loaderName: 0x9180,
  /** The command line (NUL-terminated), up to `cmdlineMax` bytes. */
  cmdline: 0x9200,
  cmdlineMax: 0x6e00,
  /** The initial stack pointer (Multiboot leaves ESP undefined; this is a harmless one). */
  stackTop: 0x7000,
  /** Everything the loader writes lies in [0, end): a kernel may not load there. */
  end: 0x10000,
} as const;

/** The lowest address a kernel may load at (QEMU's loader takes the same: the page at 0 holds the
 *  real-mode interrupt table and BIOS data). */
export const MIN_LOAD = 0x1000;
/** Size of the loader's block when it moves above the kernel (the same offsets as BOOT_LAYOUT). */
const BLOCK = BOOT_LAYOUT.end;

export type BootLayout = { [K in keyof typeof BOOT_LAYOUT]: number };

/**
 * Where the loader's structures go for this kernel: the low layout (BOOT_LAYOUT) when the kernel is
 * clear of the first 64 KiB, else a 64 KiB block at the first page boundary above the kernel's
 * highest byte, as QEMU's Multiboot loader places them "where the kernel is not".
 */
export function bootLayout(img: MultibootImage, memSize: number, what: string): BootLayout {
  const low = img.segments.every((s) => s.paddr >= BOOT_LAYOUT.end);
  if (low) return { ...BOOT_LAYOUT };
  const top = Math.max(...img.segments.map((s) => s.paddr + s.memSize));
  const base = Math.ceil(top / 4096) * 4096;
  if (base + BLOCK > memSize) {
    throw new UserError(`${what} leaves no room above it for the multiboot info in ${memSize / (1024 * 1024)} MiB of memory (use a larger --mem)`);
  }
  const L = BOOT_LAYOUT;
  return {
    gdt: base + L.gdt, info: base + L.info, mmap: base + L.mmap, loaderName: base + L.loaderName,
    cmdline: base + L.cmdline, cmdlineMax: L.cmdlineMax, stackTop: base + L.stackTop, end: base + L.end,
  };
}

/** Flat selectors of the boot GDT. */
export const BOOT_CS = 0x08;
export const BOOT_DS = 0x10;

/** One piece of the kernel to place in memory: `fileSize` bytes from the file, then zeros to `memSize`. */
export interface LoadSegment {
  paddr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

export interface MultibootImage {
  /** Byte offset of the header in the file. */
  headerOffset: number;
  flags: number;
  /** How the image was described: ELF program headers or the a.out-kludge address fields. */
  format: 'elf' | 'aout-kludge';
  segments: LoadSegment[];
  entry: number;
}

const u32 = (b: Uint8Array, off: number): number =>
  (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
const u16 = (b: Uint8Array, off: number): number => b[off] | (b[off + 1] << 8);
const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** Find the Multiboot header: its offset in the file, or -1. */
export function findMultibootHeader(file: Uint8Array): number {
  const end = Math.min(file.length, HEADER_SEARCH) - 12;
  for (let off = 0; off <= end; off += 4) {
    if (u32(file, off) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = u32(file, off + 4);
    const sum = (MULTIBOOT_HEADER_MAGIC + flags + u32(file, off + 8)) >>> 0;
    if (sum === 0) return off;
  }
  return -1;
}

/** Parse a kernel file: where its bytes go and where it starts. Throws UserError for anything else. */
export function parseMultiboot(file: Uint8Array, what: string): MultibootImage {
  const isElf = file.length >= 4 && file[0] === 0x7f && file[1] === 0x45 && file[2] === 0x4c && file[3] === 0x46;
  const headerOffset = findMultibootHeader(file);
  if (headerOffset < 0) {
    throw new UserError(`${what} is not a Multiboot kernel: no Multiboot v1 header in its first 8 KiB${isElf ? '' : ' (and it is not an ELF file)'}`);
  }
  const flags = u32(file, headerOffset + 4);
  const unknown = flags & 0xffff & ~HF_UNDERSTOOD;
  if (unknown !== 0) throw new UserError(`${what}: its Multiboot header requires features this loader does not have (flags ${hex(unknown)})`);

  /** [L:402] Header flag bit 16 says the header also carries the a.out-kludge address fields; a loader uses
   * them instead of the ELF program headers (QEMU and GRUB do). */
  if ((flags & HF_AOUT_KLUDGE) !== 0) return parseAoutKludge(file, headerOffset, flags, what);
  if (!isElf) throw new UserError(`${what} is not an ELF file and its Multiboot header has no a.out-kludge address fields (flag bit 16)`);
  return parseElf(file, headerOffset, flags, what);
}

function parseAoutKludge(file: Uint8Array, headerOffset: number, flags: number, what: string): MultibootImage {
  if (headerOffset + 32 > file.length) throw new UserError(`${what}: the Multiboot header's address fields run past the end of the file`);
  const headerAddr = u32(file, headerOffset + 12);
  const loadAddr = u32(file, headerOffset + 16);
  const loadEnd = u32(file, headerOffset + 20);
  const bssEnd = u32(file, headerOffset + 24);
  const entry = u32(file, headerOffset + 28);
  if (loadAddr > headerAddr) throw new UserError(`${what}: Multiboot load_addr ${hex(loadAddr)} is above header_addr ${hex(headerAddr)}`);
  // the file offset of load_addr: the header sits (headerAddr - loadAddr) bytes after it
  const fileOffset = headerOffset - (headerAddr - loadAddr);
  if (fileOffset < 0) throw new UserError(`${what}: Multiboot header_addr/load_addr put the image before the start of the file`);
  const fileSize = loadEnd === 0 ? file.length - fileOffset : loadEnd - loadAddr;
  if (loadEnd !== 0 && loadEnd < loadAddr) throw new UserError(`${what}: Multiboot load_end_addr ${hex(loadEnd)} is below load_addr ${hex(loadAddr)}`);
  if (fileOffset + fileSize > file.length) throw new UserError(`${what}: Multiboot load_end_addr ${hex(loadEnd)} lies beyond the end of the file`);
  const memEnd = bssEnd === 0 ? loadAddr + fileSize : bssEnd;
  if (memEnd < loadAddr + fileSize) throw new UserError(`${what}: Multiboot bss_end_addr ${hex(bssEnd)} is below load_end_addr`);
  return {
    headerOffset, flags, format: 'aout-kludge', entry,
    segments: [{ paddr: loadAddr, fileOffset, fileSize, memSize: memEnd - loadAddr }],
  };
}

const ELFCLASS32 = 1, ELFCLASS64 = 2, ELFDATA2LSB = 1, EM_386 = 3, ET_EXEC = 2, PT_LOAD = 1;

function parseElf(file: Uint8Array, headerOffset: number, flags: number, what: string): MultibootImage {
  if (file[4] === ELFCLASS64) throw new UserError(`${what} is a 64-bit ELF file; bare mode boots 32-bit (i386) Multiboot kernels`);
  if (file.length < 52 || file[4] !== ELFCLASS32 || file[5] !== ELFDATA2LSB) throw new UserError(`${what} is not a 32-bit little-endian ELF file`);
  if (u16(file, 18) !== EM_386) throw new UserError(`${what} is an ELF file for machine ${u16(file, 18)}, not i386`);
  if (u16(file, 16) !== ET_EXEC) throw new UserError(`${what} is not an ELF executable (type ${u16(file, 16)})`);
  const phoff = u32(file, 28), phentsize = u16(file, 42), phnum = u16(file, 44);
  if (phnum === 0 || phentsize < 32 || phoff + phnum * phentsize > file.length) throw new UserError(`${what}: its ELF program headers are missing or truncated`);
  const segments: LoadSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(file, ph) !== PT_LOAD) continue;
    const seg = { fileOffset: u32(file, ph + 4), paddr: u32(file, ph + 12), fileSize: u32(file, ph + 16), memSize: u32(file, ph + 20) };
    if (seg.fileOffset + seg.fileSize > file.length) throw new UserError(`${what}: ELF segment ${i} runs past the end of the file`);
    if (seg.memSize < seg.fileSize) throw new UserError(`${what}: ELF segment ${i} has a memory size below its file size`);
    if (seg.memSize > 0) segments.push(seg);
  }
  if (segments.length === 0) throw new UserError(`${what}: its ELF file has no loadable segment`);
  return { headerOffset, flags, format: 'elf', segments, entry: u32(file, 24) };
}

/** Check that every segment fits in RAM of `memSize` bytes and clear of the loader's own structures. */
export function checkFits(img: MultibootImage, memSize: number, what: string): void {
  const mib = memSize / (1024 * 1024);
  for (const s of img.segments) {
    const end = s.paddr + s.memSize;
    if (end > memSize) {
      throw new UserError(`${what} does not fit in ${mib} MiB of memory: it loads ${hex(s.paddr)}-${hex(end - 1)} (use a larger --mem)`);
    }
    if (s.paddr < MIN_LOAD) {
      throw new UserError(`${what} loads at ${hex(s.paddr)}, below ${hex(MIN_LOAD)} (the first page holds the real-mode interrupt table and BIOS data)`);
    }
  }
  const inSegment = img.segments.some((s) => img.entry >= s.paddr && img.entry < s.paddr + s.memSize);
  if (!inSegment) throw new UserError(`${what}: its entry point ${hex(img.entry)} is outside the loaded image`);
}

/** Copy the kernel into memory and zero its .bss. */
export function loadSegments(mem: PhysicalMemory, file: Uint8Array, img: MultibootImage): void {
  for (const s of img.segments) {
    mem.writeBytes(s.paddr, file.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    if (s.memSize > s.fileSize) mem.fill(s.paddr + s.fileSize, s.memSize - s.fileSize, 0);
  }
}

/** [L:404] What QEMU's -kernel reports as memory, which we copy so that kernels written against QEMU print
 * the same: SeaBIOS's e820 map gives 639 KiB below 1 MiB (the last KiB is its extended BIOS data area)
 * and keeps the top 128 KiB of RAM for itself, so mem_upper = RAM - 1 MiB - 128 KiB. Both are
 * conservative, which the Multiboot spec allows (they are "the amount of memory", not a promise that
 * there is no more). */
export const MEM_LOWER_KIB = 639;
export const MEM_TOP_RESERVED_KIB = 128;

export function memUpperKiB(memSize: number): number {
  return Math.max(0, memSize / 1024 - 1024 - MEM_TOP_RESERVED_KIB);
}

/** Write the boot GDT, the multiboot info, its memory map, the loader name and the command line.
 *  Returns the info structure's physical address (what goes in EBX). */
export function writeBootInfo(mem: PhysicalMemory, cmdline: string, L: BootLayout = BOOT_LAYOUT): number {
  const cmd = new TextEncoder().encode(cmdline);
  if (cmd.length + 1 > L.cmdlineMax) throw new UserError(`the kernel command line is too long (${cmd.length} bytes, at most ${L.cmdlineMax - 1})`);
  const start = L.end - BLOCK;
  mem.fill(start, BLOCK, 0);

  // GDT: null, then flat 4 GiB ring-0 code (execute/read, accessed) and data (read/write, accessed).
  const FLAT_CODE_HI = 0x00cf9b00, FLAT_DATA_HI = 0x00cf9300, FLAT_LO = 0x0000ffff;
  mem.write32(L.gdt + BOOT_CS, FLAT_LO);
  mem.write32(L.gdt + BOOT_CS + 4, FLAT_CODE_HI);
  mem.write32(L.gdt + BOOT_DS, FLAT_LO);
  mem.write32(L.gdt + BOOT_DS + 4, FLAT_DATA_HI);

  // Memory map: entries of (size=20, base, length, type 1 = available); size excludes its own field.
  const E820_RAM = 1;
  const upper = memUpperKiB(mem.size) * 1024;
  const regions = [[0, MEM_LOWER_KIB * 1024], [0x100000, upper]];
  regions.forEach(([base, len], i) => {
    const e = L.mmap + i * 24;
    mem.write32(e, 20);
    mem.write32(e + 4, base);
    mem.write32(e + 8, 0);
    mem.write32(e + 12, len);
    mem.write32(e + 16, 0);
    mem.write32(e + 20, E820_RAM);
  });

  mem.writeBytes(L.loaderName, new TextEncoder().encode('lguest-ts\0'));
  mem.writeBytes(L.cmdline, cmd);
  mem.write8(L.cmdline + cmd.length, 0);

  mem.write32(L.info + MBI.flags, MI_MEMORY | MI_CMDLINE | MI_MMAP | MI_LOADER_NAME);
  mem.write32(L.info + MBI.memLower, MEM_LOWER_KIB);
  mem.write32(L.info + MBI.memUpper, memUpperKiB(mem.size));
  mem.write32(L.info + MBI.cmdline, L.cmdline);
  mem.write32(L.info + MBI.mmapLength, regions.length * 24);
  mem.write32(L.info + MBI.mmapAddr, L.mmap);
  mem.write32(L.info + MBI.loaderName, L.loaderName);
  return L.info;
}

/** The GDT limit of the boot GDT (three entries). */
export const BOOT_GDT_LIMIT = 3 * 8 - 1;

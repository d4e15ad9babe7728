/**
 * The lguest Launcher's kernel loader (abi 3.3): an ELF32 i386 ET_EXEC image whose PT_LOAD segments are
 * placed at their physical addresses (p_paddr). Every way a file can be wrong is a UserError with one line
 * saying what is wrong, and nothing is written before the whole image has been checked.
 */
import { UserError } from './errors.ts';

export interface ElfSegment {
  paddr: number;
  offset: number;
  fileSize: number;
  memSize: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
}

const ELFCLASS32 = 1, ELFCLASS64 = 2, ELFDATA2LSB = 1, ET_EXEC = 2, EM_386 = 3, PT_LOAD = 1;
const EHDR_SIZE = 52, PHDR_SIZE = 32;

/** Parse and check `file` (called `what` in messages) for a guest with `memBytes` of RAM. */
export function parseElf(file: Uint8Array, what: string, memBytes: number): ElfImage {
  if (file.length < 4 || file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) {
    throw new UserError(`${what}: not an ELF file (lguest mode boots ELF32 i386 kernels)`);
  }
  if (file.length < EHDR_SIZE) throw new UserError(`${what}: truncated ELF header`);
  if (file[4] === ELFCLASS64) throw new UserError(`${what}: a 64-bit ELF file; lguest guests are 32-bit i386 kernels`);
  if (file[4] !== ELFCLASS32) throw new UserError(`${what}: unknown ELF class ${file[4]}`);
  if (file[5] !== ELFDATA2LSB) throw new UserError(`${what}: big-endian ELF file; i386 kernels are little-endian`);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = dv.getUint16(16, true), machine = dv.getUint16(18, true);
  if (machine !== EM_386) throw new UserError(`${what}: ELF machine ${machine} is not i386 (EM_386 = 3)`);
  if (type !== ET_EXEC) throw new UserError(`${what}: ELF type ${type} is not an executable (ET_EXEC)`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true), phentsize = dv.getUint16(42, true), phnum = dv.getUint16(44, true);
  if (phnum === 0) throw new UserError(`${what}: no program headers`);
  if (phentsize < PHDR_SIZE || phoff + phnum * phentsize > file.length) throw new UserError(`${what}: program headers lie outside the file`);
  const segments: ElfSegment[] = [];
  let total = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (dv.getUint32(o, true) !== PT_LOAD) continue;
    const seg = {
      offset: dv.getUint32(o + 4, true), paddr: dv.getUint32(o + 12, true),
      fileSize: dv.getUint32(o + 16, true), memSize: dv.getUint32(o + 20, true),
    };
    if (seg.fileSize > seg.memSize) throw new UserError(`${what}: segment ${i} has more file bytes than memory bytes`);
    if (seg.offset + seg.fileSize > file.length) throw new UserError(`${what}: segment ${i} lies beyond the end of the file`);
    total += seg.memSize;
    if (seg.paddr + seg.memSize > memBytes) {
      const need = Math.ceil((seg.paddr + seg.memSize) / (1 << 20));
      throw new UserError(total > memBytes
        ? `${what}: the image (${total} bytes) is larger than the guest memory (--mem ${memBytes >> 20})`
        : `${what}: segment ${i} at physical 0x${seg.paddr.toString(16)}..0x${(seg.paddr + seg.memSize).toString(16)} lies outside the guest memory (--mem ${memBytes >> 20}; it needs at least ${need} MiB)`);
    }
    segments.push(seg);
  }
  if (segments.length === 0) throw new UserError(`${what}: no loadable (PT_LOAD) segments`);
  if (entry >= memBytes) throw new UserError(`${what}: entry point 0x${entry.toString(16)} is not a physical address inside the guest memory`);
  return { entry, segments };
}

const SHT_SYMTAB = 2, SHDR_SIZE = 40, SYM_SIZE = 16;

/**
 * Which paging an image of the lguest-ts guest runtime (guest-images/lguest/runtime) was built for, from
 * its symbol table: the runtime's entry `lguest_entry` says it is one of ours, and only the PAE build has
 * `pmd_table` (runtime/mm.c, -DCONFIG_PAE). undefined when the image does not say (no symbol table: a
 * stripped image, or a kernel of another origin): the user's --pae is then taken as given. Never throws:
 * a malformed section table just says nothing (parseElf checks what loading needs).
 */
export function runtimePaging(file: Uint8Array): 'pae' | '2level' | undefined {
  try {
    if (file.length < EHDR_SIZE || file[4] !== ELFCLASS32) return undefined;
    const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const shoff = dv.getUint32(32, true), shentsize = dv.getUint16(46, true), shnum = dv.getUint16(48, true);
    if (shoff === 0 || shentsize < SHDR_SIZE || shoff + shnum * shentsize > file.length) return undefined;
    const names = new Set<string>();
    for (let i = 0; i < shnum; i++) {
      const sh = shoff + i * shentsize;
      if (dv.getUint32(sh + 4, true) !== SHT_SYMTAB) continue;
      const off = dv.getUint32(sh + 16, true), size = dv.getUint32(sh + 20, true), link = dv.getUint32(sh + 24, true);
      if (link >= shnum || off + size > file.length) continue;
      const str = shoff + link * shentsize;
      const strOff = dv.getUint32(str + 16, true), strSize = dv.getUint32(str + 20, true);
      if (strOff + strSize > file.length) continue;
      for (let s = off; s + SYM_SIZE <= off + size; s += SYM_SIZE) {
        const n = dv.getUint32(s, true);
        if (n === 0 || n >= strSize) continue;
        let e = strOff + n;
        while (e < strOff + strSize && file[e] !== 0) e++;
        const name = Buffer.from(file.subarray(strOff + n, e)).toString('latin1');
        if (name === 'lguest_entry' || name === 'pmd_table') names.add(name);
      }
    }
    if (!names.has('lguest_entry')) return undefined;
    return names.has('pmd_table') ? 'pae' : '2level';
  } catch {
    return undefined;
  }
}

/**
 * The machine's physical memory: one SharedArrayBuffer that every vCPU worker and the main thread map.
 * Physical address 0 is byte 0 of the buffer. The CPU reaches it through its TLB with the views below;
 * everything else (loaders, the Host, devices) goes through the checked accessors, which refuse addresses
 * outside the buffer instead of silently reading `undefined` from a typed array.
 *
 * Besides the bytes, memory keeps a per-page "code generation" counter in shared memory: a vCPU that has
 * decoded instructions from a page remembers the generation it saw, and any write that goes through the
 * slow path bumps it, so decoded code never outlives the bytes it came from (see emulator/codecache.ts).
 */
export class PhysicalMemory {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  /** For the 8-byte compare-exchange of locked instructions (emulator/ops/locked.ts). */
  readonly i64: BigInt64Array;
  readonly dv: DataView;
  readonly size: number;
  readonly pages: number;
  /** Per physical page: nonzero when some vCPU holds decoded code from it (shared between workers). */
  readonly codePages: Uint8Array;
  /** Per physical page: bumped on every write that may have changed decoded code. */
  readonly codeGen: Int32Array;
  /** Per physical page, two words: a bitmap of the 64-byte chunks that hold decoded instructions, so a
   *  write next to code (data sharing a page with code) does not throw the code away. */
  readonly codeChunks: Int32Array;
  /** Bumped whenever any decoded code anywhere becomes stale (a vCPU's cached block successors check it). */
  readonly codeEpoch: Int32Array;
  /** The machine's bus lock: 1 while a vCPU does a locked read-modify-write whose operand straddles two
   *  aligned 8-byte words or two pages (emulator/ops/locked.ts), 0 otherwise. */
  readonly splitLock: Int32Array;

  constructor(size: number, shared?: { sab: SharedArrayBuffer; meta: SharedArrayBuffer }) {
    if (size <= 0 || size % 4096 !== 0 || size > 0x7fff_f000) {
      throw new RangeError(`physical memory size must be a positive multiple of 4096 below 2 GiB, not ${size}`);
    }
    this.size = size;
    this.pages = size >>> 12;
    this.sab = shared?.sab ?? new SharedArrayBuffer(size);
    const meta = shared?.meta ?? new SharedArrayBuffer(this.pages * 16 + 8);
    this.u8 = new Uint8Array(this.sab);
    this.i32 = new Int32Array(this.sab);
    this.i64 = new BigInt64Array(this.sab);
    this.dv = new DataView(this.sab);
    this.codeGen = new Int32Array(meta, 0, this.pages);
    this.codeChunks = new Int32Array(meta, this.pages * 4, this.pages * 2);
    this.codePages = new Uint8Array(meta, this.pages * 12, this.pages);
    this.codeEpoch = new Int32Array(meta, this.pages * 16, 1);
    this.splitLock = new Int32Array(meta, this.pages * 16 + 4, 1);
  }

  /** The shared buffers, to hand to a worker that builds its own PhysicalMemory over them. */
  share(): { sab: SharedArrayBuffer; meta: SharedArrayBuffer } {
    return { sab: this.sab, meta: this.codeGen.buffer as SharedArrayBuffer };
  }

  contains(addr: number, len: number): boolean {
    return addr >= 0 && len >= 0 && addr + len <= this.size;
  }

  private check(addr: number, len: number): void {
    if (!this.contains(addr, len)) {
      throw new RangeError(`physical access of ${len} bytes at 0x${(addr >>> 0).toString(16)} is outside memory`);
    }
  }

  /** Note that bytes [addr, addr+len) changed behind the CPU's back: decoded code there is stale. */
  touched(addr: number, len: number): void {
    if (len <= 0) return;
    for (let p = addr >>> 12, last = (addr + len - 1) >>> 12; p <= last; p++) {
      if (this.codePages[p] !== 0) this.invalidateCode(p);
    }
  }

  /** Does a write of `size` bytes at pa (within one page) touch decoded instructions? */
  codeHit(pa: number, size: number): boolean {
    const page = pa >>> 12;
    if (this.codePages[page] === 0) return false;
    const first = (pa & 0xfff) >>> 6;
    const last = ((pa & 0xfff) + size - 1) >>> 6;
    for (let c = first; c <= last && c < 64; c++) {
      if ((this.codeChunks[page * 2 + (c >>> 5)] & (1 << (c & 31))) !== 0) return true;
    }
    return false;
  }

  /** Record that bytes [off, end) of page hold decoded instructions (end <= 4096). */
  markCode(page: number, off: number, end: number): void {
    for (let c = off >>> 6, last = (end - 1) >>> 6; c <= last; c++) {
      Atomics.or(this.codeChunks, page * 2 + (c >>> 5), 1 << (c & 31));
    }
  }

  /** Every vCPU's decoded code from this page is stale: bump its generation and forget its chunks. */
  invalidateCode(page: number): void {
    Atomics.add(this.codeGen, page, 1);
    Atomics.add(this.codeEpoch, 0, 1);
    Atomics.store(this.codeChunks, page * 2, 0);
    Atomics.store(this.codeChunks, page * 2 + 1, 0);
    Atomics.store(this.codePages, page, 0);
  }

  read8(addr: number): number { this.check(addr, 1); return this.u8[addr]; }
  read16(addr: number): number { this.check(addr, 2); return this.dv.getUint16(addr, true); }
  read32(addr: number): number { this.check(addr, 4); return this.dv.getInt32(addr, true); }
  write8(addr: number, v: number): void { this.check(addr, 1); this.u8[addr] = v; this.touched(addr, 1); }
  write16(addr: number, v: number): void { this.check(addr, 2); this.dv.setUint16(addr, v, true); this.touched(addr, 2); }
  write32(addr: number, v: number): void { this.check(addr, 4); this.dv.setInt32(addr, v, true); this.touched(addr, 4); }

  readBytes(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.u8.slice(addr, addr + len);
  }

  writeBytes(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    this.u8.set(data, addr);
    this.touched(addr, data.length);
  }

  fill(addr: number, len: number, value = 0): void {
    this.check(addr, len);
    this.u8.fill(value, addr, addr + len);
    this.touched(addr, len);
  }
}

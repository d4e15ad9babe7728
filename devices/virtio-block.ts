/**
 * The virtio block device (type 2) the Launcher offers with `run --block FILE` (abi 7.3), after the
 * console: one request queue of 256 entries; config = the first 16 bytes of virtio_blk_config (capacity
 * u64 in 512-byte sectors, size_max u32, seg_max u32 = 254); features BARRIER (0) and SEG_MAX (2), as
 * lguest's Launcher offered them.
 *
 * A request is one chain: a 16-byte readable header {type u32, ioprio u32, sector u64}, the data
 * descriptors, and a last writable descriptor whose final byte receives the status (0 OK, 1 IOERR,
 * 2 UNSUPP). Type 0 reads (into the writable descriptors, the status byte excluded), type 1 (OUT) writes
 * (from the readable descriptors after the header); the SCSI bit (2) and every other type (FLUSH 4,
 * GET_ID 8: never offered) get UNSUPP; bit 31 (BARRIER) syncs the file before and after the request. The
 * used length is the bytes written into the guest's buffers (data read, plus the status byte).
 *
 * Where the ABI leaves us a choice: a request that reaches past the last sector gets IOERR with nothing
 * read or written, and the guest goes on (lguest's Launcher died on a write past the end and returned
 * short reads as OK). A chain that is not a request at all (no header of exactly 16 bytes, no writable
 * descriptor for the status) kills the guest, as it killed lguest's Launcher. An error of the file itself
 * (EIO, a file that shrank underneath) is IOERR.
 *
 * The I/O goes through a BlockBackend: FileBackend is the Launcher's file (fs.readSync, writeSync,
 * fsyncSync on the descriptor the Launcher opened); tests may give a memory.
 */
import { fstatSync, fsyncSync, readSync, writeSync } from 'node:fs';
import { VirtioDevice, type DeviceRecord, type DeviceSpec } from './virtio-device.ts';
import { DeviceError, VQ_NUM, type Budget, type Seg, type VirtioHost } from './virtqueue.ts';

export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_BLK_F = { BARRIER: 0, SEG_MAX: 2 } as const;
export const VIRTIO_BLK_T = { IN: 0, OUT: 1, SCSI_CMD: 2, FLUSH: 4, GET_ID: 8, BARRIER: 0x80000000 } as const;
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
export const SECTOR_SIZE = 512;
/** Data descriptors per request the guest may use: the ring less the header and the status (lguest). */
export const BLK_SEG_MAX = VQ_NUM - 2;
export const BLK_HEADER_SIZE = 16;
/** The config's length: capacity, size_max, seg_max (lguest stopped before the geometry). */
export const BLK_CONFIG_SIZE = 16;
/** The most data bytes one request may move (ours: it bounds the work of one request, as KICK_BYTES bounds
 *  a turn's; a larger request gets IOERR with nothing moved). Linux never asks for more than a few MiB. */
export const BLK_REQUEST_MAX = 16 << 20;

/** The Launcher's block file as the worker receives it. */
export interface BlockFile {
  path: string;
  /** Opened read-write by the Launcher (any thread of the process may use it). */
  fd: number;
  /** Sectors: the file's size / 512, rounded down (a partial last sector is not offered). */
  capacity: number;
}

/** Where a block device's bytes live. Each call moves all the bytes or throws. */
export interface BlockBackend {
  read(into: Uint8Array, position: number): void;
  write(from: Uint8Array, position: number): void;
  flush(): void;
}

/** A file, through its descriptor. */
export class FileBackend implements BlockBackend {
  constructor(readonly fd: number) {}
  read(into: Uint8Array, position: number): void {
    for (let done = 0; done < into.length;) {
      const n = readSync(this.fd, into, done, into.length - done, position + done);
      if (n <= 0) throw new Error(`short read at byte ${position + done} (the file is ${fstatSync(this.fd).size} bytes)`);
      done += n;
    }
  }
  write(from: Uint8Array, position: number): void {
    for (let done = 0; done < from.length;) done += writeSync(this.fd, from, done, from.length - done, position + done);
  }
  flush(): void { fsyncSync(this.fd); }
}

/** The block device as the Launcher offers it. */
export function blockSpec(capacity: number): DeviceSpec {
  const config = new Uint8Array(BLK_CONFIG_SIZE);
  const v = new DataView(config.buffer);
  v.setUint32(0, capacity % 2 ** 32, true);
  v.setUint32(4, Math.floor(capacity / 2 ** 32), true);
  v.setUint32(8, 0, true); // size_max: VIRTIO_BLK_F_SIZE_MAX is not offered
  v.setUint32(12, BLK_SEG_MAX, true);
  return {
    type: VIRTIO_ID_BLOCK, name: 'block', vqNames: ['request'],
    features: (1 << VIRTIO_BLK_F.BARRIER) | (1 << VIRTIO_BLK_F.SEG_MAX), config,
  };
}

/** The largest piece moved between the file and guest memory at once. */
const CHUNK = 1 << 20;

export class VirtioBlock extends VirtioDevice {
  /** Requests by outcome (statistics, tests). */
  readonly stats = { reads: 0, writes: 0, barriers: 0, unsupported: 0, ioErrors: 0, sectorsRead: 0, sectorsWritten: 0 };

  constructor(host: VirtioHost, pageGpa: number, record: DeviceRecord, readonly capacity: number, readonly backend: BlockBackend) {
    super(host, pageGpa, record);
  }

  protected kick(): void {
    this.vqs[0].service((c, b) => this.request(c.segs, c.head, b));
  }

  /** [D:400] One request: returns the bytes written into the guest's buffers. A request is done whole; its data
   *  counts against the turn's budget (a turn starts no request once the budget is spent). */
  private request(segs: Seg[], head: number, budget: Budget): number {
    const h = this.host;
    const outs = segs.filter((s) => !s.write), ins = segs.filter((s) => s.write);
    if (outs.length === 0 || ins.length === 0) {
      throw new DeviceError(`request ${head} has ${outs.length} readable and ${ins.length} writable descriptors (a request needs a header and a status byte)`);
    }
    if (outs[0].len !== BLK_HEADER_SIZE) throw new DeviceError(`request ${head}: the header descriptor is ${outs[0].len} bytes, not ${BLK_HEADER_SIZE}`);
    const last = ins[ins.length - 1];
    if (last.len === 0) throw new DeviceError(`request ${head}: the status descriptor has no room (len 0)`);
    const hdr = outs[0].addr;
    const type = h.read32(hdr) >>> 0;
    const sector = (h.read32(hdr + 8) >>> 0) + (h.read32(hdr + 12) >>> 0) * 2 ** 32;
    const barrier = (type & VIRTIO_BLK_T.BARRIER) !== 0;
    const op = (type & ~VIRTIO_BLK_T.BARRIER) >>> 0;
    let status: number = VIRTIO_BLK_S.OK, written = 0;
    if (barrier) {
      this.stats.barriers++;
      if (!this.attempt(() => this.backend.flush())) status = VIRTIO_BLK_S.IOERR;
    }
    if (op & VIRTIO_BLK_T.SCSI_CMD || (op !== VIRTIO_BLK_T.IN && op !== VIRTIO_BLK_T.OUT)) {
      this.stats.unsupported++;
      status = VIRTIO_BLK_S.UNSUPP;
    } else if (status === VIRTIO_BLK_S.OK) {
      const write = op === VIRTIO_BLK_T.OUT;
      // Writes: the readable descriptors after the header. Reads: the writable ones, the status byte not.
      const data = write ? outs.slice(1) : ins.map((s, i) => (i === ins.length - 1 ? { ...s, len: s.len - 1 } : s));
      const total = data.reduce((n, s) => n + s.len, 0);
      const start = sector * SECTOR_SIZE;
      if (total > BLK_REQUEST_MAX || start + total > this.capacity * SECTOR_SIZE) {
        status = VIRTIO_BLK_S.IOERR;
      } else if ((budget.left -= total, !this.attempt(() => this.transfer(data, start, write)))) {
        status = VIRTIO_BLK_S.IOERR;
      } else if (write) {
        this.stats.writes++;
        this.stats.sectorsWritten += Math.ceil(total / SECTOR_SIZE);
      } else {
        this.stats.reads++;
        this.stats.sectorsRead += Math.ceil(total / SECTOR_SIZE);
        written = total;
      }
    }
    if (barrier && !this.attempt(() => this.backend.flush()) && status === VIRTIO_BLK_S.OK) status = VIRTIO_BLK_S.IOERR;
    if (status === VIRTIO_BLK_S.IOERR) this.stats.ioErrors++;
    h.writeBytes(last.addr + last.len - 1, Uint8Array.of(status));
    return written + 1;
  }

  /** Move the data of `segs` between guest memory and the backend from byte `position` on. */
  private transfer(segs: Seg[], position: number, write: boolean): void {
    for (const s of segs) {
      for (let done = 0; done < s.len;) {
        const n = Math.min(CHUNK, s.len - done);
        if (write) {
          this.backend.write(this.host.readBytes(s.addr + done, n), position);
        } else {
          const buf = new Uint8Array(n);
          this.backend.read(buf, position);
          this.host.writeBytes(s.addr + done, buf);
        }
        done += n;
        position += n;
      }
    }
  }

  /** Run a backend call: false when the file failed (the guest gets IOERR). */
  private attempt(f: () => void): boolean {
    try {
      f();
      return true;
    } catch (e) {
      if (e instanceof DeviceError) throw e;
      return false;
    }
  }
}

/**
 * QEMU's fw_cfg in its I/O port form (docs/specs/fw_cfg.rst in QEMU): a 16-bit selector written to
 * 0x510, the selected item's bytes read one at a time from 0x511 (past the end: 0). Items:
 * signature "QEMU" (0x0000), ID 1 (0x0001: the traditional interface; no DMA), UUID (0x0002, zeros),
 * RAM size (0x0003, 64-bit little-endian), CPU count (0x0005, 16-bit) and max CPUs (0x000F), and the
 * file directory (0x0019: a big-endian count, then per file size (BE32), select (BE16), reserved,
 * name[56]) listing `etc/e820` (the memory map QEMU gives SeaBIOS: RAM from 0, 20 bytes per entry)
 * and `etc/boot-fail-wait`. A DMA interface is not offered, so port 0x514 is not decoded.
 */
export interface FwCfgOptions {
  memBytes: number;
  cpus: number;
}

const FILE_DIR = 0x19;
const FIRST_FILE = 0x20;

export class FwCfg {
  private readonly items = new Map<number, Uint8Array>();
  private sel = 0;
  private off = 0;

  constructor(opts: FwCfgOptions) {
    const le = (v: number, n: number) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = Math.floor(v / 2 ** (8 * i)) & 0xff; return b; };
    this.items.set(0x00, new TextEncoder().encode('QEMU'));
    this.items.set(0x01, le(1, 4));
    this.items.set(0x02, new Uint8Array(16));
    this.items.set(0x03, le(opts.memBytes, 8));
    this.items.set(0x05, le(opts.cpus, 2));
    this.items.set(0x0f, le(opts.cpus, 2));
    const e820 = new Uint8Array(20);
    e820.set(le(0, 8), 0); e820.set(le(opts.memBytes, 8), 8); e820.set(le(1, 4), 16);
    const files: [string, Uint8Array][] = [['etc/boot-fail-wait', le(5, 4)], ['etc/e820', e820]];
    const dir = new Uint8Array(4 + 64 * files.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, files.length);
    files.forEach(([name, data], i) => {
      const sel = FIRST_FILE + i;
      this.items.set(sel, data);
      dv.setUint32(4 + i * 64, data.length);
      dv.setUint16(8 + i * 64, sel);
      dir.set(new TextEncoder().encode(name), 12 + i * 64);
    });
    this.items.set(FILE_DIR, dir);
  }

  in(port: number, size: number): number {
    if (port !== 0x511) return size === 1 ? 0xff : 0xffff;
    const item = this.items.get(this.sel);
    const v = item !== undefined && this.off < item.length ? item[this.off] : 0;
    this.off++;
    return v;
  }

  out(port: number, v: number): void {
    if (port === 0x510) {
      this.sel = v & 0xffff;
      this.off = 0;
    }
  }
}

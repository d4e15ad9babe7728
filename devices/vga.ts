/**
 * VGA text mode 80x25 as a kernel sees it: the character/attribute cells at 0xB8000 (ordinary RAM
 * here, read back when the screen is shown) and the CRT controller's index/data ports 0x3D4/0x3D5
 * (registers 0x00-0x18; the cursor shape 0x0A/0x0B, start address 0x0C/0x0D and cursor location
 * 0x0E/0x0F are what text-mode kernels use), the miscellaneous output register (0x3C2 write, 0x3CC
 * read: 0x67, colour, I/O at 0x3Dx) and input status 1 (0x3DA: the retrace bits toggle on each read, so
 * a kernel that waits for retrace goes on).
 * `screen(mem)` renders the 25 lines (trailing blanks trimmed, attributes dropped, code page 437's
 * printable ASCII as is, other bytes as the nearest ASCII or '?'), and `written(mem)` says whether the
 * kernel put anything on it.
 */
export const VGA_TEXT = 0xb8000;
export const COLS = 80, ROWS = 25;

export class Vga {
  readonly crtc = new Uint8Array(0x19);
  crtcIndex = 0;
  misc = 0x67;
  private retrace = 0;

  constructor() {
    this.crtc[0x0a] = 0x0d; this.crtc[0x0b] = 0x0e; // the BIOS's underline cursor
  }

  in(port: number): number {
    switch (port) {
      case 0x3d4: return this.crtcIndex;
      case 0x3d5: return this.crtcIndex < this.crtc.length ? this.crtc[this.crtcIndex] : 0xff;
      case 0x3cc: return this.misc;
      case 0x3da: this.retrace ^= 0x09; return this.retrace;
      default: return 0xff;
    }
  }

  out(port: number, v: number): void {
    if (port === 0x3d4) this.crtcIndex = v & 0x7f;
    else if (port === 0x3d5 && this.crtcIndex < this.crtc.length) this.crtc[this.crtcIndex] = v;
    else if (port === 0x3c2) this.misc = v;
  }

  /** The cursor's cell (row * 80 + column). */
  cursor(): number {
    return (this.crtc[0x0e] << 8) | this.crtc[0x0f];
  }

  private start(): number {
    return ((this.crtc[0x0c] << 8) | this.crtc[0x0d]) % (COLS * ROWS * 2);
  }

  /** Did the kernel write anything to the text screen (any nonzero byte in its cells)? */
  written(mem: Uint8Array): boolean {
    if (mem.length < VGA_TEXT + 0x8000) return false;
    for (let i = 0; i < 0x8000; i++) if (mem[VGA_TEXT + i] !== 0) return true;
    return false;
  }

  /** The screen as text lines (trailing spaces and blank lines at the end dropped). */
  screen(mem: Uint8Array): string[] {
    const lines: string[] = [];
    if (mem.length < VGA_TEXT + 0x8000) return lines;
    const base = VGA_TEXT + this.start() * 2;
    for (let r = 0; r < ROWS; r++) {
      let s = '';
      for (let c = 0; c < COLS; c++) {
        const ch = mem[base + (r * COLS + c) * 2];
        s += ch >= 0x20 && ch < 0x7f ? String.fromCharCode(ch) : ch === 0 ? ' ' : '?';
      }
      lines.push(s.replace(/ +$/, ''));
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }
}

/**
 * The 8042 PS/2 controller (ports 0x60 data, 0x64 status/command) with a keyboard on IRQ 1, per the
 * IBM PC AT technical reference and QEMU's pckbd.c/ps2.c. Input bytes (stdin) become scan code set 1
 * make and break codes (the translated set the controller's XLATE bit gives, which SeaBIOS leaves on).
 * - Status: OBF, SYS, A2 (last write was a command), not-inhibited. Command byte 0x61 at hand-off
 *   (keyboard interrupt, SYS, mouse disabled, XLATE), read by 0x20 and written by 0x60.
 * - Controller commands: 0x20/0x60, 0xA7/0xA8/0xA9 (mouse port: no mouse; test answers 0), 0xAA
 *   (self test: 0x55), 0xAB (port test: 0), 0xAD/0xAE (disable/enable keyboard), 0xC0 (input port),
 *   0xD0/0xD1 (output port: A20 is always on), 0xD2 (echo as keyboard data), 0xFE and 0xF0-0xFF with
 *   bit 0 clear (pulse reset: `onReset`).
 * - Keyboard commands: 0xFF (reset: FA AA), 0xF2 (identify: FA AB 41), 0xED/0xF0/0xF3 with their
 *   argument (FA each; F0 00 answers the set, 2 untranslated = 0x41), 0xEE (echo: EE), 0xF4/0xF5/0xF6
 *   (FA), anything else 0xFE (resend).
 * - IRQ 1 is raised while keyboard data waits in the output buffer and the command byte enables it.
 */
const ST_OBF = 0x01, ST_SYS = 0x04, ST_A2 = 0x08, ST_UNLOCKED = 0x10;
const CB_KBD_INT = 0x01, CB_KBD_DISABLE = 0x10;

// scan code set 1 make codes of the US layout; bit 8 = with shift
const SC1: Record<string, number> = {};
const rows: [string, string, number][] = [
  ['1234567890-=', '!@#$%^&*()_+', 0x02], ['qwertyuiop[]', 'QWERTYUIOP{}', 0x10], ["asdfghjkl;'`", 'ASDFGHJKL:"~', 0x1e],
  ['\\zxcvbnm,./', '|ZXCVBNM<>?', 0x2b],
];
for (const [plain, shifted, first] of rows) {
  for (let i = 0; i < plain.length; i++) {
    SC1[plain[i]] = first + i;
    SC1[shifted[i]] = (first + i) | 0x100;
  }
}
SC1[' '] = 0x39; SC1['\n'] = 0x1c; SC1['\r'] = 0x1c; SC1['\t'] = 0x0f; SC1['\b'] = 0x0e; SC1['\x7f'] = 0x0e; SC1['\x1b'] = 0x01;

/** The scan code set 1 bytes for one input byte (empty when it has no key). */
export function scanCodes(byte: number): number[] {
  if (byte >= 1 && byte <= 26 && byte !== 8 && byte !== 9 && byte !== 10 && byte !== 13) {
    const k = SC1[String.fromCharCode(byte + 96)]; // Ctrl-letter
    return [0x1d, k, k | 0x80, 0x9d];
  }
  const k = SC1[String.fromCharCode(byte)];
  if (k === undefined) return [];
  const code = k & 0xff;
  return (k & 0x100) !== 0 ? [0x2a, code, code | 0x80, 0xaa] : [code, code | 0x80];
}

export class Ps2 {
  status = ST_SYS | ST_A2 | ST_UNLOCKED;
  cmdByte = 0x61;
  private obuf: number[] = []; // the controller's output queue (the head is in the output buffer)
  private pendingCmd = -1; // controller command awaiting its data byte
  private kbdArg = -1; // keyboard command awaiting its argument
  private scanSet = 2;
  private irqLevel = false;
  private readonly input: number[] = [];
  /** Set once the guest reads the data or status port, or unmasks IRQ 1 in a PIC it programmed itself
   *  (devices/pc.ts): bare.ts routes stdin here then. */
  used = false;

  constructor(private readonly irq1: (level: boolean) => void, private readonly onReset: () => void) {}

  /** Queue input bytes (each becomes a key press and release). */
  feed(bytes: Iterable<number>): void {
    for (const b of bytes) this.input.push(...scanCodes(b));
    this.pump();
  }

  get queued(): number {
    return this.input.length;
  }

  private pump(): void {
    if (this.obuf.length === 0 && this.input.length > 0 && (this.cmdByte & CB_KBD_DISABLE) === 0) this.obuf.push(this.input.shift()!);
    if (this.obuf.length > 0) this.status |= ST_OBF; else this.status &= ~ST_OBF;
    const on = this.obuf.length > 0 && (this.cmdByte & CB_KBD_INT) !== 0;
    if (on !== this.irqLevel) {
      this.irqLevel = on;
      this.irq1(on);
    }
  }

  private reply(...bytes: number[]): void {
    this.obuf.push(...bytes);
  }

  in(port: number): number {
    this.used = true;
    if (port === 0x64) return this.status;
    const v = this.obuf.length > 0 ? this.obuf.shift()! : 0;
    // lower IRQ 1 before presenting the next byte, so each byte is a new edge
    if (this.irqLevel) { this.irqLevel = false; this.irq1(false); }
    this.pump();
    return v;
  }

  out(port: number, v: number): void {
    if (port === 0x64) {
      this.status |= ST_A2;
      this.command(v);
    } else {
      this.status &= ~ST_A2;
      this.data(v);
    }
    this.pump();
  }

  private command(v: number): void {
    switch (v) {
      case 0x20: this.reply(this.cmdByte); break;
      case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4: this.pendingCmd = v; break;
      case 0xa7: case 0xa8: break;
      case 0xa9: this.reply(0x00); break;
      case 0xaa: this.reply(0x55); break;
      case 0xab: this.reply(0x00); break;
      case 0xad: this.cmdByte |= CB_KBD_DISABLE; break;
      case 0xae: this.cmdByte &= ~CB_KBD_DISABLE; break;
      case 0xc0: this.reply(0x00); break;
      case 0xd0: this.reply(0x03); break; // A20 on, not in reset
      default:
        if (v >= 0xf0 && (v & 1) === 0) this.onReset();
        break;
    }
  }

  private data(v: number): void {
    const c = this.pendingCmd;
    this.pendingCmd = -1;
    if (c === 0x60) { this.cmdByte = v; return; }
    if (c === 0xd1) { if ((v & 1) === 0) this.onReset(); return; }
    if (c === 0xd2) { this.reply(v); return; }
    if (c === 0xd3 || c === 0xd4) return; // no mouse
    this.keyboard(v);
  }

  private keyboard(v: number): void {
    this.cmdByte &= ~CB_KBD_DISABLE; // a write to the keyboard enables its port, as on the 8042
    if (this.kbdArg >= 0) {
      const cmd = this.kbdArg;
      this.kbdArg = -1;
      if (cmd === 0xf0) {
        if (v === 0) this.reply(0xfa, this.scanSet === 1 ? 0x43 : this.scanSet === 2 ? 0x41 : 0x3f);
        else { this.scanSet = v; this.reply(0xfa); }
      } else this.reply(0xfa);
      return;
    }
    switch (v) {
      case 0xff: this.input.length = 0; this.reply(0xfa, 0xaa); break;
      case 0xf2: this.reply(0xfa, 0xab, 0x41); break;
      case 0xed: case 0xf0: case 0xf3: this.kbdArg = v; this.reply(0xfa); break;
      case 0xee: this.reply(0xee); break;
      case 0xf4: case 0xf5: case 0xf6: case 0xf7: case 0xf8: case 0xf9: case 0xfa: this.reply(0xfa); break;
      default: this.reply(0xfe); break;
    }
  }
}

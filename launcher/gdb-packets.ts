/**
 * The byte layer of the GDB remote serial protocol (gdb's manual, "Overview" of "Remote Protocol"):
 * packets `$payload#cc` where cc is the sum of the payload's bytes modulo 256 in two hex digits, the
 * acknowledgements `+` and `-`, and a lone 0x03 byte outside a packet for Ctrl-C. Binary data escapes
 * `#`, `$`, `}` and `*` as `}` followed by the byte XOR 0x20. The session (launcher/gdb-server.ts) sees
 * only whole, checked packets.
 */

/** The largest packet we accept or send (also what qSupported's PacketSize announces). */
export const MAX_PACKET = 0x4000;

const DOLLAR = 0x24, HASH = 0x23, ESCAPE = 0x7d, STAR = 0x2a, PLUS = 0x2b, MINUS = 0x2d;
/** Ctrl-C: gdb's request to stop a running target. */
export const INTERRUPT = 0x03;

/** What the parser found in the byte stream. */
export type PacketEvent =
  | { type: 'packet'; data: Buffer }
  | { type: 'ack' }
  | { type: 'nak' }
  | { type: 'interrupt' }
  /** A packet that cannot be used: a wrong checksum, a checksum that is not hex, or too long. */
  | { type: 'bad'; reason: string };

export function checksum(data: Uint8Array): number {
  let sum = 0;
  for (const b of data) sum = (sum + b) & 0xff;
  return sum;
}

function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

const enum State { Idle, Payload, Check1, Check2 }

/** Splits gdb's byte stream into events. Feed it whatever arrives; it keeps partial packets. */
export class PacketParser {
  private state = State.Idle;
  private buf = Buffer.alloc(MAX_PACKET + 16);
  private len = 0;
  private overflow = false;
  private check = 0;

  feed(chunk: Uint8Array): PacketEvent[] {
    const out: PacketEvent[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case State.Idle:
          if (b === DOLLAR) this.start();
          else if (b === PLUS) out.push({ type: 'ack' });
          else if (b === MINUS) out.push({ type: 'nak' });
          else if (b === INTERRUPT) out.push({ type: 'interrupt' });
          // anything else between packets is noise: ignored
          break;
        case State.Payload:
          if (b === HASH) this.state = State.Check1;
          else if (b === DOLLAR) {
            // a packet that never ended: drop it and start again with this one
            out.push({ type: 'bad', reason: 'packet cut short by another' });
            this.start();
          } else if (this.len < this.buf.length) this.buf[this.len++] = b;
          else this.overflow = true;
          break;
        case State.Check1: {
          const d = hexDigit(b);
          this.check = d < 0 ? -1 : d << 4;
          this.state = State.Check2;
          break;
        }
        case State.Check2: {
          const d = hexDigit(b);
          const data = this.buf.subarray(0, this.len);
          this.state = State.Idle;
          if (this.overflow) out.push({ type: 'bad', reason: `packet longer than ${MAX_PACKET} bytes` });
          else if (this.check < 0 || d < 0) out.push({ type: 'bad', reason: 'checksum is not two hex digits' });
          else if ((this.check | d) !== checksum(data)) out.push({ type: 'bad', reason: 'wrong checksum' });
          else out.push({ type: 'packet', data: Buffer.from(data) });
          break;
        }
      }
    }
    return out;
  }

  private start(): void {
    this.state = State.Payload;
    this.len = 0;
    this.overflow = false;
  }
}

/** `$payload#cc`, with the bytes the protocol reserves escaped (so `*` is never read as run-length
 *  encoding and binary replies survive). */
export function framePacket(payload: string | Uint8Array): Buffer {
  const src = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const esc: number[] = [];
  for (const b of src) {
    if (b === DOLLAR || b === HASH || b === ESCAPE || b === STAR) esc.push(ESCAPE, b ^ 0x20);
    else esc.push(b);
  }
  const body = Buffer.from(esc);
  return Buffer.concat([Buffer.from('$'), body, Buffer.from('#' + checksum(body).toString(16).padStart(2, '0'))]);
}

/** Undo the escaping of binary data (an X packet's). A trailing lone `}` is malformed: undefined. */
export function unescapeBinary(data: Uint8Array): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== ESCAPE) out.push(data[i]);
    else if (i + 1 < data.length) out.push(data[++i] ^ 0x20);
    else return undefined;
  }
  return Uint8Array.from(out);
}

// ---- hex, as the protocol writes numbers and bytes ----

const HEX_RE = /^[0-9a-fA-F]+$/;

/** A hex number of at most 8 digits (addresses, lengths, register numbers); undefined when malformed. */
export function parseHex(s: string): number | undefined {
  if (!HEX_RE.test(s) || s.replace(/^0+/, '').length > 8) return undefined;
  return parseInt(s, 16);
}

/** Hex text to bytes (two digits each); undefined when malformed. */
export function hexToBytes(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || (s.length > 0 && !HEX_RE.test(s))) return undefined;
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** A 32-bit value as gdb shows a register in a g packet: 4 bytes little-endian, in hex. */
export function le32Hex(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b.toString('hex');
}

/** The inverse of le32Hex; undefined unless exactly 8 hex digits. */
export function parseLe32(s: string): number | undefined {
  if (s.length !== 8 || !HEX_RE.test(s)) return undefined;
  return Buffer.from(s, 'hex').readUInt32LE(0);
}

/** Text as hex (qThreadExtraInfo, qRcmd output). */
export function textToHex(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

/**
 * A disassembler for i386 code, for the debugger, traces, error messages and tests. It is not part of the
 * CPU: the emulator decodes with its own decoder (emulator/decoder.ts); this wraps iced-x86, the x86
 * decoder compiled to WebAssembly, so a human can read what the guest was running.
 *
 * Output is Intel syntax, lowercase, hex numbers written `0x1f`, one space after each operand comma:
 *   01 d8                add eax, ebx
 *   ff 35 78 56 34 12    push dword ptr [0x12345678]
 *   eb fe                jmp 0x100a
 * An encoding iced-x86 rejects in 32-bit mode shows as `(bad)` and covers one byte, so the listing
 * resynchronises on the next byte as objdump does.
 *
 * iced-x86 is a CommonJS package that loads its .wasm file synchronously when required; we load it on the
 * first call only, so importing this module costs nothing for code that never disassembles.
 */
import { createRequire } from 'node:module';
import type * as IcedX86 from 'iced-x86';

/** One decoded instruction of a listing. */
export interface DisassembledInstruction {
  /** Linear address of the instruction (the `eip` given, plus the lengths of those before it). */
  eip: number;
  /** Length in bytes (1 for `(bad)`). */
  length: number;
  /** The instruction's bytes as lowercase hex pairs separated by spaces, e.g. `01 d8`. */
  bytes: string;
  /** Intel syntax, e.g. `add eax, ebx`, or `(bad)`. */
  text: string;
}

/** What `(bad)` says: the text shown for an encoding that is not a valid 32-bit instruction. */
export const BAD_INSTRUCTION_TEXT = '(bad)';

/** The code size we decode for: the emulated CPU is an i386 in 32-bit protected mode. */
const BITNESS_32 = 32;

/** The longest an x86 instruction may be; a `(bad)` at the end of a buffer never needs more. */
const MAX_INSTRUCTION_LENGTH = 15;

interface IcedState {
  iced: typeof IcedX86;
  formatter: IcedX86.Formatter;
  /** Reused for every decode (decodeOut), so a listing allocates no WASM object per instruction. */
  instruction: IcedX86.Instruction;
}

let state: IcedState | undefined;

/**
 * Loads iced-x86 and builds the formatter once. The formatter and the scratch instruction live as long as
 * the process; each call's Decoder is freed before the call returns.
 */
function icedState(): IcedState {
  if (state !== undefined) return state;
  const require = createRequire(import.meta.url);
  const iced = require('iced-x86') as typeof IcedX86;
  const formatter = new iced.Formatter(iced.FormatterSyntax.Intel);
  formatter.uppercaseAll = false;
  formatter.uppercaseHex = false;
  formatter.hexPrefix = '0x';
  formatter.hexSuffix = '';
  formatter.smallHexNumbersInDecimal = false;
  formatter.leadingZeros = false;
  formatter.branchLeadingZeros = false;
  formatter.showBranchSize = false;
  formatter.spaceAfterOperandSeparator = true;
  state = { iced, formatter, instruction: new iced.Instruction() };
  return state;
}

/** Lowercase hex pairs separated by spaces. */
function hexBytes(bytes: Uint8Array, start: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    const byte = bytes[start + i];
    out += (i === 0 ? '' : ' ') + (byte < 0x10 ? '0' : '') + byte.toString(16);
  }
  return out;
}

/**
 * Disassembles `bytes` as 32-bit code loaded at `eip`: at most `count` instructions, or until the bytes
 * run out (an instruction cut off by the end of `bytes` shows as `(bad)`).
 */
export function disassemble(bytes: Uint8Array, eip: number, count = Infinity): DisassembledInstruction[] {
  const listing: DisassembledInstruction[] = [];
  if (bytes.length === 0 || count <= 0) return listing;
  const { iced, formatter, instruction } = icedState();
  const decoder = new iced.Decoder(BITNESS_32, bytes, iced.DecoderOptions.None);
  try {
    let position = 0;
    decoder.ip = BigInt(eip >>> 0);
    while (position < bytes.length && listing.length < count) {
      const address = (eip + position) >>> 0;
      decoder.decodeOut(instruction);
      if (instruction.code === iced.Code.INVALID) {
        listing.push({ eip: address, length: 1, bytes: hexBytes(bytes, position, 1), text: BAD_INSTRUCTION_TEXT });
        // Resynchronise on the next byte: iced moved past everything it looked at.
        position += 1;
        decoder.position = position;
        decoder.ip = BigInt((eip + position) >>> 0);
        continue;
      }
      const length = instruction.length;
      listing.push({
        eip: address,
        length,
        bytes: hexBytes(bytes, position, length),
        text: formatter.format(instruction),
      });
      position += length;
    }
  } finally {
    decoder.free();
  }
  return listing;
}

/** The text of the one instruction at the start of `bytes` (loaded at `eip`), e.g. `add eax, ebx` or `(bad)`. */
export function disassembleOne(bytes: Uint8Array, eip: number): string {
  const window = bytes.length > MAX_INSTRUCTION_LENGTH ? bytes.subarray(0, MAX_INSTRUCTION_LENGTH) : bytes;
  return disassemble(window, eip, 1)[0]?.text ?? BAD_INSTRUCTION_TEXT;
}

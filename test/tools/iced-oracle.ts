/**
 * iced-x86 as an oracle for our decoder: what length (or which fault) a P6-class i386 gives an instruction
 * byte string in 32-bit code, and a generator of random byte strings in the opcode space the emulator
 * implements. Used by test/unit/decoder-iced.test.ts and by `tsx test/tools/decoder-iced.ts`.
 *
 * iced-x86 knows every x86 instruction up to today's; our CPU is a P6 without FPU. Where the two differ
 * inside the sampled space, a named rule in P6_RULES says what a P6 does instead (raise #UD), or that the
 * pattern is not compared (with the reason). Everything else must match iced exactly: the length when iced
 * decodes a valid instruction, #UD when iced says the encoding is invalid, #GP when it is longer than
 * 15 bytes.
 *
 * The contract checked (emulator/decoder.ts):
 *   probeInstruction(code, offset, codeSize32) -> 1..15 (length), PROBE_UD (-6) or PROBE_GP (-13).
 */
import { createRequire } from 'node:module';
import type * as IcedX86 from 'iced-x86';

/** probeInstruction's answer for an encoding that raises #UD (the vector number, negated). */
export const PROBE_UD = -6;
/** probeInstruction's answer for an instruction longer than 15 bytes (#GP, negated). */
export const PROBE_GP = -13;
/** The architectural limit on instruction length. */
export const MAX_INSTRUCTION_LENGTH = 15;

export type ProbeInstruction = (code: Uint8Array, offset: number, codeSize32?: boolean) => number;

// ---------------------------------------------------------------------------------------------------------
// The opcode space sampled.

const PREFIX_OPERAND_SIZE = 0x66;
const PREFIX_ADDRESS_SIZE = 0x67;
const PREFIX_LOCK = 0xf0;
const PREFIX_REPNE = 0xf2;
const PREFIX_REP = 0xf3;
const SEGMENT_PREFIXES = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65] as const;
export const LEGACY_PREFIXES: readonly number[] = [
  PREFIX_OPERAND_SIZE, PREFIX_ADDRESS_SIZE, PREFIX_LOCK, PREFIX_REPNE, PREFIX_REP, ...SEGMENT_PREFIXES,
];
const IS_PREFIX = new Uint8Array(256);
for (const prefix of LEGACY_PREFIXES) IS_PREFIX[prefix] = 1;

const TWO_BYTE_ESCAPE = 0x0f;
/** D8-DF: the x87 escapes. Our CPU has no FPU; they are left out of the sample space entirely. */
const X87_ESCAPE_FIRST = 0xd8;
const X87_ESCAPE_LAST = 0xdf;

/** Opcodes are numbered 0x00-0xFF for one-byte opcodes and 0x100 + xx for 0F xx. */
export const TWO_BYTE = 0x100;

const range = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_, i) => first + i);

/** All one-byte opcodes but the prefixes, the 0F escape and the x87 escapes. */
export const ONE_BYTE_SPACE: readonly number[] = range(0x00, 0xff).filter(
  (op) => !IS_PREFIX[op] && op !== TWO_BYTE_ESCAPE && (op < X87_ESCAPE_FIRST || op > X87_ESCAPE_LAST),
);

/**
 * The 0F xx opcodes of the i386/P6 integer instruction set (system, cmovcc, jcc, setcc, bit ops, shld/shrd,
 * cmpxchg/xadd, movzx/movsx, bswap...). MMX, SSE and later 0F opcodes are not implemented: not sampled.
 * Some are implemented for some ModRM values only (0F 00, 0F 01, 0F 1F, 0F BA, 0F C7): the tail after them
 * is random, so the other ModRM values are sampled too, and a P6 rule or iced says #UD for them.
 */
export const TWO_BYTE_SPACE: readonly number[] = [
  0x00, 0x01, // group 6 (sldt str lldt ltr verr verw), group 7 (sgdt sidt lgdt lidt smsw lmsw invlpg)
  0x02, 0x03, // lar lsl
  0x06, 0x08, 0x09, 0x0b, // clts invd wbinvd ud2
  0x1f, // nop Ev (/0)
  0x20, 0x21, 0x22, 0x23, // mov to/from cr, dr
  0x30, 0x31, 0x32, // wrmsr rdtsc rdmsr
  ...range(0x40, 0x4f), // cmovcc
  ...range(0x80, 0x8f), // jcc rel16/32
  ...range(0x90, 0x9f), // setcc
  0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, // push fs, pop fs, cpuid, bt, shld
  0xa8, 0xa9, 0xab, 0xac, 0xad, 0xaf, // push gs, pop gs, bts, shrd, imul
  0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, // cmpxchg, lss, btr, lfs, lgs, movzx
  0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, // group 8 (bt bts btr btc imm8), btc, bsf, bsr, movsx
  0xc0, 0xc1, 0xc7, // xadd, group 9 (cmpxchg8b)
  ...range(0xc8, 0xcf), // bswap
].map((op) => TWO_BYTE + op);

export const OPCODE_SPACE: readonly number[] = [...ONE_BYTE_SPACE, ...TWO_BYTE_SPACE];

/** `0F C7` or `8D`, for messages and the per-opcode tallies. */
export function opcodeName(opcode: number): string {
  const hex2 = (b: number) => b.toString(16).padStart(2, '0').toUpperCase();
  return opcode >= TWO_BYTE ? `0F ${hex2(opcode - TWO_BYTE)}` : hex2(opcode);
}

// ---------------------------------------------------------------------------------------------------------
// A parsed view of one sample: enough for the rules to say what a P6 does differently from iced.

export interface SampleView {
  /** The distinct legacy prefixes seen (a repeated one counts once): flags below. */
  lock: boolean;
  rep: boolean;
  repne: boolean;
  /** Operand and address size are 16 bits (code size and 66 / 67 prefixes together). */
  operandSize16: boolean;
  addressSize16: boolean;
  /** Number of prefix bytes before the opcode, repeats included. */
  prefixCount: number;
  /** Opcode number (see TWO_BYTE) and the bytes it takes (1 or 2). */
  opcode: number;
  opcodeLength: number;
  /** The byte after the opcode, whether or not the instruction has a ModRM byte, split in its fields. */
  modrm: number;
  mod: number;
  reg: number;
  rm: number;
  /** Bytes of ModRM, SIB and displacement, if the byte after the opcode is a ModRM byte. */
  addressingLength: number;
}

/**
 * Parses prefixes, opcode and the following byte at `offset` in 32-bit (or 16-bit) code; `undefined` if
 * there is no opcode in the first 15 bytes.
 */
export function parseSample(
  code: Uint8Array, offset: number, codeSize32 = true, view: SampleView = emptyView(),
): SampleView | undefined {
  view.lock = view.rep = view.repne = false;
  view.operandSize16 = view.addressSize16 = !codeSize32;
  let i = offset;
  for (; IS_PREFIX[code[i]]; i++) {
    if (i - offset >= MAX_INSTRUCTION_LENGTH) return undefined;
    switch (code[i]) {
      case PREFIX_LOCK: view.lock = true; break;
      case PREFIX_REP: view.rep = true; break;
      case PREFIX_REPNE: view.repne = true; break;
      case PREFIX_OPERAND_SIZE: view.operandSize16 = codeSize32; break;
      case PREFIX_ADDRESS_SIZE: view.addressSize16 = codeSize32; break;
    }
  }
  view.prefixCount = i - offset;
  if (code[i] === TWO_BYTE_ESCAPE) {
    view.opcode = TWO_BYTE + code[i + 1];
    view.opcodeLength = 2;
  } else {
    view.opcode = code[i];
    view.opcodeLength = 1;
  }
  view.modrm = code[i + view.opcodeLength];
  view.mod = view.modrm >> 6;
  view.reg = (view.modrm >> 3) & 7;
  view.rm = view.modrm & 7;
  view.addressingLength = addressingLength(code, i + view.opcodeLength, view.addressSize16);
  return view;
}

const MODRM_RM_SIB = 4;
const MODRM_RM_DISP32 = 5;
const MODRM_RM_DISP16 = 6;
const SIB_BASE_NONE = 5;

/** Length of ModRM, SIB and displacement starting at `at` (32- or 16-bit addressing). */
function addressingLength(code: Uint8Array, at: number, addressSize16: boolean): number {
  const mod = code[at] >> 6;
  const rm = code[at] & 7;
  if (mod === MOD_REGISTER) return 1;
  if (addressSize16) return mod === 0 ? (rm === MODRM_RM_DISP16 ? 3 : 1) : mod === 1 ? 2 : 3;
  const sib = rm === MODRM_RM_SIB ? 1 : 0;
  const base = sib ? code[at + 1] & 7 : rm;
  if (mod === 0) return 1 + sib + (base === (sib ? SIB_BASE_NONE : MODRM_RM_DISP32) ? 4 : 0);
  return 1 + sib + (mod === 1 ? 1 : 4);
}

function emptyView(): SampleView {
  return {
    lock: false, rep: false, repne: false, operandSize16: false, addressSize16: false,
    prefixCount: 0, opcode: 0, opcodeLength: 1, modrm: 0, mod: 0, reg: 0, rm: 0, addressingLength: 1,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Where a P6 and iced-x86 part ways.

/** What a rule says about a sample: a P6 raises #UD; not compared; or either iced's answer or #UD is right. */
export type RuleVerdict = 'ud' | 'skip' | 'iced-or-ud';

export interface P6Rule {
  name: string;
  verdict: RuleVerdict;
  /** Why iced's answer is not the P6's, in a line. */
  why: string;
  applies(view: SampleView): boolean;
}

const MOD_REGISTER = 3;
const OPCODE_BOUND = 0x62;
const OPCODE_POP_EV = 0x8f;
const OPCODE_LES = 0xc4;
const OPCODE_LDS = 0xc5;
const OPCODE_MOV_EB_IB = 0xc6;
const OPCODE_MOV_EV_IZ = 0xc7;
const OPCODE_SALC = 0xd6;
const OPCODE_GROUP7 = TWO_BYTE + 0x01;
const OPCODE_UD2 = TWO_BYTE + 0x0b;
const OPCODE_NOP_EV = TWO_BYTE + 0x1f;
const OPCODE_GROUP9 = TWO_BYTE + 0xc7;
const MODRM_VMCALL = 0xc1;
const GROUP7_SMSW = 4;
const GROUP7_LMSW = 6;
const GROUP7_RESERVED_MEMORY = 5;
const GROUP9_CMPXCHG8B = 1;

/**
 * First match wins. Patterns where iced and a P6 agree on length and validity need no rule, even if iced
 * names the instruction differently; those are listed here.
 *
 * Not needing a rule (checked, iced gives the P6's length and validity):
 * - F3 0F BC / F3 0F BD: iced decodes tzcnt / lzcnt (BMI/ABM); a P6 ignores F3 and runs bsf / bsr. Same length.
 * - F3 90: iced says pause; a P6 runs nop. F2/F3 on other non-string instructions: iced ignores them
 *   (or calls them bnd / xacquire / xrelease), as a P6 does.
 * - 3E before call/jmp: iced says notrack (CET); a P6 sees a DS override. 2E/3E before jcc: branch hints.
 * - F0 0F 20 / F0 0F 22: AMD's `lock mov cr0` = cr8; iced rejects it without DecoderOptions.AMD, as a P6.
 * - 0F 00 /6: jmpe (IA-64) only with DecoderOptions.Jmpe; invalid in iced by default, as on a P6.
 * - 0F 01 F8 swapgs and the other 64-bit-only forms: iced rejects them in 32-bit code.
 * - LOCK: iced (without NoInvalidCheck) rejects lock where the SDM says #UD, as a P6 does.
 * - C0/C1/D0-D3 /6: iced says shl (sal); a P6 runs it as shl. Compared.
 * - F6/F7 /1: iced says test, as a P6 runs it. Compared.
 * - F1: iced says int1 (icebp), which a P6 has and the SDM documents. Compared.
 */
export const P6_RULES: readonly P6Rule[] = [
  {
    name: 'vex-on-les-lds',
    verdict: 'ud',
    why: 'C4/C5 with ModRM.mod = 11 is a VEX prefix to iced (AVX); a P6 runs LES/LDS, which need memory: #UD',
    applies: (v) => (v.opcode === OPCODE_LES || v.opcode === OPCODE_LDS) && v.mod === MOD_REGISTER,
  },
  {
    name: 'evex-on-bound',
    verdict: 'ud',
    why: '62 with ModRM.mod = 11 is an EVEX prefix to iced (AVX-512); a P6 runs BOUND, which needs memory: #UD',
    applies: (v) => v.opcode === OPCODE_BOUND && v.mod === MOD_REGISTER,
  },
  {
    name: 'xop-on-pop',
    verdict: 'ud',
    why: '8F /1-/7 is an XOP prefix to iced (AMD); on a P6 only 8F /0 (pop Ev) exists: #UD',
    applies: (v) => v.opcode === OPCODE_POP_EV && v.reg !== 0,
  },
  {
    name: 'rtm-xabort-xbegin',
    verdict: 'ud',
    why: 'C6 F8 ib / C7 F8 cd are xabort / xbegin (TSX) to iced; on a P6 only C6/C7 /0 (mov) exists: #UD',
    applies: (v) => (v.opcode === OPCODE_MOV_EB_IB || v.opcode === OPCODE_MOV_EV_IZ) && v.reg !== 0,
  },
  {
    name: 'vmcall',
    verdict: 'ud',
    why: '0F 01 C1 is vmcall (VMX) to iced; our CPU raises #UD and lguest\'s Host rewrites it (hypercalls)',
    applies: (v) => v.opcode === OPCODE_GROUP7 && v.modrm === MODRM_VMCALL,
  },
  {
    name: 'group7-register-forms',
    verdict: 'ud',
    why: '0F 01 with ModRM.mod = 11 and reg other than 4 (smsw) or 6 (lmsw) is monitor, mwait, xgetbv, '
      + 'rdtscp, clac, serialize, VMX/SVM... to iced; none exists on a P6: #UD',
    applies: (v) => v.opcode === OPCODE_GROUP7 && v.mod === MOD_REGISTER && v.reg !== GROUP7_SMSW
      && v.reg !== GROUP7_LMSW,
  },
  {
    name: 'group7-reg5-memory',
    verdict: 'ud',
    why: 'F3 0F 01 /5 with memory is rstorssp (CET) to iced; 0F 01 /5 is reserved on a P6: #UD',
    applies: (v) => v.opcode === OPCODE_GROUP7 && v.mod !== MOD_REGISTER && v.reg === GROUP7_RESERVED_MEMORY,
  },
  {
    name: 'group9-not-cmpxchg8b',
    verdict: 'ud',
    why: '0F C7 other than /1 with memory is rdrand, rdseed, rdpid, vmptrld, vmclear, vmxon, vmptrst, xsaves, '
      + 'xrstors, xsavec... to iced; a P6 has only cmpxchg8b m64: #UD',
    applies: (v) => v.opcode === OPCODE_GROUP9 && (v.reg !== GROUP9_CMPXCHG8B || v.mod === MOD_REGISTER),
  },
  {
    name: 'reserved-nop-0f1f',
    verdict: 'skip',
    why: '0F 1F /1-/7 is a reserved (hint) NOP to iced and on real P6 parts, but the SDM defines only 0F 1F /0; '
      + 'our CPU may implement it as nop or raise #UD',
    applies: (v) => v.opcode === OPCODE_NOP_EV && v.reg !== 0,
  },
  {
    name: 'salc',
    verdict: 'skip',
    why: 'D6 is SALC, undocumented (no SDM entry); iced decodes it, our CPU may raise #UD',
    applies: (v) => v.opcode === OPCODE_SALC,
  },
  {
    name: 'ud2',
    verdict: 'iced-or-ud',
    why: '0F 0B (ud2) is a valid 2-byte instruction whose execution raises #UD: the decoder may report its '
      + 'length or #UD',
    applies: (v) => v.opcode === OPCODE_UD2,
  },
];

// ---------------------------------------------------------------------------------------------------------
// iced-x86.

interface Iced {
  module: typeof IcedX86;
  instruction: IcedX86.Instruction;
  /** Intel syntax as emulator/disasm.ts prints it, but for any bitness (messages only). */
  formatter: IcedX86.Formatter;
}

let iced: Iced | undefined;

function loadIced(): Iced {
  if (iced !== undefined) return iced;
  const require = createRequire(import.meta.url);
  const module = require('iced-x86') as typeof IcedX86;
  const formatter = new module.Formatter(module.FormatterSyntax.Intel);
  formatter.uppercaseHex = false;
  formatter.hexPrefix = '0x';
  formatter.hexSuffix = '';
  formatter.smallHexNumbersInDecimal = false;
  formatter.spaceAfterOperandSeparator = true;
  iced = { module, instruction: new module.Instruction(), formatter };
  return iced;
}

/** An iced Decoder over `code` (32-bit or 16-bit code, DecoderOptions.None). Free it when done. */
export function icedDecoder(code: Uint8Array, codeSize32 = true): IcedX86.Decoder {
  const { module } = loadIced();
  return new module.Decoder(codeSize32 ? 32 : 16, code, module.DecoderOptions.None);
}

/** iced's answer at `position`: the length, or PROBE_UD when iced says the bytes are not an instruction. */
export function icedProbe(decoder: IcedX86.Decoder, position: number): number {
  const { module, instruction } = loadIced();
  decoder.position = position;
  decoder.decodeOut(instruction);
  return instruction.code === module.Code.INVALID ? PROBE_UD : instruction.length;
}

/** What iced decoded at `position`: its disassembly and its Code name, e.g. `rdrand eax (Rdrand_r32)`. */
export function icedDescription(decoder: IcedX86.Decoder, position: number): string {
  const { module, instruction, formatter } = loadIced();
  decoder.position = position;
  decoder.decodeOut(instruction);
  const name = (module.Code as unknown as Record<number, string>)[instruction.code] ?? String(instruction.code);
  return `${formatter.format(instruction)} (${name})`;
}

// ---------------------------------------------------------------------------------------------------------
// The expected answer for a sample.

export interface Expectation {
  /** The answers a P6 may give (usually one). Empty when the sample is not compared. */
  accepted: number[];
  /** The P6 rule that changed iced's answer, if any. */
  rule?: P6Rule;
  /** iced's own answer on the core. */
  iced: number;
}

/**
 * What a P6 answers for a core instruction (at most 4 prefixes, so never longer than 15 bytes) decoded by
 * iced at `corePosition`, with `extraPrefixes` more prefix bytes in front of it that change neither its
 * length nor its validity (copies of the core's own prefixes, or segment overrides that the core's own
 * override, if any, supersedes).
 */
export function expectationFor(
  decoder: IcedX86.Decoder, corePosition: number, view: SampleView, extraPrefixes: number,
): Expectation {
  const icedAnswer = icedProbe(decoder, corePosition);
  let verdict: RuleVerdict | 'iced' = 'iced';
  let rule: P6Rule | undefined;
  for (const candidate of P6_RULES) {
    if (!candidate.applies(view)) continue;
    rule = candidate;
    verdict = candidate.verdict;
    break;
  }
  let accepted: number[];
  if (verdict === 'skip') {
    accepted = [];
  } else if (verdict === 'ud' || icedAnswer === PROBE_UD) {
    accepted = invalidWithPrefixes(view, extraPrefixes);
  } else {
    const length = validWithPrefixes(icedAnswer, extraPrefixes);
    // ud2 may be reported as #UD, but not once it is longer than 15 bytes: that is #GP.
    accepted = verdict === 'iced-or-ud' && length !== PROBE_GP ? [length, PROBE_UD] : [length];
  }
  return { accepted, rule, iced: icedAnswer };
}

function validWithPrefixes(length: number, extra: number): number {
  return length + extra > MAX_INSTRUCTION_LENGTH ? PROBE_GP : length + extra;
}

/** The longest immediate an instruction with a ModRM byte can have. */
const MAX_IMMEDIATE_AFTER_MODRM = 4;
/** The longest operand an instruction without ModRM can have: ptr16:32 of a far jmp/call (EA, 9A). */
const MAX_OPERAND_WITHOUT_MODRM = 6;

/**
 * An invalid encoding: #UD, unless the prefixes push it past 15 bytes. How long an invalid instruction
 * "is" is not defined, and which fault comes first when it may run past byte 15 is not either: #GP when
 * not even the opcode fits; #UD when the longest it could be (ModRM, SIB, displacement and an imm32, or
 * a ptr16:32) fits; both accepted in between.
 */
function invalidWithPrefixes(view: SampleView, extra: number): number[] {
  const opcodeEnd = extra + view.prefixCount + view.opcodeLength;
  if (opcodeEnd > MAX_INSTRUCTION_LENGTH) return [PROBE_GP];
  const longest = Math.max(view.addressingLength + MAX_IMMEDIATE_AFTER_MODRM, MAX_OPERAND_WITHOUT_MODRM);
  if (opcodeEnd + longest <= MAX_INSTRUCTION_LENGTH) return [PROBE_UD];
  return [PROBE_UD, PROBE_GP];
}

// ---------------------------------------------------------------------------------------------------------
// Random samples.

/** mulberry32: a small deterministic PRNG, so a failing seed reproduces exactly. */
export function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Bytes per sample in a batch: up to 14 extra prefixes, a core of up to 15 bytes, and padding. */
export const SAMPLE_STRIDE = 48;
/** One sample in this many gets extra prefixes (5 to 16 prefix bytes in all) to reach the 15-byte limit. */
const LONG_PREFIX_ONE_IN = 64;
const MAX_EXTRA_PREFIXES = 12;

export interface Sample {
  /** Offset of the sample's first byte in the batch. */
  offset: number;
  /** Prefix bytes added in front of the core (0 for most samples). */
  extraPrefixes: number;
}

/**
 * Fills `batch` with `count` samples, one per SAMPLE_STRIDE bytes: a core of 0-4 prefixes drawn (with
 * repeats) from the 11 legacy prefixes, an opcode from OPCODE_SPACE and random bytes after it (ModRM,
 * SIB, displacement, immediate and padding alike); sometimes more prefixes in front.
 */
export function fillBatch(batch: Uint8Array, count: number, random: () => number): Sample[] {
  const samples: Sample[] = [];
  for (let s = 0; s < count; s++) {
    const offset = s * SAMPLE_STRIDE;
    for (let i = 0; i < SAMPLE_STRIDE; i += 4) {
      const word = random();
      batch[offset + i] = word;
      batch[offset + i + 1] = word >>> 8;
      batch[offset + i + 2] = word >>> 16;
      batch[offset + i + 3] = word >>> 24;
    }
    const draw = random();
    const longPrefixes = draw % LONG_PREFIX_ONE_IN === 0;
    const coreStart = offset + MAX_EXTRA_PREFIXES;
    // 0-4 prefixes, fewer more often: 0 (30%), 1 (30%), 2 (20%), 3 (10%), 4 (10%).
    const roll = (draw >>> 8) % 10;
    const corePrefixes = roll < 3 ? 0 : roll < 6 ? 1 : roll < 8 ? 2 : roll < 9 ? 3 : 4;
    for (let p = 0; p < corePrefixes; p++) {
      batch[coreStart + p] = LEGACY_PREFIXES[random() % LEGACY_PREFIXES.length];
    }
    const opcode = OPCODE_SPACE[random() % OPCODE_SPACE.length];
    let at = coreStart + corePrefixes;
    if (opcode >= TWO_BYTE) {
      batch[at++] = TWO_BYTE_ESCAPE;
      batch[at] = opcode - TWO_BYTE;
    } else {
      batch[at] = opcode;
    }
    // In front of the core: nothing (the sample starts at the core) or copies of the core's own
    // prefixes and segment overrides, which change neither length nor validity.
    let extra = 0;
    if (longPrefixes) {
      extra = 1 + (random() % MAX_EXTRA_PREFIXES);
      for (let p = 1; p <= extra; p++) {
        const fromCore = corePrefixes > 0 && (random() & 1) === 0;
        batch[coreStart - p] = fromCore
          ? batch[coreStart + (random() % corePrefixes)]
          : SEGMENT_PREFIXES[random() % SEGMENT_PREFIXES.length];
      }
    }
    samples.push({ offset: coreStart - extra, extraPrefixes: extra });
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------------------
// The comparison.

export interface Disagreement {
  bytes: string;
  opcode: string;
  /** iced's disassembly of the core and its Code name. */
  icedText: string;
  icedAnswer: number;
  accepted: number[];
  ours: number;
  rule?: string;
  extraPrefixes: number;
}

export interface AgreementReport {
  samples: number;
  compared: number;
  /** Samples per rule that matched (compared against the rule's answer, or skipped). */
  ruleHits: Map<string, number>;
  disagreements: Disagreement[];
  /** Disagreements per opcode name, all of them (the list above keeps the first `keep`). */
  disagreementsByOpcode: Map<string, number>;
  totalDisagreements: number;
}

export interface AgreementOptions {
  samples: number;
  seed: number;
  /** 32-bit code (the default), or 16-bit code: iced decodes with bitness 16 and probeInstruction gets false. */
  codeSize32?: boolean;
  /** How many disagreements to keep in full (default 20). */
  keep?: number;
}

const BATCH_SAMPLES = 1 << 15;

export const hexOf = (code: Uint8Array, start: number, length: number): string =>
  Array.from(code.subarray(start, start + length), (b) => b.toString(16).padStart(2, '0')).join(' ');

/** Runs `samples` random samples through `probe` and iced, and collects where they disagree. */
export function runAgreement(probe: ProbeInstruction, options: AgreementOptions): AgreementReport {
  const random = makeRandom(options.seed);
  const keep = options.keep ?? 20;
  const codeSize32 = options.codeSize32 ?? true;
  const report: AgreementReport = {
    samples: 0, compared: 0, ruleHits: new Map(), disagreements: [], disagreementsByOpcode: new Map(),
    totalDisagreements: 0,
  };
  const batch = new Uint8Array(BATCH_SAMPLES * SAMPLE_STRIDE);
  const view = emptyView();
  for (let done = 0; done < options.samples; done += BATCH_SAMPLES) {
    const count = Math.min(BATCH_SAMPLES, options.samples - done);
    const samples = fillBatch(batch, count, random);
    const decoder = icedDecoder(batch, codeSize32);
    try {
      for (const sample of samples) {
        const core = sample.offset + sample.extraPrefixes;
        parseSample(batch, core, codeSize32, view);
        const expectation = expectationFor(decoder, core, view, sample.extraPrefixes);
        report.samples++;
        if (expectation.rule) {
          report.ruleHits.set(expectation.rule.name, (report.ruleHits.get(expectation.rule.name) ?? 0) + 1);
        }
        if (expectation.accepted.length === 0) continue;
        report.compared++;
        const ours = probe(batch, sample.offset, codeSize32);
        if (expectation.accepted.includes(ours)) continue;
        recordDisagreement(report, keep, batch, decoder, sample, view, expectation, ours);
      }
    } finally {
      decoder.free();
    }
  }
  return report;
}

function recordDisagreement(
  report: AgreementReport, keep: number, code: Uint8Array, decoder: IcedX86.Decoder, sample: Sample,
  view: SampleView, expectation: Expectation, ours: number,
): void {
  const opcode = opcodeName(view.opcode);
  report.totalDisagreements++;
  report.disagreementsByOpcode.set(opcode, (report.disagreementsByOpcode.get(opcode) ?? 0) + 1);
  if (report.disagreements.length >= keep) return;
  const core = sample.offset + sample.extraPrefixes;
  const shown = Math.max(expectation.iced > 0 ? expectation.iced : 0, ours > 0 ? ours - sample.extraPrefixes : 0,
    view.prefixCount + view.opcodeLength + view.addressingLength + MAX_IMMEDIATE_AFTER_MODRM);
  report.disagreements.push({
    bytes: hexOf(code, sample.offset, sample.extraPrefixes + Math.min(shown, MAX_INSTRUCTION_LENGTH)),
    opcode,
    icedText: icedDescription(decoder, core),
    icedAnswer: expectation.iced,
    accepted: expectation.accepted,
    ours,
    rule: expectation.rule?.name,
    extraPrefixes: sample.extraPrefixes,
  });
}

/** What a probe answer means, for messages: `len 3`, `#UD`, `#GP`. */
export function describeAnswer(answer: number): string {
  if (answer === PROBE_UD) return '#UD';
  if (answer === PROBE_GP) return '#GP';
  return answer > 0 ? `len ${answer}` : `?${answer}`;
}

/** The report as text: rule hits, tallies per opcode, and the first disagreements in full. */
export function formatReport(report: AgreementReport): string {
  const lines: string[] = [];
  lines.push(`${report.samples} samples, ${report.compared} compared, ${report.totalDisagreements} disagreements`);
  lines.push('P6 rules that matched:');
  for (const rule of P6_RULES) lines.push(`  ${rule.name.padEnd(24)} ${report.ruleHits.get(rule.name) ?? 0} (${rule.verdict})`);
  if (report.totalDisagreements > 0) {
    const byOpcode = [...report.disagreementsByOpcode].sort((a, b) => b[1] - a[1]);
    lines.push('Disagreements per opcode: ' + byOpcode.map(([op, n]) => `${op}: ${n}`).join(', '));
    lines.push(`First ${report.disagreements.length}:`);
    for (const d of report.disagreements) lines.push('  ' + formatDisagreement(d));
  }
  return lines.join('\n');
}

export function formatDisagreement(d: Disagreement): string {
  const expected = d.accepted.map(describeAnswer).join(' or ');
  return `${d.bytes.padEnd(48)} iced: ${d.icedText}; expected ${expected}${d.rule ? ` [rule ${d.rule}]` : ''}; `
    + `ours: ${describeAnswer(d.ours)}${d.extraPrefixes ? ` (${d.extraPrefixes} extra prefixes in front)` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------
// Single byte strings (the hand-written tricky cases).

/**
 * The expectation for one byte string starting with any number of prefixes: repeated prefixes beyond the
 * last copy of each are set aside as extra prefixes (they change neither length nor validity), so iced sees
 * a core that fits its 15-byte limit.
 */
export function expectationForBytes(bytes: Uint8Array, codeSize32 = true): Expectation & { view?: SampleView } {
  const view = parseSample(padded(bytes), 0, codeSize32);
  if (view === undefined) return { accepted: [PROBE_GP], iced: PROBE_UD };
  const prefixes = Array.from(bytes.subarray(0, view.prefixCount));
  const lastCopies = prefixes.filter((p, i) => prefixes.lastIndexOf(p) === i);
  const core = padded(Uint8Array.from([...lastCopies, ...bytes.subarray(view.prefixCount)]));
  const coreView = parseSample(core, 0, codeSize32)!;
  const decoder = icedDecoder(core, codeSize32);
  try {
    return { ...expectationFor(decoder, 0, coreView, view.prefixCount - lastCopies.length), view: coreView };
  } finally {
    decoder.free();
  }
}

/** `bytes` followed by zeros up to SAMPLE_STRIDE: probeInstruction may look 16 bytes ahead. */
export function padded(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(SAMPLE_STRIDE, bytes.length + 16));
  out.set(bytes);
  return out;
}

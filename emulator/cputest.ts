/**
 * The CPU test-vector runner (docs/cpu-test-format.md): each vector runs on a CPU in a flat 32-bit
 * user environment (CPL 3, IOPL 0, flat segments) whose memory holds exactly the vector's bytes, and the
 * final registers, masked flags, memory and exception are compared with what real hardware produced.
 *
 * The environment is built the way an OS would build it: a GDT with ring-3 flat segments (Linux's
 * selectors 0x23 and 0x2B), an IDT whose gates have DPL 0 except for int3, into and int 0x80 (as Linux's),
 * and paging with user pages for every 4 KiB page the vector mentions, so an access anywhere else faults
 * with #PF exactly as it did on the machine that recorded the vector. One CPU is reused for every vector.
 */
import { readFileSync } from 'node:fs';
import { CPU, ExceptionMode } from './cpu.ts';
import { PhysicalMemory } from '../mmu/memory.ts';
import { CR0_EM, CR0_MP, CR0_NE, CR0_PG, CR0_TS, CS, DS, ES, FS, GS, SS, IF, PTE_P, PTE_RW, PTE_US } from './constants.ts';
import { ExitReason } from './exits.ts';
import type { FPU } from './fpu/fpu.ts';

export interface VectorState {
  regs: Record<string, number>;
  ram: [number, number][];
  /** x87 state (docs/cpu-test-format-x87.md): st[i] is ST(i), 20 hex digits each. */
  fpu?: FpuState;
}

export interface FpuState {
  fcw: number; fsw: number; ftw: number; st: string[]; fip: number; fdp: number; fop: number;
}

export interface Vector {
  name: string;
  initial: VectorState;
  final: VectorState;
  exception: null | { vector: number; eip: number };
  flags_mask: number;
  end_eip?: number;
  undefined_regs?: string[];
  /** x87 vectors: status-word bits compared (default all). */
  fsw_mask?: number;
  /** Bytes of final.ram not compared (mode-dependent selector fields of an FNSTENV/FNSAVE image). */
  ram_mask?: number[];
  /** x87 vectors of instructions the SDM specifies only to within an error (the transcendentals): a result
   *  register may differ from the recorded one by up to this many units in the last place, and C1 (which
   *  says which way the approximate result was rounded) is not compared. */
  ulp_tolerance?: number;
}

export interface VectorResult {
  name: string;
  ok: boolean;
  problems: string[];
  /** Passed only thanks to the vector's ulp_tolerance (some register not bit-exact). */
  approx?: boolean;
  /** Instruction bytes at the initial EIP, for disassembly in reports. */
  code: Uint8Array;
  eip: number;
}

const REG_KEYS = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const MEM_SIZE = 8 << 20;
/** Linear addresses of the system tables: kept out of the way of the vectors' own pages. */
const SYS_LINEAR = 0xffc00000 | 0;
const USER_CS = 0x23;
const USER_DS = 0x2b;

const hex = (v: number) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

/** Builds the environment on a reusable CPU and runs vectors in it. */
export class VectorRunner {
  readonly mem = new PhysicalMemory(MEM_SIZE);
  readonly cpu: CPU;
  private nextFrame = 0;
  private readonly pageFrame = new Map<number, number>();
  private pdFrame = 0;
  private warm = false;
  /** Physical frames used by the last vector, to clear them before the next. */
  private readonly usedFrames: number[] = [];

  /** `engine`: 'interpreter' (the run loop's inline cases and handlers), 'handlers' (every op through
   *  its handler, the reference the other two copy), or 'compiled' (every instruction as a freshly
   *  compiled one-instruction block, emulator/jit.ts), so each implementation meets the hardware. The
   *  'handlers' engine also runs locked instructions through their atomic path (as a vCPU of an SMP
   *  guest does); the other two run them as the one CPU on its memory. */
  constructor(opts: { engine?: 'interpreter' | 'handlers' | 'compiled' } = {}) {
    this.cpu = new CPU(this.mem, 0, { codeSlots: 64 });
    this.cpu.jitSteps = opts.engine === 'compiled';
    this.cpu.referenceDispatch = opts.engine === 'handlers';
    this.cpu.sharedMemory = opts.engine === 'handlers';
  }

  private allocFrame(): number {
    const f = this.nextFrame;
    this.nextFrame += 4096;
    if (this.nextFrame > MEM_SIZE) throw new Error('cpu-test: vector uses too many pages');
    this.mem.u8.fill(0, f, f + 4096);
    this.usedFrames.push(f);
    return f;
  }

  /** Map linear page `lin` (user, writable) and return its frame. */
  private mapPage(lin: number, user: boolean): number {
    const vpn = lin >>> 12;
    const have = this.pageFrame.get(vpn);
    if (have !== undefined) return have;
    const pdi = vpn >>> 10;
    let pde = this.mem.i32[(this.pdFrame >>> 2) + pdi];
    if ((pde & PTE_P) === 0) {
      const pt = this.allocFrame();
      pde = pt | PTE_P | PTE_RW | PTE_US;
      this.mem.i32[(this.pdFrame >>> 2) + pdi] = pde;
    }
    const frame = this.allocFrame();
    const pt = pde & ~0xfff;
    this.mem.i32[(pt >>> 2) + (vpn & 0x3ff)] = frame | PTE_P | PTE_RW | (user ? PTE_US : 0);
    this.pageFrame.set(vpn, frame);
    return frame;
  }

  private setup(v: Vector): void {
    this.nextFrame = 0;
    this.pageFrame.clear();
    this.usedFrames.length = 0;
    this.pdFrame = this.allocFrame();
    // system tables at SYS_LINEAR: GDT (page 0), IDT (page 1)
    const gdt = this.mapPage(SYS_LINEAR, false);
    const idt = this.mapPage(SYS_LINEAR + 4096, false);
    const m = this.mem;
    // GDT: 1 = ring-0 code, 2 = ring-0 data, 4 = ring-3 code (0x23), 5 = ring-3 data (0x2b)
    const put = (base: number, i: number, lo: number, hi: number) => {
      m.i32[(base >>> 2) + i * 2] = lo;
      m.i32[(base >>> 2) + i * 2 + 1] = hi;
    };
    put(gdt, 1, 0x0000ffff, 0x00cf9b00);
    put(gdt, 2, 0x0000ffff, 0x00cf9300);
    put(gdt, 4, 0x0000ffff, 0x00cffb00);
    put(gdt, 5, 0x0000ffff, 0x00cff300);
    for (let vec = 0; vec < 256; vec++) {
      const dpl = vec === 3 || vec === 4 || vec === 0x80 ? 3 : 0;
      put(idt, vec, (0x08 << 16) | 0, 0x8e00 | (dpl << 13));
    }
    for (const [addr] of v.initial.ram) this.mapPage(addr, true);
    for (const [addr] of v.final.ram) this.mapPage(addr, true);
    for (const [addr, byte] of v.initial.ram) {
      const f = this.pageFrame.get(addr >>> 12)!;
      m.u8[f + (addr & 0xfff)] = byte;
    }
    const c = this.cpu;
    c.resetFlat(3);
    c.gdtBase = SYS_LINEAR;
    c.gdtLimit = 0x7f;
    c.idtBase = SYS_LINEAR + 4096;
    c.idtLimit = 0x7ff;
    c.cr3 = this.pdFrame;
    c.cr4 = 0;
    c.cr0 = ((c.cr0 | CR0_PG | CR0_NE) & ~(CR0_EM | CR0_MP | CR0_TS)) | 0;
    loadFpu(c.fpu, v.initial.fpu);
    const sel = [USER_DS, USER_CS, USER_DS, USER_DS, USER_DS, USER_DS];
    for (const s of [ES, CS, SS, DS, FS, GS]) {
      c.setSegCache(s, sel[s], 0, 0xffffffff, c.segAttr[s]);
    }
    c.flushTlb(true);
    c.flushCodeCache();
    // Every other vector starts with a warm TLB (every page writable-and-dirty for ring 3), so the
    // fast paths of the accessors, inline and compiled, meet the vectors as well as the slow ones.
    if ((this.warm = !this.warm)) {
      for (const vpn of this.pageFrame.keys()) {
        if ((vpn << 12) !== SYS_LINEAR && (vpn << 12) !== SYS_LINEAR + 4096) c.translate(vpn << 12, true, true);
      }
    }
    for (let i = 0; i < 8; i++) c.r32[i] = v.initial.regs[REG_KEYS[i]] | 0;
    c.eip = v.initial.regs.eip | 0;
    c.setEflags(v.initial.regs.eflags | 2 | IF);
    c.exceptionMode = ExceptionMode.Stop;
    c.exitReason = ExitReason.None;
  }

  readByte(addr: number): number {
    const f = this.pageFrame.get(addr >>> 12);
    return f === undefined ? -1 : this.mem.u8[f + (addr & 0xfff)];
  }

  run(v: Vector): VectorResult {
    this.setup(v);
    const c = this.cpu;
    const problems: string[] = [];
    const code = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      const b = this.readByte((v.initial.regs.eip + i) | 0);
      code[i] = b < 0 ? 0 : b;
    }
    let exit: ExitReason;
    try {
      if (v.end_eip === undefined) {
        exit = c.step();
      } else {
        exit = ExitReason.Step;
        for (let n = 0; n < 10000 && (c.eip >>> 0) !== (v.end_eip >>> 0); n++) {
          exit = c.step();
          if (exit !== ExitReason.Step) break;
        }
      }
    } catch (e) {
      problems.push(`emulator error: ${(e as Error).message}`);
      return { name: v.name, ok: false, problems, code, eip: v.initial.regs.eip };
    }
    // exception
    if (v.exception) {
      if (exit !== ExitReason.Exception) problems.push(`expected exception ${v.exception.vector}, got none`);
      else if (c.exceptionVector !== v.exception.vector || (c.exceptionEip >>> 0) !== (v.exception.eip >>> 0)) {
        problems.push(`expected exception ${v.exception.vector} at ${hex(v.exception.eip)}, got ${c.exceptionVector} at ${hex(c.exceptionEip)}`);
      }
    } else if (exit === ExitReason.Exception) {
      problems.push(`unexpected exception ${c.exceptionVector} (error ${c.exceptionError}) at ${hex(c.exceptionEip)}`);
    } else if (exit !== ExitReason.Step) {
      problems.push(`unexpected exit ${exit}: ${c.exitMessage}`);
    }
    // registers
    const undef = new Set(v.undefined_regs ?? []);
    for (let i = 0; i < 8; i++) {
      const name = REG_KEYS[i];
      if (undef.has(name)) continue;
      const want = v.final.regs[name] >>> 0, got = c.r32[i] >>> 0;
      if (want !== got) problems.push(`${name}: expected ${hex(want)}, got ${hex(got)}`);
    }
    if (!undef.has('eip') && (v.final.regs.eip >>> 0) !== (c.eip >>> 0)) {
      problems.push(`eip: expected ${hex(v.final.regs.eip)}, got ${hex(c.eip)}`);
    }
    const mask = v.flags_mask & ~0x10000;
    const wantF = v.final.regs.eflags & mask, gotF = c.getEflags() & mask;
    if (wantF !== gotF) {
      problems.push(`eflags: expected ${hex(v.final.regs.eflags)}, got ${hex(c.getEflags())} (mask ${hex(mask)}, differ ${flagNames(wantF ^ gotF)})`);
    }
    // memory: every byte of every mapped page must be the final value, else the initial one, else 0
    let approx = false;
    if (v.final.fpu) approx = compareFpu(c.fpu, v.final.fpu, v.fsw_mask ?? 0xffff, v.ulp_tolerance ?? 0, problems);
    const ramMask = new Set((v.ram_mask ?? []).map((a) => a >>> 0));
    const expected = new Map<number, number>();
    for (const [a, b] of v.initial.ram) expected.set(a >>> 0, b);
    for (const [a, b] of v.final.ram) expected.set(a >>> 0, b);
    let memProblems = 0;
    for (const [vpn, f] of this.pageFrame) {
      if ((vpn << 12) === SYS_LINEAR || (vpn << 12) === SYS_LINEAR + 4096) continue;
      for (let i = 0; i < 4096; i++) {
        const addr = ((vpn << 12) + i) >>> 0;
        const want = expected.get(addr) ?? 0;
        const got = this.mem.u8[f + i];
        if (want !== got && !ramMask.has(addr) && memProblems++ < 8) {
          problems.push(`mem[${hex(addr)}]: expected 0x${want.toString(16).padStart(2, '0')}, got 0x${got.toString(16).padStart(2, '0')}`);
        }
      }
    }
    if (memProblems > 8) problems.push(`... and ${memProblems - 8} more memory differences`);
    return { name: v.name, ok: problems.length === 0, problems, code, eip: v.initial.regs.eip, approx: approx && problems.length === 0 };
  }
}

/** Load the FPU as FRSTOR would from a vector's x87 state (or FNINIT it when the vector has none). */
function loadFpu(f: FPU, s: FpuState | undefined): void {
  f.reset();
  f.ferr = false;
  if (!s) return;
  f.fcw = s.fcw;
  f.fsw = s.fsw;
  f.ftw = s.ftw;
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    f.se[p] = parseInt(s.st[i].slice(0, 4), 16);
    f.sig[p] = BigInt('0x' + s.st[i].slice(4));
  }
  f.fip = s.fip;
  f.fdp = s.fdp;
  f.fop = s.fop;
}

const h4 = (v: number) => '0x' + (v >>> 0).toString(16).padStart(4, '0');

/** An 80-bit value as a number line position: adjacent representable values differ by 1 (within a sign). */
function ulpKey(se: number, sig: bigint): bigint {
  const e = se & 0x7fff;
  return (BigInt(e === 0 ? 0 : e - 1) << 63n) + (e === 0 ? sig : sig);
}

/** Compare the FPU with a vector's final state; returns true when a register matched only within the
 *  tolerance. */
function compareFpu(f: FPU, want: FpuState, swMask: number, tolerance: number, problems: string[]): boolean {
  let approx = false;
  const regProblems: string[] = [];
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    const got = f.se[p].toString(16).padStart(4, '0') + f.sig[p].toString(16).padStart(16, '0');
    const w = want.st[i].toLowerCase();
    if (got === w) continue;
    if (tolerance > 0) {
      const wse = parseInt(w.slice(0, 4), 16), wsig = BigInt('0x' + w.slice(4));
      const sameSign = ((wse ^ f.se[p]) & 0x8000) === 0;
      const finite = (wse & 0x7fff) !== 0x7fff && (f.se[p] & 0x7fff) !== 0x7fff;
      const d = ulpKey(wse, wsig) - ulpKey(f.se[p], f.sig[p]);
      if (sameSign && finite && (wsig & (1n << 63n)) === (f.sig[p] & (1n << 63n)) && d <= BigInt(tolerance) && -d <= BigInt(tolerance)) {
        approx = true;
        continue;
      }
    }
    regProblems.push(`st${i}: expected ${want.st[i]}, got ${got}`);
  }
  if (tolerance > 0) {
    // C1 says which way the (approximate) result was rounded: not compared, but noted
    if (((f.fsw ^ want.fsw) & swMask & 0x200) !== 0) approx = true;
    swMask &= ~0x200;
  }
  if (f.fcw !== want.fcw) problems.push(`fcw: expected ${h4(want.fcw)}, got ${h4(f.fcw)}`);
  const sw = f.fsw;
  if (((sw ^ want.fsw) & swMask) !== 0) problems.push(`fsw: expected ${h4(want.fsw)}, got ${h4(sw)} (mask ${h4(swMask)})`);
  if (f.ftw !== want.ftw) problems.push(`ftw: expected ${h4(want.ftw)}, got ${h4(f.ftw)}`);
  problems.push(...regProblems);
  if ((f.fip >>> 0) !== (want.fip >>> 0)) problems.push(`fip: expected ${hex(want.fip)}, got ${hex(f.fip)}`);
  if ((f.fdp >>> 0) !== (want.fdp >>> 0)) problems.push(`fdp: expected ${hex(want.fdp)}, got ${hex(f.fdp)}`);
  if (f.fop !== want.fop) problems.push(`fop: expected ${h4(want.fop)}, got ${h4(f.fop)}`);
  return approx;
}

const FLAG_NAMES: [number, string][] = [[1, 'CF'], [4, 'PF'], [0x10, 'AF'], [0x40, 'ZF'], [0x80, 'SF'], [0x100, 'TF'], [0x200, 'IF'], [0x400, 'DF'], [0x800, 'OF'], [0x4000, 'NT'], [0x40000, 'AC'], [0x200000, 'ID']];
function flagNames(bits: number): string {
  const out = FLAG_NAMES.filter(([b]) => (bits & b) !== 0).map(([, n]) => n);
  return out.length ? out.join(' ') : hex(bits);
}

/** Read and validate a vector file; throws an Error with a one-line message when it is not one. */
export function loadVectorFile(path: string): Vector[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`${path}: expected a JSON array of test vectors`);
  data.forEach((v, i) => {
    const ok = v && typeof v === 'object' && typeof v.name === 'string' && v.initial?.regs && Array.isArray(v.initial?.ram)
      && v.final?.regs && Array.isArray(v.final?.ram) && typeof v.flags_mask === 'number';
    if (!ok) throw new Error(`${path}: entry ${i} is not a test vector (needs name, initial, final, flags_mask)`);
    for (const which of ['initial', 'final'] as const) {
      const f = v[which].fpu;
      if (f === undefined) continue;
      const bad = (what: string) => { throw new Error(`${path}: vector "${v.name}" ${which}.fpu: ${what}`); };
      if (!f || typeof f !== 'object') bad('not an object');
      for (const k of ['fcw', 'fsw', 'ftw', 'fip', 'fdp', 'fop']) if (typeof f[k] !== 'number') bad(`lacks ${k}`);
      if (!Array.isArray(f.st) || f.st.length !== 8 || !f.st.every((x: unknown) => typeof x === 'string' && /^[0-9a-fA-F]{20}$/.test(x))) {
        bad('st must be 8 strings of 20 hex digits');
      }
    }
    if (v.fsw_mask !== undefined && typeof v.fsw_mask !== 'number') throw new Error(`${path}: vector "${v.name}": fsw_mask must be a number`);
    if (v.ulp_tolerance !== undefined && typeof v.ulp_tolerance !== 'number') throw new Error(`${path}: vector "${v.name}": ulp_tolerance must be a number`);
    if (v.ram_mask !== undefined && !(Array.isArray(v.ram_mask) && v.ram_mask.every((a: unknown) => typeof a === 'number'))) {
      throw new Error(`${path}: vector "${v.name}": ram_mask must be an array of addresses`);
    }
    for (const r of [...REG_KEYS, 'eip', 'eflags']) {
      if (typeof v.initial.regs[r] !== 'number' || typeof v.final.regs[r] !== 'number') {
        throw new Error(`${path}: vector "${v.name}" lacks register ${r}`);
      }
    }
  });
  return data as Vector[];
}


/**
 * Nothing a guest does with the FPU ends in a JavaScript exception: every D8-DF encoding, register and
 * memory forms, both operand sizes, on random register contents (every class: NaNs, pseudo-NaNs,
 * unnormals, denormals, huge and tiny exponents), random tags, control and status words and memory.
 */
import { expect, it } from 'vitest';
import { FPU, type FpuMem } from '../../emulator/fpu/fpu.ts';

it('20,000 random x87 instructions on random states raise no JavaScript exception', () => {
  let seed = 20261204;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  const buf = new Uint8Array(4096);
  const mem: FpuMem = {
    rd8: (o) => buf[o & 4095],
    rd16: (o) => buf[o & 4095] | (buf[(o + 1) & 4095] << 8),
    rd32: (o) => buf[o & 4095] | (buf[(o + 1) & 4095] << 8) | (buf[(o + 2) & 4095] << 16) | (buf[(o + 3) & 4095] << 24),
    wr8: (o, v) => { buf[o & 4095] = v; },
    wr16: (o, v) => { buf[o & 4095] = v; buf[(o + 1) & 4095] = v >> 8; },
    wr32: (o, v) => { for (let i = 0; i < 4; i++) buf[(o + i) & 4095] = v >> (8 * i); },
    probe: () => {},
  };
  const f = new FPU();
  const specials = [0, 0x7fff, 0x8000, 0xffff, 1, 0x7ffe, 0x3fff];
  const errors: string[] = [];
  for (let n = 0; n < 20000; n++) {
    for (let i = 0; i < 8; i++) {
      f.se[i] = rnd() % 3 === 0 ? specials[rnd() % specials.length] | (rnd() & 0x8000) : rnd() & 0xffff;
      f.sig[i] = (BigInt(rnd()) << 32n) | BigInt(rnd());
    }
    f.empty = rnd() & rnd() & 0xff;
    f.fcw = rnd() & 0xffff;
    f.fsw = rnd() & 0xffff;
    for (let i = 0; i < 128; i++) buf[i] = rnd() & 0xff;
    f.eflagsIn = rnd();
    const op = 0xd8 + (rnd() & 7), modrm = rnd() & 0xff;
    try {
      f.exec(op, modrm, 0, (rnd() & 1) === 1, mem);
    } catch (e) {
      if (errors.length < 5) errors.push(`${op.toString(16)} ${modrm.toString(16)}: ${(e as Error).message}`);
    }
    // the state stays well-formed
    if (f.top < 0 || f.top > 7 || (f.fsw & 0x3800) >> 11 !== f.top) errors.push(`bad TOP after ${op.toString(16)} ${modrm.toString(16)}`);
  }
  expect(errors).toEqual([]);
});

it('FNSTENV/FLDENV and FNSAVE/FRSTOR round-trip the state in all four layouts (real/protected, 16/32-bit)', () => {
  const buf = new Uint8Array(256);
  const mem: FpuMem = {
    rd8: (o) => buf[o], rd16: (o) => buf[o] | (buf[o + 1] << 8),
    rd32: (o) => buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24),
    wr8: (o, v) => { buf[o] = v; }, wr16: (o, v) => { buf[o] = v; buf[o + 1] = v >> 8; },
    wr32: (o, v) => { for (let i = 0; i < 4; i++) buf[o + i] = v >> (8 * i); }, probe: () => {},
  };
  for (const realMode of [false, true]) {
    for (const o16 of [false, true]) {
      const a = new FPU();
      a.realMode = realMode;
      a.fcw = 0x0a7f; a.fsw = 0x3a21; a.ftw = 0x0fc3;
      for (let i = 0; i < 8; i++) { a.se[i] = 0x3fff + i; a.sig[i] = (1n << 63n) | BigInt(i * 12345); }
      a.fip = realMode ? 0x000f1234 : 0x12345678; a.fop = 0x5d9; a.fdp = realMode ? 0x000a5678 : 0x9abcdef0;
      a.exec(0xdd, 0x30, 0, o16, mem); // FNSAVE [0]: then FNINIT
      expect(a.fcw).toBe(0x37f);
      const b = new FPU();
      b.realMode = realMode;
      b.exec(0xdd, 0x20, 0, o16, mem); // FRSTOR [0]
      expect([b.fcw, b.fsw, b.ftw]).toEqual([0x0a7f, 0x3a21, 0x0fc3]); // every non-empty register holds a valid number
      for (let i = 0; i < 8; i++) { expect(b.se[i]).toBe(0x3fff + i); expect(b.sig[i]).toBe((1n << 63n) | BigInt(i * 12345)); }
      // the 16-bit protected layout holds 16-bit offsets and no FOP; the real-mode ones 20-bit addresses and FOP
      const ip = !realMode && o16 ? 0x5678 : realMode ? 0x000f1234 : 0x12345678;
      const dp = !realMode && o16 ? 0xdef0 : realMode ? 0x000a5678 : 0x9abcdef0;
      expect([b.fip >>> 0, b.fdp >>> 0, b.fop]).toEqual([ip, dp, !realMode && o16 ? 0 : 0x5d9]);
    }
  }
});

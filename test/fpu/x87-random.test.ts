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

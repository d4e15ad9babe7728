// A small deterministic PRNG (xoshiro128**, seeded through splitmix32) and the operand-value mix.
// Everything random in the generator goes through one Rng, so a seed fixes the whole vector set.

export class Rng {
  private s: Uint32Array;

  constructor(seed: number) {
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)];
  }

  u8(): number {
    return this.u32() & 0xff;
  }

  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Relative weights of the kinds of operand values (the --mix option). */
export interface Mix {
  zero: number;
  small: number;
  boundary: number;
  random: number;
}

export const DEFAULT_MIX: Mix = { zero: 5, small: 20, boundary: 35, random: 40 };

export function parseMix(text: string): Mix {
  const mix: Mix = { zero: 0, small: 0, boundary: 0, random: 0 };
  for (const part of text.split(',')) {
    const [k, v] = part.split(/[:=]/);
    if (!(k in mix) || v === undefined || !(Number(v) >= 0)) throw new Error(`bad --mix entry '${part}'`);
    mix[k as keyof Mix] = Number(v);
  }
  if (mix.zero + mix.small + mix.boundary + mix.random <= 0) throw new Error('--mix weights sum to 0');
  return mix;
}

const BOUNDARY = [
  0x1, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x100, 0x7ffe, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff, 0x10000,
  0x7ffffffe, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0x0f, 0x10, 0x55, 0xaa, 0x5555,
  0xaaaa, 0x55555555, 0xaaaaaaaa,
];

/** An operand value of `bits` width drawn from the mix. */
export function mixValue(rng: Rng, mix: Mix, bits: 8 | 16 | 32): number {
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const total = mix.zero + mix.small + mix.boundary + mix.random;
  let w = rng.u32() / 0x100000000 * total;
  if ((w -= mix.zero) < 0) return 0;
  if ((w -= mix.small) < 0) {
    const v = rng.range(1, 16);
    return ((rng.chance(0.3) ? -v : v) & mask) >>> 0;
  }
  if ((w -= mix.boundary) < 0) {
    // boundary values of every width, so narrow operands also see 0x7f/0x80 and wide ones 0x7fff...
    return (rng.pick(BOUNDARY) & mask) >>> 0;
  }
  return (rng.u32() & mask) >>> 0;
}

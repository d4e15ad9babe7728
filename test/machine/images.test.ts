/**
 * The bundled bare kernels (guest-images/build/demo.elf, bench.elf) against QEMU's recorded output.
 * The loader mimics QEMU's -kernel in what these kernels print (launcher/README.md): the command line is
 * the kernel's path, a space and the -append text; mem_lower 639 and mem_upper RAM - 1 MiB - 128 KiB.
 * So nothing needs masking: the outputs must be identical, byte for byte.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootBare } from '../../launcher/bare.ts';
import { ROOT, lineDiff, lines } from './helpers.ts';

function boot(name: string, memMiB: number, cmdline: string) {
  const image = readFileSync(resolve(ROOT, 'guest-images/build', `${name}.elf`));
  // the name QEMU was given when the expected output was recorded from the repository root
  return bootBare(image, { memMiB, cmdline, imageName: `guest-images/build/${name}.elf` });
}

describe('bundled bare kernels', () => {
  it('demo prints exactly what it prints under QEMU -m 64 and exits with status 1 (code 0)', () => {
    const r = boot('demo', 64, '');
    const want = readFileSync(resolve(ROOT, 'guest-images/bare/demo.expected'), 'latin1');
    expect(lineDiff(lines(r.output), lines(want))).toEqual([]);
    expect(r.output).toBe(want);
    expect(r.reason).toBe('device-exit');
    expect(r.exitStatus).toBe(1);
  });

  it('demo reports the memory size it was given', () => {
    const r = boot('demo', 16, 'hello world');
    expect(r.output).toContain('Command line:       "guest-images/build/demo.elf hello world"');
    expect(r.output).toContain(`Memory:             639 KiB below 1 MiB, ${16 * 1024 - 1024 - 128} KiB above`);
  });

  it('bench iters=10 prints the reference checksum and PASS, as under QEMU', () => {
    const r = boot('bench', 64, 'iters=10');
    const want = readFileSync(resolve(ROOT, 'bench/workload/bench-10.expected'), 'latin1');
    expect(r.output).toBe(want);
    expect(r.exitStatus).toBe(1);
  });
});

/**
 * The committed guest images and test kernels are built from the committed sources: where a compiler
 * exists, rebuild them in a temporary directory and compare byte for byte (`make check`). Tests boot the
 * committed images, so without this a stale image could hide a source change.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { skipUnless } from '../tools/require-tool.ts';

const ROOT = resolve(__dirname, '../..');

function toolchain(): string | null {
  for (const [tool, args] of [['make', ['--version']], ['gcc', ['--version']], ['ld', ['--version']]] as const) {
    if (spawnSync(tool, args).status !== 0) return `${tool} is not installed`;
  }
  // Compile and link a freestanding i386 object, as the image builds do; nothing 32-bit is ever run.
  const probe = spawnSync('sh', ['-c', 'o=$(mktemp) && gcc -m32 -ffreestanding -nostdlib -c -x c -o "$o.o" - && ld -m elf_i386 -e 0 -o "$o" "$o.o"; s=$?; rm -f "$o" "$o.o"; exit $s'], { input: 'int x;' });
  return probe.status === 0 ? null : 'gcc -m32 / ld -m elf_i386 cannot build 32-bit code here';
}

const skip = skipUnless('committed images match their sources', toolchain(), 'apt-get install gcc gcc-multilib binutils make');

describe.skipIf(skip)('committed images match their sources', () => {
  for (const dir of ['guest-images', 'test/machine/kernels']) {
    it(`make -C ${dir} check`, () => {
      const r = spawnSync('make', ['-s', '-C', resolve(ROOT, dir), 'check'], { encoding: 'utf8', timeout: 170_000 });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }, 180_000);
  }
});

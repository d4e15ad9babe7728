/**
 * Bare mode as a small PC (devices/pc.ts): the PC device kernels against the manual, deterministically
 * (--icount, a fixed RTC time); the toy kernel (VGA, PIT, tasks, keyboard); output routing; the options
 * bare mode cannot honour.
 */
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootBare } from '../../launcher/bare.ts';
import { KERNEL_DIR, PC_KERNELS, RTC_BASE, aoutKernel, X86, lineDiff, lines, runPcKernel } from './helpers.ts';
import { cli } from '../tools/cli.ts';

const toy = readFileSync(resolve(KERNEL_DIR, 'build/toy.elf'));
const bootToy = (input?: string) => bootBare(toy, { memMiB: 32, imageName: 'toy.elf', icount: true, icountShift: 4, rtcBaseMs: RTC_BASE, input, maxInstructions: 100_000_000 });

describe('PC device kernels against the manual (icount, deterministic)', () => {
  for (const name of PC_KERNELS) {
    it(`${name}: every check as the datasheets and the SDM prescribe`, () => {
      const want = lines(readFileSync(resolve(KERNEL_DIR, `${name}.manual`), 'utf8'));
      const { lines: got, result } = runPcKernel(name, 6);
      expect(lineDiff(got, want), `${name} differs from ${name}.manual`).toEqual([]);
      expect(result.reason).toBe('device-exit');
    }, 60_000);
  }
});

describe('the toy kernel', () => {
  it('prints what it prints under QEMU (toy.expected), each character once though it writes COM1 and 0xE9', () => {
    const r = bootToy();
    const want = lines(readFileSync(resolve(KERNEL_DIR, 'toy.expected'), 'latin1'));
    expect([...lines(r.output), `exit status: ${r.exitStatus}`]).toEqual(want);
  }, 60_000);
  it('is deterministic with --icount: two runs, the same output and instruction count', () => {
    const a = bootToy('abc'), b = bootToy('abc');
    expect(a.output).toBe(b.output);
    expect(a.instructions).toBe(b.instructions);
  }, 60_000);
  it('echoes typed keys (stdin -> scan codes on IRQ 1) and leaves its text on the VGA screen', () => {
    const r = bootToy('Hello World');
    expect(r.output).toContain('keyboard echo for half a second:\nHello World\nbye\n');
    expect(r.screen[0]).toBe('Hello from the toy kernel (VGA text, COM1 and port 0xE9)');
    expect(r.screen).toContain('task C: step 2');
  }, 60_000);
});

describe('output routing', () => {
  // writes 'a' to COM1 then 0xE9, then 'b' to COM1, then "xy" to 0xE9 and "xy" to COM1
  const com = (c: string) => [0xba, 0xf8, 0x03, 0x00, 0x00, 0xb0, c.charCodeAt(0), 0xee]; // mov edx, 0x3f8; mov al, c; out dx, al
  const kernel = aoutKernel([...com('a'), ...X86.putc('a'), ...com('b'), ...X86.putc('x'), ...X86.putc('y'), ...com('x'), ...com('y'), ...X86.debugExit(0)]);
  it('both ports to stdio (the default): a character written to both prints once', () => {
    expect(bootBare(kernel).output).toBe('abxy');
  });
  it('--debugcon none: only COM1 (as QEMU with -serial stdio and no debugcon)', () => {
    expect(bootBare(kernel, { debugcon: 'none' }).output).toBe('abxy');
  });
  it('--serial none: only port 0xE9', () => {
    expect(bootBare(kernel, { serial: 'none' }).output).toBe('axy');
  });
  it('--serial file:PATH: COM1 into the file, 0xE9 on stdout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcdev-'));
    const r = bootBare(kernel, { serial: `file:${dir}/com1.txt` });
    expect(r.output).toBe('axy');
    expect(readFileSync(`${dir}/com1.txt`, 'latin1')).toBe('abxy');
  });
});

describe('the loader: kernels from 0x1000 up, as QEMU\'s', () => {
  // mov eax, [ebx + 16] (mbi.cmdline); mov al, [eax]; out 0xE9, al; then isa-debug-exit 0
  const code = [0x8b, 0x43, 0x10, 0x8a, 0x00, 0xe6, 0xe9, ...X86.putc('!'), ...X86.debugExit(0)];
  for (const load of [0x1000, 0x8000, 0x10000]) {
    it(`a kernel loaded at 0x${load.toString(16)} runs and finds its multiboot info and command line`, () => {
      const r = bootBare(aoutKernel(code, { load }), { imageName: 'k.elf' });
      expect(r.output).toBe('k!');
      expect(r.exitStatus).toBe(1);
    });
  }
  it('below 0x1000 is refused with one line', () => {
    expect(() => bootBare(aoutKernel(code, { load: 0x800 }))).toThrow(/loads at 0x800, below 0x1000/);
  });
});

describe('run --bare: PC options', () => {
  it('--cpus 2 is one clear error (SMP bare needs real mode)', async () => {
    const r = await cli('run', '--bare', '--cpus', '2', 'demo');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--cpus: bare mode runs one CPU \(SMP bare kernels start their other CPUs with INIT-SIPI in real mode/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
  it('a bad --serial value is one clear error', async () => {
    const r = await cli('run', '--bare', '--serial', 'tcp:1234', 'demo');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--serial must be stdio, none or file:PATH, not "tcp:1234"/);
  });
  it('--vga FILE: the toy kernel\'s final screen in FILE; stdout stays the serial console', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcdev-'));
    const r = await cli('run', '--bare', '--icount', '--vga', `${dir}/screen.txt`, resolve(KERNEL_DIR, 'build/toy.elf'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('all three tasks done');
    expect(readFileSync(`${dir}/screen.txt`, 'latin1').split('\n')[0]).toBe('Hello from the toy kernel (VGA text, COM1 and port 0xE9)');
  });
  it('sti; hlt with the 8259 masked and no timer armed: the run ends with a message', () => {
    // mask both 8259s (IRQ 0 would otherwise wake it), stop the PIT with a one-shot, then sti; hlt
    const code = [0xb0, 0xff, 0xe6, 0x21, 0xe6, 0xa1, 0xb0, 0x30, 0xe6, 0x43, 0xb0, 0x01, 0xe6, 0x40, 0xe6, 0x40, 0xfb, 0xf4];
    const r = bootBare(aoutKernel(code), { icount: true, maxInstructions: 1e7 });
    expect(r.reason).toBe('halt');
    expect(r.message).toMatch(/halted waiting for an interrupt, and no timer is armed and no input can come/);
  });
});

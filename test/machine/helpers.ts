/** Shared by the machine tests: paths, the test kernels booted in-process, and tiny synthetic kernels. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bootBare, type BareResult } from '../../launcher/bare.ts';

export const ROOT = resolve(__dirname, '../..');
export const KERNEL_DIR = resolve(ROOT, 'test/machine/kernels');
export const KERNELS = ['exceptions', 'rings', 'segments', 'paging', 'io'] as const;
/** The PC device kernels (run with a COM1 whose output is discarded, as run-qemu-pc.sh runs them). */
export const PC_KERNELS = ['intr', 'ports', 'apic'] as const;
/** A fixed RTC time for deterministic runs: 2026-01-01 00:00:00.250 UTC. */
export const RTC_BASE = Date.UTC(2026, 0, 1, 0, 0, 0, 250);

/** Lines of a text file or output, without the empty string after the final newline. */
export function lines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

/** Boot test kernel NAME as the kernels' README says (32 MiB, like run-qemu.sh): its console output
 *  followed by `exit status: N`, as lines. */
export function runKernel(name: string): { lines: string[]; result: BareResult } {
  const image = readFileSync(resolve(KERNEL_DIR, 'build', `${name}.elf`));
  const result = bootBare(image, { memMiB: 32, imageName: `build/${name}.elf`, maxInstructions: 200_000_000 });
  const status = result.exitStatus === undefined ? `(no exit: ${result.reason}: ${result.message})` : String(result.exitStatus);
  return { lines: [...lines(result.output), `exit status: ${status}`], result };
}

/** Boot PC kernel NAME as run-qemu-pc.sh does (COM1 present, its output dropped): with `icountShift`
 *  deterministically (icount, a fixed RTC time), else on the wall clock like QEMU. */
export function runPcKernel(name: string, icountShift?: number): { lines: string[]; result: BareResult } {
  const image = readFileSync(resolve(KERNEL_DIR, 'build', `${name}.elf`));
  const result = bootBare(image, {
    memMiB: 32, imageName: `build/${name}.elf`, maxInstructions: 400_000_000, serial: 'file:/dev/null',
    icount: icountShift !== undefined, icountShift, rtcBaseMs: icountShift !== undefined ? RTC_BASE : undefined,
  });
  const status = result.exitStatus === undefined ? `(no exit: ${result.reason}: ${result.message})` : String(result.exitStatus);
  return { lines: [...lines(result.output), `exit status: ${status}`], result };
}

/** Compare two lists of lines and describe the first few differences (readable failures). */
export function lineDiff(got: string[], want: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(got.length, want.length) && out.length < 20; i++) {
    if (got[i] !== want[i]) out.push(`line ${i + 1}:\n  got:  ${got[i] ?? '(missing)'}\n  want: ${want[i] ?? '(missing)'}`);
  }
  return out;
}

/**
 * A minimal Multiboot kernel described only by the a.out-kludge address fields (flag bit 16): the header
 * at file offset 0, loaded at 1 MiB, `code` starting right after the 32-byte header.
 */
export function aoutKernel(code: number[], opts: { bssEnd?: number; flags?: number; load?: number } = {}): Uint8Array {
  const LOAD = opts.load ?? 0x100000, HEADER = 32;
  const file = new Uint8Array(HEADER + code.length);
  const dv = new DataView(file.buffer);
  const magic = 0x1badb002, flags = opts.flags ?? 0x10000;
  const words = [magic, flags, (-(magic + flags)) >>> 0, LOAD, LOAD, 0, opts.bssEnd ?? 0, LOAD + HEADER];
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  file.set(code, HEADER);
  return file;
}

// A few encodings for the synthetic kernels.
export const X86 = {
  cli: [0xfa],
  hlt: [0xf4],
  jmpSelf: [0xeb, 0xfe],
  ud2: [0x0f, 0x0b],
  /** out 0xF4, al after mov al, v */
  debugExit: (v: number) => [0xb0, v & 0xff, 0xe6, 0xf4],
  /** mov al, c; out 0xE9, al */
  putc: (c: string) => [0xb0, c.charCodeAt(0), 0xe6, 0xe9],
  /** lidt [abs32] */
  lidt: (addr: number) => [0x0f, 0x01, 0x1d, addr & 0xff, (addr >>> 8) & 0xff, (addr >>> 16) & 0xff, addr >>> 24],
};

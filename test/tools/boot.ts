/** Booting a bundled lguest guest for the tests: one helper instead of a copy per test file. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootLguest, type LguestBootOptions, type LguestResult, type VcpuWorkers } from '../../launcher/lguest.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';

/** A boot's console output (latin1) and how it ended. */
export interface GuestRun { out: string; r: LguestResult }

/** What a test may set; the rest has a default (1 vCPU, 2-level paging, no command line). */
export type BootOptions = Partial<Omit<LguestBootOptions, 'image' | 'imageName' | 'memMiB' | 'timeoutSec'>>;

/** The memory a test guest gets unless it asks for more or less (MiB). */
export const TEST_MEM_MIB = 16;
/** A guest test's timeout (s): a hang fails, and every bundled guest finishes far sooner. */
export const TEST_TIMEOUT_SEC = 60;

/** The built image of guest `name` (the -pae build with `pae`). */
export function guestImage(name: string, pae = false): Buffer {
  return readFileSync(join(IMAGE_DIR, `${name}${pae ? '-pae' : ''}.elf`));
}

/**
 * Boot guest `name` from guest-images/build on `workers` (or workers of its own), collecting everything
 * it writes to the console (an `onConsole` of the caller's sees the bytes too). `memMiB` and `timeoutSec`
 * default to TEST_MEM_MIB and TEST_TIMEOUT_SEC.
 */
export async function bootGuest(
  name: string, o: BootOptions & { memMiB?: number; timeoutSec?: number; image?: Uint8Array } = {}, workers?: VcpuWorkers,
): Promise<GuestRun> {
  const chunks: Buffer[] = [];
  const { image, memMiB, timeoutSec, onConsole, ...rest } = o;
  const r = await bootLguest({
    cpus: 1, pae: false, cmdline: '', ...rest,
    image: image ?? guestImage(name, o.pae), imageName: name,
    memMiB: memMiB ?? TEST_MEM_MIB, timeoutSec: timeoutSec ?? TEST_TIMEOUT_SEC,
    onConsole: (b) => { chunks.push(Buffer.from(b)); onConsole?.(b); },
  }, workers);
  return { out: Buffer.concat(chunks).toString('latin1'), r };
}

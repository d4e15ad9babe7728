/**
 * Every bundled lguest guest booted end to end through the Launcher (a vCPU worker, the Host, the
 * Switcher, shadow paging), in 2-level and PAE paging: its own checks pass and it powers off; every
 * misbehave case is killed with its own reason; a restart request reboots the guest.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { VcpuWorkers } from '../../launcher/lguest.ts';
import { bootGuest, guestImage } from '../tools/boot.ts';
import { prepareGuest } from '../../launcher/lguest-layout.ts';
import { BOOT_PARAMS, LOADER_TYPE_UNDEFINED } from '../../switcher/layout.ts';

const MEM_MIB = 16;
/** The misbehave cases need little memory (fewer boot PTEs for the guest to tell the Host about). */
const MISBEHAVE_MIB = 8;
/** Workers shared by every boot of this file (starting a thread and loading the Host costs more than
 *  most of these guests run). */
const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

const boot = (name: string, pae: boolean, cmdline = '', extra: { maxRestarts?: number; timeoutSec?: number; memMiB?: number } = {}) =>
  bootGuest(name, { pae, cmdline, memMiB: MEM_MIB, ...extra }, workers);

describe.concurrent.each([false, true])('bundled guests (pae %s)', (pae) => {
  test.each(['hello', 'traps', 'timer', 'usermode'])('%s checks itself and powers off', async (name) => {
    const { out, r } = await boot(name, pae, name === 'hello' ? 'hello  "world" x=1' : '');
    expect(out).not.toMatch(/FAIL/);
    expect(out).toMatch(/check: .*: ok/);
    expect(out).toContain(`${name}: done\n`);
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    expect(r.stats.shadow?.leakedFrames).toBe(0);
    if (name === 'hello') {
      expect(out).toContain('hello: command line: "hello  "world" x=1"');
      expect(out).toContain(`hello: paging: ${pae ? 'PAE' : '2-level'}`);
      expect(out).toContain(`(${MEM_MIB} MiB)`);
    }
    if (name === 'usermode') {
      expect(out).toMatch(/task 7: killed by page fault \(vector 14\) at eip [0-9a-f]+, error 5, address c0100000/);
      expect(out).toMatch(/task 8: killed by general protection \(vector 13\) at eip [0-9a-f]+, error fa/);
      expect(r.stats.host.interruptsDelivered).toBeGreaterThan(0);
    }
  });
});

/** Each misbehave case and the reason the Host must kill it with. */
const MISBEHAVE: Array<[string, RegExp]> = [
  ['preinit', /^hypercall 5 before INIT$/],
  ['kaddr', /^bad kernel address 0xff[ce]00000$/],
  ['syscallvec', /^bad syscall vector$/],
  ['initaddr', /^bad lguest_data address 0xfffff000$/],
  ['switcher', /^attempt to access switcher pages/],
  ['pse', /^bad page (middle )?directory entry/],
  ['pte-pse', /^bad page table entry: PSE/],
  ['beyond', /^bad page table entry: frame beyond pfn_limit/],
  ['badhcall', /^Bad hypercall 99$/],
  ['idtgate', /^bad IDT type 5$/],
  ['idtvec', /^bad IDT vector 256$/],
  ['stack3', /^bad stack pages 3$/],
  ['stackrpl', /^bad stack segment 104$/],
  ['stackpage', /^bad stack page 0xd0002fff$/],
  ['init2', /^already have lguest_data$/],
  ['gdt32', /^too many gdt entries 32$/],
  ['notrap', /^unhandled trap 0 at 0xc0[0-9a-f]+ \(0x0\)$/],
  ['notify', /^Bad NOTIFY 0xfffff000$/],
  ['crash', /^CRASH: misbehave: crash requested$/],
];

/** The cases whose handling depends on the paging mode, run in PAE too. */
const PAGING_CASES = new Set(['kaddr', 'switcher', 'pse', 'pte-pse', 'beyond', 'stackpage', 'notrap']);

describe.concurrent.each([false, true])('misbehave (pae %s)', (pae) => {
  test.each(MISBEHAVE.filter(([name]) => !pae || PAGING_CASES.has(name)))('case=%s is killed with its reason', async (name, reason) => {
    const { out, r } = await boot('misbehave', pae, `case=${name}`, { memMiB: MISBEHAVE_MIB });
    expect(out).not.toMatch(/survived/);
    expect(r.fate.kind).toBe('killed');
    expect(r.fate.reason).toMatch(reason);
  });

  test('case=restart reboots the guest, and a guest that keeps asking is given up on', async () => {
    const { out, r } = await boot('misbehave', pae, 'case=restart', { maxRestarts: 1, memMiB: MISBEHAVE_MIB });
    expect(r.fate.kind).toBe('restart-limit');
    expect(r.stats.boots).toBe(2);
    expect(out.match(/SHUTDOWN \(restart\)/g)?.length).toBe(2);
  });
});

test('--timeout stops a running guest cleanly', async () => {
  // a billion iterations of the benchmark workload: far more than any machine runs in half a second
  const { r } = await boot('bench-lguest', false, 'iters=1000000000', { timeoutSec: 0.5 });
  expect(r.fate.kind).toBe('stopped');
  expect(r.fate.reason).toMatch(/--timeout/);
});

test('an initrd lands page-aligned at the top of RAM and boot_params says where; the guest still boots', async () => {
  const initrd = Buffer.alloc(10_000, 0xa5);
  const image = guestImage('hello');
  const g = prepareGuest({ image, imageName: 'hello', memMiB: 8, pae: false, cmdline: '', initrd, initrdName: 'rd' });
  const bp = g.layout.memBase;
  const at = 8 * 1024 * 1024 - 12_288;
  expect(g.mem.read32(bp + BOOT_PARAMS.ramdisk_image)).toBe(at);
  expect(g.mem.read32(bp + BOOT_PARAMS.ramdisk_size)).toBe(12_288);
  expect(g.mem.read8(bp + BOOT_PARAMS.type_of_loader)).toBe(LOADER_TYPE_UNDEFINED);
  expect(Buffer.from(g.mem.readBytes(bp + at, initrd.length)).equals(initrd)).toBe(true);
  const { out, r } = await bootGuest('hello', { image, memMiB: 8, initrd, initrdName: 'rd' }, workers);
  expect(out).toContain('hello: done');
  expect(r.fate.kind).toBe('poweroff');
});

test('a vCPU worker that dies ends the boot with an error instead of a hang', async () => {
  const own = new VcpuWorkers(1);
  try {
    const threads = (own.pool as unknown as { workers: Array<{ terminate(): Promise<number> }> }).workers;
    let killed = false;
    // the worker is killed as soon as the guest has said something (it is then well inside its run)
    const run = bootGuest('usermode', { onConsole: () => { if (!killed) { killed = true; void threads[0].terminate(); } } }, own);
    await expect(run).rejects.toThrow(/worker died/);
  } finally {
    await own.destroy();
  }
});

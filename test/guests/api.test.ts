/** The library API (launcher/api.ts) as a program using `import { boot, run } from 'lguest-ts'` meets it:
 *  the same guests, options, fates and exit statuses as the CLI, with the console streamed to it and
 *  input fed by it. Runs the sources (the build is covered by test/unit/examples.test.ts). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { boot, run, UserError, VcpuWorkers, version, listImages } from '../../launcher/api.ts';

const dir = mkdtempSync(join(tmpdir(), 'lguest-api-'));
const workers = new VcpuWorkers(1);
afterAll(() => workers.destroy());

describe('library API: lguest guests', () => {
  test('run: console, power-off, exit status 0 and the statistics', async () => {
    const chunks: Uint8Array[] = [];
    const json = join(dir, 'stats.json');
    const r = await run({ image: 'hello', memMiB: 16, cmdline: 'x=1', statsJson: json, onConsole: (b) => chunks.push(b), workers });
    expect(r.fate.kind).toBe('poweroff');
    expect(r.exitStatus).toBe(0);
    expect(r.output).toContain('Hello from an lguest-ts guest!');
    expect(r.output).toContain('command line: "x=1"');
    expect(r.output).toContain('memory: 16777216 bytes');
    expect(Buffer.concat(chunks).toString('utf8')).toBe(r.output);
    if (r.mode !== 'lguest') throw new Error('mode');
    expect(r.stats.host.hypercalls.SET_PTE).toBe(4096); // one per page of its linear map at 16 MiB
    expect(r.stats.vcpus[0].instructions).toBeGreaterThan(100_000);
    expect(r.stats.shadow?.leakedFrames).toBe(0);
    expect(JSON.parse(readFileSync(json, 'utf8')).fate.kind).toBe('poweroff');
  });

  test('PAE, several vCPUs, an image given as bytes', async () => {
    const pae = await run({ image: 'hello', pae: true, memMiB: 16, workers });
    expect(pae.output).toContain('paging: PAE');
    const smp = await run({ image: 'smp', cpus: 2, memMiB: 16, timeoutSec: 60 });
    expect(smp.fate.kind).toBe('poweroff');
    if (smp.mode !== 'lguest') throw new Error('mode');
    expect(smp.stats.vcpus.map((v) => v.started)).toEqual([true, true]);
    const bytes = readFileSync(join(__dirname, '../../guest-images/build/hello.elf'));
    const b = await run({ image: bytes, imageName: 'my.elf', memMiB: 16, workers });
    expect(b.fate.kind).toBe('poweroff');
  });

  test('a killed guest: fate killed with its reason and the Host\'s report, exit status 1', async () => {
    const r = await run({ image: 'misbehave', cmdline: 'case=badhcall', memMiB: 16, workers });
    expect(r.fate).toMatchObject({ kind: 'killed', reason: 'Bad hypercall 99' });
    const report = r.fate.kind === 'killed' ? r.fate.report ?? [] : [];
    expect(report[0]).toMatch(/^vCPU 0 registers/);
    expect(report.some((l) => /^\s+\[\d+\] hypercall 99\(/.test(l))).toBe(true);
    expect(r.exitStatus).toBe(1);
  });

  test('timeout and stop(): the guest ends with its fate, never a rejection', async () => {
    const t = await run({ image: 'bench-lguest', cmdline: 'iters=1000000000', memMiB: 16, timeoutSec: 0.5, workers });
    expect(t.fate.kind).toBe('timeout');
    expect(t.exitStatus).toBe(124);
    const g = boot({ image: 'bench-lguest', cmdline: 'iters=1000000000', memMiB: 16, workers });
    setTimeout(() => g.stop(), 300);
    const s = await g.result;
    expect(s.fate).toEqual({ kind: 'stopped', reason: 'stopped by the caller' });
    expect(s.exitStatus).toBe(130);
    const ac = new AbortController();
    const g2 = boot({ image: 'bench-lguest', cmdline: 'iters=1000000000', memMiB: 16, signal: ac.signal, workers });
    setTimeout(() => ac.abort(), 200);
    expect((await g2.result).fate.kind).toBe('stopped');
  });

  test('console input and the console as an async iterator', async () => {
    const g = boot({ image: 'virtcon', cmdline: 'input=6', memMiB: 16, timeoutSec: 60, workers });
    g.write('abc');
    g.write(new Uint8Array([0x64, 0x65, 0x66])); // def
    let text = '';
    for await (const c of g.console) text += Buffer.from(c).toString('latin1');
    const r = await g.result;
    expect(r.fate.kind).toBe('poweroff');
    expect(text).toContain('abcdef');
  });
});

describe('library API: bare kernels', () => {
  test('isa-debug-exit: fate exit with the value, the CLI\'s status, statistics', async () => {
    const r = await run({ image: 'demo', bare: true });
    expect(r.fate).toEqual({ kind: 'exit', value: 0 });
    expect(r.exitStatus).toBe(1); // (0 << 1) | 1, as QEMU
    expect(r.output).toContain('goodbye');
    if (r.mode !== 'bare') throw new Error('mode');
    expect(r.stats.instructions).toBeGreaterThan(10_000);
    const ok = await run({ image: 'demo', bare: true, debugExitOk: 0 });
    expect(ok.exitStatus).toBe(0);
  });

  test('a stopped bare kernel keeps the caller\'s event loop running: stop() and timeout end it', async () => {
    const g = boot({ image: 'bench', bare: true, cmdline: 'iters=1000000000' });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    setTimeout(() => g.stop(), 300);
    const r = await g.result;
    clearInterval(timer);
    expect(r.fate).toEqual({ kind: 'stopped', reason: 'stopped by the caller' });
    expect(r.exitStatus).toBe(130);
    expect(ticks).toBeGreaterThan(0); // it yields between slices of 1M instructions (without that, stop() could never run)
    const messages: string[] = [];
    const t = await run({ image: 'bench', bare: true, cmdline: 'iters=1000000000', timeoutSec: 0.3, onMessage: (m) => messages.push(m) });
    expect(t.fate.kind).toBe('timeout');
    expect(t.exitStatus).toBe(124);
    expect(messages.join('')).toMatch(/timeout: stopped the guest after 0.3 s/);
  });

  test('a kernel that halts: its reason and registers', async () => {
    const elf = join(dir, 'hlt.elf');
    writeFileSync(elf, multibootHlt());
    const r = await run({ image: elf, bare: true });
    expect(r.fate.kind).toBe('halt');
    if (r.fate.kind !== 'halt') throw new Error('kind');
    expect(r.fate.reason).toMatch(/halted with interrupts disabled/);
    expect(r.fate.registers).toMatch(/eip=/);
    expect(r.exitStatus).toBe(4);
  });
});

describe('library API: bad options', () => {
  test('the CLI\'s one-line messages, as UserError, thrown by boot()', () => {
    const cases: Array<[Parameters<typeof boot>[0], RegExp]> = [
      [{ image: 'hello', memMiB: 1 }, /--mem must be an integer from 2 to 1024 MiB/],
      [{ image: 'hello', cpus: 9 }, /--cpus must be an integer from 1 to 8/],
      [{ image: 'hello', timeoutSec: -1 }, /--timeout must be a positive number/],
      [{ image: 'hello', debugExitOk: 0 }, /--debug-exit-ok is for bare mode/],
      [{ image: 'demo', bare: true, rng: true }, /--block and --rng are for lguest mode/],
      [{ image: 'demo' }, /demo is a bare Multiboot kernel: run it with --bare/],
      [{ image: 'no-such-guest' }, /no such image: no-such-guest/],
    ];
    for (const [opts, msg] of cases) {
      expect(() => boot(opts)).toThrow(UserError);
      expect(() => boot(opts)).toThrow(msg);
    }
  });
  test('bad input found while booting rejects result with a UserError', async () => {
    await expect(run({ image: 'hello', initrd: join(dir, 'missing.img') })).rejects.toThrow(/no such initrd/);
    await expect(run({ image: new Uint8Array(100), memMiB: 16 })).rejects.toBeInstanceOf(UserError);
    expect(() => boot({ image: 'demo', bare: true }).write('x')).toThrow(/bare mode has no console input/);
  });
  test('version and the bundled images', () => {
    expect(version).toBe(JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')).version);
    expect(listImages().map((i) => i.name)).toContain('hello');
  });
});

/** A Multiboot kernel (a.out kludge) whose code is cli; hlt. */
function multibootHlt(): Uint8Array {
  const load = 0x100000, entry = load + 32;
  const b = Buffer.alloc(64);
  const flags = 0x10003; // page-align, memory info, a.out kludge
  b.writeUInt32LE(0x1badb002, 0);
  b.writeUInt32LE(flags, 4);
  b.writeUInt32LE((-(0x1badb002 + flags)) >>> 0, 8);
  b.writeUInt32LE(load, 12); // header_addr
  b.writeUInt32LE(load, 16); // load_addr
  b.writeUInt32LE(load + 64, 20); // load_end_addr
  b.writeUInt32LE(load + 64, 24); // bss_end_addr
  b.writeUInt32LE(entry, 28); // entry
  b[32] = 0xfa; b[33] = 0xf4; // cli; hlt
  return b;
}

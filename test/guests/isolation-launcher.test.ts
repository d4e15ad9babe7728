// Issue 10, the Launcher's and the devices' side: what a hostile guest (attackl-io.elf) or hostile input
// does to the `lguest-ts` process, seen from outside as a user sees it: the CLI as a child process, its
// exit status, its stdout and stderr, its memory (/proc). Every test has its own deadline (a hang fails).
// The machine is shared: a boot can take seconds to start, so deadlines are generous, and nothing here
// asserts a duration.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, openSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BIN, cli } from '../tools/cli.ts';

const BUILD = resolve(__dirname, '../../guest-images/build');
const ATTACK = join(BUILD, 'attackl-io.elf');
const ATTACK_PAE = join(BUILD, 'attackl-io-pae.elf');
const MIB = 1 << 20;
const T = 90_000; // per test: a hang fails, a slow start on a busy machine does not

const tmp = mkdtempSync(join(tmpdir(), 'lguest-iso-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// A test that failed leaves no Launcher behind.
const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });

interface Run {
  p: ChildProcess;
  stdout: () => string;
  stdoutBytes: () => number;
  stderr: () => string;
  /** Resolves when the text appears on stdout (or the process ends: then rejects). */
  waitStdout: (text: string) => Promise<void>;
  exit: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn the CLI. `keep` false: stdout is counted, not kept (floods). */
function start(args: string[], o: { env?: Record<string, string>; keep?: boolean; read?: boolean } = {}): Run {
  const p = spawn(process.execPath, [BIN, 'run', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(o.env ?? {}) },
  });
  children.push(p);
  let out = '', err = '', bytes = 0;
  const waiters: Array<{ text: string; res: () => void; rej: (e: Error) => void }> = [];
  const check = () => {
    for (const w of waiters.splice(0)) {
      if (out.includes(w.text)) w.res(); else waiters.push(w);
    }
  };
  if (o.read !== false) {
    p.stdout!.on('data', (d: Buffer) => {
      bytes += d.length;
      if (o.keep !== false || out.length < 1 << 16) out += d.toString('latin1');
      else {
        // a flood: keep only the lines the tests look for
        const s = d.toString('latin1');
        for (const m of s.matchAll(/attackl: [^\n]*\n/g)) out += m[0];
      }
      check();
    });
  }
  p.stderr!.on('data', (d) => { err += d; });
  const exit = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((res) => {
    p.on('close', (status, signal) => {
      for (const w of waiters.splice(0)) w.rej(new Error(`exited (${status}) before "${w.text}"; stderr: ${err}`));
      res({ status, signal });
    });
  });
  return {
    p, exit,
    stdout: () => out, stdoutBytes: () => bytes, stderr: () => err,
    waitStdout: (text) => new Promise((res, rej) => { waiters.push({ text, res, rej }); check(); }),
  };
}

/** The child's resident set size in bytes (Linux /proc), or 0 once it is gone. */
function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lines of stderr, without the empty last one. */
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('issue 10: a vCPU worker that fails', () => {
  // 1b. The worker of vCPU 1 throws (LGUEST_TS_TEST_FAIL_VCPU stands for a Host bug) while vCPU 0 has
  // printed and halts for ever: the run must end at once, with one line and status 70, and keep vCPU
  // 0's output. (--timeout 600: ending at the timeout would fail the test's deadline.)
  for (const how of ['1', '1:exit']) {
    it(`vCPU 1's worker ${how === '1' ? 'throws' : 'dies'}: every vCPU stops, one line, status 70, vCPU 0's output kept`, async () => {
      const r = start([ATTACK, '--cpus', '2', '--cmdline', 'case=smp', '--timeout', '600'], { env: { LGUEST_TS_TEST_FAIL_VCPU: how } });
      const { status } = await r.exit;
      expect(status).toBe(70);
      expect(r.stdout()).toContain('attackl: vCPU 0 alive\n');
      expect(r.stdout()).toContain('attackl: VCPU_START of vCPU 1: 0\n');
      const err = lines(r.stderr());
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(how === '1'
        ? /^lguest-ts: internal error: the vCPU 1 worker failed: injected failure/
        : /^lguest-ts: internal error: the vCPU 1 worker died before the guest ended$/);
    }, T);
  }
});

describe('issue 10: bounded work per kick, interruptible', () => {
  // 2. One NOTIFY naming 64 GiB of console output (256 chains of 256 descriptors, all the same 1 MiB).
  it('a 64 GiB console kick returns to the guest and --timeout still stops it (status 124)', async () => {
    const r = start([ATTACK, '--cmdline', 'case=kick64g', '--timeout', '20'], { keep: false });
    await r.waitStdout('attackl: kick returned\n');
    const { status } = await r.exit;
    expect(status).toBe(124);
    expect(lines(r.stderr())).toEqual(['lguest-ts: --timeout: stopped the guest after 20 s']);
  }, T);

  it('the first Ctrl-C stops a guest that floods the console with one kick (status 130)', async () => {
    const r = start([ATTACK, '--cmdline', 'case=kick64g'], { keep: false });
    await r.waitStdout('attackl: kick returned\n');
    const before = r.stdoutBytes();
    r.p.kill('SIGINT');
    const { status } = await r.exit;
    expect(status).toBe(130);
    expect(lines(r.stderr())).toEqual(['lguest-ts: interrupted (SIGINT): stopped the guest']);
    expect(r.stdoutBytes()).toBeGreaterThan(before - 1); // still flooding when interrupted
  }, T);

  it('a block kick of 256 requests of 254 MiB each returns to the guest and --timeout stops it', async () => {
    const disk = join(tmp, 'big.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 256 * MIB); // sparse
    closeSync(fd);
    const r = start([ATTACK, '--cmdline', 'case=blk64', '--block', disk, '--timeout', '20'], { keep: false });
    await r.waitStdout('attackl: kick returned\n');
    const { status } = await r.exit;
    expect(status).toBe(124);
  }, T);
});

describe('issue 10: console backpressure', () => {
  // 3. The guest streams 256 MiB through the virtio console into a pipe nobody reads: the Launcher must
  // hold the guest, not the bytes. Then the reader wakes up: every byte arrives, in order, and the guest
  // ends normally.
  it('a stalled reader holds the guest, not the memory; nothing is lost when it reads again', async () => {
    const total = 256;
    const r = start([ATTACK, '--cmdline', `case=stream total=${total}`], { read: false });
    // Read the first bytes (the guest is running), then stop reading: the pipe fills up.
    const first = await new Promise<Buffer>((res) => r.p.stdout!.once('data', (d: Buffer) => { r.p.stdout!.pause(); res(d); }));
    const base = rss(r.p.pid!);
    let peak = base;
    for (let i = 0; i < 24; i++) { // about 6 s: before the fix the 256 MiB pile up in a fraction of that
      await sleep(250);
      peak = Math.max(peak, rss(r.p.pid!));
    }
    expect(peak - base).toBeLessThan(64 * MIB);
    // Read on: everything comes, in 64-byte lines, then the guest's last line.
    let bytes = first.length, bad = 0, tail = '';
    const check = (d: Buffer) => {
      const s = tail + d.toString('latin1');
      const cut = s.lastIndexOf('\n') + 1;
      for (const l of s.slice(0, cut).split('\n').slice(0, -1)) if (l.length !== 63 && l !== 'attackl: stream done') bad++;
      tail = s.slice(cut);
    };
    check(first);
    r.p.stdout!.on('data', (d: Buffer) => { bytes += d.length; check(d); });
    r.p.stdout!.resume();
    const { status } = await r.exit;
    expect(status).toBe(0);
    expect(bad).toBe(0);
    expect(bytes).toBe(total * MIB + 'attackl: stream done\n'.length);
  }, T);
});

describe('issue 10: console backpressure, early console', () => {
  // 3. The same through the early console (NOTIFY of a 4095-byte string, 65,536 times).
  it('a stalled reader holds a guest flooding the early console; nothing is lost', async () => {
    const total = 256;
    const r = start([ATTACK, '--cmdline', `case=early total=${total}`], { read: false });
    const first = await new Promise<Buffer>((res) => r.p.stdout!.once('data', (d: Buffer) => { r.p.stdout!.pause(); res(d); }));
    const base = rss(r.p.pid!);
    let peak = base;
    for (let i = 0; i < 24; i++) {
      await sleep(250);
      peak = Math.max(peak, rss(r.p.pid!));
    }
    expect(peak - base).toBeLessThan(64 * MIB);
    const done = 'attackl: early done\n';
    let bytes = first.length, others = 0, last = first.toString('latin1');
    const count = (d: Buffer) => { for (const b of d) if (b !== 0x65 && b !== 0x0a) others++; };
    count(first);
    r.p.stdout!.on('data', (d: Buffer) => { bytes += d.length; count(d); last = (last + d.toString('latin1')).slice(-64); });
    r.p.stdout!.resume();
    const { status } = await r.exit;
    expect(status).toBe(0);
    expect(last.endsWith(done)).toBe(true);
    expect(bytes).toBe(total * 256 * 4095 + done.length);
    expect(others).toBe([...done].filter((c) => c !== 'e' && c !== '\n').length);
  }, T);
});

describe('issue 10: stdout closed under the guest', () => {
  // 4. `lguest-ts run ... | head`: the reader goes away. One line, status 74, no stack trace.
  it('lguest mode: one line, status 74', async () => {
    const r = start([ATTACK, '--cmdline', 'case=stream total=64'], { read: false });
    await new Promise<void>((res) => r.p.stdout!.once('data', () => res()));
    r.p.stdout!.destroy();
    const { status } = await r.exit;
    expect(lines(r.stderr())).toEqual(['lguest-ts: output closed, guest stopped']);
    expect(status).toBe(74);
  }, T);

  it('bare mode: one line, status 74', async () => {
    const r = start(['--bare', 'demo'], { read: false });
    r.p.stdout!.destroy();
    const { status } = await r.exit;
    expect(lines(r.stderr())).toEqual(['lguest-ts: output closed, guest stopped']);
    expect(status).toBe(74);
  }, T);
});

describe('issue 10: guest text on stderr', () => {
  // 6. A SHUTDOWN message with newlines, "guest killed:", CR, ESC sequences, BEL and a C1 CSI byte.
  it('a SHUTDOWN message cannot forge a line or reach the terminal as control characters', async () => {
    const r = await cli('run', ATTACK, '--cmdline', 'case=shutdown');
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/); // nothing but \n ends or colours anything
    const killed = lines(r.stderr).filter((l) => l.includes('guest killed:'));
    expect(killed).toHaveLength(1);
    expect(lines(r.stderr)).toEqual([
      'guest killed: CRASH: bye\\nguest killed: forged by the guest\\r\\e[2J\\e]0;owned\\x07\\x9b31m\\\\x41 end',
    ]);
  }, T);
});

describe('issue 10: bad input', () => {
  const dir = join(tmp, 'a-directory');
  mkdirSync(dir, { recursive: true });
  const huge = join(tmp, 'huge.img');
  const fd = openSync(huge, 'w');
  ftruncateSync(fd, 3 * 1024 * MIB); // 3 GiB, sparse
  closeSync(fd);

  const bad = (args: string[], message: RegExp) => async () => {
    const r = await cli('run', ...args);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('internal error');
    expect(r.status).toBe(2);
  };

  it('a directory as the image', bad([dir], /a-directory: is a directory, not a file/), T);
  it('a directory as the bare image', bad(['--bare', dir], /a-directory: is a directory, not a file/), T);
  it('a directory as --initrd', bad(['hello', '--initrd', dir], /--initrd .*a-directory: is a directory, not a file/), T);
  it('an image over 2 GiB', bad([huge], /huge\.img: 3221225472 bytes, more than the guest memory \(--mem 64\) can hold/), T);
  it('an initrd over 2 GiB', bad(['hello', '--initrd', huge], /--initrd .*huge\.img: 3221225472 bytes, more than the guest memory/), T);
  it('/dev/zero as the image', bad(['/dev/zero'], /\/dev\/zero: not a regular file/), T);
  it('/dev/zero as --initrd', bad(['hello', '--initrd', '/dev/zero'], /--initrd \/dev\/zero: not a regular file/), T);
  it('--stats-json naming a directory', bad(['hello', '--stats-json', dir], /--stats-json .*a-directory: is a directory, not a file/), T);
  it('--stats-json in a missing folder', bad(['hello', '--stats-json', join(tmp, 'no/such/stats.json')], /--stats-json .*: no such folder: .*no\/such/), T);
  it('--pae with a 2-level image', bad([join(BUILD, 'hello.elf'), '--pae'], /hello\.elf: built for 2-level paging \(no PAE\): run it without --pae/), T);
  it('a PAE image without --pae', bad([ATTACK_PAE], /attackl-io-pae\.elf: built for PAE paging: run it with --pae/), T);
  it('an unknown option before the image', async () => {
    const r = await cli('run', '--frob', 'hello');
    expect(lines(r.stderr)).toEqual(['lguest-ts: unknown option --frob']);
    expect(r.status).toBe(2);
  }, T);

  it('an ELF segment at 0x1000 is blamed on the image, not on --cmdline', async () => {
    // hello.elf with its first PT_LOAD moved to physical 0x1000 (the command line's page).
    const img = new Uint8Array(readFileSync(join(BUILD, 'hello.elf')));
    const dv = new DataView(img.buffer);
    const phoff = dv.getUint32(28, true), phentsize = dv.getUint16(42, true), phnum = dv.getUint16(44, true);
    let i = 0;
    while (i < phnum && dv.getUint32(phoff + i * phentsize, true) !== 1) i++;
    dv.setUint32(phoff + i * phentsize + 12, 0x1000, true);
    const path = join(tmp, 'at-0x1000.elf');
    writeFileSync(path, img);
    await bad([path], /at-0x1000\.elf: a segment at physical 0x1000 overlaps the command line page/)();
  }, T);

  it('--timeout 2147484 (past setTimeout\'s range) is a long timeout, not an immediate stop', async () => {
    const r = await cli('run', 'hello', '--timeout', '2147484');
    expect(r.stderr).not.toMatch(/Warning|timeout/i);
    expect(r.stdout).toContain('hello: done');
    expect(r.status).toBe(0);
  }, T);

  it('SIGTERM stops the guest with one line and status 143', async () => {
    const r = start([ATTACK, '--cmdline', 'case=idle', '--stats']);
    await r.waitStdout('attackl: idle\n');
    r.p.kill('SIGTERM');
    const { status } = await r.exit;
    expect(status).toBe(143);
    expect(r.stderr()).toContain('lguest-ts: terminated (SIGTERM): stopped the guest\n');
    expect(r.stderr()).toContain('lguest-ts stats (1 boot):'); // a clean stop: the statistics print
  }, T);
});

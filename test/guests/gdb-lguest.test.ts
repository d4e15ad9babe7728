/**
 * gdb against lguest guests (`lguest-ts run IMAGE --gdb 0 [--cpus N]`), as a user meets it: the real gdb
 * in batch mode stops the guest at a symbol, reads the guest's registers (its kernel at ring 1) and its
 * memory at kernel virtual addresses, steps one instruction across a hypercall, sees one thread per
 * started vCPU, switches between them, continues to the guest's end or kills it; a raw protocol client
 * checks Ctrl-C (with a vCPU the guest never starts), a dropped connection, and --timeout while every vCPU
 * is stopped in the debugger. Addresses come from the images' own symbol tables. gdb missing: the gdb
 * tests skip, saying so.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { skipUnless } from '../tools/require-tool.ts';
import { BIN, NO_GDB, ROOT, RawClient, elfFind, elfRead32, elfSymbols, gdb, haveGdb, hex, killAll, launch } from '../tools/gdb.ts';

const image = (name: string) => resolve(ROOT, 'guest-images/build', `${name}.elf`);
const HELLO = image('hello'), HELLO_PAE = image('hello-pae'), SMP = image('smp'), TRAPS = image('traps');

afterEach(killAll);

const pad8 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
/** gdb's "p/x $REG" answers, in order, for the registers named. */
function printed(out: string): string[] {
  return [...out.matchAll(/^\$\d+ = (0x[0-9a-f]+)$/gm)].map((m) => m[1]);
}

/** The `int $0x1f` (cd 1f) in function `fn` of an image. */
function hypercallIn(path: string, fn: string): number {
  const at = elfFind(path, Uint8Array.of(0xcd, 0x1f), elfSymbols(path).get(fn)!);
  expect(at).toBeDefined();
  return at!;
}

describe.skipIf(skipUnless('gdb', haveGdb ? null : 'gdb is not on PATH', 'apt-get install gdb'))(`gdb debugs an lguest guest${haveGdb ? '' : NO_GDB}`, () => {
  it('hello: stops before the first instruction and at guest_main, shows ring-1 registers and kernel memory, steps over a hypercall, continues to the end', async () => {
    const sym = elfSymbols(HELLO);
    const main = sym.get('guest_main')!;
    const greeting = elfFind(HELLO, 'hello: Hello from an lguest-ts guest!')!;
    const int1f = hypercallIn(HELLO, 'hcall');
    const l = await launch(HELLO, '--timeout', '60');
    const out = await gdb(l.port,
      'p/x $pc', 'info threads',
      `break *${hex(main)}`, 'continue', 'info registers', `x/s ${hex(greeting)}`,
      'x/4xb 0xffc00000', 'break *0xffc00010', 'continue', 'delete',
      `break *${hex(int1f)}`, 'continue', 'x/2i $pc', 'stepi', 'p/x $pc',
      'delete', 'continue');
    const r = await l.done;
    // the guest waits at its first instruction: the entry point (a physical address, identity-mapped)
    expect(printed(out)[0]).toBe('0x100000');
    expect(out).toMatch(/\* 1\s+Thread 1 \(vCPU 0\)/);
    expect(out).toContain(`Breakpoint 1, ${pad8(main)} in ?? ()`);
    expect(out).toMatch(new RegExp(`^eip\\s+${hex(main)}\\s`, 'm'));
    // the guest kernel's segments: ring 1 (RPL 1)
    expect(out).toMatch(/^cs\s+0x61\s/m);
    expect(out).toMatch(/^ss\s+0x69\s/m);
    expect(out).toMatch(/^eflags\s+0x[0-9a-f]+\s+\[.*IF.*\]/m);
    expect(out).toMatch(/^esp\s+0xc0[0-9a-f]{6}\s/m);
    // a string of the kernel's, read at its virtual address through the guest's page tables
    expect(out).toContain(`${hex(greeting)}:\t"hello: Hello from an lguest-ts guest!\\n"`);
    // the Switcher's region is the Host's
    expect(out).toContain('Cannot access memory at address 0xffc00000');
    expect(out).toMatch(/Cannot insert breakpoint 2\.\s+Cannot access memory at address 0xffc00010/);
    // one stepi over `int $0x1f`: the Host runs the hypercall, the step ends on the next instruction
    expect(out).toContain(`=> ${hex(int1f)}:\tint    $0x1f`);
    expect(printed(out).at(-1)).toBe(hex(int1f + 2));
    expect(out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('hello: done');
  });

  it('hello (PAE): a kill from gdb ends the run with status 6 and says so', async () => {
    const int1f = hypercallIn(HELLO_PAE, 'hcall');
    const l = await launch('hello', '--pae', '--timeout', '60');
    const out = await gdb(l.port, `break *${hex(int1f)}`, 'continue', 'stepi', 'p/x $pc', 'x/4xb 0xffe00000', 'kill');
    const r = await l.done;
    expect(out).toContain(`Breakpoint 1, ${pad8(int1f)} in ?? ()`);
    expect(printed(out)).toEqual([hex(int1f + 2)]);
    expect(out).toContain('Cannot access memory at address 0xffe00000');
    expect(out).toContain('[Inferior 1 (Remote target) killed]');
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('lguest-ts: gdb killed the guest\n');
  });

  it('traps: a step onto a faulting instruction stops at its handler; one the Host emulates, on the next instruction', async () => {
    const sym = elfSymbols(TRAPS);
    const main = sym.get('guest_main')!;
    const ud2 = elfFind(TRAPS, Uint8Array.of(0x0f, 0x0b), main)!; // #UD: reflected by the Host to the guest's handler
    const inb = elfFind(TRAPS, Uint8Array.of(0xe4, 0x80), main)!; // in $0x80, %al at ring 1: #GP, emulated by the Host
    const udHandler = elfRead32(TRAPS, sym.get('trap_stub_table')! + 6 * 4);
    const l = await launch('traps', '--timeout', '60');
    const out = await gdb(l.port,
      `break *${hex(ud2)}`, 'continue', 'x/i $pc', 'stepi', 'p/x $pc', 'delete',
      `break *${hex(inb)}`, 'continue', 'x/i $pc', 'stepi', 'p/x $pc', 'p/x $eax & 0xff', 'delete', 'continue');
    const r = await l.done;
    expect(out).toContain(`=> ${hex(ud2)}:\tud2`);
    expect(out).toContain(`=> ${hex(inb)}:\tin     $0x80,%al`);
    expect(printed(out)).toEqual([hex(udHandler), hex(inb + 2), '0xff']);
    expect(out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('traps: done');
  });

  it('fpu: the x87 registers of a vCPU are the guest\'s own (at its #NM handler: the previous task\'s state), readable and writable', async () => {
    const FPU = image('fpu');
    const nm = elfSymbols(FPU).get('nm_handler')!;
    const l = await launch(FPU, '--timeout', '60');
    const out = await gdb(l.port, `break *${hex(nm)}`, 'ignore 1 5', 'continue', 'info registers fctrl fstat ftag',
      'p $st0', 'set $saved = $fctrl', 'set var $fctrl = 0x1234', 'p/x $fctrl', 'set var $fctrl = $saved', 'p/x $fctrl',
      'set $savedst = $st7', 'set var $st7 = -0.75', 'info registers st7', 'set var $st7 = $savedst', 'delete', 'continue');
    const r = await l.done;
    expect(out).toContain(`Breakpoint 1, ${pad8(nm)} in ?? ()`);
    // the 6th #NM: a task switch happened, the FPU still holds the previous owner's state, whose control
    // word is one of the tasks' own (all masked, 64-bit precision, rounding control = its role)
    const fctrl = /^fctrl\s+(0x[0-9a-f]+)\s/m.exec(out)?.[1];
    expect(['0x37f', '0x77f', '0xb7f', '0xf7f']).toContain(fctrl);
    expect(out).toMatch(/^\$\d+ = 0x1234$/m);
    expect(out).toMatch(new RegExp(`^\\$\\d+ = ${fctrl}$`, 'm'));
    expect(out).toMatch(/^st7\s+-0\.75\s+\(raw 0xbffec000000000000000\)/m);
    // everything put back: the guest's own checks all pass
    expect(r.stdout).toContain('fpu: done');
    expect(r.stdout).not.toContain('FAIL');
    expect(r.status).toBe(0);
  });

  it('smp --cpus 2: one thread per started vCPU, each with its own registers; all-stop; continue to power-off', async () => {
    const start = elfSymbols(SMP).get('vcpu_secondary_start')!; // runtime/vcpu.c: only a secondary runs it
    const l = await launch('smp', '--cpus', '2', '--timeout', '60');
    const out = await gdb(l.port,
      'info threads', `break *${hex(start)}`, 'continue', 'info threads',
      'thread 1', 'p/x $esp', 'p/x $eax', 'p/x $cs',
      'thread 2', 'p/x $esp', 'p/x $eax', 'p/x $pc',
      'delete', 'continue');
    const r = await l.done;
    // before the secondary starts, gdb sees vCPU 0 alone
    const first = out.indexOf('Breakpoint 1 at');
    expect(out.slice(0, first)).toMatch(/\* 1\s+Thread 1 \(vCPU 0\)/);
    expect(out.slice(0, first)).not.toContain('vCPU 1');
    expect(out).toContain(`Thread 2 hit Breakpoint 1, ${pad8(start)} in ?? ()`);
    expect(out).toMatch(/^\s+1\s+Thread 1 \(vCPU 0\)/m);
    expect(out).toMatch(/^\* 2\s+Thread 2 \(vCPU 1\)/m);
    const [esp0, eax0, cs0, esp1, eax1, pc1] = printed(out);
    expect(cs0).toBe('0x61');
    expect(pc1).toBe(hex(start));
    expect(esp1).not.toBe(esp0);
    expect(eax1).not.toBe(eax0);
    expect(out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('smp: done');
    expect(r.stdout).not.toMatch(/FAIL/);
  });
});

describe('the gdb stub in lguest mode, over a socket', () => {
  it('Ctrl-C stops a running guest whose second vCPU never starts; gdb sees one thread; kill ends it', async () => {
    const l = await launch('bench-lguest', '--cpus', '2', '--cmdline', 'iters=1000000', '--timeout', '60');
    const c = await RawClient.open(l.port);
    expect(await c.ask('?')).toBe('T05thread:1;');
    c.send('vCont;c');
    await new Promise((res) => setTimeout(res, 500));
    c.socket.write(Buffer.from([0x03]));
    expect(await c.next()).toBe('T02thread:1;');
    expect(await c.ask('qfThreadInfo')).toBe('m1');
    const regs = await c.ask('g');
    expect(regs.slice(10 * 8, 11 * 8)).toBe('61000000'); // cs: the guest kernel, ring 1
    expect(await c.ask('Hg2')).toBe('E22'); // not started: not a thread gdb may pick
    c.send('k');
    const r = await l.done;
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('lguest-ts: gdb killed the guest');
  });

  it('a kill on one vCPU ends the guest while another waits in the debugger', async () => {
    // smp=bad-start: once vCPU 1 is up, vCPU 0 starts it a second time and the Host kills the guest. That
    // call is the first through hcall_vcpu_start (vcpu_start, which made the good ones, has it inlined):
    // stop there, then step vCPU 0 alone into the kill.
    const start = elfSymbols(SMP).get('hcall_vcpu_start')!;
    const l = await launch('smp', '--cpus', '2', '--cmdline', 'smp=bad-start', '--timeout', '60');
    const c = await RawClient.open(l.port);
    expect(await c.ask(`Z0,${start.toString(16)},1`)).toBe('OK');
    expect(await c.ask('vCont;c')).toBe('T05thread:1;swbreak:;');
    expect(await c.ask('qfThreadInfo')).toBe('m1,2');
    expect(await c.ask(`z0,${start.toString(16)},1`)).toBe('OK');
    let reply = '';
    for (let i = 0; i < 100 && !reply.startsWith('W'); i++) {
      reply = await c.ask('vCont;s:1');
      expect(reply).toMatch(/^(T05thread:1;|W01)$/);
    }
    expect(reply).toBe('W01');
    const r = await l.done;
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('guest killed: vCPU 0: ');
  });

  it('a dropped connection lets the guest run on to its end', async () => {
    const main = elfSymbols(HELLO).get('guest_main')!;
    const l = await launch('hello', '--timeout', '60');
    const c = await RawClient.open(l.port);
    expect(await c.ask(`Z0,${main.toString(16)},1`)).toBe('OK');
    c.socket.destroy();
    const r = await l.done;
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('gdb: connection closed; the guest runs on without the debugger');
    expect(r.stdout).toContain('hello: done');
  });

  it('--timeout stops every vCPU while gdb holds them stopped, and tells gdb', async () => {
    const start = elfSymbols(SMP).get('vcpu_secondary_start')!;
    const l = await launch('smp', '--cpus', '2', '--timeout', '4');
    const c = await RawClient.open(l.port);
    expect(await c.ask(`Z0,${start.toString(16)},1`)).toBe('OK');
    c.send('vCont;c');
    expect(await c.next()).toBe(`T05thread:2;swbreak:;`);
    expect(await c.ask('qfThreadInfo')).toBe('m1,2');
    // now both vCPUs wait in the debugger until --timeout ends the run
    expect(await c.next()).toBe('X0e');
    const r = await l.done;
    expect(r.status).toBe(124);
    expect(r.stderr).toContain('--timeout: stopped the guest after 4 s');
  });

  it('waits for gdb only until --timeout', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', 'hello', '--gdb', '0', '--timeout', '0.5'], { encoding: 'latin1', timeout: 30_000 });
    expect(r.status).toBe(124);
    expect(r.stderr).toContain('--timeout');
  });
});

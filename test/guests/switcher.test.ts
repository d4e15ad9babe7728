/**
 * The Switcher and the Host's world switch, in-process: the hand-assembled code page reads as the
 * assembly it documents, and the corner cases of entering and leaving a guest that the bundled guests do
 * not reach (a bad segment in the state the Switcher loads, a guest CS asking for ring 0, the vmcall
 * rewrite).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { disassemble } from '../../emulator/disasm.ts';
import { Shadow } from '../../mmu/shadow.ts';
import type { PhysicalMemory } from '../../mmu/memory.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';
import { prepareGuest } from '../../launcher/lguest-layout.ts';
import { assembleSwitcher, vectorHasErrorCode } from '../../switcher/code.ts';
import { runGuest } from '../../switcher/core.ts';
import { startGuest } from '../../switcher/host.ts';
import type { Fate } from '../../switcher/lguest.ts';
import { SmpLink, newCtrl } from '../../switcher/smp.ts';
import { HostPool } from '../../switcher/pool.ts';
import { loadGuestGdtEntry } from '../../switcher/segments.ts';
import type { LgCpu } from '../../switcher/lguest.ts';

describe('the Switcher code page', () => {
  const sw = assembleSwitcher();
  const text = (off: number, n: number) => disassemble(sw.bytes.subarray(off), off, n).map((i) => i.text);

  test('the return path pops lguest_regs and irets', () => {
    expect(text(sw.returnOffset, 13)).toEqual([
      'pop eax', 'pop ebx', 'pop ecx', 'pop edx', 'pop esi', 'pop edi', 'pop ebp',
      'pop gs', 'pop fs', 'pop ds', 'pop es', 'add esp, 0x8', 'iretd',
    ]);
  });

  test('every stub makes a uniform frame and joins the save code, which ends in hlt', () => {
    const save = sw.trapHltEnd - 14;
    expect(text(save, 12)).toEqual([
      'push es', 'push ds', 'push fs', 'push gs', 'push ebp', 'push edi', 'push esi', 'push edx', 'push ecx',
      'push ebx', 'push eax', 'hlt',
    ]);
    for (let v = 0; v < 256; v++) {
      const expected = [...(vectorHasErrorCode(v) ? [] : ['push 0x0']), `push 0x${v.toString(16)}`, `jmp 0x${save.toString(16)}`];
      expect(text(sw.stubOffset[v], expected.length), `vector ${v}`).toEqual(expected);
    }
  });
});

/** Start hello in-process, let `tweak` change the first entry, run to the end. */
function runHello(tweak: (vcpu: LgCpu, memBase: number, mem: PhysicalMemory) => void): Fate {
  const g = prepareGuest({ image: readFileSync(join(IMAGE_DIR, 'hello.elf')), imageName: 'hello', memMiB: 4, pae: false, cmdline: '' });
  const pool = new HostPool(g.mem, 0, g.layout.poolBytes);
  const ctrl = newCtrl(1);
  const { vcpu } = startGuest({
    mem: g.mem, memBase: g.layout.memBase, memBytes: g.layout.memBytes, pfnLimit: g.layout.pfnLimit, pae: false, pool,
    console: () => {}, makeShadow: (h) => new Shadow(h), entry: g.entry, initrdBytes: 0,
    link: new SmpLink(ctrl, 0),
  });
  tweak(vcpu, g.layout.memBase, g.mem);
  return runGuest(vcpu, { ctrl, poll: () => {}, notify: () => {} });
}

describe('entering and leaving the guest', () => {
  test('a bad segment in the state the Switcher loads kills the guest with "unhandled trap 256"', () => {
    const fate = runHello((v) => v.setReg('ds', 0x1234));
    expect(fate.kind).toBe('killed');
    expect(fate.reason).toMatch(/^unhandled trap 256 at 0x100000 /);
  });

  test('a bad IRET frame (user CS with a kernel SS) is caught by the CPU the same way', () => {
    const fate = runHello((v) => v.setReg('cs', 0x73));
    expect(fate.reason).toMatch(/^unhandled trap 256/);
  });

  test('a guest CS asking for ring 0 is refused before the Switcher runs', () => {
    const fate = runHello((v) => v.setReg('cs', 0x60));
    expect(fate.reason).toBe('bad guest CS 0x60');
  });

  test('vmcall is rewritten into int $0x1f; nop and runs as a hypercall', () => {
    let memBase = 0, mem: PhysicalMemory | undefined;
    const fate = runHello((v, base, m) => {
      memBase = base;
      mem = m;
      // at the entry point: mov eax, 99; vmcall
      m.writeBytes(base + 0x100000, Uint8Array.of(0xb8, 99, 0, 0, 0, 0x0f, 0x01, 0xc1));
    });
    expect(fate.reason).toBe('hypercall 99 before INIT');
    expect([...mem!.readBytes(memBase + 0x100005, 3)]).toEqual([0xcd, 0x1f, 0x90]);
  });

  test('GDT entries: DPL 0 becomes 1, accessed is set, system descriptors are stored not present', () => {
    let gdt: Int32Array | undefined;
    const fate = runHello((v) => {
      loadGuestGdtEntry(v, 20, 0x0000ffff, 0x00cf9a00); // DPL 0 code
      loadGuestGdtEntry(v, 21, 0x0050_0000, 0x0000ec00); // a DPL 3 call gate to LGUEST_CS:0
      gdt = v.gdt;
    });
    expect(fate.kind).toBe('poweroff');
    expect(gdt![20 * 2 + 1] >>> 0).toBe(0x00cfbb00);
    expect(gdt![21 * 2 + 1] & 0x8000).toBe(0);
  });
});

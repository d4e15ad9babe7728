// The disassembler (emulator/disasm.ts): known byte strings and the text they must give.
import { describe, expect, it } from 'vitest';
import { disassemble, disassembleOne } from '../../emulator/disasm.ts';

const hex = (text: string): Uint8Array => Uint8Array.from(text.split(' ').map((pair) => parseInt(pair, 16)));

describe('disassembleOne', () => {
  const cases: [string, string][] = [
    ['01 d8', 'add eax, ebx'],
    ['83 c0 1f', 'add eax, 0x1f'],
    ['83 c0 01', 'add eax, 0x1'],
    ['66 05 34 12', 'add ax, 0x1234'],
    ['b8 78 56 34 12', 'mov eax, 0x12345678'],
    ['8b 44 24 fc', 'mov eax, [esp-0x4]'],
    ['8d 44 24 10', 'lea eax, [esp+0x10]'],
    ['8b 04 8d 00 10 00 00', 'mov eax, [ecx*4+0x1000]'],
    ['ff 35 78 56 34 12', 'push dword ptr [0x12345678]'],
    ['c6 00 07', 'mov byte ptr [eax], 0x7'],
    ['66 67 a1 34 12', 'addr16 mov ax, [0x1234]'],
    ['64 a1 00 00 00 00', 'mov eax, fs:[0x0]'],
    ['f3 a5', 'rep movsd [edi], [esi]'],
    ['f0 0f c1 03', 'lock xadd [ebx], eax'],
    ['0f 20 d8', 'mov eax, cr3'],
    ['0f 22 e0', 'mov cr4, eax'],
    ['0f 01 15 00 20 00 00', 'lgdt [0x2000]'],
    ['0f a2', 'cpuid'],
    ['0f 44 c1', 'cmove eax, ecx'],
    ['cd 1f', 'int 0x1f'],
    ['f4', 'hlt'],
    ['cf', 'iretd'],
    ['0f 0b', 'ud2'],
    // Not valid 32-bit code: lock on a register destination, an opcode cut short, LES with a register.
    ['f0 01 ce', '(bad)'],
    ['0f', '(bad)'],
    ['c4 c0', '(bad)'],
  ];
  it.each(cases)('%s is %s', (bytes, text) => {
    expect(disassembleOne(hex(bytes), 0x1000)).toBe(text);
  });

  it('computes branch targets from eip, wrapping at 4 GiB', () => {
    expect(disassembleOne(hex('eb fe'), 0x1000)).toBe('jmp 0x1000');
    expect(disassembleOne(hex('e8 00 00 00 00'), 0x1000)).toBe('call 0x1005');
    expect(disassembleOne(hex('75 10'), 0xfffffff0)).toBe('jne 0x2');
  });

  it('looks at the first instruction only', () => {
    expect(disassembleOne(hex('90 01 d8'), 0)).toBe('nop');
  });
});

describe('disassemble', () => {
  it('lists instructions with address, length and bytes', () => {
    const listing = disassemble(hex('55 89 e5 83 ec 10 c9 c3'), 0x100000);
    expect(listing).toEqual([
      { eip: 0x100000, length: 1, bytes: '55', text: 'push ebp' },
      { eip: 0x100001, length: 2, bytes: '89 e5', text: 'mov ebp, esp' },
      { eip: 0x100003, length: 3, bytes: '83 ec 10', text: 'sub esp, 0x10' },
      { eip: 0x100006, length: 1, bytes: 'c9', text: 'leave' },
      { eip: 0x100007, length: 1, bytes: 'c3', text: 'ret' },
    ]);
  });

  it('stops after count instructions', () => {
    expect(disassemble(hex('90 90 90 90'), 0, 2).map((i) => i.eip)).toEqual([0, 1]);
    expect(disassemble(hex('90'), 0, 0)).toEqual([]);
    expect(disassemble(new Uint8Array(0), 0)).toEqual([]);
  });

  it('shows an invalid encoding as one byte of (bad) and resynchronises after it', () => {
    const listing = disassemble(hex('f0 01 ce 90'), 0x10);
    expect(listing.map((i) => [i.eip, i.bytes, i.text])).toEqual([
      [0x10, 'f0', '(bad)'],
      [0x11, '01 ce', 'add esi, ecx'],
      [0x13, '90', 'nop'],
    ]);
  });

  it('shows an instruction cut off by the end of the buffer as (bad)', () => {
    const listing = disassemble(hex('90 b8 b8 b8'), 0);
    expect(listing.map((i) => i.text)).toEqual(['nop', '(bad)', '(bad)', '(bad)']);
  });

  it('keeps up with a long listing', () => {
    // 64 KiB of pseudo-random bytes: every instruction is decoded and formatted, none is lost.
    const bytes = new Uint8Array(0x10000);
    let seed = 0x1234567;
    for (let i = 0; i < bytes.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    const started = performance.now();
    const listing = disassemble(bytes, 0);
    const elapsedMs = performance.now() - started;
    expect(listing.reduce((sum, i) => sum + i.length, 0)).toBe(bytes.length);
    expect(listing.length).toBeGreaterThan(10_000);
    expect(elapsedMs).toBeLessThan(5_000);
  });
});

/**
 * Host isolation (issue 10, the Host's part): attack guests (guest-images/lguest/guests/attack-*.c) that
 * try what an attacker inside a guest would, each booted in 2-level and PAE paging. Every act must end
 * the way a real i386 under lguest would end it (a fault, or a kill whose reason names the act), never
 * with the guest in ring 0, a Host exception or a leaked frame.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bootLguest, VcpuWorkers, type LguestResult } from '../../launcher/lguest.ts';
import { IMAGE_DIR } from '../../launcher/images.ts';

const workers = new VcpuWorkers(2);
afterAll(() => workers.destroy());

async function boot(name: string, pae: boolean, cmdline: string, cpus = 1, memMiB = 16): Promise<{ out: string; r: LguestResult }> {
  const chunks: Buffer[] = [];
  const r = await bootLguest({
    image: readFileSync(join(IMAGE_DIR, `${name}${pae ? '-pae' : ''}.elf`)), imageName: name,
    memMiB, cpus, pae, cmdline, onConsole: (b) => chunks.push(Buffer.from(b)), timeoutSec: 60,
  }, workers);
  return { out: Buffer.concat(chunks).toString('latin1'), r };
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

describe.each([false, true])('an SMP guest cannot reach another vCPU\'s Switcher pages (pae %s)', (pae) => {
  const switcher = pae ? 0xffe00000 : 0xffc00000;
  /** vCPU n's saved ESI: its regs page is Switcher page 1 + 2n, lguest_regs at its last 72 bytes. */
  const esiOf = (id: number): number => switcher + (1 + 2 * id) * 4096 + 4096 - 72 + 16;

  test('vCPU 1 writing vCPU 0\'s regs page faults, and vCPU 0 never runs at CPL 0', async () => {
    const { out, r } = await boot('attack-regs', pae, 'dir=1to0', 2);
    expect(out).not.toMatch(/ESCAPED/);
    expect(r.fate.kind).toBe('killed');
    // The secondary's own trap dispatch reports the page fault of the write (error 2: a write to a page
    // that is not present) at vCPU 0's saved ESI; the Host mapped nothing there for vCPU 1.
    expect(r.fate.reason).toMatch(new RegExp(`vCPU 1: unexpected trap 14 \\(page fault\\) at eip [0-9a-f]+, error 2, cr2 ${hex8(esiOf(0))}$`));
    expect(r.stats.shadow?.leakedFrames).toBe(0);
  }, 90_000);

  test('vCPU 0 writing vCPU 1\'s regs page faults, and vCPU 1 never runs at CPL 0', async () => {
    const { out, r } = await boot('attack-regs', pae, 'dir=0to1', 2);
    expect(out).not.toMatch(/ESCAPED|went through/);
    expect(out).toContain(`attack-regs: vCPU 0's write to vCPU 1's regs page faulted (cr2 ${hex8(esiOf(1))}, error 2)\n`);
    expect(r.fate.kind).toBe('killed');
    expect(r.fate.reason).toMatch(/CRASH: attack-regs: vCPU 0's write to another vCPU's regs page faulted$/);
    expect(r.stats.shadow?.leakedFrames).toBe(0);
  }, 90_000);
});

describe.each([false, true])('SET_STACK refuses a kernel stack in the Switcher\'s region (pae %s)', (pae) => {
  const switcher = pae ? 0xffe00000 : 0xffc00000;
  // The page each case names, by the last byte the Host pins (esp - 1).
  const cases: Array<[string, number]> = [
    ['regs', switcher + 2 * 4096 - 1], ['ro', switcher + 3 * 4096 - 1], ['code', switcher + 4096 - 1],
    ['other', switcher + 4 * 4096 - 1], ['end', 0xffffffff],
  ];
  test.each(cases)('where=%s: killed, the same reason in both paging modes', async (where, last) => {
    const { out, r } = await boot('attack-stack', pae, `where=${where}`, 1, 8);
    expect(out).not.toMatch(/FAIL/);
    expect(r.fate).toEqual({ kind: 'killed', reason: `bad stack page 0x${last.toString(16)} in the Switcher's pages` });
    expect(r.stats.shadow?.leakedFrames).toBe(0);
  });
});

describe.each([false, true])('task gates and TSS descriptors raise what the i386 raises (pae %s)', (pae) => {
  test('far JMP/CALL to a not-present TSS or task gate is #NP(selector), to a busy TSS #GP(selector)', async () => {
    const { out, r } = await boot('attack-task', pae, '', 1, 8);
    expect(out).toBe([
      'attack-task: far jmp to an available TSS (0xa1): #NP, error 0xa0',
      'attack-task: far call to an available TSS (0xa1): #NP, error 0xa0',
      'attack-task: far jmp to a task gate (0xa9): #NP, error 0xa8',
      'attack-task: far call to a busy TSS (0xb1): #GP, error 0xb0',
      "attack-task: far jmp to the Host's TSS (0x81): #GP, error 0x80",
      'attack-task: done',
    ].join('\n') + '\n');
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
  });

  test('a task gate in the IDT still kills the guest', async () => {
    const { r } = await boot('attack-task', pae, 'case=idt', 1, 8);
    expect(r.fate).toEqual({ kind: 'killed', reason: 'bad IDT type 5' });
  });
});

describe.each([false, true])('a valid guest larger than the Host pool runs to completion (pae %s)', (pae) => {
  test.each([
    ['4 address spaces x 190 sparse mappings: whole cached top levels are evicted', '', 'poolEvictedSlots'],
    ['1 address space x 760 sparse mappings: page-table pages are evicted', 'spaces=1 per=760 rounds=2', 'poolEvictedTables'],
  ] as const)('%s', async (_what, cmdline, stat) => {
    const { out, r } = await boot('attack-sparse', pae, cmdline, 1, 16);
    expect(out).not.toMatch(/FAIL|PANIC/);
    expect(out).toMatch(/check: round 2: every page of every address space holds its own tag: ok\n/);
    expect(out).toContain('attack-sparse: done\n');
    expect(r.fate).toEqual({ kind: 'poweroff', reason: 'CRASH: Power down' });
    const sh = r.stats.shadow as unknown as Record<string, number>;
    expect(sh[stat]).toBeGreaterThan(0);
    expect(sh.poolReclaimed).toBeGreaterThan(0);
    expect(sh.leakedFrames).toBe(0);
  }, 120_000);
});

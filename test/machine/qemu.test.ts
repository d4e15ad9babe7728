/**
 * Our machine against QEMU (qemu-system-i386, TCG), where it is installed: the same kernels, line for
 * line. QEMU 7.2 disagrees with the Intel SDM on some checks (test/machine/kernels/README.md, "Where
 * QEMU 7.2 (TCG) disagrees with the Intel SDM"); there the manual decides. Each documented disagreement
 * is one test below, named by the manual's rule: on each of its lines QEMU must print
 * `DESC: GOT FAIL (want WANT)` and we `DESC: WANT ok`. Any other difference fails the last test of the
 * kernel, and a documented disagreement that no longer shows up fails its own test (QEMU changed, or the
 * kernel did: update the README).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bootBare } from '../../launcher/bare.ts';
import { probe, skipUnless } from '../tools/require-tool.ts';
import { KERNELS, KERNEL_DIR, PC_KERNELS, ROOT, lines, runKernel, runPcKernel } from './helpers.ts';

const skipQemu = skipUnless('bare-mode kernels: our machine against QEMU', probe('qemu-system-i386', ['--version']), 'apt-get install qemu-system-x86');

interface Disagreement {
  /** The manual's rule, with its section: the test's name. */
  rule: string;
  /** What QEMU does instead. */
  qemu: string;
  kernel: (typeof KERNELS)[number] | (typeof PC_KERNELS)[number];
  /** The check descriptions it covers. */
  match: (desc: string) => boolean;
}

const oneOf = (...descs: string[]) => (d: string) => descs.includes(d);

const DISAGREEMENTS: Disagreement[] = [
  { kernel: 'exceptions', rule: 'a stack access beyond the SS limit raises #SS(0) (SDM Vol. 3A 5.3 "Limit Checking", 6.15 "Interrupt 12")', qemu: 'the access happens', match: oneOf('#SS ss: access beyond the SS limit') },
  { kernel: 'segments', rule: 'a push below an expand-down SS\'s lowest valid offset raises #SS(0) (SDM Vol. 3A 5.3, 3.4.5.1)', qemu: 'the push happens', match: oneOf('expand-down SS: push below the lowest valid offset') },
  { kernel: 'exceptions', rule: 'a data access beyond the DS limit raises #GP(0) (SDM Vol. 3A 5.3 "Limit Checking")', qemu: 'no data segment limit checks', match: oneOf('#GP ds: dword at 0xFFE beyond limit 0xFFF') },
  { kernel: 'segments', rule: 'data accesses outside the limit of expand-up and expand-down segments raise #GP(0) (SDM Vol. 3A 5.3 "Limit Checking", 3.4.5.1 for expand-down)', qemu: 'no data segment limit checks', match: oneOf(
    'limit 0xFFF: dword read at 0xFFD straddles the limit', 'limit 0xFFF: byte read at 0x1000', 'limit 0xFFF: dword write at 0x2000',
    'G=1 limit 0: byte read at 0x1000', 'expand-down B=1 limit 0xFFFFF: read at 0xFFFFF', 'expand-down B=1 limit 0xFFFFF: read at 0x1000',
    'expand-down B=0 limit 0xFFF: dword read at 0xFFFE', 'expand-down B=0 limit 0xFFF: read at 0x10000', 'expand-down B=0 limit 0xFFF: read at 0xFFF') },
  { kernel: 'segments', rule: 'writes to read-only data or code segments and reads of execute-only code raise #GP(0) (SDM Vol. 3A 5.4 "Type Checking")', qemu: 'the access happens', match: oneOf('write through read-only data', 'read through CS = execute-only code', 'write through CS (code segment)', 'write through DS = readable code') },
  { kernel: 'segments', rule: 'a memory access through a null data segment selector raises #GP(0) (SDM Vol. 3A 5.4.1 "Null Segment Selector Checking")', qemu: 'the access happens', match: oneOf('read through ES = null', 'read through DS = null at CPL 3') },
  { kernel: 'segments', rule: 'loading CS sets the code descriptor\'s accessed bit (SDM Vol. 3A 3.4.5.1)', qemu: 'the A bit stays clear on a CS load', match: oneOf("ljmp sets the code descriptor's accessed bit") },
  { kernel: 'exceptions', rule: 'a fault while delivering an exception has EXT = 1 in its error code (SDM Vol. 3A 6.13 "Error Code")', qemu: 'EXT = 0', match: oneOf('#NP during #UD delivery (benign then contributory): EXT=1', '#GP #UD gate CS beyond the GDT: EXT=1', '#GP #UD gate CS is LDT selector 0x0C: EXT=1 TI=1', '#TS #UD at CPL 3 with TSS.ss0=0x20: EXT=1', 'no #DF: #NP while delivering #BR (benign)') },
  { kernel: 'exceptions', rule: 'a misaligned access at CPL 3 with CR0.AM and EFLAGS.AC set raises #AC(0) (SDM Vol. 3A 6.15 "Interrupt 17", 2.5)', qemu: 'no alignment checking', match: oneOf('#AC misaligned load at CPL 3 with AM=1 AC=1') },
  { kernel: 'paging', rule: 'a #PF for a reserved bit has P = 1 with RSVD (SDM Vol. 3A 4.7 "Page-Fault Exceptions")', qemu: 'RSVD with P = 0', match: oneOf('32-bit: 4 MiB PDE with reserved bit 21 set', 'PAE: 2 MiB PDE with reserved bit 50 set', 'PAE: PTE with reserved bit 50 set, ring 3 write') },
  { kernel: 'paging', rule: 'MOV to CR3 raises #GP(0) when a present PDPTE has a reserved bit set (SDM Vol. 3A 4.4.1 "PDPTE Registers")', qemu: 'no fault', match: oneOf('PAE: mov cr3 with a reserved bit in a PDPTE') },
  { kernel: 'rings', rule: 'JMP/CALL through a task gate whose TSS selector is local (TI = 1) raises #GP(TSS selector) (SDM Vol. 2A JMP and CALL, TASK-GATE)', qemu: '#TS(TSS selector)', match: oneOf('ljmp through a task gate naming an LDT selector') },
  { kernel: 'paging', rule: 'MOV to CR3 does not invalidate global translations (SDM Vol. 3A 4.10.4.1; keeping them is permitted, and what our TLB does)', qemu: 'flushes global pages too', match: oneOf('32-bit: global page before remap / after CR3 reload / after invlpg', 'PAE: global page before remap / after CR3 reload / after invlpg') },
  { kernel: 'apic', rule: 'an IPI with an illegal vector (0-15) sets "send illegal vector" in ESR and is not delivered (SDM Vol. 3A 11.5.3 "Error Handling")', qemu: 'no error, and the vector is delivered', match: oneOf('ESR: send illegal vector', 'an IPI with an illegal vector (5) is not delivered') },
  { kernel: 'apic', rule: 'while the local APIC is software-disabled every LVT mask bit is set and cannot be cleared (SDM Vol. 3A 11.4.7.2)', qemu: 'LVT writes keep the mask bit as written', match: oneOf('software disabled: LVT writes stay masked') },
];

const FAIL_LINE = /^(.*): ([^:]*) FAIL \(want ([^:]*)\)$/;

describe.skipIf(skipQemu)('bare-mode kernels: our machine against QEMU', () => {
  const qemu = new Map<string, string[]>();
  const ours = new Map<string, string[]>();
  beforeAll(() => {
    for (const k of KERNELS) {
      const out = execFileSync(resolve(KERNEL_DIR, 'run-qemu.sh'), [k], { encoding: 'latin1', timeout: 60_000 });
      qemu.set(k, lines(out));
      ours.set(k, runKernel(k).lines);
    }
    // the PC device kernels on the wall clock, as QEMU runs them (their checks allow for timing)
    for (const k of PC_KERNELS) {
      const out = execFileSync(resolve(KERNEL_DIR, 'run-qemu-pc.sh'), [k], { encoding: 'latin1', timeout: 60_000 });
      qemu.set(k, lines(out));
      ours.set(k, runPcKernel(k).lines);
    }
  });

  for (const k of [...KERNELS, ...PC_KERNELS]) {
    describe(k, () => {
      for (const d of DISAGREEMENTS.filter((x) => x.kernel === k)) {
        it(`manual rule: ${d.rule} (QEMU: ${d.qemu})`, () => {
          const q = qemu.get(k)!, o = ours.get(k)!;
          let seen = 0;
          q.forEach((line, i) => {
            const m = FAIL_LINE.exec(line);
            const desc = m ? m[1] : line.slice(0, line.lastIndexOf(': '));
            if (!d.match(desc)) return;
            seen++;
            expect(m, `QEMU line ${i + 1} should show the disagreement: ${line}`).not.toBeNull();
            expect(o[i], `our line ${i + 1}`).toBe(`${m![1]}: ${m![3]} ok`);
          });
          expect(seen, 'lines this disagreement covers').toBeGreaterThan(0);
        });
      }

      it('agrees with QEMU on every other line; the summary counts exactly the disagreements', () => {
        const q = qemu.get(k)!, o = ours.get(k)!;
        expect(o.length).toBe(q.length);
        let disagreements = 0;
        const unexplained: string[] = [];
        q.forEach((line, i) => {
          if (line === o[i]) return;
          const m = FAIL_LINE.exec(line);
          if (m && DISAGREEMENTS.some((d) => d.kernel === k && d.match(m[1])) && o[i] === `${m[1]}: ${m[3]} ok`) {
            disagreements++;
            return;
          }
          if (/^summary: /.test(line) || /^exit status: /.test(line)) return;
          unexplained.push(`line ${i + 1}:\n  qemu: ${line}\n  ours: ${o[i]}`);
        });
        expect(unexplained).toEqual([]);
        const summary = q.findIndex((l) => l.startsWith('summary: '));
        expect(q[summary]).toMatch(new RegExp(`, ${disagreements} failed$`));
        expect(o[summary]).toMatch(/, 0 failed$/);
        expect(q[q.length - 1]).toBe(disagreements > 0 ? 'exit status: 3' : 'exit status: 1');
        expect(o[o.length - 1]).toBe('exit status: 1');
      });
    });
  }

  it('toy (OSDev style) under the issue\'s command (-nodefaults -serial stdio, isa-debug-exit): the same output and status', () => {
    const q = execFileSync(resolve(KERNEL_DIR, 'run-qemu-toy.sh'), { encoding: 'latin1', timeout: 60_000 });
    // ours under --icount: on a loaded host the wall clock could preempt a task in the middle of its line
    const o = bootBare(readFileSync(resolve(KERNEL_DIR, 'build/toy.elf')), { memMiB: 128, imageName: 'toy.elf', icount: true, icountShift: 4 });
    expect([...lines(o.output), `exit status: ${o.exitStatus}`]).toEqual(lines(q));
  });

  describe('bundled kernels', () => {
    const run = (image: string, mem: number, append: string) => {
      const r = spawnSync('qemu-system-i386', ['-kernel', image, '-append', append, '-display', 'none', '-no-reboot',
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-chardev', 'stdio,id=dbg', '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
        '-serial', 'none', '-monitor', 'none', '-m', String(mem)], { cwd: ROOT, encoding: 'latin1', timeout: 60_000 });
      return { output: r.stdout, status: r.status };
    };
    for (const [name, mem, append] of [['demo', 64, ''], ['demo', 24, 'console=e9 x=1'], ['bench', 64, 'iters=10']] as const) {
      it(`${name} -m ${mem} -append "${append}": the same output and exit status`, () => {
        const image = `guest-images/build/${name}.elf`;
        const q = run(image, mem, append);
        const o = bootBare(readFileSync(resolve(ROOT, image)), { memMiB: mem, cmdline: append, imageName: image });
        expect(o.output).toBe(q.output);
        expect(o.exitStatus).toBe(q.status);
      });
    }
  });
});

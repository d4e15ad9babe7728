/**
 * Locked instructions are atomic across vCPU worker threads (emulator/ops/locked.ts): two vCPUs, each a
 * CPU in its own worker thread over one shared PhysicalMemory, run real i386 code that hammers shared
 * counters, released together by a flag, and the totals must be exact. Without the LOCKED op (a plain
 * read then a plain write) they lose updates, and the spinlock deadlocks when an XCHG that read 1 writes
 * its 1 back over the holder's release.
 *
 * The routines (flat 32-bit ring 0, paging off; code at CODE, data on the page at 0x3000). Each runs ESI
 * times, then halts. Assembled with `as --32` and `objcopy -O binary`; the bytes are in ROUTINES below.
 *
 *   00 xadd:    1: movl $1, %eax; lock xaddl %eax, 0x3000; decl %esi; jnz 1b; hlt
 *   11 incl:    1: lock incl 0x3004; decl %esi; jnz 1b; hlt
 *   1c cmpxchg: 1: movl 0x3008, %eax
 *               2: leal 1(%eax), %edx; lock cmpxchgl %edx, 0x3008; jnz 2b; decl %esi; jnz 1b; hlt
 *   32 spin:    1: movl $1, %eax; xchgl %eax, 0x300c; testl %eax, %eax; jnz 1b     # acquire
 *                  movl 0x3010, %edx; incl %edx; movl %edx, 0x3010                # plain increment
 *                  movl $0, 0x300c; decl %esi; jnz 1b; hlt                       # plain release
 *   5c incb:    1: lock incb 0x3020; decl %esi; jnz 1b; hlt           # a byte of a dword ...
 *   67 add100:  1: lock addl $0x100, 0x3020; decl %esi; jnz 1b; hlt   # ... the whole dword
 *   76 xaddq:   1: movl $1, %eax; lock xaddl %eax, 0x3032; decl %esi; jnz 1b; hlt  # across a dword boundary
 *   87 xadds:   1: movl $1, %eax; lock xaddl %eax, 0x303e; decl %esi; jnz 1b; hlt  # across a qword boundary
 *   98 cx8:     1: movl 0x3048, %eax; movl 0x304c, %edx
 *               2: movl %eax, %ebx; movl %edx, %ecx; addl $1, %ebx; adcl $0, %ecx
 *                  lock cmpxchg8b 0x3048; jnz 2b; decl %esi; jnz 1b; hlt
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PhysicalMemory } from '../../mmu/memory.ts';
import { CPU, ExceptionMode, TLB_W_SUP } from '../../emulator/cpu.ts';
import { ExitReason } from '../../emulator/exits.ts';
import { DS, EAX, EBX, ECX, EDX, GP } from '../../emulator/constants.ts';

const ROUTINES =
  'b801000000f00fc105003000004e75f0f4f0ff05043000004e75f6f4a1083000008d5001f00fb1150830000075f34e75ebf4'
  + 'b80100000087050c30000085c075f18b151030000042891510300000c7050c300000000000004e75d7f4f0fe05203000004e'
  + '75f6f4f0810520300000000100004e75f2f4b801000000f00fc105323000004e75f0f4b801000000f00fc1053e3000004e75'
  + 'f0f4a1483000008b154c30000089c389d183c30183d100f00fc70d4830000075ec4e75def4'
  + 'ff05143000004e75f7f4';
const ENTRY = { xadd: 0x00, incl: 0x11, cmpxchg: 0x1c, spin: 0x32, incb: 0x5c, add100: 0x67, xaddq: 0x76, xadds: 0x87, cx8: 0x98, plain: 0xbb };
type Routine = keyof typeof ENTRY;

const CODE = 0x1000;
const MEM_SIZE = 1 << 20;
const VCPUS = 2;
/** Iterations of each routine on each vCPU. */
const N = 200_000;
/** A vCPU that has not halted by then is stuck (a lost spinlock release). */
const DEADLINE_MS = 60_000;

interface Done { t: 'done'; halted: boolean; exit: number; esi: number; t0: number; t1: number; retries: number }

/** The vCPU workers, and a queue of the messages each has posted. */
class Vcpus {
  readonly mem = new PhysicalMemory(MEM_SIZE);
  private readonly start = new Int32Array(new SharedArrayBuffer(4));
  private readonly workers: Worker[] = [];
  private readonly inbox: unknown[][] = [];
  private readonly waiting: ((m: unknown) => void)[][] = [];
  private round = 0;
  private failed: Error | undefined;

  constructor() {
    this.mem.writeBytes(CODE, Uint8Array.from(Buffer.from(ROUTINES, 'hex')));
    for (let i = 0; i < VCPUS; i++) {
      const w = new Worker(new URL('./locked-atomic-worker.mjs', import.meta.url), {
        workerData: { vcpu: i, memSize: MEM_SIZE, shared: this.mem.share(), start: this.start.buffer },
      });
      this.inbox.push([]);
      this.waiting.push([]);
      w.on('message', (m) => {
        const r = this.waiting[i].shift();
        if (r) r(m); else this.inbox[i].push(m);
      });
      w.on('error', (e) => {
        // a worker that died answers every wait with its error
        this.failed = e;
        for (const r of this.waiting[i].splice(0)) r(e);
      });
      this.workers.push(w);
    }
  }

  private async next(i: number): Promise<unknown> {
    if (this.failed) throw this.failed;
    const m = this.inbox[i].shift() ?? (await new Promise((r) => this.waiting[i].push(r)));
    if (m instanceof Error) throw m;
    return m;
  }

  async up(): Promise<void> {
    await Promise.all(this.workers.map((_, i) => this.next(i)));
  }

  /** vCPU i runs routines[i % routines.length] N times; all start at once. */
  async run(...routines: Routine[]): Promise<Done[]> {
    const round = ++this.round;
    this.workers.forEach((w, i) => {
      w.postMessage({ round, entry: CODE + ENTRY[routines[i % routines.length]], iterations: N, deadlineMs: DEADLINE_MS });
    });
    await Promise.all(this.workers.map((_, i) => this.next(i))); // ready
    Atomics.store(this.start, 0, round);
    Atomics.notify(this.start, 0);
    const done = (await Promise.all(this.workers.map((_, i) => this.next(i)))) as Done[];
    for (const d of done) {
      expect(d.halted, `a vCPU did not halt within ${DEADLINE_MS} ms (exit ${d.exit}, ESI ${d.esi})`).toBe(true);
      expect(d.esi).toBe(0);
    }
    // the premise: the vCPUs ran at the same time
    expect(Math.max(...done.map((d) => d.t0))).toBeLessThan(Math.min(...done.map((d) => d.t1)));
    return done;
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

describe(`locked instructions are atomic across ${VCPUS} vCPU worker threads`, () => {
  let v: Vcpus;
  beforeAll(async () => {
    v = new Vcpus();
    await v.up();
  });
  afterAll(async () => {
    await v.stop();
  });

  // The negative control: the same load with a plain `incl` loses updates, so the exact totals above are
  // evidence of atomicity, not of vCPUs that never overlapped. A lost update needs the two read-modify-
  // writes to interleave; over 2 x 200,000 overlapping increments that is all but certain, and up to three
  // rounds are allowed so that a machine stalled by other load cannot make it flaky.
  it('negative control: a plain incl (no LOCK) on both vCPUs loses updates', async () => {
    let lost = 0;
    for (let round = 0; round < 3 && lost === 0; round++) {
      v.mem.write32(0x3014, 0);
      await v.run('plain');
      lost = VCPUS * N - v.mem.read32(0x3014);
    }
    expect(lost, 'plain increments on two vCPUs never lost an update: the test cannot tell atomic from not').toBeGreaterThan(0);
  });

  it('lock xadd', async () => {
    await v.run('xadd');
    expect(v.mem.read32(0x3000)).toBe(VCPUS * N);
  });

  it('lock inc', async () => {
    await v.run('incl');
    expect(v.mem.read32(0x3004)).toBe(VCPUS * N);
  });

  it('a lock cmpxchg loop', async () => {
    await v.run('cmpxchg');
    expect(v.mem.read32(0x3008)).toBe(VCPUS * N);
  });

  it('a spinlock (xchg to acquire, a plain store to release) around a plain increment', async () => {
    await v.run('spin');
    expect(v.mem.read32(0x3010)).toBe(VCPUS * N);
    expect(v.mem.read32(0x300c)).toBe(0);
  });

  it('lock inc of a byte while another vCPU does lock add on the dword holding it', async () => {
    await v.run('incb', 'add100');
    const incs = Math.ceil(VCPUS / 2) * N, adds = Math.floor(VCPUS / 2) * N;
    expect(v.mem.read32(0x3020) >>> 0).toBe(((incs & 0xff) + adds * 0x100) >>> 0);
  });

  it('lock xadd on a dword across a dword boundary (the qword compare-exchange)', async () => {
    await v.run('xaddq');
    expect(v.mem.read32(0x3032)).toBe(VCPUS * N);
  });

  it('lock xadd on a dword across a qword boundary (the split lock)', async () => {
    await v.run('xadds');
    expect(v.mem.read32(0x303e)).toBe(VCPUS * N);
  });

  it('a lock cmpxchg8b loop on a 64-bit counter, carrying into the high dword', async () => {
    v.mem.write32(0x3048, -N);
    v.mem.write32(0x304c, 0);
    await v.run('cx8');
    expect(v.mem.read32(0x3048)).toBe((VCPUS - 1) * N);
    expect(v.mem.read32(0x304c)).toBe(1);
  });
});

/** One vCPU in this thread, code at 0x1000: what lock mode must keep (single-threaded behaviour). */
function oneVcpu(code: number[]) {
  const mem = new PhysicalMemory(MEM_SIZE);
  const cpu = new CPU(mem, 0, { codeSlots: 16 });
  cpu.sharedMemory = true; // take the atomic path, as a vCPU of an SMP guest does
  mem.writeBytes(0x1000, Uint8Array.from(code));
  cpu.eip = 0x1000;
  return { mem, cpu };
}

describe('locked instructions on one vCPU', () => {
  it('a locked write into the next instruction of the same block takes effect', () => {
    const { cpu } = oneVcpu([
      0xf0, 0xfe, 0x05, 0x08, 0x10, 0x00, 0x00, // lock incb 0x1008   (the immediate below)
      0xb8, 0x05, 0x00, 0x00, 0x00, //             movl $5, %eax      -> movl $6, %eax
      0xf4, //                                     hlt
    ]);
    expect(cpu.run(1000)).toBe(ExitReason.Hlt);
    expect(cpu.r32[EAX]).toBe(6);
  });

  it('so does an XCHG (locked without the prefix)', () => {
    const { cpu } = oneVcpu([
      0xb0, 0x07, //                               movb $7, %al
      0x86, 0x05, 0x09, 0x10, 0x00, 0x00, //       xchgb %al, 0x1009  (the immediate below)
      0xb8, 0x01, 0x00, 0x00, 0x00, //             movl $1, %eax      -> movl $7, %eax
      0xf4, //                                     hlt
    ]);
    expect(cpu.run(1000)).toBe(ExitReason.Hlt);
    expect(cpu.r32[EAX]).toBe(7);
  });

  it('beyond RAM, a locked access goes through the bus (reads all ones, writes dropped)', () => {
    const { cpu } = oneVcpu([0xf0, 0xff, 0x05, 0x00, 0x00, 0x20, 0x00, 0xf4]); // lock incl 0x200000; hlt
    expect(cpu.run(1000)).toBe(ExitReason.Hlt);
    expect(cpu.getZF()).toBe(true);
  });

  it('operands that straddle two pages (the split lock)', () => {
    const { mem, cpu } = oneVcpu([
      0xf0, 0x0f, 0xc1, 0x05, 0xfe, 0x3f, 0x00, 0x00, // lock xaddl %eax, 0x3ffe
      0xf0, 0x0f, 0xc7, 0x0d, 0xfc, 0x4f, 0x00, 0x00, // lock cmpxchg8b 0x4ffc   (equal: ECX:EBX stored)
      0xf0, 0x0f, 0xc7, 0x0d, 0xfc, 0x4f, 0x00, 0x00, // lock cmpxchg8b 0x4ffc   (differs: EDX:EAX loaded)
      0xf4,
    ]);
    mem.write32(0x3ffe, 0x11223344);
    mem.write32(0x4ffc, 0x55667788);
    mem.write32(0x5000, 0x99aabbcc | 0);
    cpu.r32[EAX] = 5;
    expect(cpu.step()).toBe(ExitReason.Step);
    expect(mem.read32(0x3ffe)).toBe(0x11223349);
    expect(cpu.r32[EAX]).toBe(0x11223344);
    cpu.r32[EAX] = 0x55667788; cpu.r32[EDX] = 0x99aabbcc | 0; cpu.r32[EBX] = 1; cpu.r32[ECX] = 2;
    expect(cpu.step()).toBe(ExitReason.Step);
    expect(cpu.getZF()).toBe(true);
    expect([mem.read32(0x4ffc), mem.read32(0x5000)]).toEqual([1, 2]);
    cpu.r32[EAX] = 0; cpu.r32[EDX] = 0;
    expect(cpu.run(1000)).toBe(ExitReason.Hlt);
    expect(cpu.getZF()).toBe(false);
    expect([cpu.r32[EAX], cpu.r32[EDX]]).toEqual([1, 2]);
  });

  it('a locked instruction that faults changes nothing and leaves lock mode', () => {
    const { cpu } = oneVcpu([0xf0, 0x0f, 0xc1, 0x05, 0x00, 0x30, 0x00, 0x00, 0xf4]); // lock xaddl %eax, 0x3000
    cpu.exceptionMode = ExceptionMode.Stop;
    const attr = cpu.segAttr[DS];
    cpu.setSegCache(DS, cpu.segSel[DS], 0, 0xfff, attr); // 0x3000 is beyond the limit: #GP(0)
    cpu.r32[EAX] = 5;
    expect(cpu.run(1000)).toBe(ExitReason.Exception);
    expect([cpu.exceptionVector, cpu.eip, cpu.r32[EAX]]).toEqual([GP, 0x1000, 5]);
    expect([cpu.lockMode, cpu.writeBit]).toEqual([0, TLB_W_SUP]);
    cpu.setSegCache(DS, cpu.segSel[DS], 0, 0xffffffff, attr);
    expect(cpu.run(1000)).toBe(ExitReason.Hlt);
    expect(cpu.mem.read32(0x3000)).toBe(5);
  });
});

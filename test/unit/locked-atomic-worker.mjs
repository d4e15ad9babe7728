// One vCPU of test/unit/locked-atomic.test.ts in its own worker thread: a CPU over the test's shared
// physical memory, flat 32-bit ring 0 with paging off (the CPU's reset state). For each routine the test
// posts, it loads EIP and ESI (the iteration count), says it is ready, waits for the test to raise the
// start flag (so every vCPU starts at once), runs until HLT and posts what happened.
// A worker does not inherit tsx's loader: register it, then load the TypeScript modules.
import { register } from 'tsx/esm/api';
import { parentPort, workerData } from 'node:worker_threads';

register();
const { CPU } = await import('../../emulator/cpu.ts');
const { PhysicalMemory } = await import('../../mmu/memory.ts');
const { ExitReason } = await import('../../emulator/exits.ts');

const ESI = 6;
const { vcpu, memSize, shared, start } = workerData;
const go = new Int32Array(start);
const cpu = new CPU(new PhysicalMemory(memSize, shared), vcpu, { codeSlots: 16 });
cpu.sharedMemory = true;

parentPort.on('message', ({ round, entry, iterations, deadlineMs }) => {
  cpu.eip = entry;
  cpu.r32[ESI] = iterations;
  cpu.halted = false;
  const retriesBefore = cpu.lockRetries;
  parentPort.postMessage({ t: 'ready' });
  while (Atomics.load(go, 0) < round) Atomics.wait(go, 0, round - 1, 100);
  const t0 = performance.timeOrigin + performance.now();
  const deadline = Date.now() + deadlineMs;
  let exit = ExitReason.Budget;
  while (exit === ExitReason.Budget && Date.now() < deadline) exit = cpu.run(200_000);
  const t1 = performance.timeOrigin + performance.now();
  parentPort.postMessage({
    t: 'done', halted: exit === ExitReason.Hlt, exit, esi: cpu.r32[ESI], t0, t1,
    retries: cpu.lockRetries - retriesBefore,
  });
});
parentPort.postMessage({ t: 'up' });

/**
 * The bundled guest images in guest-images/build/, by name. `lguest-ts run NAME` takes a name from here
 * or a path.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './root.ts';

export const IMAGE_DIR = join(PACKAGE_ROOT, 'guest-images/build');

export interface ImageInfo {
  name: string;
  /** 'bare' Multiboot kernels boot with --bare; 'lguest' guests boot paravirtualized. */
  kind: 'bare' | 'lguest';
  description: string;
}

const IMAGES: ImageInfo[] = [
  { name: 'demo', kind: 'bare', description: 'a Multiboot kernel that shows the interpreter off (what npm start boots)' },
  { name: 'bench', kind: 'bare', description: 'the CPU-bound benchmark workload (command line iters=N)' },
  { name: 'bench-lguest', kind: 'lguest', description: 'the same CPU-bound benchmark workload as an lguest guest (command line iters=N)' },
  { name: 'bench-smp', kind: 'lguest', description: 'the benchmark workload on every vCPU at once (run with --cpus N, command line iters=N)' },
  { name: 'hello', kind: 'lguest', description: 'prints a greeting, its command line and memory size, powers off' },
  { name: 'traps', kind: 'lguest', description: 'divide error, breakpoint, #UD and page faults reflected to its handlers' },
  { name: 'usermode', kind: 'lguest', description: 'ring-3 processes with their own page tables, system calls, preemption' },
  { name: 'fpu', kind: 'lguest', description: 'ring-3 tasks using the x87 at once, switched lazily on #NM (the TS hypercall)' },
  { name: 'timer', kind: 'lguest', description: 'clock events and halt until interrupt' },
  { name: 'misbehave', kind: 'lguest', description: 'one forbidden act per run (case=NAME), each killed with its reason' },
  { name: 'virtcon', kind: 'lguest', description: 'a virtio console driver: output queue, interrupts, input (input=N), bad rings (bad=CASE) killed' },
  { name: 'virtblk', kind: 'lguest', description: 'virtio block and rng drivers (run with --block FILE --rng): reads, writes, barriers, past the end, bad requests (bad=CASE) killed' },
  { name: 'paging', kind: 'lguest', description: 'shadow paging stress: copy-on-write, 10 address spaces, large mappings, kernel-mapping changes, A/D bits' },
  { name: 'smp', kind: 'lguest', description: 'an SMP guest (run with --cpus N): VCPU_START, IPIs, atomic instructions and TLB shootdown across vCPUs; bad acts (smp=CASE) killed' },
  { name: 'smp-stress', kind: 'lguest', description: 'shadow paging from every vCPU at once (run with --cpus N, seed=S rounds=M): remaps, address spaces, shared pages, self-checked' },
  { name: 'pvclock', kind: 'lguest', description: 'a paravirtual clock from a plug-in (run with --plugin examples/plugins/host-clock.mjs): 64-bit HOST_TIME_NS, plug-in ticks' },
  { name: 'pagehash', kind: 'lguest', description: 'a plug-in hashes guest pages by virtual address (run with --plugin examples/plugins/page-hash.ts; case=unmapped is killed)' },
  { name: 'bench-switch', kind: 'lguest', description: 'address-space switches between 8 ring-3 tasks (command line switches=N), what npm run bench times' },
  { name: 'bench-fault', kind: 'lguest', description: 'page faults the Host fixes (command line faults=N), what npm run bench times' },
  { name: 'bench-hcall', kind: 'lguest', description: 'synchronous hypercalls (command line calls=N), what npm run bench times' },
  { name: 'fuzz', kind: 'lguest', description: 'random acts for the Host to survive (seed=N mode=hcall|paging|mix|code|user): every run powers off or is killed with a reason' },
  { name: 'fuzz-soak', kind: 'lguest', description: 'the soak\'s attacker (npm run soak): loops of hostile but survivable acts (mode=soak) or one fatal act (mode=fatal act=NAME), SMP, --rng' },
  { name: 'attack-regs', kind: 'lguest', description: 'Host isolation: one vCPU writes another\'s Switcher regs page (run with --cpus 2, dir=1to0|0to1): the write must fault' },
  { name: 'attack-stack', kind: 'lguest', description: 'Host isolation: SET_STACK onto the Switcher\'s pages (where=regs|ro|code|other|end): killed' },
  { name: 'attack-task', kind: 'lguest', description: 'Host isolation: far JMP/CALL and INT through not-present, busy or forbidden task gates and TSSs: #NP/#GP as the i386; case=idt killed' },
  { name: 'attack-sparse', kind: 'lguest', description: 'Host isolation: hundreds of sparse 4 MiB mappings in several address spaces: the shadow pool evicts, the guest runs to the end' },
  { name: 'attackl-io', kind: 'lguest', description: 'Launcher attacks, one per run (case=NAME): unbounded kicks, console floods, forged SHUTDOWN text' },
];

export function listImages(): ImageInfo[] {
  return IMAGES.filter((i) => existsSync(join(IMAGE_DIR, `${i.name}.elf`)));
}

/** Resolve an image argument: an existing path, or the name of a bundled image (with -pae for PAE). */
export function resolveImage(arg: string, pae = false): { path: string; info?: ImageInfo } {
  const info = IMAGES.find((i) => i.name === arg);
  if (info && !arg.includes('/')) {
    const file = join(IMAGE_DIR, `${arg}${pae && info.kind === 'lguest' ? '-pae' : ''}.elf`);
    return { path: file, info };
  }
  return { path: arg };
}

// page-hash.ts: a hypercall plug-in written in TypeScript (the pagehash guest uses it).
//
//   lguest-ts run pagehash --plugin examples/plugins/page-hash.ts
//
// PAGE_HASH (0x1010): the 32-bit FNV-1a hash of arg2 bytes of guest memory at guest-virtual address arg1,
// read through the calling vCPU's own page tables (PluginVcpu.readVirt: an unmapped page kills the guest
// with a reason naming it). PAGE_HASH_PHYS (0x1011): the same by guest-physical address (readPhys: an
// address outside the guest's memory kills it). A length over 1 MiB is the guest's mistake: we kill it.
import type { PluginSetup, PluginVcpu } from 'lguest-ts';

const PAGE_HASH = 0x1010;
const PAGE_HASH_PHYS = 0x1011;
const MAX_LEN = 1 << 20;

function fnv1a(bytes: Uint8Array): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619);
  return h >>> 0;
}

function length(vcpu: PluginVcpu, n: number): number | undefined {
  if (n > MAX_LEN) {
    vcpu.kill(`PAGE_HASH of ${n} bytes (at most ${MAX_LEN})`);
    return undefined;
  }
  return n;
}

export default function pageHash(host: PluginSetup): void {
  host.hypercall(PAGE_HASH, 'PAGE_HASH', (vcpu, { args: [va, len] }) => {
    const n = length(vcpu, len);
    return n === undefined ? undefined : fnv1a(vcpu.readVirt(va, n));
  });
  host.hypercall(PAGE_HASH_PHYS, 'PAGE_HASH_PHYS', (vcpu, { args: [gpa, len] }) => {
    const n = length(vcpu, len);
    return n === undefined ? undefined : fnv1a(vcpu.readPhys(gpa, n));
  });
}

/**
 * Which kill reasons belong to which act of the random fuzz guest (guest-images/lguest/guests/fuzz.c),
 * for test/property/guest-fuzz.test.ts. The guest announces each act ("@@fz v0 fatal KIND") before it
 * makes it. A kill is accepted when its reason is
 *   1. one the act announced last may cause at once (IMMEDIATE: a hypercall refused for its arguments), or
 *   2. one that an act made earlier in the boot may cause later (DEFERRED: a page-table entry the guest
 *      wrote that the Host only meets at the next fault, an IDT gate or a segment that sends the guest's
 *      own code somewhere random, whereupon anything a guest can do may follow: ANY).
 * Every reason must in any case be one the Host gives (HOST_REASONS): never an exception's text, an
 * empty reason, or a reason for a wrong act. fuzz-soak's fatal acts are checked exactly, one per boot
 * (test/soak/acts.ts); these are random walks, so the check is the strongest a walk allows.
 */

const hex = '0x[0-9a-f]+';
const re = (s: string) => new RegExp(`^${s}$`, 's');

/** Shadow paging's reasons (mmu/shadow-consts.ts KillReason, with their details). */
const PAGING = [
  re(`bad page table entry: (PSE page|frame beyond pfn_limit) at ${hex}`),
  re(`bad page directory entry: flags ${hex}`), re('bad page directory entry: frame beyond pfn_limit'),
  re(`bad page middle directory entry: flags ${hex}`), re('bad page middle directory entry: frame beyond pfn_limit'),
  re(`attempt to access switcher pages ${hex}`), re(`bad stack page ${hex}`), re(`bad guest page table address ${hex}`),
  re(`bad address ${hex}`), re('bad shadow PDPTE'),
  // issue 10 defect 8 (the fixed pool kills valid guests), fixed on the iso-host branch
  re('out of memory allocating a shadow page'),
];
const BAD_ADDR = re(`bad read or write address ${hex} len \\d+`);
const NOTIFY = [re(`Bad NOTIFY ${hex}( \\(no device there\\))?`), re('virtio \\S+: .*')];

/** Everything the Host kills a guest for (switcher/, mmu/, devices/, the Launcher's NOTIFY). */
export const HOST_REASONS: RegExp[] = [
  ...PAGING, BAD_ADDR, ...NOTIFY,
  re(`bad guest CS ${hex}`), re('triple fault in the Switcher: .*'), re(`the machine halted outside the Switcher at ${hex}`),
  re(`unhandled trap \\d+ at ${hex} \\(.*\\)`), re('the machine stopped unexpectedly \\(.*\\)'),
  // A task switch that passes every check still ends the run (task switching is not implemented yet)
  re('unsupported: .*task switching is not supported.*'),
  re('too many gdt entries \\d+'), re('bad IDT vector \\d+'), re('bad IDT type \\d+'),
  re('a vCPU did not answer a TLB shootdown'), re('already have lguest_data'), re('CRASH: .*'),
  re('Bad hypercall \\d+'), re('VCPU_START in the async ring'), re('VCPU_START: vCPU \\d+ is already running'),
  re('SEND_IPI to vCPU \\d+: the guest has \\d+'), re('SEND_IPI of IRQ \\d+'),
  re('bad stack segment \\d+'), re('bad stack pages \\d+'), re('hypercall \\d+ before INIT'),
  re(`bad lguest_data address ${hex}`), re('bad syscall vector'),
];

/** Reasons a hypercall may get at once, by number. */
const HCALL_IMMEDIATE: Record<number, RegExp[]> = {
  1: [re('already have lguest_data')],
  2: [re('CRASH: .*'), BAD_ADDR],
  4: [...PAGING],
  6: [re('bad IDT vector \\d+'), re('bad IDT type \\d+')],
  7: [re('bad stack segment \\d+'), re('bad stack pages \\d+'), ...PAGING],
  13: [re('Bad hypercall 13'), ...PAGING],
  14: [...PAGING],
  15: [...PAGING],
  16: [BAD_ADDR],
  17: [...NOTIFY, BAD_ADDR],
  18: [re('too many gdt entries \\d+')],
  32: [re('VCPU_START: vCPU \\d+ is already running')],
  33: [re('SEND_IPI to vCPU \\d+: the guest has \\d+'), re('SEND_IPI of IRQ \\d+')],
};
/** Hypercalls that do nothing the Host can refuse (0 FLUSH_ASYNC, 5 FLUSH_TLB, 8 TS, 9 SET_CLOCKEVENT,
 *  10 HALT, 19 SEND_INTERRUPTS). */
const HCALL_QUIET = new Set([0, 5, 8, 9, 10, 19]);

export type Taint = 'paging' | 'any';

/** What an act may leave behind to be killed for later. */
function deferred(kind: string): Taint | null {
  if (kind === 'code' || kind === 'user' || kind === 'ring') return 'any';
  // tame calls: a switch between our own address spaces, gates to our own stubs on vectors 64 and up,
  // our own stack, TLS entries (our kernel loads none), a console line: nothing left behind, except GDT
  // entries, which may be our own kernel segments
  const t = /^tame_(\d+)$/.exec(kind);
  if (t) return Number(t[1]) === 18 ? 'any' : null;
  const m = /^hcall_(\d+)$/.exec(kind);
  if (m) {
    const nr = Number(m[1]);
    // a new top level, IDT gates, GDT entries and TLS anywhere: the guest's own code may go anywhere
    if (nr === 4 || nr === 6 || nr === 16 || nr === 18) return 'any';
    if (nr === 7 || nr === 13 || nr === 14 || nr === 15) return 'paging';
    return null;
  }
  // raw writes to our own page tables (kernel part included), mappings of any frame, switches: any
  if (kind.startsWith('pg_')) return kind === 'pg_touch' || kind === 'pg_flush' ? 'paging' : 'any';
  return 'any';
}

function immediate(kind: string): RegExp[] {
  const m = /^(?:hcall|tame)_(\d+)$/.exec(kind);
  if (m) {
    const nr = Number(m[1]);
    if (HCALL_QUIET.has(nr)) return [];
    return HCALL_IMMEDIATE[nr] ?? [re(`Bad hypercall ${nr}`)];
  }
  if (kind === 'ring') return [...Object.values(HCALL_IMMEDIATE).flat(), re('Bad hypercall \\d+'), re('VCPU_START in the async ring')];
  if (kind.startsWith('pg_')) return [...PAGING, re('Bad hypercall 13')];
  return HOST_REASONS; // code and user rounds: random instructions, any hypercall
}

/** The acts the guest announced, in order. */
export function announcedActs(console: string): string[] {
  const acts: string[] = [];
  for (const line of console.split('\n')) {
    const m = /^@@fz v0 fatal (\w+)$/.exec(line);
    if (m) acts.push(m[1]);
  }
  return acts;
}

/** Why a kill does not belong to the acts made, or null when it does. Also says how it was matched. */
export function judgeKill(reason: string, acts: string[]): { problem: string | null; how: 'immediate' | 'deferred' | 'any' } {
  if (!HOST_REASONS.some((r) => r.test(reason))) return { problem: `not a reason the Host gives: ${JSON.stringify(reason)}`, how: 'any' };
  if (acts.length === 0) return { problem: `killed before any act: ${reason}`, how: 'any' };
  const last = acts[acts.length - 1];
  if (immediate(last).some((r) => r.test(reason))) return { problem: null, how: 'immediate' };
  let taint: Taint | null = null;
  for (const a of acts) {
    const t = deferred(a);
    if (t === 'any') { taint = 'any'; break; }
    if (t === 'paging') taint = 'paging';
  }
  if (taint === 'paging' && PAGING.some((r) => r.test(reason))) return { problem: null, how: 'deferred' };
  if (taint === 'any') return { problem: null, how: 'any' };
  return { problem: `killed for ${JSON.stringify(reason)} after ${last}${taint ? ` (earlier acts leave only ${taint} faults)` : ' (no earlier act leaves anything behind)'}`, how: 'any' };
}

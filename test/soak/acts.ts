/**
 * The fuzz-soak guest's potentially fatal acts (guest-images/lguest/guests/fuzz-soak.c, mode=fatal) and
 * the kill reasons the Host may give for each: a guest killed for a reason not listed for the act it
 * announced last ("@@fz vN fatal KIND" on its console), or killed with no act announced, is a Host bug.
 *
 * `must`: the Host has to kill the guest for this act (lguest does); surviving it is a bug too.
 * `needs`: what the boot must offer (2 vCPUs for the acts of a secondary, --rng for the ring acts, PAE).
 * `gate`: the act finds a Host bug that is known and being fixed elsewhere; it runs only when the
 * environment variable FUZZ_KNOWN_BUGS lists the gate (comma separated, or "all"). Besides the gates
 * here, tss-jmp enables a ring-3 slot of the soak (a far jump to the kernel's DPL-0 TSS must raise #GP;
 * the CPU ends the run instead: emulator/ops/control.ts checks no DPL before "task switching is not
 * supported").
 */
export interface FatalAct {
  must: boolean | 'pae' | '2level';
  reasons: RegExp[];
  needs?: { cpus?: number; rng?: boolean; pae?: boolean };
  gate?: string;
  /** The act must NOT kill the guest (a valid guest the Host has to keep). */
  survive?: boolean;
}

const switcherPages = /^attempt to access switcher pages 0x[0-9a-f]+$/;
const badAddr = /^bad read or write address 0x[0-9a-f]+ len \d+$/;
const virtio = (what: string) => new RegExp(`^virtio rng: \\S+ queue: ${what}`);

export const FATAL_ACTS: Record<string, FatalAct> = {
  bad_hcall: { must: true, reasons: [/^Bad hypercall \d+$/] },
  reinit: { must: true, reasons: [/^already have lguest_data$/] },
  gdt_num: { must: true, reasons: [/^too many gdt entries \d+$/] },
  idt_vector: { must: true, reasons: [/^bad IDT vector \d+$/] },
  idt_type: { must: true, reasons: [/^bad IDT type \d+$/] },
  stack_seg: { must: true, reasons: [/^bad stack segment \d+$/] },
  stack_pages: { must: true, reasons: [/^bad stack pages \d+$/] },
  stack_addr: { must: true, reasons: [/^bad stack page 0x[0-9a-f]+$/] },
  pgtable_addr: { must: true, reasons: [/^bad guest page table address 0x[0-9a-f]+$/] },
  pte_frame: { must: true, reasons: [/^bad page table entry: frame beyond pfn_limit at 0x[0-9a-f]+$/] },
  pte_pse: { must: true, reasons: [/^bad page table entry: PSE page at 0x[0-9a-f]+$/] },
  dir_flags: { must: true, reasons: [/^bad page (middle )?directory entry: flags 0x[0-9a-f]+$/] },
  dir_frame: { must: true, reasons: [/^bad page (middle )?directory entry: frame beyond pfn_limit$/] },
  switcher_pte: { must: true, reasons: [switcherPages] },
  // A write to the Switcher's read-only code page from ring 1: killed, as lguest does for a fault there.
  switcher_write: { must: false, reasons: [switcherPages] },
  notify_limit: { must: true, reasons: [/^Bad NOTIFY 0x[0-9a-f]+$/] },
  vcpu_start_self: { must: true, reasons: [/^VCPU_START: vCPU 0 is already running$/] },
  vcpu_start_async: { must: true, reasons: [/^VCPU_START in the async ring$/] },
  ipi_cpu: { must: true, reasons: [/^SEND_IPI to vCPU \d+: the guest has \d+$/] },
  ipi_irq: { must: true, reasons: [/^SEND_IPI of IRQ \d+$/] },
  tls_addr: { must: true, reasons: [badAddr] },
  async_bad: { must: true, reasons: [/^Bad hypercall \d+$/] },
  shutdown_addr: { must: true, reasons: [badAddr] },
  // 2-level: SET_PMD does not exist. PAE: a PMD page nobody shadows, ignored.
  set_pmd: { must: '2level', reasons: [/^Bad hypercall 13$/] },
  vq_addr: { must: true, reasons: [virtio('descriptor \\d+ buffer 0x[0-9a-f]+ len \\d+ is beyond guest memory')], needs: { rng: true } },
  vq_len: { must: true, reasons: [virtio('descriptor \\d+ buffer 0x[0-9a-f]+ len \\d+ is beyond guest memory')], needs: { rng: true } },
  vq_loop: { must: true, reasons: [virtio('descriptor chain from \\d+ is longer than \\d+ \\(a loop\\)')], needs: { rng: true } },
  vq_head: { must: true, reasons: [virtio('chain head \\d+ is out of range')], needs: { rng: true } },
  vq_idx: { must: true, reasons: [virtio('avail index \\d+ is \\d+ past the last seen')], needs: { rng: true } },
  vq_indirect: { must: true, reasons: [virtio('descriptor \\d+ is indirect')], needs: { rng: true } },
  vq_readable: { must: true, reasons: [virtio('')], needs: { rng: true } },
  vq_next: { must: true, reasons: [virtio('descriptor \\d+ links to \\d+, out of range')], needs: { rng: true } },
  sec_bad_hcall: { must: true, reasons: [/^Bad hypercall \d+$/], needs: { cpus: 2 } },
  sec_vcpu_start: { must: true, reasons: [/^VCPU_START: vCPU \d+ is already running$/], needs: { cpus: 2 } },
  sec_ipi_cpu: { must: true, reasons: [/^SEND_IPI to vCPU \d+: the guest has \d+$/], needs: { cpus: 2 } },
  sec_pte_frame: { must: true, reasons: [/^bad page table entry: frame beyond pfn_limit at 0x[0-9a-f]+$/], needs: { cpus: 2 } },
  // Issue 10's Host defects, fixed: one vCPU cannot reach another's regs page (its write faults), a PAE
  // kernel stack on the Switcher's pages is refused, and a dry shadow pool evicts instead of killing.
  smp_regs: { must: false, reasons: [switcherPages], needs: { cpus: 2 } },
  pae_stack_regs: { must: true, reasons: [/^bad stack page 0x[0-9a-f]+ in the Switcher's pages$/], needs: { pae: true } },
  pool_pressure: { must: false, reasons: [], survive: true },
};

export function gateOpen(gate: string | undefined, env = process.env.FUZZ_KNOWN_BUGS ?? ''): boolean {
  if (gate === undefined) return true;
  const list = env.split(',').map((s) => s.trim());
  return list.includes('all') || list.includes(gate);
}

/** The guest's announcements, in order, from its console. */
export interface Announcement { vcpu: number; what: 'fatal' | 'survived'; kind: string }

export function parseConsole(text: string): { acts: Announcement[]; tally: Record<string, number>; fails: string[]; done: boolean; skipped: boolean } {
  const acts: Announcement[] = [];
  const tally: Record<string, number> = {};
  const fails: string[] = [];
  let done = false, skipped = false;
  for (const line of text.split('\n')) {
    let m = /^@@fz v(\d) (fatal|survived) (\w+)$/.exec(line);
    if (m) { acts.push({ vcpu: Number(m[1]), what: m[2] as 'fatal' | 'survived', kind: m[3] }); continue; }
    m = /^@@fz tally (\w+) (\d+)$/.exec(line);
    if (m) { tally[m[1]] = Number(m[2]); continue; }
    if (line.startsWith('@@fz FAIL')) fails.push(line.slice(5));
    else if (line === '@@fz done') done = true;
    else if (line.startsWith('@@fz skipped')) skipped = true;
  }
  return { acts, tally, fails, done, skipped };
}

/** Strip the Launcher's "vCPU N: " prefix of an SMP kill. */
export function bareReason(reason: string): string {
  return reason.replace(/^vCPU \d+: /, '');
}

/** Which tally counters are hostile acts the Host had to handle, and their fate. */
export const TALLY_FATES: Record<string, 'survived' | 'reflected' | null> = {
  hcall: 'survived', ring: 'survived', xring: 'survived', pte: 'survived', touch_ok: 'survived',
  touch_pf: 'reflected', user_trap: 'reflected', ipi: 'survived', vstart: 'survived', vq: 'survived',
  // not counted as hostile acts: traps the CPU delivers to the guest without the Host, quiet ring-3
  // instructions, interrupts received, rounds, vCPUs
  user_direct: null, user_quiet: null, irq_in: null, rounds: null, vcpus: null,
};

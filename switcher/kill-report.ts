/**
 * [H:910] A killed guest explains itself: when the Host kills a guest, the vCPU whose kill stands reports
 * its saved registers (lguest_regs, as the guest last had them), the instruction at its EIP disassembled
 * (read through the guest's own page tables, so it is what the guest was running), and the last Host events
 * before the kill (switcher/events.ts). The Launcher prints these lines under "guest killed: REASON".
 */
import { describeEvent, type RecentEvents } from './events.ts';
import type { LgCpu } from './lguest.ts';
import { guestTranslate } from './plugins.ts';
import { disassemble } from '../emulator/disasm.ts';

const MAX_INSN = 15;

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** The guest's bytes at `va` (up to `len`, stopping at the first unmapped page). */
function guestBytes(c: LgCpu, va: number, len: number): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < len; i++) {
    const a = (va + i) >>> 0;
    const gpa = guestTranslate(c, a);
    if (gpa < 0) break;
    out.push(c.lg.mem.read8(c.lg.memBase + gpa));
  }
  return Uint8Array.from(out);
}

export function killReport(c: LgCpu, recent: RecentEvents | null): string[] {
  const r = (n: Parameters<LgCpu['reg']>[0]) => c.reg(n);
  const lines = [
    `vCPU ${c.id} registers (as the guest last had them), ${c.cpu.retired} instructions retired:`,
    `  eax ${hex8(r('eax'))}  ebx ${hex8(r('ebx'))}  ecx ${hex8(r('ecx'))}  edx ${hex8(r('edx'))}`,
    `  esi ${hex8(r('esi'))}  edi ${hex8(r('edi'))}  ebp ${hex8(r('ebp'))}  esp ${hex8(r('esp'))}`,
    `  eip ${hex8(r('eip'))}  eflags ${hex8(r('eflags'))}  cs ${hex8(r('cs')).slice(4)}  ss ${hex8(r('ss')).slice(4)}  ds ${hex8(r('ds')).slice(4)}  es ${hex8(r('es')).slice(4)}  fs ${hex8(r('fs')).slice(4)}  gs ${hex8(r('gs')).slice(4)}`,
    `  last trap ${r('trapnum')} error code ${hex8(r('errcode'))}  cr2 ${hex8(c.lastCr2)}`,
  ];
  const eip = r('eip');
  const bytes = guestBytes(c, eip, MAX_INSN);
  if (bytes.length === 0) {
    lines.push(`at ${hex8(eip)}: (not mapped in the guest's page tables)`);
  } else {
    let text = '(no disassembler)';
    try {
      const first = disassemble(bytes, eip, 1)[0];
      if (first) text = `${first.bytes.padEnd(20)} ${first.text}`;
    } catch { /* the report goes on without it */ }
    lines.push(`at ${hex8(eip)}: ${text}`);
  }
  const events = recent?.list() ?? [];
  if (events.length > 0) {
    lines.push(`last ${events.length} Host events on vCPU ${c.id} (oldest first):`);
    for (const e of events) lines.push(`  [${e.retired}] ${describeEvent(e.ev)}`);
  }
  return lines;
}

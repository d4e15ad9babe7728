/**
 * Flag instructions (CLC STC CMC CLD STD), NOP and hint NOPs, UD2 and the other #UD encodings, WAIT and
 * the x87 escapes (this CPU has no FPU), CPUID (an honest P6-class CPU: only the features implemented
 * are reported), RDTSC.
 */
import { CF, CR0_EM, CR0_MP, CR0_TS, CR4_TSD, DF, EAX, EBX, ECX, EDX, GP, NM, UD } from '../constants.ts';
import { bodyOp, defineOp } from './registry.ts';

export const NOP = bodyOp('NOP');
export const CLC = defineOp('CLC', (c) => { c.materializeFlags(); c.flags &= ~CF; });
export const STC = defineOp('STC', (c) => { c.materializeFlags(); c.flags |= CF; });
export const CMC = defineOp('CMC', (c) => { c.materializeFlags(); c.flags ^= CF; });
export const CLD = defineOp('CLD', (c) => { c.flags &= ~DF; });
export const STD = defineOp('STD', (c) => { c.flags |= DF; });

/** Invalid opcode (UD2, reserved encodings, LOCK where it is not allowed, ...). */
export const INVALID = defineOp('INVALID', (c) => { c.raise(UD, -1); });
/** An instruction longer than 15 bytes, or running past the CS limit. */
export const GP0 = defineOp('GP0', (c) => { c.raise(GP, 0); });

/** WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set; otherwise nothing (there is no FPU). */
export const WAIT = defineOp('WAIT', (c) => {
  if ((c.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) c.raise(NM, -1);
});
/** x87 escape D8-DF: #NM when CR0.EM or CR0.TS is set (so a kernel can emulate), otherwise #UD. */
export const ESC = defineOp('ESC', (c) => {
  if ((c.cr0 & (CR0_EM | CR0_TS)) !== 0) c.raise(NM, -1);
  c.raise(UD, -1);
});

/** CPUID vendor string: 12 bytes, honest about who we are. */
const VENDOR = 'lguestTSi386';
function vendorWord(i: number): number {
  let v = 0;
  for (let j = 0; j < 4; j++) v |= VENDOR.charCodeAt(i * 4 + j) << (j * 8);
  return v;
}
/** Feature bits of leaf 1 EDX: FPU(0) PSE(3) TSC(4) MSR(5) PAE(6) CX8(8) PGE(13) CMOV(15) (with FPU: FCMOV
 *  and FCOMI too). No APIC, no SEP (lguest hides it anyway), no FXSR, no MMX/SSE. */
export const CPUID_FEATURES = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 13) | (1 << 15);
/** Family 6, model 1, stepping 0 (a Pentium Pro's signature). */
export const CPUID_SIGNATURE = 0x610;

export const CPUID = defineOp('CPUID', (c) => {
  const leaf = c.r32[EAX] >>> 0;
  let a = 0, b = 0, cc = 0, d = 0;
  if (leaf === 0) {
    a = 1;
    b = vendorWord(0);
    d = vendorWord(1);
    cc = vendorWord(2);
  } else if (leaf === 1) {
    a = CPUID_SIGNATURE;
    d = CPUID_FEATURES | (c.apicPresent ? 1 << 9 : 0);
  }
  c.r32[EAX] = a;
  c.r32[EBX] = b;
  c.r32[ECX] = cc;
  c.r32[EDX] = d;
});

/** RDTSC: the time-stamp counter counts retired instructions, so runs are deterministic. */
export const RDTSC = defineOp('RDTSC', (c) => {
  if ((c.cr4 & CR4_TSD) !== 0 && c.cpl !== 0) c.raise(GP, 0);
  const t = c.retired + c.tsc;
  c.r32[EAX] = t % 4294967296 | 0;
  c.r32[EDX] = Math.floor(t / 4294967296) | 0;
});

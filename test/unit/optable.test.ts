/**
 * The instruction table (emulator/optable.ts): every row has a handler, the attributes the engines rely
 * on are consistent, every body compiles in every form, and the table module imports nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CPU } from '../../emulator/cpu.ts';
import { PhysicalMemory } from '../../mmu/memory.ts';
import {
  HOT_COUNT, LOCKABLE, LOOP_BRANCH, OPS, OP_NAMES, PURE, TERMINATES_BLOCK, WRITES, bodyPure, bodyWrites, expand, opId,
} from '../../emulator/optable.ts';
import { missingHandlers } from '../../emulator/ops/registry.ts';
import { compileBody, expandBody } from '../../emulator/ops/codegen.ts';
import { compileBlock } from '../../emulator/jit.ts';
import { decodeInstruction } from '../../emulator/decoder.ts';

describe('the instruction table', () => {
  it('imports nothing (anything may import the op ids)', () => {
    const src = readFileSync(new URL('../../emulator/optable.ts', import.meta.url), 'utf8');
    expect(src.match(/^import /m)).toBeNull();
  });

  it('gives every row a handler (the x87 family is reserved for emulator/ops/x87.ts)', () => {
    expect(missingHandlers().filter((n) => n !== 'X87')).toEqual([]);
  });

  it('expands families and knows every name once', () => {
    expect(expand('INC_E{b,w}_{R,M}')).toEqual(['INC_Eb_R', 'INC_Eb_M', 'INC_Ew_R', 'INC_Ew_M']);
    expect(new Set(OP_NAMES).size).toBe(OP_NAMES.length);
    expect(() => opId('ADD_EdGd_Q')).toThrow(/no row/);
  });

  it('puts the hot rows first, each with a body', () => {
    expect(HOT_COUNT).toBeGreaterThan(30);
    OPS.forEach((r, i) => expect(r.hot === true, r.name).toBe(i < HOT_COUNT));
    for (let i = 0; i < HOT_COUNT; i++) expect(OPS[i].body, OPS[i].name).toBeDefined();
  });

  it('derives "writes memory" and "pure" from the body', () => {
    for (const n of ['MOV_EdGd_M', 'MOV_EbGb_M', 'MOV_EbIb_M', 'PUSH_Rd', 'CALL_Jd', 'ADD_EdGd_M', 'ALU_EbIb_M']) expect(WRITES[opId(n)], n).toBe(1);
    for (const n of ['MOV_GdEd_M', 'CMP_EdGd_M', 'ADD_EdGd_R', 'JNZ_Jd', 'LEA_Gd', 'POP_Rd']) expect(WRITES[opId(n)], n).toBe(0);
    for (const n of ['ADD_EdGd_R', 'LEA_Gd', 'MOV_EdId_R', 'SHIFT_EdIb_R', 'NOP', 'CDQ']) expect(PURE[opId(n)], n).toBe(1);
    for (const n of ['MOV_GdEd_M', 'JNZ_Jd', 'PUSH_Rd', 'RETD', 'ALU_EbIb_M']) expect(PURE[opId(n)], n).toBe(0);
    // a row without a body is a handler call: the compiler treats it as writing and not pure
    expect(WRITES[opId('MOVSD')]).toBe(1);
    expect(PURE[opId('CLC')]).toBe(0);
    expect(bodyWrites('c.rmwWrite16(x);')).toBe(true);
    expect(bodyPure('r32[$reg] = c.read8($seg, $ea);')).toBe(false);
  });

  it('has consistent control-flow and lock attributes', () => {
    OPS.forEach((r, i) => {
      if (LOOP_BRANCH[i]) expect(TERMINATES_BLOCK[i], r.name).toBe(1);
      if (LOCKABLE[i]) expect(r.name, r.name).toMatch(/_M$|_Mq$/);
    });
    for (const n of ['JMP_Jd', 'Jcc_Jw', 'RETD', 'IRETD', 'HLT', 'INVALID', 'INT_Ib']) expect(TERMINATES_BLOCK[opId(n)], n).toBe(1);
    expect(LOCKABLE[opId('XCHG_EdGd_M')]).toBe(2);
    expect(LOCKABLE[opId('ADD_EdId_M')]).toBe(1);
  });

  it('compiles every body as a handler, an interpreter case and compiled code', () => {
    const mem = new PhysicalMemory(1 << 16);
    const cpu = new CPU(mem, 0, { codeSlots: 4 });
    // a decoded row with a memory operand (base, index, displacement) and one with 16-bit addressing
    decodeInstruction(cpu, 1, Uint8Array.from([0x8b, 0x44, 0x8b, 0x10]), 0, 4, 100, true); // mov eax, [ebx+ecx*4+16]
    decodeInstruction(cpu, 2, Uint8Array.from([0x67, 0x8b, 0x40, 0x10]), 0, 4, 100, true); // mov eax, [bx+si+16]
    for (const r of OPS) {
      if (r.body === undefined) continue;
      for (const k of [1, 2]) {
        const src = compileBody(r.body, cpu, k);
        expect(src, r.name).not.toMatch(/\$/);
        expect(() => new Function('c', 'r32', 'r16', 'r8', 'm32', 'tlb', 'sb', 'rl', 'wl', 'alu', 'shift', 'sh32', 'imul32', src), r.name).not.toThrow();
      }
      for (const mode of ['handler', 'interp'] as const) expect(expandBody(r.body, mode), r.name).not.toMatch(/\$/);
    }
    expect(compileBlock(cpu, 1, 2)).toBeTypeOf('function');
  });
});

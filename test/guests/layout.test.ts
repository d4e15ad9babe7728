/** The Host's layouts (switcher/layout.ts) agree with the guests' (guest-images/lguest/include/lguest_abi.h,
 *  dumped as layout.json by the guest build). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import * as L from '../../switcher/layout.ts';
import { MAX_VCPUS } from '../../switcher/smp.ts';
import * as SC from '../../mmu/shadow-consts.ts';
import * as C from '../../emulator/constants.ts';
import { LGUEST_VRING_ALIGN } from '../../devices/virtqueue.ts';

const json = JSON.parse(readFileSync(resolve(__dirname, '../../guest-images/lguest/layout.json'), 'utf8')) as {
  structs: Record<string, { size: number; fields: Record<string, { offset: number; size: number }> }>;
  constants: Record<string, number>;
  paging_2level: Record<string, number>;
  paging_pae: Record<string, number>;
};

/** Host name -> guest field name, where they differ. */
function fieldsOf(struct: string, host: Record<string, number>, rename: Record<string, string> = {}): void {
  const g = json.structs[struct];
  for (const [name, off] of Object.entries(host)) {
    const gname = rename[name] ?? name;
    expect(g.fields[gname], `${struct}.${gname} exists in layout.json`).toBeDefined();
    expect(off, `${struct}.${name}`).toBe(g.fields[gname].offset);
  }
}

describe('Host and guest layouts agree', () => {
  test('struct lguest_data', () => {
    fieldsOf('lguest_data', L.LGUEST_DATA, { time_tv_sec: 'time.tv_sec', time_tv_nsec: 'time.tv_nsec' });
    expect(L.LGUEST_DATA_SIZE).toBe(json.structs.lguest_data.size);
    expect(L.HCALL_ARGS_SIZE).toBe(json.structs.hcall_args.size);
  });
  test('struct lguest_regs', () => {
    fieldsOf('lguest_regs', L.LGUEST_REGS);
    expect(L.LGUEST_REGS_SIZE).toBe(json.structs.lguest_regs.size);
    expect(L.LGUEST_REGS_PAGE_OFFSET).toBe(json.constants.LGUEST_REGS_PAGE_OFFSET);
    // every field of the guest's copy is in ours
    expect(Object.keys(L.LGUEST_REGS).sort()).toEqual(Object.keys(json.structs.lguest_regs.fields).sort());
  });
  test('boot_params and e820', () => {
    fieldsOf('boot_params', L.BOOT_PARAMS);
    expect(L.BOOT_PARAMS_SIZE).toBe(json.structs.boot_params.size);
    fieldsOf('e820_entry', L.E820_ENTRY);
    expect(L.E820_ENTRY_SIZE).toBe(json.structs.e820_entry.size);
  });
  test('device descriptors', () => {
    fieldsOf('lguest_device_desc', L.LGUEST_DEVICE_DESC);
    expect(L.LGUEST_DEVICE_DESC_SIZE).toBe(json.structs.lguest_device_desc.size);
    fieldsOf('lguest_vqconfig', L.LGUEST_VQCONFIG);
    expect(L.LGUEST_VQCONFIG_SIZE).toBe(json.structs.lguest_vqconfig.size);
  });
  test('constants with the same name have the same value', () => {
    const host = L as unknown as Record<string, unknown>;
    const shared = Object.keys(json.constants).filter((k) => typeof host[k] === 'number');
    expect(shared.length).toBeGreaterThan(40);
    for (const k of shared) expect(host[k], k).toBe(json.constants[k]);
    // and every hypercall the guests know, we know
    for (const k of Object.keys(json.constants).filter((n) => n.startsWith('LHCALL_'))) expect(host[k], k).toBeDefined();
  });
  test('the numbers the Host declares outside switcher/layout.ts agree with the guests\' too', () => {
    const k = json.constants;
    expect(MAX_VCPUS, 'switcher/smp.ts MAX_VCPUS').toBe(k.LGUEST_MAX_VCPUS);
    expect(LGUEST_VRING_ALIGN, 'devices/virtqueue.ts').toBe(k.LGUEST_VRING_ALIGN);
    for (const [where, size, shift] of [['mmu/shadow-consts.ts', SC.PAGE_SIZE, SC.PAGE_SHIFT], ['emulator/constants.ts', C.PAGE_SIZE, C.PAGE_SHIFT]] as const) {
      expect(size, `${where} PAGE_SIZE`).toBe(k.PAGE_SIZE);
      expect(1 << shift, `${where} PAGE_SHIFT`).toBe(k.PAGE_SIZE);
    }
    expect(SC.PAGE_TABLE_FLAGS, 'mmu/shadow-consts.ts PAGE_TABLE_FLAGS').toBe(k._PAGE_TABLE);
    expect(SC.BOOT_PAGE_OFFSET, 'mmu/shadow-consts.ts BOOT_PAGE_OFFSET').toBe(k.PAGE_OFFSET);
    expect([C.PTE_P, C.PTE_RW, C.PTE_US, C.PTE_A, C.PTE_D, C.PTE_PS, C.PTE_G], 'emulator/constants.ts PTE_*').toEqual(
      [k._PAGE_PRESENT, k._PAGE_RW, k._PAGE_USER, k._PAGE_ACCESSED, k._PAGE_DIRTY, k._PAGE_PSE, k._PAGE_GLOBAL]);
    for (const [pae, g] of [[false, json.paging_2level], [true, json.paging_pae]] as const) {
      expect(pae ? SC.SWITCHER_ADDR_PAE : SC.SWITCHER_ADDR_2LEVEL, `mmu/shadow-consts.ts switcher address (pae ${pae})`).toBe(g.SWITCHER_ADDR);
      expect(SC.reserveMem(pae), `mmu/shadow-consts.ts reserveMem(${pae})`).toBe(g.LGUEST_RESERVE_MEM);
      expect(pae ? SC.ENTRIES_PAE : SC.ENTRIES_2LEVEL).toBe(g.PTRS_PER_PTE);
      expect(pae ? SC.SWITCHER_PGD_INDEX_PAE : SC.SWITCHER_PGD_INDEX_2LEVEL).toBe(g.SWITCHER_PGD_INDEX);
    }
  });
  test('paging layouts', () => {
    for (const [host, guest] of [[L.PAGING_2LEVEL, json.paging_2level], [L.PAGING_PAE, json.paging_pae]] as const) {
      expect(host.switcherAddr).toBe(guest.SWITCHER_ADDR);
      expect(host.reserveMem).toBe(guest.LGUEST_RESERVE_MEM);
      expect(host.ptrsPerPte).toBe(guest.PTRS_PER_PTE);
      expect(host.pteSize).toBe(guest.PTE_SIZE);
    }
  });
});

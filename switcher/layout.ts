/**
 * Every layout and number the Host shares with lguest guests, declared once (docs/abi.md,
 * seed / v3x variant; "abi N.N" in comments is its section N.N). guest-images/lguest/include/lguest_abi.h is the guest's copy; test/guests/layout
 * .test.ts proves the two agree through guest-images/lguest/layout.json. Use these names, never the
 * numbers.
 */
import { PAGE_SIZE } from '../emulator/constants.ts';

// ---- Hypercalls (abi 1.1 - 1.4) ----
export const LGUEST_TRAP_ENTRY = 0x1f;
export const LHCALL_FLUSH_ASYNC = 0;
export const LHCALL_LGUEST_INIT = 1;
export const LHCALL_SHUTDOWN = 2;
export const LHCALL_NEW_PGTABLE = 4;
export const LHCALL_FLUSH_TLB = 5;
export const LHCALL_LOAD_IDT_ENTRY = 6;
export const LHCALL_SET_STACK = 7;
export const LHCALL_TS = 8;
export const LHCALL_SET_CLOCKEVENT = 9;
export const LHCALL_HALT = 10;
export const LHCALL_SET_PMD = 13;
export const LHCALL_SET_PTE = 14;
export const LHCALL_SET_PGD = 15;
export const LHCALL_LOAD_TLS = 16;
export const LHCALL_NOTIFY = 17;
export const LHCALL_LOAD_GDT_ENTRY = 18;
export const LHCALL_SEND_INTERRUPTS = 19;
/** lguest-ts's SMP extension (switcher/README.md): lguest itself only ran uniprocessor guests. */
export const LHCALL_VCPU_START = 32;
export const LHCALL_SEND_IPI = 33;
/** VCPU_START's results in EAX (the one hypercall that returns a value). */
export const VCPU_START_OK = 0;
export const VCPU_START_NO_SUCH_VCPU = 1;
/** The experiment range: hypercalls served by plug-ins (`run --plugin`, switcher/plugins.ts). lguest's own
 *  numbers stay below 64, so these can never collide with one of them. */
export const LHCALL_EXPERIMENT_FIRST = 0x1000;
export const LHCALL_EXPERIMENT_LAST = 0x1fff;

export const HCALL_NAMES: Record<number, string> = {
  0: 'FLUSH_ASYNC', 1: 'LGUEST_INIT', 2: 'SHUTDOWN', 4: 'NEW_PGTABLE', 5: 'FLUSH_TLB', 6: 'LOAD_IDT_ENTRY',
  7: 'SET_STACK', 8: 'TS', 9: 'SET_CLOCKEVENT', 10: 'HALT', 13: 'SET_PMD', 14: 'SET_PTE', 15: 'SET_PGD',
  16: 'LOAD_TLS', 17: 'NOTIFY', 18: 'LOAD_GDT_ENTRY', 19: 'SEND_INTERRUPTS', 32: 'VCPU_START', 33: 'SEND_IPI',
};

export const LGUEST_SHUTDOWN_POWEROFF = 1;
export const LGUEST_SHUTDOWN_RESTART = 2;
/** SHUTDOWN reads this many bytes of message and forces a NUL at the last one. */
export const LGUEST_SHUTDOWN_MSG_MAX = 128;

export const LHCALL_RING_SIZE = 64;
export const LHCALL_STATUS_FREE = 0xff;
export const LHCALL_STATUS_PENDING = 0x00;

// ---- Interrupts and time (abi 2.1, 4.7, 8) ----
export const LGUEST_IRQS = 32;
export const FIRST_EXTERNAL_VECTOR = 32;
export const LGUEST_TIMER_IRQ = 0;
export const LGUEST_SYSCALL_VECTOR = 0x80;
export const X86_EFLAGS_IF = 0x200;
export const LG_CLOCK_MIN_DELTA = 100;

// ---- Privilege model, GDT, selectors (abi 3.6, 4.1, 4.3) ----
export const GUEST_PL = 1;
export const GDT_ENTRIES = 32;
export const IDT_ENTRIES = 256;
export const GDT_ENTRY_TLS_MIN = 6;
export const GDT_ENTRY_TLS_ENTRIES = 3;
export const GDT_ENTRY_LGUEST_CS = 10;
export const GDT_ENTRY_LGUEST_DS = 11;
export const GDT_ENTRY_KERNEL_CS = 12;
export const GDT_ENTRY_KERNEL_DS = 13;
export const GDT_ENTRY_USER_CS = 14;
export const GDT_ENTRY_USER_DS = 15;
export const GDT_ENTRY_TSS = 16;
export const GDT_ENTRY_DOUBLEFAULT_TSS = 31;
/** The Switcher's own selectors (ring 0, flat). */
export const LGUEST_CS = GDT_ENTRY_LGUEST_CS << 3;
export const LGUEST_DS = GDT_ENTRY_LGUEST_DS << 3;
export const KERNEL_CS = (GDT_ENTRY_KERNEL_CS << 3) | GUEST_PL;
export const KERNEL_DS = (GDT_ENTRY_KERNEL_DS << 3) | GUEST_PL;
export const USER_CS = (GDT_ENTRY_USER_CS << 3) | 3;
export const USER_DS = (GDT_ENTRY_USER_DS << 3) | 3;
export const GUEST_TSS_SEL = GDT_ENTRY_TSS << 3;
export const INITIAL_EFLAGS = 0x202;

/** Descriptor high-word bits. */
export const DESC_PRESENT = 0x8000;
export const DESC_DPL_MASK = 0x6000;
export const DESC_DPL_SHIFT = 13;
export const DESC_ACCESSED = 0x100;
/** S: set for code and data segments, clear for system descriptors (gates, TSS, LDT). */
export const DESC_SYSTEM_S = 0x1000;
/** Boot GDT entries (abi 3.6): flat 4 GiB, DPL 1. */
export const BOOT_KERNEL_CS_LO = 0x0000ffff, BOOT_KERNEL_CS_HI = 0x00cfbb00;
export const BOOT_KERNEL_DS_LO = 0x0000ffff, BOOT_KERNEL_DS_HI = 0x00cfb300;
/** The Switcher's LGUEST_CS / LGUEST_DS (abi 4.3): flat, DPL 0. */
export const LGUEST_CS_LO = 0x0000ffff, LGUEST_CS_HI = 0x00cf9b00;
export const LGUEST_DS_LO = 0x0000ffff, LGUEST_DS_HI = 0x00cf9300;
/** The guest TSS descriptor: limit 0x67, present available 32-bit TSS, DPL 0. */
export const TSS_LIMIT = 0x67;
export const TSS_DESC_TYPE = 0x89;

/** Gate descriptor fields (abi 4.4). */
export const GATE_PRESENT = 0x8000;
export const GATE_TYPE_SHIFT = 8;
export const GATE_TYPE_INTERRUPT = 0xe;
export const GATE_TYPE_TRAP = 0xf;
/** What load_guest_idt_entry keeps of a guest gate's high word: offset high half, P, DPL, type. */
export const GATE_HI_KEEP = 0xffffef00 | 0;
/** A present 32-bit interrupt gate, DPL 0 (the Switcher's default gates). */
export const SWITCHER_GATE_FLAGS = 0x8e00;

// ---- Guest memory (abi 3.2 - 3.5) ----
/** The i386's page size (emulator/constants.ts), part of the ABI too. */
export { PAGE_SIZE };
export const PAGE_SHIFT = 12;
export const PAGE_OFFSET = 0xc0000000;
export const BOOT_PARAMS_PHYS = 0;
export const BOOT_CMDLINE_PHYS = 0x1000;
/** Longest command line we place (it must end before the kernel at 1 MiB; Linux takes 2048). */
export const BOOT_CMDLINE_MAX = 2047;
export const DEVICE_PAGES = 256;
export const E820_RAM = 1;
export const HARDWARE_SUBARCH_LGUEST = 1;
export const KEEP_SEGMENTS = 0x40;
export const BOOT_PROTOCOL_VERSION = 0x0207;
export const LOADER_TYPE_UNDEFINED = 0xff;

// ---- Page-table bits lguest names ----
export const _PAGE_PRESENT = 0x001;
export const _PAGE_RW = 0x002;
export const _PAGE_USER = 0x004;
export const _PAGE_ACCESSED = 0x020;
export const _PAGE_DIRTY = 0x040;

// ---- The Switcher (abi 5.1, 5.2) ----
export interface PagingLayout {
  switcherAddr: number;
  reserveMem: number;
  pteSize: number;
  ptrsPerPte: number;
}
export const PAGING_2LEVEL: PagingLayout = { switcherAddr: 0xffc00000, reserveMem: 4 << 20, pteSize: 4, ptrsPerPte: 1024 };
export const PAGING_PAE: PagingLayout = { switcherAddr: 0xffe00000, reserveMem: 2 << 20, pteSize: 8, ptrsPerPte: 512 };

/** struct lguest_regs (72 bytes) sits at the very end of the vCPU's regs page. */
export const LGUEST_REGS = {
  eax: 0, ebx: 4, ecx: 8, edx: 12, esi: 16, edi: 20, ebp: 24, gs: 28, fs: 32, ds: 36, es: 40,
  trapnum: 44, errcode: 48, eip: 52, cs: 56, eflags: 60, esp: 64, ss: 68,
} as const;
export const LGUEST_REGS_SIZE = 72;
export const LGUEST_REGS_PAGE_OFFSET = PAGE_SIZE - LGUEST_REGS_SIZE;
/** trapnum before every entry: a fault in the Switcher's own return path leaves it there. */
export const TRAPNUM_SWITCHER = 256;

/** struct lguest_ro_state (the read-only page): the IDT, GDT and TSS the CPU uses while the guest runs.
 *  The Host fields (host_cr3 ...) are kept for the layout's sake; our Host does not need them. */
export const LGUEST_RO_STATE = {
  host_cr3: 0, host_idt_desc: 4, host_gdt_desc: 10, host_sp: 16, guest_idt_desc: 20, guest_gdt_desc: 26,
  guest_tss: 32, guest_idt: 136, guest_gdt: 2184,
} as const;
/** i386 TSS fields the Switcher uses. */
export const TSS = { esp0: 4, ss0: 8, esp1: 12, ss1: 16, io_bitmap_base: 102, size: 104 } as const;

// ---- struct lguest_data (abi 2.1, seed / v3x: 1396 bytes) ----
export const LGUEST_DATA = {
  irq_enabled: 0, blocked_interrupts: 4, cr2: 8, time: 12, time_tv_sec: 12, time_tv_nsec: 16,
  irq_pending: 20, hcall_status: 24, hcalls: 88, reserve_mem: 1368, tsc_khz: 1372, pgdir: 1376,
  noirq_start: 1380, noirq_end: 1384, kernel_address: 1388, syscall_vec: 1392,
} as const;
export const LGUEST_DATA_SIZE = 1396;
/** struct hcall_args: arg0..arg4 (the async ring's slots). */
export const HCALL_ARGS_SIZE = 20;

// ---- boot_params (abi 3.4) ----
export const BOOT_PARAMS = {
  e820_entries: 0x1e8, setup_sects: 0x1f1, boot_flag: 0x1fe, header: 0x202, version: 0x206,
  type_of_loader: 0x210, loadflags: 0x211, code32_start: 0x214, ramdisk_image: 0x218,
  ramdisk_size: 0x21c, cmd_line_ptr: 0x228, kernel_alignment: 0x230, hardware_subarch: 0x23c,
  hardware_subarch_data: 0x240, e820_map: 0x2d0,
} as const;
export const BOOT_PARAMS_SIZE = 4096;
export const E820_ENTRY = { addr: 0, size: 8, type: 16 } as const;
export const E820_ENTRY_SIZE = 20;

// ---- The device descriptor page (abi 7.1) ----
export const LGUEST_DEVICE_DESC = { type: 0, num_vq: 1, feature_len: 2, config_len: 3, status: 4 } as const;
export const LGUEST_DEVICE_DESC_SIZE = 5;
export const LGUEST_VQCONFIG = { num: 0, irq: 2, pfn: 4 } as const;
export const LGUEST_VQCONFIG_SIZE = 8;

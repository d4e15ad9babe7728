/* lguest_abi.h: every layout and number shared between an lguest-ts guest and the Host/Launcher.
 *
 * This is the guest's copy of the contract in docs/abi.md ("abi N.N" = its section N.N). Each
 * structure is declared once here, with _Static_assert on every offset and size, and tools/layout.c
 * prints all of it as layout.json so the TypeScript side can prove it agrees.
 *
 * The header is usable from C and from assembler (__ASSEMBLER__ hides the structures). Build with
 * -DCONFIG_PAE for the PAE (3-level) variant; only the paging constants change. */
#ifndef LGUEST_ABI_H
#define LGUEST_ABI_H

/* ---- Hypercalls (abi 1.1, 1.2): int $0x1f, EAX = number, EBX/ECX/EDX/ESI = arg1..arg4 ---- */
#define LGUEST_TRAP_ENTRY         0x1F

#define LHCALL_FLUSH_ASYNC        0
#define LHCALL_LGUEST_INIT        1
#define LHCALL_SHUTDOWN           2
#define LHCALL_NEW_PGTABLE        4
#define LHCALL_FLUSH_TLB          5
#define LHCALL_LOAD_IDT_ENTRY     6
#define LHCALL_SET_STACK          7
#define LHCALL_TS                 8
#define LHCALL_SET_CLOCKEVENT     9
#define LHCALL_HALT               10
#define LHCALL_SET_PMD            13   /* PAE only */
#define LHCALL_SET_PTE            14
#define LHCALL_SET_PGD            15
#define LHCALL_LOAD_TLS           16
#define LHCALL_NOTIFY             17
#define LHCALL_LOAD_GDT_ENTRY     18
#define LHCALL_SEND_INTERRUPTS    19

/* The lguest-ts SMP extension (not in lguest, which ran uniprocessor guests only; see README.md, "The smp
 * guest"). `lguest-ts run --cpus N` (1..LGUEST_MAX_VCPUS) starts vCPU 0 as usual; the others wait until
 * vCPU 0 (or any running vCPU) starts them.
 * VCPU_START: arg1 = vCPU id, arg2 = EIP (kernel virtual), arg3 = ESP. The only hypercall with a result, in
 *   EAX: VCPU_START_OK, or VCPU_START_NO_SUCH_VCPU for an id >= N (so a guest counts its vCPUs by starting
 *   1, 2, ... until it gets that). Starting vCPU 0, or one already started, kills the guest. The new vCPU
 *   runs at ring 1 on the starter's current page tables, CS 0x61, DS/ES/SS 0x69, FS/GS 0, EFLAGS 0x202,
 *   EAX = its id, the other GPRs 0; its first hypercall must be LGUEST_INIT with its own lguest_data.
 * SEND_IPI: arg1 = target vCPU id (< N), arg2 = virtual IRQ (< LGUEST_IRQS), raised on the target and
 *   delivered through its own lguest_data and IDT. A bad id or IRQ kills the guest. */
#define LHCALL_VCPU_START         32
#define LHCALL_SEND_IPI           33
#define VCPU_START_OK             0
#define VCPU_START_NO_SUCH_VCPU   1
#define LGUEST_MAX_VCPUS          8

/* The lguest-ts experiment range: hypercall numbers that hypercall plug-ins (`lguest-ts run --plugin FILE`)
 * serve. lguest's own numbers stay below 64, so no number here can ever collide with one of them. A number
 * in the range that no loaded plug-in registered kills the guest ("Bad hypercall N"), as any unknown
 * number does. A plug-in returns 32 bits in EAX or 64 bits in EDX:EAX (hcall64 in the runtime); from the
 * async ring a result is dropped. */
#define LHCALL_EXPERIMENT_FIRST   0x1000
#define LHCALL_EXPERIMENT_LAST    0x1FFF

#define LGUEST_SHUTDOWN_POWEROFF  1
#define LGUEST_SHUTDOWN_RESTART   2
#define LGUEST_SHUTDOWN_MSG_MAX   128  /* the Host reads this many bytes and forces a NUL at [127] */

/* The async ring (abi 1.4). */
#define LHCALL_RING_SIZE          64
#define LHCALL_STATUS_FREE        0xFF /* written by the Host when a slot is done */
#define LHCALL_STATUS_PENDING     0x00 /* written by the Guest when a slot is filled */

/* ---- Interrupts (abi 2.1, 4.7, 8) ---- */
#define LGUEST_IRQS               32
#define FIRST_EXTERNAL_VECTOR     32   /* virtual IRQ n arrives on vector 32 + n */
#define LGUEST_TIMER_IRQ          0
#define LGUEST_SYSCALL_VECTOR     0x80
#define X86_EFLAGS_IF             0x200 /* irq_enabled / irq_pending use this bit */
#define LG_CLOCK_MIN_DELTA        100  /* ns */

/* ---- Privilege model, GDT, selectors (abi 3.6, 4.1) ---- */
#define GUEST_PL                  1
#define GDT_ENTRIES               32
#define IDT_ENTRIES               256
#define GDT_ENTRY_TLS_MIN         6
#define GDT_ENTRY_TLS_ENTRIES     3
#define GDT_ENTRY_LGUEST_CS       10
#define GDT_ENTRY_LGUEST_DS       11
#define GDT_ENTRY_KERNEL_CS       12
#define GDT_ENTRY_KERNEL_DS       13
#define GDT_ENTRY_USER_CS         14
#define GDT_ENTRY_USER_DS         15
#define GDT_ENTRY_TSS             16
#define GDT_ENTRY_DOUBLEFAULT_TSS 31
#define KERNEL_CS                 0x61 /* (12 << 3) | GUEST_PL */
#define KERNEL_DS                 0x69 /* (13 << 3) | GUEST_PL */
#define USER_CS                   0x73 /* (14 << 3) | 3 */
#define USER_DS                   0x7B /* (15 << 3) | 3 */
#define TLS_SEL(n)                (((GDT_ENTRY_TLS_MIN + (n)) << 3) | 3)
#define INITIAL_EFLAGS            0x202

/* Gate descriptor high word bits (abi 4.4). */
#define GATE_PRESENT              0x8000
#define GATE_DPL_SHIFT            13
#define GATE_TYPE_SHIFT           8
#define GATE_TYPE_INTERRUPT       0xE
#define GATE_TYPE_TRAP            0xF

/* ---- Memory layout (abi 3.2 - 3.5, 5.1) ---- */
#define PAGE_SIZE                 4096
#define PAGE_SHIFT                12
#define PAGE_OFFSET               0xC0000000
#define KERNEL_LOAD_PHYS          0x100000
#define BOOT_PARAMS_PHYS          0x0
#define BOOT_CMDLINE_PHYS         0x1000
#define E820_RAM                  1
#define HARDWARE_SUBARCH_LGUEST   1
#define KEEP_SEGMENTS             0x40

/* Page-table entry bits (x86; the Host validates them, abi 6.4). */
#define _PAGE_PRESENT             0x001
#define _PAGE_RW                  0x002
#define _PAGE_USER                0x004
#define _PAGE_PWT                 0x008
#define _PAGE_PCD                 0x010
#define _PAGE_ACCESSED            0x020
#define _PAGE_DIRTY               0x040
#define _PAGE_PSE                 0x080
#define _PAGE_GLOBAL              0x100
#define _PAGE_TABLE               0x067 /* P|RW|USER|A|D: the most a 2-level PGD or PAE PMD entry may hold */
#define _KERNPG_TABLE             0x063
#define PAGE_FLAGS_MASK           0xFFF

#ifdef CONFIG_PAE
#define SWITCHER_ADDR             0xFFE00000
#define LGUEST_RESERVE_MEM        (2 * 1024 * 1024)
#define PTRS_PER_PTE              512
#define PTRS_PER_PMD              512
#define PTRS_PER_PGD              4
#define PGDIR_SHIFT               30
#define PMD_SHIFT                 21
#define PAE_PGD_FLAGS             _PAGE_PRESENT /* a PDPT entry may hold only PRESENT */
#else
#define SWITCHER_ADDR             0xFFC00000
#define LGUEST_RESERVE_MEM        (4 * 1024 * 1024)
#define PTRS_PER_PTE              1024
#define PTRS_PER_PGD              1024
#define PGDIR_SHIFT               22
#endif
#define SWITCHER_PGD_INDEX        (SWITCHER_ADDR >> PGDIR_SHIFT)

/* ---- Offsets (also usable from assembler) ---- */
#define LGUEST_DATA_irq_enabled        0
#define LGUEST_DATA_blocked_interrupts 4
#define LGUEST_DATA_cr2                8
#define LGUEST_DATA_time               12
#define LGUEST_DATA_irq_pending        20
#define LGUEST_DATA_hcall_status       24
#define LGUEST_DATA_hcalls             88
#define LGUEST_DATA_reserve_mem        1368
#define LGUEST_DATA_tsc_khz            1372
#define LGUEST_DATA_pgdir              1376
#define LGUEST_DATA_noirq_start        1380
#define LGUEST_DATA_noirq_end          1384
#define LGUEST_DATA_kernel_address     1388
#define LGUEST_DATA_syscall_vec        1392
#define LGUEST_DATA_SIZE               1396

#define LGUEST_REGS_SIZE               72
#define LGUEST_REGS_PAGE_OFFSET        (PAGE_SIZE - LGUEST_REGS_SIZE) /* 4024, in the regs page */

#define BP_e820_entries           0x1E8
#define BP_setup_sects            0x1F1
#define BP_boot_flag              0x1FE
#define BP_header                 0x202
#define BP_version                0x206
#define BP_type_of_loader         0x210
#define BP_loadflags              0x211
#define BP_code32_start           0x214
#define BP_ramdisk_image          0x218
#define BP_ramdisk_size           0x21C
#define BP_cmd_line_ptr           0x228
#define BP_kernel_alignment       0x230
#define BP_hardware_subarch       0x23C
#define BP_hardware_subarch_data  0x240
#define BP_e820_map               0x2D0
#define E820_MAX_ENTRIES          128
#define E820_ENTRY_SIZE           20
#define BOOT_PARAMS_SIZE          4096

#define LGUEST_DEVICE_DESC_SIZE   5
#define LGUEST_VQCONFIG_SIZE      8
#define LGUEST_VRING_ALIGN        4096

#ifndef __ASSEMBLER__

typedef unsigned char      u8;
typedef unsigned short     u16;
typedef unsigned int       u32;
typedef unsigned long long u64;

#define ABI_OFFSET(type, field, off) _Static_assert(__builtin_offsetof(type, field) == (off), \
	#type "." #field " must be at offset " #off)
#define ABI_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " must be " #size " bytes")

/* One slot of the async ring, and the block the Host overlays on EAX..ESI (abi 1.1, 1.4). */
struct hcall_args {
	u32 arg0;   /* call number (EAX) */
	u32 arg1;   /* EBX */
	u32 arg2;   /* ECX */
	u32 arg3;   /* EDX */
	u32 arg4;   /* ESI: only PAE SET_PTE uses it (the PTE's high word) */
};
ABI_OFFSET(struct hcall_args, arg0, 0);
ABI_OFFSET(struct hcall_args, arg1, 4);
ABI_OFFSET(struct hcall_args, arg2, 8);
ABI_OFFSET(struct hcall_args, arg3, 12);
ABI_OFFSET(struct hcall_args, arg4, 16);
ABI_SIZE(struct hcall_args, 20);

struct lguest_timespec {
	u32 tv_sec;
	u32 tv_nsec;
};
ABI_SIZE(struct lguest_timespec, 8);

/* The page the Guest shares with the Host (abi 2.1, seed / v3x layout, 1396 bytes). */
struct lguest_data {
	u32 irq_enabled;                          /* Guest: 0x200 on, 0 off (Host clears on delivery) */
	u32 blocked_interrupts[LGUEST_IRQS / 32]; /* Guest: bit n masks virtual IRQ n */
	u32 cr2;                                  /* Host: address of the last reflected page fault */
	struct lguest_timespec time;              /* Host: wall clock at INIT and each delivery */
	u32 irq_pending;                          /* Host: 0x200 when an IRQ waits for re-enable */
	u8  hcall_status[LHCALL_RING_SIZE];       /* both: 0xFF free, 0 pending */
	struct hcall_args hcalls[LHCALL_RING_SIZE];
	u32 reserve_mem;                          /* Host: bytes at the top of VA we must not use */
	u32 tsc_khz;                              /* Host: 0 = do not trust the TSC */
	u32 pgdir;                                /* Host: guest-phys of the initial top-level table */
	u32 noirq_start;                          /* Guest: [start, end) = no interrupt delivery */
	u32 noirq_end;
	u32 kernel_address;                       /* Guest: PAGE_OFFSET */
	u32 syscall_vec;                          /* Guest: 0x80 */
};
ABI_OFFSET(struct lguest_data, irq_enabled, LGUEST_DATA_irq_enabled);
ABI_OFFSET(struct lguest_data, blocked_interrupts, LGUEST_DATA_blocked_interrupts);
ABI_OFFSET(struct lguest_data, cr2, LGUEST_DATA_cr2);
ABI_OFFSET(struct lguest_data, time, LGUEST_DATA_time);
ABI_OFFSET(struct lguest_data, time.tv_sec, LGUEST_DATA_time);
ABI_OFFSET(struct lguest_data, time.tv_nsec, LGUEST_DATA_time + 4);
ABI_OFFSET(struct lguest_data, irq_pending, LGUEST_DATA_irq_pending);
ABI_OFFSET(struct lguest_data, hcall_status, LGUEST_DATA_hcall_status);
ABI_OFFSET(struct lguest_data, hcalls, LGUEST_DATA_hcalls);
ABI_OFFSET(struct lguest_data, reserve_mem, LGUEST_DATA_reserve_mem);
ABI_OFFSET(struct lguest_data, tsc_khz, LGUEST_DATA_tsc_khz);
ABI_OFFSET(struct lguest_data, pgdir, LGUEST_DATA_pgdir);
ABI_OFFSET(struct lguest_data, noirq_start, LGUEST_DATA_noirq_start);
ABI_OFFSET(struct lguest_data, noirq_end, LGUEST_DATA_noirq_end);
ABI_OFFSET(struct lguest_data, kernel_address, LGUEST_DATA_kernel_address);
ABI_OFFSET(struct lguest_data, syscall_vec, LGUEST_DATA_syscall_vec);
ABI_SIZE(struct lguest_data, LGUEST_DATA_SIZE);

/* The trap frame at the end of the Switcher's regs page (abi 5.2). Guests never see it; it is here
 * because it is part of the shared contract and layout.json carries it to the Host's test. */
struct lguest_regs {
	u32 eax, ebx, ecx, edx, esi, edi, ebp;   /* saved by the Switcher */
	u32 gs, fs, ds, es;
	u32 trapnum, errcode;                    /* pushed by the stub */
	u32 eip, cs, eflags, esp, ss;            /* pushed by the CPU */
};
ABI_OFFSET(struct lguest_regs, eax, 0);
ABI_OFFSET(struct lguest_regs, ebx, 4);
ABI_OFFSET(struct lguest_regs, ecx, 8);
ABI_OFFSET(struct lguest_regs, edx, 12);
ABI_OFFSET(struct lguest_regs, esi, 16);
ABI_OFFSET(struct lguest_regs, edi, 20);
ABI_OFFSET(struct lguest_regs, ebp, 24);
ABI_OFFSET(struct lguest_regs, gs, 28);
ABI_OFFSET(struct lguest_regs, fs, 32);
ABI_OFFSET(struct lguest_regs, ds, 36);
ABI_OFFSET(struct lguest_regs, es, 40);
ABI_OFFSET(struct lguest_regs, trapnum, 44);
ABI_OFFSET(struct lguest_regs, errcode, 48);
ABI_OFFSET(struct lguest_regs, eip, 52);
ABI_OFFSET(struct lguest_regs, cs, 56);
ABI_OFFSET(struct lguest_regs, eflags, 60);
ABI_OFFSET(struct lguest_regs, esp, 64);
ABI_OFFSET(struct lguest_regs, ss, 68);
ABI_SIZE(struct lguest_regs, LGUEST_REGS_SIZE);

/* One e820 map entry (20 bytes, packed). */
struct e820_entry {
	u64 addr;
	u64 size;
	u32 type;
} __attribute__((packed));
ABI_OFFSET(struct e820_entry, addr, 0);
ABI_OFFSET(struct e820_entry, size, 8);
ABI_OFFSET(struct e820_entry, type, 16);
ABI_SIZE(struct e820_entry, E820_ENTRY_SIZE);

/* The x86 zero page at guest-physical 0, reduced to the fields lguest uses (abi 3.4); the gaps are
 * padding so every field sits at its boot-protocol offset. */
struct boot_params {
	u8  pad0[BP_e820_entries];
	u8  e820_entries;                             /* 0x1E8 */
	u8  pad1[BP_setup_sects - BP_e820_entries - 1];
	u8  setup_sects;                              /* 0x1F1: hdr starts here */
	u8  pad2[BP_boot_flag - BP_setup_sects - 1];
	u16 boot_flag;                                /* 0x1FE: 0xAA55 */
	u16 pad3;
	u32 header;                                   /* 0x202: "HdrS" */
	u16 version;                                  /* 0x206 */
	u8  pad4[BP_type_of_loader - BP_version - 2];
	u8  type_of_loader;                           /* 0x210 */
	u8  loadflags;                                /* 0x211 */
	u16 pad5;
	u32 code32_start;                             /* 0x214 */
	u32 ramdisk_image;                            /* 0x218 */
	u32 ramdisk_size;                             /* 0x21C */
	u8  pad6[BP_cmd_line_ptr - BP_ramdisk_size - 4];
	u32 cmd_line_ptr;                             /* 0x228 */
	u32 pad7;
	u32 kernel_alignment;                         /* 0x230 */
	u8  pad8[BP_hardware_subarch - BP_kernel_alignment - 4];
	u32 hardware_subarch;                         /* 0x23C: 1 = lguest */
	u64 hardware_subarch_data;                    /* 0x240 */
	u8  pad9[BP_e820_map - BP_hardware_subarch_data - 8];
	struct e820_entry e820_map[E820_MAX_ENTRIES]; /* 0x2D0 */
	u8  pad10[BOOT_PARAMS_SIZE - BP_e820_map - E820_MAX_ENTRIES * E820_ENTRY_SIZE];
} __attribute__((packed));
ABI_OFFSET(struct boot_params, e820_entries, BP_e820_entries);
ABI_OFFSET(struct boot_params, setup_sects, BP_setup_sects);
ABI_OFFSET(struct boot_params, boot_flag, BP_boot_flag);
ABI_OFFSET(struct boot_params, header, BP_header);
ABI_OFFSET(struct boot_params, version, BP_version);
ABI_OFFSET(struct boot_params, type_of_loader, BP_type_of_loader);
ABI_OFFSET(struct boot_params, loadflags, BP_loadflags);
ABI_OFFSET(struct boot_params, code32_start, BP_code32_start);
ABI_OFFSET(struct boot_params, ramdisk_image, BP_ramdisk_image);
ABI_OFFSET(struct boot_params, ramdisk_size, BP_ramdisk_size);
ABI_OFFSET(struct boot_params, cmd_line_ptr, BP_cmd_line_ptr);
ABI_OFFSET(struct boot_params, kernel_alignment, BP_kernel_alignment);
ABI_OFFSET(struct boot_params, hardware_subarch, BP_hardware_subarch);
ABI_OFFSET(struct boot_params, hardware_subarch_data, BP_hardware_subarch_data);
ABI_OFFSET(struct boot_params, e820_map, BP_e820_map);
ABI_SIZE(struct boot_params, BOOT_PARAMS_SIZE);

/* Device descriptor page records (abi 7.1): byte-packed, back to back. No guest here drives devices
 * yet; the layouts are declared so the Host test can check them too. */
struct lguest_device_desc {
	u8 type;        /* virtio device type; 0 ends the list */
	u8 num_vq;
	u8 feature_len;
	u8 config_len;
	u8 status;      /* written by the Guest, then NOTIFY(desc page + offset) */
} __attribute__((packed));
ABI_OFFSET(struct lguest_device_desc, type, 0);
ABI_OFFSET(struct lguest_device_desc, num_vq, 1);
ABI_OFFSET(struct lguest_device_desc, feature_len, 2);
ABI_OFFSET(struct lguest_device_desc, config_len, 3);
ABI_OFFSET(struct lguest_device_desc, status, 4);
ABI_SIZE(struct lguest_device_desc, LGUEST_DEVICE_DESC_SIZE);

struct lguest_vqconfig {
	u16 num;        /* ring entries */
	u16 irq;
	u32 pfn;        /* guest pfn of the ring */
} __attribute__((packed));
ABI_OFFSET(struct lguest_vqconfig, num, 0);
ABI_OFFSET(struct lguest_vqconfig, irq, 2);
ABI_OFFSET(struct lguest_vqconfig, pfn, 4);
ABI_SIZE(struct lguest_vqconfig, LGUEST_VQCONFIG_SIZE);

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags;      /* NEXT 1, WRITE 2, INDIRECT 4 */
	u16 next;
};
ABI_OFFSET(struct vring_desc, addr, 0);
ABI_OFFSET(struct vring_desc, len, 8);
ABI_OFFSET(struct vring_desc, flags, 12);
ABI_OFFSET(struct vring_desc, next, 14);
ABI_SIZE(struct vring_desc, 16);

struct vring_used_elem {
	u32 id;
	u32 len;
};
ABI_SIZE(struct vring_used_elem, 8);

/* Page-table entry types of the variant being built. */
#ifdef CONFIG_PAE
typedef u64 pte_t;
#else
typedef u32 pte_t;
#endif

#endif /* !__ASSEMBLER__ */
#endif /* LGUEST_ABI_H */

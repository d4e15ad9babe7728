/* layout.c: the machine-readable form of include/lguest_abi.h (layout.json), without running anything.
 *
 * Compiled for i386 with `gcc -m32 -S` only, never linked or run, so it works on a host whose kernel
 * refuses 32-bit programs. As Linux's asm-offsets does, each fact becomes a marker line in the generated
 * assembly: the compiler evaluates every sizeof, offsetof and constant as i386 sees them and prints the
 * number into the marker; tools/layout-json.mjs reads the markers (in source order) and writes the JSON.
 * Markers: "@@LAYOUT S name size" opens a structure, "F name offset size" is a field, "E" closes it,
 * "G name" opens a group of constants, "C name value" is a constant (value printed as a signed 32-bit
 * number by the compiler; the reader takes it modulo 2^32). layout_pae.c adds the PAE paging constants.
 * A TypeScript test (test/guests/layout.test.ts) compares layout.json with the Host's own declarations. */
#include "lguest_abi.h"
#include "layout.h"

void paging_constants_pae(void);

static void paging_constants(void)
{
	PAGING_CONSTANTS_COMMON();
}

void layout(void)
{
	STRUCT(struct hcall_args, "hcall_args");
	FIELD(struct hcall_args, arg0);
	FIELD(struct hcall_args, arg1);
	FIELD(struct hcall_args, arg2);
	FIELD(struct hcall_args, arg3);
	FIELD(struct hcall_args, arg4);
	END_STRUCT();

	STRUCT(struct lguest_data, "lguest_data");
	FIELD(struct lguest_data, irq_enabled);
	FIELD(struct lguest_data, blocked_interrupts);
	FIELD(struct lguest_data, cr2);
	FIELD(struct lguest_data, time);
	FIELD(struct lguest_data, time.tv_sec);
	FIELD(struct lguest_data, time.tv_nsec);
	FIELD(struct lguest_data, irq_pending);
	FIELD(struct lguest_data, hcall_status);
	FIELD(struct lguest_data, hcalls);
	FIELD(struct lguest_data, reserve_mem);
	FIELD(struct lguest_data, tsc_khz);
	FIELD(struct lguest_data, pgdir);
	FIELD(struct lguest_data, noirq_start);
	FIELD(struct lguest_data, noirq_end);
	FIELD(struct lguest_data, kernel_address);
	FIELD(struct lguest_data, syscall_vec);
	END_STRUCT();

	STRUCT(struct lguest_regs, "lguest_regs");
	FIELD(struct lguest_regs, eax);
	FIELD(struct lguest_regs, ebx);
	FIELD(struct lguest_regs, ecx);
	FIELD(struct lguest_regs, edx);
	FIELD(struct lguest_regs, esi);
	FIELD(struct lguest_regs, edi);
	FIELD(struct lguest_regs, ebp);
	FIELD(struct lguest_regs, gs);
	FIELD(struct lguest_regs, fs);
	FIELD(struct lguest_regs, ds);
	FIELD(struct lguest_regs, es);
	FIELD(struct lguest_regs, trapnum);
	FIELD(struct lguest_regs, errcode);
	FIELD(struct lguest_regs, eip);
	FIELD(struct lguest_regs, cs);
	FIELD(struct lguest_regs, eflags);
	FIELD(struct lguest_regs, esp);
	FIELD(struct lguest_regs, ss);
	END_STRUCT();

	STRUCT(struct e820_entry, "e820_entry");
	FIELD(struct e820_entry, addr);
	FIELD(struct e820_entry, size);
	FIELD(struct e820_entry, type);
	END_STRUCT();

	STRUCT(struct boot_params, "boot_params");
	FIELD(struct boot_params, e820_entries);
	FIELD(struct boot_params, setup_sects);
	FIELD(struct boot_params, boot_flag);
	FIELD(struct boot_params, header);
	FIELD(struct boot_params, version);
	FIELD(struct boot_params, type_of_loader);
	FIELD(struct boot_params, loadflags);
	FIELD(struct boot_params, code32_start);
	FIELD(struct boot_params, ramdisk_image);
	FIELD(struct boot_params, ramdisk_size);
	FIELD(struct boot_params, cmd_line_ptr);
	FIELD(struct boot_params, kernel_alignment);
	FIELD(struct boot_params, hardware_subarch);
	FIELD(struct boot_params, hardware_subarch_data);
	FIELD(struct boot_params, e820_map);
	END_STRUCT();

	STRUCT(struct lguest_device_desc, "lguest_device_desc");
	FIELD(struct lguest_device_desc, type);
	FIELD(struct lguest_device_desc, num_vq);
	FIELD(struct lguest_device_desc, feature_len);
	FIELD(struct lguest_device_desc, config_len);
	FIELD(struct lguest_device_desc, status);
	END_STRUCT();

	STRUCT(struct lguest_vqconfig, "lguest_vqconfig");
	FIELD(struct lguest_vqconfig, num);
	FIELD(struct lguest_vqconfig, irq);
	FIELD(struct lguest_vqconfig, pfn);
	END_STRUCT();

	STRUCT(struct vring_desc, "vring_desc");
	FIELD(struct vring_desc, addr);
	FIELD(struct vring_desc, len);
	FIELD(struct vring_desc, flags);
	FIELD(struct vring_desc, next);
	END_STRUCT();

	STRUCT(struct vring_used_elem, "vring_used_elem");
	FIELD(struct vring_used_elem, id);
	FIELD(struct vring_used_elem, len);
	END_STRUCT();
	GROUP("constants");
	CONST(LGUEST_TRAP_ENTRY);
	CONST(LHCALL_FLUSH_ASYNC);
	CONST(LHCALL_LGUEST_INIT);
	CONST(LHCALL_SHUTDOWN);
	CONST(LHCALL_NEW_PGTABLE);
	CONST(LHCALL_FLUSH_TLB);
	CONST(LHCALL_LOAD_IDT_ENTRY);
	CONST(LHCALL_SET_STACK);
	CONST(LHCALL_TS);
	CONST(LHCALL_SET_CLOCKEVENT);
	CONST(LHCALL_HALT);
	CONST(LHCALL_SET_PMD);
	CONST(LHCALL_SET_PTE);
	CONST(LHCALL_SET_PGD);
	CONST(LHCALL_LOAD_TLS);
	CONST(LHCALL_NOTIFY);
	CONST(LHCALL_LOAD_GDT_ENTRY);
	CONST(LHCALL_SEND_INTERRUPTS);
	CONST(LHCALL_VCPU_START);
	CONST(LHCALL_SEND_IPI);
	CONST(VCPU_START_OK);
	CONST(VCPU_START_NO_SUCH_VCPU);
	CONST(LGUEST_MAX_VCPUS);
	CONST(LHCALL_EXPERIMENT_FIRST);
	CONST(LHCALL_EXPERIMENT_LAST);
	CONST(LGUEST_SHUTDOWN_POWEROFF);
	CONST(LGUEST_SHUTDOWN_RESTART);
	CONST(LGUEST_SHUTDOWN_MSG_MAX);
	CONST(LHCALL_RING_SIZE);
	CONST(LHCALL_STATUS_FREE);
	CONST(LHCALL_STATUS_PENDING);
	CONST(LGUEST_IRQS);
	CONST(FIRST_EXTERNAL_VECTOR);
	CONST(LGUEST_TIMER_IRQ);
	CONST(LGUEST_SYSCALL_VECTOR);
	CONST(X86_EFLAGS_IF);
	CONST(LG_CLOCK_MIN_DELTA);
	CONST(GUEST_PL);
	CONST(GDT_ENTRIES);
	CONST(IDT_ENTRIES);
	CONST(GDT_ENTRY_TLS_MIN);
	CONST(GDT_ENTRY_TLS_ENTRIES);
	CONST(GDT_ENTRY_LGUEST_CS);
	CONST(GDT_ENTRY_LGUEST_DS);
	CONST(GDT_ENTRY_KERNEL_CS);
	CONST(GDT_ENTRY_KERNEL_DS);
	CONST(GDT_ENTRY_USER_CS);
	CONST(GDT_ENTRY_USER_DS);
	CONST(GDT_ENTRY_TSS);
	CONST(GDT_ENTRY_DOUBLEFAULT_TSS);
	CONST(KERNEL_CS);
	CONST(KERNEL_DS);
	CONST(USER_CS);
	CONST(USER_DS);
	CONST(INITIAL_EFLAGS);
	CONST(GATE_TYPE_INTERRUPT);
	CONST(GATE_TYPE_TRAP);
	CONST(PAGE_SIZE);
	CONST(PAGE_OFFSET);
	CONST(KERNEL_LOAD_PHYS);
	CONST(BOOT_PARAMS_PHYS);
	CONST(BOOT_CMDLINE_PHYS);
	CONST(E820_RAM);
	CONST(HARDWARE_SUBARCH_LGUEST);
	CONST(KEEP_SEGMENTS);
	CONST(_PAGE_PRESENT);
	CONST(_PAGE_RW);
	CONST(_PAGE_USER);
	CONST(_PAGE_ACCESSED);
	CONST(_PAGE_DIRTY);
	CONST(_PAGE_PSE);
	CONST(_PAGE_GLOBAL);
	CONST(_PAGE_TABLE);
	CONST(LGUEST_REGS_PAGE_OFFSET);
	CONST(LGUEST_VRING_ALIGN);
	GROUP("paging_2level");
	paging_constants();
	GROUP("paging_pae");
	paging_constants_pae();
}

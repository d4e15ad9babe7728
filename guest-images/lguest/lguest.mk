# lguest/lguest.mk: the lguest-mode guests (see lguest/README.md), included by guest-images/Makefile,
# whose BUILD, OBJ, CC, LD, IMAGES and all/clean/check this extends.
#
#   build/NAME.elf       2-level paging variant of each guest
#   build/NAME-pae.elf   PAE variant (-DCONFIG_PAE)
#   (the bench-* guests are bench/run.ts's: bench-lguest links the bare kernel's own workload.o)
#   make lguest-layout   regenerate lguest/layout.json (checked by `make check`)
#   make lguest-hosttest run the host-side unit test of the formatter and the async-ring indexing
#
# Same reproducibility rules as the rest of this Makefile: no debug information, no build-id, fixed
# link order, file names relative to guest-images/.

LGUEST_DIR := lguest
LGUEST_OBJ := $(OBJ)/lguest
LGUEST_BENCH_GUESTS := bench-lguest bench-switch bench-fault bench-hcall bench-smp
LGUEST_GUESTS := hello traps timer usermode misbehave paging fuzz $(LGUEST_BENCH_GUESTS)
LGUEST_GUESTS += virtcon
LGUEST_GUESTS += virtblk
LGUEST_GUESTS += smp
LGUEST_GUESTS += smp-stress
# The plug-in experiments (examples/plugins/): need `run --plugin`.
LGUEST_GUESTS += pvclock pagehash
# The Host-isolation attack guests (issue 10; test/guests/isolation-host.test.ts).
LGUEST_GUESTS += attack-regs attack-stack attack-task attack-sparse
# Attacks on the Launcher and its devices (issue 10; test/guests/isolation-launcher.test.ts).
LGUEST_GUESTS += attackl-io
# fuzz-soak: the soak's and the fuzz tests' attacker (test/soak/), with the secondary-vCPU path.
LGUEST_GUESTS += fuzz-soak
# fpu: lazy FPU switching between ring-3 tasks (test/guests/fpu.test.ts).
LGUEST_GUESTS += fpu
LGUEST_EXTRA_fuzz-soak := vcpu vcpu_entry
LGUEST_IMAGES := $(foreach g,$(LGUEST_GUESTS),$(BUILD)/$(g).elf $(BUILD)/$(g)-pae.elf)
IMAGES += $(LGUEST_IMAGES)

# i386 only, no x87/MMX/SSE code generation (the fpu guest uses the x87 in inline assembly only), no CET end-branch instructions, no PIC.
LGUEST_CFLAGS := -m32 -march=i386 -mno-80387 -mno-mmx -mno-sse -std=gnu11 -O2 -Wall -Wextra \
	-ffreestanding -nostdlib -fno-builtin -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns -fno-ident \
	-fcf-protection=none -ffile-prefix-map=$(CURDIR)/= -I$(LGUEST_DIR)/include
LGUEST_LDFLAGS := -m elf_i386 -nostdlib --build-id=none -z max-page-size=0x1000 -z noexecstack \
	--no-warn-rwx-segments
LGUEST_HEADERS := $(wildcard $(LGUEST_DIR)/include/*.h)

# Link order is this list's order (entry.o first: lguest_entry opens .text).
LGUEST_RUNTIME := entry boot hcall ring console format string irq desc clock mm task
LGUEST_EXTRA_usermode := usermode_blob
LGUEST_EXTRA_bench-switch := bench-switch_blob
LGUEST_EXTRA_fpu := fpu_blob vcpu vcpu_entry
# The secondary-vCPU path (runtime/vcpu.c, vcpu_entry.S: the lguest-ts SMP extension), only for smp.
LGUEST_EXTRA_smp := vcpu vcpu_entry
LGUEST_EXTRA_smp-stress := vcpu vcpu_entry
LGUEST_EXTRA_attack-regs := vcpu vcpu_entry
LGUEST_EXTRA_attackl-io := vcpu vcpu_entry
# Objects from outside lguest/ (the same file in both variants): the workload is the very object the bare
# kernel build/bench.elf links, so both run the same instructions.
LGUEST_LINK_bench-lguest := $(OBJ)/workload/workload.o
# bench-smp runs the workload on every vCPU at once, and the workload keeps its state in static arrays:
# vCPU 0 runs that object, each secondary n (1..7) a copy of it with workload_run renamed
# workload_run_vcpuN and every other symbol made local, so the same instructions on data of its own.
LGUEST_EXTRA_bench-smp := vcpu vcpu_entry
LGUEST_LINK_bench-smp := $(OBJ)/workload/workload.o $(foreach n,1 2 3 4 5 6 7,$(LGUEST_OBJ)/workload-vcpu$(n).o)
$(LGUEST_OBJ)/workload-vcpu%.o: $(OBJ)/workload/workload.o
	@mkdir -p $(dir $@)
	objcopy --redefine-sym workload_run=workload_run_vcpu$* --keep-global-symbol=workload_run_vcpu$* $< $@

# One set of objects per paging variant: $(LGUEST_OBJ)/2level and $(LGUEST_OBJ)/pae.
define lguest_variant_rules
$(LGUEST_OBJ)/$(1)/%.o: $(LGUEST_DIR)/runtime/%.c $(LGUEST_HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -c -o $$@ $$<
$(LGUEST_OBJ)/$(1)/%.o: $(LGUEST_DIR)/runtime/%.S $(LGUEST_HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -c -o $$@ $$<
$(LGUEST_OBJ)/$(1)/%.o: $(LGUEST_DIR)/guests/%.c $(LGUEST_HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -c -o $$@ $$<
$(LGUEST_OBJ)/$(1)/%_blob.o: $(LGUEST_DIR)/guests/usermode_blob.S $(LGUEST_OBJ)/user/%_user.bin
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -DUSER_BIN='"$(LGUEST_OBJ)/user/$$*_user.bin"' -c -o $$@ $$<
$(LGUEST_OBJ)/$(1)/bench-lguest.o: $(LGUEST_DIR)/guests/bench-lguest.c $(WORKLOAD)/workload.h $(LGUEST_HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -I$(WORKLOAD) -c -o $$@ $$<
$(LGUEST_OBJ)/$(1)/bench-smp.o: $(LGUEST_DIR)/guests/bench-smp.c $(WORKLOAD)/workload.h $(LGUEST_HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(LGUEST_CFLAGS) $(2) -I$(WORKLOAD) -c -o $$@ $$<
endef
$(eval $(call lguest_variant_rules,2level,))
$(eval $(call lguest_variant_rules,pae,-DCONFIG_PAE))

define lguest_image_rule
$(BUILD)/$(1)$(3).elf: $(addprefix $(LGUEST_OBJ)/$(2)/,$(addsuffix .o,$(LGUEST_RUNTIME) $(1) $(LGUEST_EXTRA_$(1)))) $(LGUEST_LINK_$(1)) $(LGUEST_DIR)/kernel.ld
	@mkdir -p $$(dir $$@)
	$(LD) $(LGUEST_LDFLAGS) -T $(LGUEST_DIR)/kernel.ld -o $$@ $$(filter %.o,$$^)
endef
$(foreach g,$(LGUEST_GUESTS),$(eval $(call lguest_image_rule,$(g),2level,)))
$(foreach g,$(LGUEST_GUESTS),$(eval $(call lguest_image_rule,$(g),pae,-pae)))

# The ring-3 programs (usermode_user, bench-switch_user): linked at 0x400000, flattened, embedded by
# usermode_blob.S (as NAME_blob.o).
$(LGUEST_OBJ)/user/%.o: $(LGUEST_DIR)/guests/%.c $(LGUEST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_CFLAGS) -c -o $@ $<
$(LGUEST_OBJ)/user/format.o: $(LGUEST_DIR)/runtime/format.c $(LGUEST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_CFLAGS) -c -o $@ $<
$(LGUEST_OBJ)/user/usermode_user.elf: $(LGUEST_OBJ)/user/usermode_user.o $(LGUEST_OBJ)/user/format.o $(LGUEST_DIR)/user.ld
	$(LD) $(LGUEST_LDFLAGS) -T $(LGUEST_DIR)/user.ld -o $@ $(filter %.o,$^)
$(LGUEST_OBJ)/user/fpu_user.elf: $(LGUEST_OBJ)/user/fpu_user.o $(LGUEST_DIR)/user.ld
	$(LD) $(LGUEST_LDFLAGS) -T $(LGUEST_DIR)/user.ld -o $@ $(filter %.o,$^)
$(LGUEST_OBJ)/user/bench-switch_user.elf: $(LGUEST_OBJ)/user/bench-switch_user.o $(LGUEST_DIR)/user.ld
	$(LD) $(LGUEST_LDFLAGS) -T $(LGUEST_DIR)/user.ld -o $@ $(filter %.o,$^)
$(LGUEST_OBJ)/user/%_user.bin: $(LGUEST_OBJ)/user/%_user.elf
	objcopy -O binary $< $@

# layout.json: offsets and sizes of every shared structure plus the ABI constants. tools/layout.c (and
# tools/layout_pae.c for the PAE constants) is compiled for i386 to assembly only, never run: each fact is a
# marker line with the number the compiler computed (Linux's asm-offsets trick), and tools/layout-json.mjs
# writes the JSON. So no 32-bit program runs, and any x86-64 host with gcc -m32 can check the layout.
LGUEST_LAYOUT_ASM := $(LGUEST_OBJ)/layout/layout.s $(LGUEST_OBJ)/layout/layout_pae.s
LGUEST_LAYOUT_JSON := $(LGUEST_OBJ)/layout/layout.json
$(LGUEST_OBJ)/layout/%.s: $(LGUEST_DIR)/tools/%.c $(LGUEST_DIR)/tools/layout.h $(LGUEST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -m32 -O2 -Wall -Wextra -I$(LGUEST_DIR)/include -I$(LGUEST_DIR)/tools -S -o $@ $<
$(LGUEST_LAYOUT_JSON): $(LGUEST_LAYOUT_ASM) $(LGUEST_DIR)/tools/layout-json.mjs
	node $(LGUEST_DIR)/tools/layout-json.mjs $(LGUEST_LAYOUT_ASM) > $@.tmp && mv $@.tmp $@

.PHONY: lguest-layout lguest-check-layout lguest-hosttest
lguest-layout: $(LGUEST_LAYOUT_JSON)
	cp $(LGUEST_LAYOUT_JSON) $(LGUEST_DIR)/layout.json

lguest-check-layout: $(LGUEST_LAYOUT_JSON)
	@if cmp -s $(LGUEST_LAYOUT_JSON) $(LGUEST_DIR)/layout.json; then \
		echo "check: lguest/layout.json matches lguest_abi.h"; \
	else \
		echo "check: lguest/layout.json differs from lguest_abi.h (make lguest-layout)" >&2; exit 1; \
	fi

# hosttest: the printf engine and the async ring under test, as a bare Multiboot kernel (the bare/ runtime
# without its console, whose printf the test replaces) run on lguest-ts's own emulated i386, not natively.
LGUEST_HOSTTEST := $(LGUEST_OBJ)/hosttest/hosttest.elf
LGUEST_HOSTTEST_OBJS := $(OBJ)/bare/boot.o $(OBJ)/bare/start.o $(OBJ)/bare/string.o \
	$(LGUEST_OBJ)/hosttest/hosttest.o $(LGUEST_OBJ)/2level/format.o $(LGUEST_OBJ)/2level/ring.o
$(LGUEST_OBJ)/hosttest/hosttest.o: $(LGUEST_DIR)/hosttest/hosttest.c $(LGUEST_HEADERS) bare/bare.h
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_CFLAGS) -Ibare -c -o $@ $<
$(LGUEST_HOSTTEST): $(LGUEST_HOSTTEST_OBJS) bare/link.ld
	$(LD) $(BARE_LDFLAGS) -o $@ $(LGUEST_HOSTTEST_OBJS)

lguest-hosttest: $(LGUEST_HOSTTEST)
	node ../launcher/bin.mjs run --bare --debug-exit-ok 0 --timeout 60 $(LGUEST_HOSTTEST)

check: lguest-check-layout lguest-hosttest

# qhost: a throwaway ring-0 lguest Host for QEMU that runs one guest image (lguest/qhost/host.c), to try
# the guests before the real Host exists. Not part of all/check (it needs qemu-system-i386):
#   make lguest-qhost && lguest/qhost/run.sh build/hello.elf "some command line"
#   make lguest-qhost-test   runs every guest, both variants, each misbehave case, and checks its end
LGUEST_QHOST := $(LGUEST_OBJ)/qhost/qhost.elf $(LGUEST_OBJ)/qhost/qhost-pae.elf
LGUEST_QHOST_CFLAGS := $(LGUEST_CFLAGS) -fno-delete-null-pointer-checks
$(LGUEST_OBJ)/qhost/host.o: $(LGUEST_DIR)/qhost/host.c $(LGUEST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_QHOST_CFLAGS) -c -o $@ $<
$(LGUEST_OBJ)/qhost/host-pae.o: $(LGUEST_DIR)/qhost/host.c $(LGUEST_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_QHOST_CFLAGS) -DCONFIG_PAE -c -o $@ $<
$(LGUEST_OBJ)/qhost/boot.o: $(LGUEST_DIR)/qhost/boot.S
	@mkdir -p $(dir $@)
	$(CC) $(LGUEST_QHOST_CFLAGS) -c -o $@ $<
$(LGUEST_OBJ)/qhost/qhost%elf: $(LGUEST_OBJ)/qhost/boot.o $(LGUEST_OBJ)/qhost/host%o $(LGUEST_DIR)/qhost/link.ld
	$(LD) $(LGUEST_LDFLAGS) -T $(LGUEST_DIR)/qhost/link.ld -o $@ $(filter %.o,$^)

.PHONY: lguest-qhost lguest-qhost-test
lguest-qhost: $(LGUEST_QHOST)
lguest-qhost-test: $(LGUEST_QHOST) $(LGUEST_IMAGES)
	QHOST_DIR=$(LGUEST_OBJ)/qhost BUILD=$(BUILD) $(LGUEST_DIR)/qhost/test.sh

#!/bin/sh
# test.sh: run every lguest guest, 2-level on qhost.elf and PAE on qhost-pae.elf, under QEMU and check
# how each one ended. Called by `make lguest-qhost-test` (QHOST_DIR and BUILD set). Prints one line per
# run; exits 1 on a failure.
here=$(dirname "$0")
build=${BUILD:-$here/../../build}
qdir=${QHOST_DIR:-$build/obj/lguest/qhost}
status=0

# run NAME IMAGE CMDLINE EXPECTED-OUTPUT-LINE EXPECTED-DEATH
run() {
	out=$(QHOST=$qhost "$here/run.sh" "$2" "$3" 2>&1)
	death=$(printf '%s\n' "$out" | sed -n 's/^qhost: guest died: //p')
	if printf '%s\n' "$out" | grep -q '^FAIL'; then
		echo "qhost-test: $1: FAIL: $(printf '%s\n' "$out" | grep '^FAIL' | head -1)"; status=1
	elif [ -n "$4" ] && ! printf '%s\n' "$out" | grep -qF -- "$4"; then
		echo "qhost-test: $1: FAIL: no line \"$4\" (died: $death)"; status=1
	elif ! printf '%s\n' "$death" | grep -qF -- "$5"; then
		echo "qhost-test: $1: FAIL: died with \"$death\", expected \"$5\""; status=1
	else
		echo "qhost-test: $1: ok ($death)"
	fi
}

for variant in 2level pae; do
	if [ $variant = pae ]; then
		sfx=-pae qhost=$qdir/qhost-pae.elf switcher=0xffe00000 pse_reason="bad page middle directory entry"
	else
		sfx= qhost=$qdir/qhost.elf switcher=0xffc00000 pse_reason="bad page directory entry"
	fi
	for g in hello traps timer usermode; do
		run "$g$sfx" "$build/$g$sfx.elf" "" "$g: done" "CRASH: Power down"
	done

	m=$build/misbehave$sfx.elf
	run misbehave$sfx:preinit    "$m" case=preinit    "" "hypercall 5 before INIT"
	run misbehave$sfx:kaddr      "$m" case=kaddr      "" "bad kernel address $switcher"
	run misbehave$sfx:syscallvec "$m" case=syscallvec "" "bad syscall vector 129"
	run misbehave$sfx:initaddr   "$m" case=initaddr   "" "bad lguest_data address"
	run misbehave$sfx:switcher   "$m" case=switcher   "misbehave: case switcher" "attempt to access switcher pages"
	run misbehave$sfx:pse        "$m" case=pse        "misbehave: case pse" "$pse_reason"
	run misbehave$sfx:pte-pse    "$m" case=pte-pse    "misbehave: case pte-pse" "bad page table entry"
	run misbehave$sfx:beyond     "$m" case=beyond     "misbehave: case beyond" "bad page table entry"
	run misbehave$sfx:badhcall   "$m" case=badhcall   "misbehave: case badhcall" "Bad hypercall 99"
	run misbehave$sfx:idtgate    "$m" case=idtgate    "misbehave: case idtgate" "bad IDT type 5"
	run misbehave$sfx:idtvec     "$m" case=idtvec     "misbehave: case idtvec" "bad IDT vector 256"
	run misbehave$sfx:stack3     "$m" case=stack3     "misbehave: case stack3" "bad stack pages 3"
	run misbehave$sfx:stackrpl   "$m" case=stackrpl   "misbehave: case stackrpl" "bad stack segment 104"
	run misbehave$sfx:stackpage  "$m" case=stackpage  "misbehave: case stackpage" "bad stack page 0xd0002fff"
	run misbehave$sfx:init2      "$m" case=init2      "misbehave: case init2" "already have lguest_data"
	run misbehave$sfx:gdt32      "$m" case=gdt32      "misbehave: case gdt32" "too many gdt entries 32"
	run misbehave$sfx:notrap     "$m" case=notrap     "misbehave: case notrap" "unhandled trap 0 at"
	run misbehave$sfx:notify     "$m" case=notify     "misbehave: case notify" "Bad NOTIFY 0xfffff000"
	run misbehave$sfx:crash      "$m" case=crash      "misbehave: case crash" "CRASH: misbehave: crash requested"
	run misbehave$sfx:restart    "$m" case=restart    "misbehave: case restart" "restart requested: misbehave: restart requested"
	run misbehave$sfx:none       "$m" ""              "misbehave: no known case" "CRASH: FAIL: misbehave: unknown case"
done
exit $status

#!/bin/sh
# test.sh: run every 2-level lguest guest on qhost under QEMU and check how each one ended.
# Called by `make lguest-qhost-test` (QHOST and BUILD set). Prints one line per run; exits 1 on a failure.
here=$(dirname "$0")
build=${BUILD:-$here/../../build}
status=0

# run NAME IMAGE CMDLINE EXPECTED-OUTPUT-LINE EXPECTED-DEATH
run() {
	out=$("$here/run.sh" "$2" "$3" 2>&1)
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

for g in hello traps timer usermode; do
	run "$g" "$build/$g.elf" "" "$g: done" "CRASH: Power down"
done

m=$build/misbehave.elf
run misbehave:preinit    "$m" case=preinit    "" "hypercall 5 before INIT"
run misbehave:kaddr      "$m" case=kaddr      "" "bad kernel address 0xffc00000"
run misbehave:syscallvec "$m" case=syscallvec "" "bad syscall vector 129"
run misbehave:initaddr   "$m" case=initaddr   "" "bad lguest_data address"
run misbehave:switcher   "$m" case=switcher   "misbehave: case switcher" "attempt to access switcher pages"
run misbehave:pse        "$m" case=pse        "misbehave: case pse" "bad page directory entry"
run misbehave:pte-pse    "$m" case=pte-pse    "misbehave: case pte-pse" "bad page table entry"
run misbehave:beyond     "$m" case=beyond     "misbehave: case beyond" "bad page table entry"
run misbehave:badhcall   "$m" case=badhcall   "misbehave: case badhcall" "Bad hypercall 99"
run misbehave:idtgate    "$m" case=idtgate    "misbehave: case idtgate" "bad IDT type 5"
run misbehave:idtvec     "$m" case=idtvec     "misbehave: case idtvec" "bad IDT vector 256"
run misbehave:stack3     "$m" case=stack3     "misbehave: case stack3" "bad stack pages 3"
run misbehave:stackrpl   "$m" case=stackrpl   "misbehave: case stackrpl" "bad stack segment 104"
run misbehave:stackpage  "$m" case=stackpage  "misbehave: case stackpage" "bad stack page 0xd0002fff"
run misbehave:init2      "$m" case=init2      "misbehave: case init2" "already have lguest_data"
run misbehave:gdt32      "$m" case=gdt32      "misbehave: case gdt32" "too many gdt entries 32"
run misbehave:notrap     "$m" case=notrap     "misbehave: case notrap" "unhandled trap 0 at"
run misbehave:notify     "$m" case=notify     "misbehave: case notify" "Bad NOTIFY 0xfffff000"
run misbehave:crash      "$m" case=crash      "misbehave: case crash" "CRASH: misbehave: crash requested"
run misbehave:restart    "$m" case=restart    "misbehave: case restart" "restart requested: misbehave: restart requested"
run misbehave:none       "$m" ""              "misbehave: no known case" "CRASH: FAIL: misbehave: unknown case"
exit $status

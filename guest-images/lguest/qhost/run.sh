#!/bin/sh
# run.sh IMAGE [COMMAND LINE]: boot one lguest guest image on qhost under QEMU (see host.c).
# Environment: QHOST (default build/obj/lguest/qhost/qhost.elf), TIMEOUT seconds (default 60),
# QEMU_EXTRA more QEMU options (e.g. "-icount shift=8" for a slow, deterministic CPU).
here=$(dirname "$0")
qhost=${QHOST:-$here/../../build/obj/lguest/qhost/qhost.elf}
image=$1
shift
exec timeout "${TIMEOUT:-60}" qemu-system-i386 $QEMU_EXTRA -m 128 -display none -no-reboot -monitor none -serial none \
	-debugcon stdio -device isa-debug-exit,iobase=0xf4,iosize=4 \
	-kernel "$qhost" -initrd "$image" -append "$*"

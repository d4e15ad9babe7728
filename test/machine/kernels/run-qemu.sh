#!/bin/sh
# Run one bare-mode test kernel under QEMU (the reference): prints its console output (port 0xE9)
# and then a line "exit status: N", where N is QEMU's exit status ((v << 1) | 1 for a write of v
# to isa-debug-exit at 0xF4; 1 = all checks passed, 3 = some check failed).
# Usage: run-qemu.sh NAME    (NAME = a kernel in build/, e.g. exceptions)
set -u
dir=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run-qemu.sh NAME}
elf=$dir/build/$name.elf
[ -f "$elf" ] || { echo "no such kernel: $elf" >&2; exit 2; }
timeout 20 qemu-system-i386 -kernel "$elf" -display none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -chardev stdio,id=dbg -device isa-debugcon,iobase=0xe9,chardev=dbg \
    -serial none -monitor none -m 32 </dev/null
status=$?
echo "exit status: $status"

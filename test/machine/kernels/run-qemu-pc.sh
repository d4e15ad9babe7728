#!/bin/sh
# Run one PC device test kernel (intr, ports, apic) under QEMU as run-qemu.sh does, with a COM1 that
# discards its output (-serial null) so that the UART is there to be tested; the console is port 0xE9.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run-qemu-pc.sh NAME}
elf=$dir/build/$name.elf
[ -f "$elf" ] || { echo "no such kernel: $elf" >&2; exit 2; }
timeout 30 qemu-system-i386 -kernel "$elf" -nodefaults -display none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -chardev stdio,id=dbg -device isa-debugcon,iobase=0xe9,chardev=dbg \
    -serial null -monitor none -m 32 </dev/null
status=$?
echo "exit status: $status"

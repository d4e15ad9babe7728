#!/bin/sh
# Run the toy kernel exactly as the OSDev tutorials' readers run theirs under QEMU: COM1 on stdout, no
# debugcon (its port 0xE9 copy goes nowhere), isa-debug-exit; prints the output and "exit status: N".
dir=$(cd "$(dirname "$0")" && pwd)
timeout 30 qemu-system-i386 -kernel "$dir/build/toy.elf" -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=4 -display none </dev/null
echo "exit status: $?"

#!/bin/sh
# Turns a recorded QEMU output (<name>.expected) into what a machine that follows the Intel
# manual on every check prints (<name>.manual): each "DESC: GOT FAIL (want WANT)" line becomes
# "DESC: WANT ok" (GOT and WANT never contain ':', so the last ": " ends DESC), the summary reports 0 failures and the exit status is 1 (all passed).
# Usage: manual-expected.sh NAME.expected > NAME.manual
sed -e 's/^\(.*\): [^:]* FAIL (want \([^:]*\))$/\1: \2 ok/' \
    -e 's/^summary: \([0-9]*\) checks, [0-9]* failed$/summary: \1 checks, 0 failed/' \
    -e 's/^exit status: 3$/exit status: 1/' "$1"

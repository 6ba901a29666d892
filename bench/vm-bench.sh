#!/bin/sh
# hutch vm against QEMU's microvm (same kernel, same initramfs, same guest
# command, both on KVM), measured inside the L1 test guest of
# tests/vm/l1-run.sh because this machine's own /dev/kvm cannot boot Linux.
# Absolute times inside L1 (emulated by TCG) are much slower than on real
# hardware; the ratios are what to read.
#
#   bench/vm-bench.sh [N]      N runs of each (default 5); needs make and
#                              make vm-assets first
#
# Prints a summary table (medians) for docs/benchmarks.md and keeps the raw
# log in bench/vm-bench.log.
set -eu
cd "$(dirname "$0")/.."
N=${1:-5}
BUILD=${BUILD:-build}
# Not under /tmp: L1 mounts a tmpfs there, over the files it was given.
tmp=$(mktemp -d /var/tmp/hutch-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# vm-stamp travels to the same path inside L1, as every extra file of l1-run.sh.
cc -std=gnu11 -O2 -static -Wall -Wextra -o "$tmp/vm-stamp" bench/vm-stamp.c
{ echo "N=$N STAMP=$tmp/vm-stamp"; cat bench/vm-bench-l1.sh; } >"$tmp/run.sh"
qemu=$(command -v qemu-system-x86_64)
L1_TIMEOUT=${L1_TIMEOUT:-1800} HUTCH=$BUILD/hutch VM_ASSETS=$BUILD/vm GUEST_BIN=$BUILD/guest \
	tests/vm/l1-run.sh "$tmp/run.sh" "$tmp/vm-stamp" "$qemu" \
	/usr/share/qemu/bios-microvm.bin /usr/share/qemu/qboot.rom \
	/usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin >bench/vm-bench.log 2>&1 || true
grep -E '^(INFO|RESULT)' bench/vm-bench.log || { tail -30 bench/vm-bench.log; exit 1; }

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "?" }'; }
field() { grep "^RESULT $1 " bench/vm-bench.log | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | grep -v '?' | median; }
echo
echo "| medians of $N runs, 1 vCPU, 256 MiB | hutch vm | QEMU microvm,acpi=on |"
echo "|---|---|---|"
echo "| process start to guest init (init's marker port) | $(field hutch init_ms) ms | n/a |"
echo "| process start to the command's first output | $(field hutch first_output_ms) ms | $(field qemu first_output_ms) ms |"
echo "| process start to VMM exit (command sleeps 500 ms) | $(field hutch exit_ms) ms | $(field qemu exit_ms) ms |"
echo "| VMM RSS beyond guest RAM | $(field hutch vmm_rss_kib) KiB | $(field qemu vmm_rss_kib) KiB |"
echo "| guest RAM resident | $(field hutch guest_rss_kib) KiB | $(field qemu guest_rss_kib) KiB |"

#!/bin/sh
# hutch vm's virtio-blk against QEMU's microvm with virtio-blk-device (same
# kernel, same initramfs, same disk image, same guest command, both on KVM),
# measured inside the L1 test guest of tests/vm/l1-run.sh because this
# machine's own /dev/kvm cannot boot Linux (issue 12 item 8). Absolute
# figures inside L1 (emulated by TCG) are far below real hardware's; the
# ratios are what to read.
#
#   bench/vm-disk-bench.sh [N]    N boots of each VMM on each disk kind
#                                 (default 4); needs make and make vm-assets
#                                 first; also `bench/run vm-disk`
#
# Each boot runs, in the guest, on a 256 MiB disk: dd read 256 MiB (1 MiB
# blocks, O_DIRECT), fio 4 KiB random reads (libaio, O_DIRECT, iodepth
# FIO_DEPTH, FIO_RUNTIME seconds), dd write 256 MiB (1 MiB blocks, O_DIRECT)
# -- once on a raw image, once on a fresh qcow2 overlay (made by qemu-img
# before each boot, for both VMMs) over a fully allocated qcow2 base. fio and its libraries travel to the guest on a
# second, read-only disk (an ext4 image made here), attached to every boot.
#
# hutch boots its default kernel, the vmlinux make vm-assets unpacks; QEMU
# the bzImage of the same kernel (its firmware, then the decompressor), and
# once a round (qemu-pvh) the same vmlinux through its PVH entry point, and
# once (qemu-light) that with microvm's RTC, PIT, PIC and option ROMs off.
#
# ORDER sets the boots of each odd round, in turn (default "hutch:raw
# qemu:raw hutch:qcow2 qemu:qcow2 qemu-pvh:raw qemu-light:raw"; even rounds
# run it backwards), SETTLE the seconds of quiet in L1 before each boot
# (default 20). Each boot is killed after BOOT_TIMEOUT seconds (300) and then
# left out of the medians. Prints a summary table (medians and ranges of the boots that
# ended with status 0) for docs/benchmarks.md and keeps the raw log in
# bench/vm-disk-bench.log (LOG= names another file).
set -eu
cd "$(dirname "$0")/.."
N=${1:-4}
BUILD=${BUILD:-build}
FIO_DEPTH=${FIO_DEPTH:-16}
FIO_RUNTIME=${FIO_RUNTIME:-10}
LOG=${LOG:-bench/vm-disk-bench.log}
for tool in fio mkfs.ext4 qemu-img qemu-system-x86_64; do
	command -v $tool >/dev/null || { echo "vm-disk-bench: no $tool (./dev deps)" >&2; exit 2; }
done
# Not under /tmp: L1 mounts a tmpfs there, over the files it was given.
tmp=$(mktemp -d /var/tmp/hutch-disk-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cc -std=gnu11 -O2 -static -Wall -Wextra -o "$tmp/vm-stamp" bench/vm-stamp.c

# The tools disk: Debian's fio and GNU dd (busybox's prints no time) with
# every library they link, flat in lib/, run in the guest through the
# loader that came with them.
mkdir -p "$tmp/tools/lib"
cp -L "$(command -v fio)" "$(command -v dd)" "$tmp/tools/"
for f in fio dd; do ldd "$tmp/tools/$f"; done |
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\/.*[^:]$/) print $i }' | sort -u |
while read -r lib; do
	cp -L "$lib" "$tmp/tools/lib/"
done
# 160 MiB or more: never the bench disk's 256 MiB, by which the guest tells them apart.
mib=$(( $(du -sm "$tmp/tools" | cut -f1) * 5 / 4 + 16 ))
[ "$mib" -ge 160 ] || mib=160
[ "$mib" -lt 256 ] || { echo "vm-disk-bench: fio and its libraries take too much room" >&2; exit 2; }
mkfs.ext4 -q -F -L tools -d "$tmp/tools" "$tmp/tools.ext4" "${mib}M" >/dev/null
rm -rf "$tmp/tools"

{
	echo "N=$N STAMP=$tmp/vm-stamp TOOLS=$tmp/tools.ext4 FIO_DEPTH=$FIO_DEPTH FIO_RUNTIME=$FIO_RUNTIME BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}"
	echo "ORDER='${ORDER:-hutch:raw qemu:raw hutch:qcow2 qemu:qcow2 qemu-pvh:raw qemu-light:raw}' SETTLE=${SETTLE:-20}"
	echo "FIO_VERSION='$(fio --version)'"
	cat bench/vm-disk-bench-l1.sh
} >"$tmp/run.sh"
qemu=$(command -v qemu-system-x86_64)
echo "vm-disk-bench: $(date -u '+%F %T UTC'), load: $(uptime | sed 's/.*load average/load average/')" >&2
L1_MEM=${L1_MEM:-3072} L1_TIMEOUT=${L1_TIMEOUT:-3600} HUTCH=$BUILD/hutch VM_ASSETS=$BUILD/vm \
	GUEST_BIN=$BUILD/guest tests/vm/l1-run.sh "$tmp/run.sh" "$tmp/vm-stamp" "$tmp/tools.ext4" \
	"$qemu" "$(command -v qemu-img)" /usr/share/qemu/bios-microvm.bin /usr/share/qemu/qboot.rom \
	/usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin >"$LOG" 2>&1 || true
echo "vm-disk-bench: done $(date -u '+%F %T UTC'), load: $(uptime | sed 's/.*load average/load average/')" >&2
grep -E '^(INFO|RESULT)' "$LOG" || { tail -30 "$LOG"; exit 1; }

# median (range) of field $3 in the RESULT lines of VMM $1 on disk $2, divided by $4.
stat() {
	grep "^RESULT $1 $2 .* status=0 " "$LOG" | sed -n "s/.* $3=\([^ ]*\).*/\1/p" | grep -v '?' | sort -n |
		awk -v d="${4:-1}" 'function f(x) { return sprintf(x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : "%.2f", x) }
			{ a[NR] = $1 / d }
			END { if (!NR) { print "?"; exit }
			      m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			      print f(m) " (" f(a[1]) "-" f(a[NR]) ")" }'
}
ratio() {
	h=$(stat hutch "$1" "$2" | cut -d' ' -f1)
	q=$(stat "${3:-qemu}" "$1" "$2" | cut -d' ' -f1)
	awk -v h="$h" -v q="$q" 'BEGIN { if (q + 0 > 0 && h != "?") printf "%.2f\n", h / q; else print "?" }'
}
echo
echo "| median (range) of up to $N boots, 1 vCPU, 256 MiB | disk | hutch vm | QEMU microvm | hutch/QEMU |"
echo "|---|---|---|---|---|"
for disk in raw qcow2; do
	echo "| sequential read, dd 1 MiB O_DIRECT (MiB/s) | $disk | $(stat hutch $disk read_mibs) | $(stat qemu $disk read_mibs) | $(ratio $disk read_mibs) |"
	echo "| sequential write, dd 1 MiB O_DIRECT (MiB/s) | $disk | $(stat hutch $disk write_mibs) | $(stat qemu $disk write_mibs) | $(ratio $disk write_mibs) |"
	echo "| 4 KiB random read, fio libaio iodepth $FIO_DEPTH (IOPS) | $disk | $(stat hutch $disk iops) | $(stat qemu $disk iops) | $(ratio $disk iops) |"
	echo "| process start to the command's first output (ms) | $disk | $(stat hutch $disk first_output_ms) | $(stat qemu $disk first_output_ms) | $(ratio $disk first_output_ms) |"
	echo "| VMM Rss beyond guest RAM, peak (MiB) | $disk | $(stat hutch $disk vmm_rss_max_kib 1024) | $(stat qemu $disk vmm_rss_max_kib 1024) | $(ratio $disk vmm_rss_max_kib) |"
done
echo "| process start to the command's first output, QEMU booting the same vmlinux (PVH) (ms) | raw | $(stat hutch raw first_output_ms) | $(stat qemu-pvh raw first_output_ms) | $(ratio raw first_output_ms qemu-pvh) |"
echo "| process start to the command's first output, QEMU's lightest microvm (PVH; no RTC, PIT, PIC, option ROMs) (ms) | raw | $(stat hutch raw first_output_ms) | $(stat qemu-light raw first_output_ms) | $(ratio raw first_output_ms qemu-light) |"
echo "| process start to guest init (hutch's marker port, ms) | raw | $(stat hutch raw init_ms) | n/a | |"
# L1 can end early (a TCG flake, a host snapshot): say how many boots each figure has.
echo
echo "boots counted (status 0): $(for k in hutch:raw qemu:raw hutch:qcow2 qemu:qcow2 qemu-pvh:raw qemu-light:raw; do
	printf '%s %s, ' "$k" "$(grep -c "^RESULT ${k%:*} ${k#*:} .* status=0 " "$LOG")"; done | sed 's/, $//') of $N each"

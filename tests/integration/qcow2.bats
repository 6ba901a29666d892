#!/usr/bin/env bats
# qcow2 images as vmm/disk reads and writes them (the disks of `hutch vm
# run --disk`), checked against QEMU's own tools: what hutch writes passes
# `qemu-img check` and converts to the bytes hutch reads; what qemu-img and
# qemu-io write (backing files raw and qcow2, zero clusters, small and large
# clusters, version 2) hutch reads byte for byte and writes on correctly;
# a kill -9 in the middle of writing leaves an image qemu-img accepts.
# tests/helpers/disktool drives the library.

load helpers

setup()
{
	command -v qemu-img > /dev/null && command -v qemu-io > /dev/null ||
		skip "qemu-img and qemu-io are not installed (Debian package qemu-utils)"
	require_helper disktool
	DT="$HUTCH_HELPERS/disktool"
	D=$(mktemp -d "${TMPDIR:-/var/tmp}/hutch-qcow2.XXXXXX")
	cd "$D" || return
}

teardown()
{
	[ -z "${LOOPDEV:-}" ] || losetup -d "$LOOPDEV"
	cd /
	[ -z "${D:-}" ] || rm -rf "$D"
}

# check IMG: qemu-img check finds no corruption and no leak.
check()
{
	run qemu-img check "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"No errors were found on the image."* ]]
}

# same IMG: qemu-img's raw conversion of IMG and disktool's read of it are the same bytes.
same()
{
	qemu-img convert -O raw "$1" "$1.qemu.raw"
	"$DT" dump "$1" "$1.hutch.raw"
	cmp "$1.qemu.raw" "$1.hutch.raw"
	rm -f "$1.qemu.raw" "$1.hutch.raw"
}

# qio IMG COMMAND...: qemu-io running each COMMAND on IMG.
qio()
{
	local img=$1 args=()

	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io "${args[@]}" "$img" > /dev/null
}

@test "an overlay hutch makes over a raw file passes qemu-img check and reads as QEMU reads it" {
	head -c 3000000 /dev/urandom > base.raw
	cp base.raw expect.raw
	"$DT" create-overlay ov.qcow2 base.raw raw
	check ov.qcow2
	run qemu-img info ov.qcow2
	[[ $output == *"backing file: $D/base.raw"* ]]
	[[ $output == *"backing file format: raw"* ]]
	head -c 200000 /dev/urandom > data
	"$DT" write ov.qcow2 100000 < data
	"$DT" zero ov.qcow2 393216 131072
	"$DT" discard ov.qcow2 1048576 65536
	check ov.qcow2
	same ov.qcow2
	# The same changes made to a copy of the backing file, and the disk padded to a sector.
	dd if=data of=expect.raw bs=1 seek=100000 conv=notrunc status=none
	dd if=/dev/zero of=expect.raw bs=65536 seek=6 count=2 conv=notrunc status=none
	dd if=/dev/zero of=expect.raw bs=65536 seek=16 count=1 conv=notrunc status=none
	truncate -s 3000320 expect.raw
	qemu-img convert -O raw ov.qcow2 got.raw
	cmp expect.raw got.raw
	cmp base.raw <(head -c 3000000 "$D/base.raw")
}

@test "an overlay hutch makes over qemu-img's qcow2 reads through both, and qemu-io writes on it" {
	qemu-img create -q -f qcow2 base.qcow2 4M
	qio base.qcow2 "write -P 0x11 0 1M" "write -z 128k 64k" "write -P 0x22 3M 100k"
	"$DT" create-overlay ov.qcow2 base.qcow2 qcow2
	[[ $(qemu-img info ov.qcow2) == *"backing file format: qcow2"* ]]
	same ov.qcow2
	printf 'hutch was here' | "$DT" write ov.qcow2 65530
	"$DT" stress ov.qcow2 1 50
	check ov.qcow2
	same ov.qcow2
	qio ov.qcow2 "write -P 0x33 2M 300k" "write -z 0 64k"
	check ov.qcow2
	same ov.qcow2
	check base.qcow2
}

@test "images qemu-img makes, with zero clusters and raw or qcow2 backing files, read as QEMU reads them" {
	head -c 2097152 /dev/urandom > base.raw
	qemu-img create -q -f qcow2 plain.qcow2 2M
	qemu-img create -q -f qcow2 -b "$D/base.raw" -F raw over-raw.qcow2
	qemu-img create -q -f qcow2 -b over-raw.qcow2 -F qcow2 over-qcow2.qcow2
	for img in plain.qcow2 over-raw.qcow2 over-qcow2.qcow2; do
		qio "$img" "write -P 0x5a 65000 70000" "write -z 262144 131072" "write -z 500000 1000" \
			"discard 655360 65536" "write -P 0x6b 2000000 97152"
		same "$img"
	done
	# A zero cluster hides the backing file's bytes.
	"$DT" dump over-raw.qcow2 got.raw
	cmp <(head -c 131072 /dev/zero) <(tail -c +262145 got.raw | head -c 131072)
}

@test "hutch writes correctly on qemu-img's images of 512-byte and 2 MiB clusters and of version 2" {
	head -c 4194304 /dev/urandom > base.raw
	qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 64M
	qemu-img create -q -f qcow2 -o cluster_size=2M -b "$D/base.raw" -F raw large.qcow2
	qemu-img create -q -f qcow2 -o compat=0.10 -b "$D/base.raw" -F raw v2.qcow2
	for img in small.qcow2 large.qcow2 v2.qcow2; do
		qio "$img" "write -P 0x77 100000 300000" "write -z 1M 1M"
		"$DT" stress "$img" 2 200
		check "$img"
		same "$img"
		qio "$img" "write -P 0x78 50000 200000"
		check "$img"
		same "$img"
	done
	# 512-byte clusters: the refcount table (one cluster of 64 blocks) had to grow.
	[[ $(qemu-img info --output=json small.qcow2) == *'"actual-size"'* ]]
	[ "$(stat -c %s small.qcow2)" -gt $((64 * 256 * 512)) ]
}

@test "a kill -9 at any moment of writing leaves an image qemu-img check accepts" {
	local i

	qemu-img create -q -f qcow2 -o cluster_size=512 crash.qcow2 32M
	for i in $(seq 1 10); do
		"$DT" stress crash.qcow2 "$i" &
		sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
		kill -KILL $! 2> /dev/null || true
		wait $! 2> /dev/null || true
		# Leaked clusters (exit 3) are allowed; corruption (2) is not.
		run qemu-img check crash.qcow2
		echo "round $i: $output"
		[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
		[[ $output != *ERROR* ]]
	done
	same crash.qcow2
	[ "$(stat -c %s crash.qcow2)" -gt $((64 * 256 * 512)) ]
}

@test "a crash at any write, and a power cut losing unsynced writes, leaves an image qemu-img check accepts" {
	local i k img cs kmax

	# disktool stops at its K-th pwrite or fdatasync (DISKTOOL_CRASH_AFTER);
	# it may also drop a random part of what was written since the last
	# fdatasync (DISKTOOL_POWER_LOSS), as a power cut would. One image each
	# all along: each round opens what the last crash left. 512-byte
	# clusters grow refcount blocks and the table all the time (every other
	# round a power cut); 64 KiB ones leave long stretches between
	# barriers, where a missing one shows (a power cut every round).
	for cs in 512 65536; do
		img=cut-$cs.qcow2
		kmax=$((cs == 512 ? 30000 : 2000))
		qemu-img create -q -f qcow2 -o cluster_size=$cs "$img" 32M
		for i in $(seq 1 10); do
			k=$((RANDOM * 4 % kmax + 1))
			if [ $((i % 2)) -eq 0 ] || [ "$cs" -eq 65536 ]; then
				run env DISKTOOL_CRASH_AFTER=$k DISKTOOL_POWER_LOSS=$i "$DT" stress "$img" "$i"
			else
				run env DISKTOOL_CRASH_AFTER=$k "$DT" stress "$img" "$i"
			fi
			[ "$status" -eq 99 ]
			run qemu-img check "$img"
			[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || {
				echo "$img, round $i, crash at write $k: $output"
				false
			}
			[[ $output != *ERROR* ]]
		done
		same "$img"
	done
	[ "$(stat -c %s cut-512.qcow2)" -gt $((64 * 256 * 512)) ]
}

@test "compressed and dirty images from QEMU are refused in one line" {
	qemu-img create -q -f qcow2 src.qcow2 1M
	qio src.qcow2 "write -P 0x12 0 1M"
	qemu-img convert -c -O qcow2 src.qcow2 comp.qcow2
	run "$DT" info comp.qcow2
	[ "$status" -eq 125 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "disktool: disk image 'comp.qcow2': compressed clusters are not supported" ]]
	# qemu-io stopped mid-write on an image with lazy refcounts leaves it dirty.
	qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 1M
	qio dirty.qcow2 "write 0 64k" "abort" 2> /dev/null || true
	run "$DT" info dirty.qcow2
	[ "$status" -eq 125 ]
	[[ $output == "disktool: disk image 'dirty.qcow2': dirty: "* ]]
}

@test "a block device is a raw disk of the device's size, and a qcow2 overlay over it reads it" {
	[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
	losetup -f > /dev/null 2>&1 || skip "no loop device free here (losetup -f failed)"
	head -c 3145728 /dev/urandom > dev.img
	LOOPDEV=$(losetup -f --show dev.img)
	run "$DT" info "$LOOPDEV"
	[ "$output" = "raw 3145728" ]
	printf 'on the device' | "$DT" write "$LOOPDEV" 4096
	"$DT" create-overlay ov.qcow2 "$LOOPDEV" raw
	printf 'in the overlay' | "$DT" write ov.qcow2 8192
	check ov.qcow2
	same ov.qcow2
	"$DT" dump "$LOOPDEV" dev.raw
	cmp <(printf 'on the device') <(tail -c +4097 dev.raw | head -c 13)
}

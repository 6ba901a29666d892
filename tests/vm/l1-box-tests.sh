#!/bin/bash
# Run the box integration tests (a named subset, L1_BOX_TESTS) inside the
# outer (L1) test guest, on Debian 12's own 6.1 cloud kernel, as root and as
# the ordinary user hutch-test. Unlike l1-run.sh (whose guest lives in its
# initramfs), this guest runs this machine's own userland: virtiofsd shares
# the host's / read-only, and the guest's init switch_roots into it (a
# chroot would not do: the kernel refuses a user namespace to a process
# whose root is not its mount namespace's root, and every box needs one).
# Writes land on a scratch ext4 disk: L1's root is an overlay of the shared
# / under an upper layer there, and /var/tmp, /root and /home/hutch-test
# (where the tests keep their stores) are ext4 itself (6.1's tmpfs has no
# user.* xattrs, which overlayfs's userxattr needs, and neither an overlay
# nor virtio-fs can be an overlay's upper layer).
#
#   l1-box-tests.sh OUT_DIR
#
# Writes OUT_DIR/root.tap, OUT_DIR/hutch-test.tap and OUT_DIR/console.log.
# Needs root (virtiofsd runs as root); exits 77 saying why when it cannot
# run here. Environment: QEMU (default qemu-system-x86_64), VM_ASSETS
# (build/vm), HUTCH (build/hutch), HUTCH_HELPERS (build/tests/helpers),
# L1_SMP (2), L1_MEM (MiB, 3072), L1_TIMEOUT (s, 1500), L1_BOX_TESTS.
set -eu

out=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
assets=$(cd "${VM_ASSETS:-$repo/build/vm}" 2>/dev/null && pwd) || assets=${VM_ASSETS:-$repo/build/vm}
hutch=$(readlink -f "${HUTCH:-$repo/build/hutch}")
helpers=$(readlink -f "${HUTCH_HELPERS:-$repo/build/tests/helpers}")
qemu=${QEMU:-qemu-system-x86_64}
virtiofsd=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
mem=${L1_MEM:-3072}
# FILE:REGEX pairs (bats -f): run, lifecycle and policy, chosen so both
# passes fit the suite's time under TCG (docs/vm.md lists them).
tests=${L1_BOX_TESTS:-$(cat "$here/l1-box-tests.list")}

skip() { echo "l1-box-tests: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root: virtiofsd shares the host's / only as root"
[ -x "$virtiofsd" ] || skip "no $virtiofsd (apt-get install qemu-system-common)"
command -v "$qemu" >/dev/null || skip "no $qemu (apt-get install qemu-system-x86)"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4 (apt-get install e2fsprogs)"
for f in "$assets/vmlinuz" "$assets/busybox" "$hutch"; do
	[ -r "$f" ] || { echo "l1-box-tests: missing $f (run 'make all helpers vm-assets')" >&2; exit 2; }
done
release=$(cat "$assets/kernel-release")
kmods=${VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hutch/vm}/kernel/lib/modules/$release
[ -d "$kmods" ] || { echo "l1-box-tests: no modules at $kmods (run 'make vm-assets')" >&2; exit 2; }

mkdir -p "$out"
tmp=$(mktemp -d /var/tmp/hutch-l1box.XXXXXX)
vfs_pid=""
cleanup() {
	[ -z "$vfs_pid" ] || kill "$vfs_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The initramfs: busybox, stage 1 and the modules for virtio-fs, the disk and overlayfs.
root=$tmp/initrd
mkdir -p "$root/bin" "$root/l1/modules" "$root/proc" "$root/sys" "$root/dev" "$root/newroot"
cp "$assets/busybox" "$root/bin/busybox"
cp "$here/l1-box-init.sh" "$root/init"
chmod 755 "$root/init"
n=0
# Load order: each after what it depends on (modules.dep of this kernel).
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
	drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/fuse/fuse \
	fs/fuse/virtiofs drivers/block/virtio_blk fs/overlayfs/overlay; do
	n=$((n + 1))
	cp "$kmods/kernel/$m.ko" "$root/l1/modules/$(printf %02d $n)-$(basename "$m").ko"
done
{
	echo "REPO='$repo'"
	echo "HUTCH='$hutch'"
	echo "HUTCH_HELPERS='$helpers'"
	echo "BB='$assets/busybox'"
} >"$root/l1/conf"
printf '%s\n' "$tests" >"$root/l1/tests"
(cd "$root" && find . | LC_ALL=C sort | "$assets/busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$tmp/l1.cpio"

# The scratch disk: sparse, so only what the tests write takes space.
truncate -s 8G "$tmp/disk.img"
mkfs.ext4 -q -F -E lazy_itable_init=1 "$tmp/disk.img"

"$virtiofsd" --socket-path="$tmp/vfs.sock" -o source=/ -o sandbox=chroot -o cache=always \
	>"$tmp/virtiofsd.log" 2>&1 &
vfs_pid=$!
for _ in $(seq 50); do [ -S "$tmp/vfs.sock" ] && break; sleep 0.1; done
[ -S "$tmp/vfs.sock" ] || { echo "l1-box-tests: virtiofsd did not start:" >&2; cat "$tmp/virtiofsd.log" >&2; exit 2; }

start=$SECONDS
rc=0
timeout -s KILL "${L1_TIMEOUT:-1500}" "$qemu" -accel tcg -cpu max -smp "${L1_SMP:-2}" -m "$mem" \
	-object memory-backend-memfd,id=mem,size="${mem}M",share=on -numa node,memdev=mem \
	-chardev socket,id=vfs,path="$tmp/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=host \
	-drive file="$tmp/disk.img",format=raw,if=virtio,cache=unsafe \
	-nodefaults -no-user-config -nographic -no-reboot -serial stdio -monitor none \
	-kernel "$assets/vmlinuz" -initrd "$tmp/l1.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" </dev/null |
	stdbuf -oL tr -d '\r' | tee "$out/console.log" || rc=$?
echo "l1-box-tests: L1 ran $((SECONDS - start)) s (qemu status $rc)"

# Each pass's TAP, between its markers on the console.
for who in root hutch-test; do
	sed -n "/^L1-TAP-BEGIN $who\$/,/^L1-TAP-END $who /p" "$out/console.log" |
		sed '1d;$d' >"$out/$who.tap"
	# A pass that hung or crashed: its unreported tests count as failed in run-all's tally.
	grep -q "^L1-TAP-END $who " "$out/console.log" ||
		echo "not ok 1 - the L1 pass as $who never finished (see $out/console.log)" >>"$out/$who.tap"
done

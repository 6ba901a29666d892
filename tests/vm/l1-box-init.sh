#!/bin/busybox sh
# Stage 1 of the L1 guest of l1-box-tests.sh: load the modules, and build a
# root from the host's / (virtio-fs, read-only) under an overlay whose upper
# layer is on the scratch disk, so the guest may write anywhere and the host
# gets nothing. Then switch_root into it: stage 2 runs on the host's own
# userland with a root that is its mount namespace's root (a chrooted
# process may not make a user namespace, and every box needs one).
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for m in /l1/modules/*.ko; do
	$bb insmod "$m" || echo "L1: cannot load $m"
done
. /l1/conf
export REPO HUTCH HUTCH_HELPERS BB
TESTS=$($bb cat /l1/tests)
export TESTS
fail() {
	echo "L1: $*"
	$bb poweroff -f
}
$bb mkdir -p /host /disk
$bb mount -t virtiofs -o ro host /host || fail "cannot mount the host's / over virtio-fs"
$bb mount -t ext4 /dev/vda /disk || fail "cannot mount the scratch disk"
$bb mkdir -p /disk/upper /disk/work /disk/var-tmp /disk/root /disk/home
$bb mount -t overlay -o lowerdir=/host,upperdir=/disk/upper,workdir=/disk/work root /newroot ||
	fail "cannot mount the root overlay"
# Where boxes keep their stores: ext4 itself (an overlay cannot be an
# overlay's upper layer; 6.1's tmpfs has no user.* xattrs).
$bb mount --bind /disk/var-tmp /newroot/var/tmp
$bb chmod 1777 /newroot/var/tmp
$bb mount --bind /disk/root /newroot/root
$bb umount /proc /dev
exec $bb switch_root /newroot "$REPO/tests/vm/l1-box-stage2.sh"

#!/bin/bash
# Stage 2 of the L1 guest of l1-box-tests.sh: PID 1 on the host's userland
# (an overlay over the host's /, shared read-only), Debian 12's 6.1 kernel. Runs the listed box tests
# as root and as hutch-test and prints each pass's TAP between markers.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
# What udev and systemd would make: bash's process substitution needs /dev/fd.
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
# No tmpfs on /tmp: the checkout may be under the host's /tmp (CI's, a
# user's), and /tmp of the guest's root overlay is writable already.
mount -t tmpfs -o mode=0755 run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# The test user's home on ext4 too (stage 1 did /var/tmp and /root).
mkdir -p /var/tmp/.l1-home
chown hutch-test: /var/tmp/.l1-home
mount --bind /var/tmp/.l1-home /home/hutch-test
ip link set lo up 2>/dev/null
# /dev/kvm-less, udev-less: the modes Debian's udev would give.
chmod 0666 /dev/fuse /dev/net/tun 2>/dev/null

echo "# L1: $(uname -r); lsm: $(cat /sys/kernel/security/lsm 2>/dev/null || echo '?')"
HUTCH_HOME=/var/tmp/.l1-probe "$HUTCH" run -v --box probe -- true 2>&1 | sed 's/^/# L1: /'

# pass WHO AS UNIT_DIR: as WHO (AS runs a command so), the overlay unit
# tests, which mount both option paths for real (on 6.1 the kernel's own is
# the lowerdir= string; from UNIT_DIR, on ext4: their scratch folder goes
# next to the binary), then the listed bats tests; TAP between markers.
pass()
{
	local who=$1 as=$2 unit=$3 start=$SECONDS rc=0 file re
	echo "L1-TAP-BEGIN $who"
	mkdir -p "$unit"
	cp "$REPO/build/tests/unit/test_overlay" "$unit/"
	chmod -R a+rwX "$unit"
	$as env CMOCKA_MESSAGE_OUTPUT=TAP "$unit/test_overlay" </dev/null 2>&1 || rc=1
	while read -r file re; do
		[ -n "$file" ] && [ "${file#\#}" = "$file" ] || continue
		$as bats --tap -f "$re" "tests/integration/$file" </dev/null 2>&1 || rc=1
	done <<<"$TESTS"
	echo "L1-TAP-END $who rc=$rc ($((SECONDS - start)) s)"
}

# TCG runs a test 10-100 times slower than this machine: a hung one still ends.
export BATS_TEST_TIMEOUT=600
as_root()
{
	env TMPDIR=/var/tmp/bats-root HUTCH="$HUTCH" HUTCH_HELPERS="$HUTCH_HELPERS" \
		HUTCH_VM_TESTS=none "$@"
}
mkdir -p /var/tmp/bats-root
cd "$REPO" && pass root as_root /var/tmp/unit-root

# As run-all's unprivileged pass does: a world-readable copy of what it runs.
stage=/var/tmp/stage
mkdir -p "$stage/build/tests" "$stage/tmp"
cp "$HUTCH" "$stage/build/hutch"
cp -r "$HUTCH_HELPERS" "$stage/build/tests/helpers"
cp -r "$REPO/tests" "$stage/tests"
chmod -R a+rX "$stage"
chown hutch-test: "$stage/tmp"
as_user()
{
	runuser -u hutch-test -- env -i PATH="$PATH" HOME=/home/hutch-test USER=hutch-test \
		LOGNAME=hutch-test LANG="$LANG" TERM=dumb TMPDIR="$stage/tmp" \
		HUTCH="$stage/build/hutch" HUTCH_HELPERS="$stage/build/tests/helpers" \
		HUTCH_VM_TESTS=none BATS_TEST_TIMEOUT="$BATS_TEST_TIMEOUT" "$@"
}
cd "$stage" && pass hutch-test as_user /var/tmp/unit-user

sync
echo "L1-END"
"$BB" poweroff -f

#!/bin/sh
# Build hutch's default guest: the Debian 12 cloud kernel and an initramfs of
# busybox-static, the kernel's own virtio and pvpanic modules and hutch-init.
# Packages are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`: nothing is installed on the host.
#
#   vm-assets.sh OUT_DIR HUTCH_INIT HUTCH_PROBE
#
# OUT_DIR gets vmlinuz, initramfs.cpio, kernel-release and kernel/ (the
# unpacked kernel package, whose kvm modules the L1 test guest loads).
# KERNEL_PKG overrides the kernel package (default: what linux-image-cloud-amd64
# depends on).
set -eu

out=$1
init=$2
probe=$3
# Guest modules, loaded by hutch-init with their modules.dep dependencies.
modules="virtio_mmio virtio_blk virtio-rng pvpanic-mmio"

die() { echo "vm-assets: $*" >&2; exit 1; }
for tool in apt-get apt-cache dpkg-deb; do
	command -v $tool >/dev/null || die "needs $tool (a Debian-based host)"
done

mkdir -p "$out"
# The Makefile runs this under a lock on $out/.lock: the cache is shared by
# every checkout on the machine, and two builds at once would pack each
# other's half-made trees.
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs"

pkg=${KERNEL_PKG:-$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }')}
[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64; run 'apt-get update' first"

if [ ! -f "$out/kernel/.pkg" ] || [ "$(cat "$out/kernel/.pkg")" != "$pkg" ] ||
   [ ! -x "$out/busybox" ]; then
	echo "vm-assets: downloading $pkg and busybox-static"
	(cd "$work/debs" && apt-get download "$pkg" busybox-static >/dev/null) ||
		die "apt-get download $pkg busybox-static failed"
	rm -rf "$out/kernel"
	dpkg-deb -x "$work/debs/$pkg"_*.deb "$out/kernel"
	echo "$pkg" >"$out/kernel/.pkg"
	mkdir -p "$work/bb"
	dpkg-deb -x "$work/debs"/busybox-static_*.deb "$work/bb"
	cp "$work/bb/bin/busybox" "$out/busybox"
fi
bb=$out/busybox

release=$(ls "$out/kernel/lib/modules" | head -n1)
[ -n "$release" ] || die "no modules in $pkg"
cp "$out/kernel/boot/vmlinuz-$release" "$out/vmlinuz.new"

# The initramfs tree.
root=$work/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc/hutch" "$root/dev" "$root/proc" \
	"$root/sys" "$root/tmp" "$root/run" "$root/root" "$root/sbin"
cp "$init" "$root/init"
cp "$probe" "$root/usr/bin/hutch-probe"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] || [ "$applet" = init ] || ln -sf busybox "$root/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "$modules" >"$root/etc/hutch/modules"

# The listed modules and everything they depend on, with a fresh modules.dep.
kmods=$out/kernel/lib/modules/$release
"$bb" depmod -b "$out/kernel" "$release"
need=""
for m in $modules; do
	u=$(echo "$m" | tr - _)
	line=$(grep -E "/($m|$u)\.ko:" "$kmods/modules.dep") || die "no module $m in $pkg"
	need="$need $(echo "$line" | tr -d :)"
done
for f in $need; do
	mkdir -p "$root/lib/modules/$release/$(dirname "$f")"
	cp "$kmods/$f" "$root/lib/modules/$release/$f"
done
"$bb" depmod -b "$root" "$release"

(cd "$root" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) \
	>"$out/initramfs.cpio.new"
# For the test bench (tests/vm/l1-run.sh): the modules an outer guest needs
# to offer real KVM, in load order, as a cpio to append to its initramfs.
l1=$work/l1
mkdir -p "$l1/l1/modules"
n=0
for m in irqbypass kvm kvm-amd kvm-intel; do
	f=$(grep -oE "^[^:]*/$m\.ko:" "$kmods/modules.dep" | tr -d :) || die "no module $m in $pkg"
	n=$((n + 1))
	cp "$kmods/$f" "$l1/l1/modules/$n-$m.ko"
done
(cd "$l1" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) \
	>"$out/l1-modules.cpio"

mv "$out/vmlinuz.new" "$out/vmlinuz"
mv "$out/initramfs.cpio.new" "$out/initramfs.cpio"
echo "$release" >"$out/kernel-release"
rm -rf "$work"
echo "vm-assets: $out/vmlinuz ($release) and $out/initramfs.cpio"

#!/bin/sh
# Build hutch's default guest: the Debian 12 cloud kernel and an initramfs of
# busybox-static, the kernel's own virtio and pvpanic modules and hutch-init.
# Packages are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`: nothing is installed on the host.
#
#   vm-assets.sh OUT_DIR HUTCH_INIT HUTCH_PROBE
#
# OUT_DIR gets vmlinuz, vmlinux (the same kernel uncompressed, what hutch
# boots by default), initramfs.cpio, kernel-release and kernel/ (the unpacked
# kernel package, whose kvm modules the L1 test guest loads).
# KERNEL_PKG overrides the kernel package (default: what linux-image-cloud-amd64
# depends on).
set -eu

out=$1
init=$2
probe=$3
# Guest modules, loaded by hutch-init with their modules.dep dependencies.
modules="virtio_mmio virtio_blk virtio-rng pvpanic-mmio"

die() { echo "vm-assets: $*" >&2; exit 1; }
for tool in apt-get apt-cache dpkg-deb lz4 od; do
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

# The kernel uncompressed, once here, so that no guest runs the bzImage's
# decompressor at every boot (Firecracker boots a vmlinux for the same
# reason). The compressed payload is where the bzImage's setup header says
# (boot.rst: setup_sects at 0x1f1, payload_offset and payload_length at
# 0x248, from the start of the protected-mode part). Debian compresses it
# with LZ4, and the build appends the uncompressed size as 4 bytes.
le() { od -An -tu"$3" -j "$2" -N"$3" "$1" | tr -d ' '; }
bz=$out/vmlinuz.new
sects=$(le "$bz" 497 1)
[ "$sects" -ne 0 ] || sects=4
start=$(( (sects + 1) * 512 + $(le "$bz" 584 4) ))
len=$(le "$bz" 588 4)
magic=$(od -An -tx1 -j "$start" -N4 "$bz" | tr -d ' ')
[ "$magic" = 02214c18 ] ||
	die "the kernel in $pkg is not compressed with LZ4 (payload starts $magic): cannot make vmlinux"
tail -c +"$((start + 1))" "$bz" | head -c "$((len - 4))" | lz4 -dcq >"$out/vmlinux.new" ||
	die "cannot decompress the kernel in $pkg"
size=$(le "$bz" "$((start + len - 4))" 4)
[ "$(wc -c <"$out/vmlinux.new")" -eq "$size" ] &&
	[ "$(od -An -tx1 -N4 "$out/vmlinux.new" | tr -d ' ')" = 7f454c46 ] ||
	die "the kernel in $pkg does not decompress to the ELF file of $size bytes its header promises"

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
mv "$out/vmlinux.new" "$out/vmlinux"
mv "$out/initramfs.cpio.new" "$out/initramfs.cpio"
echo "$release" >"$out/kernel-release"
rm -rf "$work"
echo "vm-assets: $out/vmlinux and vmlinuz ($release) and $out/initramfs.cpio"

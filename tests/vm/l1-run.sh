#!/bin/sh
# Boot an outer (L1) Linux guest under QEMU's TCG emulator with an emulated
# AMD SVM CPU, load kvm-amd in it, and run SCRIPT there against the real
# /dev/kvm it then has. Everything the script needs travels in the L1
# initramfs (copied to its tmpfs root): hutch and its libraries, the guest
# kernel and initramfs, hutch-probe. No host privileges are needed.
#
#   l1-run.sh SCRIPT [FILE...]     extra FILEs (and their libraries) go to
#                                  the same path inside L1
#
# Prints L1's serial console on stdout. Environment: HUTCH (binary, default
# build/hutch), VM_ASSETS (default build/vm), GUEST_BIN (build/guest),
# L1_SMP (2), L1_MEM (2048 MiB), L1_TIMEOUT (seconds, 900), L1_AS_NOBODY
# (1: run SCRIPT as user nobody, with /dev/kvm opened up to it), L1_ACCEL
# (QEMU's -accel, default tcg), QEMU (the emulator; default: the bench's own
# QEMU 10.0 that make vm-assets puts in VM_ASSETS/qemu, else the host's
# qemu-system-x86_64; tests/vm/qemu.sh).
set -eu

script=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
hutch=${HUTCH:-build/hutch}
assets=${VM_ASSETS:-build/vm}
guest_bin=${GUEST_BIN:-build/guest}
bb=$assets/busybox
# shellcheck source=tests/vm/qemu.sh
. "$here/qemu.sh"
qemu=$(l1_qemu "$assets")

for f in "$hutch" "$assets/vmlinux" "$assets/vmlinuz" "$assets/initramfs.cpio" "$assets/l1-modules.cpio" "$bb" \
	"$guest_bin/hutch-probe"; do
	[ -r "$f" ] || { echo "l1-run: missing $f (run 'make vm-assets')" >&2; exit 2; }
done
command -v "$qemu" >/dev/null || { echo "l1-run: no $qemu (make vm-assets, or apt-get install qemu-system-x86)" >&2; exit 2; }
echo "l1-run: $("$qemu" --version | head -n 1) ($qemu)" >&2

# Absolute: the archive below is written from inside the new root.
bb=$(cd "$(dirname "$bb")" && pwd)/busybox

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hutch-l1.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root
mkdir -p "$root/bin" "$root/l1/vm" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/usr/bin" "$root/sbin" "$root/etc" "$root/root"
cp "$bb" "$root/bin/busybox"
cp "$here/l1-init.sh" "$root/init"
chmod 755 "$root/init"
cp "$hutch" "$root/l1/hutch"
cp "$assets/vmlinux" "$assets/vmlinuz" "$assets/initramfs.cpio" "$root/l1/vm/"
cp "$guest_bin/hutch-probe" "$root/l1/hutch-probe"
cp "$script" "$root/l1/run.sh"
[ "${L1_AS_NOBODY:-0}" != 1 ] || : >"$root/l1/as-nobody"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >>"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

# Dynamic libraries of hutch and the extra files, at their own paths.
copy_with_libs() {
	src=$1
	mkdir -p "$root$(dirname "$src")"
	cp -L "$src" "$root$src"
	ldd "$src" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
	while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
copy_with_libs "$(cd "$(dirname "$hutch")" && pwd)/$(basename "$hutch")"
for f in "$@"; do
	if [ -d "$f" ]; then
		mkdir -p "$root$(dirname "$f")"
		cp -a "$f" "$root$f"
	else
		copy_with_libs "$f"
	fi
done

(cd "$root" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) >"$tmp/run.cpio"
cat "$tmp/run.cpio" "$assets/l1-modules.cpio" >"$tmp/l1.cpio"

timeout -s KILL "${L1_TIMEOUT:-900}" "$qemu" -accel "${L1_ACCEL:-tcg}" -cpu max -smp "${L1_SMP:-2}" \
	-m "${L1_MEM:-2048}" -nodefaults -no-user-config -nographic -no-reboot \
	-serial stdio -monitor none \
	-kernel "$assets/vmlinuz" -initrd "$tmp/l1.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" </dev/null

# Sourced by the scripts of the L1 test bench: which QEMU boots the L1 guest.
#
#   l1_qemu ASSETS_DIR    prints the QEMU command
#
# $QEMU if set; else the bench's own QEMU 10.0 from bookworm-backports that
# `make vm-assets` unpacks into the cache and links as ASSETS_DIR/qemu
# (tests/vm/qemu-backport.sh: a wrapper that sets LD_LIBRARY_PATH and -L
# itself); else the host's qemu-system-x86_64. Why the backport: docs/vm.md,
# "Known flakes of the L1 bench".
l1_qemu()
{
	if [ -n "${QEMU:-}" ]; then
		echo "$QEMU"
	elif [ -x "$1/qemu/bin/qemu-system-x86_64" ]; then
		echo "$1/qemu/bin/qemu-system-x86_64"
	else
		echo qemu-system-x86_64
	fi
}

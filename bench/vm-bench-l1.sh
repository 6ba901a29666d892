#!/bin/sh
# Inside the L1 bench guest (see bench/vm-bench.sh): boot the same kernel and
# initramfs N times with hutch and with QEMU's microvm, both under the real
# KVM of this guest, and print one RESULT line per run.
N=${N:-5}
STAMP=${STAMP:-/l1/vm-stamp}
MEM=256
K=/l1/vm/vmlinuz
CMDLINE="console=ttyS0 reboot=k panic=-1 pci=off 8250.nr_uarts=2 i8042.noaux i8042.nomux i8042.dumbkbd i8042.nopnp quiet loglevel=1"
# The guest command: print, then stay up 500 ms so the VMM's memory can be sampled.
set -- sh -c 'echo ready; sleep 0.5'

# QEMU gets the run request that hutch appends to the initramfs itself.
mkdir -p /tmp/req/hutch
printf 'run\0dumb\0sh\0-c\0echo ready; sleep 0.5\0' >/tmp/req/hutch/cmd
(cd /tmp/req && find . | cpio -o -H newc 2>/dev/null) >/tmp/req.cpio
cat /l1/vm/initramfs.cpio /tmp/req.cpio >/tmp/qemu-initrd

echo "INFO $(qemu-system-x86_64 --version | head -n1)"
echo "INFO L1 $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	r=$("$STAMP" $MEM 250 /l1/hutch vm run --memory ${MEM}M --timings -- "$@" 2>/tmp/err)
	init=$(sed -n 's/.*guest init after \([0-9.]*\) ms.*/\1/p' /tmp/err)
	echo "RESULT hutch $r init_ms=${init:-?}"
	r=$("$STAMP" $MEM 250 qemu-system-x86_64 -M microvm,acpi=on -accel kvm -cpu host \
		-m ${MEM}M -smp 1 -nodefaults -no-user-config -nographic -no-reboot \
		-serial stdio -monitor none -kernel $K -initrd /tmp/qemu-initrd -append "$CMDLINE" \
		2>/tmp/err </dev/null)
	echo "RESULT qemu $r init_ms=?"
	[ -s /tmp/err ] && sed 's/^/INFO qemu stderr: /' /tmp/err | head -5
done

# Inside the L1 bench guest (see bench/vm-disk-bench.sh; the first lines of
# this script, added there, set N, STAMP, TOOLS, FIO_DEPTH, FIO_RUNTIME,
# BOOT_TIMEOUT, ORDER, SETTLE):
# boot the same kernel and initramfs with the same two disks N times with
# hutch and with QEMU's microvm, both under the real KVM of this guest, on a
# raw disk and on a qcow2 overlay, and print one RESULT line per boot.
N=${N:-4}
STAMP=${STAMP:-/l1/vm-stamp}
FIO_DEPTH=${FIO_DEPTH:-16}
FIO_RUNTIME=${FIO_RUNTIME:-10}
ORDER=${ORDER:-hutch:raw qemu:raw hutch:qcow2 qemu:qcow2 qemu-pvh:raw qemu-light:raw}
MEM=256
# QEMU boots the bzImage, through its firmware and the kernel's decompressor;
# hutch its default, the same kernel uncompressed (vmlinux, from make
# vm-assets). qemu-pvh boots that vmlinux too, through its PVH entry point;
# qemu-light the same with microvm's legacy devices off (no RTC, PIT, PIC or
# option ROMs: its lightest machine, docs/system/i386/microvm.rst).
K=/l1/vm/vmlinuz
CMDLINE="console=ttyS0 reboot=k panic=-1 pci=off 8250.nr_uarts=2 i8042.noaux i8042.nomux i8042.dumbkbd i8042.nopnp quiet loglevel=1"
export HUTCH_HOME=/tmp/hutch-home
D=/tmp/disks
mkdir -p $D

# The guest command, the same for both VMMs. The bench disk is the one of
# 256 MiB (524288 sectors); the other one carries fio.
GCMD='echo ready
for s in /sys/block/vd*; do
	case $(cat $s/size) in 524288) bench=/dev/${s##*/} ;; *) tools=/dev/${s##*/} ;; esac
done
mkdir -p /mnt && mount -t ext4 -o ro $tools /mnt || echo "BENCH error: no tools disk"
run() { /mnt/lib/ld-linux-x86-64.so.2 --library-path /mnt/lib "$@"; }
echo "BENCH read $(run /mnt/dd if=$bench of=/dev/null bs=1M count=256 iflag=direct 2>&1 | tail -n 1)"
echo "BENCH fio $(run /mnt/fio --name=rr \
	--filename=$bench --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth='$FIO_DEPTH' \
	--runtime='$FIO_RUNTIME' --time_based --norandommap --randrepeat=0 \
	--output-format=terse --terse-version=3 2>&1 | tail -n 1)"
echo "BENCH write $(run /mnt/dd if=/dev/zero of=$bench bs=1M count=256 oflag=direct 2>&1 | tail -n 1)"
umount /mnt'

# QEMU gets the run request that hutch appends to the initramfs itself.
mkdir -p /tmp/req/hutch
printf 'run\0dumb\0sh\0-c\0%s\0' "$GCMD" >/tmp/req/hutch/cmd
(cd /tmp/req && find . | cpio -o -H newc 2>/dev/null) >/tmp/req.cpio
cat /l1/vm/initramfs.cpio /tmp/req.cpio >/tmp/qemu-initrd
cp "$TOOLS" $D/tools.ext4

echo "INFO $(qemu-system-x86_64 --version | head -n1)"
echo "INFO $(qemu-img --version | head -n1)"
echo "INFO $FIO_VERSION, libaio, iodepth $FIO_DEPTH, ${FIO_RUNTIME} s"
echo "INFO L1 $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
t0=$(date +%s)
# The data disk: random bytes, and a fully allocated qcow2 (64 KiB clusters) of them.
dd if=/dev/urandom of=$D/raw.img bs=1M count=256 2>/dev/null
qemu-img convert -f raw -O qcow2 $D/raw.img $D/base.qcow2
echo "INFO disks made in $(($(date +%s) - t0)) s; $(ls -l $D | awk 'NR > 1 { printf "%s %s; ", $NF, $5 }')"

# One boot: VMM ($1) on disk kind ($2); the rest is the VMM's command line.
boot() {
	vmm=$1 kind=$2
	shift 2
	# Bounded: a boot of L2 in this TCG-emulated L1 can hang (docs/vm.md, "Known flakes").
	r=$(VM_STAMP_EVERY_MS=500 VM_STAMP_OUT=/tmp/out VM_STAMP_TIMEOUT_S=${BOOT_TIMEOUT:-300} "$STAMP" $MEM 250 "$@" 2>/tmp/err </dev/null)
	tr -d '\r' </tmp/out >/tmp/out.txt
	rd=$(sed -n 's/^BENCH read .* copied, \([0-9.e-]*\) s,.*/\1/p' /tmp/out.txt)
	wr=$(sed -n 's/^BENCH write .* copied, \([0-9.e-]*\) s,.*/\1/p' /tmp/out.txt)
	iops=$(sed -n 's/^BENCH fio //p' /tmp/out.txt | awk -F';' 'NF > 8 { print $8 }')
	init=$(sed -n 's/.*guest init after \([0-9.]*\) ms.*/\1/p' /tmp/err)
	echo "RESULT $vmm $kind $r" \
		"read_mibs=$(awk -v s="$rd" 'BEGIN { if (s > 0) printf "%.1f", 256 / s; else print "?" }')" \
		"write_mibs=$(awk -v s="$wr" 'BEGIN { if (s > 0) printf "%.1f", 256 / s; else print "?" }')" \
		"iops=${iops:-?} init_ms=${init:-?}"
	grep -q '^BENCH error' /tmp/out.txt && grep '^BENCH error' /tmp/out.txt | sed 's/^/INFO /'
	[ -n "$iops" ] && [ -n "$rd" ] && [ -n "$wr" ] ||
		{ sed 's/^/INFO guest: /' /tmp/out.txt | tail -n 15; sed 's/^/INFO stderr: /' /tmp/err | tail -n 5; }
	return 0
}
qemu_boot() {
	vmm=$1 kernel=$2 kind=$3 file=$4 fmt=$5 machine=${6:-microvm,acpi=on}
	boot "$vmm" "$kind" qemu-system-x86_64 -M "$machine" -accel kvm -cpu host -m ${MEM}M -smp 1 \
		-nodefaults -no-user-config -nographic -no-reboot -serial stdio -monitor none \
		-kernel "$kernel" -initrd /tmp/qemu-initrd -append "$CMDLINE" \
		-drive id=d0,if=none,file="$file",format="$fmt" -device virtio-blk-device,drive=d0 \
		-drive id=d1,if=none,file=$D/tools.ext4,format=raw,readonly=on \
		-device virtio-blk-device,drive=d1 -device virtio-rng-device
}

fresh_overlay() {
	rm -f $D/overlay.qcow2
	qemu-img create -q -f qcow2 -b $D/base.qcow2 -F qcow2 $D/overlay.qcow2
}

one() {
	case $1 in
	hutch:raw)
		boot hutch raw /l1/hutch vm run --memory ${MEM}M --timings \
			--disk $D/raw.img,format=raw --disk $D/tools.ext4,ro,format=raw -- sh -c "$GCMD" ;;
	qemu:raw)
		qemu_boot qemu $K raw $D/raw.img raw ;;
	qemu-pvh:raw)
		qemu_boot qemu-pvh /l1/vm/vmlinux raw $D/raw.img raw ;;
	qemu-light:raw)
		qemu_boot qemu-light /l1/vm/vmlinux raw $D/raw.img raw \
			microvm,acpi=on,rtc=off,pit=off,pic=off,x-option-roms=off ;;
	hutch:qcow2)
		# A fresh overlay each boot, made by qemu-img before the VMM starts, for
		# both VMMs alike (hutch's own `--disk base.qcow2,overlay` makes the same
		# file in its store at start-up: a few small writes, not timed here).
		fresh_overlay
		boot hutch qcow2 /l1/hutch vm run --memory ${MEM}M --timings \
			--disk $D/overlay.qcow2 --disk $D/tools.ext4,ro,format=raw -- sh -c "$GCMD"
		rm -f $D/overlay.qcow2 ;;
	qemu:qcow2)
		fresh_overlay
		qemu_boot qemu $K qcow2 $D/overlay.qcow2 qcow2
		rm -f $D/overlay.qcow2 ;;
	esac
}

# ORDER: the boots of one round, in turn (bench/vm-disk-bench.sh); every
# second round runs them in the reverse order. A boot's place in the round
# moved its time by seconds whichever VMM it was (a boot right after a
# raw-disk boot came out slower, docs/benchmarks.md), so each VMM gets each
# place equally often when N is even.
REVERSE=
for b in $ORDER; do REVERSE="$b${REVERSE:+ }$REVERSE"; done
echo "INFO order of odd rounds: $ORDER; of even rounds: $REVERSE; ${SETTLE:-0} s of quiet before each boot"
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	round=$ORDER
	[ $((i % 2)) -eq 1 ] || round=$REVERSE
	# SETTLE seconds of quiet before each boot.
	for b in $round; do sync; sleep "${SETTLE:-0}"; one $b; done
done

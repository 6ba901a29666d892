#!/bin/sh
# The checks of `hutch vm run` against a real /dev/kvm. Runs inside the L1
# test guest (tests/vm/l1-run.sh) or directly on a host with hardware KVM.
# Prints one line per check: "CHECK <name> ok" or "CHECK <name> FAIL <why>";
# tests/integration/vm.bats asserts on those lines.
#
# Environment: HUTCH (default /l1/hutch), PROBE (hutch-probe for the host side,
# default /l1/hutch-probe).
HUTCH=${HUTCH:-/l1/hutch}
# Where this hutch takes its guest kernels from (src/vmm/load.c).
ASSETS=${HUTCH_VM_DIR:-$(dirname "$HUTCH")/vm}
PROBE=${PROBE:-/l1/hutch-probe}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

ok() { echo "CHECK $1 ok"; }
fail() {
	name=$1
	shift
	echo "CHECK $name FAIL $*"
	for f in "$t/out" "$t/err"; do
		[ -s "$f" ] && { head -c 2000 "$f"; echo; } | sed "s/^/  $name $(basename "$f"): /"
	done
}
# Every VM is bounded: a hang fails its check instead of the whole run.
VM_TIMEOUT=${VM_TIMEOUT:-120}
vm_once() { timeout -s KILL "$VM_TIMEOUT" "$HUTCH" vm run "$@" >"$t/out" 2>"$t/err"; echo $? >"$t/rc"; }
# The shutdown exits KVM in here saw (l1-init.sh traces them), if readable.
shutdown_exits() {
	grep -h "reason shutdown" /sys/kernel/tracing/trace 2>/dev/null | tail -n 2 | tr -s ' ' | tr '\n' ';'
}
# Under the L1 bench a boot now and then triple-faults for no reason of
# hutch's: QEMU's TCG emulation of nested SVM (docs/vm.md, "Known flakes of
# the L1 bench"). Such a boot is retried once, in plain sight: an INFO line
# keeps the first failure and what KVM saw; a triple fault that comes back
# fails the check.
vm() {
	vm_once "$@"
	if [ "$(cat "$t/rc")" = 125 ] && grep -q "^hutch: vm: guest triple-faulted" "$t/err"; then
		echo "INFO retried 'hutch vm run $*' once: $(grep '^hutch: vm:' "$t/err") [L1 KVM: $(shutdown_exits)]"
		vm_once "$@"
	fi
}
rc() { cat "$t/rc"; }

# status expected, then the command
check_status() {
	name=$1 want=$2
	shift 2
	vm -- "$@"
	if [ "$(rc)" = "$want" ]; then ok "$name"; else fail "$name" "exit status $(rc), want $want"; fi
}

echo "INFO kvm: $(ls -l /dev/kvm 2>&1)"

vm --cpus 1 --timings -- hutch-probe cpus
if [ "$(rc)" = 0 ] && [ "$(cat "$t/out")" = 1 ]; then ok cpus-1; else fail cpus-1 "rc $(rc), cpus '$(cat "$t/out")'"; fi
echo "INFO cpus-1 $(grep timings "$t/err")"

vm --cpus 4 --timings -- hutch-probe cpus
if [ "$(rc)" = 0 ] && [ "$(cat "$t/out")" = 4 ]; then ok cpus-4; else fail cpus-4 "rc $(rc), cpus '$(cat "$t/out")'"; fi
echo "INFO cpus-4 $(grep timings "$t/err")"

check_status exit-0 0 true
check_status exit-1 1 sh -c 'exit 1'
check_status exit-42 42 sh -c 'exit 42'
check_status exit-signal 137 sh -c 'kill -KILL $$'

# The default kernel is the vmlinux, entered at its own startup_64: with no
# decompressor to move it (KASLR), it runs where its ELF header put it.
vm -- sh -c 'grep "Kernel code" /proc/iomem'
if [ "$(rc)" = 0 ] && grep -q "^ *01000000-[0-9a-f]* : Kernel code" "$t/out"; then ok kernel-elf
else fail kernel-elf "rc $(rc), '$(cat "$t/out")'"; fi
# The bzImage of the same kernel, through its decompressor.
vm --kernel "$ASSETS/vmlinuz" -- sh -c 'grep "Kernel code" /proc/iomem'
if [ "$(rc)" = 0 ] && grep -q "^ *[0-9a-f]*-[0-9a-f]* : Kernel code" "$t/out"; then ok kernel-bzimage
else fail kernel-bzimage "rc $(rc), '$(cat "$t/out")'"; fi

vm -- hutch-probe bytes
"$PROBE" bytes >"$t/want"
if [ "$(rc)" = 0 ] && cmp -s "$t/out" "$t/want"; then ok stdout-bytes
else fail stdout-bytes "rc $(rc), $(wc -c <"$t/out") bytes, differ: $(cmp "$t/out" "$t/want" 2>&1)"; fi

vm -- sh -c 'echo hi; echo oops >&2; printf "a\nb\r\nc"'
printf 'hi\na\nb\r\nc' >"$t/want"
if [ "$(rc)" = 0 ] && cmp -s "$t/out" "$t/want" && grep -qx oops "$t/err"; then ok stdout-stderr
else fail stdout-stderr "rc $(rc), stdout or stderr differ"; fi

# The same boot checks virtio-rng (a boot costs 10-25 s in L1): the guest
# binds it as its hardware RNG and reads bytes from it, and the transport
# logged no rule broken by the guest's driver.
vm --memory 300M -- sh -c 'hutch-probe memory; cat /sys/devices/virtual/misc/hw_random/rng_current; head -c 4096 /dev/hwrng | wc -c'
if [ "$(rc)" = 0 ] && grep -q "^memmap-total=314572800 " "$t/out"; then ok memory-exact
else fail memory-exact "rc $(rc), got '$(cat "$t/out")', want 314572800 bytes"; fi
if [ "$(rc)" = 0 ] && grep -qx "virtio_rng.0" "$t/out" && grep -qx " *4096" "$t/out" &&
	! grep -q "the guest's driver" "$t/err"; then ok virtio-rng
else fail virtio-rng "rc $(rc), got '$(tr '\n' ' ' <"$t/out")', stderr '$(tail -n 3 "$t/err" | tr '\n' ' ')'"; fi

vm --trace-io -- sh -c 'hutch-probe port 0x3e0 && hutch-probe mmio 0xdffff000'
if [ "$(rc)" = 0 ] &&
	grep -q "^port 0x3e0 read 0xff$" "$t/out" && grep -q "^mmio 0xdffff000 read 0xffffffff$" "$t/out" &&
	grep -q "refused pio read of 1 byte at 0x3e0" "$t/err" &&
	grep -q "refused pio write of 1 byte at 0x3e0, value 0x5a" "$t/err" &&
	grep -q "refused mmio read of 4 bytes at 0xdffff000" "$t/err" &&
	grep -q "refused mmio write of 4 bytes at 0xdffff000, value 0x5a5a5a5a" "$t/err" &&
	grep -qE "refused [1-9][0-9]* port and [1-9][0-9]* MMIO accesses" "$t/err"; then ok unhandled-io
else fail unhandled-io "rc $(rc), accesses not refused and counted as expected"; fi
echo "INFO unhandled-io $(grep 'refused [0-9]' "$t/err")"

vm -- sh -c 'echo c >/proc/sysrq-trigger; sleep 10'
if [ "$(rc)" = 125 ] && grep -q "^hutch: vm: guest kernel panicked" "$t/err"; then ok stop-panic
else fail stop-panic "rc $(rc)"; fi

vm -- reboot -f
if [ "$(rc)" = 125 ] && grep -q "^hutch: vm: guest rebooted" "$t/err"; then ok stop-reboot
else fail stop-reboot "rc $(rc)"; fi

vm -- poweroff -f
if [ "$(rc)" = 125 ] && grep -q "^hutch: vm: guest powered off" "$t/err"; then ok stop-poweroff
else fail stop-poweroff "rc $(rc)"; fi

# SIGINT once the guest runs its command (up to 60 s: a loaded L1 boots
# slowly), so that it is hutch's console that takes it, not the default
# action of a process still loading the guest.
"$PROBE" foreground "$HUTCH" vm run -- sh -c 'echo up; sleep 100' >"$t/out" 2>"$t/err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "^up" "$t/out"; do
	sleep 0.1
	i=$((i + 1))
done
kill -INT $pid
wait $pid
echo $? >"$t/rc"
if [ "$(rc)" = 130 ] && grep -q "^hutch: vm: stopped by Interrupt on the host" "$t/err"; then ok host-interrupt
else fail host-interrupt "rc $(rc)"; fi

printf 'echo shell-$((6 * 7))\nexit 3\n' |
	timeout -s KILL "$VM_TIMEOUT" "$HUTCH" vm run --shell >"$t/out" 2>"$t/err"
echo $? >"$t/rc"
if [ "$(rc)" = 3 ] && grep -q "shell-42" "$t/out"; then ok shell-input
else fail shell-input "rc $(rc)"; fi

# A terminal: the size reaches the guest's tty, Ctrl-C interrupts the
# guest's foreground job, not hutch. Input waits until the guest is up.
{
	sleep 25
	printf 'stty size\n'
	sleep 3
	printf 'sleep 60\n'
	sleep 4
	printf '\003'
	sleep 3
	printf 'echo after-$?\n'
	sleep 2
	printf 'exit 5\n'
} | timeout -s KILL "$VM_TIMEOUT" "$PROBE" pty 33 111 "$HUTCH" vm run --shell >"$t/out" 2>"$t/err"
echo $? >"$t/rc"
if [ "$(rc)" = 5 ] && grep -q "^33 111" "$t/out" && grep -q "^after-130" "$t/out"; then ok shell-terminal
else fail shell-terminal "rc $(rc)"; fi

vm --cpus 4000 -- true
if [ "$(rc)" = 125 ] && grep -qE "^hutch: --cpus 4000 is out of range: KVM here allows 1 to [0-9]+$" "$t/err"; then ok bad-cpus-kvm
else fail bad-cpus-kvm "rc $(rc)"; fi

# --- disks (--disk): virtio-blk over virtio-mmio, raw and qcow2 ---
# QEMU_IMG (default: qemu-img on PATH, which l1-run.sh copies into L1 when
# the host has it) checks the qcow2 images; without it those parts say so.
export HUTCH_HOME="$t/home"
QEMU_IMG=${QEMU_IMG:-$(command -v qemu-img)}
# sha256 of file
sum() { sha256sum <"$1" | cut -d' ' -f1; }
# img_check NAME FILE: qemu-img check is clean (no leaks, no corruption), or says why not.
img_check() {
	if [ -z "$QEMU_IMG" ]; then echo "INFO $1: no qemu-img here, image not checked"; return 0; fi
	"$QEMU_IMG" check -q "$2" >"$t/check" 2>&1 && return 0
	echo "  $1 qemu-img: $(tr '\n' ' ' <"$t/check")"
	return 1
}

# A raw disk: the guest makes a file system and writes a file; the file is on
# the host's image; a second run mounts it and reads the file back.
dd if=/dev/zero of="$t/raw.img" bs=1M count=0 seek=64 2>/dev/null
vm --disk "$t/raw.img" -- sh -c 'mke2fs -q /dev/vda >/dev/null && mkdir -p /mnt && mount -t ext4 /dev/vda /mnt &&
	echo data-from-the-guest-1234 >/mnt/f && umount /mnt && cat /sys/block/vda/size /sys/block/vda/serial'
magic=$(od -An -tx1 -j 1080 -N 2 "$t/raw.img" | tr -d ' ')
if [ "$(rc)" = 0 ] && [ "$magic" = 53ef ] && grep -q data-from-the-guest-1234 "$t/raw.img" &&
	[ "$(head -n 1 "$t/out")" = 131072 ] && [ "$(sed -n 2p "$t/out")" = raw.img ]; then
	vm --disk "$t/raw.img" -- sh -c 'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/f'
	if [ "$(rc)" = 0 ] && [ "$(cat "$t/out")" = data-from-the-guest-1234 ]; then ok disk-raw
	else fail disk-raw "second run: rc $(rc), read '$(cat "$t/out")'"; fi
else fail disk-raw "rc $(rc), ext2 magic '$magic', size/serial '$(tr '\n' ' ' <"$t/out")'"; fi

# An overlay: the base's sha256 stays, the guest's writes survive into a
# second run of the same VM, and the overlay passes qemu-img check.
head -c 4194304 /dev/urandom >"$t/base.raw"
before=$(sum "$t/base.raw")
vm --name ov --disk "$t/base.raw,overlay" -- sh -c \
	'printf overlay-data-5678 | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null &&
	 dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 17'
ov=$HUTCH_HOME/vms/ov/disk0.qcow2
if [ "$(rc)" = 0 ] && [ "$(cat "$t/out")" = overlay-data-5678 ] && [ -f "$ov" ] &&
	[ "$(sum "$t/base.raw")" = "$before" ] && ! grep -q overlay-data-5678 "$t/base.raw" &&
	img_check disk-overlay "$ov"; then
	vm --name ov --disk "$t/base.raw,overlay" -- sh -c \
		'dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 17; dd if=/dev/vda bs=512 skip=200 count=1 2>/dev/null | sha256sum'
	want=$(dd if="$t/base.raw" bs=512 skip=200 count=1 2>/dev/null | sha256sum)
	if [ "$(rc)" = 0 ] && [ "$(head -c 17 "$t/out")" = overlay-data-5678 ] &&
		grep -q "${want%% *}" "$t/out" && [ "$(sum "$t/base.raw")" = "$before" ]; then ok disk-overlay
	else fail disk-overlay "second run: rc $(rc), read '$(cat "$t/out")'"; fi
else fail disk-overlay "rc $(rc), read '$(cat "$t/out")', base $([ "$(sum "$t/base.raw")" = "$before" ] && echo unchanged || echo CHANGED)"; fi

# Read-only (on the qcow2 boot below when there is qemu-img, else a boot of
# its own): the guest sees it so, its writes fail, the image is unchanged.
ro_probe='cat /sys/block/vdb/ro; if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>/dev/null; then echo wrote; fi'
ro_before=$(sum "$t/raw.img")
ro_result() {
	if [ "$(rc)" = 0 ] && [ "$(tail -n 1 "$t/out")" = 1 ] && [ "$(sum "$t/raw.img")" = "$ro_before" ]; then ok disk-ro
	else fail disk-ro "rc $(rc), guest said '$(tr '\n' ' ' <"$t/out")', image $([ "$(sum "$t/raw.img")" = "$ro_before" ] && echo unchanged || echo CHANGED)"; fi
}

# A qcow2 image qemu-img made: the guest's writes (a file system, a
# discard) leave it clean for qemu-img check, and its bytes are the guest's.
if [ -n "$QEMU_IMG" ]; then
	"$QEMU_IMG" create -q -f qcow2 "$t/q.qcow2" 64M
	vm --disk "$t/q.qcow2" --disk "$t/raw.img,ro" -- sh -c \
		'mke2fs -q /dev/vda >/dev/null && mkdir -p /mnt && mount -t ext4 /dev/vda /mnt &&
		 echo qcow2-file-91 >/mnt/f && sync && rm /mnt/f && fstrim /mnt 2>/dev/null; umount /mnt;
		 printf qcow2-bytes-42 | dd of=/dev/vda bs=512 seek=70000 conv=fsync 2>/dev/null;
		 '"$ro_probe"
	ro_result
	"$QEMU_IMG" convert -O raw "$t/q.qcow2" "$t/q.raw" 2>"$t/check"
	got=$(dd if="$t/q.raw" bs=512 skip=70000 count=1 2>/dev/null | head -c 14)
	if [ "$(rc)" = 0 ] && [ "$got" = qcow2-bytes-42 ] &&
		img_check disk-qcow2 "$t/q.qcow2"; then ok disk-qcow2
	else fail disk-qcow2 "rc $(rc), guest said '$(cat "$t/out")', converted bytes '$got'"; fi
	rm -f "$t/q.raw"
else
	echo "CHECK disk-qcow2 skip no qemu-img in here"
	vm --disk "$t/base.raw,overlay" --disk "$t/raw.img,ro" -- sh -c "$ro_probe"
	ro_result
fi

# kill -9 of the VMM while the guest writes: the overlay passes qemu-img check
# (leaked clusters allowed, corruption not: status 0 or 3), and what the guest
# flushed before is in it. As root this runs as the user nobody, given
# /dev/kvm the way a kvm group gives it: the disks as an unprivileged user.
if [ -n "$QEMU_IMG" ]; then
	u=$(mktemp -d /tmp/hutch-user.XXXXXX)
	dd if=/dev/zero of="$u/base.raw" bs=1M count=0 seek=64 2>/dev/null
	chmod 0755 "$u"
	as_user=""
	if [ "$(id -u)" = 0 ]; then
		chown -R nobody "$u"
		kvm_mode=$(stat -c %a /dev/kvm)
		chmod 0666 /dev/kvm
		as_user="su -s /bin/sh nobody -c"
	fi
	# The guest flushes a marker, says so, then allocates cluster after
	# cluster (64 KiB at scattered offsets, flushed) until it is killed.
	k9='printf flushed-before-kill-77 | dd of=/dev/vda bs=512 seek=3 conv=fsync 2>/dev/null && echo writing;
	    i=0; while [ $i -lt 5000 ]; do
		dd if=/dev/urandom of=/dev/vda bs=64k count=1 seek=$(( (i * 37) % 1000 + 1 )) conv=fsync 2>/dev/null; i=$((i + 1));
	    done'
	k9cmd="HUTCH_HOME=$u/home exec timeout -s KILL $VM_TIMEOUT $HUTCH vm run --name k9 --disk $u/base.raw,overlay -- sh -c '$k9'"
	if [ -n "$as_user" ]; then $as_user "$k9cmd" >"$t/out" 2>"$t/err" &
	else sh -c "$k9cmd" >"$t/out" 2>"$t/err" & fi
	i=0
	while [ $i -lt 600 ] && ! grep -q "^writing" "$t/out"; do sleep 0.1; i=$((i + 1)); done
	sleep 3
	owner=$(stat -c %U "/proc/$(pidof hutch)" 2>/dev/null)
	kill -KILL $(pidof hutch) 2>/dev/null
	wait
	ov=$u/home/vms/k9/disk0.qcow2
	"$QEMU_IMG" check "$ov" >"$t/check" 2>&1
	crc=$?
	"$QEMU_IMG" convert -O raw "$ov" "$u/k9.raw" 2>>"$t/check"
	got=$(dd if="$u/k9.raw" bs=512 skip=3 count=1 2>/dev/null | head -c 22)
	clusters=$(stat -c %s "$ov")
	if grep -q "^writing" "$t/out" && { [ $crc = 0 ] || [ $crc = 3 ]; } && [ "$got" = flushed-before-kill-77 ] &&
		[ "$clusters" -gt $((8 * 65536)) ]; then ok disk-kill9
	else fail disk-kill9 "guest $(grep -c '^writing' "$t/out") writing, qemu-img check status $crc: $(tr '\n' ' ' <"$t/check"), marker '$got', overlay $clusters bytes"; fi
	echo "INFO disk-kill9 overlay $clusters bytes at the kill, qemu-img check status $crc"
	if [ -z "$as_user" ]; then echo "CHECK disk-unprivileged skip the checks run unprivileged already (L1_AS_NOBODY)"
	elif [ "$owner" = nobody ] && grep -q "^writing" "$t/out" && [ "$(stat -c %U "$ov")" = nobody ]; then ok disk-unprivileged
	else fail disk-unprivileged "the VMM ran as '$owner', the overlay is $(stat -c %U "$ov" 2>&1)'s"; fi
	[ -z "$as_user" ] || chmod "$kvm_mode" /dev/kvm
	rm -rf "$u"
else
	echo "CHECK disk-kill9 skip no qemu-img in here"
	echo "CHECK disk-unprivileged skip no qemu-img in here"
fi

# A hostile driver (hutch-probe virtio, src/guest/probe_virtio.c) on the disk's
# virtio-mmio device: bad queue sizes, rings outside RAM, looping and over-long
# chains, bad indices; every case gets NEEDS_RESET, the VMM counts them and
# goes on, and the kernel's own driver, bound again, reads the disk.
printf hostile-guest-disk-ok | dd of="$t/raw.img" bs=512 seek=2048 conv=notrunc 2>/dev/null
vm --trace-io --disk "$t/raw.img" -- sh -c 'hutch-probe virtio; echo probe-rc=$?;
	for d in /sys/bus/platform/devices/LNRO0005:*; do echo "${d##*/}" >/sys/bus/platform/drivers/virtio-mmio/bind; done;
	i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done;
	dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | head -c 21; echo'
events=$(grep -E "^hutch: vm: vda: virtio events:" "$t/err")
n=$(echo "$events" | sed -E 's/.*events: ([0-9]+) broken queue, ([0-9]+) bad queue config.*/\1 \2/')
if [ "$(rc)" = 0 ] && grep -q "^probe-rc=0$" "$t/out" && grep -q "^hostile-guest-disk-ok$" "$t/out" &&
	grep -qE "^virtio-probe ([0-9]+) of \1 cases caught$" "$t/out" &&
	grep -q "^virtio-probe device 2 " "$t/out" && [ $(( ${n% *} + ${n#* } )) -ge 13 ]; then ok hostile-guest
else fail hostile-guest "rc $(rc), events '$events'"; fi
echo "INFO hostile-guest $events"

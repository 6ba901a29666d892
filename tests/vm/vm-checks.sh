#!/bin/sh
# The checks of `hutch vm run` against a real /dev/kvm. Runs inside the L1
# test guest (tests/vm/l1-run.sh) or directly on a host with hardware KVM.
# Prints one line per check: "CHECK <name> ok" or "CHECK <name> FAIL <why>";
# tests/integration/vm.bats asserts on those lines.
#
# Environment: HUTCH (default /l1/hutch), PROBE (hutch-probe for the host side,
# default /l1/hutch-probe).
HUTCH=${HUTCH:-/l1/hutch}
PROBE=${PROBE:-/l1/hutch-probe}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

ok() { echo "CHECK $1 ok"; }
fail() {
	name=$1
	shift
	echo "CHECK $name FAIL $*"
	for f in "$t/out" "$t/err"; do
		[ -s "$f" ] && head -c 2000 "$f" | sed "s/^/  $name $(basename "$f"): /"
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

vm -- hutch-probe bytes
"$PROBE" bytes >"$t/want"
if [ "$(rc)" = 0 ] && cmp -s "$t/out" "$t/want"; then ok stdout-bytes
else fail stdout-bytes "rc $(rc), $(wc -c <"$t/out") bytes, differ: $(cmp "$t/out" "$t/want" 2>&1)"; fi

vm -- sh -c 'echo hi; echo oops >&2; printf "a\nb\r\nc"'
printf 'hi\na\nb\r\nc' >"$t/want"
if [ "$(rc)" = 0 ] && cmp -s "$t/out" "$t/want" && grep -qx oops "$t/err"; then ok stdout-stderr
else fail stdout-stderr "rc $(rc), stdout or stderr differ"; fi

vm --memory 300M -- hutch-probe memory
if [ "$(rc)" = 0 ] && grep -q "^memmap-total=314572800 " "$t/out"; then ok memory-exact
else fail memory-exact "rc $(rc), got '$(cat "$t/out")', want 314572800 bytes"; fi

vm --trace-io -- sh -c 'hutch-probe port 0x3e0 && hutch-probe mmio 0xd0000000'
if [ "$(rc)" = 0 ] &&
	grep -q "^port 0x3e0 read 0xff$" "$t/out" && grep -q "^mmio 0xd0000000 read 0xffffffff$" "$t/out" &&
	grep -q "refused pio read of 1 byte at 0x3e0" "$t/err" &&
	grep -q "refused pio write of 1 byte at 0x3e0, value 0x5a" "$t/err" &&
	grep -q "refused mmio read of 4 bytes at 0xd0000000" "$t/err" &&
	grep -q "refused mmio write of 4 bytes at 0xd0000000, value 0x5a5a5a5a" "$t/err" &&
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

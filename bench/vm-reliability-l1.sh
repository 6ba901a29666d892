#!/bin/sh
# One trial of bench/vm-reliability.sh, run inside the L1 guest by
# tests/vm/l1-run.sh (as /l1/run.sh): BOOTS L2 boots of hutch's VM on the
# real /dev/kvm of L1, with the vCPU counts of vm-checks.sh's cpus checks
# (the 4-vCPU boot is where the emulator's triple faults were seen). No
# retries: each boot's outcome is reported as it is, one line:
#   BOOT <n> cpus=<c> rc=<status> out=<what hutch-probe printed> secs=<s> err=<hutch's line>
HUTCH=${HUTCH:-/l1/hutch}
CPUS=${CPUS:-1 4 4 4}
VM_TIMEOUT=${VM_TIMEOUT:-150}
t=$(mktemp -d)
n=0
for c in $CPUS; do
	n=$((n + 1))
	start=$(date +%s)
	timeout -s KILL "$VM_TIMEOUT" "$HUTCH" vm run --cpus "$c" -- hutch-probe cpus >"$t/out" 2>"$t/err"
	rc=$?
	end=$(date +%s)
	echo "BOOT $n cpus=$c rc=$rc out=$(head -c 40 "$t/out" | tr -d '\n') secs=$((end - start)) err=$(grep '^hutch:' "$t/err" | head -n 1)"
	if grep -q "triple-faulted" "$t/err"; then
		echo "INFO L1 KVM: $(grep -h "reason shutdown" /sys/kernel/tracing/trace 2>/dev/null | tail -n 2 | tr -s ' ' | tr '\n' ';')"
	fi
done
rm -rf "$t"

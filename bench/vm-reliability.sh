#!/bin/sh
# How reliable is the L1 test bench under a given QEMU? Boots the L1 guest of
# tests/vm/l1-run.sh N times for each QEMU given, alternately (A B A B ...,
# so the machine's load falls on all alike), each trial running
# bench/vm-reliability-l1.sh there (4 L2 boots of hutch's VM on L1's KVM),
# and writes one line per trial to RESULTS:
#
#   trial=<i> qemu=<label> result=<r> secs=<wall s> boots=<ok>/<n> detail=<...>
#
# result: ok (every L2 boot reported its vCPU count), triple-fault (an L2
# boot ended in "guest triple-faulted"), l2-hang (an L2 boot killed after
# VM_TIMEOUT), l1-hang (L1 killed after L1_TIMEOUT with no L1-END), crash
# (anything else: L1 kernel BUG/panic, QEMU error, another L2 failure).
# The console log of each trial is kept in RESULTS.d/.
#
#   bench/vm-reliability.sh N RESULTS LABEL=QEMU [LABEL=QEMU...]
#   bench/vm-reliability.sh summary RESULTS     the counts per QEMU, as a table
#
# e.g. bench/vm-reliability.sh 30 /var/tmp/rel.txt \
#        qemu7=qemu-system-x86_64 qemu10=build/vm/qemu/bin/qemu-system-x86_64
# Needs make and make vm-assets first. Environment: L1_SMP (2, as the tests),
# L1_TIMEOUT (300 s per trial), VM_TIMEOUT (150 s per L2 boot), CPUS (the
# L2 vCPU counts, "1 4 4 4"). Appends to RESULTS, so an interrupted series
# can be continued with START=<next trial>.
set -eu

# Per label: trials, each result, median and slowest wall time of the ok trials.
summary()
{
	awk '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		q = f["qemu"]; if (!(q in n)) order[++nq] = q
		n[q]++; c[q, f["result"]]++
		if (f["result"] == "ok") { k = ++nok[q]; secs[q, k] = f["secs"] + 0 }
	} END {
		print "| QEMU | trials | ok | triple-fault | l2-hang | l1-hang | crash | wall s per ok trial (median, max) |"
		print "|---|---|---|---|---|---|---|---|"
		for (j = 1; j <= nq; j++) {
			q = order[j]; m = nok[q]
			# insertion sort of this label'"'"'s times
			for (a = 2; a <= m; a++) for (b = a; b > 1 && secs[q, b - 1] > secs[q, b]; b--) {
				t = secs[q, b]; secs[q, b] = secs[q, b - 1]; secs[q, b - 1] = t }
			med = m ? secs[q, int((m + 1) / 2)] : "-"; mx = m ? secs[q, m] : "-"
			printf "| %s | %d | %d | %d | %d | %d | %d | %s, %s |\n", q, n[q], c[q, "ok"], c[q, "triple-fault"],
				c[q, "l2-hang"], c[q, "l1-hang"], c[q, "crash"], med, mx
		}
	}' "$1"
}
if [ "$1" = summary ]; then
	summary "$2"
	exit 0
fi

N=$1 results=$2
shift 2
# Absolute, before the cd below.
mkdir -p "$(dirname "$results")"
results=$(cd "$(dirname "$results")" && pwd)/$(basename "$results")
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
START=${START:-1}
mkdir -p "$results.d"
tmp=$(mktemp -d /var/tmp/hutch-rel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
{ echo "CPUS='${CPUS:-1 4 4 4}' VM_TIMEOUT=${VM_TIMEOUT:-150}"; cat bench/vm-reliability-l1.sh; } >"$tmp/run.sh"

i=$START
while [ "$i" -le "$N" ]; do
	for spec in "$@"; do
		label=${spec%%=*} qemu=${spec#*=}
		log=$results.d/trial-$i-$label.log
		start=$(date +%s)
		rc=0
		QEMU=$qemu L1_SMP=${L1_SMP:-2} L1_TIMEOUT=${L1_TIMEOUT:-300} HUTCH=$BUILD/hutch \
			VM_ASSETS=$BUILD/vm GUEST_BIN=$BUILD/guest \
			tests/vm/l1-run.sh "$tmp/run.sh" </dev/null 2>&1 | tr -d '\r' >"$log" || rc=$?
		secs=$(($(date +%s) - start))
		nboots=$(echo "${CPUS:-1 4 4 4}" | wc -w)
		okboots=$(grep -cE '^BOOT [0-9]+ cpus=([0-9]+) rc=0 out=\1 ' "$log" || true)
		detail=$(grep -m1 -E 'BUG:|Kernel panic|Oops|soft lockup|rcu_sched|rcu: INFO|qemu-system|triple|^l1-run' "$log" | cut -c1-160 || true)
		if grep -q '^BOOT .*triple-faulted' "$log"; then
			result=triple-fault
			detail=$(grep -m1 '^BOOT .*triple-faulted' "$log")
		elif grep -qE '^BOOT [0-9]+ cpus=[0-9]+ rc=137 ' "$log"; then
			result=l2-hang
		elif ! grep -q '^L1-END' "$log"; then
			# timeout -s KILL in l1-run.sh: 137; anything else is QEMU or L1 dying.
			if [ "$secs" -ge "${L1_TIMEOUT:-300}" ]; then result=l1-hang; else result=crash; fi
			[ -n "$detail" ] || detail="last line: $(tail -n 1 "$log" | cut -c1-120)"
		elif [ "$okboots" = "$nboots" ]; then
			result=ok
		else
			result=crash
			[ -n "$detail" ] || detail=$(grep -m1 -vE '^BOOT [0-9]+ cpus=([0-9]+) rc=0 out=\1 ' "$log" | grep '^BOOT' | cut -c1-160 || true)
		fi
		echo "trial=$i qemu=$label result=$result secs=$secs boots=$okboots/$nboots rc=$rc detail=$detail" >>"$results"
	done
	i=$((i + 1))
done
summary "$results"

#!/bin/bash
# The benchmark workloads; bench/run calls this as the benchmarking user.
# $1: a world-readable folder holding hutch and src/; $2: which group.
set -euo pipefail
DIR=$1
WHAT=${2:-all}
HUTCH="$DIR/hutch"
RESULTS=${RESULTS:-$DIR/results}
mkdir -p "$RESULTS"
export HUTCH_HOME="$DIR/store"
cd "$DIR"

hf()
{
	local name=$1
	shift
	hyperfine --style basic --export-json "$RESULTS/$name.json" \
		--export-markdown "$RESULTS/$name.md" "$@"
}

startup()
{
	local cmds=(
		-n native 'true'
		-n 'hutch run' "$HUTCH run -- true"
		-n bwrap 'bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp true'
		-n 'unshare -Urmpf' 'unshare -Urmpf --mount-proc true'
	)
	# HUTCH_OLD: an earlier hutch side by side, in a box of its own, to see
	# that a change made start-up no slower (same run, same machine state).
	if [ -n "${HUTCH_OLD:-}" ]; then
		cmds+=(-n 'hutch run (HUTCH_OLD)' "$HUTCH_OLD run -b old -- true")
		"$HUTCH_OLD" run -b old -- true
	fi

	# Make the box once so its store exists, as it does for a user's second run.
	"$HUTCH" run -- true
	# Back to back: each run joins the box the run before left idle (it
	# lingers 1 s), the rate of a box run after run.
	hf startup-back-to-back -N --warmup 10 --runs "$RUNS" "${cmds[@]}"
	# After a pause of 0.1 s (not timed): the box is still there, idle.
	hf startup -N --warmup 10 --runs "$RUNS" --prepare 'sleep 0.1' "${cmds[@]}"
	# After a pause of 1.2 s: the idle box has ended and been unmounted, so
	# every run builds a new box, as a first run or one with another policy
	# does. The same pause for every command.
	hf startup-new-box -N --warmup 3 --runs "$((RUNS / 2))" --prepare 'sleep 1.2' "${cmds[@]}"
}

# Each file workload runs natively and in a box in the same folder under
# $DIR; the box's writes land in its store, natively they land in $DIR.
files()
{
	local small='mkdir small && cd small && seq 20000 | xargs touch'
	local tree='tar -cf usr-include.tar -C /usr include'
	local big='dd if=/dev/zero of=big bs=1M count=1024 conv=fsync status=none'
	local clean='rm -rf small usr-include.tar big'

	"$HUTCH" run --box files -- true
	# The clean-up runs before each timed run (natively, and in the box for
	# the box's runs), outside the timing.
	hf files-small --warmup 1 --runs 10 \
		--prepare "$clean" -n native "bash -c '$small'" \
		--prepare "$HUTCH run --box files -- $clean" -n 'hutch run' \
		"$HUTCH run --box files -- bash -c '$small'"
	hf files-tar --warmup 1 --runs 10 \
		--prepare "$clean" -n native "bash -c '$tree'" \
		--prepare "$HUTCH run --box files -- $clean" -n 'hutch run' \
		"$HUTCH run --box files -- bash -c '$tree'"
	hf files-1gib --warmup 1 --runs 5 \
		--prepare "$clean" -n native "bash -c '$big'" \
		--prepare "$HUTCH run --box files -- $clean" -n 'hutch run' \
		"$HUTCH run --box files -- bash -c '$big'"
	$clean
	"$HUTCH" run --box files -- $clean
}

# A real build: hutch's own C sources, compiled one by one as make would.
build()
{
	local cc='rm -rf obj && mkdir obj && for f in $(find src -name "*.c" -not -path "src/guest/*"); do gcc -O2 -D_GNU_SOURCE -Isrc -c "$f" -o "obj/$(echo "$f" | tr / _).o"; done'

	"$HUTCH" run --box build -- true
	echo "build: $(find src -name '*.c' -not -path 'src/guest/*' | wc -l) C files"
	hf build --warmup 1 --runs 10 \
		-n native "bash -c '$cc'" \
		-n 'hutch run' "$HUTCH run --box build -- bash -c '$cc'"
}

# The supervisor: ns per call the box's filter sends to it, pinned to one CPU
# as the design notes measured, and unpinned; against the kernel's own
# floor (bench/notify-floor) and the same calls outside a box.
notify()
{
	local i out=$RESULTS/notify.txt

	# A box of its own for each kind of run: a run may join the box the
	# run before left idle, whose PID 1 (the supervisor) keeps its CPUs.
	"$HUTCH" run --box notify -- true
	: > "$out"
	for i in 1 2 3 4 5 6 7; do
		printf '%s %s %s %s %s\n' \
			"$(taskset -c 0 ./notify 20000)" \
			"$(taskset -c 0 ./notify-floor 20000)" \
			"$(taskset -c 0 "$HUTCH" run --box notify-pinned -- ./notify 20000)" \
			"$("$HUTCH" run --box notify -- ./notify 20000)" \
			"$(taskset -c 0 "$HUTCH" run --box notify-off --seccomp off -- ./notify 20000)" >> "$out"
	done
	echo "ns per bind(2): native, kernel floor (bare supervisor), hutch pinned, hutch unpinned, hutch --seccomp off"
	cat "$out"
}

# hutch commit of a large tree against cp -a of the same upper tree, into
# the same filesystem, alternating, RUNS_COMMIT times (default 7); also
# hutch diff of it. Each run writes into a folder of its own, removed only
# at the end (ext4 without a journal scans recently deleted inodes at each
# create for 60 s: removing the last run's files first would time that).
commit()
{
	local root=${COMMIT_DIR:-$DIR/commit} runs=${RUNS_COMMIT:-7} i t0 t1 t2 up out=$RESULTS/commit.txt
	local mk='mkdir -p tree/small tree/big && cd tree/small && seq 20000 | xargs touch && cd ../big && for i in $(seq 200); do head -c 102400 /dev/urandom > f$i; done'

	mkdir -p "$root"
	export HUTCH_HOME="$root/store"
	: > "$out"
	for i in $(seq "$runs"); do
		mkdir "$root/run$i" "$root/cp$i"
		(cd "$root/run$i" && "$HUTCH" run --box commit -- bash -c "$mk")
		up=$({ find "$HUTCH_HOME/boxes/commit/fs" -path "*/upper/*/run$i/tree" -prune -print 2> /dev/null || true; } | head -1)
		sync
		t0=$(date +%s%N)
		"$HUTCH" diff commit > /dev/null
		t1=$(date +%s%N)
		printf 'diff %d\n' $(((t1 - t0) / 1000)) >> "$out"
		t0=$(date +%s%N)
		cp -a "$up" "$root/cp$i/tree"
		t1=$(date +%s%N)
		# commit makes its files durable; cp -a does not: both columns.
		sync -f "$root/cp$i"
		t2=$(date +%s%N)
		printf 'cp %d\ncp+syncfs %d\n' $(((t1 - t0) / 1000)) $(((t2 - t0) / 1000)) >> "$out"
		t0=$(date +%s%N)
		"$HUTCH" commit commit > /dev/null
		t1=$(date +%s%N)
		printf 'commit %d\n' $(((t1 - t0) / 1000)) >> "$out"
		[ "$(find "$root/run$i/tree" -type f | wc -l)" = 20200 ]
		if [ -n "${HUTCH_OLD:-}" ]; then
			mkdir "$root/old$i"
			(cd "$root/old$i" && "$HUTCH" run --box commit -- bash -c "$mk")
			sync
			t0=$(date +%s%N)
			"$HUTCH_OLD" commit commit > /dev/null
			t1=$(date +%s%N)
			printf 'old-commit %d\n' $(((t1 - t0) / 1000)) >> "$out"
		fi
	done
	echo "commit: 20,000 empty files and 200 of 100 KiB; us, median (range) of $runs runs"
	awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) print k v[k] }' "$out" | while read -r what vals; do
		printf '%s\n' $vals | sort -n | awk -v w="$what" '{ a[NR] = $1 } END {
			printf "%-11s %9.0f (%.0f-%.0f)\n", w, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'
	done | tee "$RESULTS/commit.md"
	chmod -R u+rwX "$root" 2>/dev/null || true
	rm -rf "${root:?}/run"* "${root:?}/cp"* "${root:?}/old"* "$HUTCH_HOME"
}

# --net user: start-up against a box without network and the peers' pair,
# pasta and bwrap, the way people combine them; then TCP throughput.
net()
{
	local bw='bwrap --unshare-all --share-net --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp'
	local cmds=(
		-n 'hutch run --net user' "$HUTCH run --net user -- true"
		-n 'hutch run' "$HUTCH run -- true"
		-n 'pasta + bwrap' "pasta --config-net -- $bw true"
	)

	if ! : 2> /dev/null <> /dev/net/tun; then
		echo "bench: net needs /dev/net/tun usable by $(id -un) (as root: chmod 0666 /dev/net/tun)" >&2
		exit 1
	fi
	printf '%s\n' "$(dpkg-query -W passt bubblewrap iperf3 slirp4netns hyperfine)" "$(uname -r)" \
		> "$RESULTS/net-versions.txt"
	"$HUTCH" run --net user -- true
	# As startup() does: back to back, each run joins the box the run
	# before left idle (a --net user run gets a fresh namespace and pasta
	# all the same); after 1.2 s, each run builds a new box.
	hf net-startup-back-to-back -N --warmup 10 --runs "$RUNS" "${cmds[@]}"
	hf net-startup-new-box -N --warmup 3 --runs "$((RUNS / 2))" --prepare 'sleep 1.2' "${cmds[@]}"
	net_throughput
}

# One client of iperf3 against the server on the host's 127.0.0.1:$port,
# $secs seconds; prints the receiver's Gbit/s. $1 says where the client runs.
NET_SRV=
iperf_client()
{
	local where=$1 port=$2 secs=$3 bw gw out=$RESULTS/net-client.json fifo slirp rc=0
	local c=(timeout 60 iperf3 -J -t "$secs" -p "$port" -c)

	bw='bwrap --unshare-all --share-net --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp'
	case $where in
	native) "${c[@]}" 127.0.0.1 > "$out" || rc=$? ;;
	hutch) "$HUTCH" run --net user --host-port "$port" -- "${c[@]}" 127.0.0.1 > "$out" || rc=$? ;;
	# pasta's defaults forward the host's bound ports (-T auto) to the
	# namespace's loopback and map its gateway address to the host's.
	pasta-lo) pasta --config-net -- $bw "${c[@]}" 127.0.0.1 > "$out" || rc=$? ;;
	pasta-gw)
		gw=$(pasta --config-net -- ip -4 route show default | awk '{ print $3; exit }')
		pasta --config-net -- $bw "${c[@]}" "$gw" > "$out" || rc=$?
		;;
	slirp*)
		# The client waits (30 s at most) until slirp4netns has configured
		# tap0; slirp4netns reaches the host's loopback at 10.0.2.2.
		fifo=$RESULTS/net-ready
		rm -f "$fifo"
		mkfifo "$fifo"
		unshare -Urn bash -c 'read -r -n 1 -t 30 _ < "$1" && exec "${@:2}"' _ "$fifo" \
			"${c[@]}" 10.0.2.2 > "$out" &
		local ns=$!
		if [ "$where" = slirp-1500 ]; then
			slirp4netns --configure --ready-fd=3 "$ns" tap0 3> "$fifo" > /dev/null 2>&1 &
		else
			slirp4netns --configure --mtu=65520 --ready-fd=3 "$ns" tap0 3> "$fifo" \
				> /dev/null 2>&1 &
		fi
		slirp=$!
		wait "$ns" || rc=$?
		kill "$slirp" 2> /dev/null || true
		wait "$slirp" 2> /dev/null || true
		rm -f "$fifo"
		;;
	esac
	if [ "$rc" -ne 0 ]; then
		echo "bench: the iperf3 client ($where) failed, status $rc" >&2
		exit 1
	fi
	jq '.end.sum_received.bits_per_second / 1e9' "$out"
}

# TCP from each client to one iperf3 server on the host's 127.0.0.1, at a
# free port; NET_REPS rounds (default 7) of NET_SECS seconds (default 5)
# each, the clients taking turns within a round.
net_throughput()
{
	local reps=${NET_REPS:-7} secs=${NET_SECS:-5} port='' p i w gbps out=$RESULTS/net-throughput.txt
	local where=(native hutch pasta-lo pasta-gw slirp-65520 slirp-1500)

	for p in $(shuf -i 20000-60000 -n 20); do
		ss -Htln "sport = :$p" | grep -q . && continue
		iperf3 -s -B 127.0.0.1 -p "$p" > /dev/null 2>&1 &
		NET_SRV=$!
		trap 'kill "$NET_SRV" 2> /dev/null || true' EXIT
		for i in $(seq 50); do
			ss -Htln "sport = :$p" | grep -q . && break
			kill -0 "$NET_SRV" 2> /dev/null || break
			sleep 0.05
		done
		if ss -Htln "sport = :$p" | grep -q .; then
			port=$p
			break
		fi
		kill "$NET_SRV" 2> /dev/null || true
		wait "$NET_SRV" 2> /dev/null || true
	done
	if [ -z "$port" ]; then
		echo "bench: no iperf3 server could listen on 127.0.0.1" >&2
		exit 1
	fi
	: > "$out"
	for i in $(seq "$reps"); do
		for w in "${where[@]}"; do
			gbps=$(iperf_client "$w" "$port" "$secs")
			printf '%s %s\n' "$w" "$gbps" >> "$out"
		done
	done
	kill "$NET_SRV"
	wait "$NET_SRV" 2> /dev/null || true
	rm -f "$RESULTS/net-client.json"
	echo "net: TCP to iperf3 on the host's 127.0.0.1:$port, $secs s a run; Gbit/s, median (range) of $reps"
	for w in "${where[@]}"; do
		awk -v w="$w" '$1 == w { print $2 }' "$out" | sort -g | awk -v w="$w" '{ a[NR] = $1 } END {
			printf "%-12s %6.2f (%.2f-%.2f)\n", w, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'
	done | tee "$RESULTS/net-throughput.md"
	jq -Rn 'reduce (inputs | split(" ")) as $r ({}; .[$r[0]] += [$r[1] | tonumber])' < "$out" \
		> "$RESULTS/net-throughput.json"
}

case $WHAT in
startup) startup ;;
net) net ;;
commit) commit ;;
files) files ;;
build) build ;;
notify) notify ;;
all)
	startup
	files
	build
	notify
	commit
	net
	;;
*)
	echo "bench: unknown group '$WHAT' (startup, files, build, notify, commit, net, all)" >&2
	exit 2
	;;
esac

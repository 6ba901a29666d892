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

case $WHAT in
startup) startup ;;
files) files ;;
build) build ;;
notify) notify ;;
all)
	startup
	files
	build
	notify
	;;
*)
	echo "bench: unknown group '$WHAT' (startup, files, build, notify, all)" >&2
	exit 2
	;;
esac

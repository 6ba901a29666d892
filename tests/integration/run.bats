#!/usr/bin/env bats
# hutch run: a program in a box sees the host's files, but everything it
# writes lands in the box's store; the process environment is its own.

load helpers

setup()
{
	hutch_setup
	HOST_FILES=()
}

teardown()
{
	local f

	for f in "${HOST_FILES[@]}"; do
		rm -f "$f"
	done
	hutch_teardown
}

# --- the filesystem --------------------------------------------------------

@test "box A and box B each read back their own document.txt and the host folder gets none" {
	require_userns
	in_box A sh -c 'echo "from A" > document.txt'
	in_box B sh -c 'echo "from B" > document.txt'

	hrun run --box A -- cat document.txt
	expect_status 0
	expect_output "from A"
	hrun run --box B -- cat document.txt
	expect_status 0
	expect_output "from B"
	expect_no_file "$WORK/document.txt"
}

@test "a box keeps its copy of a file it wrote under boxes/NAME/fs/LAYER/upper in the store" {
	require_userns
	in_box A sh -c 'echo "from A" > document.txt'

	copy=$(store_path A "$WORK/document.txt")
	if [ -z "$copy" ]; then
		echo "box A has no fs/LAYER/upper for any parent of $WORK; the store holds:"
		find "$HUTCH_HOME/boxes/A" -maxdepth 3 2>&1
		return 1
	fi
	run cat "$copy"
	expect_output "from A"
	run --separate-stderr find "$HUTCH_HOME/boxes/A/fs" -name document.txt
	expect_output "$copy"
}

@test "a program in a box reads the host's files, including host changes made after earlier runs" {
	require_userns
	echo v1 > shared.txt

	hrun run --box A -- cat shared.txt
	expect_status 0
	expect_output v1
	echo v2 > shared.txt
	hrun run --box A -- cat shared.txt
	expect_output v2
}

@test "a host file changed in a box keeps its content and mode on the host" {
	require_userns
	echo original > doc.txt
	chmod 0644 doc.txt
	in_box A sh -c 'echo changed >> doc.txt && chmod 0600 doc.txt'

	hrun run --box A -- cat doc.txt
	expect_output "original
changed"
	hrun run --box A -- stat -c %a doc.txt
	expect_output 600
	run cat doc.txt
	expect_output original
	run stat -c %a doc.txt
	expect_output 644
}

@test "a host file deleted in a box is gone in that box but stays on the host" {
	require_userns
	echo keep > notes.txt
	in_box A rm notes.txt

	hrun run --box A -- ls -A
	expect_status 0
	expect_output ""
	hrun run --box A -- cat notes.txt
	[ "$status" -ne 0 ]
	run cat notes.txt
	expect_output keep
	# The deletion is recorded as an overlay whiteout: a 0/0 character device.
	whiteout=$(store_path A "$WORK/notes.txt")
	[ -c "$whiteout" ]
	run stat -c %t:%T "$whiteout"
	expect_output 0:0
}

@test "a host file renamed in a box has its new name in that box and its old name on the host" {
	require_userns
	echo content > old.txt
	in_box A mv old.txt new.txt

	hrun run --box A -- ls -A
	expect_output new.txt
	hrun run --box A -- cat new.txt
	expect_output content
	run cat old.txt
	expect_output content
	expect_no_file "$WORK/new.txt"
}

@test "a host directory renamed in a box is renamed in that box only" {
	require_userns
	mkdir -p olddir/sub
	echo inside > olddir/sub/file
	in_box A mv olddir newdir

	hrun run --box A -- ls -A
	expect_output newdir
	hrun run --box A -- cat newdir/sub/file
	expect_output inside
	run cat olddir/sub/file
	expect_output inside
	expect_no_file "$WORK/newdir"
}

@test "a box keeps what it wrote across runs" {
	require_userns
	in_box A sh -c 'echo first > log.txt'
	in_box A sh -c 'echo second >> log.txt'

	hrun run --box A -- cat log.txt
	expect_status 0
	expect_output "first
second"
	expect_no_file "$WORK/log.txt"
}

@test "runs of one box back to back each see all that the run before wrote" {
	require_userns
	# /var/tmp is a layer of its own, on top of /var's.
	local mark=/var/tmp/${TEST_ROOT##*/}
	for i in $(seq 12); do
		"$HUTCH" run --box A -- sh -c "echo $i >> log.txt; mkdir -p d$i; : > $mark.$i" ||
			return 1
	done

	hrun run --box A -- sh -c "echo \$(cat log.txt); ls -d d* | wc -l; ls $mark.* | wc -l"
	expect_status 0
	expect_output "1 2 3 4 5 6 7 8 9 10 11 12
12
12"
	expect_no_file "$WORK/log.txt"
	expect_no_file "$mark.1"
}

@test "back-to-back runs never mount a box's layers while the last run's are still mounted" {
	require_userns
	# The kernel warns when an overlay's upper or work dir is in use by another mount.
	dmesg > /dev/null 2>&1 || skip "the kernel log is unreadable here (kernel.dmesg_restrict), and it is what shows a layer mounted twice"
	local since
	since=$(dmesg | kernel_log_time | tail -n 1)
	# Each run another policy: none may join the box the run before left idle.
	for i in $(seq 20); do
		"$HUTCH" run --box A --hide "$WORK/h$i" -- true || return 1
	done

	local said
	said=$(dmesg | awk -v since="${since:-0}" '
		match($0, /^\[ *[0-9]+\.[0-9]+\]/) {
			t = substr($0, RSTART + 1, RLENGTH - 2) + 0
			if (t > since && /overlayfs: .*in-use/) print
		}')
	[ -z "$said" ] || { echo "the kernel said: $said"; return 1; }
}

@test "a run right after another joins its idle box, and sees the host as it is now" {
	require_userns
	echo one > seen.txt
	# The box looks for new.txt too: overlayfs caches that it is missing.
	hrun run --box A -- sh -c 'cat seen.txt; test -e new.txt || echo no-new'
	expect_output "one
no-new"
	echo two > new.txt
	rm seen.txt

	hrun run -v --box A -- sh -c 'cat new.txt; test ! -e seen.txt && echo gone'
	expect_status 0
	expect_output "two
gone"
	[[ "$stderr" == *"was up: this run joined it"* ]] || { echo "stderr: $stderr"; return 1; }
}

@test "a run that joins an idle box finds nothing of the run before but its files" {
	require_userns
	# The box's user owns its /dev and /dev/shm: a program may change them.
	hrun run --box A -- sh -c 'ipcmk -M 4096 > /dev/null && echo x > /dev/shm/left &&
		echo x > /dev/left && rm /dev/stdin && ln -s /etc /dev/stdin &&
		chmod 0500 /dev/shm && chmod 0555 /dev &&
		readlink /proc/self/ns/net /proc/self/ns/ipc && echo file > f'
	expect_status 0
	local before=$output

	hrun run -v --box A -- sh -c 'ipcs -m | grep -c 0x; ls -A /dev/shm | wc -l
		readlink /proc/self/ns/net /proc/self/ns/ipc; cat f; readlink /dev/stdin
		test ! -e /dev/left && echo no-left; stat -c %a /dev /dev/shm; echo y > /dev/shm/y && echo shm'
	expect_status 0
	[[ "$stderr" == *"this run joined it"* ]] || { echo "stderr: $stderr"; return 1; }
	[ "${lines[0]}" = 0 ] && [ "${lines[1]}" = 0 ] || { echo "got: $output"; return 1; }
	# Namespaces of their own for the new run's programs, the file kept.
	[ "${lines[2]}" != "$(sed -n 1p <<< "$before")" ] && [ "${lines[3]}" != "$(sed -n 2p <<< "$before")" ]
	[ "${lines[4]}" = file ] && [ "${lines[5]}" = /proc/self/fd/0 ] && [ "${lines[6]}" = no-left ]
	[ "${lines[7]}" = 755 ] && [ "${lines[8]}" = 1777 ] && [ "${lines[9]}" = shm ]
}

@test "a box with --root, --read-only, --direct or --deny-exec does not wait for another run" {
	require_userns
	mkdir ro di
	for opts in "--root" "--read-only $WORK/ro" "--direct $WORK/di" "--deny-exec nothing-here"; do
		# shellcheck disable=SC2086 # opts is two words on purpose
		"$HUTCH" run --box A $opts -- true || return 1
		# shellcheck disable=SC2086
		hrun run -v --box A $opts -- true
		expect_status 0
		[[ "$stderr" != *"joined it"* ]] || { echo "$opts: $stderr"; return 1; }
	done
}

@test "without the default syscall filter an idle box does not wait for another run" {
	require_userns
	for mode in off strict; do
		timeout -s KILL 60 "$HUTCH" run --box A --seccomp "$mode" -- true || return 1
		hrun run -v --box A --seccomp "$mode" -- true
		expect_status 0
		[[ "$stderr" != *"joined it"* ]] || { echo "--seccomp $mode: $stderr"; return 1; }
	done
}

@test "a run with another policy or --root does not join the idle box another left" {
	require_userns
	echo secret > hidden.txt
	in_box A true

	hrun run -v --box A --hide "$WORK/hidden.txt" -- sh -c 'cat hidden.txt || echo hidden'
	expect_output hidden
	[[ "$stderr" != *"joined it"* ]] || { echo "stderr: $stderr"; return 1; }
	hrun run -v --box A --root -- id -u
	expect_output 0
	[[ "$stderr" != *"joined it"* ]] || { echo "stderr: $stderr"; return 1; }
}

@test "two programs running in one box at the same time share its files" {
	require_userns
	start_bg "$TEST_ROOT/out" "$HUTCH" run --box A -- sh -c 'echo early > shared.txt; echo ready
		while [ ! -e done.txt ]; do sleep 0.1; done; cat done.txt'
	pid=$BG_PID
	wait_for grep -q ready "$TEST_ROOT/out"

	hrun run --box A -- sh -c 'cat shared.txt && echo late > done.txt'
	expect_status 0
	expect_output early
	wait_for has_exited "$pid"
	status=0
	wait "$pid" || status=$?
	expect_status 0
	run cat "$TEST_ROOT/out"
	expect_output "ready
late"
	expect_no_file "$WORK/shared.txt"
	expect_no_file "$WORK/done.txt"
}

@test "a second run joins a running box and sees the first's processes" {
	require_userns
	start_bg "$TEST_ROOT/out" "$HUTCH" run --box A -- sh -c 'echo ready; exec sleep 30'
	pid=$BG_PID
	wait_for grep -q ready "$TEST_ROOT/out"

	# One pid namespace: the first program is there, as PID 2 under the box's PID 1.
	hrun run --box A -- sh -c 'for p in /proc/[0-9]*; do cat $p/comm; done'
	expect_status 0
	expect_contains "$output" sleep
	hrun list --json
	[ "$(echo "$output" | jq -r '.[] | select(.name == "A") | .state')" = running ]
	kill -TERM "$pid"
	wait "$pid" || true
}

@test "a run with another policy does not join a running box: it says so, and the box goes on" {
	require_userns
	echo secret > hidden.txt
	start_bg "$TEST_ROOT/out" "$HUTCH" run --box A -- sh -c 'echo ready
		while [ ! -e done.txt ]; do sleep 0.05; done; echo first-done'
	pid=$BG_PID
	wait_for grep -q ready "$TEST_ROOT/out"

	hrun run --box A --hide "$WORK/hidden.txt" -- cat hidden.txt
	expect_status 125
	expect_output ""
	[ "$stderr" = "hutch: box 'A' is running with another policy (its --hide, --read-only, --direct, --deny-exec, --seccomp or limits are not this run's); wait for its program to end, or use another --box" ] ||
		{ echo "stderr: $stderr"; return 1; }
	hrun run -v --box A -- sh -c 'touch done.txt'
	expect_status 0
	expect_contains "$stderr" "box 'A' was up: this run joined it"
	wait_for has_exited "$pid"
	status=0
	wait "$pid" || status=$?
	expect_status 0
	run cat "$TEST_ROOT/out"
	expect_output $'ready\nfirst-done'
}

@test "a joined run goes on after the run that started the box has ended" {
	require_userns
	start_bg "$TEST_ROOT/first" "$HUTCH" run --box A -- sh -c 'echo ready; sleep 1; echo first-done'
	first=$BG_PID
	wait_for grep -q ready "$TEST_ROOT/first"
	start_bg "$TEST_ROOT/second" "$HUTCH" run --box A -- sh -c 'sleep 3; echo second-done; exit 7'
	second=$BG_PID
	wait_for has_exited "$first"
	status=0
	wait "$first" || status=$?
	expect_status 0
	# The box still runs for the second program, then stops with it.
	kill -0 "$second"
	wait_for has_exited "$second"
	status=0
	wait "$second" || status=$?
	expect_status 7
	run cat "$TEST_ROOT/second"
	expect_output second-done
	hrun list --json
	[ "$(echo "$output" | jq -r '.[] | select(.name == "A") | .state')" = idle ]
}

@test "two boxes do not see each other's files" {
	require_userns
	in_box A sh -c 'echo a > only-in-a.txt'
	in_box B sh -c 'echo b > only-in-b.txt'

	hrun run --box A -- ls -A
	expect_output only-in-a.txt
	hrun run --box B -- ls -A
	expect_output only-in-b.txt
}

@test "without --box a program runs in the box named default" {
	require_userns
	hrun run -- sh -c 'echo x > f.txt'
	expect_status 0

	[ -d "$HUTCH_HOME/boxes/default" ]
	hrun run --box default -- cat f.txt
	expect_output x
	hrun run --box other -- cat f.txt
	[ "$status" -ne 0 ]
}

@test "a box name of 64 characters with dots, dashes and underscores is accepted" {
	require_userns
	name=my.box_v2-$(printf 'x%.0s' $(seq 54))
	[ "${#name}" -eq 64 ]

	hrun run --box "$name" -- sh -c 'echo x > f.txt'
	expect_status 0
	[ -d "$HUTCH_HOME/boxes/$name" ]
}

@test "the store defaults to \$XDG_DATA_HOME/hutch" {
	require_userns
	unset HUTCH_HOME
	export XDG_DATA_HOME="$TEST_ROOT/xdg"

	hrun run --box A -- sh -c 'echo x > f.txt'
	expect_status 0
	[ -d "$XDG_DATA_HOME/hutch/boxes/A" ]
}

@test "without HUTCH_HOME or XDG_DATA_HOME the store is ~/.local/share/hutch" {
	require_userns
	unset HUTCH_HOME XDG_DATA_HOME
	export HOME="$TEST_ROOT/fakehome"
	mkdir "$HOME"

	hrun run --box "hutch-test-$$" -- sh -c 'echo x > f.txt'
	expect_status 0
	[ -d "$HOME/.local/share/hutch/boxes/hutch-test-$$" ]
}

@test "the store is an empty folder inside a box" {
	require_userns
	in_box A sh -c 'echo x > f.txt'
	[ -d "$HUTCH_HOME/boxes/A" ]

	hrun run --box A -- ls -A "$HUTCH_HOME"
	if [ "$status" -eq 0 ]; then
		expect_output ""
	fi
	hrun run --box A -- ls -A "$HUTCH_HOME/boxes/A"
	[ "$status" -ne 0 ]
}

@test "a box's files show up only at their own path inside the box, never through the store" {
	require_userns
	name=leak-probe-$$-$RANDOM
	in_box A touch "$name"

	# Permission errors from other users' folders do not matter here.
	run --separate-stderr "$HUTCH" run --box A -- find "$TEST_ROOT" "$HOME" -name "$name"
	expect_output "$WORK/$name"
	run --separate-stderr "$HUTCH" run --box A -- find "$TEST_ROOT" -name upper
	expect_output ""
}

@test "a box's /tmp is the host's, copy-on-write: host files show, the box's persist in its store" {
	require_userns
	host_marker=$(mktemp /tmp/hutch-host-marker.XXXXXX)
	HOST_FILES+=("$host_marker")
	name=hutch-box-file-$$-$RANDOM
	HOST_FILES+=("/tmp/$name")

	hrun run --box A -- test -e "$host_marker"
	expect_status 0
	in_box A sh -c "echo kept > /tmp/$name"
	hrun run --box A -- cat "/tmp/$name"
	expect_output kept
	expect_no_file "/tmp/$name"
	run cat "$HUTCH_HOME/boxes/A/fs/tmp/upper/$name"
	expect_output kept
	hrun run --box B -- test -e "/tmp/$name"
	expect_status 1
}

@test "a box has a minimal /dev without the host's devices" {
	require_userns
	hrun run -- sh -c '
		for d in null zero full random urandom tty ptmx pts shm; do
			[ -e /dev/$d ] || echo "missing /dev/$d"
		done
		find /dev -type b
		ls -d /dev/kvm /dev/mem /dev/vda /dev/sda 2>/dev/null
		head -c 4 /dev/zero > /dev/null && head -c 4 /dev/urandom | wc -c'
	expect_status 0
	expect_output 4
}

@test "/sys is read-only in a box" {
	require_userns
	hrun run -- awk '$5 == "/sys" { split($6, o, ","); print o[1] }' /proc/self/mountinfo
	expect_status 0
	[ -n "$output" ]
	for opt in "${lines[@]}"; do
		[ "$opt" = ro ] || {
			echo "/sys is mounted $opt"
			return 1
		}
	done
}

# --- processes -------------------------------------------------------------

@test "the program's exit statuses 0, 1 and 42 pass through" {
	require_userns
	for code in 0 1 42; do
		hrun run -- sh -c "exit $code"
		expect_status "$code"
	done
}

@test "a command that does not exist gives status 127" {
	require_userns
	# run -127: bats warns about 127 unless the test says it expects it.
	run -127 --separate-stderr "$HUTCH" run -- hutch-no-such-command-$$
	run -127 --separate-stderr "$HUTCH" run -- "$WORK/no-such-file"
}

@test "a file that is not executable gives status 126" {
	require_userns
	printf 'echo hello\n' > not-executable.sh
	chmod 0644 not-executable.sh

	hrun run -- ./not-executable.sh
	expect_status 126
}

@test "a program killed by signal N gives status 128+N" {
	require_userns
	hrun run -- sh -c 'kill -TERM $$'
	expect_status 143
	hrun run -- sh -c 'kill -KILL $$'
	expect_status 137
}

@test "SIGTERM sent to hutch reaches the program" {
	require_userns
	start_bg "$TEST_ROOT/out" "$HUTCH" run -- sh -c 'trap "echo got-TERM; exit 7" TERM
		echo ready; while :; do sleep 0.1; done'
	pid=$BG_PID
	wait_for grep -q ready "$TEST_ROOT/out"

	kill -TERM "$pid"
	# hutch must exit soon; if it ignored the signal, teardown kills it.
	wait_for has_exited "$pid"
	status=0
	wait "$pid" || status=$?
	expect_status 7
	run grep -c -e '^ready$' -e '^got-TERM$' "$TEST_ROOT/out"
	expect_output 2
}

@test "stdin piped into a box reaches the program: echo hi | hutch run -- tr a-z A-Z prints HI" {
	require_userns
	run bash -c 'echo hi | "$1" run -- tr a-z A-Z' _ "$HUTCH"
	expect_status 0
	expect_output HI
}

@test "a megabyte piped through a box in both directions arrives intact" {
	require_userns
	run bash -c 'seq 150000 | "$1" run -- cat | md5sum' _ "$HUTCH"
	expect_status 0
	expect_output "$(seq 150000 | md5sum)"
}

@test "the program's stdout and stderr stay separate" {
	require_userns
	hrun run -- sh -c 'echo to-out; echo to-err >&2'
	expect_status 0
	expect_output to-out
	[ "$stderr" = to-err ]
}

@test "the program keeps the caller's working directory" {
	require_userns
	mkdir -p deep/er
	cd deep/er

	hrun run -- pwd
	expect_output "$WORK/deep/er"
}

@test "the program keeps the caller's environment" {
	require_userns
	export HUTCH_TEST_VAR='a value with  spaces'

	hrun run -- sh -c 'printf "%s|%s|%s" "$HUTCH_TEST_VAR" "$PATH" "$HOME"'
	expect_output "$HUTCH_TEST_VAR|$PATH|$HOME"
}

@test "the program keeps the caller's uid and gid by default" {
	require_userns
	hrun run -- sh -c 'echo "$(id -u) $(id -g)"'
	expect_status 0
	expect_output "$(id -u) $(id -g)"
}

@test "--root makes the program uid 0 inside the box" {
	require_userns
	hrun run --root -- id -u
	expect_status 0
	expect_output 0
}

@test "options after the command belong to the command" {
	require_userns
	hrun run --box A echo --root --box B
	expect_status 0
	expect_output "--root --box B"
	expect_no_file "$HUTCH_HOME/boxes/B"
}

@test "no_new_privs is set in a box" {
	require_userns
	hrun run -- awk '/^NoNewPrivs:/ { print $2 }' /proc/self/status
	expect_status 0
	expect_output 1
}

@test "PID 1 of the box reaps orphaned processes" {
	require_userns
	cat > orphan.sh <<'EOF'
# The inner shell exits at once, orphaning its background sleep.
sh -c 'sleep 0.3 & echo $! > /tmp/orphan'
orphan=$(cat /tmp/orphan)
echo "parent=$(awk '{ print $4 }' /proc/$orphan/stat)"
sleep 1
echo "zombies=$(grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status 2>/dev/null)"
EOF
	hrun run -- sh orphan.sh
	expect_status 0
	expect_output "parent=1
zombies="
}

@test "/proc in a box shows only the box's processes" {
	require_userns
	marker="sleep 1234.$$"
	start_bg /dev/null $marker

	hrun run -- sh -c 'for d in /proc/[0-9]*; do tr "\0" " " < $d/cmdline; echo; done'
	expect_status 0
	case "$output" in
	*"$marker"*)
		echo "the box sees the host process '$marker':"
		echo "$output"
		return 1
		;;
	esac
	[ "${#lines[@]}" -le 5 ] || {
		echo "expected at most 5 processes in the box, got:"
		echo "$output"
		return 1
	}
}

# --- network ---------------------------------------------------------------

@test "a box's network has only the loopback interface" {
	require_userns
	require_helper netprobe
	hrun run -- "$HUTCH_HELPERS/netprobe" interfaces
	expect_status 0
	expect_output lo
}

@test "TCP over loopback works inside a box" {
	require_userns
	require_helper netprobe
	hrun run -- "$HUTCH_HELPERS/netprobe" loopback
	expect_output "loopback ok"
	expect_status 0
}

@test "a box cannot reach any address outside it" {
	require_userns
	require_helper netprobe
	hrun run -- "$HUTCH_HELPERS/netprobe" connect 192.0.2.1 80
	expect_output ENETUNREACH
	expect_status 1
}

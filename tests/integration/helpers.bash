# Common setup for hutch's integration tests; every .bats file loads it.
#
# Environment (tests/run-all sets these; the defaults suit running bats by hand
# from the repository root):
#   HUTCH          the hutch binary under test     (default build/hutch)
#   HUTCH_HELPERS  folder of the probes in tests/helpers (default build/tests/helpers)
#
# Each test gets a fresh folder under $TMPDIR (default /var/tmp) holding its
# own store ($HUTCH_HOME) and work folder ($WORK, the test's cwd). It may be
# under /tmp: a box sees the host's /tmp (copy-on-write) unless a test asks
# for --private-tmp, which must then run from a folder elsewhere.

bats_require_minimum_version 1.5.0

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
HUTCH=${HUTCH:-$REPO_ROOT/build/hutch}
HUTCH_HELPERS=${HUTCH_HELPERS:-$REPO_ROOT/build/tests/helpers}

hutch_setup()
{
	[ -x "$HUTCH" ] || {
		echo "no hutch binary at '$HUTCH' (run make, or set HUTCH)" >&2
		return 1
	}
	TEST_ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/hutch-test.XXXXXX")
	export HUTCH_HOME="$TEST_ROOT/home"
	WORK="$TEST_ROOT/work"
	mkdir "$WORK"
	cd "$WORK" || return
	BG_PIDS=()
}

hutch_teardown()
{
	local pid box

	for pid in "${BG_PIDS[@]}"; do
		kill -KILL -- "-$pid" "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	cd /
	# A box stays up idle for a second after its run and writes in its
	# folder as it ends (slowly enough under emulation to race rm -rf):
	# hutch rm ends an idle box first.
	if [ -n "${HUTCH_HOME:-}" ] && [ -d "$HUTCH_HOME/boxes" ]; then
		for box in "$HUTCH_HOME"/boxes/*/; do
			[ -d "$box" ] || continue
			"$HUTCH" rm "$(basename "$box")" > /dev/null 2>&1 || true
		done
	fi
	if [ -n "${TEST_ROOT:-}" ] && [ -d "$TEST_ROOT" ]; then
		# overlayfs leaves its work dirs at mode 0.
		chmod -R u+rwX "$TEST_ROOT" 2>/dev/null || true
		rm -rf "$TEST_ROOT"
	fi
}

# Skip, saying why, when this machine cannot create a user namespace: every
# box needs one, so such a test could only pass vacuously.
# tun_open_to_all: /dev/net/tun mode 0666 as Debian's udev makes it (this
# machine has no udev: DESIGN-NOTES section 5); root only, for pasta.
tun_open_to_all()
{
	if [ "$(id -u)" -eq 0 ] && [ -c /dev/net/tun ]; then
		chmod 0666 /dev/net/tun
	fi
}

require_userns()
{
	unshare -Ur true 2>/dev/null ||
		skip "unprivileged user namespaces are unavailable here (unshare -Ur true failed)"
}

require_helper()
{
	[ -x "$HUTCH_HELPERS/$1" ] || {
		echo "test probe '$HUTCH_HELPERS/$1' is missing (run make helpers)" >&2
		return 1
	}
}

# hutch ARGS...: the binary under test, so tests read like the command line.
hutch()
{
	"$HUTCH" "$@"
}

# hrun ARGS...: run `hutch ARGS`; sets $status, $output (stdout only),
# $stderr, $lines and $stderr_lines.
hrun()
{
	run --separate-stderr "$HUTCH" "$@"
}

# in_box BOX COMMAND...: run COMMAND in box BOX and fail the test unless it
# exits 0 (for setup steps whose output does not matter).
in_box()
{
	local box=$1
	shift
	"$HUTCH" run --box "$box" -- "$@" || {
		echo "'hutch run --box $box -- $*' failed with status $?" >&2
		return 1
	}
}

expect_status()
{
	[ "$status" -eq "$1" ] && return 0
	echo "expected exit status $1, got $status"
	echo "stdout: $output"
	echo "stderr: ${stderr:-}"
	return 1
}

expect_output()
{
	[ "$output" = "$1" ] && return 0
	printf 'expected stdout:\n%s\ngot:\n%s\n' "$1" "$output"
	echo "status: $status; stderr: ${stderr:-}"
	return 1
}

# expect_contains HAYSTACK NEEDLE
expect_contains()
{
	case "$1" in *"$2"*) return 0 ;; esac
	printf 'expected to find: %s\nin: %s\n' "$2" "$1"
	return 1
}

# expect_no_file PATH: PATH does not exist on the host.
expect_no_file()
{
	[ ! -e "$1" ] && [ ! -L "$1" ] && return 0
	echo "expected no '$1' on the host, but it exists:"
	ls -la "$1"
	return 1
}

# expect_no_box_created: the store holds no box (bad input must create none).
expect_no_box_created()
{
	local left

	[ -d "$HUTCH_HOME/boxes" ] || return 0
	left=$(ls -A "$HUTCH_HOME/boxes")
	[ -z "$left" ] && return 0
	echo "expected no box directory in '$HUTCH_HOME/boxes', found: $left"
	return 1
}

# expect_one_error: the last hrun failed the way hutch fails on bad input:
# status 125, nothing on stdout, exactly one line on stderr starting "hutch: ".
expect_one_error()
{
	expect_status 125 || return 1
	if [ -n "$output" ]; then
		echo "expected no stdout, got: $output"
		return 1
	fi
	if [ "${#stderr_lines[@]}" -ne 1 ] || [[ "$stderr" != "hutch: "* ]]; then
		echo "expected one stderr line starting 'hutch: ', got:"
		printf '%s\n' "$stderr"
		return 1
	fi
}

# expect_refused: expect_one_error, and no box directory created.
expect_refused()
{
	expect_one_error || return 1
	expect_no_box_created
}

# layer_name PATH: the store's name for the layer over host dir PATH
# ("/var/tmp" -> "var%2Ftmp").
layer_name()
{
	local p=${1#/}

	p=${p//%/%25}
	printf '%s' "${p//\//%2F}"
}

# store_path BOX HOSTPATH: where box BOX keeps its copy of HOSTPATH, i.e.
# $HUTCH_HOME/boxes/BOX/fs/LAYER/upper/REST for the deepest host dir LAYER
# that box has a layer for. Prints nothing if the box has no layer for it.
store_path()
{
	local box=$1 path=$2 prefix=$2 layer

	while [ -n "$prefix" ] && [ "$prefix" != / ]; do
		prefix=$(dirname "$prefix")
		[ "$prefix" = / ] && break
		layer="$HUTCH_HOME/boxes/$box/fs/$(layer_name "$prefix")/upper"
		if [ -d "$layer" ]; then
			printf '%s%s' "$layer" "${path#"$prefix"}"
			return 0
		fi
	done
}

# start_bg OUTFILE COMMAND...: start COMMAND in the background in a process
# group of its own, stdout and stderr to OUTFILE; $BG_PID is its pid, and
# teardown kills the group. fd 3 is closed: bats waits for whoever holds it.
start_bg()
{
	local out=$1
	shift
	setsid "$@" > "$out" 2>&1 3>&- &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# has_exited PID: child PID has finished (perhaps not yet reaped by wait).
has_exited()
{
	! kill -0 "$1" 2>/dev/null || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# wait_for COMMAND...: poll COMMAND every 0.1 s for up to 10 s.
wait_for()
{
	local i

	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*"
	return 1
}

# kernel_log_time: the timestamps (seconds since boot) of the dmesg lines on stdin.
kernel_log_time()
{
	sed -nE 's/^\[ *([0-9]+\.[0-9]+)\].*/\1/p'
}

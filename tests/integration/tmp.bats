#!/usr/bin/env bats
# /tmp in a box: the host's, copy-on-write like every other host directory
# (its layer is fs/tmp in the store), or with --private-tmp (profile key
# private-tmp) an empty one of the box's own; the credentials kept in /tmp
# are hidden by default.

load helpers

setup()
{
	require_userns
	hutch_setup
	HOST_PATHS=()
}

teardown()
{
	local p

	for p in "${HOST_PATHS[@]}"; do
		chmod -R u+rwX "$p" 2> /dev/null || true
		rm -rf "$p"
	done
	hutch_teardown
}

# host_tmpdir: a fresh folder in the host's /tmp, removed by teardown; $TDIR.
host_tmpdir()
{
	TDIR=$(mktemp -d /tmp/hutch-tmp-test.XXXXXX)
	HOST_PATHS+=("$TDIR")
}

@test "a program started from a folder under /tmp runs there and its writes land in the box, not on the host" {
	host_tmpdir
	echo host > "$TDIR/in.txt"
	printf '#!/bin/sh\necho built > out.txt\necho more >> in.txt\ncat in.txt\n' > "$TDIR/build.sh"
	chmod +x "$TDIR/build.sh"
	cd "$TDIR"

	hrun run --box A -- ./build.sh
	expect_status 0
	expect_output "host
more"
	[ "$(cat "$TDIR/in.txt")" = host ]
	expect_no_file "$TDIR/out.txt"
	run cat "$HUTCH_HOME/boxes/A/fs/tmp/upper/${TDIR#/tmp/}/out.txt"
	expect_output built
	hrun run --box A -- cat out.txt
	expect_output built
	hrun run --box B -- test -e out.txt
	expect_status 1
}

@test "the box's /tmp keeps the host's mode, world-writable and sticky" {
	hrun run -- stat -c %a /tmp /var/tmp
	expect_status 0
	expect_output "$(stat -c %a /tmp /var/tmp)"
}

@test "diff shows the box's /tmp changes under /tmp and commit puts them on the host" {
	host_tmpdir
	echo old > "$TDIR/kept.txt"
	in_box A sh -c "echo new > '$TDIR/kept.txt'; echo made > '$TDIR/made.txt'"

	hrun diff A
	expect_status 0
	expect_contains "$output" "M file 4 $TDIR/kept.txt"
	expect_contains "$output" "A file 5 $TDIR/made.txt"
	hrun commit A "$TDIR"
	expect_status 0
	[ "$(cat "$TDIR/kept.txt")" = new ]
	[ "$(cat "$TDIR/made.txt")" = made ]
	hrun diff A
	expect_output ""
}

@test "--private-tmp gives the box an empty /tmp of its own: the host's is hidden and the box's persists" {
	host_tmpdir
	name=hutch-private-$$-$RANDOM
	HOST_PATHS+=("/tmp/$name")
	cd /

	hrun run --box A --private-tmp -- test -e "$TDIR"
	expect_status 1
	in_box A sh -c "echo kept > /tmp/$name" # without the option: the host's /tmp
	hrun run --box A --private-tmp -- sh -c "echo own > /tmp/$name; ls -A /tmp"
	expect_status 0
	expect_output "$name"
	hrun run --box A --private-tmp -- cat "/tmp/$name"
	expect_output own
	run cat "$HUTCH_HOME/boxes/A/tmp/$name"
	expect_output own
	hrun run --box A -- cat "/tmp/$name"
	expect_output kept
	expect_no_file "/tmp/$name"
}

@test "profile key private-tmp = true gives a private /tmp, false the host's" {
	host_tmpdir
	mkdir -p "$TEST_ROOT/config/hutch/profiles"
	export XDG_CONFIG_HOME="$TEST_ROOT/config"
	printf '[box]\nprivate-tmp = true\n' > "$XDG_CONFIG_HOME/hutch/profiles/own.conf"
	printf '[box]\nprivate-tmp = false\n' > "$XDG_CONFIG_HOME/hutch/profiles/host.conf"
	cd /

	hrun run -v --profile own -- test -e "$TDIR"
	expect_status 1
	expect_contains "$stderr" "/tmp: the box's own (--private-tmp)"
	hrun run -v --profile host -- test -d "$TDIR"
	expect_status 0
	expect_contains "$stderr" "/tmp: the host's, copy-on-write"
}

@test "bad private-tmp values are refused with one line and change nothing" {
	mkdir -p "$TEST_ROOT/config/hutch/profiles"
	export XDG_CONFIG_HOME="$TEST_ROOT/config"
	printf '[box]\nprivate-tmp = yes\n' > "$XDG_CONFIG_HOME/hutch/profiles/bad.conf"
	printf '[box]\nprivate-tmp = true\nprivate-tmp = false\n' > "$XDG_CONFIG_HOME/hutch/profiles/twice.conf"

	hrun run --profile bad -- true
	expect_refused
	expect_contains "$stderr" "bad.conf:2: private-tmp: invalid value 'yes' (true or false)"
	hrun run --profile twice -- true
	expect_refused
	expect_contains "$stderr" "private-tmp is already set on line 2"
	hrun run --private-tmp=1 -- true
	expect_refused
}

@test "Kerberos caches and ssh-agent folders in /tmp are hidden by default, and shown with --no-default-hide" {
	cc=$(mktemp "/tmp/krb5cc_$(id -u)_hutchtest.XXXXXX")
	HOST_PATHS+=("$cc")
	echo TICKET > "$cc"
	agent=$(mktemp -d /tmp/ssh-hutchtest.XXXXXX)
	HOST_PATHS+=("$agent")
	echo sock > "$agent/agent.1"
	echo TICKET2 > "$WORK/cache"

	hrun run -- cat "$cc"
	[ "$status" -ne 0 ]
	[[ "$output" != *TICKET* ]]
	# Unlistable; root (whose box maps it as root) lists it empty.
	hrun run -- ls -A "$agent"
	[ "$status" -ne 0 ] || [ -z "$output" ]
	[[ "$output" != *agent* ]]
	hrun run -- cat "$agent/agent.1"
	[ "$status" -ne 0 ]
	KRB5CCNAME="FILE:$WORK/cache" hrun run -- cat "$WORK/cache"
	[ "$status" -ne 0 ]
	[[ "$output" != *TICKET2* ]]
	hrun run --no-default-hide -- cat "$cc" "$agent/agent.1"
	expect_status 0
	expect_output "TICKET
sock"
}

# Copy what one probe-based test needs (the binary, the probes, helpers.bash
# and policy.bats) into a fresh folder under $1 and run that test from there:
# the README's test command has to work from a clone in any of these places.
run_suite_copy_under()
{
	local base=$1 clone

	clone=$(mktemp -d "$base/hutch-clone.XXXXXX")
	HOST_PATHS+=("$clone")
	mkdir -p "$clone/build/tests" "$clone/tests/integration" "$clone/tmp"
	cp "$HUTCH" "$clone/build/hutch"
	cp -r "$HUTCH_HELPERS" "$clone/build/tests/helpers"
	cp "$REPO_ROOT/tests/integration/helpers.bash" "$REPO_ROOT/tests/integration/policy.bats" \
		"$clone/tests/integration/"
	cd "$clone"
	run env -u HUTCH_HOME TMPDIR="$clone/tmp" HUTCH="$clone/build/hutch" \
		HUTCH_HELPERS="$clone/build/tests/helpers" \
		bats --tap -f '^each denied syscall returns EPERM' tests/integration/policy.bats
	expect_status 0
	expect_contains "$output" "1..1"
	expect_contains "$output" "ok 1 each denied syscall returns EPERM and is logged"
}

@test "a probe-based test passes from a copy of the suite under /tmp" {
	require_helper syscall_probe
	run_suite_copy_under /tmp
}

@test "a probe-based test passes from a copy of the suite under /var/tmp" {
	require_helper syscall_probe
	run_suite_copy_under /var/tmp
}

@test "a probe-based test passes from a copy of the suite under \$HOME" {
	require_helper syscall_probe
	[ -d "$HOME" ] && [ -w "$HOME" ] || skip "HOME '$HOME' is not a folder this user can write"
	run_suite_copy_under "$HOME"
}

@test "with a mount below /tmp the box still sees the host's /tmp and makes new files at its top" {
	[ "$(id -u)" -eq 0 ] || skip "a mount below /tmp, in a mount namespace of the test's own, takes root"
	host_tmpdir
	mkdir "$TDIR/mnt"
	echo top > "$TDIR/top.txt"
	name=hutch-top-$$-$RANDOM
	HOST_PATHS+=("/tmp/$name")
	local script='cat "$0/top.txt" "$0/mnt/f" && echo new > "$1" && echo m > "$0/mnt/g" && cat "$1" && stat -c %a /tmp'
	cd /

	# In a private mount namespace: the host and other tests never see the tmpfs.
	run --separate-stderr unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=1777 hutch-test "$1/mnt" && echo in-mount > "$1/mnt/f" || exit 99
		shift
		exec "$@"' sh "$TDIR" "$HUTCH" run -- sh -c "$script" "$TDIR" "/tmp/$name"
	expect_status 0
	expect_output "top
in-mount
new
1777"
	expect_no_file "/tmp/$name"
	expect_no_file "$TDIR/mnt/g"
	run cat "$HUTCH_HOME/boxes/default/fs/tmp/upper/$name"
	expect_output new

	# The same as an ordinary user, in the root pass.
	local user=${TEST_USER:-hutch-test}
	id "$user" > /dev/null 2>&1 || return 0
	chmod 0755 "$TEST_ROOT" "$TDIR"
	mkdir "$TEST_ROOT/u"
	cp "$HUTCH" "$TEST_ROOT/u/hutch"
	chown -R "$user:" "$TEST_ROOT/u"
	HOST_PATHS+=("/tmp/$name.u")
	run --separate-stderr unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=1777 hutch-test "$1/mnt" && echo in-mount > "$1/mnt/f" || exit 99
		shift
		exec "$@"' sh "$TDIR" runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME=/ \
		HUTCH_HOME="$TEST_ROOT/u/home" "$TEST_ROOT/u/hutch" run -- sh -c "$script" "$TDIR" "/tmp/$name.u"
	expect_status 0
	expect_output "top
in-mount
new
1777"
	expect_no_file "/tmp/$name.u"
}

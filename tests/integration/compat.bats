#!/usr/bin/env bats
# Kernels from 5.15 on: where overlayfs lacks "lowerdir+" (before 6.8) the
# box's overlays are mounted with one escaped "lowerdir=" option string.
# HUTCH_TEST_LEGACY_OVERLAY=1 forces that path on newer kernels too, so
# these tests run it everywhere; tests/vm/l1-box-tests.sh runs the box
# tests on Debian 12's own 6.1 kernel, where it is the only path.

load helpers

setup()
{
	require_userns
	hutch_setup
	TOP=""
}

teardown()
{
	[ -z "$TOP" ] || rm -rf "$TOP"
	hutch_teardown
}

# A store and a working folder whose names hold every character overlayfs
# escapes (',' parts options, ':' parts layers, '\' escapes).
odd_names()
{
	export HUTCH_HOME="$TEST_ROOT/st:o,re\\x/home"
	mkdir -p "$HUTCH_HOME" "$WORK/dir:with,comma"
	cd "$WORK/dir:with,comma"
}

# written_in_box BOX NAME: NAME is in one of the box's upper dirs, in the folder above.
written_in_box()
{
	find "$HUTCH_HOME/boxes/$1/fs" -path "*/upper/*dir:with,comma/$2" | grep -q . && return 0
	echo "'$2' is not in box '$1''s store:"
	find "$HUTCH_HOME/boxes/$1/fs" -path '*/upper/*' | head -20
	return 1
}

@test "with the lowerdir= string, a program in a folder named with ':' and ',' writes into the box" {
	odd_names
	HUTCH_TEST_LEGACY_OVERLAY=1 hrun run --box odd -- sh -c \
		'echo boxed > note.txt && cat note.txt &&
		 grep -c " - overlay .*[ ,]lowerdir=" /proc/self/mountinfo;
		 grep -c "lowerdir+=" /proc/self/mountinfo'
	[ "${lines[0]}" = boxed ]
	# Every overlay of the box was mounted from the one-string options.
	[ "${lines[1]}" -ge 1 ]
	[ "${lines[2]}" = 0 ]
	expect_no_file "$PWD/note.txt"
	written_in_box odd note.txt
	HUTCH_TEST_LEGACY_OVERLAY=1 hrun run --box odd -- cat note.txt
	expect_output boxed
}

@test "the kernel's own option path takes the same odd store and folder names" {
	odd_names
	hrun run --box odd -- sh -c 'echo boxed > note.txt && cat note.txt'
	expect_status 0
	expect_output boxed
	expect_no_file "$PWD/note.txt"
	written_in_box odd note.txt
}

@test "with the lowerdir= string, a host directory named with ':' and ',' is overlaid, not split" {
	[ "$(id -u)" = 0 ] ||
		skip "only root can make a top-level directory, the one lower layer a test can name"
	TOP=$(mktemp -d "/hutch-compat:a,b.XXXXXX")
	echo host >"$TOP/seen"
	HUTCH_TEST_LEGACY_OVERLAY=1 hrun run --box top -- sh -c \
		"cat '$TOP/seen' && echo boxed > '$TOP/made' && grep -c ' $TOP rw.* - overlay ' /proc/self/mountinfo"
	expect_status 0
	[ "${lines[0]}" = host ]
	[ "${lines[1]}" = 1 ]
	expect_no_file "$TOP/made"
	[ "$(cat "$HUTCH_HOME/boxes/top/fs/${TOP#/}/upper/made")" = boxed ]
}

@test "hutch run -v says which kernel features are not in force" {
	HUTCH_TEST_LEGACY_OVERLAY=1 hrun run -v --box v -- true
	expect_status 0
	expect_contains "$stderr" "box 'v': kernel: overlay: lowerdir+ not used (HUTCH_TEST_LEGACY_OVERLAY)"
	hrun run -v --box v2 -- true
	expect_status 0
	# lowerdir+ is Linux 6.8's: named as missing exactly below that.
	local major minor
	IFS=. read -r major minor _ <<<"$(uname -r)"
	if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 8 ]; }; then
		expect_contains "$stderr" "box 'v2': kernel: overlay: no lowerdir+ (Linux 6.8)"
	else
		! expect_contains "$stderr" "overlay: no lowerdir+"
	fi
	expect_contains "$stderr" "box 'v2': kernel: "
}

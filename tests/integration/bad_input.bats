#!/usr/bin/env bats
# Bad input: hutch refuses it with one line on stderr starting "hutch: ",
# exit status 125, and creates no box.

load helpers

setup()
{
	hutch_setup
}

teardown()
{
	hutch_teardown
}

# expect_box_name_refused NAME: `hutch run --box NAME -- true` is refused.
expect_box_name_refused()
{
	hrun run --box "$1" -- true
	expect_refused || {
		echo "(box name $(printf %q "$1"))"
		return 1
	}
}

@test "an empty box name is refused" {
	expect_box_name_refused ""
}

@test "a box name containing '/' is refused" {
	expect_box_name_refused a/b
	expect_box_name_refused ../escape
	expect_box_name_refused /abs
}

@test "the box names '.' and '..' are refused" {
	expect_box_name_refused .
	expect_box_name_refused ..
}

@test "a box name starting with '.' or '-' is refused" {
	expect_box_name_refused .hidden
	expect_box_name_refused -rf
}

@test "a box name over 64 characters is refused" {
	name=$(printf 'x%.0s' $(seq 65))
	expect_box_name_refused "$name"
}

@test "a box name containing control characters is refused with a one-line message" {
	expect_box_name_refused $'a\tb'
	expect_box_name_refused $'a\nb'
	expect_box_name_refused $'a\x01b'
	expect_box_name_refused $'a\x1b[31mb'
	expect_box_name_refused $'a\x7fb'
}

@test "hutch run without a command is refused" {
	hrun run
	expect_refused
	hrun run --box A
	expect_refused
	hrun run --box A --
	expect_refused
	hrun run --root --
	expect_refused
}

@test "--box without a name is refused" {
	hrun run --box
	expect_refused
}

@test "an unknown option to hutch run is refused" {
	hrun run --bogus -- true
	expect_refused
	expect_contains "$stderr" --bogus
}

@test "an unknown option to hutch is refused" {
	hrun --bogus
	expect_refused
	expect_contains "$stderr" --bogus
}

@test "an unknown subcommand is refused" {
	hrun frobnicate
	expect_refused
	expect_contains "$stderr" frobnicate
}

@test "a store on a filesystem without user extended attributes is refused, saying so" {
	# ramfs has no user.* xattrs. Root mounts it in a private mount namespace;
	# anyone else can in a user namespace of their own.
	if [ "$(id -u)" -eq 0 ]; then
		ns=(unshare -m --propagation private)
	else
		require_userns
		ns=(unshare -Urm)
	fi
	mkdir "$TEST_ROOT/ramfs"

	# The ramfs vanishes with the namespace: list the boxes from inside it.
	run "${ns[@]}" bash -c '
		mount -t ramfs ramfs "$1" || exit 99
		HUTCH_HOME="$1/home" "$2" run --box A -- true > "$3/stdout" 2> "$3/stderr"
		echo "status=$?"
		ls -A "$1/home/boxes" 2>/dev/null || true' _ "$TEST_ROOT/ramfs" "$HUTCH" "$TEST_ROOT"
	[ "$status" -ne 99 ] || skip "cannot mount a ramfs here: $output"
	expect_status 0

	# Same checks as expect_refused, but the box list comes from the namespace.
	output=${output#status=}
	status=${output%%$'\n'*}
	[ "$output" = "$status" ] || {
		echo "expected no box directory, found: ${output#*$'\n'}"
		return 1
	}
	output=$(cat "$TEST_ROOT/stdout")
	stderr=$(cat "$TEST_ROOT/stderr")
	mapfile -t stderr_lines < "$TEST_ROOT/stderr"
	expect_refused
	expect_contains "$stderr" "extended attributes"
}

@test "a host where unprivileged user namespaces are disabled is refused, naming the sysctl" {
	require_userns
	# Writing 0 to user.max_user_namespaces inside a user namespace forbids
	# new user namespaces below it: the same error hutch meets on such a host.
	run unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && ! unshare -Ur true 2>/dev/null'
	[ "$status" -eq 0 ] ||
		skip "cannot simulate: max_user_namespaces=0 in a user namespace did not block new ones"

	run --separate-stderr unshare -Ur sh -c \
		'echo 0 > /proc/sys/user/max_user_namespaces && exec "$1" run --box A -- true' _ "$HUTCH"
	expect_refused
	expect_contains "$stderr" user.max_user_namespaces
}

#!/usr/bin/env bats
# Folders and files whose owner or group a box cannot map. An unprivileged
# box maps only its user's uid and primary gid, and the kernel cannot copy
# up (into the box's store) anything owned by another: a folder of group
# root under the working directory would make every write fail with
# EOVERFLOW. The working directory (and such folders directly in it) then
# gets a layer of its own; files of a foreign group are explained before the
# program runs. Root's boxes map every id, so root never meets the case.
#
# Making a file of group root for an ordinary user takes root: these tests
# run in the root pass and run hutch as the unprivileged $TEST_USER there.

load helpers

setup()
{
	require_userns
	hutch_setup
	USER_DIRS=()
}

teardown()
{
	local d

	for d in "${USER_DIRS[@]}"; do
		rm -rf "$d"
	done
	hutch_teardown
}

# as_user_setup: skip unless root with a user to test as; make a folder
# $UROOT that $TEST_USER can use, a copy of hutch in it and a store of its own.
as_user_setup()
{
	TEST_USER=${TEST_USER:-hutch-test}
	[ "$(id -u)" -eq 0 ] ||
		skip "a folder of group root for another user takes root to make (the root pass runs this as '$TEST_USER')"
	id "$TEST_USER" > /dev/null 2>&1 || skip "no user '$TEST_USER' to run the box as"
	runuser -u "$TEST_USER" -- unshare -Ur true 2> /dev/null ||
		skip "'$TEST_USER' cannot create user namespaces here"
	chmod 0755 "$TEST_ROOT"
	UROOT="$TEST_ROOT/u"
	mkdir -p "$UROOT/home" "$UROOT/x"
	cp "$HUTCH" "$UROOT/hutch"
	chown -R "$TEST_USER:" "$UROOT"
	UHOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
}

# as_user DIR COMMAND...: run hutch ARGS as $TEST_USER from DIR; sets $status,
# $output and $stderr like hrun.
as_user()
{
	local dir=$1
	shift
	run --separate-stderr runuser -u "$TEST_USER" -- env -i -C "$dir" \
		PATH=/usr/local/bin:/usr/bin:/bin HOME="$UHOME" HUTCH_HOME="$UROOT/home" \
		"$UROOT/hutch" "$@"
}

# foreign_project DIR: DIR (made) and DIR/obj owned by $TEST_USER and group
# root, as after root's `cp -r` and `chown -R USER`; DIR/main.c too.
foreign_project()
{
	mkdir -p "$1/obj"
	echo 'int main(void) { return 0; }' > "$1/main.c"
	chown -R "$TEST_USER:root" "$1"
	chmod -R u+rwX,g+rX "$1"
}

@test "unprivileged, a working folder of group root takes new files, also in its folders, in the box only" {
	as_user_setup
	foreign_project "$UROOT/x/proj"

	as_user "$UROOT/x/proj" run -- sh -c 'echo new > new.txt && echo o > obj/a.o && cat new.txt obj/a.o'
	expect_status 0
	expect_output "new
o"
	expect_no_file "$UROOT/x/proj/new.txt"
	expect_no_file "$UROOT/x/proj/obj/a.o"
	as_user / diff default
	expect_contains "$output" "A file 4 $UROOT/x/proj/new.txt"
	expect_contains "$output" "A file 2 $UROOT/x/proj/obj/a.o"
}

@test "unprivileged, a folder of group root in the user's home takes new files in the box" {
	as_user_setup
	proj=$(mktemp -d "$UHOME/hutch-ownership.XXXXXX")
	USER_DIRS+=("$proj")
	foreign_project "$proj"
	chown "$TEST_USER:root" "$proj"

	as_user "$proj" run -- sh -c 'echo new > new.txt && cat new.txt'
	expect_status 0
	expect_output new
	expect_no_file "$proj/new.txt"
}

@test "unprivileged, files of group root are named before the program runs, which then fails on them" {
	as_user_setup
	foreign_project "$UROOT/x/proj"
	echo 'x' > "$UROOT/x/proj/util.c"
	chown "$TEST_USER:root" "$UROOT/x/proj/util.c"

	as_user "$UROOT/x/proj" run -- sh -c 'echo more >> main.c'
	[ "$status" -ne 0 ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	expect_contains "${stderr_lines[0]}" "hutch: warning: '$UROOT/x/proj/"
	expect_contains "${stderr_lines[0]}" "and 1 more files there belong to group 'root' (0), which a box cannot map: the box can create and remove files in '$UROOT/x/proj', but writing to or renaming these fails (EOVERFLOW)"
	expect_contains "${stderr_lines[1]}" "Value too large for defined data type"
	[ "$(cat "$UROOT/x/proj/main.c")" = 'int main(void) { return 0; }' ]
}

@test "unprivileged, below a folder of root's the user's own folders around the working one take new files" {
	as_user_setup
	mkdir -p "$UROOT/x/roots/mine/work"
	chown root:root "$UROOT/x/roots"
	chown -R "$TEST_USER:" "$UROOT/x/roots/mine"

	as_user "$UROOT/x/roots/mine/work" run -- sh -c 'echo up > ../beside.txt && echo here > here.txt && cat ../beside.txt here.txt'
	expect_status 0
	expect_output "up
here"
	[ -z "$stderr" ]
	expect_no_file "$UROOT/x/roots/mine/beside.txt"
}

@test "unprivileged, a folder of the user's own group is run in without a word" {
	as_user_setup
	mkdir -p "$UROOT/x/mine"
	echo 'int x;' > "$UROOT/x/mine/main.c"
	chown -R "$TEST_USER:" "$UROOT/x/mine"

	as_user "$UROOT/x/mine" run -- sh -c 'echo more >> main.c && cat main.c'
	expect_status 0
	expect_output "int x;
more"
	[ -z "$stderr" ]
}

@test "root's box maps every owner: it writes in a folder of group root without a word" {
	[ "$(id -u)" -eq 0 ] || skip "shows what root sees; ownership by another user takes root to make"
	mkdir -p "$WORK/proj/obj"
	echo 'int x;' > "$WORK/proj/main.c"
	chown -R nobody:root "$WORK/proj"
	cd "$WORK/proj"

	hrun run -- sh -c 'echo more >> main.c && echo o > obj/a.o && cat main.c'
	expect_status 0
	expect_output "int x;
more"
	[ -z "$stderr" ]
	[ "$(cat main.c)" = 'int x;' ]
}

#!/usr/bin/env bats
# A box's life after `hutch run`: list, diff, commit, reset, rm. What a box
# wrote reaches the host only through commit, which writes nothing but the
# committed paths, never through a symlink, and never leaves a file half
# written.

load helpers

setup()
{
	hutch_setup
	OUTSIDE="$TEST_ROOT/outside"
	mkdir "$OUTSIDE"
	# A name a box writes in /etc and beside the work folder, through symlinks.
	ESCAPE_NAME="$(basename "$TEST_ROOT").escaped"
}

teardown()
{
	rm -f "/etc/$ESCAPE_NAME"
	hutch_teardown
}

# expect_bad_input PATTERN: the last hrun was refused (status 125, no
# stdout, one stderr line "hutch: ...") with a message containing PATTERN.
expect_bad_input()
{
	expect_one_error || return 1
	expect_contains "$stderr" "$1"
}

box_state()
{
	"$HUTCH" list --json | jq -r --arg b "$1" '.[] | select(.name == $b) | .state'
}

box_is_running()
{
	[ "$(box_state "$1")" = running ]
}

hash_of()
{
	sha256sum < "$1" | cut -d' ' -f1
}

commit_temp_exists()
{
	compgen -G "$WORK/.hutch-commit-*" > /dev/null
}

# commit_until_writing OUT: start `hutch commit A` in the background (output
# to OUT, its pid in $pid) and return once it writes a temporary file or has
# exited, within 10 s.
commit_until_writing()
{
	"$HUTCH" commit A > "$1" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for _ in $(seq 1000); do
		commit_temp_exists && break
		has_exited "$pid" && break
		sleep 0.01
	done
}

# --- commit: the round trip ------------------------------------------------

@test "commit applies every kind of change to the host and leaves the box with none" {
	require_userns
	echo old > modify.txt
	echo bye > delete.txt
	echo moved > old-name.txt
	echo mode > mode.txt
	chmod 644 mode.txt
	mkdir modedir
	chmod 755 modedir
	mkdir -p olddir/sub
	echo x > olddir/sub/x
	mkdir replaced
	echo old > replaced/old
	echo keep > keep.txt

	in_box A sh -c '
		echo new > created.txt
		echo more >> modify.txt
		rm delete.txt
		mv old-name.txt new-name.txt
		chmod 600 mode.txt
		chmod 700 modedir
		ln -s created.txt link
		mkdir -p newdir/sub && echo deep > newdir/sub/deep.txt
		rm -rf olddir
		rm -rf replaced && mkdir replaced && echo new > replaced/new'

	expected="A file 4 $WORK/created.txt
D file 4 $WORK/delete.txt
A symlink 11 $WORK/link
M file 5 $WORK/mode.txt
M dir 0 $WORK/modedir
M file 9 $WORK/modify.txt
A file 6 $WORK/new-name.txt
A dir 0 $WORK/newdir
A dir 0 $WORK/newdir/sub
A file 5 $WORK/newdir/sub/deep.txt
D file 6 $WORK/old-name.txt
D dir 0 $WORK/olddir
A file 4 $WORK/replaced/new
D file 4 $WORK/replaced/old"
	hrun diff A
	expect_status 0
	expect_output "$expected"
	# Nothing reached the host yet.
	[ "$(cat modify.txt)" = old ]
	expect_no_file created.txt

	hrun commit A
	expect_status 0
	expect_output "$expected"

	[ "$(cat created.txt)" = new ]
	[ "$(cat modify.txt)" = "old
more" ]
	expect_no_file delete.txt
	expect_no_file old-name.txt
	[ "$(cat new-name.txt)" = moved ]
	[ "$(stat -c %a mode.txt)" = 600 ]
	[ "$(stat -c %a modedir)" = 700 ]
	[ -L link ] && [ "$(readlink link)" = created.txt ]
	[ "$(cat newdir/sub/deep.txt)" = deep ]
	expect_no_file olddir
	[ "$(cat replaced/new)" = new ]
	expect_no_file replaced/old
	[ "$(cat keep.txt)" = keep ]

	# The box holds nothing of it any more, and still sees it all (from the host).
	hrun diff A
	expect_status 0
	expect_output ""
	[ "$("$HUTCH" list --json | jq '.[] | select(.name == "A") | .changes')" = 0 ]
	run find "$HUTCH_HOME/boxes/A/fs" -mindepth 2 -maxdepth 2 -name upper -exec find {} -mindepth 1 ';'
	expect_output ""
	hrun run --box A -- cat created.txt new-name.txt replaced/new
	expect_status 0
	expect_output "new
moved
new"
}

@test "commit --dry-run prints what would change and changes nothing" {
	require_userns
	echo old > doc.txt
	in_box A sh -c 'echo new > doc.txt; echo x > added.txt'

	hrun commit --dry-run A
	expect_status 0
	expect_output "A file 2 $WORK/added.txt
M file 4 $WORK/doc.txt"
	[ "$(cat doc.txt)" = old ]
	expect_no_file added.txt
	hrun diff A
	expect_output "A file 2 $WORK/added.txt
M file 4 $WORK/doc.txt"
}

@test "commit PATH commits only the changes at or below PATH (relative to the current folder)" {
	require_userns
	mkdir sub
	in_box A sh -c 'echo a > a.txt; echo b > sub/b.txt; mkdir -p new/deeper; echo c > new/deeper/c.txt'

	hrun commit A sub new/deeper/c.txt
	expect_status 0
	expect_output "A dir 0 $WORK/new
A dir 0 $WORK/new/deeper
A file 2 $WORK/new/deeper/c.txt
A file 2 $WORK/sub/b.txt"
	expect_no_file a.txt
	[ "$(cat sub/b.txt)" = b ]
	hrun diff A
	expect_output "A file 2 $WORK/a.txt"
}

# --- commit: safety --------------------------------------------------------

@test "symlinks a box planted (to /etc, to ../..) are committed as symlinks and commit writes nothing outside PATH" {
	require_userns
	mkdir target
	in_box A sh -c "
		ln -s /etc target/etc-link
		ln -s ../.. target/up-link
		echo escaped > target/up-link/$ESCAPE_NAME
		echo escaped > target/etc-link/$ESCAPE_NAME 2>/dev/null || true
		echo inside > target/file"

	hrun commit A "$WORK/target"
	expect_status 0
	[ -L target/etc-link ] && [ "$(readlink target/etc-link)" = /etc ]
	[ -L target/up-link ] && [ "$(readlink target/up-link)" = ../.. ]
	[ "$(cat target/file)" = inside ]
	expect_no_file "$TEST_ROOT/$ESCAPE_NAME"
	expect_no_file "/etc/$ESCAPE_NAME"
	# What the box wrote through the symlinks is its own change, still in the box.
	hrun diff A
	expect_contains "$output" "A file 8 $TEST_ROOT/$ESCAPE_NAME"
}

@test "a host folder swapped for a symlink after the box wrote in it is a conflict, and --force writes no file through the symlink" {
	require_userns
	mkdir sub
	in_box A sh -c 'echo payload > sub/payload'
	sleep 0.05
	rmdir sub
	ln -s "$OUTSIDE" sub

	hrun commit A
	expect_status 125
	expect_contains "$stderr" "conflict: '$WORK/sub' changed on the host"
	[ -z "$(ls -A "$OUTSIDE")" ]

	hrun commit --force A
	expect_status 0
	[ -z "$(ls -A "$OUTSIDE")" ]
	[ -d sub ] && [ ! -L sub ]
	[ "$(cat sub/payload)" = payload ]
}

@test "a file the host changed after the box copied it is a conflict: nothing is committed unless --force" {
	require_userns
	echo v1 > doc.txt
	in_box A sh -c 'echo box > doc.txt; echo other > other.txt'
	sleep 0.05
	echo host > doc.txt

	hrun commit A
	expect_status 125
	[ "$stderr" = "hutch: conflict: '$WORK/doc.txt' changed on the host after box 'A' copied it (use --force to overwrite)" ]
	expect_output ""
	[ "$(cat doc.txt)" = host ]
	expect_no_file other.txt
	hrun diff A
	expect_output "M file 4 $WORK/doc.txt
A file 6 $WORK/other.txt"

	hrun commit --force A
	expect_status 0
	[ "$(cat doc.txt)" = box ]
	[ "$(cat other.txt)" = other ]
}

@test "a file the host created after the box created its own is a conflict unless the content is the same" {
	require_userns
	in_box A sh -c 'echo box > new.txt; echo same > same.txt'
	sleep 0.05
	echo host > new.txt
	echo same > same.txt

	hrun commit A
	expect_status 125
	expect_contains "$stderr" "conflict: '$WORK/new.txt'"
	[ "${#stderr_lines[@]}" -eq 1 ]
	hrun commit A same.txt
	expect_status 0
	hrun commit --force A
	expect_status 0
	[ "$(cat new.txt)" = box ]
}

@test "a change the user may not make on the host is refused before anything changes" {
	require_userns
	[ "$(id -u)" != 0 ] || skip "root may write in a read-only folder"
	mkdir ro
	in_box A sh -c 'echo f > ro/f; echo other > other.txt'
	chmod 555 ro

	hrun commit A
	expect_status 125
	[ "$stderr" = "hutch: cannot commit '$WORK/ro/f': cannot write to '$WORK/ro': Permission denied" ]
	expect_no_file ro/f
	expect_no_file other.txt
	[ "$(stat -c %a ro)" = 555 ]
	chmod 755 ro
}

@test "kill -9 during the commit of a 200 MB file leaves it old or new, never partial, and a second commit completes" {
	require_userns
	head -c 200M /dev/urandom > big.bin
	old=$(hash_of big.bin)
	in_box A sh -c 'head -c 200M /dev/urandom > big.bin'
	new=$(hash_of "$(store_path A "$WORK/big.bin")")
	[ "$old" != "$new" ]

	commit_until_writing /dev/null
	commit_temp_exists || skip "the commit finished before it could be killed mid-write"
	kill -KILL "$pid"
	wait "$pid" || true

	now=$(hash_of big.bin)
	[ "$now" = "$old" ] || [ "$now" = "$new" ]

	hrun commit A
	expect_status 0
	[ "$(hash_of big.bin)" = "$new" ]
	! commit_temp_exists
	hrun diff A
	expect_output ""
}

# check_old_or_new: every f$i on the host is wholly old (i+2000 'o's) or
# wholly new (i+6000 'N's); every n$i (new in the box) is wholly new on the
# host or still in the box: never partial, never gone from both.
check_old_or_new()
{
	local up
	up=$(store_path A "$WORK/t")
	awk -v up="$up" '
		{
			name = FILENAME; sub(/.*\//, "", name); i = substr(name, 2) + 0
			if (name ~ /^f/ && $0 ~ /^o+$/ && length($0) == i + 2000) next
			if ($0 ~ /^N+$/ && length($0) == i + 6000) next
			print "partial: " FILENAME " (" length($0) " bytes)"; bad = 1
		}
		END { exit bad }' t/f* $(ls t/n* 2> /dev/null) || return 1
	[ "$(ls t | grep -c '^f')" = 400 ] || { echo "a host file is gone"; ls t | head; return 1; }
	for i in $(seq 0 199); do
		[ -f "t/n$i" ] || [ -f "$up/n$i" ] || { echo "n$i is gone from both host and box"; return 1; }
	done
}

@test "kill -9 at random moments of a commit of many files leaves each old or new, loses none, and a rerun completes" {
	require_userns
	mkdir t
	# 400 files on the host, replaced by the box; 200 new ones: distinct sizes and markers.
	(cd t && awk 'BEGIN { for (i = 0; i < 400; i++) { s = sprintf("%*s", i + 2000, ""); gsub(/ /, "o", s); printf "%s", s > ("f" i); close("f" i) } }')
	in_box A sh -c 'cd t && awk "BEGIN { for (i = 0; i < 400; i++) { s = sprintf(\"%*s\", i + 6000, \"\"); gsub(/ /, \"N\", s); printf \"%s\", s > (\"f\" i); close(\"f\" i) } for (i = 0; i < 200; i++) { s = sprintf(\"%*s\", i + 6000, \"\"); gsub(/ /, \"N\", s); printf \"%s\", s > (\"n\" i); close(\"n\" i) } }"'
	check_old_or_new

	for attempt in 1 2 3 4 5 6; do
		"$HUTCH" commit A > /dev/null 2>&1 &
		pid=$!
		BG_PIDS+=("$pid")
		# Later and later into the commit (it restarts each time): each phase gets hit.
		sleep "$(printf '0.%02d' $(((attempt - 1) * 15 + RANDOM % 10)))"
		kill -KILL "$pid" 2> /dev/null || true
		wait "$pid" || true
		check_old_or_new
		# For the record (bats -t shows it): how many were new when killed.
		echo "# kill $attempt: $(cat t/f* | tr -cd N | wc -c) bytes new on the host" >&3
	done

	hrun commit A
	expect_status 0
	(cd t && for i in $(seq 0 399); do [ "$(wc -c < "f$i")" = $((i + 6000)) ]; done)
	(cd t && for i in $(seq 0 199); do [ "$(wc -c < "n$i")" = $((i + 6000)) ]; done)
	check_old_or_new
	! commit_temp_exists
	! compgen -G "t/.hutch-commit-*" > /dev/null
	hrun diff A
	expect_output ""
	# What was committed has left the box.
	[ -z "$(ls -A "$(store_path A "$WORK/t")" 2> /dev/null)" ]
}

@test "diff flags setuid, setgid and file capabilities; commit refuses them unless --allow-setuid, changing nothing" {
	require_userns
	command -v setcap > /dev/null || skip "setcap (libcap2-bin) is not installed"
	cp /bin/true plain
	in_box A sh -c 'cp /bin/true suid && chmod 4755 suid; cp /bin/true sgid && chmod 2755 sgid; chmod 4755 plain; echo ok > normal'
	"$HUTCH" run --box A --root -- sh -c 'cp /bin/true capfile && setcap cap_net_raw+ep capfile' ||
		skip "setcap in a --root box failed"
	hrun diff A
	expect_status 0
	size=$(stat -c %s /bin/true)
	expect_output "A file,caps $size $WORK/capfile
A file 3 $WORK/normal
M file,setuid $size $WORK/plain
A file,setgid $size $WORK/sgid
A file,setuid $size $WORK/suid"
	hrun diff --json A
	[ "$(jq -c '[.[] | select(.flags) | {p: (.path | split("/") | last), f: .flags}]' <<< "$output")" = \
		'[{"p":"capfile","f":["caps"]},{"p":"plain","f":["setuid"]},{"p":"sgid","f":["setgid"]},{"p":"suid","f":["setuid"]}]' ]
	[ "$(jq '[.[] | select(.path | endswith("/normal")) | has("flags")] | .[0]' <<< "$output")" = false ]

	hrun commit A
	expect_status 125
	expect_contains "$stderr" "hutch: cannot commit '$WORK/suid': the box made it setuid (commit it with --allow-setuid if you trust it)"
	expect_contains "$stderr" "hutch: cannot commit '$WORK/sgid': the box made it setgid"
	expect_contains "$stderr" "hutch: cannot commit '$WORK/plain': the box made it setuid"
	expect_contains "$stderr" "hutch: cannot commit '$WORK/capfile': the box made it carry file capabilities"
	# All or nothing: not even the harmless file.
	expect_no_file normal
	expect_no_file suid
	[ "$(stat -c %a plain)" = 755 ]

	hrun commit --allow-setuid A suid sgid plain normal
	expect_status 0
	[ "$(stat -c %a suid)" = 4755 ]
	[ "$(stat -c %a plain)" = 4755 ]
	[ "$(cat normal)" = ok ]
	if [ "$(id -u)" -eq 0 ]; then
		hrun commit --allow-setuid A
		expect_status 0
		[ -n "$(getcap capfile)" ]
	else
		hrun commit --allow-setuid A
		expect_status 125
		[ "$stderr" = "hutch: cannot commit '$WORK/capfile': it carries file capabilities, which only root can give on the host" ]
		expect_no_file capfile
	fi
}

@test "fifos are committed; sockets are refused with the reason, and naming the other paths commits them" {
	require_userns
	command -v python3 > /dev/null || skip "python3 is needed to bind a unix socket"
	in_box A sh -c 'mkfifo ff && echo x > f && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\"sock\")"'
	hrun commit A
	expect_status 125
	[ "$stderr" = "hutch: cannot commit '$WORK/sock': it is a socket, and hutch commits none (name the other PATHs to commit them, or reset the box)" ]
	expect_no_file ff
	expect_no_file f
	hrun commit A ff f
	expect_status 0
	[ -p ff ]
	[ "$(cat f)" = x ]
	hrun diff A
	expect_output "A other 0 $WORK/sock"
}

@test "a user's own .hutch-commit-notes shows in diff and is committed, deleted too" {
	require_userns
	mkdir d
	echo mine > d/.hutch-commit-notes
	echo mine2 > d/.hutch-commit-abcdefghijkl1
	in_box A sh -c 'echo notes > .hutch-commit-notes; rm -rf d; mkdir d'
	hrun diff A
	expect_status 0
	expect_output "A file 6 $WORK/.hutch-commit-notes
D file 6 $WORK/d/.hutch-commit-abcdefghijkl1
D file 5 $WORK/d/.hutch-commit-notes"
	hrun commit A
	expect_status 0
	[ "$(cat .hutch-commit-notes)" = notes ]
	expect_no_file d/.hutch-commit-notes
	expect_no_file d/.hutch-commit-abcdefghijkl1
	hrun diff A
	expect_output ""
}

@test "a second command on a box waits for the commit in progress: the commit completes, then the reset" {
	require_userns
	# On the host already: commit writes the new one under a temporary name.
	echo old > big.bin
	in_box A sh -c 'head -c 100M /dev/urandom > big.bin'
	new=$(hash_of "$(store_path A "$WORK/big.bin")")

	commit_until_writing "$TEST_ROOT/commit.out"
	hrun reset A
	expect_status 0
	wait "$pid"
	[ "$(hash_of big.bin)" = "$new" ]
	hrun diff A
	expect_output ""
}

# --- list and diff ---------------------------------------------------------

@test "diff and list --json are valid JSON, odd file names included" {
	require_userns
	in_box A sh -c '
		printf x > "quote\"d"
		printf yy > "$(printf "new\nline")"
		printf zzz > "$(printf "caf\303\251")"
		printf wwww > "$(printf "bad\377")"'

	hrun diff --json A
	expect_status 0
	echo "$output" | jq -e 'length == 4'
	echo "$output" | jq -e --arg p "$WORK/quote\"d" \
		'any(.[]; .path == $p and .change == "added" and .kind == "file" and .size == 1)'
	echo "$output" | jq -e --arg p "$WORK/new"$'\n'"line" 'any(.[]; .path == $p and .size == 2)'
	echo "$output" | jq -e --arg p "$WORK/café" 'any(.[]; .path == $p and .size == 3)'
	echo "$output" | jq -e --arg w "$WORK" 'any(.[]; .path == ($w + "/bad\u00ff") and .size == 4)'

	# Human output: one line per change, odd names quoted.
	hrun diff A
	[ "${#lines[@]}" -eq 4 ]
	expect_contains "$output" "A file 1 \"$WORK/quote\\\"d\""
	expect_contains "$output" "A file 2 \"$WORK/new\\nline\""

	hrun list --json
	expect_status 0
	echo "$output" | jq -e 'length == 1'
	echo "$output" | jq -e '.[0] | .name == "A" and .changes == 4 and .state == "idle"
		and .size > 0
		and (.last_used | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))'
	hrun list
	expect_status 0
	[[ "${lines[0]}" =~ ^NAME\ +SIZE\ +CHANGES\ +STATE\ +LAST\ USED$ ]]
	[[ "${lines[1]}" =~ ^A\ +[0-9.]+[BKMG]\ +4\ +idle\ +[0-9]{4}- ]]
}

@test "diff PATH shows only the changes at or below PATH" {
	require_userns
	mkdir d
	in_box A sh -c 'echo 1 > d/one; echo 2 > two'

	hrun diff A d
	expect_status 0
	expect_output "A file 2 $WORK/d/one"
	hrun diff --json A "$WORK/./d/../two"
	echo "$output" | jq -e --arg p "$WORK/two" '. == [{"path": $p, "change": "added", "kind": "file", "size": 2}]'
}

@test "list shows every box, running or idle, and an empty store as no boxes" {
	require_userns
	hrun list --json
	expect_status 0
	expect_output "[]"
	in_box A true
	in_box B sh -c 'echo x > x'
	hrun list --json
	echo "$output" | jq -e '[.[].name] == ["A", "B"] and (map(.changes) == [0, 1])'
}

# --- reset and rm ----------------------------------------------------------

@test "reset discards every change of the box, /tmp included, and keeps the box" {
	require_userns
	echo host > doc.txt
	t=/tmp/hutch-reset-$$-$RANDOM
	in_box A sh -c "echo box > doc.txt; echo new > new.txt; echo t > $t"
	# From /: the test's folder may be in the host's /tmp, which a private one hides.
	(cd / && "$HUTCH" run --box A --private-tmp -- sh -c "echo t > $t")

	hrun reset A
	expect_status 0
	expect_output ""
	hrun diff A
	expect_output ""
	[ "$(box_state A)" = idle ]
	hrun run --box A -- sh -c "cat doc.txt; test ! -e new.txt && test ! -e $t && echo clean"
	expect_status 0
	expect_output "host
clean"
	cd /
	hrun run --box A --private-tmp -- sh -c "test ! -e $t && echo clean"
	expect_output clean
	cd "$WORK"
	[ "$(cat doc.txt)" = host ]
}

trash_is_empty()
{
	[ -d "$HUTCH_HOME/boxes/$1/trash" ] && [ -z "$(ls -A "$HUTCH_HOME/boxes/$1/trash")" ]
}

@test "overlay work dirs of past runs are moved to the box's trash, and it is emptied after the run and by reset" {
	require_userns
	in_box A sh -c 'echo one > one.txt'
	# Another policy: a new box, whose overlays find the last one's work dirs.
	"$HUTCH" run --box A --hide "$WORK/nothing" -- sh -c 'echo two > two.txt' || return 1
	wait_for trash_is_empty A
	# As left by a run killed before its trash was emptied: overlayfs makes them mode 0.
	mkdir -p "$HUTCH_HOME/boxes/A/trash/usr.1/work/x"
	chmod 0 "$HUTCH_HOME/boxes/A/trash/usr.1/work" "$HUTCH_HOME/boxes/A/trash/usr.1"

	hrun reset A
	expect_status 0
	trash_is_empty A
	hrun run --box A -- sh -c 'test ! -e one.txt && echo reset'
	expect_output reset
	wait_for trash_is_empty A
}

# box_at_rest BOX: no run holds the box's layers (its unmount holder has
# let go of the "mounted" lock, after the idle box's linger second) and its
# trash is empty.
box_at_rest()
{
	flock -n "$HUTCH_HOME/boxes/$1/mounted" true && trash_is_empty "$1"
}

@test "a box at rest leaves nothing unreadable in the store: find, du and rm -rf work" {
	require_userns
	in_box A sh -c 'echo one > one.txt; mkdir -p d/e'
	# A rebuilt box (another policy) finds the last run's work dirs.
	"$HUTCH" run --box A --hide "$WORK/nothing" -- sh -c 'echo two > two.txt' || return 1
	in_box B true
	wait_for box_at_rest A
	wait_for box_at_rest B
	# The work dirs overlayfs made with mode 0 are gone or readable.
	run find "$HUTCH_HOME" -type d ! -perm -u=rwx
	expect_status 0
	expect_output ""
	run --separate-stderr find "$HUTCH_HOME"
	expect_status 0
	[ -z "$stderr" ] || { echo "find said: $stderr"; return 1; }
	run --separate-stderr du -s "$HUTCH_HOME"
	expect_status 0
	[ -z "$stderr" ] || { echo "du said: $stderr"; return 1; }
	# The box still works as before: its files are where it left them.
	hrun run --box A -- cat one.txt two.txt
	expect_output "one
two"
	wait_for box_at_rest A
	rm -r "$HUTCH_HOME/boxes/A" "$HUTCH_HOME/boxes/B"
	[ ! -e "$HUTCH_HOME/boxes/A" ]
}

@test "rm deletes the box and everything in it; the host keeps its files" {
	require_userns
	echo host > doc.txt
	in_box A sh -c 'echo box > doc.txt'

	hrun rm A
	expect_status 0
	[ ! -e "$HUTCH_HOME/boxes/A" ]
	hrun list --json
	expect_output "[]"
	[ "$(cat doc.txt)" = host ]
	hrun diff A
	expect_bad_input "no box named 'A'"
}

@test "commit, reset and rm refuse a running box; diff and list still work" {
	require_userns
	in_box A sh -c 'echo x > x'
	"$HUTCH" run --box A -- sleep 30 < /dev/null > /dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_for box_is_running A

	for cmd in commit reset rm; do
		hrun "$cmd" A
		expect_bad_input "box 'A' is running" || { echo "(hutch $cmd A)"; return 1; }
	done
	hrun diff A
	expect_status 0
	expect_output "A file 2 $WORK/x"
	expect_no_file x
	[ -d "$HUTCH_HOME/boxes/A" ]
}

# --- bad input ---------------------------------------------------------------

@test "an unknown box is refused by diff, commit, reset and rm" {
	for cmd in diff commit reset rm; do
		hrun "$cmd" nope
		expect_bad_input "no box named 'nope'" || { echo "(hutch $cmd)"; return 1; }
	done
	expect_no_box_created
}

@test "an invalid box name is refused by diff, commit, reset and rm" {
	for cmd in diff commit reset rm; do
		for name in ../x "" .hidden a/b; do
			hrun "$cmd" "$name"
			expect_bad_input "invalid box name" || { echo "(hutch $cmd '$name')"; return 1; }
		done
	done
	expect_no_box_created
}

@test "a missing box name is refused by diff, commit, reset and rm" {
	for cmd in diff commit reset rm; do
		hrun "$cmd"
		expect_bad_input "missing box name" || { echo "(hutch $cmd)"; return 1; }
	done
}

@test "unknown options and extra arguments are refused" {
	hrun diff --json --bogus A
	expect_bad_input "unknown option '--bogus'"
	hrun commit --dry-run --nope A
	expect_bad_input "unknown option '--nope'"
	hrun list --wat
	expect_bad_input "unknown option '--wat'"
	hrun list extra
	expect_bad_input "unexpected argument 'extra'"
	hrun reset A extra
	expect_bad_input "unexpected argument 'extra'"
	hrun rm A extra
	expect_bad_input "unexpected argument 'extra'"
	expect_no_box_created
}

@test "a PATH that is not among the box's changes is refused by diff and commit, and nothing changes" {
	require_userns
	in_box A sh -c 'echo x > x'

	hrun diff A /etc/hostname
	expect_bad_input "'/etc/hostname' is not among box 'A''s changes"
	hrun commit A x nothere
	expect_bad_input "'$WORK/nothere' is not among box 'A''s changes"
	expect_no_file x
	hrun diff A
	expect_output "A file 2 $WORK/x"
	hrun commit --dry-run --force A x
	expect_status 0
	expect_output "A file 2 $WORK/x"
}

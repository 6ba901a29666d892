#!/usr/bin/env bats
# hutch log: a box's event log ($HUTCH_HOME/boxes/BOX/log.jsonl), one human
# line per event, or the JSON Lines as logged; --follow keeps printing.
# These tests write the log by hand, to pin down the output for every kind
# of event; the tests of the events a run logs are with the run's.

load helpers

setup()
{
	hutch_setup
	require_userns
	in_box B true
	LOG="$HUTCH_HOME/boxes/B/log.jsonl"
	: > "$LOG"
	export TZ=UTC
}

teardown()
{
	hutch_teardown
}

# log_line JSON: append one event to box B's log.
log_line()
{
	printf '%s\n' "$1" >> "$LOG"
}

@test "a box that has logged nothing prints nothing" {
	rm -f "$LOG"
	hrun log B
	expect_status 0
	expect_output ""
	[ -z "$stderr" ]
	: > "$LOG"
	hrun log B
	expect_status 0
	expect_output ""
}

@test "each event is one line: time, pid, event, args, verdict, why" {
	log_line '{"time":"2026-11-27T23:30:01.123456Z","pid":42,"event":"exec","args":{"path":"/usr/bin/curl","argv":["curl","-s","https://example.org/a b"]},"verdict":"allowed"}'
	log_line '{"time":"2026-11-27T23:30:02.5Z","pid":43,"event":"connect","args":{"family":"inet","address":"10.0.0.1","port":443},"verdict":"denied","why":"no network"}'
	log_line '{"time":"2026-11-27T23:30:03.000001Z","pid":43,"event":"bind","args":{"family":"inet6","address":"::1","port":8080},"verdict":"allowed"}'
	log_line '{"time":"2026-11-27T23:30:04Z","pid":44,"event":"connect","args":{"family":"unix","path":"/run/dbus/system_bus_socket"},"verdict":"allowed"}'
	log_line '{"time":"2026-11-27T23:30:05Z","pid":44,"event":"syscall","args":{"syscall":"ptrace","nr":101},"verdict":"denied","why":"the strict filter refuses it"}'
	log_line '{"time":"2026-11-27T23:30:06Z","pid":1,"event":"limit","args":{"limit":"memory"},"verdict":"killed","why":"memory limit of 64 MiB reached"}'
	log_line '{"time":"2026-11-27T23:30:07Z","pid":0,"event":"limit","args":{},"verdict":"killed"}'
	hrun log B
	expect_status 0
	expect_output "2026-11-27 23:30:01.123      42  exec  /usr/bin/curl -s \"https://example.org/a b\"  allowed
2026-11-27 23:30:02.500      43  connect  10.0.0.1:443  denied  (no network)
2026-11-27 23:30:03.000      43  bind  [::1]:8080  allowed
2026-11-27 23:30:04.000      44  connect  unix:/run/dbus/system_bus_socket  allowed
2026-11-27 23:30:05.000      44  syscall  ptrace  denied  (the strict filter refuses it)
2026-11-27 23:30:06.000       1  limit  limit=memory  killed  (memory limit of 64 MiB reached)
2026-11-27 23:30:07.000       0  limit  -  killed"
	[ -z "$stderr" ]
}

@test "times are shown in the local time zone" {
	log_line '{"time":"2026-11-27T23:30:01.123456Z","pid":1,"event":"exec","args":{"path":"/bin/true"},"verdict":"allowed"}'
	TZ=Asia/Tokyo hrun log B
	expect_status 0
	expect_output "2026-11-28 08:30:01.123       1  exec  /bin/true  allowed"
}

@test "exec shows argv[0] only when it is not the program's name" {
	log_line '{"time":"2026-11-27T23:30:01Z","pid":5,"event":"exec","args":{"path":"/usr/bin/busybox","argv":["sh","-c","echo hi"]},"verdict":"allowed"}'
	log_line '{"time":"2026-11-27T23:30:02Z","pid":6,"event":"exec","args":{"path":"/usr/bin/ls","argv":["/usr/bin/ls","-l",""]},"verdict":"allowed"}'
	hrun log B
	expect_status 0
	expect_output "2026-11-27 23:30:01.000       5  exec  /usr/bin/busybox [as sh] -c \"echo hi\"  allowed
2026-11-27 23:30:02.000       6  exec  /usr/bin/ls -l \"\"  allowed"
}

@test "control characters from the box never reach the terminal raw" {
	# A program in a box chooses its arguments and paths: an escape
	# sequence in them must be shown escaped, each event on one line.
	log_line '{"time":"2026-11-27T23:30:01Z","pid":7,"event":"exec","args":{"path":"/tmp/x\u001b]0;pwned\u0007","argv":["x","a\nb","\u009b31m"]},"verdict":"allowed","why":"new\nline \u001b[2J"}'
	hrun log B
	expect_status 0
	expect_output '2026-11-27 23:30:01.000       7  exec  "/tmp/x\033]0;pwned\007" [as x] "a\nb" "\u009b31m"  allowed  (new\nline \033[2J)'
	[ "${#lines[@]}" -eq 1 ]
	if printf '%s' "$output" | grep -q "$(printf '\033')"; then
		echo "an escape character reached the output"
		return 1
	fi
}

@test "--json prints the events as they were logged, as JSON Lines" {
	log_line '{"time":"2026-11-27T23:30:01.123456Z","pid":42,"event":"exec","args":{"path":"/usr/bin/curl","argv":["curl"]},"verdict":"allowed"}'
	log_line '{"time":"2026-11-27T23:30:02Z","pid":43,"event":"syscall","args":{"syscall":"ptrace","nr":101},"verdict":"denied","why":"strict"}'
	hrun log --json B
	expect_status 0
	[ "$output" = "$(cat "$LOG")" ]
	printf '%s\n' "$output" | jq -e -s 'length == 2 and .[1].args.syscall == "ptrace"' > /dev/null
}

@test "lines that are not events are skipped with a warning" {
	log_line '{"time":"2026-11-27T23:30:01Z","pid":1,"event":"exec","args":{"path":"/bin/a"},"verdict":"allowed"}'
	log_line 'not json at all'
	log_line '{"time":"2026-11-27T23:30:02Z","pid":"2","event":"exec","verdict":"allowed"}'
	log_line '["an","array"]'
	log_line '{"time":"2026-11-27T23:30:03Z","pid":3,"event":"exec","event":"twice","verdict":"allowed"}'
	log_line ''
	log_line '{"time":"2026-11-27T23:30:04Z","pid":4,"event":"exec","args":{"path":"/bin/b"},"verdict":"allowed"}'
	hrun log B
	expect_status 0
	expect_output "2026-11-27 23:30:01.000       1  exec  /bin/a  allowed
2026-11-27 23:30:04.000       4  exec  /bin/b  allowed"
	[ "${#stderr_lines[@]}" -eq 4 ]
	expect_contains "${stderr_lines[0]}" "hutch: warning: $LOG:2: not an event, skipped"
	expect_contains "${stderr_lines[1]}" "$LOG:3:"
	expect_contains "${stderr_lines[3]}" "$LOG:5:"
	hrun log --json B
	expect_status 0
	[ "${#lines[@]}" -eq 2 ]
	printf '%s\n' "$output" | jq -e -s 'length == 2' > /dev/null
}

@test "a last line still being written is left out until it is whole" {
	log_line '{"time":"2026-11-27T23:30:01Z","pid":1,"event":"exec","args":{"path":"/bin/a"},"verdict":"allowed"}'
	printf '%s' '{"time":"2026-11-27T23:30:02Z","pid":2,"ev' >> "$LOG"
	hrun log B
	expect_status 0
	expect_output "2026-11-27 23:30:01.000       1  exec  /bin/a  allowed"
	[ -z "$stderr" ]
}

@test "--follow prints the events appended after it started" {
	log_line '{"time":"2026-11-27T23:30:01Z","pid":1,"event":"exec","args":{"path":"/bin/first"},"verdict":"allowed"}'
	"$HUTCH" log --follow B > "$TEST_ROOT/out" 2> "$TEST_ROOT/err" &
	BG_PIDS+=($!)
	wait_for grep -q /bin/first "$TEST_ROOT/out"
	log_line '{"time":"2026-11-27T23:30:02Z","pid":2,"event":"exec","args":{"path":"/bin/second"},"verdict":"allowed"}'
	wait_for grep -q /bin/second "$TEST_ROOT/out"
	# Half a line waits for its end.
	printf '%s' '{"time":"2026-11-27T23:30:03Z","pid":3,"event":"exec",' >> "$LOG"
	sleep 0.3
	printf '%s\n' '"args":{"path":"/bin/third"},"verdict":"allowed"}' >> "$LOG"
	wait_for grep -q /bin/third "$TEST_ROOT/out"
	kill "${BG_PIDS[0]}"
	run cat "$TEST_ROOT/out"
	expect_output "2026-11-27 23:30:01.000       1  exec  /bin/first  allowed
2026-11-27 23:30:02.000       2  exec  /bin/second  allowed
2026-11-27 23:30:03.000       3  exec  /bin/third  allowed"
	[ ! -s "$TEST_ROOT/err" ]
}

@test "--follow waits for a log that does not exist yet, and reads a new one from its start" {
	rm -f "$LOG"
	"$HUTCH" log --follow --json B > "$TEST_ROOT/out" &
	BG_PIDS+=($!)
	sleep 0.3
	log_line '{"time":"2026-11-27T23:30:01Z","pid":1,"event":"exec","args":{"path":"/bin/created"},"verdict":"allowed"}'
	wait_for grep -q /bin/created "$TEST_ROOT/out"
	# Replaced by a shorter log (a reset box starts afresh): shown from its start.
	printf '%s\n' '{"time":"2026-11-27T23:30:02Z","pid":2,"event":"exec","verdict":"allowed"}' > "$LOG.new"
	mv "$LOG.new" "$LOG"
	wait_for grep -q '"pid":2' "$TEST_ROOT/out"
	kill "${BG_PIDS[0]}"
	[ "$(wc -l < "$TEST_ROOT/out")" -eq 2 ]
}

@test "--follow ends when the box is removed" {
	"$HUTCH" log --follow B > /dev/null &
	BG_PIDS+=($!)
	sleep 0.2
	hutch rm B
	wait_for has_exited "${BG_PIDS[0]}"
	wait "${BG_PIDS[0]}"
}

@test "an unknown box is refused" {
	hrun log nosuchbox
	expect_status 125
	expect_output ""
	[ "$stderr" = "hutch: no box named 'nosuchbox'" ]
}

@test "bad options and arguments are refused with one line" {
	for args in "--bad B" "" "B extra" "../B" "-x B"; do
		# shellcheck disable=SC2086 # the words are the arguments
		hrun log $args
		expect_status 125
		expect_output ""
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ "$stderr" == "hutch: "* ]]
	done
}

@test "log is listed in hutch's help" {
	hrun help
	expect_contains "$output" "log        show what a box's programs did"
	hrun log --help
	expect_status 0
	expect_contains "$output" "usage: hutch log [--follow] [--json] BOX"
}

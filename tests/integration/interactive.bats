#!/usr/bin/env bats
# Interactive use: on a terminal hutch relays through a pty of the box's own,
# so shells get job control, Ctrl-C and window resizing. Driven through tmux.

load helpers

setup()
{
	hutch_setup
	require_userns
	command -v tmux > /dev/null || {
		echo "tmux is missing (./dev test installs it)"
		return 1
	}
	unset TMUX
	TMUX_SOCK="$TEST_ROOT/tmux.sock"
	STATUS_FILE="$TEST_ROOT/status"
	# Unique so that the test can find its own sleeps from the host.
	SLEEP_ARG="100.$$$RANDOM"
	# bash drops PS1 from the environment when a non-interactive bash sits
	# in between, so accept its default prompt too.
	BOX_PROMPT='^(box\$|bash-[0-9.]+[$#])'
}

teardown()
{
	local pid

	tmux -S "$TMUX_SOCK" kill-server 2> /dev/null || true
	for pid in $(pgrep -f "^sleep $SLEEP_ARG\$"); do
		kill -KILL "$pid" 2> /dev/null || true
	done
	hutch_teardown
}

tm()
{
	tmux -S "$TMUX_SOCK" "$@"
}

# Start `hutch run -- bash --norc -i` in a detached 100x30 tmux pane; hutch's
# exit status lands in $STATUS_FILE.
start_box_shell()
{
	local cmd

	cmd=$(printf '%q ' cd "$WORK")
	cmd+="&& $(printf '%q ' env HUTCH_HOME="$HUTCH_HOME" PS1='box$ ' "$HUTCH" run -- bash --norc -i)"
	cmd+="; echo \$? > $(printf '%q' "$STATUS_FILE")"
	tm -f /dev/null new-session -d -s box -x 100 -y 30 "$cmd"
	wait_pane "$BOX_PROMPT"
}

send()
{
	tm send-keys -t box "$@"
}

pane()
{
	tm capture-pane -p -t box
}

# wait_pane REGEX: wait up to 10 s for a pane line matching REGEX (grep -E).
wait_pane()
{
	local i

	for i in $(seq 100); do
		pane 2> /dev/null | grep -Eq -- "$1" && return 0
		[ -s "$STATUS_FILE" ] && break
		sleep 0.1
	done
	echo "no line matching '$1' in the pane; it shows:"
	pane 2> /dev/null || echo "(session gone; hutch exited with $(cat "$STATUS_FILE" 2> /dev/null))"
	return 1
}

sleep_running()
{
	pgrep -f "^sleep $SLEEP_ARG\$" > /dev/null
}

# sleeps_running N: at least N of this test's sleeps are running.
sleeps_running()
{
	[ "$(pgrep -cf "^sleep $SLEEP_ARG\$")" -ge "$1" ]
}

# host_prompt_last: the pane's last non-empty line is the host shell's prompt.
host_prompt_last()
{
	[ "$(pane | grep -v '^$' | tail -n 1)" = 'host$' ]
}

@test "a shell in a box runs the commands typed at its terminal" {
	start_box_shell
	send 'echo hello-$((6*7))' Enter
	wait_pane '^hello-42$'
}

@test "the terminal in a box is a pty of the box's own /dev/pts" {
	start_box_shell
	# A second host pty, so the host's /dev/pts cannot pass for the box's own.
	tm new-window -d -t box cat
	[ "$(tm list-windows -t box | wc -l)" -eq 2 ]
	send 't=$(tty); [ "$(ls /dev/pts | tr "\n" " ")" = "${t#/dev/pts/} ptmx " ] && echo own-pty-yes || echo "own-pty-no $t: $(ls /dev/pts)"' Enter
	wait_pane '^own-pty-'
	pane | grep -q '^own-pty-yes$'
}

@test "Ctrl-C interrupts the foreground program in a box and the shell carries on" {
	start_box_shell
	send "sleep $SLEEP_ARG" Enter
	wait_for sleep_running

	send C-c
	send 'echo "status=$?"' Enter
	wait_pane '^status='
	pane | grep -q '^status=130$'
	run sleep_running
	expect_status 1
}

@test "job control works in a box: jobs lists a background job and Ctrl-Z stops a foreground one" {
	start_box_shell
	send "sleep $SLEEP_ARG &" Enter
	send 'jobs' Enter
	wait_pane "^\[1\]\+ +Running +sleep $SLEEP_ARG &\$"

	send "sleep $SLEEP_ARG" Enter
	wait_for sleeps_running 2
	send C-z
	wait_pane "^\[2\]\+ +Stopped +sleep $SLEEP_ARG\$"
	send 'kill %1 %2; echo "killed=$?"' Enter
	wait_pane '^killed=0$'
	if pane | grep -q 'no job control'; then
		pane
		return 1
	fi
}

@test "resizing the terminal changes stty size inside the box" {
	start_box_shell
	send 'stty size' Enter
	wait_pane '^30 100$'

	tm resize-window -t box -x 120 -y 40
	[ "$(tm display -p -t box '#{pane_width}x#{pane_height}')" = 120x40 ]
	for i in $(seq 20); do
		send 'clear; stty size' Enter
		sleep 0.2
		pane | grep -q '^40 120$' && return 0
	done
	echo "stty size in the box did not follow the resize; the pane shows:"
	pane
	return 1
}

@test "exit 3 in a box's interactive shell makes hutch exit with status 3" {
	start_box_shell
	send 'exit 3' Enter
	wait_for test -s "$STATUS_FILE"
	run cat "$STATUS_FILE"
	expect_output 3
}

@test "hutch gives the terminal back as it found it when the box's shell exits" {
	tm -f /dev/null new-session -d -s box -x 100 -y 30 \
		"$(printf '%q ' env PS1='host$ ' bash --norc -i)"
	wait_pane '^host\$'
	send "cd $(printf '%q' "$WORK") && before=\$(stty -g)" Enter
	send "HUTCH_HOME=$(printf '%q' "$HUTCH_HOME") PS1='box\$ ' $(printf '%q' "$HUTCH") run -- bash --norc -i" Enter
	wait_pane "$BOX_PROMPT"
	send 'exit 3' Enter
	wait_for host_prompt_last
	send 'echo "status=$? tty-$([ "$(stty -g)" = "$before" ] && echo same || echo changed)"' Enter
	wait_pane '^status='
	pane | grep -q '^status=3 tty-same$'
}

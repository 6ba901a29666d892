#!/usr/bin/env bats
# A box's network: --net none (loopback only, the default) or --net user
# (pasta); --publish, --host-port, DNS through the resolver the box's
# resolv.conf names; the bad input around them.
#
# Traffic goes only to servers these tests start: on loopback, or in the
# namespaces net-internet.sh makes (10.99.0.0/16, fd99::/16, a made-up DNS
# zone). Every test that runs hutch with a network runs it in its own
# network, mount and pid namespaces, so that "no pasta is left" can be
# checked among the test's own processes only.

load helpers

setup_file()
{
	tun_open_to_all
}

setup()
{
	require_userns
	hutch_setup
}

teardown()
{
	hutch_teardown
}

require_pasta()
{
	command -v pasta > /dev/null || skip "pasta is not installed (Debian package passt)"
	command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (Debian package dnsmasq-base)"
	{ exec 9<> /dev/net/tun; } 2> /dev/null ||
		skip "/dev/net/tun cannot be opened by $(id -un) (the root pass makes it 0666)"
	exec 9>&-
	unshare -Unm --map-current-user --keep-caps true 2> /dev/null ||
		skip "cannot make a network namespace for the made-up internet"
}

# inet SCRIPT: run bash SCRIPT in network, mount and pid namespaces standing
# in for the internet (net-internet.sh), with $HUTCH exported; with
# INET_SERVE=no, without its servers.
inet()
{
	local ns=(-n -m -p -f --mount-proc)

	[ "$(id -u)" -eq 0 ] || ns=(-U --map-current-user --keep-caps "${ns[@]}")
	export HUTCH
	run --separate-stderr timeout 60 env INET_SERVE="${INET_SERVE:-yes}" unshare "${ns[@]}" -- \
		"$BATS_TEST_DIRNAME/net-internet.sh" bash -c "$NET_LIB$1"
}

# Functions for the scripts inet runs.
NET_LIB='
set -u
# H ARGS...: hutch as the caller runs it, without the capabilities it has here.
H() { setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" "$@"; }
# get HOST: the made-up internet'"'"'s page, by name or address, from here.
get() {
	timeout 5 bash -c "exec 3<> /dev/tcp/$1/8080 && printf \"GET / HTTP/1.0\r\n\r\n\" >&3 && cat <&3" |
		grep made-up
}
# pastas: how many pasta processes this pid namespace holds.
pastas() { ps -eo comm= | grep -c -E "^(pasta|passt)" || true; }
# no_pasta_within N: wait up to N tenths of a second for every pasta to end.
no_pasta_within() {
	for _ in $(seq "$1"); do [ "$(pastas)" -eq 0 ] && return 0; sleep 0.1; done
	echo "pasta still runs:"; ps -eo pid,ppid,comm,args | grep -E "pasta|passt"; return 1
}
'

@test "--net user reaches a server of the made-up internet by name, over IPv4 and IPv6" {
	require_pasta
	inet '
		H run --net user -- bash -c "
			cat /etc/resolv.conf
			$(declare -f get)
			getent ahostsv4 site.hutch-test | head -1
			get site.hutch-test && get 10.99.1.1 && get fd99:1::1
		"'
	expect_status 0
	expect_contains "$output" "nameserver 169.254.1.1"
	expect_contains "$output" "10.99.1.1"
	[ "$(grep -c 'hello from the made-up internet' <<< "$output")" -eq 3 ]
}

@test "--net user logs each DNS query and its answer, also in a run that joins an idle box" {
	require_pasta
	inet '
		H run -b dns --net user -- getent ahostsv4 site.hutch-test
		H run -b dns --net user -- getent ahostsv6 site.hutch-test
		log=$(H log --json dns)
		jq -e -s "any(.[]; .event == \"dns\" and .verdict == \"allowed\" and
			.args.name == \"site.hutch-test\" and .args.type == \"A\" and .args.rcode == 0 and
			(.args.answers | any(.address == \"10.99.1.1\")))" <<< "$log" > /dev/null &&
		jq -e -s "any(.[]; .event == \"dns\" and .args.name == \"site.hutch-test\" and
			.args.type == \"AAAA\" and (.args.answers | any(.address == \"fd99:1::1\")))" \
			<<< "$log" > /dev/null && echo logged || echo "$log"'
	expect_status 0
	expect_contains "$output" "10.99.1.1"
	expect_contains "$output" "fd99:1::1"
	expect_contains "$output" "logged"
}

@test "--net none, the default, has only loopback" {
	require_pasta
	inet '
		H run -- bash -c "ls /sys/class/net; $(declare -f get); get 10.99.1.1 || echo unreachable"
		echo "pastas: $(pastas)"'
	expect_status 0
	expect_output $'lo\nunreachable\npastas: 0'
}

@test "the host's loopback is unreachable from the box, over IPv4 and IPv6, also at the gateway; --host-port opens one port" {
	require_pasta
	inet '
		python3 -m http.server --bind 127.0.0.1 18081 > /dev/null 2>&1 &
		python3 -m http.server --bind 127.0.0.1 18082 > /dev/null 2>&1 &
		python3 -m http.server --bind ::1 18083 > /dev/null 2>&1 &
		for _ in $(seq 100); do [ "$(ss -ltn | grep -c ":1808[123] ")" -eq 3 ] && break; sleep 0.05; done
		try() { timeout "${3:-3}" bash -c "exec 3<> /dev/tcp/$1/$2" 2> /dev/null && echo "$1:$2 open" || echo "$1:$2 shut"; }
		try 127.0.0.1 18081; try ::1 18083
		H run --net user -- bash -c "$(declare -f try); try 127.0.0.1 18081; try 10.99.0.254 18081 1; try 10.99.0.2 18081
			try ::1 18083; try fd99::fe 18083 1; try fd99::2 18083"
		H run --host-port 18081 -- bash -c "$(declare -f try); try 127.0.0.1 18081; try 127.0.0.1 18082; try ::1 18083"'
	expect_status 0
	expect_output "$(printf '%s\n' '127.0.0.1:18081 open' '::1:18083 open' \
		'127.0.0.1:18081 shut' '10.99.0.254:18081 shut' '10.99.0.2:18081 shut' '::1:18083 shut' 'fd99::fe:18083 shut' 'fd99::2:18083 shut' \
		'127.0.0.1:18081 open' '127.0.0.1:18082 shut' '::1:18083 shut')"
}

@test "--publish reaches a server in the box, bound to the host's loopback only" {
	require_pasta
	inet '
		H run --publish 18090:8000 --publish 18091:8001/udp -- bash -c "
			echo published > page
			exec timeout 20 python3 -c \"import http.server as h; s = h.HTTPServer((\\\"\\\", 8000), h.SimpleHTTPRequestHandler); s.handle_request()\" 2> /dev/null
		" &
		for _ in $(seq 100); do ss -ltnH | grep -q ":18090 " && break; sleep 0.05; done
		ss -ltnH | grep ":18090 " | awk "{print \$4}"
		ss -lunH | grep ":18091 " | awk "{print \$4}"
		for _ in $(seq 100); do
			timeout 2 bash -c "exec 3<> /dev/tcp/127.0.0.1/18090 && printf \"GET /page HTTP/1.0\r\n\r\n\" >&3 && cat <&3" 2> /dev/null |
				grep published && break
			sleep 0.1
		done
		wait'
	expect_status 0
	expect_output $'127.0.0.1:18090\n127.0.0.1:18091\npublished'
}

@test "a run that joins an idle box gets a fresh network namespace, connected by a fresh pasta" {
	require_pasta
	inet '
		probe() { H run -b idle --net user -- bash -c "$(declare -f get pastas); readlink /proc/self/ns/net; cut -d\" \" -f22 /proc/1/stat; get 10.99.1.1 > /dev/null && echo reached; echo pastas \$(pastas)"; }
		probe; probe
		no_pasta_within 50 && echo "no pasta left"'
	expect_status 0
	[ "${#lines[@]}" -eq 9 ] || { echo "$output"; false; }
	# One box (PID 1 started once), two namespaces, both connected, one pasta at a time.
	[ "${lines[1]}" = "${lines[5]}" ] || { echo "not the same box: $output"; false; }
	[ "${lines[0]}" != "${lines[4]}" ] || { echo "the same network namespace: $output"; false; }
	[ "${lines[2]}" = reached ] && [ "${lines[6]}" = reached ]
	[ "${lines[3]}" = "pastas 1" ] && [ "${lines[7]}" = "pastas 1" ]
	[ "${lines[8]}" = "no pasta left" ]
}

@test "a run that joins an idle box with --publish gets the host's port again" {
	require_pasta
	INET_SERVE=no inet '
		probe() { H run -b pub --publish 18094:80 -- bash -c "$(declare -f pastas); cut -d\" \" -f22 /proc/1/stat; echo pastas \$(pastas)"; }
		probe; probe
		no_pasta_within 50 && echo "no pasta left"'
	expect_status 0
	[ "${#lines[@]}" -eq 5 ] || { echo "$output"; false; }
	# The second run joined the box: its new pasta bound the port the first one held.
	[ "${lines[0]}" = "${lines[2]}" ] || { echo "not the same box: $output"; false; }
	[ "${lines[1]}" = "pastas 1" ] && [ "${lines[3]}" = "pastas 1" ]
	[ "${lines[4]}" = "no pasta left" ]
}

@test "a run joins a running --net user box with --net user only: --allow or --net none is refused" {
	require_pasta
	inet '
		: > first
		H run -b busy --net user -- sh -c "echo up; while [ ! -e done ]; do sleep 0.05; done; echo first-done" > first &
		run=$!
		for _ in $(seq 100); do grep -q up first && break; sleep 0.05; done
		H run -b busy --allow 10.99.1.1:8080 -- echo ran; echo "--allow: $?"
		H run -b busy -- echo ran; echo "--net none: $?"
		H run -b busy --net user -- bash -c "$(declare -f get); get 10.99.1.1 > /dev/null && echo reached; touch done"
		echo "--net user: $?"
		wait "$run"; echo "first: $?"
		cat first
		no_pasta_within 50 && echo "no pasta left"'
	expect_status 0
	expect_output $'--allow: 125\n--net none: 125\nreached\n--net user: 0\nfirst: 0\nup\nfirst-done\nno pasta left'
	local refused="hutch: box 'busy' is running with another network (--net user); wait for its program to end, or use another --box"
	[ "$stderr" = "$refused"$'\n'"$refused" ] || { echo "stderr: $stderr"; false; }
}

@test "pasta ends with the box, also when hutch is killed with SIGKILL" {
	require_pasta
	inet '
		setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" run --net user -- sleep 30 &
		run=$!
		for _ in $(seq 100); do [ "$(pastas)" -ge 1 ] && pgrep -x sleep > /dev/null && break; sleep 0.05; done
		[ "$(pastas)" -ge 1 ] && echo "while it runs: pasta runs"
		kill -KILL "$run"
		no_pasta_within 50 && echo "after kill -9: 0"'
	expect_status 0
	expect_output $'while it runs: pasta runs\nafter kill -9: 0'
}

@test "-v says which network is in force" {
	require_pasta
	INET_SERVE=no inet 'H run -v --publish 18092:80 --host-port 5432 -- true'
	expect_status 0
	expect_contains "$stderr" "network: user, through pasta"
	expect_contains "$stderr" "published 127.0.0.1:18092->80/tcp"
	expect_contains "$stderr" "the host's 127.0.0.1:5432 is reachable"
	hrun run -v -- true
	expect_contains "$stderr" "network: none, loopback only (--net none)"
}

@test "profiles take net, publish and host-port" {
	require_pasta
	export XDG_CONFIG_HOME="$TEST_ROOT/config"
	mkdir -p "$XDG_CONFIG_HOME/hutch/profiles"
	printf '[box]\nnet = user\npublish = 18093:80\nhost-port = 5433\n' \
		> "$XDG_CONFIG_HOME/hutch/profiles/netp.conf"
	printf '[box]\npublish = 18093:0\n' > "$XDG_CONFIG_HOME/hutch/profiles/badp.conf"
	INET_SERVE=no inet 'H run -v -p netp -- true'
	expect_status 0
	expect_contains "$stderr" "published 127.0.0.1:18093->80/tcp"
	expect_contains "$stderr" "127.0.0.1:5433 is reachable"
	hrun run -p badp -- true
	expect_status 125
	expect_contains "$stderr" "badp.conf:2: invalid --publish '18093:0'"
}

@test "unparsable --net, --publish and --host-port are refused in one line, exit 125" {
	local bad

	for bad in "--net=bridge" "--net=" "--publish=80" "--publish=0:80" "--publish=1.2.3:80:80" \
		"--publish=[::1:80:80" "--publish=80:70000" "--publish=80:80/sctp" "--host-port=x" \
		"--host-port=65536"; do
		hrun run "$bad" -- true
		expect_status 125
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$bad: $stderr"; false; }
		expect_contains "$stderr" "invalid"
	done
	hrun run --net none --publish 8080:80 -- true
	expect_status 125
	expect_contains "$stderr" "--publish needs a network, and the box has none (--net none)"
	expect_no_box_created
}

@test "without pasta, --net user names the package to install, exit 125" {
	run --separate-stderr env PATH=/nonexistent "$HUTCH" run --net user -- /bin/true
	expect_status 125
	expect_output ""
	expect_contains "$stderr" "needs pasta, which is not installed (Debian package passt"
	expect_no_box_created
}

@test "a missing /dev/net/tun is named, with the fix, exit 125, nothing left" {
	require_pasta
	INET_SERVE=no inet '
		mount -t tmpfs none /dev/net
		H run --net user -- true; echo "status $?"'
	expect_contains "$stderr" "'/dev/net/tun', which is missing"
	expect_output "status 125"
	expect_no_box_created
}

@test "a /dev/net/tun the user cannot open is named, with the fix, exit 125" {
	require_pasta
	[ "$(id -u)" -ne 0 ] || skip "root opens any /dev/net/tun; the unprivileged pass checks this"
	INET_SERVE=no inet '
		touch tun && chmod 0 tun && mount --bind tun /dev/net/tun
		H run --net user -- true; echo "status $?"'
	expect_contains "$stderr" "cannot open '/dev/net/tun': Permission denied"
	expect_contains "$stderr" "chmod 0666 /dev/net/tun"
	expect_output "status 125"
	expect_no_box_created
}

@test "a --publish port already taken on the host is named, exit 125, no pasta left" {
	require_pasta
	INET_SERVE=no inet '
		python3 -m http.server --bind 127.0.0.1 18094 > /dev/null 2>&1 &
		for _ in $(seq 100); do ss -ltn | grep -q ":18094 " && break; sleep 0.05; done
		H run --publish 18094:80 -- true; echo "new box: status $?"
		ls "$HUTCH_HOME/boxes" 2> /dev/null
		H run -b old -- true && H run -b old --publish 18094:80 -- true; echo "old box: status $?"
		no_pasta_within 30 && echo "no pasta left"'
	expect_output $'new box: status 125\nold box: status 125\nno pasta left'
	expect_contains "$stderr" "cannot publish 127.0.0.1:18094->80/tcp: the host's port 18094 is already taken"
	[ "$(grep -c . <<< "$stderr")" -eq 2 ] || { echo "$stderr"; false; }
}

@test "a box without network says once, at exit, what the program tried to reach" {
	require_pasta
	INET_SERVE=no inet '
		H run -- bash -c "$(declare -f get); get 127.0.0.1; get 10.99.1.1; get 10.99.1.1; get fd99:1::1; exit 3"
		echo "status $?"
		H run -- bash -c "$(declare -f get); get 127.0.0.1"'
	expect_output "status 3"
	[ "$(grep -c 'tried to reach' <<< "$stderr")" -eq 1 ] || { echo "$stderr"; false; }
	expect_contains "$stderr" "hutch: the program tried to reach 10.99.1.1:8080 and this box has no network (use --net user or --allow)"
}

@test "the box's programs cannot signal pasta, not even under --root" {
	require_pasta
	INET_SERVE=no inet '
		for root in "" --root; do
			H run $root --net user -- bash -c "
				p=\$(pgrep -x passt.avx2 || pgrep -x passt || pgrep -x pasta)
				[ -n \"\$p\" ] || { echo no pasta seen; exit 1; }
				kill -KILL \$p 2>&1 | sed \"s/.* - //\"
				sleep 0.2
				[ -e /proc/\$p/comm ] && echo \"pasta lives${root:+ under $root}\""
		done'
	expect_status 0
	expect_output $'Operation not permitted\npasta lives\nOperation not permitted\npasta lives under --root'
}

@test "no box opens a vsock socket, which no network namespace confines, not even under --root" {
	local try='import socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    print("vsock open")
except OSError as e:
    print("vsock:", e.strerror)'
	python3 -c "$try" | grep -qx "vsock open" || skip "this kernel has no vsock to refuse"
	local net
	for net in "" "--net user" "--root --net user" "--seccomp strict"; do
		run -0 "$HUTCH" run $net -- python3 -c "$try"
		[ "$output" = "vsock: Address family not supported by protocol" ] ||
			{ echo "hutch run $net: $output"; false; }
	done
}

#!/usr/bin/env bats
# --allow: an egress allow-list the kernel enforces in the box's network
# namespace, from a user namespace the box's programs have no privilege in,
# not even under --root; every denial logged (issue 11 items 3 and 4).
#
# --allow implies --net user (pasta). No traffic leaves this machine: most
# tests set the far side up inside the box's own network namespace, from
# the user namespace that owns it, as only the box's owner can:
# allow_servers.py gives its loopback the made-up addresses 10.99.0.1,
# 10.99.0.2 and fd99::1 and serves TCP and UDP on ports 8080 and 8081 of
# each. Those addresses are not loopback's own (127.0.0.0/8, ::1), so the
# allow-list rules decide for them as they would for any host outside, and
# these tests see the rules alone. The last goes through pasta to the
# made-up internet of net-internet.sh, in namespaces of the test's own.

load helpers

setup_file()
{
	tun_open_to_all
}

setup()
{
	require_userns
	hutch_setup
	LOG="$HUTCH_HOME/boxes/default/log.jsonl"
	require_helper egressprobe
	[ -x "$(dirname "$HUTCH")/hutch-nft" ] || {
		echo "hutch-nft is missing next to '$HUTCH' (run make)" >&2
		return 1
	}
	command -v python3 > /dev/null || skip "python3 is not installed (./dev deps)"
	command -v pasta > /dev/null || skip "pasta is not installed (Debian package passt)"
	{ exec 9<> /dev/net/tun; } 2> /dev/null ||
		skip "/dev/net/tun cannot be opened by $(id -un) (the root pass makes it 0666)"
	exec 9>&-
}

teardown()
{
	exec 8>&- 2> /dev/null || true
	hutch_teardown
}

# allow_run RUN_OPTIONS... -- SCRIPT: run SCRIPT (sh) in the default box
# with RUN_OPTIONS, once allow_servers.py serves in its network namespace.
# In SCRIPT, `p NAME ARGS...` runs `egressprobe ARGS...` and prints
# "NAME: RESULT in N ms". Sets $status and $output (stdout and stderr).
allow_run()
{
	local opts=() fifo="$TEST_ROOT/go" out="$TEST_ROOT/box.out" srv="$TEST_ROOT/srv.out"
	local hpid keeper="" i

	while [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	rm -f "$fifo"
	mkfifo "$fifo"
	exec 8<> "$fifo"
	"$HUTCH" run --timeout 20s "${opts[@]}" -- sh -c \
		'read go; P=$1; p() { n=$1; shift; echo "$n: $("$P" "$@" 2>&1)"; }; '"$1" \
		sh "$HUTCH_HELPERS/egressprobe" < "$fifo" > "$out" 2>&1 3>&- &
	hpid=$!
	BG_PIDS+=("$hpid")
	for i in $(seq 50); do
		keeper=$(pgrep -P "$hpid" -x hutch-net) && break
		sleep 0.1
	done
	[ -n "$keeper" ] || {
		echo "no keeper (hutch-net) under hutch run $hpid:"
		cat "$out"
		return 1
	}
	python3 "$BATS_TEST_DIRNAME/allow_servers.py" "$keeper" > "$srv" 2>&1 3>&- &
	BG_PIDS+=("$!")
	for i in $(seq 50); do
		grep -q ready "$srv" && break
		sleep 0.1
	done
	grep -q ready "$srv" || {
		echo "the far side did not start:"
		cat "$srv"
		return 1
	}
	echo go >&8
	exec 8>&-
	status=0
	wait "$hpid" || status=$?
	output=$(cat "$out")
}

# expect_probe NAME RESULT: the box's probe NAME gave RESULT.
expect_probe()
{
	grep -qxE "$1: $2 in [0-9]+ ms" <<< "$output" && return 0
	echo "expected '$1: $2 in N ms' in:"
	echo "$output"
	return 1
}

# expect_fast NAME: probe NAME took under a second (a reject, not a drop).
expect_fast()
{
	local ms

	ms=$(sed -n "s/^$1: .* in \([0-9]*\) ms$/\1/p" <<< "$output")
	[ -n "$ms" ] && [ "$ms" -lt 1000 ] && return 0
	echo "expected probe $1 to end within 1000 ms, it took '${ms}' ms:"
	echo "$output"
	return 1
}

# log_has JQ-FILTER: some event in the default box's log matches.
log_has()
{
	jq -e -s "any(.[]; $1)" "$LOG" > /dev/null && return 0
	echo "no event matching '$1' in $LOG:"
	cat "$LOG" 2> /dev/null
	return 1
}

@test "with --allow, only the allowed address and port connect; the rest are refused at once" {
	allow_run --allow 10.99.0.1:8080 --allow '[fd99::1]:8081' -- '
		p allowed tcp 10.99.0.1 8080
		p other-port tcp 10.99.0.1 8081
		p other-host tcp 10.99.0.2 8080
		p allowed-udp udp 10.99.0.1 8080
		p denied-udp udp 10.99.0.2 8081
		p allowed6 tcp fd99::1 8081
		p other-port6 tcp fd99::1 8080
		p loopback tcp 127.0.0.1 9'
	expect_status 0
	expect_probe allowed "connected: hello 8080"
	expect_probe other-port ECONNREFUSED
	expect_probe other-host ECONNREFUSED
	expect_probe allowed-udp echoed
	expect_probe denied-udp EPERM
	expect_probe allowed6 "connected: hello 8081"
	expect_probe other-port6 ECONNREFUSED
	# Loopback is the box's own (nothing listens on port 9): refused by no rule.
	expect_probe loopback ECONNREFUSED
	for p in other-port other-host denied-udp other-port6; do
		expect_fast "$p"
	done
}

@test "a CIDR block without a port allows every port of every address in it" {
	allow_run --allow 10.99.0.0/31 -- '
		p a tcp 10.99.0.1 8081
		p b tcp 10.99.0.1 8080
		p outside tcp 10.99.0.2 8080
		p v6 tcp fd99::1 8080'
	expect_probe a "connected: hello 8081"
	expect_probe b "connected: hello 8080"
	expect_probe outside ECONNREFUSED
	expect_probe v6 ECONNREFUSED
}

@test "every denial is in the box's log with its destination, protocol and reason" {
	allow_run --allow 10.99.0.1:8080 -- '
		p tcp tcp 10.99.0.2 8081
		p udp udp 10.99.0.1 8081
		p v6 tcp fd99::1 8080'
	expect_status 0
	log_has '.event == "connect" and .verdict == "denied" and .args.by == "nftables" and .args.protocol == "tcp" and .args.address == "10.99.0.2" and .args.port == 8081 and (.why | test("10.99.0.2:8081 is not in the box.s --allow list"))'
	log_has '.verdict == "denied" and .args.protocol == "udp" and .args.address == "10.99.0.1" and .args.port == 8081'
	log_has '.verdict == "denied" and .args.protocol == "tcp" and .args.address == "fd99::1" and .args.port == 8080 and (.why | test("\\[fd99::1\\]:8080"))'
	# The allowed connection is not among the denials.
	! jq -e -s 'any(.[]; .verdict == "denied" and .args.port == 8080 and .args.address == "10.99.0.1")' "$LOG"
	run -0 "$HUTCH" log default
	expect_contains "$output" "10.99.0.2"
	expect_contains "$output" "denied"
}

@test "a box refused in a loop is logged at a bounded rate, and every packet is refused" {
	allow_run --allow 10.99.0.1:8080 -- '
		python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
refused = 0
for i in range(5000):
    try:
        s.sendto(b\"x\", (\"10.99.0.2\", 8081))
    except PermissionError:
        refused += 1
print(\"refused\", refused)"'
	expect_status 0
	grep -qx "refused 5000" <<< "$output" || { echo "$output"; false; }
	local n
	n=$(jq -s '[.[] | select(.verdict == "denied" and .args.address == "10.99.0.2")] | length' "$LOG")
	# A burst of 200, then 100 a second: far fewer than 5000 however slow the loop.
	[ "$n" -ge 100 ] && [ "$n" -lt 2000 ] || { echo "$n denials logged of 5000"; false; }
}

@test "a --root program cannot flush the rules, change routes, addresses or links, open raw or packet sockets, or reach a denied address by UDP, ICMP or IPv6" {
	allow_run --root --allow 10.99.0.1:8080 -- '
		nft flush ruleset > /dev/null 2>&1; echo "nft flush: $?"
		nft delete table inet hutch > /dev/null 2>&1; echo "nft delete: $?"
		ip route add 10.99.0.0/24 dev lo > /dev/null 2>&1; echo "ip route: $?"
		ip addr add 10.99.0.9/32 dev lo > /dev/null 2>&1; echo "ip addr: $?"
		ip link add hutch0 type dummy > /dev/null 2>&1; echo "ip link: $?"
		ip link set lo down > /dev/null 2>&1; echo "ip link down: $?"
		p raw raw
		p packet packet
		p mark mark
		p owner setns-owner
		p bound-to-lo lo-tcp 10.99.0.2 8080
		p icmp icmp 10.99.0.2
		p icmp6 icmp fd99::1
		p udp-denied udp 10.99.0.2 8080
		p udp-other-port udp 10.99.0.1 8081
		p udp6 udp fd99::1 8080
		p tcp6 tcp fd99::1 8080
		p stub-tcp tcp 169.254.1.1 53
		p still-denied tcp 10.99.0.2 8080
		p still-allowed tcp 10.99.0.1 8080'
	expect_status 0
	for c in "nft flush" "nft delete" "ip route" "ip addr" "ip link" "ip link down"; do
		grep -qxE "$c: [1-9][0-9]*" <<< "$output" || {
			echo "'$c' succeeded in a --root box:"
			echo "$output"
			return 1
		}
	done
	expect_probe raw EPERM
	expect_probe packet EPERM
	expect_probe mark EPERM
	expect_probe owner "NS_GET_USERNS: EPERM"
	expect_probe bound-to-lo ECONNREFUSED
	# ICMP datagram sockets are open to every group in this namespace
	# (allow_servers.py): the echo meets the rules, refused at once over
	# IPv4; over IPv6 the port-unreachable goes to a ping socket, which
	# does not report it, so no reply comes.
	expect_probe icmp EPERM
	expect_fast icmp
	expect_probe icmp6 "(EPERM|EACCES|ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT)"
	# UDP and IPv6 to what is not allowed refused too, and TCP to the DNS
	# stub (UDP only; with no name allowed it answers NXDOMAIN, see below).
	for p in udp-denied udp-other-port udp6; do
		expect_probe "$p" EPERM
		expect_fast "$p"
	done
	for p in tcp6 stub-tcp; do
		expect_probe "$p" ECONNREFUSED
		expect_fast "$p"
	done
	expect_probe still-denied ECONNREFUSED
	expect_probe still-allowed "connected: hello 8080"
}

@test "io_uring, refused by the default filter, does not pass the rules where a filter lets it run" {
	allow_run --allow 10.99.0.1:8080 -- 'p default uring 10.99.0.2 8080'
	expect_probe default "io_uring_setup: EPERM"
	hutch rm default > /dev/null
	allow_run --seccomp off --root --allow 10.99.0.1:8080 -- '
		p denied uring 10.99.0.2 8080
		p allowed uring 10.99.0.1 8080'
	expect_probe denied ECONNREFUSED
	expect_probe allowed connected
}

# start_dns: dnsmasq on this machine's loopback serving the made-up zone
# .test (allowed.test and other.test, TTL 60 s; brief.test, TTL 1 s), as
# the host's resolver for the box's stub (HUTCH_RESOLVER).
start_dns()
{
	local port i

	command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (dnsmasq-base, ./dev deps)"
	for i in $(seq 20); do
		port=$((20000 + RANDOM % 20000))
		dnsmasq --keep-in-foreground --port="$port" --listen-address=127.0.0.1 \
			--bind-interfaces --no-resolv --no-hosts --user="$(id -un)" \
			--pid-file= --host-record=allowed.test,10.99.0.1,fd99::1,60 \
			--host-record=other.test,10.99.0.2,60 --host-record=brief.test,10.99.0.2,1 \
			> "$TEST_ROOT/dnsmasq.out" 2>&1 3>&- &
		BG_PIDS+=("$!")
		sleep 0.2
		if kill -0 "$!" 2> /dev/null; then
			export HUTCH_RESOLVER="127.0.0.1:$port"
			return 0
		fi
	done
	cat "$TEST_ROOT/dnsmasq.out"
	return 1
}

@test "--allow NAME: the box resolves the allowed name through hutch, and reaches it only there" {
	start_dns
	allow_run --allow allowed.test:8080 -- '
		grep "^nameserver" /etc/resolv.conf
		a=$(getent ahostsv4 allowed.test | head -n 1 | cut -d " " -f 1)
		echo "allowed.test: $a"
		p allowed tcp "$a" 8080
		p other-port tcp "$a" 8081
		getent hosts other.test > /dev/null; echo "other.test: $?"
		p other-host tcp 10.99.0.2 8080'
	expect_status 0
	expect_contains "$output" "nameserver 169.254.1.1"
	expect_contains "$output" "allowed.test: 10.99.0.1"
	expect_probe allowed "connected: hello 8080"
	expect_probe other-port ECONNREFUSED
	# NXDOMAIN: getent's 2, "not found".
	expect_contains "$output" "other.test: 2"
	expect_probe other-host ECONNREFUSED
	log_has '.event == "dns" and .verdict == "allowed" and .args.name == "allowed.test" and .args.type == "A" and (.args.answers | any(.address == "10.99.0.1" and .ttl == 60))'
	log_has '.event == "dns" and .verdict == "denied" and .args.name == "other.test" and (.why | test("not in the box.s --allow list"))'
}

@test "--allow NAME: an answer's addresses are allowed for its TTL only" {
	start_dns
	allow_run --allow brief.test -- '
		a=$(getent ahostsv4 brief.test | head -n 1 | cut -d " " -f 1)
		p fresh tcp "$a" 8081
		sleep 2.5
		p expired tcp "$a" 8081'
	expect_probe fresh "connected: hello 8081"
	expect_probe expired ECONNREFUSED
	log_has '.event == "dns" and .args.name == "brief.test" and (.args.answers | any(.ttl == 1))'
}

@test "--allow NAME: only the question goes upstream, and only the name's own addresses are allowed" {
	local port i
	python3 "$BATS_TEST_DIRNAME/allow_upstream.py" "$TEST_ROOT/upstream.log" \
		> "$TEST_ROOT/upstream.out" 2>&1 3>&- &
	BG_PIDS+=("$!")
	for i in $(seq 50); do
		port=$(head -n 1 "$TEST_ROOT/upstream.out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	export HUTCH_RESOLVER="127.0.0.1:$port"
	# Two questions (the second a secret); then one, with an EDNS option holding a secret.
	cat > "$TEST_ROOT/queries.py" <<- 'EOF'
		import socket
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.settimeout(5)
		s.connect(("169.254.1.1", 53))
		q = b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x07allowed\x04test\x00\x00\x01\x00\x01"
		s.send(q + b"\x0cs3cr3t-in-qd\x05other\x04test\x00\x00\x01\x00\x01")
		print("two questions: rcode", s.recv(512)[3] & 15)
		opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x10\x00\x0a\x00\x0cs3cr3t-in-ar"
		s.send(q[:5] + b"\x01" + q[6:11] + b"\x01" + q[12:] + opt)
		a = s.recv(4096)
		print("one question: rcode", a[3] & 15, "answers", a[7])
	EOF
	allow_run --allow allowed.test:8080 --allow allowed.test:8081 -- "
		python3 '$TEST_ROOT/queries.py'
		p own tcp 10.99.0.1 8080
		p foreign tcp 10.99.0.2 8081"
	expect_status 0
	expect_contains "$output" "two questions: rcode 1"
	expect_contains "$output" "one question: rcode 0 answers 2"
	expect_probe own "connected: hello 8080"
	expect_probe foreign ECONNREFUSED
	# Upstream saw one query, without the box's secrets: the stub's own.
	[ "$(wc -l < "$TEST_ROOT/upstream.log")" -eq 1 ] || { cat "$TEST_ROOT/upstream.log"; return 1; }
	! grep -q "$(printf s3cr3t | od -An -tx1 | tr -d ' \n')" "$TEST_ROOT/upstream.log"
	log_has '.event == "dns" and .verdict == "denied" and (.why | test("other than one question"))'
	log_has '.event == "dns" and .verdict == "allowed" and .args.name == "allowed.test" and (.args.answers | length == 1 and .[0].address == "10.99.0.1")'
}

@test "--allow with addresses alone: the stub still answers every query, NXDOMAIN, and logs it" {
	allow_run --allow 10.99.0.1:8080 -- '
		grep "^nameserver" /etc/resolv.conf
		getent hosts allowed.test > /dev/null; echo "allowed.test: $?"'
	expect_status 0
	expect_contains "$output" "nameserver 169.254.1.1"
	expect_contains "$output" "allowed.test: 2"
	log_has '.event == "dns" and .verdict == "denied" and .args.name == "allowed.test" and (.why | test("not in the box.s --allow list"))'
}

@test "a box asking in a loop gets every answer, but its DNS events are logged at a bounded rate" {
	allow_run --allow 10.99.0.1:8080 -- '
		python3 -c "
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
def ask(i):
    q = struct.pack(\">HHHHHH\", i, 0x0100, 1, 0, 0, 0) + b\"\\x04loop\\x04test\\x00\\x00\\x01\\x00\\x01\"
    s.sendto(q, (\"169.254.1.1\", 53))
    return s.recv(512)[3] & 15
codes = [ask(i) for i in range(2000)]
time.sleep(1.1)
codes.append(ask(2000))
print(\"answered\", len(codes), \"nxdomain\", codes.count(3))"'
	expect_status 0
	grep -qx "answered 2001 nxdomain 2001" <<< "$output" || { echo "$output"; false; }
	local n
	n=$(jq -s '[.[] | select(.event == "dns" and .args.name == "loop.test")] | length' "$LOG")
	[ "$n" -ge 100 ] && [ "$n" -lt 1000 ] || { echo "$n of 2001 queries logged"; false; }
	log_has '.event == "dns" and .verdict == "info" and (.why | test("^[0-9]+ DNS events not logged: more than 100 a second"))'
}

@test "a profile's allow key is an --allow" {
	export HOME="$TEST_ROOT/user"
	mkdir -p "$HOME/.config/hutch/profiles"
	printf '[box]\nallow = 10.99.0.1:8081\n' > "$HOME/.config/hutch/profiles/net.conf"
	allow_run -p net -- '
		p allowed tcp 10.99.0.1 8081
		p denied tcp 10.99.0.1 8080'
	expect_probe allowed "connected: hello 8081"
	expect_probe denied ECONNREFUSED
}

@test "a bad --allow or allow key is refused in one line, exit 125, nothing left behind" {
	local bad
	for bad in "" "10.0.0.1:0" "10.0.0.1:99999" "10.0.0.1:http" "10.0.0.0/33" "[::1" \
		"[fd99::1]8080" "exa_mple.org" "300.1.2.3" "::ffff:10.0.0.1"; do
		hrun run --allow "$bad" -- true
		expect_refused
		expect_contains "$stderr" "--allow"
	done
	hrun run --net none --allow 10.0.0.1 -- true
	expect_refused
	expect_contains "$stderr" "--allow needs a network"
	export HOME="$TEST_ROOT/user"
	mkdir -p "$HOME/.config/hutch/profiles"
	printf '[box]\nallow = 10.0.0.1:nope\n' > "$HOME/.config/hutch/profiles/bad.conf"
	hrun run -p bad -- true
	expect_refused
	expect_contains "$stderr" "port must be a number"
}

@test "without hutch-nft beside hutch, --allow fails in one line, exit 125, and leaves no process" {
	mkdir "$TEST_ROOT/lone"
	cp "$HUTCH" "$TEST_ROOT/lone/hutch"
	run --separate-stderr "$TEST_ROOT/lone/hutch" run --allow 10.99.0.1:8080 -- true
	expect_status 125
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$stderr"; return 1; }
	expect_contains "$stderr" "hutch-nft"
	sleep 0.2
	! pgrep -f "$TEST_ROOT/lone/hutch"
}

@test "through pasta, --allow reaches the allowed server of a made-up internet, by address and by name, and nothing else" {
	command -v dnsmasq > /dev/null || skip "dnsmasq is not installed (dnsmasq-base, ./dev deps)"
	unshare -Unm --map-current-user --keep-caps true 2> /dev/null ||
		skip "cannot make a network namespace for the made-up internet"
	local ns=(-n -m -p -f --mount-proc)
	[ "$(id -u)" -eq 0 ] || ns=(-U --map-current-user --keep-caps "${ns[@]}")
	# A query for site.hutch-test straight to 169.254.1.1, where pasta forwards DNS.
	export DNS_QUERY="$TEST_ROOT/query.py"
	cat > "$DNS_QUERY" <<- 'EOF'
		import socket
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.settimeout(2)
		q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04site\x0ahutch-test\x00\x00\x01\x00\x01"
		try:
		    s.connect(("169.254.1.1", 53))
		    s.send(q)
		    print("no-names: rcode", s.recv(512)[3] & 15)
		except OSError as e:
		    print("no-names: refused", e)
	EOF
	export HUTCH
	run --separate-stderr timeout 60 unshare "${ns[@]}" -- \
		"$BATS_TEST_DIRNAME/net-internet.sh" bash -c '
		get() { timeout 5 bash -c "exec 3<> /dev/tcp/$1/8080 && printf \"GET / HTTP/1.0\r\n\r\n\" >&3 && cat <&3" 2> /dev/null | grep -c made-up; }
		setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" run --allow 10.99.1.1:8080 --allow site.hutch-test:8080 -- bash -c "
			$(declare -f get)
			echo address: \$(get 10.99.1.1)
			echo v6-before: \$(get fd99:1::1)
			getent ahostsv6 site.hutch-test > /dev/null && echo v6-after: \$(get fd99:1::1)
			getent hosts other.hutch-test > /dev/null; echo other: \$?
		"
		# No name allowed: hutch answers NXDOMAIN; the forwarder of pasta, which answers any name, is out of reach.
		setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" run --allow 10.99.1.1:8080 -- \
			python3 "$DNS_QUERY"
		echo "pastas left: $(ps -eo comm= | grep -c -E "^(pasta|passt)")"'
	expect_status 0
	expect_contains "$output" "address: 1"
	# fd99:1::1 is allowed only once the allowed name resolved to it.
	expect_contains "$output" "v6-before: 0"
	expect_contains "$output" "v6-after: 1"
	expect_contains "$output" "other: 2"
	expect_contains "$output" "no-names: rcode 3"
	expect_contains "$output" "pastas left: 0"
}

@test "with --allow, pasta ends with the box, also when hutch is killed with SIGKILL" {
	unshare -Unm --map-current-user --keep-caps true 2> /dev/null ||
		skip "cannot make a network namespace for the made-up internet"
	local ns=(-n -m -p -f --mount-proc)
	[ "$(id -u)" -eq 0 ] || ns=(-U --map-current-user --keep-caps "${ns[@]}")
	export HUTCH
	run --separate-stderr timeout 60 unshare "${ns[@]}" -- \
		"$BATS_TEST_DIRNAME/net-internet.sh" bash -c '
		pastas() { ps -eo comm= | grep -c -E "^(pasta|passt)" || true; }
		gone() { for _ in $(seq 50); do [ "$(pastas)" -eq 0 ] && return 0; sleep 0.1; done; return 1; }
		setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" run --allow 10.99.1.1:8080 -- true
		gone && echo "after a run: 0"
		# The program runs once pasta is ready (its first process gone).
		setpriv --inh-caps=-all --ambient-caps=-all "$HUTCH" run --allow 10.99.1.1:8080 -- \
			sh -c "echo up; exec sleep 30" > up &
		run=$!
		for _ in $(seq 100); do grep -q up up && break; sleep 0.05; done
		echo "while it runs: $(pastas)"
		kill -KILL "$run"
		gone && echo "after kill -9: 0"'
	expect_status 0
	expect_output $'after a run: 0\nwhile it runs: 1\nafter kill -9: 0'
}

@test "-v says the network is limited to the --allow list" {
	hrun run -v --allow 10.99.0.1:8080 --allow allowed.test -- true
	expect_status 0
	expect_contains "$stderr" "network: user, through pasta"
	expect_contains "$stderr" "network: limited to --allow 10.99.0.1:8080"
	expect_contains "$stderr" "network: limited to --allow allowed.test (all else refused"
}

#!/bin/bash
# Stand-in for the internet, for net.bats: run "$@" in the network, mount
# and pid namespaces net.bats made for it (with the capabilities the caller
# has there: net.bats runs hutch without them), after giving that network
# namespace:
#   - an interface with 10.99.0.2/24 and fd99::2/64 and default routes, as a
#     host's uplink (pasta copies them into the box);
#   - a server address 10.99.1.1 and fd99:1::1, where python3's http.server
#     answers on port 8080 with "hello from the made-up internet";
#   - dnsmasq on 127.0.0.1:53 answering site.hutch-test with those addresses,
#     and an /etc/resolv.conf naming it (a loopback resolver, as with
#     systemd-resolved).
# Nothing here reaches any other address. Everything it starts ends with it.
set -euo pipefail

dir=$(mktemp -d "${TMPDIR:-/var/tmp}/hutch-inet.XXXXXX")
trap 'kill $(jobs -p) 2> /dev/null; wait; rm -rf "$dir"' EXIT

ip link set lo up
ip link add inet0 type veth peer name srv0
ip addr add 10.99.0.2/24 dev inet0
ip -6 addr add fd99::2/64 dev inet0 nodad
ip addr add 10.99.1.1/32 dev srv0
ip -6 addr add fd99:1::1/128 dev srv0 nodad
ip link set inet0 up
ip link set srv0 up
ip route add default via 10.99.0.254 dev inet0
ip -6 route add default via fd99::fe dev inet0

# INET_SERVE=no: the addresses only (for tests that reach no server).
[ "${INET_SERVE:-yes}" = no ] && exec "$@"

printf 'nameserver 127.0.0.1\n' > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
	--bind-interfaces --user="$(id -un)" --pid-file="$dir/dns.pid" --log-facility=- \
	--address=/site.hutch-test/10.99.1.1 --address=/site.hutch-test/fd99:1::1 \
	2> "$dir/dns.log" &
mkdir "$dir/www"
echo "hello from the made-up internet" > "$dir/www/index.html"
python3 -m http.server --bind :: --directory "$dir/www" 8080 > /dev/null 2>&1 &
for _ in $(seq 100); do
	ss -ltn | grep -q ':8080 ' && ss -lun | grep -q '127.0.0.1:53 ' && break
	sleep 0.05
done
"$@"

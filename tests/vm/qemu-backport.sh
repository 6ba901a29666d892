#!/bin/sh
# The test bench's own QEMU: qemu-system-x86 from Debian's bookworm-backports
# (10.0), which boots the L1 guest of tests/vm/l1-run.sh more reliably than
# bookworm's 7.2 (docs/vm.md, "Known flakes of the L1 bench"). Brought in as
# the guest kernel is: `apt-get download` with an apt configuration of the
# bench's own (its own sources.list naming bookworm-backports, its own state
# and cache folders), unpacked with `dpkg-deb -x`. Nothing is installed on
# the host and the host's apt sources are not touched. hutch itself never
# runs QEMU; only the tests do.
#
#   qemu-backport.sh OUT_DIR
#
# OUT_DIR gets apt/ (the bench's apt configuration and lists), root/ (the
# unpacked packages) and bin/qemu-system-x86_64, a wrapper that runs the
# unpacked binary with LD_LIBRARY_PATH on the unpacked libraries and -L on
# the unpacked firmware (qemu-system-data, seabios). Which packages: apt
# itself resolves qemu-system-x86 from backports against what the host has
# installed (a simulated install on the host's dpkg status), so what the host
# lacks, or has older than backports' QEMU needs, is fetched, and nothing
# else. MIRROR overrides the Debian mirror (default: the host's own, from its
# apt sources); DPKG_STATUS the dpkg status file resolved against (default
# the host's, /var/lib/dpkg/status: another one shows what a host with
# other packages would fetch). Nothing is fetched again when OUT_DIR holds
# the same version.
set -eu

out=$1
suite=bookworm-backports
die() { echo "qemu-backport: $*" >&2; exit 1; }
for tool in apt-get apt-cache dpkg-deb; do
	command -v $tool >/dev/null || die "needs $tool (a Debian-based host)"
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "no $keyring (apt-get install debian-archive-keyring)"

# The host's mirrors for Debian and its security archive, in either format
# of apt's sources ("deb URI suite ..." lines or deb822 "URIs:" fields).
uris=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
	2>/dev/null | grep -v '^ *#' | grep -oE 'https?://[^ ]+' | sed 's,/*$,,' | sort -u)
mirror=${MIRROR:-$(echo "$uris" | grep -E '/debian$' | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(echo "$uris" | grep -E '/debian-security$' | head -n1)

mkdir -p "$out"
out=$(cd "$out" && pwd)
apt=$out/apt
mkdir -p "$apt/etc/preferences.d" "$apt/state/lists/partial" "$apt/cache/archives/partial" "$out/debs"
{
	echo "deb [signed-by=$keyring] $mirror bookworm main"
	echo "deb [signed-by=$keyring] $mirror bookworm-updates main"
	[ -z "$security" ] || echo "deb [signed-by=$keyring] $security bookworm-security main"
	echo "deb [signed-by=$keyring] $mirror $suite main"
} >"$apt/etc/sources.list"
# The host's dpkg status is read (to know what is installed), never written:
# apt-get only updates its own lists, simulates, and downloads.
set -- -o Dir::Etc::SourceList="$apt/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
	-o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts="$apt/etc/preferences.d" \
	-o Dir::State="$apt/state" -o Dir::State::status="${DPKG_STATUS:-/var/lib/dpkg/status}" \
	-o Dir::Cache="$apt/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
echo "qemu-backport: apt-get update ($mirror $suite)"
apt-get "$@" -qq update || die "apt-get update of $mirror $suite failed"

ver=$(apt-cache "$@" show "qemu-system-x86/$suite" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
[ -n "$ver" ] || die "no qemu-system-x86 in $suite"
if [ -x "$out/bin/qemu-system-x86_64" ] && [ "$(cat "$out/.version" 2>/dev/null)" = "$ver" ]; then
	echo "qemu-backport: qemu-system-x86 $ver already in $out"
	exit 0
fi

# "Inst pkg [installed] (version archive [arch])": what installing backports'
# QEMU would change on this host.
need=$(apt-get "$@" -s --no-install-recommends install "qemu-system-x86/$suite" |
	awk '/^Inst / { v = $3; if (v ~ /^\[/) v = $4; sub(/^\(/, "", v); print $2 "=" v }')
echo "$need" | grep -q "^qemu-system-x86=$ver$" || die "apt cannot resolve qemu-system-x86 $ver from $suite here"
echo "qemu-backport: downloading $(echo "$need" | tr "\n" " ")"
rm -f "$out/debs"/*.deb
# shellcheck disable=SC2086 # one word per package
(cd "$out/debs" && apt-get "$@" -qq download $need) || die "apt-get download failed"

rm -rf "${out:?}/root" "${out:?}/bin"
mkdir -p "$out/root" "$out/bin"
for deb in "$out/debs"/*.deb; do
	dpkg-deb -x "$deb" "$out/root"
done
rm -rf "$out/debs"
[ -x "$out/root/usr/bin/qemu-system-x86_64" ] || die "no usr/bin/qemu-system-x86_64 in qemu-system-x86 $ver"
# Relative to itself, so the folder can be linked or moved. QEMU_MODULE_DIR
# keeps it off the host QEMU's modules, which are of another version.
cat >"$out/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# qemu-system-x86_64 from bookworm-backports, unpacked by tests/vm/qemu-backport.sh.
r=$(cd "$(dirname "$0")/../root" && pwd)
lib=$r/usr/lib/x86_64-linux-gnu:$r/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QEMU_MODULE_DIR="$r/usr/lib/x86_64-linux-gnu/qemu"
exec "$r/usr/bin/qemu-system-x86_64" -L "$r/usr/share/qemu" -L "$r/usr/share/seabios" "$@"
EOF
chmod 755 "$out/bin/qemu-system-x86_64"
"$out/bin/qemu-system-x86_64" --version >/dev/null || die "the unpacked QEMU does not run"
echo "$ver" >"$out/.version"
echo "qemu-backport: $("$out/bin/qemu-system-x86_64" --version | head -n1) in $out"

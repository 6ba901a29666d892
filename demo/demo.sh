#!/bin/bash
# demo/demo.sh — hutch's promise, played end to end: two boxes write
# document.txt in the same folder, each reads back its own, and the host
# folder stays untouched. Uses a throwaway store, so it can run any number of
# times; exits 1 if hutch does not behave as narrated.
#
# Environment: HUTCH, the binary to show (default: build/hutch of this checkout).
set -euo pipefail

HUTCH=${HUTCH:-$(cd "$(dirname "$0")/.." && pwd)/build/hutch}
[ -x "$HUTCH" ] || {
	echo "demo: no hutch binary at '$HUTCH'; run make (or ./dev demo)" >&2
	exit 1
}

# Under $TMPDIR (default /var/tmp); a box sees the host's /tmp too.
DEMO=$(mktemp -d "${TMPDIR:-/var/tmp}/hutch-demo.XXXXXX")
export HUTCH_HOME="$DEMO/store"
FOLDER="$DEMO/project"
mkdir "$FOLDER"
cd "$FOLDER"

cleanup()
{
	cd /
	chmod -R u+rwX "$DEMO" 2> /dev/null || true # overlay work dirs are mode 0
	rm -rf "$DEMO"
}
trap cleanup EXIT

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
	B='' D='' G='' R='' N=''
fi

hutch()
{
	"$HUTCH" "$@"
}

say()
{
	printf '\n%s\n' "$*" | fold -s -w 78
}

# show 'COMMAND': print the command as typed, run it, print its output and
# keep it in $LAST.
show()
{
	printf '%s%s$%s %s\n' "$D" "${FOLDER/#$DEMO/\$DEMO}" "$N" "$1"
	local rc=0

	LAST=$(eval "$1" 2>&1) || rc=$?
	[ -z "$LAST" ] || printf '%s\n' "$LAST"
	if [ "$rc" -ne 0 ]; then
		printf '%s  ✗ exit status %s%s\n' "$R" "$rc" "$N"
		echo "demo: hutch did not behave as described" >&2
		exit 1
	fi
}

check()
{
	if [ "$1" = "$2" ]; then
		printf '%s  ✓ %s%s\n' "$G" "$3" "$N"
	else
		printf '%s  ✗ expected %s, got %s%s\n' "$R" "'$2'" "'$1'" "$N"
		echo "demo: hutch did not behave as described" >&2
		exit 1
	fi
}

printf '%shutch demo%s: two boxes, one folder, one file name\n' "$B" "$N"
say "A program run with 'hutch run' sees the host's real files, but every file it creates, changes or deletes lands in its box's private store. We work in a fresh, empty folder, with a throwaway store:"
echo "  DEMO=$DEMO"
echo "  folder:      \$DEMO/project"
echo "  HUTCH_HOME:  \$DEMO/store"

say "${B}1.${N} Box A and box B each write their own document.txt in this folder:"
show 'hutch run --box A -- sh -c "echo \"from A\" > document.txt"'
show 'hutch run --box B -- sh -c "echo \"from B\" > document.txt"'

say "${B}2.${N} Each box reads back its own:"
show 'hutch run --box A -- cat document.txt'
check "$LAST" "from A" "box A reads \"from A\""
show 'hutch run --box B -- cat document.txt'
check "$LAST" "from B" "box B reads \"from B\""

say "${B}3.${N} On the host, the folder is still empty: no document.txt at all."
show 'ls -la'
check "$(ls -A)" "" "the host folder has no document.txt"

say "${B}4.${N} Each box keeps its copy in its own store, in boxes/NAME/fs/LAYER/upper, where LAYER names the host directory the box overlays, with '/' written %2F:"
for box in A B; do
	copy=$(find "$HUTCH_HOME/boxes/$box/fs" -path '*/upper/*' -name document.txt 2> /dev/null || true)
	[ -n "$copy" ] || check "" "a copy in box $box's store" "box $box's copy"
	echo "  box $box: \$HUTCH_HOME${copy#"$HUTCH_HOME"}"
	printf '          contains: %s\n' "$(cat "$copy")"
done

say "Boxes keep their state across runs; 'hutch run --box A -- sh' would open a shell that sees the host plus box A's changes. This demo now deletes its throwaway store."

#!/usr/bin/env bats
# make install / uninstall, the man pages and the bash completion.
#
# These run `make` in the source tree: the checkout, or in the unprivileged
# pass the copy tests/run-all makes of it with its build, timestamps kept,
# so that make has nothing to rebuild there (it could not: the copy is
# read-only for that user). BUILD is the folder of the hutch under test.

load helpers

setup()
{
	hutch_setup
	DEST=$TEST_ROOT/dest
	BUILD_DIR=$(cd "$(dirname "$HUTCH")" && pwd)
	[ -f "$REPO_ROOT/Makefile" ] || {
		echo "no Makefile in '$REPO_ROOT': these tests need the source tree" >&2
		return 1
	}
}

teardown()
{
	hutch_teardown
}

# make_in_tree ARGS...: make in the source tree, building into the folder of
# the hutch under test.
make_in_tree()
{
	make -C "$REPO_ROOT" --no-print-directory BUILD="$BUILD_DIR" "$@"
}

# The pages every command needs, from `hutch help`'s own list of commands.
commands()
{
	"$HUTCH" help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' |
		grep -vx -e help -e version
}

# every --option a command's --help names
help_options()
{
	if [ "$1" = vm ]; then
		"$HUTCH" vm --help
	else
		"$HUTCH" "$1" --help
	fi | grep -o -- '--[a-z][a-z-]*' | sort -u
}

# complete WORD...: what the installed completion offers for the command
# line WORD... (the last word is the one being completed), one a line.
complete_words()
{
	local script=$DEST/usr/share/bash-completion/completions/hutch

	bash -c '
		. /usr/share/bash-completion/bash_completion || exit 1
		# compopt works only while bash itself is completing.
		compopt() { return 0; }
		. "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_hutch "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' complete "$script" "$@"
}

require_bash_completion()
{
	[ -f /usr/share/bash-completion/bash_completion ] || {
		echo "bash-completion is missing (./dev deps installs it)" >&2
		return 1
	}
}

@test "make install puts the binary, a man page per command and the completion under DESTDIR and PREFIX" {
	mkdir "$TEST_ROOT/no-vm"
	run make_in_tree install DESTDIR="$DEST" PREFIX=/usr VM_ASSETS_DIR="$TEST_ROOT/no-vm"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ $output == *"no VM assets in $TEST_ROOT/no-vm, none installed"* ]]
	cmp "$HUTCH" "$DEST/usr/bin/hutch"
	[ -x "$DEST/usr/bin/hutch" ]
	{
		echo usr/bin/hutch
		echo usr/lib/hutch/hutch-nft
		echo usr/share/bash-completion/completions/hutch
		echo usr/share/man/man1/hutch.1
		commands | sed 's|.*|usr/share/man/man1/hutch-&.1|'
		echo usr/share/man/man5/hutch-profile.5
	} | sort > "$TEST_ROOT/expected"
	(cd "$DEST" && find . -type f -o -type l) | sed 's|^\./||' | sort > "$TEST_ROOT/installed"
	diff -u "$TEST_ROOT/expected" "$TEST_ROOT/installed"
	[ "$(wc -l < "$TEST_ROOT/expected")" -eq 14 ]
	[ ! -e "$DEST/usr/lib/hutch/vm" ]
}

@test "every man page renders with man -l without a warning, and names every option of its command" {
	run make_in_tree install DESTDIR="$DEST" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	local page n=0 cmd opt text
	for page in "$DEST"/usr/share/man/man[15]/*; do
		n=$((n + 1))
		run -0 env MANWIDTH=80 man -l "$page"
		text=$output
		[[ $text == *NAME* && $text == *DESCRIPTION* ]] || {
			echo "'$page' has no NAME or DESCRIPTION: $text"
			return 1
		}
		run --separate-stderr env MANWIDTH=80 man -l "$page"
		[ -z "$stderr" ] || { echo "man -l $page: $stderr"; return 1; }
		run groff -man -ww -z "$page"
		[ "$status" -eq 0 ] && [ -z "$output" ] || { echo "groff $page: $output"; return 1; }
	done
	[ "$n" -eq 11 ]
	# each option an item of its own in OPTIONS: "       -b, --box name"
	for cmd in $(commands); do
		text=$(MANWIDTH=200 man -l "$DEST/usr/share/man/man1/hutch-$cmd.1" |
			sed -n '/^OPTIONS/,/^[A-Z]/p')
		[ -n "$text" ] || { echo "hutch-$cmd(1) has no OPTIONS"; return 1; }
		for opt in $(help_options "$cmd"); do
			grep -Eq -- "^       (-[a-zA-Z], )?$opt( |,|$)" <<< "$text" || {
				echo "OPTIONS of hutch-$cmd(1) has no item for '$opt' of 'hutch $cmd --help'"
				return 1
			}
		done
	done
}

@test "the completion completes commands, the options of run and the box names of HUTCH_HOME" {
	require_bash_completion
	run make_in_tree install DESTDIR="$DEST" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	local opt expected

	# bash-completion's own loader finds it by the command's name
	run -0 env XDG_DATA_DIRS="$DEST/usr/share" bash -c \
		'. /usr/share/bash-completion/bash_completion; _completion_loader hutch; complete -p hutch'
	[ "$output" = "complete -F _hutch hutch" ]

	# commands: exactly hutch's own list
	expected=$( (commands; echo help; echo version) | sort)
	run -0 complete_words hutch ""
	[ "$(sort <<< "$output")" = "$expected" ]
	run -0 complete_words hutch r
	[ "$(sort <<< "$output" | tr '\n' ' ')" = "reset rm run " ]

	# run's options: every one `hutch run --help` names
	run -0 complete_words hutch run --
	for opt in $(help_options run); do
		grep -qx -- "$opt" <<< "$output" || {
			echo "completion of 'hutch run --' lacks '$opt': $output"
			return 1
		}
	done
	run -0 complete_words hutch run --se
	[ "$output" = --seccomp ]
	run -0 complete_words hutch run --seccomp s
	[ "$output" = strict ]

	# box names, from the installed hutch and this test's store; a folder
	# that is not a box's name is not one
	mkdir -p "$HUTCH_HOME/boxes/alpha" "$HUTCH_HOME/boxes/beta" "$HUTCH_HOME/boxes/.notabox"
	run -0 complete_words "$DEST/usr/bin/hutch" run --box ""
	[ "$(tr '\n' ' ' <<< "$output")" = "alpha beta " ]
	run -0 complete_words "$DEST/usr/bin/hutch" diff b
	[ "$output" = beta ]
	run -0 complete_words "$DEST/usr/bin/hutch" shell --root a
	[ "$output" = alpha ]
	run -0 complete_words "$DEST/usr/bin/hutch" rm alpha ""
	[ -z "$output" ]

	# profile names, where hutch run --profile looks
	mkdir -p "$TEST_ROOT/config/hutch/profiles"
	printf '[box]\n' > "$TEST_ROOT/config/hutch/profiles/untrusted.conf"
	printf '[box]\n' > "$TEST_ROOT/config/hutch/profiles/ci.conf"
	XDG_CONFIG_HOME=$TEST_ROOT/config run -0 complete_words hutch run --profile u
	[ "$output" = untrusted ]

	# the command a box runs, and files after the box of diff
	run -0 complete_words hutch run --box alpha -- ech
	grep -qx echo <<< "$output"
	run -0 complete_words hutch run --root ech
	grep -qx echo <<< "$output"
	touch "$WORK/notes.txt"
	run -0 complete_words "$DEST/usr/bin/hutch" diff alpha not
	[ "$output" = notes.txt ]
}

@test "make uninstall removes every file make install put there" {
	mkdir "$TEST_ROOT/vm"
	echo kernel > "$TEST_ROOT/vm/vmlinux"
	echo initramfs > "$TEST_ROOT/vm/initramfs.cpio"
	run make_in_tree install DESTDIR="$DEST" PREFIX=/usr VM_ASSETS_DIR="$TEST_ROOT/vm"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$(cd "$DEST" && find . -type f | wc -l)" -eq 16 ]
	run make_in_tree uninstall DESTDIR="$DEST" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run find "$DEST" ! -type d
	[ -z "$output" ] || { echo "left behind: $output"; return 1; }
	[ ! -e "$DEST/usr/lib/hutch" ]
	# the folders it shares with other programs stay
	[ -d "$DEST/usr/share/man/man1" ]
}

@test "an installed hutch finds the VM assets installed beside it" {
	mkdir "$TEST_ROOT/vm" "$TEST_ROOT/cache"
	echo kernel > "$TEST_ROOT/vm/vmlinux"
	echo initramfs > "$TEST_ROOT/vm/initramfs.cpio"
	run make_in_tree install DESTDIR="$DEST" PREFIX=/usr VM_ASSETS_DIR="$TEST_ROOT/vm"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	cmp "$TEST_ROOT/vm/vmlinux" "$DEST/usr/lib/hutch/vm/vmlinux"
	cmp "$TEST_ROOT/vm/initramfs.cpio" "$DEST/usr/lib/hutch/vm/initramfs.cpio"
	run --separate-stderr env -u HUTCH_VM_DIR XDG_CACHE_HOME="$TEST_ROOT/cache" \
		"$DEST/usr/bin/hutch" vm assets
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "$output" = "$(realpath "$DEST/usr/lib/hutch/vm")" ]
	[ -z "$stderr" ]

	# without them it says where it looked last, and what is missing
	rm "$DEST/usr/lib/hutch/vm/vmlinux"
	run --separate-stderr env -u HUTCH_VM_DIR XDG_CACHE_HOME="$TEST_ROOT/cache" \
		"$DEST/usr/bin/hutch" vm assets
	[ "$status" -eq 1 ]
	[ "$output" = "$TEST_ROOT/cache/hutch/vm" ]
	[[ $stderr == "hutch: no 'vmlinux' in '$TEST_ROOT/cache/hutch/vm'"* ]]
}

@test "list --names with --json, and vm assets with an argument, are refused" {
	hrun list --names --json
	expect_refused
	[[ $stderr == *"--json and --names exclude each other"* ]]
	hrun vm assets extra
	expect_refused
	[[ $stderr == *"unexpected argument 'extra'"* ]]
}

@test "list --names prints the box names only, sorted, and nothing for an empty store" {
	hrun list --names
	[ "$status" -eq 0 ] && [ -z "$output" ]
	mkdir -p "$HUTCH_HOME/boxes/zeta" "$HUTCH_HOME/boxes/alpha" "$HUTCH_HOME/boxes/-bad"
	touch "$HUTCH_HOME/boxes/file"
	hrun list --names
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'alpha\nzeta')" ]
	[ -z "$stderr" ]
}

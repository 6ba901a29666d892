# bash completion for hutch(1): its commands, each command's options, box
# names, profile names, and the command a box or VM runs with its own
# completion. Installed by `make install` as
# PREFIX/share/bash-completion/completions/hutch, where bash-completion
# loads it on first use; it works without bash-completion too, more simply.

# The hutch being completed, so that a build tree's ./build/hutch lists its
# own boxes; `hutch` from PATH when the typed one cannot be run.
_hutch_self()
{
	local self=${words[0]}

	[[ $self == "~/"* ]] && self=$HOME/${self#"~/"}
	if [[ $self == */* && -x $self ]] || command -v -- "$self" > /dev/null 2>&1; then
		printf '%s\n' "$self"
	else
		printf 'hutch\n'
	fi
}

# Box names, from hutch itself: `hutch list --names` reads no box, and
# hutch knows where the store is (HUTCH_HOME, XDG_DATA_HOME, HOME).
_hutch_boxes()
{
	local self names

	self=$(_hutch_self)
	names=$("$self" list --names 2> /dev/null) || return 0
	COMPREPLY+=($(compgen -W "$names" -- "$cur"))
}

# Profile names: NAME of every NAME.conf where `hutch run --profile` looks.
_hutch_profiles()
{
	local dir f conf=${XDG_CONFIG_HOME:-}
	local -a names=()

	[[ $conf == /* ]] || conf=$HOME/.config
	for dir in "$conf/hutch/profiles" /etc/hutch/profiles; do
		for f in "$dir"/*.conf; do
			[[ -f $f ]] || continue
			f=${f##*/}
			names+=("${f%.conf}")
		done
	done
	COMPREPLY+=($(compgen -W "${names[*]}" -- "$cur"))
}

_hutch_files()
{
	if declare -F _filedir > /dev/null; then
		_filedir "$@"
	else
		compopt -o filenames 2> /dev/null
		COMPREPLY+=($(compgen -f -- "$cur"))
	fi
}

# The index in COMP_WORDS of words[$1]. bash splits "--box=NAME" into three
# COMP_WORDS ("--box" "=" "NAME"), which _init_completion -s joins again
# into one of words; _command_offset counts in COMP_WORDS.
_hutch_comp_index()
{
	local i k n=0 w eq last

	for ((i = 0; i < $1; i++)); do
		w=${words[i]}
		last=
		((${#w})) || ((n++))
		for ((k = 0; k < ${#w}; k++)); do
			[[ ${w:k:1} == = ]] && eq=1 || eq=0
			[[ $eq == "$last" ]] || ((n++))
			last=$eq
		done
	done
	printf '%s\n' "$n"
}

# The command a box (or the VM) runs, starting at word $1: its name, then
# its own arguments with its own completion.
_hutch_command()
{
	if declare -F _command_offset > /dev/null; then
		_command_offset "$(_hutch_comp_index "$1")"
	elif ((cword == $1)); then
		COMPREPLY+=($(compgen -c -- "$cur"))
	else
		_hutch_files
	fi
}

_hutch_options()
{
	COMPREPLY+=($(compgen -W "$1" -- "$cur"))
}

# run and vm run: options, then COMMAND [ARG...]. The first word that is
# not an option (or the word after --) is the command, as in hutch's
# getopt "+" parsing. $1: every option; $2: those that take a value.
_hutch_run_like()
{
	local all=$1 valued i=$3
	local -a v=($2)

	valued=" ${v[*]} "

	for (( ; i < cword; i++)); do
		if [[ ${words[i]} == -- ]]; then
			_hutch_command $((i + 1))
			return
		elif [[ $valued == *" ${words[i]} "* ]]; then
			((i++))
		elif [[ ${words[i]} != -* || ${words[i]} == - ]]; then
			_hutch_command "$i"
			return
		fi
	done
	case $prev in
	-b | --box)
		_hutch_boxes
		return
		;;
	-p | --profile)
		_hutch_profiles
		return
		;;
	--hide | --read-only | --direct | --kernel | --initrd)
		_hutch_files
		return
		;;
	--disk)
		# FILE, then ,ro ,overlay ,format=raw|qcow2 after a comma.
		if [[ $cur == *,* ]]; then
			local head=${cur%,*}
			COMPREPLY+=($(compgen -P "$head," -W "ro overlay format=raw format=qcow2" -- "${cur##*,}"))
			compopt -o nospace 2>/dev/null
		else
			_hutch_files
		fi
		return
		;;
	--deny-exec)
		if [[ $cur == */* ]]; then
			_hutch_files
		else
			COMPREPLY+=($(compgen -c -- "$cur"))
		fi
		return
		;;
	--seccomp)
		_hutch_options "default strict off"
		return
		;;
	--net)
		_hutch_options "none user"
		return
		;;
	esac
	if [[ $valued == *" $prev "* ]]; then
		return # a size, a number, a duration: nothing to offer
	fi
	if [[ $cur == -* ]]; then
		_hutch_options "$all"
	else
		_hutch_command "$cword"
	fi
}

# diff, commit, shell, reset, rm, log: options and BOX, then PATHs where
# the command takes them ($2 = paths).
_hutch_box_cmd()
{
	local opts=$1 takes_paths=$2 i n=0 dashdash=false

	for ((i = 2; i < cword; i++)); do
		if ! $dashdash && [[ ${words[i]} == -- ]]; then
			dashdash=true
		elif $dashdash || [[ ${words[i]} != -* ]]; then
			((n++))
		fi
	done
	if ! $dashdash && [[ $cur == -* ]]; then
		_hutch_options "$opts"
	elif ((n == 0)); then
		_hutch_boxes
	elif $takes_paths; then
		_hutch_files
	fi
}

_hutch()
{
	local cur prev words cword split
	local commands="run shell list diff commit reset rm log vm help version"
	local run_valued="-b --box -p --profile --hide --read-only --direct --deny-exec --allow
		--seccomp --memory --cpus --pids --timeout --max-file-size --max-open-files
		--net --publish --host-port"
	local run_flags="-r --root --no-default-hide --private-tmp -v --verbose -h --help"
	local vm_valued="--cpus --memory --kernel --initrd --append --disk --name"
	local vm_flags="--shell --trace-io --timings -h --help"

	COMPREPLY=()
	if declare -F _init_completion > /dev/null; then
		_init_completion -s || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi
	# With -s, "--box=NA" comes as prev=--box, cur=NA: the "=" form of a
	# long option completes like its two-word form.

	if ((cword == 1)); then
		if [[ $cur == -* ]]; then
			_hutch_options "-h --help --version"
		else
			_hutch_options "$commands"
		fi
		return
	fi
	case ${words[1]} in
	run)
		_hutch_run_like "$run_valued $run_flags" "$run_valued" 2
		;;
	shell)
		local i n=0
		for ((i = 2; i < cword; i++)); do
			[[ ${words[i]} == -* ]] || ((n++))
		done
		if [[ $cur == -* ]]; then
			_hutch_options "-r --root -h --help"
		elif ((n == 0)); then
			_hutch_boxes
		fi
		;;
	list)
		_hutch_options "--json --names -h --help"
		;;
	diff)
		_hutch_box_cmd "--json -h --help" true
		;;
	commit)
		_hutch_box_cmd "-n --dry-run -f --force --allow-setuid -h --help" true
		;;
	reset | rm)
		_hutch_box_cmd "-h --help" false
		;;
	log)
		_hutch_box_cmd "-f --follow --json -h --help" false
		;;
	vm)
		if ((cword == 2)); then
			_hutch_options "run assets help -h --help"
		elif [[ ${words[2]} == run ]]; then
			_hutch_run_like "$vm_valued $vm_flags" "$vm_valued" 3
		fi
		;;
	esac
}

complete -F _hutch hutch

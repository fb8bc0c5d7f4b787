#!/bin/bash
# deploy/bash-completion/numafollow, sourced in bash with bash-completion's
# own library: COMPREPLY for commands, options and --method's values; and the
# long options it offers, over all commands, are those numafollow --help
# prints, no more and no fewer.
set -eu -o pipefail
lib=/usr/share/bash-completion/bash_completion
[ -r "$lib" ] || { echo "bash-completion not installed (deploy/install-deps.sh --tests)"; exit 77; }
[ -x build/numafollow ] || { echo "FAIL: build/numafollow is not built (make)"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }

# bash-completion's library is not written for set -eu
set +eu
# shellcheck disable=SC1090
. "$lib"
. deploy/bash-completion/numafollow
set -eu

# complete WORDS...: COMPREPLY, sorted, one a line, for the command line
# WORDS with the cursor at the end of the last word ("" for a new word).
complete_line() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	set +eu
	_numafollow numafollow "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	set -eu
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

# words TEXT: its words, sorted, on one line
words() { printf '%s\n' $1 | sort | tr '\n' ' ' | sed 's/ $//'; }

# expect WHAT GOT WANT: the words of GOT are those of WANT
expect() {
	[ "$(words "$2")" = "$(words "$3")" ] || fail "$1: got '$(words "$2")', want '$3'"
	echo "-- $1: $(words "$2")"
}

expect "numafollow mi<TAB>" "$(complete_line numafollow mi)" "migrate"
expect "numafollow <TAB>" "$(complete_line numafollow "")" "migrate move show status ps top history"
expect "numafollow --<TAB>" "$(complete_line numafollow --)" "--help --version"
got=$(complete_line numafollow move --)
grep -qx -- --to <<<"$got" || fail "numafollow move --<TAB>: no --to in '$(words "$got")'"
grep -qx -- --via-agent <<<"$got" || fail "numafollow move --<TAB>: no --via-agent in '$(words "$got")'"
echo "-- numafollow move --<TAB>: $(words "$got")"
expect "numafollow migrate --method <TAB>" "$(complete_line numafollow migrate --method "")" \
	"auto migrate_pages move_pages"
expect "numafollow migrate --m<TAB>" "$(complete_line numafollow migrate --m)" "--method --max-rate"
expect "numafollow show --<TAB>" "$(complete_line numafollow show --)" "--json --help"
expect "numafollow ps --j<TAB>" "$(complete_line numafollow ps --j)" "--json"
expect "numafollow ps --json --t<TAB>" "$(complete_line numafollow ps --json --t)" "--token-file"

# every long option of --help, and no other
offered=$({
	complete_line numafollow --
	for c in migrate move show status ps top history; do complete_line numafollow "$c" --; done
} | sort -u)
help=$(build/numafollow --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
[ "$offered" = "$help" ] ||
	fail "completion (>) against --help (<): $(diff <(echo "$help") <(echo "$offered") | grep '^[<>]' | tr '\n' ' ')"
echo "-- the $(echo "$help" | wc -l) long options of numafollow --help, and no other"
echo PASS

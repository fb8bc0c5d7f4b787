#!/bin/bash
# vm: --cgroup v1
# --dry-run and every bad input exit as documented, with a clear message, and
# move nothing.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-bad 0)
pid=$(start_hog "$cg" -m 64)
set_mems "$cg" 1

unmoved() {
	expect_on "$pid" 0 "after $1"
}

# expect_exit CODE MESSAGE_REGEX ARGS...
expect_exit() {
	local want=$1 re=$2 rc=0
	shift 2
	"$NF" "$@" >"$T/out" 2>"$T/err" || rc=$?
	say "numafollow $* -> $rc: $(cat "$T/err")"
	[ "$rc" = "$want" ] || fail "numafollow $*: exit $rc, want $want"
	grep -Eq "$re" "$T/err" || fail "numafollow $*: message does not match /$re/"
	unmoved "numafollow $*"
}

"$NF" migrate --dry-run --json nf-bad >"$T/dry.json" || fail "dry run exited $?"
expect_eq dry_run "$(jq -r .dry_run "$T/dry.json")" true
expect_eq "plan" "$(jq -c '[.plan[] | select(.bytes > 1048576) | [.from, .to]]' "$T/dry.json")" "[[0,1]]"
unmoved "--dry-run"
"$NF" migrate --dry-run nf-bad | grep -q "would move  node 0 -> node 1" || fail "no human plan"

expect_exit 2 "no such cgroup" migrate nf-missing
expect_exit 2 "outside the cpuset hierarchy" migrate ../etc
expect_exit 2 "outside the cpuset hierarchy" migrate /sys/fs/cgroup/cpuset/nf-bad/../../..
expect_exit 2 "no such cgroup" migrate /etc
expect_exit 2 "no such cgroup" show /proc
expect_exit 2 "not a node list" migrate --to x nf-bad
expect_exit 2 "not a node list" migrate --to "" nf-bad
expect_exit 2 "not a node list" migrate --to 1- nf-bad
expect_exit 2 "not a node list" migrate --to 100000 nf-bad
expect_exit 2 "node 7 is offline or has no memory" migrate --to 7 nf-bad
expect_exit 2 "node 5 is offline" migrate --to 1,5 nf-bad
expect_exit 2 "offline" migrate --from 9 nf-bad
expect_exit 2 "not a number" migrate --retries -1 nf-bad
expect_exit 2 "no command" 
expect_exit 2 "unknown command" frobnicate nf-bad
expect_exit 2 "takes no option '--to'" show --to 1 nf-bad
expect_exit 2 "takes no option '--bogus'" migrate --bogus nf-bad
expect_exit 2 "'--to' needs a value" migrate nf-bad --to
expect_exit 2 "exactly one CGROUP" migrate nf-bad nf-bad

# numafollow confined to node 0 by its own cpuset: the kernel would AND the
# target with it and migrate nowhere, so numafollow refuses (exit 3).
self=$(mkcg nf-self 0)
rc=0
# shellcheck disable=SC2016
bash -c 'echo $$ >"$1/cgroup.procs" && exec "$2" migrate --to 1 nf-bad' _ "$self" "$NF" 2>"$T/err" || rc=$?
say "confined numafollow -> $rc: $(cat "$T/err")"
expect_eq "exit when confined to node 0" "$rc" 3
grep -q "its cpuset" "$T/err" || fail "no message about numafollow's own cpuset"
unmoved "a confined numafollow"

# Without privilege (nobody): the task cannot be read or moved: exit 3.
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups "$NF" migrate --json nf-bad >"$T/np.json" 2>&1 || rc=$?
say "unprivileged numafollow -> $rc: $(jq -c .errors "$T/np.json")"
expect_eq "exit without privilege" "$rc" 3
expect_eq "errno without privilege" "$(jq -r '.errors[0].errno' "$T/np.json")" EACCES
unmoved "an unprivileged numafollow"

"$NF" --help | grep -q "Exit status" || fail "--help has no exit status section"
"$NF" --version | grep -q numafollow || fail "--version"

#!/bin/bash
# vm: --cgroup v1
# --dry-run and every bad input exit as documented, with a clear message, and
# move nothing.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-bad 0)
pid=$(start_hog "$cg" -m 64)
set_mems "$cg" 1
total=$(anon_bytes "$pid" all)

unmoved() {
	expect_ge "anon still on node 0 after $1 (%)" "$(pct "$(anon_bytes "$pid" 0)" "$total")" 99
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

"$NF" --help | grep -q "Exit status" || fail "--help has no exit status section"
"$NF" --version | grep -q numafollow || fail "--version"

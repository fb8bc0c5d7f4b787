#!/bin/bash
# vm: --cgroup v2
# On v2 the kernel moves a container's pages inside the write(2) to
# cpuset.mems. A reconcile that reads the new mems during that write starts a
# migration that races the kernel's and finds the pages busy. The write's
# close (IN_CLOSE_WRITE) must still bring a clean migration: the last record
# says ok, from inotify, with nothing left behind.
. tests/vm/lib.sh
need_nodes 2

cid=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
cg=$(mkcg system.slice/docker-$cid.scope 0)
pid=$(start_hog "$cg" -m 384)
# no assist: it would shorten the write the reconcile has to fall into
start_agent --reconcile-interval 1 --assist 0

t0=$(date +%s%N)
set_mems "$cg" 1
took=$((($(date +%s%N) - t0) / 1000000))
say "the write took $took ms (the kernel migrated 384 MiB in it; a reconcile every 1 s)"
expect_on "$pid" 1 "after the write"
last_ok() {
	api "/v1/containers/$cid" | jq -e '.last_migration | .result == "ok" and .trigger == "inotify"' >/dev/null
}
wait_for "a last migration that is ok and from inotify" 30 last_ok
api "/v1/migrations?container=$cid" >"$T/m.json"
jq -c '.migrations[] | {id, trigger, result, moved_bytes, kernel_moved_bytes, residual_bytes}' "$T/m.json"
raced=$(jq '[.migrations[] | select(.trigger == "reconcile")] | length' "$T/m.json")
[ "$raced" -ge 1 ] || fail "no reconcile ran during the ${took} ms write: the race was not exercised"
say "reconcile migrations during the write: $raced"
api "/v1/containers/$cid" >"$T/c.json"
expect_eq "residual of the last migration" "$(jq -r .last_migration.residual_bytes "$T/c.json")" 0
expect_eq "API: MiB on node 0" "$(($(jq -r '.memory["0"] // 0' "$T/c.json") / MiB))" 0
grep "raced the kernel" "$T/agent.log" || fail "the agent did not say it migrated again"
echo PASS

#!/bin/bash
# vm: --cgroup v1
# On cgroup v1, a container's per-node memory comes from the memory
# controller's memory.numa_stat when its tasks' memory cgroup has the cpuset
# cgroup's path (as docker, runc and crun make them), not from a page-table
# walk of every process (numa_maps). Checked against numa_maps, before and
# after the agent's migration; a container without such a memory cgroup still
# reads numa_maps.
. tests/vm/lib.sh
need_nodes 2
mem=/sys/fs/cgroup/memory
[ -d "$mem" ] || skip "no v1 memory hierarchy"

cid=aaaabbbbccccddddeeeeffff00001111aaaabbbbccccddddeeeeffff00001111
cg=$(mkcg "docker/$cid" 0)
mkdir -p "$mem/docker/$cid"
ready=$T/ready
# shellcheck disable=SC2016
setsid bash -c 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2/cgroup.procs" && exec "$3" -r "$4" -m 192' \
	_ "$cg" "$mem/docker/$cid" "$MEMHOG" "$ready" </dev/null >/dev/null 2>&1 &
wait_for "memhog" 60 test -s "$ready"
pid=$(cat "$ready")

# show SOURCE NODE: numafollow show's source and MiB on NODE match numa_maps'.
check() {
	"$NF" show --json "docker/$cid" >"$T/s.json" || fail "show exited $?"
	expect_eq "source" "$(jq -r .source "$T/s.json")" memory.numa_stat
	local got want
	got=$(($(jq -r --arg n "$1" '.memory_anon[$n] // 0' "$T/s.json") / MiB))
	want=$(($(anon_bytes "$pid" "$1") / MiB))
	say "node $1: memory.numa_stat $got MiB, numa_maps $want MiB"
	[ "$got" -ge $((want - 4)) ] && [ "$got" -le $((want + 4)) ] ||
		fail "memory.numa_stat says $got MiB on node $1, numa_maps $want MiB: $(cat "$T/s.json")"
}
check 0

start_agent
set_mems "$cg" 1
rec_ok() { api "/v1/containers/$cid" | jq -e '.last_migration.result == "ok"' >/dev/null; }
wait_for "the migration record" 60 rec_ok
expect_on "$pid" 1 "after the agent's migration"
check 1
api "/v1/containers/$cid" >"$T/c.json"
expect_ge "API: MiB on node 1" "$(($(jq -r '.memory["1"] // 0' "$T/c.json") / MiB))" 190

# No memory cgroup of its own: numa_maps.
cg2=$(mkcg other 0)
pid2=$(start_hog "$cg2" -m 16)
"$NF" show --json other >"$T/s.json" || fail "show exited $?"
expect_eq "source without a memory cgroup of that path" "$(jq -r .source "$T/s.json")" numa_maps
kill "$pid2"
echo PASS

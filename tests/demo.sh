#!/bin/bash
# make demo, inside the NUMA VM (run once on cgroup v2, once on v1): the agent
# numafollowd watches every cgroup; a container with 256 MiB on node 0 gets
# cpuset.mems 1, and its memory follows, shown by numafollow ps, the JSON API
# and numactl's numastat.
. tests/vm/lib.sh
need_nodes 2
export PATH=$PWD/build:$PATH NUMAFOLLOW_SOCKET=$SOCK

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
v=$([ "$(cg_root)" = /sys/fs/cgroup ] && echo v2 || echo v1)
cid=4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0

step "cgroup $v: a container cgroup (docker's systemd layout) on node 0 with a 256 MiB process"
cg=$(mkcg "system.slice/docker-$cid.scope" 0)
pid=$(start_hog "$cg" -m 256)
numafollow show "system.slice/docker-$cid.scope"

step "numafollowd starts: it scans and watches every cgroup"
start_agent --log-level info
numafollow status
numafollow ps

if [ "$v" = v1 ]; then
	step "echo 1 > cpuset.mems: on v1 (memory_migrate=0) the kernel moves nothing; the agent does"
else
	step "echo 1 > cpuset.mems: on v2 the kernel moves the pages in the write; the agent verifies"
fi
set_mems "$cg" 1
done_() { api "/v1/containers/$cid" | jq -e '.last_migration.result != null' >/dev/null; }
wait_for "the agent's migration" 60 done_
numafollow ps
numafollow history

step "the same through the JSON API: curl --unix-socket \$SOCK http://nf/v1/containers/${cid:0:12}..."
api "/v1/containers/$cid" | jq '{id, runtime, cgroup, mems_effective, tasks, memory, residual_bytes, state,
	last_migration: (.last_migration | {trigger, from, to, result, kernel_moved_bytes, moved_bytes, residual_bytes, duration_ms})}'

step "numastat -p $pid (numactl's view, independent of numafollow)"
numastat -p "$pid"

step "the agent's log"
cat "$T/agent.log"

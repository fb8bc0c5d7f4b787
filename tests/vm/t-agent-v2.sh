#!/bin/bash
# vm: --cgroup v2
# The agent on cgroup v2: a cpuset.mems write on a container cgroup (the kernel
# moves the pages in the write) is seen through inotify, verified and recorded;
# an ancestor's write is followed by its descendants; kubelet layouts are named.
. tests/vm/lib.sh
need_nodes 2

cid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cg=$(mkcg system.slice/docker-$cid.scope 0)
pid=$(start_hog "$cg" -m 128)
start_agent

api "/v1/containers/$cid" >"$T/c.json"
jq -c 'del(.annotations)' "$T/c.json"
expect_eq runtime "$(jq -r .runtime "$T/c.json")" docker
expect_eq cgroup "$(jq -r .cgroup "$T/c.json")" "/system.slice/docker-$cid.scope"
expect_eq state "$(jq -r .state "$T/c.json")" in_sync
expect_eq tasks "$(jq -r .tasks "$T/c.json")" 1
expect_ge "API: MiB on node 0" "$(($(jq -r '.memory["0"] // 0' "$T/c.json") / MiB))" 127

set_mems "$cg" 1
expect_on "$pid" 1 "after the v2 write"
last_ok() { [ "$(api "/v1/containers/$cid" | jq -r '.last_migration.result')" = ok ]; }
wait_for "the migration record" 20 last_ok
api "/v1/containers/$cid" >"$T/c.json"
jq -c .last_migration "$T/c.json"
expect_eq trigger "$(jq -r .last_migration.trigger "$T/c.json")" inotify
expect_eq from "$(jq -r .last_migration.from "$T/c.json")" 0
expect_eq to "$(jq -r .last_migration.to "$T/c.json")" 1
expect_ge "kernel moved MiB" "$(($(jq -r .last_migration.kernel_moved_bytes "$T/c.json") / MiB))" 127
expect_eq "agent residual" "$(jq -r .last_migration.residual_bytes "$T/c.json")" 0
expect_ge "API: MiB on node 1" "$(($(jq -r '.memory["1"] // 0' "$T/c.json") / MiB))" 127
expect_eq "API: MiB on node 0" "$(($(jq -r '.memory["0"] // 0' "$T/c.json") / MiB))" 0
expect_eq mems_effective "$(jq -r .mems_effective "$T/c.json")" 1
api "/v1/migrations?container=$cid" | jq -e '.migrations | length == 1' >/dev/null ||
	fail "GET /v1/migrations?container= does not list exactly the one migration"

cat "$T/agent.log"

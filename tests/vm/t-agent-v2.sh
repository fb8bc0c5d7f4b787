#!/bin/bash
# vm: --cgroup v2
# The agent on cgroup v2: a cpuset.mems write on a container cgroup (the kernel
# moves the pages in the write) is seen through inotify, verified and recorded;
# an ancestor's write is followed by its descendants; kubelet layouts (systemd
# and cgroupfs drivers) are named; cgroups come and go; the history survives a
# SIGKILL; /metrics passes promtool.
. tests/vm/lib.sh
need_nodes 2

cid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cg=$(mkcg system.slice/docker-$cid.scope 0)
pid=$(start_hog "$cg" -m 128)
# no reconcile: the test counts records and ids, which a tick that reads a
# write's new mems first (t-agent-race.sh) would add to
start_agent --reconcile-interval 3600

# The root cgroup is the machine, not a container: a registration of pid 1
# is refused, and nothing takes the name "init".
got=$(api_status /v1/containers -X POST -d '{"id": "init", "pid": 1}')
expect_eq "POST {id: init, pid: 1}" "$got" 400
jq -e '.error | test("root cgroup")' "$T/body" >/dev/null || fail "root registration: $(cat "$T/body")"
expect_eq "GET /v1/containers/init" "$(api_status /v1/containers/init)" 404

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
# the agent's assist may move part of it inside the write, beside the kernel
expect_ge "kernel (and assist) moved MiB" "$(($(jq -r '.last_migration | .kernel_moved_bytes + .assisted_bytes' "$T/c.json") / MiB))" 127
expect_eq "agent residual" "$(jq -r .last_migration.residual_bytes "$T/c.json")" 0
expect_ge "API: MiB on node 1" "$(($(jq -r '.memory["1"] // 0' "$T/c.json") / MiB))" 127
expect_eq "API: MiB on node 0" "$(($(jq -r '.memory["0"] // 0' "$T/c.json") / MiB))" 0
expect_eq mems_effective "$(jq -r .mems_effective "$T/c.json")" 1
api "/v1/migrations?container=$cid" | jq -e '.migrations | length == 1' >/dev/null ||
	fail "GET /v1/migrations?container= does not list exactly the one migration"

seen() { api /v1/containers | jq -e --arg id "$1" '.containers | any(.id == $id)' >/dev/null; }

# An ancestor narrowed: the descendant's effective mems change without an event
# of its own; the agent watches the ancestor too.
uid=8d1b3e0a-5b1c-4a43-9d0e-2f4a1c9b7e21
kid=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
pod=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice
kcg=$(mkcg "$pod/cri-containerd-$kid.scope" "") # inherits
set_mems "$(cg_root)/kubepods.slice" 0
kpid=$(start_hog "$kcg" -m 64)
wait_for "the descendant in /v1/containers" 60 seen "$kid"
api "/v1/containers/$kid" >"$T/k.json"
expect_eq "kubelet systemd: pod uid" "$(jq -r .pod.uid "$T/k.json")" "$uid"
expect_eq "kubelet systemd: runtime" "$(jq -r .runtime "$T/k.json")" containerd
expect_on "$kpid" 0 "before the ancestor's write"
set_mems "$(cg_root)/kubepods.slice" 1
expect_on "$kpid" 1 "after the ancestor's write"
kid_ok() { api "/v1/containers/$kid" | jq -e '.last_migration | .result == "ok" and .trigger == "inotify" and .to == "1"' >/dev/null; }
wait_for "the descendant's migration record" 20 kid_ok
api "/v1/containers/$kid" | jq -c .last_migration

# The cgroupfs driver: /kubepods/besteffort/pod<uid>/<id>, created while the agent runs.
uid2=11111111-2222-3333-4444-555555555555
cid2=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789
ccg=$(mkcg "kubepods/besteffort/pod$uid2/$cid2" 0)
cpid=$(start_hog "$ccg" -m 16)
wait_for "the new cgroup in /v1/containers" 60 seen "$cid2"
api "/v1/containers/$cid2" >"$T/c2.json"
expect_eq "kubelet cgroupfs: pod uid" "$(jq -r .pod.uid "$T/c2.json")" "$uid2"
expect_eq "kubelet cgroupfs: cgroup" "$(jq -r .cgroup "$T/c2.json")" "/kubepods/besteffort/pod$uid2/$cid2"
"$NF" ps --socket "$SOCK"

# Its tasks exit, then the cgroup goes: it leaves the list.
kill "$cpid"
gone() { ! seen "$1"; }
wait_for "the emptied cgroup to leave /v1/containers" 10 gone "$cid2"
watched=$(api /v1/status | jq .cgroups_watched)
rmdir "$ccg"
fewer() { [ "$(api /v1/status | jq .cgroups_watched)" = $((watched - 1)) ]; }
wait_for "the removed cgroup to leave the watched ones" 10 fewer
[ "$(api_status "/v1/containers/$cid2")" = 404 ] || fail "a removed container is still found"
say "created, emptied and removed cgroups tracked"

# /metrics is valid Prometheus text and carries the container's bytes.
api /metrics >"$T/metrics"
promtool check metrics <"$T/metrics" || fail "promtool check metrics rejected /metrics"
grep -q "^numafollow_container_memory_bytes{container=\"$cid\".*node=\"1\"} " "$T/metrics" ||
	fail "/metrics has no node 1 bytes for $cid"
ok=$(api /v1/migrations | jq '[.migrations[] | select(.result == "ok")] | length')
expect_ge "ok migrations" "$ok" 2
grep -q "^numafollow_migrations_total{result=\"ok\"} $ok\$" "$T/metrics" ||
	fail "/metrics: not $ok ok migrations: $(grep '^numafollow_migrations_total' "$T/metrics")"
say "promtool check metrics: ok"

# SIGKILL: the journal keeps every finished migration; the restart rebuilds state.
api /v1/migrations | jq -S '[.migrations[] | del(.duration_ms)]' >"$T/hist-before"
kill -9 "$AGENT"
wait "$AGENT" 2>/dev/null || true
start_agent --reconcile-interval 3600
api /v1/migrations | jq -S '[.migrations[] | del(.duration_ms)]' >"$T/hist-after"
diff "$T/hist-before" "$T/hist-after" || fail "the history changed across a SIGKILL"
expect_ge "records after the restart" "$(jq length "$T/hist-after")" 2
api "/v1/containers/$cid" >"$T/c.json"
expect_eq "state after the restart" "$(jq -r .state "$T/c.json")" in_sync
expect_eq "last migration after the restart" "$(jq -r .last_migration.id "$T/c.json")" 1
expect_eq "effective mems after the restart" "$(jq -r .mems_effective "$T/c.json")" 1
set_mems "$cg" 0
expect_on "$pid" 0 "after a write to the restarted agent"
next_ok() { api "/v1/containers/$cid" | jq -e '.last_migration.id == 3 and .last_migration.result == "ok"' >/dev/null; }
wait_for "migration 3 after the restart" 20 next_ok
say "history intact across SIGKILL; ids continue"

# The staged move through the API: the agent writes old and new, moves with
# its engine, then writes the new set; its own writes ask for nothing more.
n0=$(api "/v1/migrations?container=$cid" | jq '.migrations | length')
expect_eq "POST move to 1" "$(api_status "/v1/containers/$cid/move" -X POST -d '{"to": "1"}')" 202
mid=$(jq -r .id "$T/body")
moved() { api "/v1/migrations/$mid" | jq -e '.result == "ok"' >/dev/null; }
wait_for "the staged move" 60 moved
api "/v1/migrations/$mid" >"$T/m.json"
jq -c '{trigger, from, to, result, method, moved_bytes, stages}' "$T/m.json"
expect_eq trigger "$(jq -r .trigger "$T/m.json")" move
expect_eq "cpuset.mems after the move" "$(cat "$cg/cpuset.mems")" 1
expect_on "$pid" 1 "after the agent's staged move"
jq -e '.stages | has("widen_ms") and has("move_ms") and has("narrow_ms")' "$T/m.json" >/dev/null ||
	fail "the record has no stages: $(cat "$T/m.json")"
expect_eq "records of $cid after the move" \
	"$(api "/v1/migrations?container=$cid" | jq '.migrations | length')" $((n0 + 1))
for body in '{"to": "7"}' '{"to": 1}' '{"to": "0-x"}' 'not json' '{}'; do
	expect_eq "POST move $body" "$(api_status "/v1/containers/$cid/move" -X POST -d "$body")" 400
done
expect_eq "POST move, unknown container" "$(api_status /v1/containers/nope/move -X POST -d '{"to": "0"}')" 404
expect_eq "cpuset.mems after the bad moves" "$(cat "$cg/cpuset.mems")" 1

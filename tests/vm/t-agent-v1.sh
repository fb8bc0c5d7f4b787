#!/bin/bash
# vm: --cgroup v1
# The agent on cgroup v1 with memory_migrate=0, where the kernel moves nothing:
# the agent alone moves a container's memory on the write's event (started
# within 15 s of it, the emulator's margin) and records it; a change during a migration supersedes
# it; a change made while the agent was down is repaired when it starts; a
# container whose tasks exit leaves the list (found by the reconcile: v1 has no
# event for it); migrate --via-agent runs one on request; SIGTERM lets a
# running migration finish.
. tests/vm/lib.sh
need_nodes 2

cid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cg=$(mkcg "docker/$cid" 0)
expect_eq memory_migrate "$(cat "$cg/cpuset.memory_migrate")" 0
pid=$(start_hog "$cg" -m 256)
start_agent --reconcile-interval 2
api "/v1/containers/$cid" | jq -e '.runtime == "docker" and .state == "in_sync"' >/dev/null ||
	fail "container not listed as docker/in_sync: $(api "/v1/containers/$cid")"

t0=$(date +%s%N)
set_mems "$cg" 1
moved() { [ "$(pct "$(anon_bytes "$pid" 1)" "$(anon_bytes "$pid" all)")" -ge 99 ]; }
wait_for "the agent to move the memory" 60 moved
t1=$(date +%s%N)
rec_ok() { api "/v1/containers/$cid" | jq -e '.last_migration.result == "ok"' >/dev/null; }
wait_for "the migration record" 20 rec_ok
api "/v1/containers/$cid" >"$T/c.json"
jq -c .last_migration "$T/c.json"
expect_on "$pid" 1 "after the agent's migration"
expect_eq trigger "$(jq -r .last_migration.trigger "$T/c.json")" inotify
expect_ge "agent moved MiB" "$(($(jq -r .last_migration.moved_bytes "$T/c.json") / MiB))" 255
expect_eq "kernel moved MiB" "$(($(jq -r .last_migration.kernel_moved_bytes "$T/c.json") / MiB))" 0
dur=$(jq -r .last_migration.duration_ms "$T/c.json")
lag=$(($(date -d "$(jq -r .last_migration.started_at "$T/c.json")" +%s%3N) - t0 / 1000000))
say "write -> migration started: $lag ms; it took $dur ms; the test saw the memory on node 1 after $(((t1 - t0) / 1000000)) ms"
# trigger=inotify shows the event path; the bound (the emulator's margin: a
# loaded host stalls the VM for seconds) catches a migration left waiting
[ "$lag" -le 15000 ] || fail "the agent started the migration $lag ms after the write (limit 15000)"

# Supersede: four processes (the engine checks between tasks); mems back to 0
# while the migration to 1 runs.
sid=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
scg=$(mkcg "docker/$sid" 0)
pids=()
for _ in 1 2 3 4; do pids+=("$(start_hog "$scg" -m 96)"); done
set_mems "$scg" 1
running() { api "/v1/migrations?container=$sid&limit=1" | jq -e '.migrations[0].result == "running"' >/dev/null; }
wait_for "the migration to start" 20 running
set_mems "$scg" 0
settled() { api "/v1/containers/$sid" | jq -e '.state == "in_sync"' >/dev/null; }
wait_for "the superseding migration" 60 settled
api "/v1/migrations?container=$sid" >"$T/s.json"
jq -c '.migrations[] | {id, trigger, from, to, result, tasks, moved_bytes}' "$T/s.json"
# (a reconcile, every 2 s here, may also have repaired the first hog's drift)
expect_eq "results of the writes' migrations, newest first" \
	"$(jq -r '[.migrations[] | select(.trigger == "inotify") | .result] | join(",")' "$T/s.json")" ok,superseded
for p in "${pids[@]}"; do expect_on "$p" 0 "after the superseding migration"; done

# Tasks all exit: the reconcile (every 2 s here) drops it from the list.
kill "${pids[@]}"
seen() { api /v1/containers | jq -e --arg id "$1" '.containers | any(.id == $id)' >/dev/null; }
gone() { ! seen "$1"; }
wait_for "the emptied container to leave the list" 10 gone "$sid"
say "a container whose tasks exited left the list"

# The agent down while the mems change: the restarted agent repairs the drift.
kill -9 "$AGENT"
wait "$AGENT" 2>/dev/null || true
set_mems "$cg" 0
sleep 0.5
expect_on "$pid" 1 "after the v1 write with the agent down"
start_agent --reconcile-interval 2
repaired() { api "/v1/containers/$cid" | jq -e '.last_migration.trigger == "reconcile" and .last_migration.result == "ok"' >/dev/null; }
wait_for "the restarted agent to repair the drift" 60 repaired
expect_on "$pid" 0 "after the restarted agent's reconcile"

# On request.
"$NF" migrate --via-agent --socket "$SOCK" "$cid" || fail "migrate --via-agent exited $?"
"$NF" history --socket "$SOCK" "$cid"
expect_eq "last trigger" "$(api "/v1/containers/$cid" | jq -r .last_migration.trigger)" api
"$NF" status --socket "$SOCK"

# SIGTERM during a migration: it finishes, is journaled, and the agent exits 0.
set_mems "$cg" 1
running() { api "/v1/migrations?container=$cid&limit=1" | jq -e '.migrations[0].result == "running"' >/dev/null; }
wait_for "the migration to start" 20 running
kill -TERM "$AGENT"
wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
expect_on "$pid" 1 "after SIGTERM during the migration"
start_agent
expect_eq "the drained migration, after a restart" \
	"$(api "/v1/containers/$cid" | jq -r '.last_migration | "\(.to) \(.result)"')" "1 ok"

# SIGKILL while a migration runs: its id was journaled when handed out, so
# the restarted agent neither forgets it nor hands it out again. (Should it
# have ended before the kill landed, it is journaled as ended.)
set_mems "$cg" 0
wait_for "the migration to start" 20 running
mid=$(api "/v1/migrations?container=$cid&limit=1" | jq -r '.migrations[0].id')
kill -9 "$AGENT"
wait "$AGENT" 2>/dev/null || true
start_agent
api "/v1/migrations/$mid" >"$T/m.json" || fail "migration $mid is gone after a SIGKILL"
say "after SIGKILL: $(jq -c '{id, result, errors}' "$T/m.json")"
jq -e '(.result == "failed" and (.errors[0] | test("stopped before"))) or .result == "ok"' \
	"$T/m.json" >/dev/null || fail "migration $mid after a SIGKILL: $(cat "$T/m.json")"
next=$(api "/v1/containers/$cid/migrate" -X POST | jq -r .id)
[ "$next" -gt "$mid" ] || fail "a new migration got id $next, not above $mid"
expect_eq "records with id $mid" \
	"$(api '/v1/migrations?limit=1000' | jq --argjson id "$mid" '[.migrations[] | select(.id == $id)] | length')" 1

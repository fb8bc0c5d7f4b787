#!/bin/bash
# vm: --cgroup v2
# The agent's staged move (POST /v1/containers/{id}/move) at its edges:
# 1. SIGKILLed between its writes (cpuset.mems widened to old u new, the
#    engine under way): the restart finds the move's journaled record cut
#    short and the widened set still there, and resumes the move to its
#    target: cpuset.mems ends as the target and memory.numa_stat shows the
#    memory there (it stayed widened for good before).
# 2. Another writer's cpuset.mems during a move win: the move does not narrow
#    over them, says so in the log, its record is superseded, and the agent
#    follows the new mems as a change (the move's target overwrote them
#    before).
# Each waits for the widened set in cpuset.mems, the move being paced by
# --max-rate so that the engine is still at work then.
. tests/vm/lib.sh
need_nodes 2

cid=5151515151515151515151515151515151515151515151515151515151515151
cg=$(mkcg system.slice/docker-$cid.scope 0)
pid=$(start_hog "$cg" -m 192)

# anon_pct NODE: percent of the container's anon (memory.numa_stat) on NODE.
anon_pct() {
	awk -v n="N$1=" '$1 == "anon" {
		for (i = 2; i <= NF; i++) { split($i, a, "="); all += a[2]; if (index($i, n) == 1) on = a[2] }
		printf "%d\n", all ? on * 100 / all : 0 }' "$cg/memory.numa_stat"
}
mems_are() { [ "$(cat "$cg/cpuset.mems")" = "$1" ]; }
result_of() { api "/v1/migrations/$1" | jq -r .result; }
done_as() { [ "$(result_of "$1")" = "$2" ]; }

# 1. SIGKILL between the widening and the narrowing. 192 MiB at 8 MiB/s: the
# engine takes some 24 s, the widened set is there that long.
start_agent --reconcile-interval 3600 --max-rate 8
expect_eq "POST move to 1" "$(api_status "/v1/containers/$cid/move" -X POST -d '{"to": "1"}')" 202
mid=$(jq -r .id "$T/body")
wait_for "cpuset.mems widened to 0-1" 60 mems_are 0-1
expect_eq "the move's record while widened" "$(result_of "$mid")" running
kill -KILL "$AGENT"
wait "$AGENT" 2>/dev/null || true
AGENT=
expect_eq "cpuset.mems after the SIGKILL" "$(cat "$cg/cpuset.mems")" 0-1
# what the journal holds of it: running, from and to (the widened set is their union)
grep "\"id\":$mid," "$T/state/history.journal" | tail -n 1 | cut -d' ' -f2- |
	jq -c '{id, trigger, from, to, result}' >"$T/j.json"
cat "$T/j.json"
expect_eq "the journal's last line of move $mid" "$(jq -c '[.result, .from, .to]' "$T/j.json")" \
	'["running","0","1"]'
start_agent --reconcile-interval 3600
expect_eq "the cut move's record after the restart" "$(result_of "$mid")" failed
grep -q "staged move $mid was cut short with cpuset.mems widened to 0-1; resuming it to 1" \
	"$T/agent.log" || fail "the restart does not say it resumes move $mid"
rid=$(api "/v1/migrations?container=$cid" | jq -r --argjson m "$mid" \
	'[.migrations[] | select(.trigger == "move" and .id > $m)][0].id')
[ "$rid" != null ] || fail "no resumed move in the history"
wait_for "the resumed move $rid" 120 done_as "$rid" ok
api "/v1/migrations/$rid" | jq -c '{id, trigger, from, to, result, moved_bytes, stages}'
expect_eq "cpuset.mems after the resumed move" "$(cat "$cg/cpuset.mems")" 1
grep anon "$cg/memory.numa_stat" | head -n 1
expect_ge "memory.numa_stat: anon on node 1 (%)" "$(anon_pct 1)" 99
expect_on "$pid" 1 "after the resumed move"

# 2. Another writer during a move: back to node 1 while the move to node 0
# has the mems widened. Theirs stay; the move is superseded; the memory
# follows them.
kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $?"
AGENT=
start_agent --reconcile-interval 3600 --max-rate 8
expect_eq "POST move to 0" "$(api_status "/v1/containers/$cid/move" -X POST -d '{"to": "0"}')" 202
mid=$(jq -r .id "$T/body")
wait_for "cpuset.mems widened to 0-1" 60 mems_are 0-1
set_mems "$cg" 1
wait_for "the move $mid to end" 120 done_as "$mid" superseded
api "/v1/migrations/$mid" | jq -c '{id, trigger, from, to, result, moved_bytes}'
expect_eq "cpuset.mems after the move (the other writer's)" "$(cat "$cg/cpuset.mems")" 1
grep -q "cpuset.mems were written to 1 by someone else during staged move $mid to 0" \
	"$T/agent.log" || fail "the log does not say the move met another writer's mems"
# the change followed: a migration after the move's, to node 1, that ends ok
followed() {
	api "/v1/migrations?container=$cid" | jq -e --argjson m "$mid" \
		'[.migrations[] | select(.id > $m and .to == "1" and .result == "ok")] | length >= 1' >/dev/null
}
wait_for "the agent to follow the other writer's mems" 120 followed
api "/v1/migrations?container=$cid&limit=1" | jq -c '.migrations[0] | {id, trigger, from, to, result}'
expect_eq "cpuset.mems at the end" "$(cat "$cg/cpuset.mems")" 1
grep anon "$cg/memory.numa_stat" | head -n 1
expect_ge "memory.numa_stat: anon on node 1 (%)" "$(anon_pct 1)" 99
expect_on "$pid" 1 "after the other writer's mems"

#!/bin/bash
# vm: --cgroup v2
# GET /v1/events with curl as an independent client: a staged move's start,
# its progress (also in the running record) and its end; a container's mems
# changed, added, removed. A client that connects and never reads does not
# hold migrations up, and costs the agent a bounded queue (--events-queue):
# it is cut (event lost) or dropped, while curl misses nothing.
. tests/vm/lib.sh
need_nodes 2
command -v python3 >/dev/null || skip "python3 not installed"

cg=$(mkcg nf-ev/big 0)
start_hog "$cg" -m 256 >/dev/null
start_agent --cgroup-root /nf-ev --events-queue 8 --max-rate 64
id=$(api /v1/containers | jq -r '.containers[] | select(.cgroup == "/nf-ev/big") | .id')
[ -n "$id" ] || fail "no container /nf-ev/big"

curl -sS -N --unix-socket "$SOCK" http://nf/v1/events >"$T/events" 2>"$T/curl.err" &
CURL=$!
following() { grep -q '^: numafollow events' "$T/events"; }
wait_for "curl to follow the events" 30 following

# A client that connects, asks, and never reads a byte.
python3 - "$SOCK" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: nf\r\n\r\n")
time.sleep(3600)
PY
SLOW=$!
two() { [ "$(api /v1/status | jq .events.clients)" = 2 ]; }
wait_for "two event clients" 30 two

# data of the events of TYPE, one JSON a line (test them with jq -n 'any(inputs; ...)':
# jq -e 'select(...)' exits 0 on no input at all)
events() { awk -v t="$1" '$0 == "event: " t { getline; sub(/^data: /, ""); print }' "$T/events"; }

say "a staged move of 256 MiB at 64 MiB/s: start, progress, end"
rec=$(api "/v1/containers/$id/move" -X POST -d '{"to": "1"}' | jq .id)
running_with_progress() {
	api "/v1/migrations/$rec" | jq -e '.result == "running" and .progress.total_bytes > 0 and
		(.progress | has("phase") and has("moved_bytes") and has("rate_bytes_per_s") and has("eta_s"))' >/dev/null
}
wait_for "the running record's progress" 60 running_with_progress
api "/v1/migrations/$rec" | jq -c .progress
ended() { events migration-end | jq -n -e --argjson r "$rec" 'any(inputs; .id == $r)' >/dev/null; }
wait_for "migration-end of $rec" 120 ended
events migration-start | jq -n -e --argjson r "$rec" 'any(inputs; .id == $r and .result == "running")' >/dev/null ||
	fail "no migration-start for $rec: $(head -c 2000 "$T/events")"
n=$(events migration-progress | jq -s --argjson r "$rec" '[.[] | select(.id == $r and .progress.total_bytes > 0)] | length')
expect_ge "progress events of $rec" "$n" 1
events migration-progress | jq -c --argjson r "$rec" 'select(.id == $r) | .progress' | tail -n 2
events migration-end | jq -n -e --argjson r "$rec" 'any(inputs; .id == $r and .result == "ok" and .moved_bytes > 0 and (has("progress") | not))' >/dev/null ||
	fail "migration-end of $rec: $(events migration-end)"
# the order: start, progress..., end
order=$(grep -E '^data: ' "$T/events" | sed 's/^data: //' | jq -r --argjson r "$rec" 'select(.id == $r) | if has("progress") then "p" else .result end' | uniq | paste -sd' ')
expect_eq "events of $rec" "$order" "running p ok"

say "mems written by hand: container-mems, then the agent's migration"
set_mems "$cg" 0
mems() { events container-mems | jq -n -e --arg id "$id" 'any(inputs; .id == $id and .from == "1" and .mems_effective == "0")' >/dev/null; }
wait_for "container-mems" 60 mems

say "a container comes and goes"
small=$(mkcg nf-ev/small 0)
hog=$(start_hog "$small" -m 4)
added() { events container-added | jq -n -e 'any(inputs; .cgroup == "/nf-ev/small")' >/dev/null; }
wait_for "container-added" 60 added
kill "$hog"
gone() { [ -z "$(cat "$small/cgroup.procs")" ]; }
wait_for "the hog's end" 30 gone
rmdir "$small"
removed() { events container-removed | jq -n -e 'any(inputs; .cgroup == "/nf-ev/small")' >/dev/null; }
wait_for "container-removed" 60 removed

say "many small migrations while a client never reads"
small=$(mkcg nf-ev/flip 0)
start_hog "$small" -m 2 >/dev/null
fid=""
known() { fid=$(api /v1/containers | jq -r '.containers[] | select(.cgroup == "/nf-ev/flip") | .id'); [ -n "$fid" ]; }
wait_for "the flipping container" 60 known
ends() { events migration-end | jq -s --arg id "$fid" '[.[] | select(.container == $id)] | length'; }
flips=0
bounded() {
	local s
	s=$(api /v1/status | jq -c .events)
	[ "$(jq .queued_max <<<"$s")" -le 8 ] || fail "a client's queue is over --events-queue: $s"
	jq -e '.lost > 0 or .clients == 1' <<<"$s" >/dev/null
}
while ! bounded; do
	[ "$flips" -lt 200 ] || fail "the slow client was neither cut nor dropped: $(api /v1/status | jq -c .events)"
	flips=$((flips + 1))
	set_mems "$small" $((flips % 2))
	done_flip() { [ "$(ends)" -ge "$flips" ]; }
	wait_for "migration $flips of the flipping container to end" 60 done_flip
done
say "after $flips flips: $(api /v1/status | jq -c .events)"
kill -0 "$SLOW" || fail "the slow client is gone by itself"
! grep -q '^event: lost' "$T/events" || fail "curl, which reads, lost events"
api "/v1/migrations?container=$fid&limit=1000" | jq -e '[.migrations[] | select(.result != "ok")] | length == 0' >/dev/null ||
	fail "a migration did not end ok: $(api "/v1/migrations?container=$fid" | jq -c '[.migrations[].result]')"
kill "$SLOW"

# The agent stops with a client following: curl sees the end of the stream.
kill "$AGENT"; wait "$AGENT" || fail "numafollowd exited $? on SIGTERM with followers"
AGENT=
wait "$CURL" || true
grep -q "stopped" "$T/agent.log" || fail "no clean stop"
echo PASS

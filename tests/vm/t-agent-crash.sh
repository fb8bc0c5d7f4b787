#!/bin/bash
# vm: --cgroup v2 --nodes 2 --timeout 1200
# Crash and full disk.
# 1. numafollowd is SIGKILLed 20 times (NF_CRASH_ROUNDS; make soak: 200), each
#    at a random moment (0-300 ms) after it handed out its first id, while
#    containers' mems flip and registrations and migrate requests come in
#    (tests/vm/crash-load.py), and every fifth time once more while it starts;
#    it is restarted on the same state dir. It always starts; no id is handed
#    out again by a later run; the journal has no torn line and no record
#    handed out or concluded twice; the history holds every id handed out,
#    once; what a kill cut short is concluded.
# 2. On a full state dir (a 256 KiB tmpfs) the agent still watches and
#    migrates, and says in /v1/status, /metrics and its log, once, that history
#    is not being written; with space back it writes again what it missed, so
#    a restart replays the history as it was, ids going on.
. tests/vm/lib.sh
need_nodes 2

ROUNDS=${NF_CRASH_ROUNDS:-20}
STOPPED="numafollowd stopped before this migration ended"

# check_journal FILE [idle]: every line is "<crc32> <json>\n" with its CRC
# right; each record first appears in increasing id order, is written as
# queued at most once and concluded at most once, after that. With "idle":
# every record is concluded.
check_journal() {
	local f=$1
	[ -s "$f" ] || fail "$f is empty"
	[ -z "$(tail -c 1 "$f")" ] || fail "$f: the last line is not whole"
	/usr/bin/python3 - "$f" <<-'EOF' || fail "$f: a torn or damaged line"
		import sys, zlib
		for n, line in enumerate(open(sys.argv[1], 'rb'), 1):
		    crc, _, rec = line.rstrip(b'\n').partition(b' ')
		    try:
		        ok = len(crc) == 8 and int(crc, 16) == zlib.crc32(rec)
		    except ValueError:
		        ok = False
		    if not ok:
		        sys.exit(f'line {n}: {line[:100]!r}')
	EOF
	cut -c10- "$f" | jq -R -r 'fromjson | "\(.id) \(.result)"' >"$T/lines" ||
		fail "$f: a line is not JSON"
	awk -v idle="${2:-}" '
	!($1 in seen) {
		if ($1 + 0 <= last) { print "id " $1 " first appears after id " last; bad = 1 }
		seen[$1] = 1; last = $1 + 0
	}
	$2 == "queued" {
		if ($1 in out) { print "id " $1 " handed out twice"; bad = 1 }
		if ($1 in done) { print "id " $1 " handed out after its conclusion"; bad = 1 }
		out[$1] = 1; next
	}
	$2 == "running" { # a staged move, journaled as it starts
		if ($1 in ran) { print "id " $1 " started twice"; bad = 1 }
		if ($1 in done) { print "id " $1 " started after its conclusion"; bad = 1 }
		ran[$1] = 1; next
	}
	{
		if ($1 in done) { print "id " $1 " concluded twice"; bad = 1 }
		done[$1] = 1
	}
	END {
		for (id in seen) if (idle && !(id in done)) { print "id " id " never concluded"; bad = 1 }
		exit bad
	}' "$T/lines" || fail "$f: records out of order"
	say "$f: $(wc -l <"$f") lines, whole, CRCs right; $(awk '{ print $1 }' "$T/lines" | sort -u | wc -l) records, in id order, none handed out or concluded twice"
}

idle() {
	api /v1/status | jq -e '.queued == 0' >/dev/null &&
		api /v1/containers | jq -e 'all(.containers[]; .state != "migrating")' >/dev/null
}

# ---- 1. SIGKILL at random moments ----

hogs=()
for n in 1 2 3; do
	cg=$(mkcg "nf-crash/c$n" 0)
	hogs+=("$cg:$(start_hog "$cg" -m 4)")
done
AGENT_ARGS=(--cgroup-root /nf-crash --history 100000)

# kill_agent: SIGKILL; it must not have exited before.
kill_agent() {
	local rc=0
	kill -9 "$AGENT"
	wait "$AGENT" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || fail "numafollowd had exited by itself (status $rc) before the kill"
	AGENT=
}

# Each run of the agent, in order, by pid: the load names the run that handed
# an id out by its pid.
start_agent "${AGENT_ARGS[@]}"
echo "$AGENT" >"$T/runs"
: >"$T/ids"
/usr/bin/python3 tests/vm/crash-load.py "$SOCK" "$T/stop" "$T/ids" "${hogs[@]}" >"$T/load.out" 2>&1 &
loader=$!
t0=$(date +%s)
startup_kills=0
handed() { grep -q "^$AGENT " "$T/ids"; }
for round in $(seq 1 "$ROUNDS"); do
	# the kill lands 0-300 ms into the load's traffic with this run, not
	# before it (a loaded VM may take longer than that to reconnect)
	wait_for "run $AGENT to hand out an id" 60 handed
	ms=$((RANDOM % 300))
	sleep "$(printf '0.%03d' "$ms")"
	kill_agent
	if [ $((round % 5)) = 0 ]; then # once more while it replays and starts
		"$NFD" --config /dev/null --socket "$SOCK" --state-dir "$T/state" --log-level debug \
			"${AGENT_ARGS[@]}" >>"$T/agent.log" 2>&1 &
		AGENT=$!
		echo "$AGENT" >>"$T/runs"
		sleep "$(printf '0.%03d' $((RANDOM % 200)))"
		kill_agent
		startup_kills=$((startup_kills + 1))
	fi
	start_agent "${AGENT_ARGS[@]}"
	echo "$AGENT" >>"$T/runs"
	say "round $round ($(($(date +%s) - t0)) s): killed $ms ms after its first id; restarted; $(wc -l <"$T/ids") ids handed out so far"
done
touch "$T/stop"
wait "$loader" || { cat "$T/load.out"; fail "crash-load.py failed"; }
cat "$T/load.out"
wait_for "the agent to be idle" 60 idle
took=$(($(date +%s) - t0))

# Across restarts no id was handed out again: every id a run handed out is
# above those of all earlier runs. (Within a run, a request that is still
# pending is handed out again to the next caller.)
awk 'NR == FNR { run[$1] = FNR; runs = FNR; next }
	!($1 in run) { print "id " $2 " from pid " $1 ", not an agent"; bad = 1; next }
	{ r = run[$1]; if (!(r in lo) || $2 + 0 < lo[r]) lo[r] = $2 + 0; if ($2 + 0 > hi[r]) hi[r] = $2 + 0 }
	END {
		for (r = 1; r <= runs; r++) {
			if (!(r in lo)) continue
			if (lo[r] <= top) { print "run " r ": id " lo[r] " was handed out by an earlier run"; bad = 1 }
			if (hi[r] > top) top = hi[r]
		}
		exit bad
	}' "$T/runs" "$T/ids" || fail "an id was handed out again after a restart"
# (every run handed ids out: each round waited for one)
awk '{ print $2 }' "$T/ids" | sort -u >"$T/handed"
say "ids handed out by 202 replies: $(wc -l <"$T/handed")"

# The history: it says it is written, replayed every line, holds every id
# handed out once, and nothing in it is left queued or running.
check_journal "$T/state/history.journal" idle
! grep -q "history journal: skipping" "$T/agent.log" || fail "a replay skipped a record"
expect_eq "history_persistent" "$(api /v1/status | jq .history_persistent)" true
api "/v1/migrations?limit=100000" >"$T/m.json"
jq -r '.migrations[].id' "$T/m.json" | sort >"$T/have"
expect_eq "ids in /v1/migrations listed twice" "$(uniq -d "$T/have" | wc -l)" 0
expect_eq "ids handed out, not in /v1/migrations" "$(comm -23 "$T/handed" "$T/have" | wc -l)" 0
expect_eq "records still queued or running" \
	"$(jq '[.migrations[] | select(.result == "queued" or .result == "running")] | length' "$T/m.json")" 0
cut=$(jq --arg why "$STOPPED" '[.migrations[] | select(.result == "failed" and any(.errors[]; . == $why))] | length' "$T/m.json")
expect_ge "records a kill cut short, concluded as failed" "$cut" 1
say "crash loop: $ROUNDS kills during work, $startup_kills while starting, $(jq '.migrations | length' "$T/m.json") records, in ${took}s"

# ---- 2. the state dir on a full file system ----

kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
AGENT=
mkdir "$T/disk"
mount -t tmpfs -o size=256k nf-full "$T/disk"
# (lazily: the agent may still hold the journal open when a failure ends the test)
trap 'umount -l "$T/disk" 2>/dev/null || true; cleanup' EXIT
DISK_ARGS=(--cgroup-root /nf-disk --state-dir "$T/disk/state")
dcg=$(mkcg nf-disk/full 0)
dpid=$(start_hog "$dcg" -m 32)
start_agent "${DISK_ARGS[@]}"
expect_eq "POST registration" \
	"$(api_status /v1/containers -X POST -d "{\"id\": \"full-1\", \"pid\": $dpid}")" 201

persistent() { api /v1/status | jq -r .history_persistent; }
metric() { api /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
last_is() {
	api /v1/containers/full-1 |
		jq -e --argjson prev "$1" --arg to "$2" '.last_migration | .id > $prev and .result == "ok" and .to == $to' >/dev/null
}
# flip_to NODE: writes the container's mems; its memory moves, and the agent
# records a migration that is ok.
flip_to() {
	local prev
	prev=$(api /v1/containers/full-1 | jq '.last_migration.id // 0')
	set_mems "$dcg" "$1"
	expect_on "$dpid" "$1" "after mems $1"
	wait_for "the agent's record of mems $1" 60 last_is "$prev" "$1"
}

flip_to 1
expect_eq "history_persistent, space left" "$(persistent)" true
expect_eq "numafollow_history_persistent, space left" "$(metric numafollow_history_persistent)" 1

if dd if=/dev/zero of="$T/disk/filler" bs=4k 2>"$T/dd.err"; then fail "dd wrote past 256 KiB"; fi
grep -q "No space left on device" "$T/dd.err" || fail "dd: $(cat "$T/dd.err")"
say "state dir full: $(df -k "$T/disk" | tail -n 1)"
# The journal's last page may still take a line or two: migrate until an
# append fails.
node=1
for k in $(seq 1 20); do
	node=$((1 - node))
	flip_to "$node"
	[ "$(persistent)" = true ] || break
done
say "migrations on the full disk until an append failed: $k"
expect_eq "history_persistent, disk full" "$(persistent)" false
expect_eq "numafollow_history_persistent, disk full" "$(metric numafollow_history_persistent)" 0
expect_ge "numafollow_history_write_errors_total, disk full" "$(metric numafollow_history_write_errors_total)" 1
expect_eq "log lines saying history is not being written" "$(grep -c "history is not being written" "$T/agent.log")" 1

# Still watching and migrating: a container that appears is seen, the
# agent's own staged move moves the memory.
lcg=$(mkcg nf-disk/late 0)
lpid=$(start_hog "$lcg" -m 4)
seen() { api /v1/containers | jq -e '.containers | any(.cgroup == "/nf-disk/late")' >/dev/null; }
wait_for "a new container while the disk is full" 30 seen
node=$((1 - node))
expect_eq "POST move to $node, disk full" \
	"$(api_status /v1/containers/full-1/move -X POST -d "{\"to\": \"$node\"}")" 202
mid=$(jq -r .id "$T/body")
moved() { api "/v1/migrations/$mid" | jq -e '.result == "ok"' >/dev/null; }
wait_for "the staged move on a full disk" 60 moved
expect_on "$dpid" "$node" "after the agent's staged move, disk full"
wait_for "the agent to be idle" 60 idle
expect_eq "history_persistent after the move, disk full" "$(persistent)" false
expect_eq "log lines saying history is written again, disk full" "$(grep -c "history journal: writing again" "$T/agent.log")" 0
before=$(api "/v1/migrations?limit=100000" | jq '[.migrations[].id] | max')

rm "$T/disk/filler"
node=$((1 - node))
flip_to "$node"
expect_eq "history_persistent, space back" "$(persistent)" true
expect_eq "numafollow_history_persistent, space back" "$(metric numafollow_history_persistent)" 1
expect_eq "log lines saying history is written again" "$(grep -c "history journal: writing again" "$T/agent.log")" 1
expect_eq "log lines saying history is not being written" "$(grep -c "history is not being written" "$T/agent.log")" 1
kill "$lpid"
wait_for "the agent to be idle" 60 idle

# A restart replays the journal whole, the migrations of the full disk too;
# ids go on above every id handed out.
api "/v1/migrations?limit=100000" | jq -S .migrations >"$T/hist-before"
kill_agent
start_agent "${DISK_ARGS[@]}"
wait_for "the agent to be idle" 60 idle
api "/v1/migrations?limit=100000" | jq -S .migrations >"$T/hist-after"
diff "$T/hist-before" "$T/hist-after" || fail "the history changed across the restart"
say "the history replays as it was, $(jq length "$T/hist-after") records"
check_journal "$T/disk/state/history.journal" idle
! grep -q "history journal: skipping" "$T/agent.log" || fail "the replay skipped a record"
expect_eq "ids in /v1/migrations listed twice" \
	"$(api "/v1/migrations?limit=100000" | jq '[.migrations[].id] | length - (unique | length)')" 0
expect_eq "POST registration after the restart" \
	"$(api_status /v1/containers -X POST -d "{\"id\": \"full-1\", \"pid\": $dpid}")" 201
node=$((1 - node))
flip_to "$node"
expect_ge "id of the first migration after the restart" \
	"$(api /v1/containers/full-1 | jq .last_migration.id)" $((before + 2))
kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
AGENT=
umount "$T/disk"
echo PASS

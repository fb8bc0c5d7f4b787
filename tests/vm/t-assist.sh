#!/bin/bash
# vm: --cgroup v2 --node-mem 1536
# Assist: someone else writes a container's v2 cpuset.mems (runc update,
# kubelet) and the kernel moves the memory inside that write. The agent sees
# the write begin (IN_MODIFY at the writer's O_TRUNC open) and moves the same
# pages beside the kernel with move_pages. Checked: the record of the write
# counts what the assist moved (assisted_bytes) apart from what the kernel did,
# the memory is all on the new node, one record per write; widening the mems
# moves nothing back and records nothing; the off switch (a SIGHUP'd config)
# stops it.
. tests/vm/lib.sh
need_nodes 2
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true

cid=00aa11bb22cc33dd44ee55ff66778899aabbccddeeff00112233445566778899
cg=$(mkcg system.slice/docker-$cid.scope 0)
# three processes: the kernel moves them one after another, holding each one's
# mmap_lock throughout; the assist takes them from the last
pids=()
for _ in 1 2 3; do pids+=("$(start_hog "$cg" -m 128 -t 1)"); done
pid=${pids[2]}
echo "assist = 1" >"$T/nf.conf"
# no reconcile during the writes: one reading the new mems mid-write adds a
# record of its own (t-agent-race.sh)
start_agent --config "$T/nf.conf" --reconcile-interval 3600
sampled() { [ "$(api "/v1/containers/$cid" | jq -r '.memory["0"] // 0')" -ge $((300 * MiB)) ]; }
wait_for "the agent's sample of the container" 30 sampled

# the last record is of a write to $want, and done
done_() { api "/v1/containers/$cid" | jq -e --arg to "$want" '.last_migration | .to == $to and .result == "ok"' >/dev/null; }
records() { api "/v1/migrations?container=$cid" | jq '.migrations | length'; }
# write NODES: a writer's write (timed, shown only), then the agent's record
# of it; the record in $T/rec.json.
write() {
	local n0 t0
	n0=$(records) want=$1
	t0=$(date +%s%N)
	set_mems "$cg" "$1"
	say "the write of $1 took $((($(date +%s%N) - t0) / 1000000)) ms"
	wait_for "the record of the write of $1" 60 done_
	api "/v1/containers/$cid" | jq .last_migration >"$T/rec.json"
	jq -c '{id, trigger, from, to, result, kernel_moved_bytes, assisted_bytes, moved_bytes, residual_bytes}' "$T/rec.json"
	expect_eq "records after the write of $1" "$(records)" $((n0 + 1))
	expect_eq "trigger" "$(jq -r .trigger "$T/rec.json")" inotify
}

# The assist starts from the worker queue: on a busy host it may come late for
# one write (the kernel done first, nothing left); one of three must overlap.
assisted=0
for to in 1 0 1; do
	write "$to"
	for p in "${pids[@]}"; do expect_on "$p" "$to" "after the write of $to"; done
	expect_eq "residual" "$(jq -r .residual_bytes "$T/rec.json")" 0
	a=$(jq -r .assisted_bytes "$T/rec.json")
	k=$(jq -r .kernel_moved_bytes "$T/rec.json")
	expect_ge "kernel + assist (MiB)" $(((a + k) / MiB)) 380
	[ "$a" -ge $((16 * MiB)) ] && { assisted=$a; break; }
done
[ "$assisted" -gt 0 ] || fail "in three writes of 3 x 128 MiB the assist never moved 16 MiB beside the kernel"
grep "container $cid: assisted the kernel's migration to" "$T/agent.log" | tail -n 1
metric() { api /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
expect_ge "numafollow_assists_total" "$(metric numafollow_assists_total)" 1
expect_ge "numafollow_assist_moved_bytes_total" "$(metric numafollow_assist_moved_bytes_total)" "$assisted"

say "widening: the kernel and the assist leave every page where it is, and no record says nothing"
now=$(jq -r .to "$T/rec.json")
before=$(anon_bytes "$pid" "$now") n0=$(records)
set_mems "$cg" 0-1
widened() { api "/v1/containers/$cid" | jq -e '.mems_effective == "0-1"' >/dev/null; }
wait_for "the agent to see the widening" 30 widened
expect_ge "still on node $now (%)" "$(pct "$(anon_bytes "$pid" "$now")" "$before")" 99
expect_eq "records after the widening" "$(records)" "$n0"

say "assist = 0 (SIGHUP): the kernel alone"
# narrowing back: a record (a sample taken after a narrowing cannot tell
# whether the kernel moved anything inside the write)
want=$now
set_mems "$cg" "$now"
wait_for "the record of narrowing back" 60 done_
echo "assist = 0" >"$T/nf.conf"
kill -HUP "$AGENT"
wait_for "the reload" 20 grep -q "assist off" "$T/agent.log"
n=$(metric numafollow_assists_total)
other=$((1 - now))
write "$other"
expect_on "$pid" "$other" "without assist"
expect_eq "assisted without assist" "$(jq -r .assisted_bytes "$T/rec.json")" 0
expect_ge "kernel moved without assist (MiB)" $(($(jq -r .kernel_moved_bytes "$T/rec.json") / MiB)) 380
expect_eq "numafollow_assists_total" "$(metric numafollow_assists_total)" "$n"

say "memory that grew after the agent's last sample: the record counts from the write's start"
# joins empty (sampled then, and not again: no reconcile, no GET of it), then
# touches 64 MiB; a writer opens cpuset.mems (O_TRUNC: IN_MODIFY) and writes
# once the agent has read that event (its counter is read under the lock the
# event's handling holds)
gid=feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface
gcg=$(mkcg "system.slice/docker-$gid.scope" 0)
gpid=$(start_hog "$gcg" -m 64 -d 3000)
expect_on "$gpid" 0 "before the write"
ev0=$(metric numafollow_watch_events_total)
python3 -c 'import os, sys, time
f = open(sys.argv[1], "w")
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
f.write("1")
f.close()' "$gcg/cpuset.mems" "$T/opened" "$T/go" &
writer=$!
wait_for "the writer to open cpuset.mems" 60 test -e "$T/opened"
read_open() { [ "$(metric numafollow_watch_events_total)" -gt "$ev0" ]; }
wait_for "the agent to read the open" 60 read_open
touch "$T/go"
wait "$writer" || fail "the writer failed"
grown() { api "/v1/migrations?container=$gid" | jq -e '.migrations[0] | .to == "1" and .result == "ok"' >/dev/null; }
wait_for "the grown container's record" 60 grown
api "/v1/migrations?container=$gid" | jq -c '.migrations[0] | {kernel_moved_bytes, assisted_bytes, moved_bytes}'
expect_on "$gpid" 1 "after the write"
expect_ge "kernel moved (MiB of 64), counted from the write's start" \
	$(($(api "/v1/migrations?container=$gid" | jq '.migrations[0].kernel_moved_bytes') / MiB)) 60

say "the same when the agent reads the open only after the write landed (unmove())"
# the agent stopped while the writer opens and writes, then the file held
# open until the agent has read the open's event: its sample finds the
# kernel's move done
hid=facadefacadefacadefacadefacadefacadefacadefacadefacadefacadeface
hcg=$(mkcg "system.slice/docker-$hid.scope" 0)
hpid=$(start_hog "$hcg" -m 64 -d 3000)
expect_on "$hpid" 0 "before the write"
rm -f "$T/opened" "$T/go"
ev0=$(metric numafollow_watch_events_total)
kill -STOP "$AGENT"
python3 -c 'import os, sys, time
f = open(sys.argv[1], "w")
f.write("1")
f.flush()
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
f.close()' "$hcg/cpuset.mems" "$T/opened" "$T/go" &
writer=$!
wait_for "the writer to write cpuset.mems" 60 test -e "$T/opened"
kill -CONT "$AGENT"
wait_for "the agent to read the open" 60 read_open
touch "$T/go"
wait "$writer" || fail "the writer failed"
late() { api "/v1/migrations?container=$hid" | jq -e '.migrations[0] | .to == "1" and .result == "ok"' >/dev/null; }
wait_for "the late-read container's record" 60 late
api "/v1/migrations?container=$hid" | jq -c '.migrations[0] | {kernel_moved_bytes, assisted_bytes, moved_bytes}'
expect_on "$hpid" 1 "after the write"
expect_ge "kernel moved (MiB of 64), the picture put back" \
	$(($(api "/v1/migrations?container=$hid" | jq '.migrations[0].kernel_moved_bytes') / MiB)) 60
echo PASS

#!/bin/bash
# numafollowd with 1,000 container cgroups (one sleeping process each) and
# then 10,000 cgroups in all; in the VM (make bench, cgroup v2) or, as root, on
# a host (cgroup v1 or v2; NF_BENCH_CHANGES=0 where there is one node: no
# moves). On v1 each container also gets a memory cgroup of the same path, as
# runtimes make them. Measures
#   detection latency: cpuset.mems write -> the migration's started_at, over
#                      NF_BENCH_CHANGES (100) writes;
#   idle cost: the agent's CPU time and RSS over 60 s (NF_BENCH_IDLE), with
#              1,000 and with 10,000 cgroups (two reconciles at the default 30 s);
#   read cost: the agent's CPU time per GET /v1/containers and per GET
#              /metrics (1,000 containers), over 200 requests each;
#   wrk: GET /v1/containers (1,000 containers) over TCP with the token, 10 s.
. tests/vm/lib.sh
changes=${NF_BENCH_CHANGES:-100}
idle=${NF_BENCH_IDLE:-60}
sysctl -qw fs.inotify.max_user_watches=65536

root=$(cg_root)
mem=
# On a host the cgroups outlive the run: its sleepers killed, its tree removed
# (the next run would find it), deepest first.
remove_bench() {
	local d
	for d in "$root/bench" ${mem:+"$mem/bench"}; do
		[ -d "$d" ] || continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill 2>/dev/null
		sleep 0.5
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
trap 'cleanup; remove_bench' EXIT
[ "$root" = /sys/fs/cgroup ] || [ ! -d /sys/fs/cgroup/memory ] || mem=/sys/fs/cgroup/memory
nodes=$(cat "$root/cpuset.mems.effective" 2>/dev/null || cat "$root/cpuset.mems")
mkcg bench "$nodes" >/dev/null
say "creating 1000 container cgroups with one process each${mem:+ (and their memory cgroups)}"
for i in $(seq -w 1 1000); do
	d=$(mkcg "bench/c$i" 0)
	[ -z "$mem" ] || mkdir -p "$mem/bench/c$i"
	(echo "$BASHPID" >"$d/cgroup.procs" && { [ -z "$mem" ] || echo "$BASHPID" >"$mem/bench/c$i/cgroup.procs"; } &&
		exec sleep 100000) &
done
echo benchtoken >"$T/token"
start_agent --log-level notice --listen 127.0.0.1:18081 --token-file "$T/token" --cgroup-root /bench
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT/status"; }
# percentile P < sorted numbers
percentile() { awk -v p="$1" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'; }

say "detection latency over $changes cpuset.mems writes"
: >"$T/lat"
for n in $(seq 1 "$changes"); do
	c=$(printf 'c%04d' $(((n - 1) % 1000 + 1)))
	before=$(api "/v1/migrations?container=/bench/$c&limit=1" | jq -r '.migrations[0].id // 0')
	new=$((1 - $(cat "$root/bench/$c/cpuset.mems")))
	t0=$(date +%s%N)
	echo "$new" >"$root/bench/$c/cpuset.mems"
	for _ in $(seq 1 500); do
		rec=$(api "/v1/migrations?container=/bench/$c&limit=1" | jq -r --argjson b "$before" \
			'.migrations[0] | select(.id > $b) | .started_at // empty')
		[ -z "$rec" ] || break
		sleep 0.01
	done
	[ -n "$rec" ] || fail "no migration recorded for /bench/$c"
	echo $(($(date -d "$rec" +%s%3N) - t0 / 1000000)) >>"$T/lat"
done
sort -n "$T/lat" >"$T/lat.sorted"
lat_med=$(percentile 50 <"$T/lat.sorted")
lat_p99=$(percentile 99 <"$T/lat.sorted")
lat_max=$(tail -n 1 "$T/lat.sorted")

drained() { api /v1/status | jq -e '.queued == 0' >/dev/null; }
wait_for "the queue to drain" 120 drained
sleep 2

idle_run() {
	local c0 c1
	c0=$(cpu_ticks)
	sleep "$idle"
	c1=$(cpu_ticks)
	echo "$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.2f", 100 * d / hz / s }') $(rss_kib)"
}
say "idle for $idle s with 1000 cgroups"
read -r cpu1k rss1k < <(idle_run)

# req_cost PATH: the agent's CPU ms per request, over 200 through the socket.
req_cost() {
	local c0 c1
	c0=$(cpu_ticks)
	for _ in $(seq 1 200); do api "$1" >/dev/null; done
	c1=$(cpu_ticks)
	awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", 1000 * d / hz / 200 }'
}
cost_c=$(req_cost /v1/containers) cost_m=$(req_cost /metrics)
# The list re-samples what is over 5 s old (route.h): the first request after
# 6 s quiet pays for it (a reconcile in the last 5 s spares some; the median
# of 5). Ticks of 1/CLK_TCK s.
: >"$T/stale"
for _ in 1 2 3 4 5; do
	sleep 6
	c0=$(cpu_ticks)
	api /v1/containers >/dev/null
	echo $(($(cpu_ticks) - c0)) >>"$T/stale"
done
cost_stale=$(sort -n "$T/stale" | percentile 50 | awk -v hz="$hz" '{ printf "%.0f", 1000 * $1 / hz }')
bytes_m=$(api /metrics | wc -c)

say "creating 9000 more cgroups (no processes)"
mkdir -p "$root/bench/empty"
for i in $(seq 1 9000); do mkdir "$root/bench/empty/e$i"; done
watched() { api /v1/status | jq -e '.cgroups_watched >= 10000' >/dev/null; }
wait_for "10000 watched cgroups" 300 watched
sleep 2
say "idle for $idle s with 10000 cgroups"
read -r cpu10k rss10k < <(idle_run)
status=$(api /v1/status | jq -c '{cgroups_watched, containers}')

say "wrk: GET /v1/containers (1000 containers), 10 s"
wrk -t2 -c4 -d10s --latency -H "Authorization: Bearer benchtoken" \
	http://127.0.0.1:18081/v1/containers >"$T/wrk" || fail "wrk failed"
grep -q "Non-2xx" "$T/wrk" && fail "wrk got errors: $(cat "$T/wrk")"
cat "$T/wrk"
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk")
wrk_p99=$(awk '$1 == "99%" { print $2 }' "$T/wrk")
bytes=$(api /v1/containers | wc -c)

cat <<REPORT

numafollowd (cgroup $(if [ -n "$mem" ]; then echo v1; else echo v2; fi), $(nproc) CPUs, $status)
  detection latency, write -> migration started ($changes writes, 1000 containers):
      median $lat_med ms, p99 $lat_p99 ms, max $lat_max ms        (target: p99 < 50 ms)
  idle ${idle} s, 1000 cgroups:  CPU $cpu1k% of a core, RSS $((rss1k / 1024)) MiB
  idle ${idle} s, 10000 cgroups: CPU $cpu10k% of a core, RSS $((rss10k / 1024)) MiB   (targets: < 0.5%, < 32 MiB)
  agent CPU per request, 1000 containers: GET /v1/containers $cost_c ms ($((bytes / 1024)) KiB),
      GET /metrics $cost_m ms ($((bytes_m / 1024)) KiB)                  (target: <= 1 ms each)
      the first GET /v1/containers after 6 s (re-samples what is over 5 s old): $cost_stale ms
  wrk GET /v1/containers (1000 containers, $((bytes / 1024)) KiB each): $rps requests/s, p99 $wrk_p99
REPORT

#!/bin/bash
# Inside the VM (cgroup v2): numafollowd with 1,000 container cgroups (one
# sleeping process each) and then 10,000 cgroups in all. Measures
#   detection latency: cpuset.mems write -> the migration's started_at, over
#                      NF_BENCH_CHANGES (100) writes;
#   idle cost: the agent's CPU time and RSS over 60 s (NF_BENCH_IDLE), with
#              1,000 and with 10,000 cgroups (two reconciles at the default 30 s);
#   wrk: GET /v1/containers (1,000 containers) over TCP, 10 s.
. tests/vm/lib.sh
changes=${NF_BENCH_CHANGES:-100}
idle=${NF_BENCH_IDLE:-60}
sysctl -qw fs.inotify.max_user_watches=65536

root=$(cg_root)
echo "+cpuset +memory" >"$root/cgroup.subtree_control"
mkdir -p "$root/bench" && echo 0-1 >"$root/bench/cpuset.mems"
echo "+cpuset +memory" >"$root/bench/cgroup.subtree_control"
say "creating 1000 container cgroups with one process each"
for i in $(seq -w 1 1000); do
	mkdir "$root/bench/c$i" && echo 0 >"$root/bench/c$i/cpuset.mems"
	(echo "$BASHPID" >"$root/bench/c$i/cgroup.procs" && exec sleep 100000) &
done
start_agent --log-level notice --listen 127.0.0.1:18081 --cgroup-root /bench
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
wrk -t2 -c4 -d10s --latency http://127.0.0.1:18081/v1/containers >"$T/wrk" || fail "wrk failed"
cat "$T/wrk"
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk")
wrk_p99=$(awk '$1 == "99%" { print $2 }' "$T/wrk")
bytes=$(api /v1/containers | wc -c)

cat <<REPORT

numafollowd (cgroup v2, $status)
  detection latency, write -> migration started ($changes writes, 1000 containers):
      median $lat_med ms, p99 $lat_p99 ms, max $lat_max ms        (target: p99 < 50 ms)
  idle ${idle} s, 1000 cgroups:  CPU $cpu1k% of a core, RSS $((rss1k / 1024)) MiB
  idle ${idle} s, 10000 cgroups: CPU $cpu10k% of a core, RSS $((rss10k / 1024)) MiB   (targets: < 0.5%, < 32 MiB)
  wrk GET /v1/containers (1000 containers, $((bytes / 1024)) KiB each): $rps requests/s, p99 $wrk_p99
REPORT

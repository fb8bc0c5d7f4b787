#!/bin/bash
# Inside the VM (cgroup v2, 2 nodes): movetool alone on engine.sh's workloads,
# 1 and 2 threads, calls sized by time or fixed, against the kernel's write and
# migrate_pages, with /proc/vmstat's migration counters around each run: what
# the engine's calls cost, without the CLI around them. One run of each.
#   tests/vm/vm.sh --cgroup v2 --timeout 1200 -- tests/bench/engine-calls.sh
# NF_CALLS_W picks workloads (1x512 4x128), NF_CALLS_CFG movetool options
# (";"-separated), "kernel" for the kernel's write.
. tests/vm/lib.sh
need_nodes 2
MT=$B/movetool
. tests/vm/probe-lib.sh
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
counters() {
	awk '$1 ~ /^(pgmigrate_success|pgmigrate_fail|thp_migration_success|thp_migration_fail|thp_migration_split)$/ {
		printf "%s=%s ", $1, $2 }' /proc/vmstat
}
one() { # WORKLOAD kernel | MOVETOOL OPTIONS...
	local w=$1 t0 t1 out=kernel before worst=0 v
	shift
	cg=$(mkcg nfb 0)
	if [ "$w" = 1x512 ]; then
		start_probe "$cg" -m 512
	else
		start_probe "$cg" -m 128 -t 2
		for _ in 1 2 3; do start_probe "$cg" -m 128; done
	fi
	for p in "${PIDS[@]}"; do probe_worst "$p" >/dev/null; done
	[ "$1" = kernel ] || set_mems "$cg" 0-1
	before=$(counters)
	t0=$(date +%s%N)
	if [ "$1" = kernel ]; then set_mems "$cg" 1; else out=$("$MT" --from 0 --to 1 "$@" "${PIDS[@]}"); fi
	t1=$(date +%s%N)
	for p in "${PIDS[@]}"; do
		v=$(probe_worst "$p")
		[ "$v" -le "$worst" ] || worst=$v
		[ "$(pct "$(anon_bytes "$p" 1)" "$(anon_bytes "$p" all)")" -ge 99 ] || fail "$w $*: pid $p not moved"
	done
	say "$w $*: $(((t1 - t0) / 1000000)) ms, worst wait $((worst / 1000)) ms"
	echo "   $out"
	echo "   vmstat before: $before"
	echo "   vmstat after:  $(counters)"
	stop_probes
	rmdir "$cg"
}
one 1x512 kernel # untimed warm-up
IFS=';' read -ra cfgs <<<"${NF_CALLS_CFG:-kernel;--threads 1;--threads 2;--threads 1 --batch 4096;--threads 2 --batch 4096;--threads 2 --call-ms 200;--method migrate_pages}"
for w in ${NF_CALLS_W:-1x512 4x128}; do
	for c in "${cfgs[@]}"; do
		# shellcheck disable=SC2086
		one "$w" $c
	done
done
echo PASS

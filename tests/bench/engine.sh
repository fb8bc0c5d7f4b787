#!/bin/bash
# make bench, inside the VM (cgroup v2, 2 nodes): moving memory from node 0 to
# node 1, each way measured in this one boot, and what the workload notices.
# Every process carries a probe thread (tests/helpers/probe.c) that does
# mmap + touch + munmap every 1 ms: its worst iteration during the move is the
# "worst wait" (mmap needs the mm's mmap_lock, which one migrate_pages walk
# holds for the whole move).
# Methods:
#   kernel         the kernel's own migration inside the v2 cpuset.mems write
#                  0 -> 1 (the writer waits): the write's time
#   migratepages   numactl's `migratepages PID 0 1` for each process
#   nf-migrate     numafollow migrate --method migrate_pages (one call a process)
#   nf-gentle-t1   numafollow migrate (the engine: move_pages batches), 1 thread
#   nf-gentle-t2   the same, 2 threads
#   nf-staged      numafollow move --to 1: 0-1, the engine, then 1
#   nf-progress    the same with its progress line (--progress, to /dev/null):
#                  what the engine's reports cost
#   agent-plain    the kernel's v2 write, numafollowd running with assist = 0
#   agent-assist   the same with assist = 1: the agent moves pages beside the
#                  kernel inside the write; the write's time is what the
#                  writer (kubelet, runc update) waits
# For all but the v2 writes and nf-staged, the cgroup's mems are first widened to 0-1
# (a v2 write that moves nothing) so that node 1 is allowed. Workloads: 1 x 512
# MiB, and 4 x 128 MiB with two threads writing in one of them. Each run checks,
# from numa_maps, that >= 99% of every process's anonymous memory is on node 1.
# Then the size of the engine's calls: movetool on both workloads, 2 threads.
# NF_BENCH_REPS (default 3) runs each; medians. NF_METHODS picks methods,
# NF_CALLS call sizes (empty: none), for a part of it.
. tests/vm/lib.sh
need_nodes 2
reps=${NF_BENCH_REPS:-3}
MT=$B/movetool
[ -x "$MT" ] || fail "movetool is not built in $B"
. tests/vm/probe-lib.sh
methods=${NF_METHODS:-"kernel migratepages nf-migrate nf-gentle-t1 nf-gentle-t2 nf-staged nf-progress agent-plain agent-assist"}
# NUMA balancing moves pages back and forth on its own: off for the measurement.
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
declare -A ms lat assist
calls=${NF_CALLS-"c5 c20 c50 b4096"}
failed=()

now_ms() { echo $(($(date +%s%N) / 1000000)); }

move_with() { # METHOD: the move itself
	case $1 in
	kernel | agent-*) set_mems "$cg" 1 ;;
	migratepages) for p in "${PIDS[@]}"; do migratepages "$p" 0 1; done ;;
	nf-migrate) "$NF" migrate --method migrate_pages --to 1 nfb >/dev/null ;;
	nf-gentle-t1) "$NF" migrate --threads 1 --to 1 nfb >/dev/null ;;
	nf-gentle-t2) "$NF" migrate --threads 2 --to 1 nfb >/dev/null ;;
	nf-staged) "$NF" move --threads 2 --to 1 nfb >/dev/null ;;
	nf-progress) "$NF" move --progress --threads 2 --to 1 nfb >/dev/null 2>&1 ;;
	mt-b*) "$MT" --from 0 --to 1 --threads 2 --batch "${1#mt-b}" "${PIDS[@]}" >/dev/null ;;
	mt-c*) "$MT" --from 0 --to 1 --threads 2 --call-ms "${1#mt-c}" "${PIDS[@]}" >/dev/null ;;
	esac
}

# one METHOD WORKLOAD(1x512|4x128)
one() {
	local method=$1 w=$2 t0 t1 p worst=0 v
	cg=$(mkcg nfb 0)
	PIDS=()
	if [ "$w" = 1x512 ]; then
		start_probe "$cg" -m 512
	else
		start_probe "$cg" -m 128 -t 2
		for _ in 1 2 3; do start_probe "$cg" -m 128; done
	fi
	case $method in kernel | nf-staged | nf-progress | agent-*) ;; *) set_mems "$cg" 0-1 ;; esac
	case $method in
	agent-plain) start_agent --assist 0 ;;
	agent-assist) start_agent --assist 1 ;;
	esac
	for p in "${PIDS[@]}"; do probe_worst "$p" >/dev/null; done
	t0=$(now_ms)
	move_with "$method" || failed+=("$method $w: exit $?")
	t1=$(now_ms)
	for p in "${PIDS[@]}"; do
		v=$(probe_worst "$p")
		[ "$v" -le "$worst" ] || worst=$v
		[ "$(pct "$(anon_bytes "$p" 1)" "$(anon_bytes "$p" all)")" -ge 99 ] ||
			failed+=("$method $w pid $p: $(pct "$(anon_bytes "$p" 1)" "$(anon_bytes "$p" all)")% on node 1")
	done
	if [ "${method#agent-}" != "$method" ]; then
		last() { api /v1/containers | jq '.containers[] | select(.cgroup == "/nfb") | .last_migration'; }
		recorded() { last | jq -e '.result == "ok"' >/dev/null; }
		wait_for "the agent's record" 60 recorded
		v=$(last | jq .assisted_bytes)
		assist[$method,$w]="${assist[$method,$w]:-} $((v / MiB))"
		kill "$AGENT"
		wait "$AGENT" 2>/dev/null
	fi
	kill "${PIDS[@]}"
	while kill -0 "${PIDS[@]}" 2>/dev/null; do sleep 0.05; done
	PIDS=()
	rmdir "$cg"
	ms[$method,$w]="${ms[$method,$w]:-} $((t1 - t0))"
	lat[$method,$w]="${lat[$method,$w]:-} $((worst / 1000))"
	say "$method $w: $((t1 - t0)) ms, worst wait $((worst / 1000)) ms"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# ratio A B: A / B, or "-" when a method was not run (NF_METHODS)
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi; }

# Untimed warm-up: the first write and the first runs pay for page tables and caches.
one kernel 1x512
one nf-gentle-t2 1x512
ms=() lat=() assist=()
for rep in $(seq 1 "$reps"); do
	for w in 1x512 4x128; do
		for m in $methods; do one "$m" "$w"; done
	done
	for b in $calls; do one "mt-$b" 1x512 && one "mt-$b" 4x128; done
	say "rep $rep done"
done

echo
echo "node 0 -> 1, medians of $reps runs, one VM boot ($(nproc) vCPUs, TCG, $(uname -r))."
echo "MiB/s: workload MiB / median ms. x: throughput ratio (higher is faster)."
echo
printf '| %-8s | %-14s | %9s | %6s | %12s | %8s | %13s | %-30s |\n' workload method "median ms" "MiB/s" "x migratepg" "x kernel" "worst wait ms" "runs ms (worst wait ms)"
printf '|%s|\n' "----------|----------------|-----------|--------|--------------|----------|---------------|--------------------------------"
for w in 1x512 4x128; do
	k=$(median <<<"${ms[kernel,$w]:-}")
	mp=$(median <<<"${ms[migratepages,$w]:-}")
	for m in $methods; do
		med=$(median <<<"${ms[$m,$w]}")
		printf '| %-8s | %-14s | %9s | %6s | %12s | %8s | %13s | %-30s |\n' "$w" "$m" "$med" \
			"$((512 * 1000 / (med > 0 ? med : 1)))" \
			"$(ratio "$mp" "$med")" "$(ratio "$k" "$med")" \
			"$(median <<<"${lat[$m,$w]}")" "$(paste -d' ' <(tr ' ' '\n' <<<"${ms[$m,$w]}" | grep .) <(tr ' ' '\n' <<<"${lat[$m,$w]}" | grep . | sed 's/.*/(&)/') | tr '\n' ' ')"
	done
done
echo
case " $methods " in *" agent-assist "*" agent-plain "* | *" agent-plain "*" agent-assist "*)
	echo "Assist: how long the v2 writer waited with the agent's assist, against the agent without it:"
	for w in 1x512 4x128; do
		a=$(median <<<"${ms[agent-assist,$w]}") p=$(median <<<"${ms[agent-plain,$w]}")
		echo "- $w: $a ms against $p ms: $(ratio "$a" "$p")x;" \
			"MiB the assist moved per run:${assist[agent-assist,$w]}"
	done
	echo
	;;
esac
if [ -n "$calls" ]; then
	echo "The size of a move_pages call, movetool, 2 threads: sized to take N ms (50: the"
	echo "default), or a fixed number of pages (4096: the default before calls were timed):"
	printf '| %-8s | %-14s | %9s | %6s | %13s |\n' workload call "median ms" "MiB/s" "worst wait ms"
	printf '|%s|\n' "----------|----------------|-----------|--------|---------------"
	for w in 1x512 4x128; do
		for b in $calls; do
			med=$(median <<<"${ms[mt-$b,$w]}")
			case $b in c*) name="${b#c} ms" ;; b*) name="${b#b} pages" ;; esac
			printf '| %-8s | %-14s | %9s | %6s | %13s |\n' "$w" "$name" "$med" "$((512 * 1000 / (med > 0 ? med : 1)))" "$(median <<<"${lat[mt-$b,$w]}")"
		done
	done
fi
[ ${#failed[@]} -eq 0 ] || { printf 'NOT MOVED: %s\n' "${failed[@]}"; fail "some runs left memory behind"; }
echo PASS

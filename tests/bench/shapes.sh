#!/bin/bash
# make bench, inside the VM (cgroup v2, 2 nodes): memory shaped as real
# services' moves from node 0 to node 1 three ways, each on a fresh workload,
# all in this one boot:
#   kernel        the kernel's own migration inside the v2 cpuset.mems write
#                 0 -> 1 (the writer waits): the write's time
#   migratepages  numactl's `migratepages PID 0 1` for each process (after a
#                 write of 0-1, which moves nothing, so that node 1 is allowed)
#   numafollow    `numafollow move --to 1`, default options (the staged move:
#                 0-1, the engine, 1; its verification included)
# Times are the move's own: the write's; migratepages' less the start of its
# process (a run of `migratepages` with no arguments, once per process moved);
# numafollow's from its start to its end (the stages it reports). Starting a
# process costs 100-500 ms in the emulator (numafollow links libcurl: 37
# libraries) and a few ms on hardware; the table's header says how much here.
# Shapes (tests/helpers/probe.c):
#   heap      384 MiB, one mapping
#   thp       384 MiB in one region of transparent huge pages
#   many      320 MiB in 20,000 mappings of 16 KiB (a fragmented heap, arenas, a JIT)
#   busy      384 MiB that two threads keep writing
#   threads   256 MiB, a process of 64 threads
#   shared    256 MiB of shared anonymous memory (shmem) that 3 child
#             processes map too, as PostgreSQL's shared buffers, and 32 MiB private
#   file      a 256 MiB file mapped and read: its page cache ($B/shapes.dat, made
#             on the host: the VM's own files are tmpfs)
#   hugetlb   128 MiB of 2 MiB hugetlb pages (64 reserved on each node)
# Each process carries a probe thread that does mmap + touch + munmap every
# 1 ms; its worst iteration during the move is the workload's worst wait (and
# in the second before it, what the workload sees undisturbed). For
# busy, "writes" is how many pages its writers wrote during the move against
# as long undisturbed. Each run checks that >= 99% of every process's pages
# (numa_maps, all mappings but the vdso) are on node 1 afterwards.
# NF_BENCH_REPS (default 3) runs each; medians. NF_SHAPES picks shapes.
. tests/vm/lib.sh
need_nodes 2
reps=${NF_BENCH_REPS:-3}
. tests/vm/probe-lib.sh
shapes=${NF_SHAPES:-heap thp many busy threads shared file hugetlb}
methods="kernel migratepages numafollow"
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
declare -A ms lat wr wall idle
failed=()

now_ms() { echo $(($(date +%s%N) / 1000000)); }

shape_args() {
	case $1 in
	heap) echo "-m 384" ;;
	thp) echo "-m 384 -H" ;;
	many) echo "-m 320 -n 20000" ;;
	busy) echo "-m 384 -t 2" ;;
	threads) echo "-m 256 -i 63" ;;
	shared) echo "-m 32 -s 256 -c 3" ;;
	file) echo "-m 0 -f $B/shapes.dat" ;;
	hugetlb) echo "-m 0 -g 128" ;;
	esac
}

# Whether SHAPE can run here; says why not.
can_run() {
	case $1 in
	file) [ -s "$B/shapes.dat" ] || { say "file: no $B/shapes.dat (tests/bench/run.sh makes it)"; return 1; } ;;
	hugetlb)
		local n
		for n in 0 1; do
			echo 64 >/sys/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages
			[ "$(cat /sys/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages)" = 64 ] ||
				{ say "hugetlb: node $n could not reserve 64 huge pages"; return 1; }
		done
		;;
	esac
}

move_with() { # METHOD
	local p
	case $1 in
	kernel) set_mems "$cg" 1 ;;
	migratepages)
		nprocs=0
		for p in $(cat "$cg/cgroup.procs"); do
			migratepages "$p" 0 1
			nprocs=$((nprocs + 1))
		done
		;;
	numafollow) "$NF" move --json --to 1 nfb >"$T/out" 2>&1 || { cat "$T/out"; return 1; } ;;
	esac
}

field() { sed "s/.*$1=\([0-9]*\).*/\1/" <<<"$2"; }

# one METHOD SHAPE
one() {
	local method=$1 shape=$2 t0 t1 p r0 r1 base
	cg=$(mkcg nfb 0)
	[ "$shape" != file ] || echo 1 >/proc/sys/vm/drop_caches # else it is on node 1 from the last run
	# shellcheck disable=SC2046
	start_probe "$cg" $(shape_args "$shape")
	[ "$method" != migratepages ] || set_mems "$cg" 0-1
	sleep 1 # the writers' undisturbed rate, over about 1 s
	r0=$(probe_report "$PID")
	t0=$(now_ms)
	move_with "$method" || failed+=("$method $shape: exit $?")
	t1=$(now_ms)
	r1=$(probe_report "$PID")
	for p in $(cat "$cg/cgroup.procs"); do
		v=$(all_on "$p" 1)
		[ "$v" -ge 99 ] || failed+=("$method $shape pid $p: $v% on node 1")
	done
	stop_probes
	while [ -n "$(cat "$cg/cgroup.procs")" ]; do sleep 0.05; done # the children
	rmdir "$cg"
	base=$(($(field written "$r0") * 1000000 / ($(field elapsed_us "$r0") + 1)))
	wall[$method,$shape]="${wall[$method,$shape]:-} $((t1 - t0))"
	case $method in
	migratepages) t0=$((t0 + nprocs * mp_exec)) ;;
	numafollow) t0=$((t1 - $(jq '.stages | .widen_ms + .move_ms + .narrow_ms' "$T/out"))) ;;
	esac
	ms[$method,$shape]="${ms[$method,$shape]:-} $((t1 - t0))"
	lat[$method,$shape]="${lat[$method,$shape]:-} $(($(field worst_us "$r1") / 1000))"
	idle[$shape]="${idle[$shape]:-} $(($(field worst_us "$r0") / 1000))"
	if [ "$base" -gt 0 ]; then
		wr[$method,$shape]="${wr[$method,$shape]:-} $(($(field written "$r1") * 100000000 / ($(field elapsed_us "$r1") + 1) / base))"
	fi
	say "$shape $method: $((t1 - t0)) ms, worst wait $(($(field worst_us "$r1") / 1000)) ms$(
		[ "$method" != numafollow ] || jq -r --arg at $(($(field worst_at_ms "$r1") - t0)) '" (worst at \($at) ms; stages: \(.stages.widen_ms) + \(.stages.move_ms) + \(.stages.narrow_ms) ms, engine \(.duration_ms) ms on \(.threads) threads, \(.gentle_bytes / 1048576 | floor) MiB by move_pages, \(.sweeps) sweeps)"' "$T/out")"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# exec_ms CMD...: the median of 5 starts of CMD
exec_ms() {
	local i t0 all=""
	for i in 1 2 3 4 5; do
		t0=$(now_ms)
		"$@" >/dev/null 2>&1 || true
		all="$all $(($(now_ms) - t0))"
	done
	median <<<"$all"
}

run=()
for s in $shapes; do can_run "$s" && run+=("$s"); done
mp_exec=$(exec_ms migratepages)
nf_exec=$(exec_ms "$NF" --version)
one kernel heap # untimed warm-up: the first write and runs pay for page tables and caches
one numafollow heap
ms=() lat=() wr=() wall=() idle=() failed=()
for rep in $(seq 1 "$reps"); do
	for s in "${run[@]}"; do
		for m in $methods; do one "$m" "$s"; done
	done
	say "rep $rep done"
done

echo
echo "Shapes, node 0 -> 1, medians of $reps runs, one VM boot ($(nproc) vCPUs, TCG, $(uname -r))."
echo "ms: the move's own time; x: against the kernel's write and migratepages (lower is"
echo "faster); writes: the busy workload's page writes during the move, % of its undisturbed"
echo "rate. Starting a process here: migratepages $mp_exec ms (taken off its times, once"
echo "per process), numafollow $nf_exec ms (its wall times are the last column). The"
echo "workload's worst wait in the second before each move, undisturbed (median, ms):"
for s in "${run[@]}"; do printf ' %s %s' "$s" "$(median <<<"${idle[$s]}")"; done
echo
echo
printf '| %-8s | %-12s | %9s | %8s | %8s | %13s | %7s | %-34s | %-16s |\n' shape method "median ms" "x kernel" "x migpg" "worst wait ms" writes "runs ms (worst wait ms)" "wall ms"
printf '|%s|\n' "----------|--------------|-----------|----------|----------|---------------|---------|------------------------------------|------------------"
for s in "${run[@]}"; do
	k=$(median <<<"${ms[kernel,$s]}")
	mp=$(median <<<"${ms[migratepages,$s]}")
	for m in $methods; do
		med=$(median <<<"${ms[$m,$s]}")
		printf '| %-8s | %-12s | %9s | %8s | %8s | %13s | %7s | %-34s | %-16s |\n' "$s" "$m" "$med" \
			"$(ratio "$med" "$k")" "$(ratio "$med" "$mp")" "$(median <<<"${lat[$m,$s]}")" \
			"$(median <<<"${wr[$m,$s]:-}")" \
			"$(paste -d' ' <(tr ' ' '\n' <<<"${ms[$m,$s]}" | grep .) <(tr ' ' '\n' <<<"${lat[$m,$s]}" | grep . | sed 's/.*/(&)/') | tr '\n' ' ')" \
			"${wall[$m,$s]# }"
	done
done
[ ${#failed[@]} -eq 0 ] || { printf 'NOT MOVED: %s\n' "${failed[@]}"; fail "some runs left memory behind"; }
echo PASS

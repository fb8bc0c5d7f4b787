#!/bin/bash
# Inside the VM (started with v1 cpuset and memory hierarchies): one process
# with 512 MiB, and 4 processes with 128 MiB, moved from node 0 to node 1 by
#   numafollow  `numafollow migrate` on a v1 cpuset (memory_migrate=0)
#   migratepages  numactl's migratepages PID 0 1 on each pid
#   kernel      the kernel's own migration on a cgroup v2 cpuset.mems write
# Each run places fresh processes on node 0 and checks that >= 99% of their
# anonymous memory is on node 1 afterwards. Prints medians and ratios to the
# kernel. The v2 runs come last: the v1 hierarchies are unmounted so that
# cpuset can move to cgroup2 within the same boot. Each method first makes one
# untimed warm-up run (1 x 128 MiB): the first v2 write after that switch was
# measured to take minutes, an artifact of the switch, not of the method.
. tests/vm/lib.sh
need_nodes 2
reps=${NF_BENCH_REPS:-5}
declare -A times

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# hogs DIR COUNT MIB: starts COUNT memhogs in DIR, prints their pids.
hogs() {
	local pids=()
	for _ in $(seq 1 "$2"); do pids+=("$(start_hog "$1" -m "$3")"); done
	echo "${pids[@]}"
}

check_moved() {
	local p
	for p in "$@"; do
		[ "$(pct "$(anon_bytes "$p" 1)" "$(anon_bytes "$p" all)")" -ge 99 ] ||
			fail "pid $p: less than 99% on node 1 after $method"
	done
	kill "$@"
	while kill -0 "$@" 2>/dev/null; do sleep 0.05; done
}

record() { times[$1,$2]="${times[$1,$2]:-} $3"; }

# one_v1 METHOD COUNT MIB
one_v1() {
	local method=$1 dir=/sys/fs/cgroup/cpuset/nfb t0 t1 pids p
	mkdir -p $dir
	cat /sys/fs/cgroup/cpuset/cpuset.cpus >$dir/cpuset.cpus
	echo 0 >$dir/cpuset.mems
	read -ra pids <<<"$(hogs $dir "$2" "$3")"
	echo 1 >$dir/cpuset.mems # v1, memory_migrate=0: nothing moves
	t0=$(now_ms)
	if [ "$method" = numafollow ]; then
		"$NF" migrate nfb >/dev/null || fail "numafollow migrate exited $?"
	else
		for p in "${pids[@]}"; do migratepages "$p" 0 1; done
	fi
	t1=$(now_ms)
	check_moved "${pids[@]}"
	record "$method" "$2x$3" $((t1 - t0))
}

one_v2() {
	local dir=/sys/fs/cgroup/v2/nfb t0 t1 pids
	mkdir -p $dir
	echo 0 >$dir/cpuset.mems
	read -ra pids <<<"$(hogs $dir "$1" "$2")"
	t0=$(now_ms)
	echo 1 >$dir/cpuset.mems # the writer blocks while the kernel migrates
	t1=$(now_ms)
	method=kernel check_moved "${pids[@]}"
	record kernel "$1x$2" $((t1 - t0))
}

switch_to_v2() {
	rmdir /sys/fs/cgroup/cpuset/nfb 2>/dev/null || true
	umount /sys/fs/cgroup/cpuset /sys/fs/cgroup/memory
	mkdir -p /sys/fs/cgroup/v2
	mount -t cgroup2 none /sys/fs/cgroup/v2
	for _ in $(seq 1 100); do # the v1 hierarchy is released asynchronously
		echo +cpuset >/sys/fs/cgroup/v2/cgroup.subtree_control 2>/dev/null && return 0
		sleep 0.1
	done
	fail "cpuset did not become available on cgroup2"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

for method in numafollow migratepages; do one_v1 "$method" 1 128; done
unset 'times[numafollow,1x128]' 'times[migratepages,1x128]'
for rep in $(seq 1 "$reps"); do
	for w in "1 512" "4 128"; do
		# shellcheck disable=SC2086
		for method in numafollow migratepages; do one_v1 "$method" $w; done
	done
	say "rep $rep (v1) done"
done
switch_to_v2
one_v2 1 128
say "warm-up runs (untimed): ${times[kernel,1x128]} ms for the first v2 write"
unset 'times[kernel,1x128]'
for rep in $(seq 1 "$reps"); do
	for w in "1 512" "4 128"; do
		# shellcheck disable=SC2086
		one_v2 $w
	done
	say "rep $rep (v2) done"
done

echo
echo "Moving memory from node 0 to node 1, $reps runs each after a warm-up, one VM boot ($(nproc) vCPUs, TCG)."
echo "ratio = median time / the kernel's median time (lower is faster)."
echo
printf '| %-12s | %-36s | %9s | %15s | %13s |\n' workload method "median ms" "ratio to kernel" "min-max ms"
printf '|%s|%s|%s|%s|%s|\n' "--------------" "--------------------------------------" "-----------" "-----------------" "---------------"
for w in 1x512 4x128; do
	k=$(median <<<"${times[kernel,$w]}")
	for m in kernel numafollow migratepages; do
		med=$(median <<<"${times[$m,$w]}")
		case $m in
		kernel) label="kernel, cgroup v2 cpuset.mems write" ;;
		numafollow) label="numafollow migrate, cgroup v1" ;;
		migratepages) label="numactl migratepages, each pid" ;;
		esac
		range=$(tr ' ' '\n' <<<"${times[$m,$w]}" | grep . | sort -n | sed -n '1p;$p' | paste -sd-)
		printf '| %-12s | %-36s | %9s | %15s | %13s |\n' "${w%x*} x ${w#*x} MiB" "$label" "$med" \
			"$(awk -v a="$med" -v b="$k" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }')" "$range"
	done
done
echo
echo "raw (ms):"
for key in "${!times[@]}"; do echo "  $key:${times[$key]}"; done | sort

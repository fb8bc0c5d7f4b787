#!/bin/bash
# vm: --cgroup v2 --timeout 1200
# Memory shaped as real services' moves with `numafollow move --to 1`, default
# options, and ends on node 1 (every mapping of every process, numa_maps), or
# the record says why not: one heap, transparent huge pages, 2,000 small
# mappings, memory two threads keep writing, a process of 64 threads, shmem
# mapped by 3 child processes too, a mapped file's page cache, hugetlb. And the
# mechanisms: a call carries pages of many mappings; calls are sized by time;
# shared pages are not counted once per process that maps them.
. tests/vm/lib.sh
need_nodes 2
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
MT=$B/movetool
[ -x "$MT" ] || skip "movetool is not built in $B"
. tests/vm/probe-lib.sh
js() { jq -r "$1" "$T/r.json"; }

# every process of cgroup nfs has >= 99% of its pages on NODE
all_moved() {
	local p n=0
	for p in $(cat "$cg/cgroup.procs"); do
		expect_ge "pages of $p on node $1 (%)" "$(all_on "$p" "$1")" 99
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "no process in $cg"
}

clear_cg() {
	stop_probes
	while [ -n "$(cat "$cg/cgroup.procs")" ]; do sleep 0.05; done # the children
	rmdir "$cg"
}

# shape NAME PROBE_ARGS...: a workload on node 0, moved to node 1
shape() {
	local name=$1 rc=0
	shift
	say "$name: probe $*"
	cg=$(mkcg nfs 0)
	start_probe "$cg" "$@"
	"$NF" move --json --to 1 nfs >"$T/r.json" || rc=$?
	jq -c '{method, threads, gentle_bytes, moved_bytes, residual_bytes, sweeps, reasons}' "$T/r.json"
	expect_eq "$name: exit" "$rc" 0
	expect_eq "$name: cpuset.mems" "$(cat "$cg/cpuset.mems")" 1
	all_moved 1
}

shape heap -m 64
clear_cg

shape thp -m 64 -H
clear_cg

shape many -m 32 -n 2000
clear_cg

shape busy -m 64 -t 2
clear_cg

shape threads -m 32 -i 63 # with the main thread and the probe: 65
expect_eq "threads: the probe's threads" "$(ls /proc/"$PID"/task | wc -l)" 65
clear_cg

# 32 MiB shared by the probe and 3 children, 16 MiB private: the mover sees the
# shared range in all four, and moves and counts it once (four times: 144 MiB).
shape shared -m 16 -s 32 -c 3
expect_eq "shared: processes" "$(wc -l <"$cg/cgroup.procs")" 4
gentle=$(($(js .gentle_bytes) / MiB))
[ "$gentle" -ge 40 ] && [ "$gentle" -le 64 ] || fail "shared: move_pages counted $gentle MiB for 48"
say "shared: move_pages counted $gentle MiB for 48"
clear_cg

# a file of the host's (the VM's own files are tmpfs): page cache, read
# through 9p, mapped by the probe
[ -s "$B/shapes-test.dat" ] || fail "$B/shapes-test.dat missing (make check makes it)"
echo 1 >/proc/sys/vm/drop_caches
shape file -m 0 -f "$B/shapes-test.dat"
file_kb=$(maps_of "$PID" | awk '/shapes-test.dat/ { for (i = 1; i <= NF; i++) if ($i ~ /^N1=/) { split($i, a, "="); s += a[2] * 4 } } END { print s + 0 }')
expect_ge "file: page cache on node 1 (KiB)" "$file_kb" $((31 * 1024))
clear_cg

hp=/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages
for n in 0 1; do
	# shellcheck disable=SC2059
	echo 16 >"$(printf "$hp" "$n")"
	# shellcheck disable=SC2059
	expect_eq "huge pages reserved on node $n" "$(cat "$(printf "$hp" "$n")")" 16
done
shape hugetlb -m 0 -g 16
clear_cg

# NUMA balancing on: its scan makes PTEs PROT_NONE, which 6.1's move_pages
# reports as absent; the mover faults those pages in and moves them again
# (the hinting fault its touch takes may move a page itself: the mover's own
# count can be short, the pages' place is what is checked).
say "heap with NUMA balancing scanning it"
if [ -w /proc/sys/kernel/numa_balancing ]; then
	echo 1 >/proc/sys/kernel/numa_balancing
	cg=$(mkcg nfs 0)
	start_probe "$cg" -P -b -m 64
	hinted() { awk '$1 == "numa_pte_updates" { print $2 }' /proc/vmstat; }
	h0=$(hinted)
	marked() { [ $(($(hinted) - h0)) -ge 8192 ]; }
	wait_for "NUMA balancing to mark 32 MiB of the probe's pages" 120 marked
	set_mems "$cg" 0-1
	"$MT" --from 0 --to 1 "$PID" >"$T/r.json" || fail "movetool exited $?"
	jq -c '{ms, calls, query_calls, moved_mib, stayed_mib}' "$T/r.json"
	# (the probe touches nothing after its start: no hinting fault moves a page back)
	expect_on "$PID" 1
	expect_eq "pages left hidden (MiB)" "$(js '.stayed_mib.hidden')" 0
	clear_cg
	echo 0 >/proc/sys/kernel/numa_balancing
else
	say "no NUMA balancing in this kernel: skipped"
fi

say "a call carries pages of many mappings"
cg=$(mkcg nfs 0)
start_probe "$cg" -P -m 32 -n 2000
set_mems "$cg" 0-1
"$MT" --from 0 --to 1 "$PID" >"$T/r.json" || fail "movetool exited $?"
jq -c '{ms, calls, addresses, moved_mib}' "$T/r.json"
expect_on "$PID" 1
calls=$(js .calls)
# one call per mapping would be 2,000; the first calls are 256 pages (64 mappings)
[ "$calls" -le 200 ] || fail "$calls calls for 2,000 mappings of 4 pages"
say "$calls calls for 2,000 mappings"
clear_cg

say "calls are sized by time: 1 ms calls are more than 50 ms ones"
for ms in 1 50; do
	cg=$(mkcg nfs 0)
	start_probe "$cg" -P -m 64
	set_mems "$cg" 0-1
	"$MT" --from 0 --to 1 --threads 1 --call-ms "$ms" "$PID" >"$T/r.json" || fail "movetool exited $?"
	jq -c '{ms, calls, addresses, call_ms_max}' "$T/r.json"
	expect_on "$PID" 1
	declare "calls_$ms=$(js .calls)"
	clear_cg
done
# The mechanism, not the emulator's speed: whatever a page costs here, a 50x
# longer target makes calls at least twice as large.
[ "$calls_1" -ge $((2 * calls_50)) ] || fail "calls of 1 ms: $calls_1, of 50 ms: $calls_50"
say "calls: $calls_1 sized for 1 ms, $calls_50 for 50 ms"
echo PASS

#!/bin/bash
# vm: --cgroup v1
# Several multi-threaded processes in a cgroup and in a nested child cgroup,
# one of them with a main thread that exited (a zombie leader whose own
# numa_maps is empty): migrate counts thread groups, not threads, and moves
# them all.
. tests/vm/lib.sh
need_nodes 2

parent=$(mkcg nf-pod 0)
child=$(mkcg nf-pod/ctr 0)
p1=$(start_hog "$parent" -m 64 -t 3)
p2=$(start_hog "$parent" -m 64 -t 3)
p3=$(start_hog "$child" -m 96 -t 2)
p4=$(start_hog "$child" -m 48 -t 2 -Z)
leader_z() { [ "$(awk '{ print $3 }' /proc/"$p4"/stat)" = Z ]; }
wait_for "$p4's leader to exit" 30 leader_z
expect_eq "bytes in $p4's own numa_maps" "$(wc -c </proc/"$p4"/numa_maps)" 0
expect_eq "threads of $p1" "$(ls /proc/"$p1"/task | wc -l)" 4

set_mems "$parent" 0-1
set_mems "$child" 1
set_mems "$parent" 1
"$NF" migrate --json nf-pod >"$T/r.json" || fail "migrate exited $?: $(cat "$T/r.json")"
cat "$T/r.json"
expect_eq tasks "$(jq -r .tasks "$T/r.json")" 4
expect_eq tasks_migrated "$(jq -r .tasks_migrated "$T/r.json")" 4
expect_eq tasks_failed "$(jq -r .tasks_failed "$T/r.json")" 0
for p in "$p1" "$p2" "$p3" "$p4"; do
	expect_on "$p" 1
done

#!/bin/bash
# vm: --cgroup v1
# Several multi-threaded processes in a cgroup and in a nested child cgroup:
# migrate counts thread groups (not threads) and moves them all.
. tests/vm/lib.sh
need_nodes 2

parent=$(mkcg nf-pod 0)
child=$(mkcg nf-pod/ctr 0)
p1=$(start_hog "$parent" -m 64 -t 3)
p2=$(start_hog "$parent" -m 64 -t 3)
p3=$(start_hog "$child" -m 96 -t 2)
expect_eq "threads of $p1" "$(ls /proc/"$p1"/task | wc -l)" 4

set_mems "$parent" 0-1
set_mems "$child" 1
set_mems "$parent" 1
"$NF" migrate --json nf-pod >"$T/r.json" || fail "migrate exited $?: $(cat "$T/r.json")"
cat "$T/r.json"
expect_eq tasks "$(jq -r .tasks "$T/r.json")" 3
expect_eq tasks_migrated "$(jq -r .tasks_migrated "$T/r.json")" 3
expect_eq tasks_failed "$(jq -r .tasks_failed "$T/r.json")" 0
for p in "$p1" "$p2" "$p3"; do
	expect_ge "anon of $p on node 1 (%)" "$(pct "$(anon_bytes "$p" 1)" "$(anon_bytes "$p" all)")" 99
done

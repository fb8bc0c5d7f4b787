#!/bin/bash
# vm: --cgroup v1
# cgroup v1 with memory_migrate=0: the kernel leaves a 256 MiB process on node 0
# after cpuset.mems 0 -> 1; numafollow migrate moves it. Residency is checked
# from numa_maps directly, and the report is checked against numastat -p.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-v1 0)
expect_eq memory_migrate "$(cat "$cg/cpuset.memory_migrate")" 0
pid=$(start_hog "$cg" -m 256)
expect_on "$pid" 0 "at start"

set_mems "$cg" 1
sleep 0.5
expect_on "$pid" 0 "after the v1 write"

"$NF" migrate --json nf-v1 >"$T/report.json" || fail "numafollow migrate exited $?: $(cat "$T/report.json")"
cat "$T/report.json"
expect_on "$pid" 1 "after migrate"

for k in cgroup hierarchy to dry_run tasks tasks_migrated tasks_exited tasks_failed \
	pages_not_moved before after moved_bytes residual_bytes duration_ms errors; do
	jq -e "has(\"$k\")" "$T/report.json" >/dev/null || fail "report has no '$k'"
done
expect_eq hierarchy "$(jq -r .hierarchy "$T/report.json")" v1
expect_eq to "$(jq -r .to "$T/report.json")" 1
expect_eq tasks "$(jq -r .tasks "$T/report.json")" 1
expect_eq tasks_migrated "$(jq -r .tasks_migrated "$T/report.json")" 1
expect_eq residual_bytes "$(jq -r .residual_bytes "$T/report.json")" 0
expect_ge "moved MiB" "$(($(jq -r .moved_bytes "$T/report.json") / MiB))" 255

# The report's per-node figures agree with numastat -p within 1 MiB.
numastat -p "$pid"
for node in 0 1; do
	ours=$(jq -r ".after[\"$node\"] // 0" "$T/report.json")
	theirs=$(numastat_mb "$pid" "$node")
	diff=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { d = a / 1048576 - b; print (d < 0 ? -d : d) < 1 }')
	expect_eq "report node $node ($((ours / MiB)) MiB) agrees with numastat ($theirs MB)" "$diff" 1
done

# A second run finds nothing left to move.
"$NF" migrate nf-v1 || fail "second migrate exited $?"

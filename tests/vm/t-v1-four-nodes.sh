#!/bin/bash
# vm: --cgroup v1 --nodes 4 --memory-only 2 --node-mem 512
# 4 nodes, 2 and 3 without CPUs (memory-only, like CXL tiers). Pages on {0,1}
# moved to {2,3} keep their relative layout: node 0 -> 2, node 1 -> 3.
. tests/vm/lib.sh
need_nodes 4
[ -z "$(cat /sys/devices/system/node/node2/cpulist)" ] || fail "node 2 has CPUs"

cg=$(mkcg nf-four 0-1)
a=$(start_hog "$cg" -m 96) # placed by the first-touch policy: set it explicitly
b=$(start_hog "$cg" -m 96)
migratepages "$a" 1 0
migratepages "$b" 0 1
expect_on "$a" 0
expect_on "$b" 1

set_mems "$cg" 2-3
"$NF" migrate --dry-run --json --from 0-1 nf-four >"$T/plan.json"
expect_eq plan "$(jq -c '[.plan[] | select(.bytes > 1048576) | [.from, .to]]' "$T/plan.json")" "[[0,2],[1,3]]"
expect_on "$a" 0 "after the dry run"

"$NF" migrate --json --from 0-1 nf-four >"$T/r.json" || fail "migrate exited $?: $(cat "$T/r.json")"
cat "$T/r.json"
expect_on "$a" 2
expect_on "$b" 3

# A single memory-only node as the target takes everything.
set_mems "$cg" 3
"$NF" migrate --to 3 nf-four || fail "migrate to node 3 exited $?"
expect_on "$a" 3

# Where the relative mapping and a plain sweep disagree: pages on node 3 with
# --from 3 --to 0-1 go to node 0 (position 0 of 0-1); a sweep over {2,3}
# would send them to node 1. Node 2's pages (not in --from) go by the sweep.
set_mems "$cg" 2-3
migratepages "$a" 3 2
migratepages "$b" 2 3
expect_on "$a" 2
expect_on "$b" 3
set_mems "$cg" 0-1
"$NF" migrate --dry-run --json --from 3 nf-four >"$T/plan2.json"
expect_eq "plan --from 3 --to 0-1" \
	"$(jq -c '[.plan[] | select(.bytes > 1048576) | [.from, .to]]' "$T/plan2.json")" "[[2,0],[3,0]]"
"$NF" migrate --from 3 nf-four || fail "migrate --from 3 exited $?"
expect_on "$b" 0 "relative: 3 -> 0"
expect_on "$a" 0 "sweep: 2 -> 0"

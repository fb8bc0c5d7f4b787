#!/bin/bash
# vm: --cgroup v1
# What cannot move is reported, classified, and gives exit 1. Without
# CAP_SYS_NICE the kernel moves only pages mapped by one process
# (MPOL_MF_MOVE): 32 MiB shared with a child stay, 64 MiB private move.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-residue 0)
pid=$(start_hog "$cg" -m 64 -s 32)
set_mems "$cg" 1
rc=0
setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice "$NF" migrate --json --retries 1 nf-residue \
	>"$T/r.json" || rc=$?
jq -c '{tasks, tasks_migrated, residual_bytes, residual, sweeps, pages_not_moved}' "$T/r.json"
expect_eq "exit status (partial)" "$rc" 1
expect_eq tasks "$(jq -r .tasks "$T/r.json")" 2
expect_eq tasks_failed "$(jq -r .tasks_failed "$T/r.json")" 0
expect_eq sweeps "$(jq -r .sweeps "$T/r.json")" 2
# Both processes map the 32 MiB: 64 MiB of mappings stay, all of them "shared".
shared=$(jq -r '.residual.shared // 0' "$T/r.json")
expect_ge "residual shared MiB" $((shared / MiB)) 64
expect_ge "shared share of the residue (%)" "$(pct "$shared" "$(jq -r .residual_bytes "$T/r.json")")" 95
# Explained, with the remedy: the biggest reason is the sharing, which needs
# CAP_SYS_NICE.
jq -c '.reasons' "$T/r.json"
expect_eq "first reason" "$(jq -r '.reasons[0].class' "$T/r.json")" shared
jq -e '.reasons[0].text | test("CAP_SYS_NICE")' "$T/r.json" >/dev/null ||
	fail "the shared residue's reason names no remedy: $(jq -c .reasons "$T/r.json")"
expect_on "$pid" 1
shared_on() { maps_of "$pid" | awk -v n="N$1=" '/mapmax=/ { for (i = 1; i <= NF; i++) if (index($i, n) == 1) s += substr($i, length(n) + 1) } END { print s + 0 }'; }
expect_ge "shared pages still on node 0" "$(shared_on 0)" $((32 * MiB / 4096))

# With CAP_SYS_NICE (root as is) the shared pages move too: exit 0, no residue.
"$NF" migrate nf-residue | tee "$T/human.txt" || fail "privileged migrate exited $?"
grep -q "left outside" "$T/human.txt" && fail "a residue was left with CAP_SYS_NICE"
expect_eq "shared pages left on node 0" "$(shared_on 0)" 0

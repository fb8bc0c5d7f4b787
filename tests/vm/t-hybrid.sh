#!/bin/bash
# vm: --cgroup hybrid
# A hybrid host: cpuset and memory on v1, cgroup2 at /sys/fs/cgroup/unified
# without cpuset. numafollow finds cpuset on v1 and works there.
. tests/vm/lib.sh
need_nodes 2
mountpoint -q /sys/fs/cgroup/unified || fail "no cgroup2 at /sys/fs/cgroup/unified"

cg=$(mkcg nf-hybrid 0)
pid=$(start_hog "$cg" -m 32)
set_mems "$cg" 1
"$NF" show --json /sys/fs/cgroup/cpuset/nf-hybrid >"$T/s.json"
cat "$T/s.json"
expect_eq hierarchy "$(jq -r .hierarchy "$T/s.json")" v1
expect_eq cgroup "$(jq -r .cgroup "$T/s.json")" /sys/fs/cgroup/cpuset/nf-hybrid
expect_eq source "$(jq -r .source "$T/s.json")" numa_maps
"$NF" migrate nf-hybrid || fail "migrate exited $?"
expect_on "$pid" 1
# The cgroup2 mount beside it is not where cpuset lives.
rc=0
"$NF" show /sys/fs/cgroup/unified 2>"$T/err" || rc=$?
expect_eq "exit for a path in the cgroup2 mount" "$rc" 2

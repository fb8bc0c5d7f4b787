#!/bin/bash
# make demo, inside the NUMA VM (cgroup v1): a process with 256 MiB on node 0,
# its cgroup moved to node 1, and numafollow making its memory follow.
. tests/vm/lib.sh
need_nodes 2
export PATH=$PWD/build:$PATH

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a cgroup 'demo' on node 0 (cgroup v1, cpuset.memory_migrate=0) with a 256 MiB process"
cg=$(mkcg demo 0)
pid=$(start_hog "$cg" -m 256)
numafollow show demo

step "echo 1 > cpuset.mems: the cgroup now belongs on node 1, but on v1 nothing moves"
set_mems "$cg" 1
numafollow show demo

step "numafollow migrate --dry-run demo: the plan, nothing moved"
numafollow migrate --dry-run demo

step "numafollow migrate demo"
numafollow migrate demo

step "numastat -p $pid (numactl's view, independent of numafollow)"
numastat -p "$pid"

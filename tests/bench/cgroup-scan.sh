#!/bin/bash
# The cgroup layer against libcgroup (build/cgroup-scan, tests/bench/cgroup-scan.c),
# as root on a host or in the VM: tests/vm/vm.sh --cgroup v2 -- tests/bench/cgroup-scan.sh.
# Makes 10,001 cgroups under the cpuset hierarchy's root, in /nf-cgbench:
# 1,000 pods p000..p999 of 9 containers k0..k8 each, plus "p000/k 9"; the
# program puts one process in each pod's k0 (and in "k 9"). Removes them after.
# NF_BENCH_REPS (7): runs per case, the median is printed; NF_BUILD: build dir.
set -eu -o pipefail
cd "$(dirname "$0")/../.."
reps=${NF_BENCH_REPS:-7}
B=${NF_BUILD:-build} # a second build tree: the one to measure
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
if [ -d /sys/fs/cgroup/cpuset ]; then root=/sys/fs/cgroup/cpuset; else root=/sys/fs/cgroup; fi
base=$root/nf-cgbench
cleanup() { [ ! -d "$base" ] || find "$base" -depth -type d -exec rmdir {} +; }
trap cleanup EXIT
mkdir "$base"
if [ "$root" = /sys/fs/cgroup ]; then # v2: cpuset down to the pods
	echo +cpuset >"$root/cgroup.subtree_control"
	echo +cpuset >"$base/cgroup.subtree_control"
else # v1: children copy cpus and mems from their parent
	cat "$root/cpuset.cpus" >"$base/cpuset.cpus"
	cat "$root/cpuset.mems" >"$base/cpuset.mems"
	echo 1 >"$base/cgroup.clone_children"
fi
mkdir "$base"/p{000..999}
[ "$root" = /sys/fs/cgroup ] || for p in "$base"/p*; do echo 1 >"$p/cgroup.clone_children"; done
mkdir "$base"/p{000..999}/k{0..8} "$base/p000/k 9"
"$B/cgroup-scan" /nf-cgbench "$reps"

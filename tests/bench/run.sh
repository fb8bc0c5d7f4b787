#!/bin/bash
# make bench: boots the NUMA VM on cgroup v2 and measures, in that one run,
# moving memory from node 0 to node 1 every way (tests/bench/engine.sh: time,
# throughput and the workload's worst mmap wait); then for memory shaped as
# real services' (tests/bench/shapes.sh); then boots it again for the
# agent (tests/bench/agent.sh), for the OCI hook (tests/bench/hook.sh) and for
# the cgroup layer against libcgroup (tests/bench/cgroup-scan.sh).
set -eu -o pipefail
cd "$(dirname "$0")/../.."
mkdir -p build
tests/vm/vm.sh --cgroup v2 --node-mem 1536 --timeout 3000 -- tests/bench/engine.sh | tee build/bench.txt
# the file shape's page cache: a file of the host's (the VM's own files are tmpfs)
[ -s build/shapes.dat ] || head -c 256M /dev/urandom >build/shapes.dat
tests/vm/vm.sh --cgroup v2 --node-mem 1536 --timeout 5000 -- tests/bench/shapes.sh | tee -a build/bench.txt
tests/vm/vm.sh --cgroup v2 --timeout 1200 -- tests/bench/agent.sh | tee -a build/bench.txt
tests/vm/vm.sh --cgroup v2 -- tests/bench/hook.sh | tee -a build/bench.txt
tests/vm/vm.sh --cgroup v2 --timeout 1500 -- tests/bench/cgroup-scan.sh | tee -a build/bench.txt

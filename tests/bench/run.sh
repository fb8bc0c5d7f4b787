#!/bin/bash
# make bench: boots the NUMA VM once and measures, in that one run, moving
# memory from node 0 to node 1 three ways (see tests/bench/migrate.sh); then
# boots it again on cgroup v2 for the agent (tests/bench/agent.sh) and for
# the OCI hook (tests/bench/hook.sh).
set -eu -o pipefail
cd "$(dirname "$0")/../.."
mkdir -p build
tests/vm/vm.sh --cgroup v1 --node-mem 1536 --timeout 1200 -- tests/bench/migrate.sh | tee build/bench.txt
tests/vm/vm.sh --cgroup v2 --timeout 1200 -- tests/bench/agent.sh | tee -a build/bench.txt
tests/vm/vm.sh --cgroup v2 -- tests/bench/hook.sh | tee -a build/bench.txt

#!/bin/bash
# The agent's lock during the agent bench: runs tests/bench/agent.sh and reads
# "lock" of the agent's /v1/status every second while it runs (holds, total
# and longest hold, and where; plugin/agent/agent-internal.h has the lock
# rule), then prints the last reading, taken at most a second before the
# bench stops the agent. In the VM (docs/benchmarks.md):
#   tests/vm/vm.sh --cgroup v2 --timeout 3600 -- tests/vm/lock-hold.sh
# or on a host as root: NF_ON_HOST=1 NF_BENCH_CHANGES=0 tests/vm/lock-hold.sh.
# NF_BUILD picks another build tree (an older commit's, for a comparison).
set -u
last=$(mktemp)
trap 'rm -f "$last"' EXIT
tests/bench/agent.sh &
bench=$!
# the bench's agent: a child of the bench, its socket on its command line
sock() {
	local p
	for p in $(pgrep -P "$bench" -x numafollowd); do
		tr '\0' '\n' <"/proc/$p/cmdline" | sed -n '/^--socket$/{n;p;q}'
	done
}
while kill -0 "$bench" 2>/dev/null; do
	s=$(sock)
	j=$([ -n "$s" ] && curl -sS --max-time 5 --unix-socket "$s" http://nf/v1/status 2>/dev/null |
		jq -c '{containers, cgroups_watched, lock}' 2>/dev/null) && [ -n "$j" ] &&
		echo "$j" >"$last"
	sleep 1
done
wait "$bench"
rc=$?
echo "-- the agent's lock, last read while the bench ran: $(cat "$last")"
exit $rc

#!/bin/bash
# The agent's lock during the agent bench: runs tests/bench/agent.sh and reads
# "lock" of the agent's /v1/status every second while it runs (holds, total
# and longest hold, and where; plugin/agent/agent-internal.h has the lock
# rule), then prints the last reading, taken at most a second before the
# bench stops the agent. In the VM (docs/benchmarks.md):
#   tests/vm/vm.sh --cgroup v2 --timeout 1200 -- tests/vm/lock-hold.sh
# NF_BUILD picks another build tree (an older commit's, for a comparison).
set -u
: >/tmp/lock-hold.last
(
	while sleep 1; do
		for s in /tmp/tmp.*/nf.sock; do
			[ -S "$s" ] || continue
			j=$(curl -sS --max-time 5 --unix-socket "$s" http://nf/v1/status 2>/dev/null |
				jq -c '{containers, cgroups_watched, lock}' 2>/dev/null) &&
				[ -n "$j" ] && echo "$j" >/tmp/lock-hold.last
		done
	done
) &
poller=$!
tests/bench/agent.sh
rc=$?
kill "$poller"
echo "-- the agent's lock, last read while the bench ran: $(cat /tmp/lock-hold.last)"
exit $rc

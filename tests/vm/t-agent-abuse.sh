#!/bin/bash
# vm: --cgroup v2
# The agent under abuse: malformed HTTP over its unix socket (tests/vm/abuse.py:
# bad request lines, huge and many headers, lying lengths, smuggling framings,
# 10 MiB bodies, deep and invalid JSON, odd ids and queries, 300 held
# connections, a burst). It stays up, answers the next normal request, and
# nothing in its state changes. A cgroup named with invalid UTF-8 keeps
# /v1/containers valid JSON and /metrics valid for promtool.
. tests/vm/lib.sh
need_nodes 2
[ -x /usr/bin/python3 ] || skip "python3 is not installed"

cg=$(mkcg nf-abuse/ctr1 0)
pid=$(start_hog "$cg" -m 8)
start_agent --cgroup-root /nf-abuse
expect_eq "registration" "$(api_status /v1/containers -X POST -d "{\"id\": \"ctr-1\", \"pid\": $pid}")" 201
state() {
	api /v1/containers | jq -cS '[.containers[] | {id, cgroup, registered, mems}]'
	api '/v1/migrations?limit=1000' | jq -c '[.migrations[].id]'
}
state >"$T/before"

/usr/bin/python3 tests/vm/abuse.py "$SOCK" "$AGENT" "$pid" ctr-1 || fail "abuse.py failed"
kill -0 "$AGENT" || fail "the agent died"
state | diff "$T/before" - || fail "malformed traffic changed the agent's state"
say "state unchanged after the malformed traffic"
if grep -E "^[a-z]+: .*[[:cntrl:]]" "$T/agent.log" | grep -qv $'\t'; then
	fail "a control character reached the log"
fi

# A cgroup whose name is not UTF-8 (anyone with a delegated subtree can make one).
bad=$(mkcg "nf-abuse/bad$(printf '\xff\xfe')name" 0)
bpid=$(start_hog "$bad" -m 1)
listed() { api /v1/containers | jq -e '.containers | length == 2' >/dev/null; }
wait_for "the badly named cgroup to be listed" 20 listed
api /v1/containers | /usr/bin/python3 -c 'import json, sys; d = json.loads(sys.stdin.buffer.read().decode("utf-8")); print("-- names:", [c["cgroup"] for c in d["containers"]])' ||
	fail "/v1/containers is not valid UTF-8 JSON with a badly named cgroup"
api /metrics >"$T/metrics"
promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics with a badly named cgroup"
say "a cgroup named with invalid UTF-8: /v1/containers valid JSON, /metrics valid"
kill "$bpid"
echo PASS

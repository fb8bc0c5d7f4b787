#!/bin/bash
# vm: --cgroup v1
# Kubernetes Events: the agent, given a service account (token, ca.crt) and
# KUBERNETES_SERVICE_HOST/PORT, tells a stand-in API server over HTTPS
# (tests/vm/kube-stub.py: the token, the path, the content type and the body
# by the API's rules and python3-kubernetes' model) how each migration of a
# registered pod's container ended: Normal when the memory followed, Warning
# with the reasons when some was left behind, a series PATCH for a repeat.
# A 429 is retried after its Retry-After and delivered, a 500 after the
# backoff; a 403 is not retried and logged once; with the server down
# migrations go on, the log says why, and the bounded queue drops and counts;
# a stop does not wait out a 60 s Retry-After. cgroup v1: there the agent itself moves
# the memory, and, run without CAP_SYS_NICE, leaves pages shared between
# processes behind (a reliable Warning; on v2 the kernel moves them in the
# write).
. tests/vm/lib.sh
need_nodes 2
PY=/usr/bin/python3
$PY -c 'import kubernetes.client' 2>/dev/null || skip "python3-kubernetes not installed"
command -v openssl >/dev/null || skip "openssl not installed"

# A CA and the server's certificate for 127.0.0.1; the service account files.
K=$T/kube SA=$T/sa PORT=16443
mkdir -p "$K" "$SA"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stub-ca -keyout "$K/ca.key" \
	-out "$SA/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kubernetes -keyout "$K/srv.key" -out "$K/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\n' >"$K/ext"
openssl x509 -req -in "$K/srv.csr" -CA "$SA/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -days 2 \
	-extfile "$K/ext" -out "$K/srv.crt" 2>/dev/null
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SA/token"
echo numafollow >"$SA/namespace"
REQ=$K/requests.jsonl MODE=$K/mode
: >"$REQ"
start_stub() {
	$PY tests/vm/kube-stub.py --port $PORT --cert "$K/srv.crt" --key "$K/srv.key" \
		--token-file "$SA/token" --log "$REQ" --mode-file "$MODE" >>"$K/stub.log" 2>&1 &
	STUB=$!
	wait_for "the stand-in API server" 60 curl -sf --cacert "$SA/ca.crt" -o /dev/null \
		"https://127.0.0.1:$PORT/healthz"
}
start_stub
trap '[ -z "${STUB:-}" ] || kill "$STUB" 2>/dev/null; cleanup' EXIT

# The stand-in can refuse: a body with a bad type, a long note and no
# eventTime is answered 422 by its rules and by python3-kubernetes' model.
long=$(head -c 1100 /dev/zero | tr '\0' x)
got=$(curl -sS --cacert "$SA/ca.crt" -H "Authorization: Bearer $(cat "$SA/token")" \
	-H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
	-d "{\"apiVersion\": \"events.k8s.io/v1\", \"kind\": \"Event\", \"metadata\": {\"name\": \"x\"},
	     \"type\": \"Info\", \"note\": \"$long\"}" \
	"https://127.0.0.1:$PORT/apis/events.k8s.io/v1/namespaces/control/events")
expect_eq "a bad event's answer" "$got" 422
jq -c '.errors' "$REQ"
jq -e '.errors | any(test("^type")) and any(test("^note")) and any(test("python3-kubernetes"))' "$REQ" >/dev/null ||
	fail "the stand-in did not name the bad fields"
got=$(curl -sS --cacert "$SA/ca.crt" -H "Authorization: Bearer wrong" -o /dev/null -w '%{http_code}' \
	-d '{}' "https://127.0.0.1:$PORT/apis/events.k8s.io/v1/namespaces/control/events")
expect_eq "a wrong token's answer" "$got" 401
: >"$REQ"

# The agent without CAP_SYS_NICE (shared pages stay), as a pod would run it.
cat >"$T/nfd" <<EOF
#!/bin/sh
exec setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice $NFD "\$@"
EOF
chmod +x "$T/nfd"
export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$PORT NODE_NAME=vm-node-1
NFD=$T/nfd start_agent --kube-sa-dir "$SA" --kube-events-queue 3
grep -q "kube events: on, to https://127.0.0.1:$PORT" "$T/agent.log" || fail "events are not on"
api /v1/status | jq -c .kube_events
expect_eq "status: kube_events.enabled" "$(api /v1/status | jq -r .kube_events.enabled)" true

metric() { api /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# requests SELECT: how many logged requests jq's SELECT picks.
requests() { jq -s "[.[] | select($1)] | length" "$REQ"; }
has() { [ "$(requests "$1")" -ge "${2:-1}" ]; }

# register ID PID POD UID: the hook's registration, with the CRI annotations.
register() {
	api /v1/containers -X POST -d "{\"id\": \"$1\", \"pid\": $2, \"name\": \"app\",
		\"annotations\": {\"io.kubernetes.cri.sandbox-name\": \"$3\",
		\"io.kubernetes.cri.sandbox-namespace\": \"shop\",
		\"io.kubernetes.cri.sandbox-uid\": \"$4\"}}" >/dev/null
}
# migrated ID N: container ID has its migration number N, ok or partial.
migrated() {
	api "/v1/migrations?container=$1" |
		jq -e --argjson n "$2" '[.migrations[] | select(.result == "ok" or .result == "partial")] | length >= $n' >/dev/null
}

# 1. A pod's container moved: one Normal event, valid, about that Pod.
uid=6f0c2c8e-1f0a-4b7e-9a51-3b1f2e4d5c6a
cid=aaaa000011112222333344445555666677778888999900001111222233334444
cg=$(mkcg "kubepods/burstable/pod$uid/$cid" 0)
# static: no library pages mapped by other processes, which would stay too
pid=$(MEMHOG=$B/memhog-static start_hog "$cg" -m 64)
register "$cid" "$pid" web-0 "$uid"
set_mems "$cg" 1
wait_for "the migration" 60 migrated "$cid" 1
expect_on "$pid" 1
wait_for "a Normal event" 60 has '.method == "POST" and .status == 201'
jq -c 'select(.method == "POST") | .body' "$REQ"
first=$(jq -s -c '[.[] | select(.method == "POST" and .status == 201)][0]' "$REQ")
expect_eq "POST path" "$(jq -r .path <<<"$first")" /apis/events.k8s.io/v1/namespaces/shop/events
expect_eq "type" "$(jq -r .body.type <<<"$first")" Normal
expect_eq "reason" "$(jq -r .body.reason <<<"$first")" MemoryFollowed
expect_eq "action" "$(jq -r .body.action <<<"$first")" MigrateMemory
expect_eq "reportingController" "$(jq -r .body.reportingController <<<"$first")" numafollow.io/agent
expect_eq "reportingInstance" "$(jq -r .body.reportingInstance <<<"$first")" numafollow-vm-node-1
expect_eq "regarding" "$(jq -c '.body.regarding | [.kind, .namespace, .name, .uid]' <<<"$first")" \
	"[\"Pod\",\"shop\",\"web-0\",\"$uid\"]"
jq -e '.body.note | test("^Memory followed .* [0-9.]+ MiB moved to node 1 in [0-9.]+ s")' <<<"$first" >/dev/null ||
	fail "the note does not say what moved: $(jq .body.note <<<"$first")"
jq -e '.body.metadata.name | startswith("web-0.")' <<<"$first" >/dev/null || fail "event name"
name=$(jq -r .body.metadata.name <<<"$first")
expect_eq "invalid requests so far" "$(requests '.errors | length > 0')" 0

# 2. The same again (back to node 0): a PATCH of that event's series.
set_mems "$cg" 0
wait_for "the second migration" 60 migrated "$cid" 2
wait_for "a series PATCH" 60 has '.method == "PATCH" and .status == 200'
patch=$(jq -s -c '[.[] | select(.method == "PATCH")][0]' "$REQ")
jq -c . <<<"$patch"
expect_eq "PATCH path" "$(jq -r .path <<<"$patch")" "/apis/events.k8s.io/v1/namespaces/shop/events/$name"
expect_eq "PATCH content type" "$(jq -r .content_type <<<"$patch")" application/merge-patch+json
expect_eq "series.count" "$(jq -r .body.series.count <<<"$patch")" 2
expect_eq "POSTs (no second event)" "$(requests '.method == "POST"')" 1

# 3. Memory left behind: 32 MiB shared with a child stay without CAP_SYS_NICE.
uid2=0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a
cid2=bbbb000011112222333344445555666677778888999900001111222233334444
cg2=$(mkcg "kubepods/burstable/pod$uid2/$cid2" 0)
pid2=$(start_hog "$cg2" -m 16 -s 32)
register "$cid2" "$pid2" db-0 "$uid2"
set_mems "$cg2" 1
wait_for "the partial migration" 90 migrated "$cid2" 1
api "/v1/migrations?container=$cid2" | jq -c '.migrations[0] | {result, residual_bytes}'
wait_for "a Warning event" 60 has '.body.regarding.name == "db-0" and .status == 201'
warn=$(jq -s -c '[.[] | select(.body.regarding.name == "db-0")][0]' "$REQ")
jq -c .body <<<"$warn"
expect_eq "Warning type" "$(jq -r .body.type <<<"$warn")" Warning
expect_eq "Warning reason" "$(jq -r .body.reason <<<"$warn")" MemoryLeftBehind
jq -e '.body.note | test("^Memory left behind: [0-9.]+ MiB stayed outside node 1") and test("CAP_SYS_NICE")' \
	<<<"$warn" >/dev/null || fail "the Warning's note lacks the residue or the remedy: $(jq .body.note <<<"$warn")"
expect_ge "note bytes <= 1024" $((1024 - $(jq -j .body.note <<<"$warn" | wc -c))) 0

# 4. 429 with Retry-After: 3 (the first backoff is 1 s): retried after it,
# then delivered (series count 3).
echo "429:1:3" >"$MODE"
set_mems "$cg" 1
wait_for "the third migration" 60 migrated "$cid" 3
wait_for "the retried PATCH" 60 has '.method == "PATCH" and .status == 200' 2
expect_eq "429 answers" "$(requests '.status == 429')" 1
t429=$(jq -s -r '[.[] | select(.status == 429)][0].time' "$REQ")
t200=$(jq -s -r '[.[] | select(.method == "PATCH" and .status == 200)][1].time' "$REQ")
say "429 at $t429, delivered at $t200"
gap_ms=$($PY -c 'import sys, datetime as d
f = lambda s: d.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
print(int((f(sys.argv[2]) - f(sys.argv[1])).total_seconds() * 1000))' "$t429" "$t200")
expect_ge "ms from the 429 to the retry (Retry-After: 3)" "$gap_ms" 2900
expect_eq "series.count after the retry" \
	"$(jq -s -r '[.[] | select(.method == "PATCH" and .status == 200)][1].body.series.count' "$REQ")" 3
expect_ge "retries metric" "$(metric numafollow_kube_events_retries_total)" 1

# 4b. 500 once: retried (the first backoff) and delivered, not counted failed.
echo "500:1" >"$MODE"
retries=$(metric numafollow_kube_events_retries_total)
set_mems "$cg" 0
wait_for "the migration after the 500" 60 migrated "$cid" 4
wait_for "the PATCH after the 500" 60 has '.method == "PATCH" and .status == 200' 3
expect_eq "500 answers" "$(requests '.status == 500')" 1
expect_eq "retries after the 500" "$(metric numafollow_kube_events_retries_total)" $((retries + 1))
expect_eq "failed as server errors" "$(metric 'numafollow_kube_events_failed_total{reason="server_error"}')" 0

# 5. 403: not retried, logged once, counted.
echo 403 >"$MODE"
before=$(requests 'true')
set_mems "$cg" 1
wait_for "the fifth migration" 60 migrated "$cid" 5
forbidden() { [ "$(metric 'numafollow_kube_events_failed_total{reason="forbidden"}')" = "$1" ]; }
wait_for "the 403 counted" 60 forbidden 1
set_mems "$cg" 0
wait_for "the sixth migration" 60 migrated "$cid" 6
wait_for "the second 403 counted" 60 forbidden 2
expect_eq "requests in 403 mode (no retries)" "$(($(requests 'true') - before))" 2
expect_eq "warnings logged about 403" "$(grep -c 'forbidden (HTTP 403.*further failures' "$T/agent.log")" 1
grep 'forbidden (HTTP 403' "$T/agent.log" | head -n 1

# 6. The server down: migrations go on, the log says why, the queue of 3 drops.
echo ok >"$MODE"
kill "$STUB"
wait "$STUB" 2>/dev/null || true
STUB=
for i in $(seq 7 14); do
	set_mems "$cg" $((i % 2))
	wait_for "migration $i" 60 migrated "$cid" "$i"
done
api "/v1/migrations?container=$cid&limit=8" | jq -r '.migrations[] | "\(.id) \(.result) \(.moved_bytes)"'
expect_eq "migrations not ok with the server down" \
	"$(api "/v1/migrations?container=$cid" | jq '[.migrations[] | select(.result != "ok")] | length')" 0
dropped=$(metric numafollow_kube_events_dropped_total)
expect_ge "dropped (queue full)" "$dropped" 1
say "queued = $(metric numafollow_kube_events_queued)"
grep -q "kube events: the queue is full" "$T/agent.log" || fail "no log line about the full queue"
unreach() { grep -q 'not delivered to https://127.0.0.1:[0-9]*: unreachable' "$T/agent.log"; }
wait_for "the log to say the server is unreachable" 90 unreach
grep 'unreachable' "$T/agent.log" | grep -v '^debug' | head -n 2
expect_ge "failed as unreachable" "$(metric 'numafollow_kube_events_failed_total{reason="unreachable"}')" 1
api /v1/status | jq -c .kube_events
api /metrics | grep '^numafollow_kube_events'
api /metrics | promtool check metrics || fail "promtool check metrics"

# The stop does not wait out the backoff of an event in retry: the server
# back, answering 429 with Retry-After: 60 to the next event.
echo "429:100:60" >"$MODE"
start_stub
n429=$(requests '.status == 429')
set_mems "$cg" 1
wait_for "migration 15" 60 migrated "$cid" 15
wait_for "a 429 to hold the next event back 60 s" 60 has '.status == 429' $((n429 + 1))
t0=$(date +%s)
kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $?"
AGENT=
expect_ge "seconds left to stop (of 30, a wait would take 60)" $((30 - ($(date +%s) - t0))) 0
expect_eq "invalid requests" "$(requests '.errors | length > 0')" 0
say "requests: $(jq -s -c 'group_by(.method, .status) | map({m: .[0].method, s: .[0].status, n: length})' "$REQ")"

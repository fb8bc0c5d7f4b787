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
# a stop does not wait out a 60 s Retry-After, nor a server that never
# answers. Only the service account's CA is trusted: an impostor with a
# certificate from a CA in libcurl's default CA path (/etc/ssl/certs, in the
# VM's overlay) gets no request, no token; a ca.crt that holds no certificate
# stops `--kube-events on` at the start. cgroup v1: there the agent itself moves
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

# A ca.crt that is no certificate: --kube-events on does not start (exit 3).
mkdir -p "$T/sa-bad"
cp "$SA/token" "$SA/namespace" "$T/sa-bad/"
echo "this is not a certificate" >"$T/sa-bad/ca.crt"
rc=0
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$PORT timeout 60 "$NFD" --config /dev/null \
	--socket "$T/bad.sock" --state-dir "$T/state-bad" --kube-events on --kube-sa-dir "$T/sa-bad" \
	>"$T/bad.log" 2>&1 || rc=$?
cat "$T/bad.log"
expect_eq "exit with a garbage ca.crt and --kube-events on" "$rc" 3
grep -q "ca.crt holds no PEM certificate" "$T/bad.log" || fail "the error does not name the ca.crt"

# An impostor: a second CA, put in the CA directory libcurl trusts by default
# (its built-in CAPATH, /etc/ssl/certs: the VM's overlay, not the host's), and
# a server certificate from it for the same address. curl with --cacert
# alone still trusts it (its CA path stays on); the agent must not.
capath=$(curl-config --configure 2>/dev/null | grep -o "with-ca-path=[^' ]*" | cut -d= -f2)
capath=${capath:-/etc/ssl/certs}
[ -d "$capath" ] && [ -w "$capath" ] || skip "no writable CA directory $capath in the VM"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=impostor-ca -keyout "$K/ca2.key" \
	-out "$K/ca2.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kubernetes -keyout "$K/imp.key" -out "$K/imp.csr" 2>/dev/null
openssl x509 -req -in "$K/imp.csr" -CA "$K/ca2.crt" -CAkey "$K/ca2.key" -CAcreateserial -days 2 \
	-extfile "$K/ext" -out "$K/imp.crt" 2>/dev/null
cp "$K/ca2.crt" "$capath/$(openssl x509 -hash -noout -in "$K/ca2.crt").0"
IMP_PORT=16444 IMP_REQ=$K/impostor.jsonl
: >"$IMP_REQ"
$PY tests/vm/kube-stub.py --port $IMP_PORT --cert "$K/imp.crt" --key "$K/imp.key" \
	--token-file "$SA/token" --log "$IMP_REQ" --mode-file "$K/imp-mode" >>"$K/imp.log" 2>&1 &
IMP=$!
wait_for "the impostor" 60 curl -sf --capath "$capath" -o /dev/null "https://127.0.0.1:$IMP_PORT/healthz"
curl -sf --cacert "$SA/ca.crt" -o /dev/null "https://127.0.0.1:$IMP_PORT/healthz" ||
	fail "curl --cacert ca.crt refused the impostor: the test does not show what it means to"
: >"$IMP_REQ"
start_stub() {
	$PY tests/vm/kube-stub.py --port $PORT --cert "$K/srv.crt" --key "$K/srv.key" \
		--token-file "$SA/token" --log "$REQ" --mode-file "$MODE" >>"$K/stub.log" 2>&1 &
	STUB=$!
	wait_for "the stand-in API server" 60 curl -sf --cacert "$SA/ca.crt" -o /dev/null \
		"https://127.0.0.1:$PORT/healthz"
}
start_stub
trap '[ -z "${STUB:-}" ] || kill "$STUB" 2>/dev/null; kill "$IMP" 2>/dev/null || true; cleanup' EXIT

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

# 0. The impostor: the agent, sent there, does not hand it the token. It
# runs with the impostor's port, then stops; the rest of the test runs
# against the right server with the impostor's CA still in the store.
KUBERNETES_SERVICE_PORT=$IMP_PORT start_agent --kube-sa-dir "$SA" --kube-events on
uid0=1e2d3c4b-5a69-4788-8796-a5b4c3d2e1f0
cid0=cccc000011112222333344445555666677778888999900001111222233334444
cg0=$(mkcg "kubepods/burstable/pod$uid0/$cid0" 0)
pid0=$(MEMHOG=$B/memhog-static start_hog "$cg0" -m 16)
register "$cid0" "$pid0" imp-0 "$uid0"
set_mems "$cg0" 1
wait_for "the migration (impostor)" 60 migrated "$cid0" 1
refused() { grep -q "kube events: POST /apis/events.k8s.io/v1/namespaces/shop/events: unreachable" "$T/agent.log"; }
wait_for "the agent to refuse the impostor's certificate" 60 refused
grep "kube events: POST" "$T/agent.log" | head -n 1
grep -q "kube events: POST .*unreachable: SSL certificate problem" "$T/agent.log" ||
	fail "the refusal is not the certificate's"
expect_eq "requests the impostor saw (no Event, no token)" "$(wc -l <"$IMP_REQ")" 0
# back to node 0: the move took memhog-static's page cache (its text) to node
# 1, where the next hogs, on node 0, would map it and start outside their mems
set_mems "$cg0" 0
wait_for "the migration back (impostor)" 60 migrated "$cid0" 2
expect_eq "requests the impostor saw (no Event, no token)" "$(wc -l <"$IMP_REQ")" 0
kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $?"
AGENT=
kill "$IMP"
# its hog would share memhog-static's text with the next one, pages an
# agent without CAP_SYS_NICE cannot move
kill "$pid0"
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
wait_for "the impostor phase's hog to exit" 60 gone "$pid0"

NFD=$T/nfd start_agent --kube-sa-dir "$SA" --kube-events-queue 3
grep -q "kube events: on, to https://127.0.0.1:$PORT" "$T/agent.log" || fail "events are not on"
api /v1/status | jq -c .kube_events
expect_eq "status: kube_events.enabled" "$(api /v1/status | jq -r .kube_events.enabled)" true

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
unreach() { grep -q "not delivered to https://127.0.0.1:$PORT: unreachable" "$T/agent.log"; }
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

# Nor a server that takes the request and never answers (curl would wait
# out its 15 s): the stop ends the request under way.
echo hang >"$MODE"
NFD=$T/nfd start_agent --kube-sa-dir "$SA" --kube-events-queue 3
register "$cid" "$pid" web-0 "$uid" # the pod's names come with the registration
set_mems "$cg" 0
wait_for "migration 16" 60 migrated "$cid" 16
wait_for "a request the server holds" 60 has '.status == 0'
t0=$(date +%s)
kill "$AGENT"
wait "$AGENT" || fail "numafollowd exited $?"
AGENT=
expect_ge "seconds left to stop (of 10, the hung request would hold it 15)" $((10 - ($(date +%s) - t0))) 0
grep -q "cut short by the stop" "$T/agent.log" || fail "the log does not say the request was cut short"
expect_eq "invalid requests" "$(requests '.errors | length > 0')" 0
say "requests: $(jq -s -c 'group_by(.method, .status) | map({m: .[0].method, s: .[0].status, n: length})' "$REQ")"

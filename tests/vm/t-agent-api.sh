#!/bin/bash
# vm: --cgroup v2
# The agent's HTTP API, with curl as the client: every route, registration and
# its names from annotations, bad JSON, wrong types, dead pids, a cgroup outside
# --cgroup-root, unknown ids, an oversize body, wrong methods, a non-root peer
# and read-only TCP refused on changes, the TCP token. Bad input changes nothing.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-api/ctr1 0)
pid=$(start_hog "$cg" -m 16)
mkdir -p "$T/run" && chmod 0755 "$T" "$T/run"
SOCK=$T/run/nf.sock
start_agent --cgroup-root /nf-api --socket-group nogroup --listen 127.0.0.1:18080
chmod 0666 "$SOCK" # let any user connect: SO_PEERCRED must still refuse changes

# expect STATUS METHOD PATH [CURL ARGS...]: the status, and a JSON error body on >= 400.
expect() {
	local want=$1 method=$2 path=$3 got
	shift 3
	got=$(api_status "$path" -X "$method" "$@")
	[ "$got" = "$want" ] || fail "$method $path: $got, want $want: $(cat "$T/body")"
	if [ "$want" -ge 400 ]; then
		jq -e '.error | type == "string"' "$T/body" >/dev/null || fail "$method $path: no JSON error: $(cat "$T/body")"
	fi
	say "$method $path -> $got $(head -c 150 "$T/body")"
}

expect 200 GET /healthz
expect 200 GET /v1/status
jq -e '.self_check.cgroup_mode == "v2" and .self_check.own_mems_cover_all and .cgroup_root == "/nf-api"' "$T/body" >/dev/null ||
	fail "/v1/status lacks the self-check"
expect 200 GET /v1/containers
expect_eq "containers under --cgroup-root" "$(jq -r '[.containers[].cgroup] | join(" ")' "$T/body")" /nf-api/ctr1
api /v1/containers >"$T/snapshot"

# Bad registrations: 400 and nothing changes.
expect 400 POST /v1/containers -d '{"id": "x", "pid": '
expect 400 POST /v1/containers -d '{"id": "x", "pid": 1} trailing'
expect 400 POST /v1/containers -d '[1, 2]'
expect 400 POST /v1/containers -d '{"pid": 1}'
expect 400 POST /v1/containers -d '{"id": "", "pid": 1}'
expect 400 POST /v1/containers -d '{"id": "x", "pid": "1"}'
expect 400 POST /v1/containers -d '{"id": "x", "pid": -4}'
expect 400 POST /v1/containers -d "{\"id\": \"x\", \"pid\": $pid, \"annotations\": {\"a\": 1}}"
expect 400 POST /v1/containers -d "{\"id\": \"x\", \"pid\": $pid, \"bundle\": 7}"
dead=$(sh -c 'echo $$')
expect 400 POST /v1/containers -d "{\"id\": \"x\", \"pid\": $dead}"
expect 400 POST /v1/containers -d "{\"id\": \"x\", \"pid\": $$}" # outside --cgroup-root
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
expect 413 POST /v1/containers --data-binary @"$T/big"
expect 413 POST /v1/containers -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
api /v1/containers | diff "$T/snapshot" - || fail "bad registrations changed the containers"

# Unknown ids and routes, wrong methods.
expect 404 GET /v1/containers/nope
expect 404 DELETE /v1/containers/nope
expect 404 POST /v1/containers/nope/migrate
expect 404 GET /v1/migrations/999
expect 404 GET /v1/migrations/abc
expect 400 GET '/v1/migrations?limit=0'
expect 400 GET '/v1/migrations?limit=x'
expect 404 GET /v2/anything
expect 405 PUT /v1/containers
expect 405 DELETE /healthz
expect 405 POST /metrics
expect 405 GET /v1/containers/x/migrate
expect 405 POST /v1/migrations
curl -sS -o /dev/null -D "$T/hdr" --unix-socket "$SOCK" -X PUT http://nf/v1/containers
grep -qi '^Allow: GET, POST' "$T/hdr" || fail "405 without an Allow header"

# One id, one container: a registration may not take the id another
# container goes by (its cgroup's name), which it would shadow.
other=$(mkcg nf-api/ctr2 0)
opid=$(start_hog "$other" -m 1)
taken=$(jq -r '.containers[0].id' "$T/snapshot")
expect 400 POST /v1/containers -d "{\"id\": \"$taken\", \"pid\": $opid}"
jq -e --arg id "$taken" '.error == "id '"'"'\($id)'"'"' is the container of cgroup '"'"'/nf-api/ctr1'"'"'"' "$T/body" >/dev/null ||
	fail "the collision is not explained: $(cat "$T/body")"
expect_eq "registered containers after the collision" \
	"$(api /v1/containers | jq '[.containers[] | select(.registered)] | length')" 0
kill "$opid"

# A registration, as the hook sends it: names come from the annotations.
reg=$(jq -n --argjson pid "$pid" '{id: "ctr-1", pid: $pid, bundle: "/run/b", status: "created",
	annotations: {"io.kubernetes.cri.container-name": "web", "io.kubernetes.cri.sandbox-name": "shop-7f",
	"io.kubernetes.cri.sandbox-namespace": "prod", "io.kubernetes.cri.sandbox-uid": "0c8e7d43-1111-2222-3333-444455556666"}}')
expect 201 POST /v1/containers -d "$reg"
expect 200 POST /v1/containers -d "$(jq '.status = "running"' <<<"$reg")"
expect 200 GET /v1/containers/ctr-1
jq -c '{id, name, pod, cgroup, status, registered}' "$T/body"
# filtered lists: by pod uid and by namespace
expect_eq "GET ?pod=the uid" "$(api '/v1/containers?pod=0c8e7d43-1111-2222-3333-444455556666' | jq -c '[.containers[].id]')" '["ctr-1"]'
expect_eq "GET ?namespace=prod" "$(api '/v1/containers?namespace=prod' | jq -c '[.containers[].id]')" '["ctr-1"]'
expect_eq "GET ?namespace=other" "$(api '/v1/containers?namespace=other' | jq -c '[.containers[].id]')" '[]'
expect_eq "GET ?pod=nope" "$(api '/v1/containers?pod=nope' | jq -c '[.containers[].id]')" '[]'

jq -e '.name == "web" and .pod.name == "shop-7f" and .pod.namespace == "prod" and
	.pod.uid == "0c8e7d43-1111-2222-3333-444455556666" and .cgroup == "/nf-api/ctr1" and
	.status == "running" and .pid == '"$pid" "$T/body" >/dev/null || fail "registration not reflected"

# A migration on request: 202 and its id, then its record.
expect 202 POST /v1/containers/ctr-1/migrate
mid=$(jq -r .id "$T/body")
done_() { api "/v1/migrations/$mid" | jq -e '.result == "ok" and .trigger == "api"' >/dev/null; }
wait_for "migration $mid" 20 done_
expect 200 GET "/v1/migrations?container=ctr-1&limit=1"
expect_eq "migrations of ctr-1" "$(jq -r '.migrations[0].id' "$T/body")" "$mid"
# With a body {"to", "trigger"}: a migration to nodes within the mems that
# writes no cpuset.mems (numafollow-nri's re-pin; tests/vm/t-nri.sh).
J=(-H 'Content-Type: application/json')
mems=$(cat "$(cg_root)/nf-api/ctr1/cpuset.mems")
expect 400 POST /v1/containers/ctr-1/migrate "${J[@]}" -d '{"to":"0","trigger":"hook"}'
expect 400 POST /v1/containers/ctr-1/migrate "${J[@]}" -d '{"to":"7"}'
set_mems "$(cg_root)/nf-api/ctr1" 0
expect 400 POST /v1/containers/ctr-1/migrate "${J[@]}" -d '{"to":"1"}' # outside its mems
expect 202 POST /v1/containers/ctr-1/migrate "${J[@]}" -d '{"to":"0","trigger":"nri"}'
mid=$(jq -r .id "$T/body")
nri_done() { api "/v1/migrations/$mid" | jq -e '.result == "ok" and .trigger == "nri" and .to == "0"' >/dev/null; }
wait_for "migration $mid" 20 nri_done
expect_eq "cpuset.mems after it (unwritten)" "$(cat "$(cg_root)/nf-api/ctr1/cpuset.mems")" 0
set_mems "$(cg_root)/nf-api/ctr1" "$mems"

# Who may change things: root, or the socket's group; any user may read.
as() { setpriv --reuid "$1" --regid "$1" --clear-groups "${@:2}"; }
got=$(as 12345 curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X DELETE http://nf/v1/containers/ctr-1)
expect_eq "DELETE by uid 12345" "$got" 403
got=$(as 12345 curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://nf/v1/containers)
expect_eq "GET by uid 12345" "$got" 200
got=$(as 65534 curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://nf/v1/containers -d '{}')
expect_eq "POST by the socket's group (nogroup)" "$got" 400

# TCP without a token: /healthz and /metrics only; the rest names pods,
# namespaces, cgroups and pids (401).
tcp() { curl -sS -o "$T/body" -w '%{http_code}' "$@"; }
expect_eq "TCP GET /healthz" "$(tcp http://127.0.0.1:18080/healthz)" 200
expect_eq "TCP GET /metrics" "$(tcp http://127.0.0.1:18080/metrics)" 200
for path in /v1/containers /v1/containers/ctr-1 /v1/migrations /v1/migrations/1 /v1/status; do
	expect_eq "TCP GET $path without a token" "$(tcp -D "$T/headers" http://127.0.0.1:18080$path)" 401
	grep -qi '^WWW-Authenticate: Bearer' "$T/headers" || fail "401 without WWW-Authenticate"
done
jq -e '.error | test("only /healthz and /metrics")' "$T/body" >/dev/null || fail "401 says: $(cat "$T/body")"
expect_eq "TCP DELETE without a token" "$(tcp -X DELETE http://127.0.0.1:18080/v1/containers/ctr-1)" 401
expect_eq "ctr-1 after the TCP DELETE" "$(api /v1/containers/ctr-1 | jq .registered)" true
rc=0
"$NF" ps --url http://127.0.0.1:18080 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" != 0 ] || fail "numafollow ps --url without a token listed the containers"
say "numafollow ps --url without a token: exit $rc, $(cat "$T/err")"

# One agent per socket: a second one exits 3 and leaves the first serving.
rc=0
"$NFD" --config /dev/null --socket "$SOCK" --state-dir "$T/state2" >"$T/second.log" 2>&1 || rc=$?
expect_eq "exit of a second agent on the same socket" "$rc" 3
grep -q "another numafollowd serves it" "$T/second.log" || fail "second agent: $(cat "$T/second.log")"
# One agent per state dir: two would move the same containers into one history.
rc=0
"$NFD" --config /dev/null --socket "$T/other.sock" --state-dir "$T/state" >"$T/second.log" 2>&1 || rc=$?
expect_eq "exit of a second agent on the same state dir" "$rc" 3
grep -q "another numafollowd uses the state dir" "$T/second.log" || fail "second agent: $(cat "$T/second.log")"
expect 200 GET /healthz

expect 200 DELETE /v1/containers/ctr-1
expect 404 DELETE /v1/containers/ctr-1
api /v1/containers | jq -e '.containers[0].registered == false' >/dev/null || fail "still registered"

# TCP with a token.
kill "$AGENT"; wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
grep -q "stopped" "$T/agent.log" || fail "no clean stop in the log"
echo s3cret-token >"$T/token" && chmod 600 "$T/token"
start_agent --cgroup-root /nf-api --listen 127.0.0.1:18080 --token-file "$T/token"
expect_eq "TCP POST, no token" "$(tcp -X POST http://127.0.0.1:18080/v1/containers -d "$reg")" 401
expect_eq "TCP POST, wrong token" "$(tcp -H 'Authorization: Bearer nope' -X POST http://127.0.0.1:18080/v1/containers -d "$reg")" 401
expect_eq "TCP GET, wrong token" "$(tcp -H 'Authorization: Bearer nope' http://127.0.0.1:18080/v1/containers)" 401
expect_eq "TCP GET, token" "$(tcp -H 'Authorization: Bearer s3cret-token' http://127.0.0.1:18080/v1/containers)" 200
expect_eq "TCP POST, token" "$(tcp -H 'Authorization: Bearer s3cret-token' -X POST http://127.0.0.1:18080/v1/containers -d "$reg")" 201
"$NF" ps --url http://127.0.0.1:18080 --token-file "$T/token" | grep -q ctr-1 ||
	fail "numafollow ps --url --token-file does not list ctr-1"
"$NF" migrate --via-agent --url http://127.0.0.1:18080 --token-file "$T/token" ctr-1 >/dev/null ||
	fail "migrate --via-agent over TCP with the token exited $?"
say "TCP: changes need the token"

# sd_notify (a datagram listener as systemd's) and SIGHUP: live settings change,
# the others are named, a bad config keeps the old one.
kill "$AGENT"; wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(60)
while True:
    m = s.recv(4096).decode(); print(m, flush=True)
    if m == "STOPPING=1": break' "$T/notify.sock" >"$T/notify.out" &
listener=$!
bound() { [ -S "$T/notify.sock" ]; }
wait_for "the notify listener" 60 bound
echo "retries = 3" >"$T/live.conf"
NOTIFY_SOCKET=$T/notify.sock start_agent --config "$T/live.conf"
printf 'retries = 5\nreconcile-interval = 7\nworkers = 3\n' >"$T/live.conf"
kill -HUP "$AGENT"
reloaded() { grep -q "reloaded the config: log level, reconcile interval 7 s, retries 5" "$T/agent.log"; }
wait_for "the reload" 10 reloaded
grep -q "reload: workers changed; it takes a restart" "$T/agent.log" || fail "a restart-only change was not named"
echo "log-level = bogus" >"$T/live.conf"
kill -HUP "$AGENT"
refused() { grep -q "reload: the config has errors (above); keeping the old one" "$T/agent.log"; }
wait_for "the refused reload" 10 refused
api /healthz >/dev/null || fail "the agent died on a bad reload"
kill "$AGENT"; wait "$AGENT" || fail "numafollowd exited $? on SIGTERM"
wait "$listener"
expect_eq "sd_notify messages" "$(paste -sd' ' "$T/notify.out")" \
	"READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1"
AGENT=

echo "log-level = bogus" >"$T/bad.conf"
"$NFD" --config "$T/bad.conf" --socket "$T/x.sock" 2>"$T/err" && fail "a bad config file was accepted"
grep -q "bad.conf:1: log-level 'bogus'" "$T/err" || fail "no line number in the config error: $(cat "$T/err")"
"$NFD" --workers 0 2>"$T/err" && fail "--workers 0 accepted"
cat "$T/err"
"$NFD" --help | grep -q -- "--reconcile-interval" || fail "--help lacks the options"

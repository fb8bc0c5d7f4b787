#!/bin/bash
# The HTTP client (plugin/lib/http.c) bounds what it buffers: an answer past
# 4 MiB fails with a clear error instead of growing to 64 MiB; one of 3 MiB
# is read whole. Driven through the CLI's `status --url`
# against a stand-in agent on loopback TCP (python3's http.server).
set -eu -o pipefail
T=$(mktemp -d)
SRV=
trap '[ -z "$SRV" ] || kill "$SRV" 2>/dev/null; rm -rf "$T"' EXIT
NF=build/numafollow
[ -x "$NF" ] || { echo "FAIL: $NF is not built (make all)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# A status answer padded to SIZE bytes: GET /SIZE/v1/status.
cat >"$T/srv.py" <<'PY'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        size = int(self.path.split("/")[1] or 0)
        body = json.dumps({"version": "stand-in", "pad": "x" * size}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$T/srv.py" >"$T/port" &
SRV=$!
for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(cat "$T/port")
[ -n "$PORT" ] || fail "the stand-in did not start"

# status SIZE: the CLI asks the stand-in, whose answer is SIZE bytes of padding.
status() { "$NF" status --url "http://127.0.0.1:$PORT/$1" --json >"$T/out" 2>"$T/err"; }
status $((3 * 1024 * 1024)) || { cat "$T/err"; fail "a 3 MiB answer was refused"; }
[ "$(jq -r .version "$T/out")" = stand-in ] || fail "the 3 MiB answer was not read whole"
echo "-- a 3 MiB answer is read"
rc=0
status $((5 * 1024 * 1024)) || rc=$?
cat "$T/err"
[ "$rc" = 3 ] || fail "a 5 MiB answer: exit $rc, not 3"
grep -q "larger than 4 MiB" "$T/err" || fail "the error does not say the answer was too large"
echo "-- a 5 MiB answer is refused, and the error says why"

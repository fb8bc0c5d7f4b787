#!/usr/bin/python3
"""Malformed traffic to numafollowd's unix socket (t-agent-abuse.sh).

Usage: abuse.py SOCKET AGENT_PID HOG_PID ID. HOG_PID is a live process in a
watched container registered as ID: the bodies below would register it again
(or name it) if they were taken leniently. Every request is bounded in size, count
and time; after each, the agent must still answer a normal GET /healthz.
Prints one line per case; exits 1 at the first case that breaks the agent or
gets an answer that is not what it should be."""
import json
import os
import socket
import sys
import time

SOCK, PID, HOG, ID = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
failures = []


def conn(timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)  # blocking: waits for room in the listen backlog, as a client would
    s.settimeout(timeout)
    return s


def exchange(data, timeout=20, chunks=None):
    """Sends DATA (or CHUNKS one by one), reads until the agent closes or the
    answer is complete; returns (status or None, headers, body bytes)."""
    s = conn(timeout)
    try:
        for part in chunks or [data]:
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        buf = b""
        while True:
            try:
                got = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not got:
                break
            buf += got
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                hdrs = head.decode("latin-1").split("\r\n")
                length = [h.split(":", 1)[1] for h in hdrs if h.lower().startswith("content-length:")]
                if length and len(body) >= int(length[0]):
                    break
    finally:
        s.close()
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not head:
        return None, [], b""
    line = head.decode("latin-1").split("\r\n")
    try:
        status = int(line[0].split()[1])
    except (IndexError, ValueError):
        status = -1
    return status, line[1:], body


def healthy(name):
    try:
        os.kill(PID, 0)
    except ProcessLookupError:
        fail(name, "the agent died")
    status, _, body = exchange(b"GET /healthz HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n\r\n")
    if status != 200:
        fail(name, "the agent does not answer /healthz afterwards (%r)" % (status,))


def fail(name, why):
    print("FAIL %s: %s" % (name, why), flush=True)
    sys.exit(1)


def case(name, data, want, **kw):
    """WANT: a set of acceptable statuses; None in it means the agent may close
    the connection without an answer (libmicrohttpd does for what it cannot
    parse)."""
    status, hdrs, body = exchange(data, **kw)
    if status not in want:
        fail(name, "status %r, want one of %r: %r" % (status, sorted(want, key=str), body[:200]))
    if status and status >= 400 and body:
        try:
            doc = json.loads(body.decode("utf-8"))  # strict: invalid UTF-8 raises
            assert isinstance(doc.get("error"), str)
        except Exception as e:  # noqa: BLE001 - any defect of the body is the finding
            # libmicrohttpd's own answers to unparsable requests are HTML
            if not body.startswith(b"<html>"):
                fail(name, "error body is not JSON with an error: %r (%s)" % (body[:200], e))
    healthy(name)
    print("ok   %-48s -> %s" % (name, status), flush=True)


def get(path):
    return b"GET " + path + b" HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n\r\n"


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n" + extra +
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


BAD = {400, None}
# Request lines and headers.
case("garbage request line", b"GARBAGE\r\n\r\n", BAD | {505, 501})
case("binary junk", bytes(range(256)) * 4, BAD | {505, 501})
case("no path", b"GET\r\n\r\n", BAD | {505})
case("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: nf\r\n\r\n", BAD | {505})
case("a 100 KB header", b"GET /healthz HTTP/1.1\r\nHost: nf\r\nX-Big: " + b"a" * 100000 +
     b"\r\nConnection: close\r\n\r\n", BAD | {413, 431})
case("2000 headers", b"GET /healthz HTTP/1.1\r\nHost: nf\r\n" +
     b"".join(b"X-%d: v\r\n" % i for i in range(2000)) + b"Connection: close\r\n\r\n",
     BAD | {413, 431})
# Bodies whose length lies.
case("Content-Length 100, 10 bytes sent", b"POST /v1/containers HTTP/1.1\r\nHost: nf\r\n"
     b"Content-Length: 100\r\n\r\n0123456789", BAD | {408}, timeout=25)
case("Content-Length 2, 100 bytes sent", post(b"/v1/containers", b"{}")[:-2] + b"{}" + b"x" * 100,
     {400, None})
REG = b'{"id": "smuggled", "pid": ' + HOG + b'}'
case("two Content-Length headers", b"POST /v1/containers HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n"
     b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (len(REG), len(REG), REG), BAD)
case("Content-Length with chunked", b"POST /v1/containers HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n"
     b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
     % (len(REG) + 9, len(REG), REG), BAD)
case("chunk size zz", b"POST /v1/containers HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", BAD)
case("chunk size 2^48", b"POST /v1/containers HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nffffffffffff\r\n{}\r\n0\r\n\r\n", BAD | {413})
case("a 10 MiB body", post(b"/v1/containers", b"x" * (10 << 20)), {413, None})
# JSON.
case("JSON nested 100000 deep", post(b"/v1/containers", b"[" * 100000), {400, 413})
case("JSON nested 1000 deep", post(b"/v1/containers", b"[" * 1000 + b"]" * 1000), {400})
case("JSON with invalid UTF-8", post(b"/v1/containers", b'{"id": "a\xff\xfe", "pid": ' + HOG + b'}'),
     {400})
case("JSON with a comment", post(b"/v1/containers", b'{"id": "c", /* x */ "pid": ' + HOG + b'}'),
     {400})
case("JSON with single quotes", post(b"/v1/containers", b"{'id': 'c', 'pid': " + HOG + b"}"), {400})
case("JSON with a trailing comma", post(b"/v1/containers", b'{"id": "c", "pid": ' + HOG + b',}'),
     {400})
case("an id with a newline", post(b"/v1/containers", b'{"id": "a\\nb", "pid": ' + HOG + b'}'),
     {400})
case("an id with \\u0000 (was cut short)", post(b"/v1/containers", b'{"id": "' + ID + b'\\u0000x", "pid": ' + HOG + b'}'),
     {400})
# Odd ids and query values.
case("id %2e%2e", get(b"/v1/containers/%2e%2e"), {404})
case("id %2e%2e%2f%2e%2e%2fetc", get(b"/v1/containers/%2e%2e%2f%2e%2e%2fetc"), {404})
case("a registered id, then %00", get(b"/v1/containers/" + ID + b"%00junk"), {404})
case("id %ff", get(b"/v1/containers/%ff%fe"), {404})
case("a 10 KB id", get(b"/v1/containers/" + b"a" * 10000), {404, 414, None})
case("DELETE a 10 KB id", b"DELETE /v1/containers/" + b"b" * 10000 +
     b" HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n\r\n", {404, 414, None})
case("limit=-1", get(b"/v1/migrations?limit=-1"), {400})
case("limit=2^70", get(b"/v1/migrations?limit=1180591620717411303424"), {400})
case("limit=%00", get(b"/v1/migrations?limit=%00"), {400})
case("container=%ff", get(b"/v1/migrations?container=%ff"), {200})
case("HEAD a container", b"HEAD /v1/containers/" + ID + b" HTTP/1.1\r\nHost: nf\r\nConnection: close\r\n\r\n",
     {200})

# Slowloris: hundreds of connections that never finish their request line;
# a normal request must still be served while they are held.
held = []
for i in range(300):
    s = conn()
    s.sendall(b"GET /v1/sta")
    held.append(s)
t0 = time.monotonic()
healthy("300 held connections")
print("ok   %-48s -> /healthz in %.2f s" % ("300 held connections", time.monotonic() - t0), flush=True)
for s in held:
    s.close()

# A burst: 200 connections opened and dropped at once, then normal service.
for i in range(200):
    s = conn()
    s.close()
healthy("a burst of 200 connections")
print("ok   %-48s" % "a burst of 200 connections", flush=True)
print("PASS abuse.py")

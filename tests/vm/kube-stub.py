#!/usr/bin/python3
"""A stand-in for the Kubernetes API server's events.k8s.io/v1 Events, over
HTTPS, for tests/vm/t-kube-events.sh.

  kube-stub.py --port N --cert F --key F --token-file F --log F --mode-file F

It answers POST /apis/events.k8s.io/v1/namespaces/NS/events and PATCH
.../events/NAME as the API server would: the bearer token, the content type
and the body against the API's validation rules for events.k8s.io/v1 (and,
independently, Debian python3-kubernetes' EventsV1Event model). A PATCH may
change only the series (a v1 Event is immutable but for it). Every request
is appended to the log as one JSON line: method, path, status, errors, body.

The mode file, re-read on every request, says how to answer: "ok" (or no
file), "403" (forbidden, as RBAC says), "429:K:S" (429 with Retry-After: S
to the next K requests, then as "ok"), "500:K" (500 to the next K requests,
then as "ok"), "hang" (log the request with status 0, then never answer).
"""
import argparse
import datetime
import http.server
import json
import re
import ssl
import sys
import threading
import time

from kubernetes import client as kclient

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
POST_PATH = re.compile(r"^/apis/events\.k8s\.io/v1/namespaces/([^/]+)/events$")
PATCH_PATH = re.compile(r"^/apis/events\.k8s\.io/v1/namespaces/([^/]+)/events/([^/]+)$")
TOP_KEYS = {"apiVersion", "kind", "metadata", "eventTime", "series", "reportingController",
            "reportingInstance", "action", "reason", "regarding", "related", "note", "type",
            "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp",
            "deprecatedCount"}


def qualified_name(v):
    """Kubernetes' IsQualifiedName: [prefix/]name, prefix a DNS subdomain."""
    parts = v.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2 and not (parts[0] and len(parts[0]) <= 253 and DNS1123_SUB.match(parts[0])):
        return False
    name = parts[-1]
    return 0 < len(name) <= 63 and bool(QNAME.match(name))


def check_event(ev, ns):
    """The API server's ValidateEventCreate for events.k8s.io/v1, as errors."""
    err = []
    if not isinstance(ev, dict):
        return ["the body is not an object"]
    extra = set(ev) - TOP_KEYS
    if extra:
        err.append("unknown fields %s" % sorted(extra))
    if ev.get("apiVersion") != "events.k8s.io/v1" or ev.get("kind") != "Event":
        err.append("apiVersion/kind is not events.k8s.io/v1 Event")
    md = ev.get("metadata") or {}
    name = md.get("name", "")
    if not (0 < len(name) <= 253 and DNS1123_SUB.match(name)):
        err.append("metadata.name %r is not a DNS subdomain" % name)
    if md.get("namespace", ns) != ns:
        err.append("metadata.namespace does not match the path's")
    if not MICRO.match(str(ev.get("eventTime", ""))):
        err.append("eventTime %r is not a MicroTime" % ev.get("eventTime"))
    if ev.get("type") not in ("Normal", "Warning"):
        err.append("type %r is not Normal or Warning" % ev.get("type"))
    for f in ("reason", "action", "reportingInstance", "reportingController"):
        v = ev.get(f)
        if not isinstance(v, str) or not v:
            err.append("%s: Required value" % f)
        elif len(v.encode()) > 128:
            err.append("%s: longer than 128" % f)
    rc = ev.get("reportingController")
    if isinstance(rc, str) and rc and not qualified_name(rc):
        err.append("reportingController %r is not a qualified name" % rc)
    note = ev.get("note", "")
    if not isinstance(note, str) or len(note.encode()) > 1024:
        err.append("note: longer than 1024 bytes (%d)" % len(str(note).encode()))
    reg = ev.get("regarding") or {}
    if reg.get("apiVersion") != "v1" or reg.get("kind") != "Pod" or not reg.get("name"):
        err.append("regarding is not a v1 Pod with a name: %r" % reg)
    if reg.get("namespace") != ns:
        err.append("regarding.namespace %r does not match the event's %r" % (reg.get("namespace"), ns))
    s = ev.get("series")
    if s is not None:
        if not isinstance(s.get("count"), int) or s["count"] < 2:
            err.append("series.count must be >= 2")
        if not MICRO.match(str(s.get("lastObservedTime", ""))):
            err.append("series.lastObservedTime is not a MicroTime")
    return err


class Resp:
    def __init__(self, data):
        self.data = data


def model_check(ev):
    """python3-kubernetes' own reading of the object (required fields, types)."""
    try:
        m = kclient.ApiClient().deserialize(Resp(json.dumps(ev)), "EventsV1Event")
    except Exception as e:  # noqa: the model raises ValueError, TypeError...
        return ["python3-kubernetes EventsV1Event: %s" % e]
    err = []
    if m.event_time is None or m.regarding is None or m.regarding.kind != "Pod":
        err.append("python3-kubernetes EventsV1Event: eventTime or regarding missing")
    known = set(kclient.EventsV1Event.attribute_map.values())
    if set(ev) - known:
        err.append("python3-kubernetes EventsV1Event: unknown %s" % sorted(set(ev) - known))
    return err


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.events = {}
        self.given = {}  # mode -> 429s given in it

    def token(self):
        with open(self.args.token_file) as f:
            return f.read().strip()

    def mode(self):
        try:
            with open(self.args.mode_file) as f:
                return f.read().strip() or "ok"
        except FileNotFoundError:
            return "ok"


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}


def now():
    """When a request arrived: a gap between two is at least what the client
    waited, however late the stub gets to log them."""
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, code, obj, rec, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        rec["status"] = code
        with STATE.lock, open(STATE.args.log, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def do_POST(self):
        self.handle_event("POST")

    def do_PATCH(self):
        self.handle_event("PATCH")

    def do_GET(self):
        rec = {"method": "GET", "path": self.path, "errors": [], "time": now()}
        self.answer(200 if self.path == "/healthz" else 404, {"status": "ok"}, rec)

    def handle_event(self, method):
        arrived = now()
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        rec = {"method": method, "path": self.path, "errors": [], "time": arrived,
               "content_type": self.headers.get("Content-Type")}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
            rec["errors"].append("the body is not JSON")
        rec["body"] = body
        if self.headers.get("Authorization") != "Bearer " + STATE.token():
            return self.answer(401, status_body(401, "Unauthorized", "Unauthorized"), rec)
        mode = STATE.mode()
        if mode == "hang":
            rec["status"] = 0
            with STATE.lock, open(STATE.args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            time.sleep(3600)
            return
        if mode == "403":
            return self.answer(403, status_body(
                403, "Forbidden", 'events.events.k8s.io is forbidden: User '
                '"system:serviceaccount:numafollow:numafollowd" cannot create resource "events"'),
                rec)
        if mode.startswith("429:") or mode.startswith("500:"):
            with STATE.lock:
                given = STATE.given.get(mode, 0)
                STATE.given[mode] = given + 1
            part = mode.split(":")
            if given < int(part[1]) and part[0] == "500":
                return self.answer(500, status_body(500, "InternalError", "etcd is down"), rec)
            if given < int(part[1]):
                return self.answer(429, status_body(429, "TooManyRequests", "slow down"), rec,
                                   [("Retry-After", part[2])])
        if method == "POST":
            self.create(body, rec)
        else:
            self.patch(body, rec)

    def create(self, body, rec):
        m = POST_PATH.match(self.path)
        if not m:
            rec["errors"].append("not an events collection path")
            return self.answer(404, status_body(404, "NotFound", "no such path"), rec)
        ns = m.group(1)
        if rec["content_type"] != "application/json":
            rec["errors"].append("content type %r" % rec["content_type"])
        if body is not None:
            rec["errors"] += check_event(body, ns)
            rec["errors"] += model_check(body)
        if rec["errors"]:
            return self.answer(422, status_body(422, "Invalid", "; ".join(rec["errors"])), rec)
        key = (ns, body["metadata"]["name"])
        with STATE.lock:
            if key in STATE.events:
                rec["errors"].append("already exists")
        if rec["errors"]:
            return self.answer(409, status_body(409, "AlreadyExists", "exists"), rec)
        with STATE.lock:
            STATE.events[key] = body
        self.answer(201, body, rec)

    def patch(self, body, rec):
        m = PATCH_PATH.match(self.path)
        if not m:
            rec["errors"].append("not an event's path")
            return self.answer(404, status_body(404, "NotFound", "no such path"), rec)
        key = (m.group(1), m.group(2))
        with STATE.lock:
            old = STATE.events.get(key)
        if old is None:
            return self.answer(404, status_body(404, "NotFound", "no such event"), rec)
        if rec["content_type"] != "application/merge-patch+json":
            rec["errors"].append("content type %r" % rec["content_type"])
        if not isinstance(body, dict) or set(body) != {"series"}:
            rec["errors"].append("a v1 Event is immutable but for its series: %r" % body)
        else:
            new = dict(old, series=body["series"])
            rec["errors"] += check_event(new, key[0])
            rec["errors"] += model_check(new)
            prev = (old.get("series") or {}).get("count", 1)
            if not rec["errors"] and body["series"]["count"] <= prev:
                rec["errors"].append("series.count %d after %d" % (body["series"]["count"], prev))
        if rec["errors"]:
            return self.answer(422, status_body(422, "Invalid", "; ".join(rec["errors"])), rec)
        with STATE.lock:
            STATE.events[key] = new
        rec["event"] = new
        self.answer(200, new, rec)


def main():
    global STATE
    p = argparse.ArgumentParser()
    for a in ("--port", "--cert", "--key", "--token-file", "--log", "--mode-file"):
        p.add_argument(a, required=True)
    args = p.parse_args()
    STATE = State(args)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(args.port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

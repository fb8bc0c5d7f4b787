"""A stand-in NRI runtime and numafollowd agent for numafollow-nri's host test
(tests/host/t-nri-fake.sh). The runtime speaks NRI 0.6.1's multiplexer and
ttRPC on a unix socket, as containerd 1.7.24 does, and checks what the plugin
sends (frames within 4096 bytes, odd stream ids); the agent answers the
routes the plugin uses over a unix socket. Messages come from the committed
.proto files, compiled by grpc_tools into STUBS (sys.path).

Run with /usr/bin/python3 (Debian's python3-grpc-tools and protobuf)."""
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn, UnixStreamServer

sys.path.insert(0, os.environ["STUBS"])
import api_pb2 as A  # noqa: E402
from ttrpc import request_pb2 as T  # noqa: E402

PLUGIN, RUNTIME = 1, 2
REQ, RSP = 1, 2
SVC = "nri.pkg.api.v1alpha1.Plugin"


class Runtime:
    """One accepted plugin connection: its demultiplexed ttRPC messages."""

    def __init__(self, path):
        if os.path.exists(path):
            os.unlink(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.conn = None
        self.lock = threading.Condition()
        self.inbox = []  # (conn, stream, type, flags, payload) from the plugin
        self.frames_over = 0
        self.stream = 1
        self.closed = False

    def accept(self, timeout):
        self.srv.settimeout(timeout)
        self.conn, _ = self.srv.accept()
        self.closed = False
        self.buf = {PLUGIN: b"", RUNTIME: b""}
        threading.Thread(target=self._reader, args=(self.conn,), daemon=True).start()

    def _read(self, c, n):
        b = b""
        while len(b) < n:
            part = c.recv(n - len(b))
            if not part:
                raise EOFError
            b += part
        return b

    def _reader(self, c):
        try:
            while True:
                cid, n = struct.unpack(">II", self._read(c, 8))
                if n > 4096:
                    self.frames_over += 1
                data = self._read(c, n)
                with self.lock:
                    self.buf[cid] = self.buf.get(cid, b"") + data
                    b = self.buf[cid]
                    while len(b) >= 10:
                        ln, sid, typ, fl = struct.unpack(">IIBB", b[:10])
                        if len(b) < 10 + ln:
                            break
                        self.inbox.append((cid, sid, typ, fl, b[10 : 10 + ln]))
                        b = b[10 + ln :]
                    self.buf[cid] = b
                    self.lock.notify_all()
        except (EOFError, OSError):
            with self.lock:
                self.closed = True
                self.lock.notify_all()

    def send(self, cid, sid, typ, payload, frame=4096):
        msg = struct.pack(">IIBB", len(payload), sid, typ, 0) + payload
        for i in range(0, len(msg), frame):
            part = msg[i : i + frame]
            self.conn.sendall(struct.pack(">II", cid, len(part)) + part)

    def take(self, pred, timeout):
        """The first message PRED accepts, removed; None after TIMEOUT."""
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                for i, m in enumerate(self.inbox):
                    if pred(m):
                        return self.inbox.pop(i)
                left = end - time.monotonic()
                if left <= 0 or (self.closed and not self.inbox):
                    return None
                self.lock.wait(left)

    def plugin_call(self, typ, method, msg, frame=4096):
        """Calls METHOD on the plugin; (seconds, response, payload bytes)."""
        sid = self.stream
        self.stream += 2
        q = T.Request(service=SVC, method=method, payload=msg.SerializeToString(),
                      timeout_nano=2000000000)
        t0 = time.monotonic()
        self.send(PLUGIN, sid, REQ, q.SerializeToString(), frame)
        m = self.take(lambda m: m[0] == PLUGIN and m[1] == sid and m[2] == RSP, 5)
        if m is None:
            return None, None, None
        r = T.Response()
        r.ParseFromString(m[4])
        out = typ()
        out.ParseFromString(r.payload)
        return time.monotonic() - t0, r, out

    def runtime_request(self, method, timeout):
        """The plugin's next call of METHOD on the runtime: (stream, request)."""
        m = self.take(lambda m: m[0] == RUNTIME and m[2] == REQ and self._method(m) == method,
                      timeout)
        if m is None:
            return None, None
        q = T.Request()
        q.ParseFromString(m[4])
        return m[1], q

    def _method(self, m):
        q = T.Request()
        q.ParseFromString(m[4])
        return q.method

    def answer(self, sid, msg):
        self.send(RUNTIME, sid, RSP, T.Response(payload=msg.SerializeToString()).SerializeToString())

    def close(self):
        if self.conn:
            self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()
            self.conn = None


class Agent(ThreadingMixIn, UnixStreamServer):
    """numafollowd's routes that the plugin calls. MOVE_STATE: what a
    migration's record says while the test wants it in flight."""

    daemon_threads = True

    def __init__(self, path):
        if os.path.exists(path):
            os.unlink(path)
        self.log = []
        self.move_result = "ok"
        self.next_id = 7
        self.started = time.monotonic() - 1000  # restart(): uptime starts over
        super().__init__(path, Handler)

    def restart(self):
        self.started = time.monotonic()

    def seen(self, method, prefix):
        return [e for e in self.log if e[0] == method and e[1].startswith(prefix)]


class Handler(BaseHTTPRequestHandler):
    def address_string(self):
        return "agent"

    def log_message(self, *a):
        pass

    def _reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n) or b"null")
        a = self.server
        a.log.append(("POST", self.path, body))
        if self.path == "/v1/containers":
            return self._reply(201, {"id": body["id"]})
        if self.path.endswith("/migrate"):
            rid = a.next_id
            a.next_id += 1
            return self._reply(202, {"id": rid, "result": "queued", "trigger": body.get("trigger")})
        self._reply(404, {"error": "no route"})

    def do_DELETE(self):
        self.server.log.append(("DELETE", self.path, None))
        self._reply(200, {"deleted": self.path})

    def do_GET(self):
        a = self.server
        a.log.append(("GET", self.path, None))
        if self.path == "/v1/status":
            return self._reply(200, {"uptime_s": int(time.monotonic() - a.started)})
        if self.path.startswith("/v1/migrations/"):
            rid = int(self.path.rsplit("/", 1)[1])
            return self._reply(200, {"id": rid, "result": a.move_result,
                                     "moved_bytes": 1 << 20, "kernel_moved_bytes": 0})
        self._reply(404, {"error": "no route"})


def container(cid, pid, mems, state=3):
    c = A.Container(id=cid, pod_sandbox_id="pod1", name="app", state=state, pid=pid)
    c.annotations["io.kubernetes.cri.sandbox-name"] = "web-0"
    c.annotations["io.kubernetes.cri.sandbox-namespace"] = "shop"
    c.linux.resources.cpu.mems = mems
    c.linux.cgroups_path = "/pods/" + cid  # fake-test.py lays out its memory.* files
    c.linux.resources.memory.limit.value = 512 << 20
    c.linux.resources.memory.swap.value = 512 << 20
    return c


POD = A.PodSandbox(id="pod1", name="web-0", uid="1234-5678", namespace="shop")

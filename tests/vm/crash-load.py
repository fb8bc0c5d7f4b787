#!/usr/bin/python3
"""Work for numafollowd while t-agent-crash.sh kills and restarts it.

Usage: crash-load.py SOCKET STOPFILE IDS CGROUP_DIR:PID...
Until STOPFILE exists: one thread flips each container's cpuset.mems between 0
and 1 (each change is a migration for the agent); two threads register the
containers (as crash-1, crash-2...) and ask for their migration over the
agent's unix socket. Every id a 202 hands out is appended to IDS as "AGENT_PID
ID": the pid of the agent that answered (SO_PEERCRED), which tells the
agent's runs apart. A refused or cut connection (the agent was killed) is
tried again 20 ms later. Prints what it did at the end; exits 1 when an
answer was neither a refusal nor what the API promises."""
import os
import random
import socket
import struct
import sys
import threading
import time

SOCK, STOP, IDS = sys.argv[1], sys.argv[2], sys.argv[3]
CONTAINERS = [(c.split(":")[0], int(c.split(":")[1])) for c in sys.argv[4:]]
lock = threading.Lock()
counts = {"flips": 0, "registered": 0, "202": 0, "404": 0, "cut": 0}
errors = []
ids = open(IDS, "a", buffering=1)


def count(what):
    with lock:
        counts[what] += 1


def request(method, path, body=b""):
    """(agent pid, status, body), or None when the agent is not there or went
    away before its answer was complete."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(SOCK)
        pid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
        s.sendall(b"%s %s HTTP/1.1\r\nHost: nf\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                  % (method, path, len(body), body))
        buf = b""
        while True:
            got = s.recv(65536)
            if not got:
                break
            buf += got
    except OSError:
        return None
    finally:
        s.close()
    head, sep, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = [h.split(":", 1)[1] for h in lines[1:] if h.lower().startswith("content-length:")]
    if not sep or not length or len(rest) < int(length[0]):
        return None  # cut short by the kill
    return pid, int(lines[0].split()[1]), rest[: int(length[0])]


def api_worker():
    while not os.path.exists(STOP):
        n = random.randrange(len(CONTAINERS))
        name = b"crash-%d" % (n + 1)
        if random.random() < 0.3:
            body = b'{"id": "%s", "pid": %d, "status": "running"}' % (name, CONTAINERS[n][1])
            got = request(b"POST", b"/v1/containers", body)
            ok = (200, 201)
        else:
            got = request(b"POST", b"/v1/containers/%s/migrate" % name)
            ok = (202, 404)  # 404: not registered with this run of the agent yet
        if got is None:
            count("cut")
            time.sleep(0.02)
            continue
        pid, status, body = got
        if status not in ok:
            errors.append("%d %s" % (status, body[:200]))
        elif status == 202:
            rec = body.decode()
            rid = int(rec.split('"id":', 1)[1].split(",", 1)[0])
            with lock:
                ids.write("%d %d\n" % (pid, rid))
            count("202")
        else:
            count("registered" if status in (200, 201) else "404")
        time.sleep(0.01)  # room for the agent and the test on an emulated CPU


def flipper():
    while not os.path.exists(STOP):
        for cg, _ in CONTAINERS:
            path = cg + "/cpuset.mems"
            with open(path) as f:
                now = f.read().strip()
            with open(path, "w") as f:  # the kernel migrates within the write
                f.write("1" if now == "0" else "0")
            count("flips")


def guarded(fn):
    def run():
        try:
            fn()
        except Exception as e:  # a thread that dies would only thin the load
            errors.append("%s: %r" % (fn.__name__, e))
    return run


threads = [threading.Thread(target=guarded(t)) for t in (flipper, api_worker, api_worker)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("load: " + ", ".join("%s %d" % kv for kv in counts.items()))
for e in errors[:10]:
    print("unexpected answer: " + e)
sys.exit(1 if errors else 0)

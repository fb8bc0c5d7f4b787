"""A second NRI plugin for tests/vm/t-nri.sh, as a resource policy would be:
registered at index 10 (before numafollow's 90), it sets the mems of every
container update it sees to MEMS, without ignore_failure. Two plugins that
set mems conflict ("both tried to set memory pinning"); numafollow's answer
carries ignore_failure, so its own claim is dropped and the CRI call goes on.

  mems-plugin.py NRI_SOCKET MEMS        (NRI's api_pb2 from STUBS)"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.environ["STUBS"])
import api_pb2 as A  # noqa: E402
from ttrpc import request_pb2 as T  # noqa: E402

path, mems = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)


def send(conn, sid, typ, payload):
    msg = struct.pack(">IIBB", len(payload), sid, typ, 0) + payload
    for i in range(0, len(msg), 4096):
        part = msg[i:i + 4096]
        s.sendall(struct.pack(">II", conn, len(part)) + part)


def read(n):
    b = b""
    while len(b) < n:
        p = s.recv(n - len(b))
        if not p:
            sys.exit(0)
        b += p
    return b


reg = A.RegisterPluginRequest(plugin_name="setmems", plugin_idx="10")
send(2, 1, 1, T.Request(service="nri.pkg.api.v1alpha1.Runtime", method="RegisterPlugin",
                         payload=reg.SerializeToString()).SerializeToString())
buf = {1: b"", 2: b""}
while True:
    cid, n = struct.unpack(">II", read(8))
    buf[cid] = buf.get(cid, b"") + read(n)
    while len(buf[cid]) >= 10:
        ln, sid, typ, _ = struct.unpack(">IIBB", buf[cid][:10])
        if len(buf[cid]) < 10 + ln:
            break
        data, buf[cid] = buf[cid][10:10 + ln], buf[cid][10 + ln:]
        if cid != 1 or typ != 1:
            continue
        q = T.Request()
        q.ParseFromString(data)
        if q.method == "Configure":
            out = A.ConfigureResponse(events=1 << 7)  # UPDATE_CONTAINER
        elif q.method == "UpdateContainer":
            u = A.UpdateContainerRequest()
            u.ParseFromString(q.payload)
            out = A.UpdateContainerResponse()
            up = out.update.add()
            up.container_id = u.container.id
            up.linux.resources.cpu.mems = mems
            print(f"setmems: {u.container.id[:12]} -> {mems}", flush=True)
        elif q.method == "Synchronize":
            out = A.SynchronizeResponse()
        else:
            out = A.Empty()
        send(1, sid, 2, T.Response(payload=out.SerializeToString()).SerializeToString())

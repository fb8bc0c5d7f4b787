"""numafollow-nri against a stand-in runtime and agent (fake.py): the NRI
protocol as containerd 1.7.24 drives it, the answers' content, the re-pin's
steps and their order, a plugin killed mid-move, a runtime that goes away,
and a pre-launched plugin. Prints "ok ..." per check; exits 1 at the first
failure. Usage: fake-test.py PLUGIN WORKDIR"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import fake
from fake import A, POD

plugin_bin, work = sys.argv[1], sys.argv[2]
nri_sock, agent_sock, state = work + "/nri.sock", work + "/agent.sock", work + "/state"
EVENTS = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10)  # 6, 7, 8, 9, 11


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    print("ok  ", what, flush=True)


agent = fake.Agent(agent_sock)
threading.Thread(target=agent.serve_forever, daemon=True).start()
rt = fake.Runtime(nri_sock)
sleeper = subprocess.Popen(["sleep", "600"])  # a live pid for the registrations


def cgroup(cid, high="max"):
    """The container's memory.min/low/high under the plugin's --cgroup-root."""
    d = f"{work}/cgroups/pods/{cid}"
    os.makedirs(d, exist_ok=True)
    for f, v in (("memory.min", "0"), ("memory.low", "0"), ("memory.high", high)):
        open(f"{d}/{f}", "w").write(v + "\n")


for cid in ("c1", "c2", "c3", "c4", "c5"):
    cgroup(cid)
cgroup("c6", high="943718400")


def start_plugin(extra=(), **kw):
    return subprocess.Popen([plugin_bin, "--nri-socket", nri_sock, "--socket", agent_sock,
                             "--state-dir", state, "--cgroup-root", work + "/cgroups",
                             "--agent-check", "1",
                             "--log-level", "debug", *extra],
                            stderr=open(work + "/plugin.log", "a"), **kw)


def handshake(what, sync=()):
    """Accepts the plugin, takes its registration, configures and synchronizes it."""
    rt.accept(10)
    t0 = time.monotonic()
    sid, q = rt.runtime_request("RegisterPlugin", 5)
    check(q is not None, f"{what}: RegisterPlugin within 5 s of the connection")
    reg = A.RegisterPluginRequest()
    reg.ParseFromString(q.payload)
    check((reg.plugin_name, reg.plugin_idx) == ("numafollow", "90"),
          f"{what}: registers as 90-numafollow ({time.monotonic() - t0:.2f} s)")
    rt.answer(sid, A.Empty())
    dt, r, cfg = rt.plugin_call(A.ConfigureResponse, "Configure",
                                A.ConfigureRequest(runtime_name="fake", runtime_version="1.7.24"))
    check(cfg is not None and r.status.code == 0 and cfg.events == EVENTS,
          f"{what}: Configure subscribes to events 6, 7, 8, 9, 11 (mask {cfg and cfg.events:#x})")
    dt, r, _ = rt.plugin_call(A.SynchronizeResponse, "Synchronize",
                              A.SynchronizeRequest(pods=[POD], containers=list(sync)))
    check(r is not None and r.status.code == 0 and dt < 2, f"{what}: Synchronize answered")


def wait_for(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def update(c, mems, frame=4096):
    q = A.UpdateContainerRequest(pod=POD, container=c,
                                 linux_resources=A.LinuxResources(cpu=A.LinuxCPU(mems=mems)))
    q.linux_resources.memory.limit.value = 512 << 20
    return rt.plugin_call(A.UpdateContainerResponse, "UpdateContainer", q, frame)


def post_update(c, spec_mems):
    c2 = A.Container()
    c2.CopyFrom(c)
    c2.linux.resources.cpu.mems = spec_mems
    _, r, _ = rt.plugin_call(A.Empty, "StateChange",
                             A.StateChangeEvent(event=9, pod=POD, container=c2))
    return r


# ---- registration, configuration, registrations with the agent ----
plugin = start_plugin(["--repin", "on"])
pid = sleeper.pid
c1 = fake.container("c1", pid, "0")
handshake("start", [c1] + [fake.container(f"x{i}", 0, "0", 1) for i in range(60)])
regs = wait_for(lambda: agent.seen("POST", "/v1/containers"), 5)
check(regs and regs[0][2]["id"] == "c1" and regs[0][2]["pid"] == pid and
      regs[0][2]["status"] == "running" and
      regs[0][2]["annotations"]["io.kubernetes.cri.sandbox-name"] == "web-0" and
      regs[0][2]["annotations"]["io.kubernetes.cri.sandbox-uid"] == "1234-5678" and
      len(regs) == 1, "Synchronize registered the one container with a pid, with its pod's names")
rt.plugin_call(A.Empty, "StateChange", A.StateChangeEvent(event=6, pod=POD, container=c1))
check(wait_for(lambda: len(agent.seen("POST", "/v1/containers")) == 2, 5) and
      agent.seen("POST", "/v1/containers")[1][2]["status"] == "created",
      "StartContainer (event 6) registers with status created, as the hook's createRuntime")

n = len(agent.seen("POST", "/v1/containers"))
check(wait_for(lambda: agent.seen("GET", "/v1/status"), 10), "the plugin takes the agent's uptime")
agent.restart()
check(wait_for(lambda: len(agent.seen("POST", "/v1/containers")) > n, 10) and
      agent.seen("POST", "/v1/containers")[-1][2]["id"] == "c1",
      "an agent that restarted (its uptime went back) gets the registrations again")

# ---- the re-pin ----
dt, r, rsp = update(c1, "1")
check(r is not None and r.status.code == 0 and dt < 2, f"UpdateContainer answered in {dt:.3f} s")
u = rsp.update
check(len(u) == 1 and u[0].container_id == "c1" and u[0].linux.resources.cpu.mems == "0-1",
      "the answer widens the mems to old and new (0-1)")
check(u[0].ignore_failure, "with ignore_failure: a policy's mems before it win, the call goes on")
res = u[0].linux.resources
check(not res.HasField("memory") and not res.cpu.HasField("shares") and not res.cpu.cpus and
      not res.unified and not res.hugepage_limits,
      "the answer sets the mems and nothing else")
check(os.path.exists(state + "/repin-c1.json"), "a state file before the move")
check(rt.runtime_request("UpdateContainers", 0.5)[1] is None,
      "no UpdateContainers before the post-update")
post_update(c1, "0-1")
mv = wait_for(lambda: agent.seen("POST", "/v1/containers/c1/migrate"), 5)
check(mv and mv[0][2] == {"to": "1", "trigger": "nri"},
      "after the post-update, the agent is asked to move to 1 (trigger nri)")
sid, q = rt.runtime_request("UpdateContainers", 10)
check(q is not None, "then UpdateContainers narrows")
uq = A.UpdateContainersRequest()
uq.ParseFromString(q.payload)
check(len(uq.update) == 1 and uq.update[0].container_id == "c1" and
      uq.update[0].linux.resources.cpu.mems == "1" and not uq.update[0].ignore_failure and
      not uq.update[0].linux.resources.HasField("memory"),
      "... to mems 1 and nothing else")
rt.answer(sid, A.UpdateContainersResponse())
line = wait_for(lambda: os.path.exists(state + "/repins.journal") and
                open(state + "/repins.journal").read().strip(), 5)
j = json.loads(line.splitlines()[-1]) if line else {}
check(j.get("result") == "ok" and j.get("migration") == 7 and
      all(k in j for k in ("widen_ms", "move_ms", "narrow_ms")) and j.get("trigger") == "nri",
      f"the journal records the re-pin and its phases: {line and line.splitlines()[-1]}")
check(wait_for(lambda: not os.path.exists(state + "/repin-c1.json"), 5),
      "the state file goes once narrowed")

# ---- updates left to the runtime ----
c_swap = fake.container("c3", pid, "0")
c_swap.linux.resources.memory.swap.value = 1 << 30
_, r, rsp = update(c_swap, "1")
check(r.status.code == 0 and len(rsp.update) == 0,
      "a container with its own swap limit is not adjusted (NRI 0.6.1 would reset it)")
_, r, rsp = update(c1, "0-1")
check(r.status.code == 0 and len(rsp.update) == 0, "a widening is not adjusted")
_, r, rsp = update(fake.container("c6", pid, "0"), "1")
check(r.status.code == 0 and len(rsp.update) == 0,
      "a container whose cgroup has memory.high set (MemoryQoS) is not adjusted")
_, r, rsp = update(fake.container("c7", pid, "0"), "1")
check(r.status.code == 0 and len(rsp.update) == 0,
      "a container whose cgroup cannot be read is not adjusted")
_, r, rsp = update(fake.container("c4", pid, "0", state=1), "1")
check(r.status.code == 0 and len(rsp.update) == 0, "a container not running is not adjusted")
big = fake.container("c5", pid, "0")
for i in range(300):
    big.annotations[f"example.com/key-{i}"] = "v" * 20
_, r, rsp = update(big, "1", frame=1000)
check(r.status.code == 0 and len(rsp.update) == 1,
      "a request over 4096 bytes, in frames of 1000, is read whole")
post_update(big, "1")  # someone else's mems: the re-pin ends
check(wait_for(lambda: not os.path.exists(state + "/repin-c5.json"), 5),
      "a post-update with other mems ends the re-pin, state file and all")

# ---- killed mid-move ----
agent.move_result = "running"
c2 = fake.container("c2", pid, "0")
update(c2, "1")
post_update(c2, "0-1")
check(wait_for(lambda: agent.seen("POST", "/v1/containers/c2/migrate"), 5),
      "a second re-pin's move starts")
plugin.kill()
plugin.wait()
check(os.path.exists(state + "/repin-c2.json"), "killed mid-move: its state file stays")
rt.close()
agent.move_result = "ok"
plugin = start_plugin(["--repin", "on"])
c2_widened = fake.container("c2", pid, "0-1")
handshake("restart", [c2_widened])
check(wait_for(lambda: len(agent.seen("POST", "/v1/containers/c2/migrate")) == 2, 10),
      "on restart, the widened container is found and moved again")
sid, q = rt.runtime_request("UpdateContainers", 10)
uq = A.UpdateContainersRequest()
if q:
    uq.ParseFromString(q.payload)
check(q is not None and uq.update[0].container_id == "c2" and
      uq.update[0].linux.resources.cpu.mems == "1", "... and narrowed")
rt.answer(sid, A.UpdateContainersResponse())
check(wait_for(lambda: not os.path.exists(state + "/repin-c2.json"), 5),
      "... and its state file goes")

# ---- the runtime goes away ----
rt.close()
t0 = time.monotonic()
handshake("reconnect")
check(plugin.poll() is None, f"the plugin reconnected ({time.monotonic() - t0:.1f} s) and lives")
# a close while the plugin writes: it must not die of SIGPIPE
for i in range(20):
    rt.send(fake.PLUGIN, 1001 + 2 * i, fake.REQ, fake.T.Request(
        service=fake.SVC, method="StateChange",
        payload=A.StateChangeEvent(event=7, pod=POD, container=c1).SerializeToString())
        .SerializeToString())
rt.close()
handshake("after a close mid-write")
check(plugin.poll() is None, "no SIGPIPE death")
check(rt.frames_over == 0, "no frame from the plugin over 4096 bytes")

# ---- pre-launched: the socket on fd 3 ----
plugin.send_signal(signal.SIGTERM)
check(plugin.wait(10) == 0, "SIGTERM: exit 0")
a, b = socket.socketpair()
env = dict(os.environ, NRI_PLUGIN_SOCKET="3", NRI_PLUGIN_NAME="numafollow", NRI_PLUGIN_IDX="91")
fd = b.fileno()  # moved to 3 in the child, as the runtime's ExtraFiles put it
pre = subprocess.Popen(["sh", "-c", f'exec 3<&{fd} {fd}<&-; exec "$0" "$@"', plugin_bin,
                        "--socket", agent_sock, "--state-dir", state],
                       pass_fds=(fd,), env=env, stderr=open(work + "/plugin.log", "a"))
b.close()
rt.conn, rt.closed, rt.buf = a, False, {1: b"", 2: b""}
threading.Thread(target=rt._reader, args=(a,), daemon=True).start()
sid, q = rt.runtime_request("RegisterPlugin", 5)
reg = A.RegisterPluginRequest()
if q:
    reg.ParseFromString(q.payload)
check(q is not None and reg.plugin_idx == "91", "pre-launched: registers over fd 3 as 91")
rt.answer(sid, A.Empty())
_, r, cfg = rt.plugin_call(A.ConfigureResponse, "Configure", A.ConfigureRequest())
check(cfg is not None and cfg.events == EVENTS, "pre-launched: configured")
rt.close()
check(pre.wait(10) == 0, "pre-launched: exits 0 when the runtime closes its socket")
sleeper.kill()
print("PASS")

"""kubelet's CRI calls for tests/vm/t-nri.sh, with Debian's python3-grpcio and
stubs that grpc_tools made from cri-api's api.proto (CRI_STUBS on sys.path).

  cri.py SOCK pod NAME NAMESPACE UID CGROUP_PARENT        -> the sandbox's id
  cri.py SOCK create POD_ID NAME IMAGE HOSTDIR:CTRDIR [RES...] -- ARGS... -> id
  cri.py SOCK start ID
  cri.py SOCK update ID [RES...]                          -> seconds it took
  cri.py SOCK remove ID

RES: mems=NODES cpus=CPUS limit=BYTES swap=BYTES unified=KEY=VALUE
annotation=KEY=VALUE (create only). Run with /usr/bin/python3."""
import os
import sys
import time

sys.path.insert(0, os.environ["CRI_STUBS"])
import grpc  # noqa: E402
import api_pb2 as C  # noqa: E402
import api_pb2_grpc as G  # noqa: E402

sock, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
rt = G.RuntimeServiceStub(grpc.insecure_channel("unix://" + sock))
TIMEOUT = 300  # a loaded emulator; the test bounds what it measures itself


def resources(items, annotations=None):
    r = C.LinuxContainerResources()
    for it in items:
        k, v = it.split("=", 1)
        if k == "mems":
            r.cpuset_mems = v
        elif k == "cpus":
            r.cpuset_cpus = v
        elif k == "limit":
            r.memory_limit_in_bytes = int(v)
        elif k == "swap":
            r.memory_swap_limit_in_bytes = int(v)
        elif k == "unified":
            uk, uv = v.split("=", 1)
            r.unified[uk] = uv
        elif k == "annotation" and annotations is not None:
            ak, av = v.split("=", 1)
            annotations[ak] = av
        else:
            sys.exit(f"cri.py: unknown resource '{it}'")
    return r


def pod_config(name, ns, uid, parent):
    return C.PodSandboxConfig(
        metadata=C.PodSandboxMetadata(name=name, namespace=ns, uid=uid, attempt=0),
        log_directory="",
        linux=C.LinuxPodSandboxConfig(
            cgroup_parent=parent,
            security_context=C.LinuxSandboxSecurityContext(
                namespace_options=C.NamespaceOption(network=C.NODE))))


if cmd == "pod":
    name, ns, uid, parent = args
    r = rt.RunPodSandbox(C.RunPodSandboxRequest(config=pod_config(name, ns, uid, parent)),
                         timeout=TIMEOUT)
    print(r.pod_sandbox_id)
elif cmd == "create":
    pod_id, name, image, mount = args[:4]
    sep = args.index("--")
    ann = {}
    res = resources(args[4:sep], ann)
    st = rt.PodSandboxStatus(C.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=TIMEOUT)
    md = st.status.metadata
    host, ctr = mount.split(":", 1)
    cfg = C.ContainerConfig(
        metadata=C.ContainerMetadata(name=name, attempt=0), image=C.ImageSpec(image=image),
        command=args[sep + 1:], annotations=ann,
        mounts=[C.Mount(container_path=ctr, host_path=host)],
        linux=C.LinuxContainerConfig(resources=res))
    r = rt.CreateContainer(C.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=cfg,
        sandbox_config=pod_config(md.name, md.namespace, md.uid, os.environ.get("CGROUP_PARENT", ""))),
        timeout=TIMEOUT)
    print(r.container_id)
elif cmd == "start":
    rt.StartContainer(C.StartContainerRequest(container_id=args[0]), timeout=TIMEOUT)
elif cmd == "update":
    t0 = time.monotonic()
    rt.UpdateContainerResources(C.UpdateContainerResourcesRequest(
        container_id=args[0], linux=resources(args[1:])), timeout=TIMEOUT)
    print(f"{time.monotonic() - t0:.3f}")
elif cmd == "remove":
    rt.StopContainer(C.StopContainerRequest(container_id=args[0], timeout=1), timeout=TIMEOUT)
    rt.RemoveContainer(C.RemoveContainerRequest(container_id=args[0]), timeout=TIMEOUT)
else:
    sys.exit(f"cri.py: unknown command '{cmd}'")

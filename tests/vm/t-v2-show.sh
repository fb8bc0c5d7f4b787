#!/bin/bash
# vm: --cgroup v2
# cgroup v2: the kernel migrates on the cpuset.mems write; numafollow show then
# reports the memory on the new node (from memory.numa_stat), and migrate
# verifies that nothing is left to do.
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-v2 0)
pid=$(start_hog "$cg" -m 128)
"$NF" show --json nf-v2 >"$T/before.json"
cat "$T/before.json"
expect_eq source "$(jq -r .source "$T/before.json")" memory.numa_stat
expect_eq hierarchy "$(jq -r .hierarchy "$T/before.json")" v2
expect_ge "node 0 MiB before" "$(($(jq -r '.memory_anon["0"] // 0' "$T/before.json") / MiB))" 127

set_mems "$cg" 1 # the kernel migrates here, in this write
expect_on "$pid" 1 "after the v2 write"

"$NF" show --json nf-v2 >"$T/after.json"
cat "$T/after.json"
expect_eq mems "$(jq -r .mems "$T/after.json")" 1
expect_eq mems_effective "$(jq -r .mems_effective "$T/after.json")" 1
expect_eq tasks "$(jq -r .tasks "$T/after.json")" 1
expect_ge "node 1 MiB after" "$(($(jq -r '.memory_anon["1"] // 0' "$T/after.json") / MiB))" 127
expect_eq "node 0 anon MiB after" "$(($(jq -r '.memory_anon["0"] // 0' "$T/after.json") / MiB))" 0

"$NF" show nf-v2
"$NF" migrate --json nf-v2 >"$T/m.json" || fail "migrate after the kernel's move exited $?"
expect_eq "residual after the kernel's move" "$(jq -r .residual_bytes "$T/m.json")" 0

# A kubelet-like layout (systemd driver, burstable): show names the container and the pod.
uid=8d1b3e0a-5b1c-4a43-9d0e-2f4a1c9b7e21
cid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
k=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice/cri-containerd-$cid.scope
mkcg "$k" 0 >/dev/null
"$NF" show --json "/$k" >"$T/k.json"
jq -c .container "$T/k.json"
expect_eq "container id" "$(jq -r .container.id "$T/k.json")" "$cid"
expect_eq "container runtime" "$(jq -r .container.runtime "$T/k.json")" containerd
expect_eq "pod uid" "$(jq -r .container.pod_uid "$T/k.json")" "$uid"
"$NF" show "/$k"

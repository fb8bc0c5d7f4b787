#!/bin/bash
# vm: --cgroup v1
# The agent's image (make image: build/numafollowd-image.tar) run by podman as
# the DaemonSet runs it: the host's PID namespace and cgroup tree (read-only),
# the socket directory and the state directory from the host, only SYS_NICE
# and SYS_PTRACE, a read-only root, not privileged, no seccomp filter (podman's
# default profile answers migrate_pages and move_pages with EPERM). On cgroup v1 without
# memory_migrate the kernel moves nothing, so what moves is the agent's work
# from inside the container: a cgroup's memory follows its cpuset.mems; the
# probe command answers; the host's OCI hook, run by podman for a workload,
# registers it through the shared socket and its memory follows too; a staged
# move works from the container (v1's nested mounts stay writable under :ro).
. tests/vm/lib.sh
need_nodes 2
command -v podman >/dev/null || skip "podman is not installed"
. tests/vm/hook-lib.sh
archive=$B/numafollowd-image.tar
[ -s "$archive" ] || fail "$archive is missing: make image"
image=ghcr.io/numafollow/numafollowd:0.2.0

# (a podman that hangs fails its step, with the step's name, not the VM's limit)
pm() {
	timeout -k 5 300 podman --root "$T/storage" --runroot "$T/runroot" --storage-driver vfs \
		--cgroup-manager cgroupfs --events-backend none "$@"
}
trap 'pm rm -f -a >/dev/null 2>&1; hook_cleanup' EXIT
say "podman load and run of the agent's image"
pm load -q -i "$archive" >/dev/null || fail "podman load $archive: exit $?"
mkdir -p "$T/run" "$T/state"
SOCK=$T/run/numafollow.sock
pm run -d --name numafollowd --pid host --cgroupns host --network none \
	--cap-drop all --cap-add SYS_NICE --cap-add SYS_PTRACE --read-only \
	--security-opt no-new-privileges --security-opt seccomp=unconfined \
	-v /sys/fs/cgroup:/sys/fs/cgroup:ro -v "$T/run:/run/numafollow" \
	-v "$T/state:/var/lib/numafollow" \
	"$image" --socket=/run/numafollow/numafollow.sock --state-dir=/var/lib/numafollow \
	>/dev/null || fail "podman run $image: exit $?"
pm logs -f numafollowd >"$T/agent.log" 2>&1 & # where wait_for shows it
up() { api /healthz >/dev/null 2>&1; }
wait_for "the agent in its container" 60 up
say "$(pm logs numafollowd 2>&1 | grep -E 'self-check|ready' | head -n 2)"
expect_eq "privileged" "$(pm inspect --format '{{.HostConfig.Privileged}}' numafollowd)" false
# The DaemonSet's probe command, from the image, through the shared socket
# directory (podman exec's crun does not find a file in a --pid host container).
pm run --rm --network none -v "$T/run:/run/numafollow" --entrypoint /usr/bin/numafollow "$image" \
	status --socket /run/numafollow/numafollow.sock >"$T/status" ||
	fail "the probe (numafollow status from the image) failed: $(cat "$T/status")"
say "probe: $(head -n 1 "$T/status")"

say "a cgroup's memory follows its mems, moved from inside the container"
cid=1111222233334444555566667777888899990000aaaabbbbccccddddeeeeffff
cg=$(mkcg "docker/$cid" 0)
expect_eq memory_migrate "$(cat "$cg/cpuset.memory_migrate")" 0
pid=$(start_hog "$cg" -m 128)
listed() { [ "$(api_status "/v1/containers/$cid")" = 200 ]; }
wait_for "the agent to see the container" 30 listed
set_mems "$cg" 1
rec_ok() {
	api "/v1/containers/$cid" | jq -c .last_migration >"$T/last"
	jq -e '.result == "ok" and .to == "1"' "$T/last" >/dev/null || { jq -c '.errors' "$T/last" >>"$T/agent.log"; false; }
}
wait_for "the migration record" 60 rec_ok
expect_on "$pid" 1 "after the agent's migration"
expect_ge "moved by the agent in its container (MiB)" \
	"$(($(api "/v1/containers/$cid" | jq .last_migration.moved_bytes) / MiB))" 127

# podman's ":ro" makes the bind of /sys/fs/cgroup read-only, not the v1
# hierarchies mounted below it (a hostPath readOnly volume is the same
# without recursiveReadOnly): the agent can write cpuset.mems here.
say "a staged move from inside the container (the nested v1 mount stays writable)"
expect_eq "POST move" "$(api_status "/v1/containers/$cid/move" -X POST -d '{"to": "0"}')" 202
moved_back() { api "/v1/containers/$cid" | jq -e '.last_migration | .result == "ok" and .trigger == "move"' >/dev/null; }
wait_for "the staged move's record" 60 moved_back
expect_eq "cpuset.mems after the staged move" "$(cat "$cg/cpuset.mems")" 0
expect_on "$pid" 0 "after the staged move"

say "the host's hook registers a podman workload with the agent in its container"
mkdir -p "$T/rootfs/bin" "$T/hooks" "$T/out"
cp /bin/busybox "$T/rootfs/bin/busybox"
cp "$HOG_STATIC" "$T/rootfs/bin/memhog"
tar -C "$T/rootfs" -c . | pm import - localhost/nfbox >/dev/null
# deploy/'s hooks.d file, with the emulator's budget and timeout (hook-lib.sh's bundle())
jq --arg hook "$HOOK" --arg sock "$SOCK" \
	'.hook.path = $hook | .hook.args += ["--socket", $sock, "--budget-ms", "15000"]
	| .hook.timeout = 30' deploy/oci/50-numafollow.json \
	>"$T/hooks/50-numafollow.json"
wid=$(pm --hooks-dir "$T/hooks" run -d --network none --cpuset-mems 0 -v "$T/out:/out" \
	localhost/nfbox /bin/memhog -m 64 -r /out/ready) || fail "podman run of the workload failed"
wait_for "the workload's memhog" 60 test -e "$T/out/ready"
wpid=$(pm inspect --format '{{.State.Pid}}' "$wid")
api "/v1/containers/$wid" | jq -e '.registered and .runtime == "podman"' >/dev/null ||
	fail "the workload is not registered: $(api "/v1/containers/$wid")"
wcg=$(cg_root)$(api "/v1/containers/$wid" | jq -r .cgroup)
set_mems "$wcg" 1
wrec() { api "/v1/containers/$wid" | jq -e '.last_migration.result == "ok" and .last_migration.to == "1"' >/dev/null; }
wait_for "the workload's migration record" 60 wrec
expect_on "$wpid" 1 "the workload, after its mems changed"
pm rm -f "$wid" >/dev/null
pm rm -f numafollowd >/dev/null
echo PASS

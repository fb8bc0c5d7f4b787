#!/bin/bash
# vm: --cgroup v2
# podman with --hooks-dir pointing at the shipped hooks.d file (the hook's
# path and socket changed, and the emulator's budget and timeout): a container started with `podman run` is
# registered with the agent under podman's id, with its annotation-derived
# name; `podman rm` runs the poststop stage. vfs storage, no network, an
# image imported from a busybox tarball: nothing is fetched.
. tests/vm/lib.sh
need_nodes 2
command -v podman >/dev/null || skip "podman is not installed"
. tests/vm/hook-lib.sh

# (a podman that hangs fails its step, with the step's name, not the VM's limit)
pm() {
	timeout -k 5 300 podman --root "$T/storage" --runroot "$T/runroot" --storage-driver vfs \
		--cgroup-manager cgroupfs --events-backend none --hooks-dir "$T/hooks" "$@"
}
mkdir -p "$T/rootfs/bin" "$T/hooks" "$T/out"
cp /bin/busybox "$T/rootfs/bin/busybox"
ln -s busybox "$T/rootfs/bin/sh"
cp "$HOG_STATIC" "$T/rootfs/bin/memhog"
tar -C "$T/rootfs" -c . | pm import - localhost/nfbox >/dev/null
# deploy/'s hooks.d file, with the emulator's budget and timeout (hook-lib.sh's bundle())
jq --arg hook "$HOOK" --arg sock "$SOCK" \
	'.hook.path = $hook | .hook.args += ["--socket", $sock, "--budget-ms", "15000"]
	| .hook.timeout = 30' deploy/oci/50-numafollow.json \
	>"$T/hooks/50-numafollow.json"

start_agent
id=$(pm run -d --network none --cpuset-mems 1 -v "$T/out:/out" \
	--annotation io.kubernetes.cri.container-name=web localhost/nfbox \
	/bin/memhog -m 64 -r /out/ready) || fail_hook "podman run failed"
wait_for "the container's memhog" 60 test -e "$T/out/ready"
CPID=$(pm inspect --format '{{.State.Pid}}' "$id")
say "podman started $id (pid $CPID)"
api "/v1/containers/$id" >"$T/c.json"
jq -e --argjson pid "$CPID" '.registered and .name == "web" and .pid == $pid
	and .runtime == "podman" and .mems_effective == "1"' "$T/c.json" >/dev/null ||
	fail_hook "podman's container is not registered: $(cat "$T/c.json")"
say "agent: $(jq -c "{id, runtime, name, cgroup, status, pid}" "$T/c.json")"
expect_logged "container $id: createRuntime: registered with the agent"
expect_logged "container $id: poststart: registration updated"
expect_on "$CPID" 1 "in podman's container"
pm rm -f "$id" >/dev/null
expect_logged "container $id: poststop: (unregistered from the agent|the agent no longer knew it)"
expect_eq "GET /v1/containers/$id after podman rm" "$(api_status "/v1/containers/$id")" 404
echo PASS

#!/bin/bash
# vm: --cgroup v2 --node-mem 1280 --timeout 1800
# numafollow-nri under the real runtime: Debian 13's containerd 1.7.24 (taken
# from its package by tests/nri/fetch.sh, which make check runs), Debian 12's
# runc, NRI on, private root, state and sockets on the VM's tmpfs, locally
# imported images (pause and the probe workload, OCI layouts from
# busybox-static), host-network pods, and kubelet's CRI calls from Python
# (tests/nri/cri.py). Checks: the pod's container registered with its names
# and no hook, and the hook's registration of it again makes no second one;
# with the re-pin off, UpdateContainerResources with new cpuset_mems holds
# the call and the workload for the kernel's whole move; with it on, the
# call returns sooner, the memory lands on the new node, cpuset.mems ends as
# asked, and the workload's worst wait is a tenth of the kernel's whole move at
# most, and under 50 ms when the host is quiet (below); memory limits and
# swap reach runc as sent, adjusted or not; containers with their own swap
# limit or MemoryQoS values are left to the runtime (NRI 0.6.1 would drop
# kubelet's values); a second plugin that sets mems does not fail the call;
# the plugin reconnects when containerd restarts; a plugin killed mid-move
# narrows the widened container when it starts again.
. tests/vm/lib.sh
need_nodes 2
[ "$NF_VM_CGROUP" = v2 ] || skip "the re-pin is about cgroup v2's migration on write"
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
. tests/vm/probe-lib.sh
cache=${NF_NRI_CACHE:-$HOME/.cache/numafollow-nri}
CTD=$cache/root/usr/bin
[ -x "$CTD/containerd" ] && [ -s "$cache/cri/api.proto" ] ||
	skip "containerd 1.7.24 is not in $cache (tests/nri/fetch.sh fetches it; make check runs it)"
PY=/usr/bin/python3
$PY -c 'import grpc, grpc_tools.protoc' 2>/dev/null || skip "python3-grpcio and python3-grpc-tools are needed"
command -v runc >/dev/null || skip "runc is not installed"
NRI=$B/numafollow-nri
[ -x "$NRI" ] || fail "$NRI not built"
export PATH=$CTD:$PATH # containerd-shim-runc-v2 next to containerd; runc from Debian 12
C=/run/nf-ctd
CSOCK=$C/containerd.sock
NSOCK=$C/nri.sock
JOURNAL=$T/nri-state/repins.journal

# ---- Python stubs: cri-api's (the CRI client) and NRI's (the second plugin) ----
mkdir -p "$T/cri" "$T/nri"
$PY -m grpc_tools.protoc -I"$cache/cri" --python_out="$T/cri" --grpc_python_out="$T/cri" \
	"$cache/cri/api.proto" || fail "grpc_tools could not compile cri-api's api.proto"
(cd plugin/nri/proto && $PY -m grpc_tools.protoc -I. -I/usr/lib/python3/dist-packages/grpc_tools/_proto \
	--python_out="$T/nri" api.proto ttrpc/request.proto google/rpc/status.proto) ||
	fail "grpc_tools could not compile NRI's protos"
cri() { CRI_STUBS=$T/cri $PY tests/nri/cri.py "$CSOCK" "$@"; }

# ---- containerd ----
mkdir -p "$C/root" "$C/state" "$C/nri/plugins" "$C/nri/conf.d" "$C/cni"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  disable_connections = false
  socket_path = "$NSOCK"
  plugin_path = "$C/nri/plugins"
  plugin_config_path = "$C/nri/conf.d"
  plugin_registration_timeout = "5s"
  plugin_request_timeout = "2s"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "nf.local/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$C/cni"
    conf_dir = "$C/cni"
EOF
# containerd in a cgroup of its own: it looks for memory.swap.max in its
# cgroup to decide whether swap limits apply (the root has none)
mkcg nf-ctd 0-1 >/dev/null
start_containerd() {
	# shellcheck disable=SC2016
	setsid bash -c 'echo $$ >/sys/fs/cgroup/nf-ctd/cgroup.procs && exec "$@"' _ \
		containerd --config "$C/config.toml" >>"$T/containerd.log" 2>&1 </dev/null &
	CTD_PID=$!
	wait_for "containerd's CRI" 120 cri_ready
}
cri_ready() { ctr --address "$CSOCK" version >/dev/null 2>&1 && [ -S "$NSOCK" ]; }
stop_containerd() {
	kill "$CTD_PID" 2>/dev/null || true
	while kill -0 "$CTD_PID" 2>/dev/null; do sleep 0.1; done
}
nri_cleanup() {
	kill "${NRI_PID:-}" "${SETMEMS:-}" 2>/dev/null || true
	stop_containerd
	for s in $(find "$C/state" -name init.pid 2>/dev/null); do kill -9 "$(cat "$s")" 2>/dev/null || true; done
	pkill -f containerd-shim-runc-v2 2>/dev/null || true
}
trap 'nri_cleanup; kill "${PIDS[@]}" 2>/dev/null || true; cleanup' EXIT
# every failure, wait_for's too, shows the runtime's and the plugin's logs
eval "lib_$(declare -f fail)"
fail() {
	echo "-- containerd's log:"
	grep -iE "nri|error|fail" "$T/containerd.log" | tail -n 30
	echo "-- numafollow-nri's log:"
	tail -n 40 "$T/nri.log"
	lib_fail "$@"
}
nri_fail() { fail "$@"; }

# ---- numafollow-nri ----
start_nri() {
	"$NRI" --nri-socket "$NSOCK" --socket "$SOCK" --state-dir "$T/nri-state" \
		--log-level debug "$@" >>"$T/nri.log" 2>&1 &
	NRI_PID=$!
}
configured() { [ "$(grep -c 'configured by containerd' "$T/nri.log" 2>/dev/null)" -ge "$1" ]; }
journal_lines() { [ -s "$JOURNAL" ] && grep -c . "$JOURNAL" || echo 0; }
journal_grew() { [ "$(journal_lines)" -gt "$1" ]; }
# the last journal line about container $1
repin_of() { grep "\"container\":\"$1\"" "$JOURNAL" | tail -n 1; }
mems_of() { cat "/sys/fs/cgroup$(api "/v1/containers/$1" | jq -r .cgroup)/cpuset.mems"; }
cgfile() { cat "/sys/fs/cgroup$(api "/v1/containers/$1" | jq -r .cgroup)/$2"; }
# the probe's worst wait (us) since the last call; its report goes to /out in the container
worst_us() {
	rm -f "$2/report"
	kill -USR1 "$1"
	for _ in $(seq 1 600); do
		[ -s "$2/report" ] && { sed 's/.*worst_us=\([0-9]*\).*/\1/' "$2/report"; return; }
		sleep 0.05
	done
	fail "probe $1 did not report"
}

start_agent
start_containerd
say "containerd $(containerd --version | awk '{print $3}') runs with NRI on at $NSOCK"

# ---- images ----
$PY tests/nri/oci-image.py "$T/pause.tar" nf.local/pause:1 '["/bin/sleep","2147483647"]' \
	/bin/busybox:/bin/busybox
$PY tests/nri/oci-image.py "$T/probe.tar" nf.local/probe:1 '["/probe"]' \
	/bin/busybox:/bin/busybox "$PROBE:/probe"
for i in pause probe; do
	ctr --address "$CSOCK" -n k8s.io images import --snapshotter native "$T/$i.tar" >/dev/null ||
		nri_fail "ctr could not import the $i image"
done

start_nri --repin off
wait_for "the plugin's registration" 60 configured 1

# ---- a pod and its 512 MiB workload ----
POD=$(cri pod web-0 shop uid-web-0 /kubepods/burstable/poduid-web-0) || nri_fail "RunPodSandbox failed"
export CGROUP_PARENT=/kubepods/burstable/poduid-web-0
GiB=$((1024 * MiB))
mkdir -p "$T/outA"
A=$(cri create "$POD" app nf.local/probe:1 "$T/outA:/out" mems=0 cpus=0-1 limit=$GiB swap=$GiB \
	-- /probe -m 512 -r /out/ready -o /out/report) || nri_fail "CreateContainer failed"
cri start "$A" || nri_fail "StartContainer failed"
wait_for "the workload" 120 test -s "$T/outA/ready"
say "pod $POD, container $A: started"

say "registered without the hook, with its names"
registered() { api "/v1/containers/$A" | jq -e '.registered and .pod.name == "web-0" and
	.pod.namespace == "shop" and .pod.uid == "uid-web-0" and .name == "app"' >/dev/null; }
wait_for "the NRI registration" 60 registered
PID=$(api "/v1/containers/$A" | jq -r .pid)
PIDS+=("$PID")
api "/v1/containers/$A" | jq -c '{id, name, pod, cgroup, pid, status, mems}'

say "the hook's registration of the same container: an update, not a second container"
ann=$(api "/v1/containers/$A" | jq -c .annotations)
code=$(api_status /v1/containers -X POST -H 'Content-Type: application/json' \
	-d "{\"id\":\"$A\",\"pid\":$PID,\"status\":\"running\",\"annotations\":$ann}")
expect_eq "HTTP status of the hook's registration" "$code" 200
expect_eq "containers with that id" "$(api /v1/containers | jq --arg id "$A" '[.containers[] | select(.id == $id)] | length')" 1
expect_on "$PID" 0 "at the start"
expect_eq "memory.max" "$(cgfile "$A" memory.max)" $GiB
SWAPMAX=$(cgfile "$A" memory.swap.max)
say "memory.swap.max = $SWAPMAX (swap = limit in the spec: none beyond it)"

# ---- the re-pin off: the kernel moves inside runc's write ----
say "re-pin off: UpdateContainerResources 0 -> 1"
worst_us "$PID" "$T/outA" >/dev/null
off_s=$(cri update "$A" mems=1 cpus=0-1 limit=$GiB swap=$GiB) || nri_fail "the update failed"
off_worst=$(worst_us "$PID" "$T/outA")
expect_eq "cpuset.mems" "$(mems_of "$A")" 1
expect_on "$PID" 1 "after the runtime's write"
expect_eq "memory.max, not adjusted" "$(cgfile "$A" memory.max)" $GiB
expect_eq "memory.swap.max, not adjusted" "$(cgfile "$A" memory.swap.max)" "$SWAPMAX"
say "the call took $off_s s; the workload's worst wait $((off_worst / 1000)) ms"
cri update "$A" mems=0 cpus=0-1 limit=$GiB swap=$GiB >/dev/null || nri_fail "the update back failed"
expect_on "$PID" 0 "back"

# ---- the re-pin on ----
kill "$NRI_PID"
wait "$NRI_PID" 2>/dev/null || true
start_nri --repin on
wait_for "the plugin's registration again" 60 configured 2
# The emulator's own stalls, on a busy host, are no part of the re-pin: the
# workload's worst wait over 8 s of nothing happening is the floor.
worst_us "$PID" "$T/outA" >/dev/null
sleep 8
base_worst=$(worst_us "$PID" "$T/outA")
say "re-pin on: UpdateContainerResources 0 -> 1"
n0=$(journal_lines)
worst_us "$PID" "$T/outA" >/dev/null
on_s=$(cri update "$A" mems=1 cpus=0-1 limit=$GiB swap=$GiB) || nri_fail "the update failed"
# the worst wait up to the agent's move's end, then up to the narrowing's
moved() { api "/v1/migrations?container=$A&limit=5" | jq -e '[.migrations[] | select(.trigger == "nri")][0].result == "ok"' >/dev/null; }
wait_for "the agent's move" 300 moved
move_worst=$(worst_us "$PID" "$T/outA")
wait_for "the re-pin's end" 300 journal_grew "$n0"
narrow_worst=$(worst_us "$PID" "$T/outA")
on_worst=$((move_worst > narrow_worst ? move_worst : narrow_worst))
repin_of "$A"
repin_of "$A" | jq -e '.result == "ok" and .trigger == "nri" and .from == "0" and .to == "1" and
	.union == "0-1" and .moved_bytes > 400 * 1048576' >/dev/null || nri_fail "the re-pin's journal line"
mig=$(repin_of "$A" | jq -r .migration)
api "/v1/migrations/$mig" | jq -e '.trigger == "nri" and .to == "1"' >/dev/null ||
	nri_fail "the agent's record $mig: $(api "/v1/migrations/$mig")"
expect_eq "cpuset.mems" "$(mems_of "$A")" 1
expect_on "$PID" 1 "after the re-pin"
expect_eq "memory.max, adjusted" "$(cgfile "$A" memory.max)" $GiB
expect_eq "memory.swap.max, adjusted" "$(cgfile "$A" memory.swap.max)" "$SWAPMAX"
say "the call took $on_s s (off: $off_s s); worst wait $((on_worst / 1000)) ms (off: $((off_worst / 1000)) ms):" \
	"$((move_worst / 1000)) ms up to the move's end, $((narrow_worst / 1000)) ms in the narrowing;" \
	"$((base_worst / 1000)) ms with nothing happening"
# Always: the workload no longer waits for the move (a tenth of the kernel's
# whole move at most). On a quiet host also the issue's bound: under 50 ms.
# Quiet means the kernel moved the 512 MiB within 1.5 s (968 ms in
# docs/benchmarks.md's quiet run) and the probe stalled under 25 ms with
# nothing happening: on a busy host the emulator stretches the engine's
# whole-mm walks (its plan, its sweep, numa_maps) with everything else, and an
# absolute bound would measure the host.
[ "$off_worst" -gt 200000 ] ||
	nri_fail "off, the workload waited only $((off_worst / 1000)) ms: no whole move to compare with"
[ $((10 * on_worst)) -lt "$off_worst" ] ||
	nri_fail "the workload waited $((on_worst / 1000)) ms during the re-pin, over a tenth of the kernel's $((off_worst / 1000)) ms"
if [ "$base_worst" -lt 25000 ] && [ "$off_worst" -lt 1500000 ]; then
	[ "$on_worst" -lt 50000 ] ||
		nri_fail "on a quiet host the workload waited $((on_worst / 1000)) ms during the re-pin (>= 50 ms)"
	say "a quiet host: the re-pin's worst wait is under 50 ms"
else
	say "a busy host (the kernel's move stalled the workload $((off_worst / 1000)) ms, $((base_worst / 1000)) ms" \
		"with nothing happening): the 50 ms bound is not checked"
fi
awk -v on="$on_s" -v off="$off_s" 'BEGIN { exit !(on < off) }' ||
	nri_fail "the re-pinned call took $on_s s, the plain one $off_s s"
echo "NRI-FIGURES off_call_s=$off_s off_worst_ms=$((off_worst / 1000)) on_call_s=$on_s" \
	"on_worst_ms=$((on_worst / 1000)) move_worst_ms=$((move_worst / 1000))" \
	"narrow_worst_ms=$((narrow_worst / 1000)) idle_worst_ms=$((base_worst / 1000))" \
	"$(repin_of "$A" | jq -r '"widen_ms=\(.widen_ms) move_ms=\(.move_ms) narrow_ms=\(.narrow_ms)"')"

# ---- containers whose update the runtime would change if adjusted ----
say "a container with its own swap limit: left to the runtime, swap as sent"
B=$(cri create "$POD" swapper nf.local/probe:1 "$T/outA:/ignored" mems=0 limit=$((256 * MiB)) swap=$GiB \
	-- /bin/sleep 100000) || nri_fail "CreateContainer (swap) failed"
cri start "$B" || nri_fail "StartContainer (swap) failed"
wait_for "its registration" 60 bash -c "curl -s --unix-socket $SOCK http://nf/v1/containers/$B | jq -e .registered >/dev/null"
swap_b=$(cgfile "$B" memory.swap.max)
say "memory.swap.max = $swap_b"
cri update "$B" mems=1 limit=$((256 * MiB)) swap=$GiB >/dev/null || nri_fail "the update (swap) failed"
expect_eq "cpuset.mems" "$(mems_of "$B")" 1
expect_eq "memory.swap.max" "$(cgfile "$B" memory.swap.max)" "$swap_b"
grep -q "container $B: update of its mems 0 -> 1 left to the runtime: its spec has a swap limit" "$T/nri.log" ||
	nri_fail "no word of the swap limit in the plugin's log"

say "a container with MemoryQoS values (unified): left to the runtime, unified as sent"
Q=$(cri create "$POD" qos nf.local/probe:1 "$T/outA:/ignored" mems=0 limit=$((256 * MiB)) \
	unified=memory.high=209715200 -- /bin/sleep 100000) || nri_fail "CreateContainer (unified) failed"
cri start "$Q" || nri_fail "StartContainer (unified) failed"
wait_for "its registration" 60 bash -c "curl -s --unix-socket $SOCK http://nf/v1/containers/$Q | jq -e .registered >/dev/null"
expect_eq "memory.high" "$(cgfile "$Q" memory.high)" 209715200
cri update "$Q" mems=1 limit=$((256 * MiB)) unified=memory.high=188743680 >/dev/null || nri_fail "the update (unified) failed"
expect_eq "cpuset.mems" "$(mems_of "$Q")" 1
expect_eq "memory.high as kubelet sent it" "$(cgfile "$Q" memory.high)" 188743680

say "a second plugin (index 10) sets the mems too: the CRI call does not fail"
E=$(cri create "$POD" pinned nf.local/probe:1 "$T/outA:/ignored" mems=1 limit=$((256 * MiB)) \
	swap=$((256 * MiB)) -- /bin/sleep 100000) || nri_fail "CreateContainer (pinned) failed"
cri start "$E" || nri_fail "StartContainer (pinned) failed"
wait_for "its registration" 60 bash -c "curl -s --unix-socket $SOCK http://nf/v1/containers/$E | jq -e .registered >/dev/null"
STUBS=$T/nri $PY tests/nri/mems-plugin.py "$NSOCK" 0 >>"$T/setmems.log" 2>&1 &
SETMEMS=$!
wait_for "the second plugin" 60 grep -q 'external:10-setmems' "$T/containerd.log"
cri update "$E" mems=0 limit=$((256 * MiB)) swap=$((256 * MiB)) >/dev/null ||
	nri_fail "the CRI update failed with a second plugin setting mems"
grep -q "setmems: ${E:0:12} -> 0" "$T/setmems.log" || nri_fail "the second plugin did not see the update"
grep -q "container $E: update of its mems 1 -> 0: answered 0-1" "$T/nri.log" ||
	nri_fail "numafollow did not answer with its own mems (nothing to conflict with)"
expect_eq "cpuset.mems (the policy's; numafollow's claim dropped)" "$(mems_of "$E")" 0
wait_for "the dropped re-pin's end" 30 grep -q "container $E: the runtime applied mems '0', not the re-pin's" "$T/nri.log"
kill "$SETMEMS"
SETMEMS=

# ---- containerd restarts under the plugin ----
say "containerd restarts: the plugin connects again"
stop_containerd
start_containerd
wait_for "the plugin's registration with the new containerd" 60 configured 3
n0=$(journal_lines)
worst_us "$PID" "$T/outA" >/dev/null
cri update "$A" mems=0 cpus=0-1 limit=$GiB swap=$GiB >/dev/null || nri_fail "the update after the restart failed"
wait_for "the re-pin's end" 300 journal_grew "$n0"
repin_of "$A" | jq -e '.result == "ok" and .to == "0"' >/dev/null || nri_fail "the re-pin after the restart: $(repin_of "$A")"
expect_eq "cpuset.mems" "$(mems_of "$A")" 0
expect_on "$PID" 0 "after the re-pin with the restarted containerd"
say "worst wait $(($(worst_us "$PID" "$T/outA") / 1000)) ms"

# ---- the plugin killed mid-move ----
say "the plugin killed mid-move: the widened container is narrowed when it starts again"
mkdir -p "$T/outD"
D=$(cri create "$POD" slow nf.local/probe:1 "$T/outD:/out" mems=0 limit=$GiB swap=$GiB \
	annotation=numafollow.io/max-rate=16 -- /probe -P -m 128 -r /out/ready) || nri_fail "CreateContainer (slow) failed"
cri start "$D" || nri_fail "StartContainer (slow) failed"
wait_for "the slow workload" 120 test -s "$T/outD/ready"
wait_for "its registration" 60 bash -c "curl -s --unix-socket $SOCK http://nf/v1/containers/$D | jq -e .registered >/dev/null"
PIDD=$(api "/v1/containers/$D" | jq -r .pid)
cri update "$D" mems=1 limit=$GiB swap=$GiB >/dev/null || nri_fail "the update (slow) failed"
moving() { api "/v1/migrations?container=$D&limit=1" | jq -e '.migrations[0] | .trigger == "nri" and .result == "running"' >/dev/null; }
wait_for "the agent's move" 60 moving
kill -9 "$NRI_PID"
wait "$NRI_PID" 2>/dev/null || true
expect_eq "cpuset.mems, widened" "$(mems_of "$D")" 0-1
[ -s "$T/nri-state/repin-$D.json" ] || nri_fail "no state file for the re-pin in flight"
start_nri --repin on
wait_for "the narrowing after the restart" 300 bash -c "grep -q '\"container\":\"$D\".*\"recovered\":true' '$JOURNAL'"
repin_of "$D"
repin_of "$D" | jq -e '.result == "ok"' >/dev/null || nri_fail "the recovered re-pin: $(repin_of "$D")"
expect_eq "cpuset.mems, narrowed" "$(mems_of "$D")" 1
expect_on "$PIDD" 1 "after the recovered re-pin"
[ ! -e "$T/nri-state/repin-$D.json" ] || nri_fail "the state file stayed"
kill -0 "$NRI_PID" || nri_fail "the plugin died"
echo PASS

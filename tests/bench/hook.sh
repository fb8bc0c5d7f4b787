#!/bin/bash
# Inside the VM (cgroup v2): numafollow-hook's wall time per stage, as a
# runtime pays it (fork, exec, the whole run), over NF_BENCH_HOOK_RUNS (200)
# runs each: with the agent up (registration over the unix socket) and down
# (standalone at createRuntime: the engine checks a 16 MiB process that shares
# the container's cgroup and is already on its node, so nothing moves; at
# poststart there is nothing to do). The floor is /bin/true's exec in the
# same VM.
. tests/vm/lib.sh
runs=${NF_BENCH_HOOK_RUNS:-200}
HOOK=$PWD/build/numafollow-hook

cg=$(mkcg hbench/c1 0)
hog=$(start_hog "$cg" -m 16)
own=$(start_hog "$cg" -m 1) # the container's own process
mkdir -p "$T/bundle"
jq -n '{ociVersion: "1.0.2", linux: {resources: {cpu: {mems: "0"}}},
	annotations: {"io.kubernetes.cri.container-name": "bench",
		"io.kubernetes.cri.sandbox-name": "pod", "io.kubernetes.cri.sandbox-namespace": "ns"}}' \
	>"$T/bundle/config.json"
state() { # state STATUS PID
	jq -nc --arg s "$1" --argjson p "$2" --arg b "$T/bundle" \
		'{ociVersion: "1.0.2", id: "bench", status: $s, pid: $p, bundle: $b,
		  annotations: {"io.kubernetes.cri.container-name": "bench"}}'
}
state created "$own" >"$T/create.json"
state running "$own" >"$T/start.json"
state stopped 0 >"$T/stop.json"

# time_runs NAME CMD...: CMD's wall time RUNS times (stdin from $IN);
# prints "NAME median p99 max" in ms.
time_runs() {
	local name=$1 t0 t1
	shift
	: >"$T/times"
	for _ in $(seq 1 "$runs"); do
		t0=${EPOCHREALTIME/./}
		"$@" <"$IN" || fail "$* exited $?"
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0)) >>"$T/times"
	done
	sort -n "$T/times" | awk -v name="$name" '{ v[NR] = $1 }
		END { p = int((NR * 99 + 99) / 100); printf "  %-34s %8.1f %8.1f %8.1f\n",
			name, v[int((NR + 1) / 2)] / 1000, v[p] / 1000, v[NR] / 1000 }'
}

say "numafollow-hook wall time over $runs runs per stage (ms)"
printf '  %-34s %8s %8s %8s\n' "" median p99 max
IN=/dev/null time_runs "/bin/true (exec floor)" /bin/true
start_agent --log-level notice
for s in create:createRuntime start:poststart stop:poststop; do
	IN=$T/${s%%:*}.json time_runs "${s#*:}, agent up" "$HOOK" --socket "$SOCK" "${s#*:}"
done
kill "$AGENT"
wait "$AGENT" 2>/dev/null || true
AGENT=
for s in create:createRuntime start:poststart stop:poststop; do
	IN=$T/${s%%:*}.json time_runs "${s#*:}, agent down" "$HOOK" --socket "$SOCK" "${s#*:}"
done
expect_on "$hog" 0 "after the runs (nothing to move)"

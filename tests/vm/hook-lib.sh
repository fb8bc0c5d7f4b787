# Sourced by the hook's VM tests (t-hook-*.sh) after lib.sh: OCI bundles of
# busybox and a static memhog that carry numafollow-hook in createRuntime,
# poststart and poststop, run by the real crun and runc.
HOOK=$B/numafollow-hook
HOG_STATIC=$B/memhog-static
SYSLOG=$T/syslog
[ -x "$HOOK" ] || fail "$HOOK not built"
command -v crun >/dev/null || skip "crun is not installed"
command -v runc >/dev/null || skip "runc is not installed"

# The hook logs to syslog only; busybox's syslogd gives it a /dev/log.
busybox syslogd -n -O "$SYSLOG" &
SYSLOGD=$!
for _ in $(seq 1 300); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || fail "busybox syslogd did not create /dev/log"
# The test's verdict is in by then: a runtime that hangs here (runc under
# TCG has been seen to) must not hold the VM until vm.sh's timeout.
hook_cleanup() {
	local rt id
	for rt in crun runc; do
		for id in $(timeout -k 5 30 $rt list -q 2>/dev/null); do
			timeout -k 5 30 $rt delete -f "$id" >/dev/null 2>&1 || echo "-- $rt delete -f $id: exit $?"
		done
	done
	kill "$SYSLOGD" 2>/dev/null || true
	cleanup
}
trap hook_cleanup EXIT

fail_hook() {
	echo "-- syslog:"
	tail -n 30 "$SYSLOG" 2>/dev/null || true
	fail "$@"
}

# logged PATTERN: the syslog has a line matching PATTERN (grep -E).
logged() { grep -qE "$1" "$SYSLOG"; }
expect_logged() {
	for _ in $(seq 1 100); do logged "$1" && break; sleep 0.1; done
	logged "$1" || fail_hook "no line in the syslog matches: $1"
	say "syslog: $(grep -E "$1" "$SYSLOG" | tail -n 1 | sed 's/^.*numafollow-hook/numafollow-hook/')"
}

# bundle DIR MEMS CGROUPS_PATH [HOOK ARGS...]: a bundle whose process touches
# 64 MiB, writes /out/ready and waits; the hook runs with --socket $SOCK,
# --budget-ms 15000 and ARGS (a --budget-ms there overrides it). 15 s is the
# emulator's budget, not the 2 s default: on a loaded host the hook has spent
# 3.6 s of wall time on a 500 ms budget and 13.7 s (perl's start included) on
# a 5 s one, and a budget that runs out changes what the hook logs;
# t-hook-v2.sh tests the budget itself, by the watchdog's log line. The
# runtime's hook timeout is 30 s, not the 5 s of deploy/oci: under the
# emulator a process can stall in the kernel for seconds (tests/vm/vm.sh), and
# once a hook whose work was done after 0.3 s still outlasted crun's 10 s.
bundle() {
	local d=$1 mems=$2 cgpath=$3
	shift 3
	mkdir -p "$d/rootfs/bin" "$d/out"
	cp /bin/busybox "$d/rootfs/bin/busybox"
	ln -sf busybox "$d/rootfs/bin/sh"
	cp "$HOG_STATIC" "$d/rootfs/bin/memhog"
	rm -f "$d/config.json"
	(cd "$d" && crun spec)
	local hargs='[]'
	[ $# = 0 ] || hargs=$(printf '%s\n' "$@" | jq -R . | jq -s .)
	jq --arg hook "$HOOK" --arg sock "$SOCK" --arg mems "$mems" --arg cg "$cgpath" \
		--arg out "$d/out" --argjson extra "$hargs" '
		def h(stage): [{path: $hook, timeout: 30,
			args: (["numafollow-hook", "--socket", $sock, "--budget-ms", "15000"]
				+ $extra + [stage])}];
		.process.args = ["/bin/memhog", "-m", "64", "-r", "/out/ready"]
		| .process.terminal = false
		| .root.readonly = true
		| .mounts += [{destination: "/out", type: "bind", source: $out, options: ["rbind", "rw"]}]
		| .linux.cgroupsPath = $cg
		| .linux.resources.cpu = {mems: $mems}
		| .annotations = {"io.kubernetes.cri.container-name": "web",
			"io.kubernetes.cri.sandbox-name": "pod-a",
			"io.kubernetes.cri.sandbox-namespace": "ns1",
			"io.kubernetes.cri.sandbox-uid": "uid-1"}
		| .hooks = {createRuntime: h("createRuntime"), poststart: h("poststart"),
			poststop: h("poststop")}' "$d/config.json" >"$d/config.tmp"
	mv "$d/config.tmp" "$d/config.json"
}

# run_container RUNTIME ID BUNDLE: starts it detached and waits until its
# memory is touched; CPID is its process (as the host sees it).
run_container() {
	local rt=$1 id=$2 d=$3
	rm -f "$d/out/ready"
	"$rt" run -d --bundle "$d" "$id" </dev/null >"$T/$rt.out" 2>&1 ||
		{ cat "$T/$rt.out"; fail_hook "$rt run $id failed"; }
	wait_for "$id's memhog to touch its memory" 60 test -e "$d/out/ready"
	CPID=$("$rt" state "$id" | jq -r .pid)
	say "$rt started $id (pid $CPID)"
}

# stop_container RUNTIME ID: kill and delete (which runs poststop).
stop_container() {
	"$1" kill "$2" KILL >/dev/null 2>&1 || true
	wait_for "$2 to stop" 20 sh -c "$1 state $2 | jq -e '.status == \"stopped\"' >/dev/null"
	"$1" delete "$2" || fail_hook "$1 delete $2 failed"
}

# with_agent RUNTIME: registered at create with names from the annotations,
# running at poststart; `RUNTIME update --cpuset-mems 1` moves the memory
# (the kernel on v2, the agent on v1) and the agent records it; delete
# unregisters it.
with_agent() {
	local rt=$1 id=c-$1 d=$T/b-$1 moved
	bundle "$d" 0 "/nftest/$id"
	run_container "$rt" "$id" "$d"
	expect_on "$CPID" 0 "at start"
	api "/v1/containers/$id" >"$T/c.json"
	jq -e --argjson pid "$CPID" '.registered and .name == "web" and .pod.name == "pod-a"
		and .pod.namespace == "ns1" and .pod.uid == "uid-1" and .status == "running"
		and .pid == $pid and .mems_effective == "0"
		and .annotations["io.kubernetes.cri.container-name"] == "web"' "$T/c.json" >/dev/null ||
		fail_hook "$id is not registered as web in pod-a/ns1, running: $(cat "$T/c.json")"
	say "agent: $(jq -c '{id, name, pod, cgroup, status, pid}' "$T/c.json")"
	expect_logged "container $id: createRuntime: registered with the agent: cgroup '/nftest/$id"
	expect_logged "container $id: poststart: registration updated"

	"$rt" update --cpuset-mems 1 "$id" || fail_hook "$rt update --cpuset-mems 1 $id failed"
	moved() { [ "$(pct "$(anon_bytes "$CPID" 1)" "$(anon_bytes "$CPID" all)")" -ge 99 ]; }
	wait_for "$id's memory to reach node 1" 60 moved
	rec() { api "/v1/containers/$id" | jq -e '.last_migration.result == "ok" and .last_migration.to == "1"' >/dev/null; }
	wait_for "the agent's record of $id's migration" 30 rec
	api "/v1/containers/$id" >"$T/c.json"
	say "record: $(jq -c '.last_migration | {trigger, from, to, result, moved_bytes, kernel_moved_bytes, residual_bytes}' "$T/c.json")"
	expect_on "$CPID" 1 "after $rt update"
	# v2: the kernel inside the runtime's write (and the agent's assist beside it)
	if [ "$NF_VM_CGROUP" = v2 ]; then moved=".kernel_moved_bytes + .assisted_bytes"; else moved=.moved_bytes; fi
	expect_ge "$moved of $id (MiB)" "$(($(jq -r ".last_migration | $moved" "$T/c.json") / MiB))" 60

	stop_container "$rt" "$id"
	expect_logged "container $id: poststop: (unregistered from the agent|the agent no longer knew it)"
	expect_eq "GET /v1/containers/$id after delete" "$(api_status "/v1/containers/$id")" 404
}

# without_agent RUNTIME: the container starts; at create the hook finds only
# the container's own process in its cgroup (the runtime's, about to exec) and
# leaves it alone; at poststart it has nothing to do. The memory lands on node
# 1 because the process allocates after joining its cpuset; t-hook-v1.sh's
# control shows what standalone mode itself moves.
without_agent() {
	local rt=$1 id=alone-$1 d=$T/b-alone-$1
	bundle "$d" 1 "/nftest/$id"
	run_container "$rt" "$id" "$d"
	expect_logged "container $id: createRuntime: agent unreachable .*standalone: cgroup '/nftest/$id' holds only the container's process, which has not run yet: nothing to move"
	expect_logged "container $id: poststart: agent unreachable .*nothing to do \\(standalone mode moves memory at create\\)"
	expect_on "$CPID" 1 "with no agent"
}

# Sourced after lib.sh by the tests and benchmarks that watch a workload's
# mmap waits (tests/helpers/probe.c): start probes in cgroups, ask them for
# their worst wait, stop them all.
PROBE=$B/probe
[ -x "$PROBE" ] || fail "$PROBE not built"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; cleanup' EXIT

# start_probe CGROUP_DIR PROBE_ARGS...: a probe in the cgroup, ready; sets
# PID and adds it to PIDS.
start_probe() {
	local dir=$1 ready
	shift
	ready=$(mktemp -u "$T/ready.XXXXXX")
	# shellcheck disable=SC2016
	setsid bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$dir" \
		"$PROBE" -r "$ready" -o "$T/probe.$RANDOM$RANDOM" "$@" </dev/null >/dev/null 2>&1 &
	for _ in $(seq 1 900); do
		[ -e "$ready" ] && { PID=$(cat "$ready"); PIDS+=("$PID"); return 0; }
		sleep 0.1
	done
	fail "probe $* did not become ready"
}

# probe_report PID: the probe's report since the last one: "worst_us=W
# median_us=M samples=N written=PAGES elapsed_us=US" (its worst and median
# mmap+touch+munmap, and the pages its writer threads wrote meanwhile).
probe_report() {
	local f
	f=$(tr '\0' '\n' <"/proc/$1/cmdline" | grep -A1 -x -- -o | tail -n 1)
	rm -f "$f"
	kill -USR1 "$1"
	for _ in $(seq 1 600); do
		[ -e "$f" ] && { cat "$f"; return; }
		sleep 0.05
	done
	fail "probe $1 did not report"
}

# probe_worst PID: the probe's worst mmap+touch+munmap (us) since the last call.
probe_worst() {
	local r
	r=$(probe_report "$1")
	sed 's/.*worst_us=\([0-9]*\).*/\1/' <<<"$r"
}

stop_probes() {
	kill "${PIDS[@]}" 2>/dev/null || true
	while kill -0 "${PIDS[@]}" 2>/dev/null; do sleep 0.05; done
	PIDS=()
}

#!/bin/bash
# vm: --cgroup v2
# numafollow-hook under crun and runc on cgroup v2: registration with the
# agent, memory following `update --cpuset-mems`, unregistration at delete;
# standalone placement with no agent; strict mode; the time budget with a
# hung agent; every malformed input refused with its reason and nothing changed.
. tests/vm/lib.sh
need_nodes 2
. tests/vm/hook-lib.sh

start_agent
with_agent crun
with_agent runc

# Both runtimes remove the cgroup before poststop, so the agent has dropped the
# container by then; unregistration itself, on a running container:
bundle "$T/b-reg" 0 /nftest/reg
run_container crun reg "$T/b-reg"
expect_eq "reg registered" "$(api /v1/containers/reg | jq .registered)" true
echo '{"ociVersion":"1.0","id":"reg","pid":0,"status":"stopped"}' |
	"$HOOK" --socket "$SOCK" --budget-ms 15000 poststop
expect_logged "container reg: poststop: unregistered from the agent$"
expect_eq "GET /v1/containers/reg after the hook's poststop" "$(api_status /v1/containers/reg)" 404
stop_container crun reg

# Malformed input, straight to the hook: exit 0 (2 with --strict), a reason
# in the log, the agent's list unchanged. The budget is the emulator's (see
# bundle() in hook-lib.sh); a --budget-ms in HOOK_ARGS overrides it.
api /v1/containers | jq -c '[.containers[] | select(.registered) | .id]' >"$T/before"
bad() { # bad EXPECTED_EXIT REASON HOOK_ARGS... < STATE
	local want=$1 why=$2 rc=0
	shift 2
	"$HOOK" --socket "$SOCK" --budget-ms 15000 "$@" >"$T/stdout" || rc=$?
	expect_eq "exit of the hook ($why)" "$rc" "$want"
	[ ! -s "$T/stdout" ] || fail_hook "the hook wrote to stdout: $(cat "$T/stdout")"
	expect_logged "$why"
}
mkdir -p "$T/nobundle" "$T/ok"
cp "$T/b-crun/config.json" "$T/ok/config.json"
# a pid that has exited (a `kill` of a fresh `sleep &` can land before its
# exec, where bash loses a SIGTERM: the test then waited 1000 s for it)
dead=$(sh -c 'echo $$')
echo 'not json' | bad 0 "createRuntime: malformed state on stdin: the state is not a JSON object$" createRuntime
echo 'not json' | bad 2 "not a JSON object \(strict: failing the container\)" --strict createRuntime
echo '{"id":"x1","pid":"12","bundle":"/b"}' | bad 0 "createRuntime: malformed state on stdin: 'pid' must be a non-negative integer" createRuntime
echo '{"id":"x2","bundle":"/b"}' | bad 0 "prestart: malformed state on stdin: 'pid' is missing or 0" prestart
echo '{"pid":1,"bundle":"/b"}' | bad 0 "malformed state on stdin: 'id' must be a string" createRuntime
head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' | bad 0 "the state is larger than 1 MiB" createRuntime
echo "{\"id\":\"x3\",\"pid\":$$,\"bundle\":\"$T/nobundle\"}" | bad 0 "container x3: createRuntime: cannot read '$T/nobundle/config.json': No such file or directory" createRuntime
echo "{\"id\":\"x4\",\"pid\":$dead,\"bundle\":\"$T/ok\"}" | bad 0 "container x4: createRuntime: pid $dead: no such process" createRuntime
echo "{\"id\":\"x5\",\"pid\":1,\"bundle\":\"$T/ok\"}" | bad 0 "container x5: createRuntime: pid 1 is in the root cgroup: refusing" createRuntime
# A cgroup outside the hook's view: the hook runs in a cgroup namespace rooted
# at /nftest/ns, with cgroup2 mounted inside it (as a containerized runtime
# has it); the pid sits in /nftest/other, which it sees as /../other.
ns=$(mkcg nftest/ns 0)
other=$(mkcg nftest/other 0)
opid=$(start_hog "$other" -m 1)
echo "{\"id\":\"x6\",\"pid\":$opid,\"bundle\":\"$T/ok\"}" >"$T/x6.json"
# shellcheck disable=SC2016
bash -c 'echo $$ >"$1/cgroup.procs" && exec unshare -C -m sh -c "umount /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup &&
	exec \"\$0\" --socket \"\$1\" --budget-ms 15000 createRuntime <\"\$2\"" "$2" "$3" "$4"' _ \
	"$ns" "$HOOK" "$SOCK" "$T/x6.json" || fail_hook "the hook failed in a cgroup namespace"
expect_logged "container x6: createRuntime: pid $opid's cgroup '/../other' is outside the cgroup hierarchy"
# A state that never ends, with SIGALRM blocked as a runtime might start the
# hook: the watchdog still ends the read within the budget. The budgets here
# are seconds: the message says where the budget ran out, and a loaded host
# has spent 3.6 s of wall time on a 500 ms one. The first alarm (at 90%) ends
# the read and the hook says so; should the hook stall past the second, the
# watchdog's own line says the same.
t0=${EPOCHREALTIME/./}
perl -MPOSIX -e 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGALRM)) or die; exec @ARGV' \
	"$HOOK" --socket "$SOCK" --budget-ms 5000 createRuntime < <(sleep 300) ||
	fail_hook "the hook failed on a state that never ends"
took=$(((${EPOCHREALTIME/./} - t0) / 1000))
say "a state that never ends, SIGALRM blocked: the hook returned after $took ms (budget 5000 ms)"
# The stdin's writer lives 300 s: returning well before it, with the read
# interrupted, is the watchdog's doing (the emulator's wall time is not checked).
[ "$took" -lt 200000 ] || fail_hook "the hook took $took ms with a 5000 ms budget"
expect_logged "createRuntime: (cannot read the state on stdin: Interrupted system call|the 5000 ms budget ran out reading the state on stdin)"
# A config.json that never ends (a link to /dev/zero) is refused at 4 MiB.
mkdir -p "$T/zero" && ln -s /dev/zero "$T/zero/config.json"
echo "{\"id\":\"x8\",\"pid\":$$,\"bundle\":\"$T/zero\"}" |
	bad 0 "container x8: createRuntime: '$T/zero/config.json' is larger than 4 MiB" createRuntime
# One whose writer never writes (a FIFO held open): the read restarts after
# the first alarm, so the watchdog's second one ends the hook, which says where.
mkdir -p "$T/fifo" && mkfifo "$T/fifo/config.json"
sleep 90 >"$T/fifo/config.json" &
writer=$!
echo "{\"id\":\"x9\",\"pid\":$$,\"bundle\":\"$T/fifo\"}" |
	bad 0 "container x9: createRuntime: the 5000 ms budget ran out reading the bundle and the cgroup; the watchdog ends the hook \(exit 0\)" --budget-ms 5000 createRuntime
kill "$writer" 2>/dev/null || true
echo '{"id":"x7"}' | bad 0 "unknown stage 'startcontainer'" startcontainer
bad 0 "unknown option or missing value: '--nope'" --nope createRuntime </dev/null
expect_eq "the agent's containers after the malformed inputs" \
	"$(api /v1/containers | jq -c '[.containers[] | select(.registered) | .id]')" "$(cat "$T/before")"

# A hung agent (stopped, its socket still accepting): the hook ends within
# its budget and the container is not held up.
bundle "$T/b-hung" 0 /nftest/hung --budget-ms 5000
kill -STOP "$AGENT"
t0=$(date +%s%N)
run_container crun hung "$T/b-hung"
took=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$AGENT"
expect_logged "container hung: createRuntime: (the agent at '$SOCK' did not answer|the 5000 ms budget ran out waiting for the agent)"
# The agent stays stopped until crun returns: a hook that waited for it would
# have met the runtime's 30 s timeout, and crun would have failed.
say "crun run with a hung agent took $took ms (the hook's budget: 5000 ms per stage)"
stop_container crun hung

# Strict mode: a broken settings file fails open, unless strict.
echo 'enabled = maybe' >"$T/bad.conf"
bundle "$T/b-lax" 0 /nftest/lax --config "$T/bad.conf"
run_container crun lax "$T/b-lax"
expect_logged "container lax: createRuntime: settings '$T/bad.conf' line 1: enabled: expected true or false; doing nothing$"
stop_container crun lax
bundle "$T/b-strict" 0 /nftest/strict --config "$T/bad.conf" --strict
if crun run -d --bundle "$T/b-strict" strict </dev/null >"$T/strict.out" 2>&1; then
	fail_hook "crun started a container whose strict hook failed"
fi
say "crun refused the strict container: $(tail -n 1 "$T/strict.out")"
expect_logged "container strict: createRuntime: settings .* \(strict: failing the container\)"
crun delete -f strict >/dev/null 2>&1 || true

# No agent: containers still start and standalone mode places them.
kill "$AGENT"
wait "$AGENT" 2>/dev/null || true
AGENT=
without_agent crun
without_agent runc
echo PASS

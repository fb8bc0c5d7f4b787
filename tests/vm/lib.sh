# Sourced by the VM tests (tests/vm/t-*.sh). They run as root inside the NUMA VM
# that tests/vm/vm.sh boots, with the freshly built binaries.
#
# CI runs them on a 2-core machine that may be busy, where the emulator can
# stall a process for seconds. So a test waits for the event it needs
# (wait_for, expect_logged, a counter), never a fixed sleep; it bounds wall
# time only as far as the mechanism needs, several times over; and it gives
# the hook a 15 s budget (hook-lib.sh's bundle() does) unless the budget is
# what it tests, and then it accepts the watchdog's own line too.
set -eu -o pipefail

# NF_BUILD: where the binaries are (default build/), e.g. a second build tree.
B=${NF_BUILD:-$PWD/build}
NF=$B/numafollow
NFD=$B/numafollowd
MEMHOG=$B/memhog
MiB=$((1024 * 1024))
T=$(mktemp -d)
SOCK=$T/nf.sock

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ ! -s "$T/agent.log" ] || { echo "-- numafollowd's log:"; tail -n 40 "$T/agent.log"; }
	exit 1
}
say() { echo "-- $*"; }

# NF_ON_HOST=1 lets tests/bench/agent.sh run on a host, as root, for a real
# CPU's figures (it creates cgroups under /bench and leaves them).
[ "${NF_VM:-}" = 1 ] || [ "${NF_ON_HOST:-}" = 1 ] || skip "runs inside the NUMA VM (tests/vm/vm.sh)"
[ -x "$NF" ] || fail "$NF not built"

need_nodes() {
	local n
	n=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
	[ "$n" -ge "$1" ] || skip "needs $1 NUMA nodes, has $n"
}

# The cpuset hierarchy's root, v1 or v2 (as the VM mounted it).
cg_root() {
	if [ -d /sys/fs/cgroup/cpuset ]; then echo /sys/fs/cgroup/cpuset; else echo /sys/fs/cgroup; fi
}

# mkcg PATH MEMS: a cgroup (relative to the root) with cpuset.mems MEMS.
mkcg() {
	local root d c
	root=$(cg_root)
	d=$root
	for c in ${1//\// }; do
		if [ "$root" = /sys/fs/cgroup ]; then # v2: enable the controllers on the way down
			echo "+cpuset +memory" >"$d/cgroup.subtree_control"
			mkdir -p "$d/$c"
		elif mkdir -p "$d/$c" && [ -z "$(cat "$d/$c/cpuset.cpus")" ]; then
			cat "$d/cpuset.cpus" >"$d/$c/cpuset.cpus" # v1: tasks need cpus and mems
			cat "$d/cpuset.mems" >"$d/$c/cpuset.mems"
		fi
		d=$d/$c
	done
	echo "$2" >"$d/cpuset.mems"
	echo "$d"
}

set_mems() { echo "$2" >"$1/cpuset.mems"; }

# start_hog CGROUP_DIR MEMHOG_ARGS...: starts memhog inside the cgroup, waits
# until its memory is touched, prints its pid.
start_hog() {
	local dir=$1 ready
	shift
	ready=$(mktemp -u "$T/ready.XXXXXX")
	# shellcheck disable=SC2016
	setsid bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$dir" \
		"$MEMHOG" -r "$ready" "$@" </dev/null >/dev/null 2>&1 &
	for _ in $(seq 1 600); do
		[ -e "$ready" ] && { cat "$ready"; return 0; }
		sleep 0.1
	done
	fail "memhog $* did not become ready"
}

# numa_maps of PID's mm, read through a live thread (the leader may have exited).
maps_of() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(awk '{ print $3 }' "$t/stat")" = Z ] || { cat "$t/numa_maps"; return; }
	done
}

# Bytes of PID's anonymous memory (VMAs with anon=) on NODE, or on all nodes
# with NODE "all", read straight from numa_maps: independent of numafollow.
anon_bytes() {
	maps_of "$1" | awk -v node="$2" '
	/ anon=/ {
		kb = 4
		for (i = 1; i <= NF; i++) if ($i ~ /^kernelpagesize_kB=/) { split($i, a, "="); kb = a[2] }
		for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) {
			split(substr($i, 2), a, "=")
			if (node == "all" || a[1] == node) sum += a[2] * kb * 1024
		}
	}
	END { printf "%d\n", sum }'
}

# all_on PID NODE: percent of PID's pages on NODE over every mapping numa_maps
# counts pages for (anonymous, shared, file, hugetlb) but the vdso's, kernel
# pages that never move.
all_on() {
	maps_of "$1" | awk -v node="$2" '
	!/\[vdso\]|\[vvar\]|\[vsyscall\]/ {
		kb = 4
		for (i = 1; i <= NF; i++) if ($i ~ /^kernelpagesize_kB=/) { split($i, a, "="); kb = a[2] }
		for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) {
			split(substr($i, 2), a, "=")
			all += a[2] * kb
			if (a[1] == node) on += a[2] * kb
		}
	}
	END { printf "%d\n", all ? on * 100 / all : 100 }'
}

# expect_on PID NODE [WHEN]: at least 99% of PID's anonymous memory is on NODE.
expect_on() {
	expect_ge "anon of $1 on node $2${3:+ $3} (%)" \
		"$(pct "$(anon_bytes "$1" "$2")" "$(anon_bytes "$1" all)")" 99
}

# pct PART WHOLE: integer percentage.
pct() { echo $(($1 * 100 / ($2 > 0 ? $2 : 1))); }

# expect_ge NAME VALUE MIN
expect_ge() { [ "$2" -ge "$3" ] || fail "$1: $2 < $3"; say "$1 = $2 (>= $3)"; }
expect_eq() { [ "$2" = "$3" ] || fail "$1: '$2' != '$3'"; say "$1 = $2"; }

# MiB on NODE of PID's Total row in numastat -p (numactl's own tool).
numastat_mb() {
	numastat -p "$1" | awk -v col=$(($2 + 2)) '$1 == "Total" { print $col }'
}

# start_agent ARGS...: numafollowd on $SOCK with its history in $T/state, logging
# to $T/agent.log; returns once the API answers. AGENT is its pid.
start_agent() {
	"$NFD" --config /dev/null --socket "$SOCK" --state-dir "$T/state" --log-level debug "$@" \
		>>"$T/agent.log" 2>&1 &
	AGENT=$!
	for _ in $(seq 1 300); do
		api /healthz >/dev/null 2>&1 && return 0
		kill -0 "$AGENT" 2>/dev/null || { cat "$T/agent.log"; fail "numafollowd exited"; }
		sleep 0.1
	done
	cat "$T/agent.log"
	fail "numafollowd did not answer on $SOCK"
}

# api PATH [CURL ARGS...]: the agent's API through curl, body on stdout.
api() { curl -sS --max-time 20 --unix-socket "$SOCK" "${@:2}" "http://nf$1"; }

# api_status PATH [CURL ARGS...]: the HTTP status only (the body in $T/body).
api_status() { curl -sS --max-time 20 --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' "${@:2}" "http://nf$1"; }

# wait_for WHAT SECONDS CMD...: polls CMD every 0.1 s until it succeeds, at
# most SECONDS * 10 times (a loaded VM gets more wall time), and for no more
# than 5 x SECONDS of wall time (a CMD that hangs, a curl that waits out its
# --max-time each time, fails the test here instead of at vm.sh's limit).
wait_for() {
	local what=$1 n=$(($2 * 10)) end=$((SECONDS + 5 * $2))
	shift 2
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.1
	done
	[ ! -e "$T/agent.log" ] || tail -n 30 "$T/agent.log"
	fail "timed out waiting for $what"
}

cleanup() {
	[ -z "${AGENT:-}" ] || kill "$AGENT" 2>/dev/null || true
	pkill -f "$MEMHOG" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

#!/bin/bash
# vm: --cgroup v1
# docker, as its users change a running container's nodes: Debian's dockerd
# (cgroupfs driver, vfs storage, no network) runs a busybox + static memhog
# image, and `docker update --cpuset-mems` moves it. On v1 docker never sets
# cpuset.memory_migrate, so without the agent the memory stays behind (checked
# first); the agent moves it. On v2 (t-docker-v2.sh sources this file) the
# kernel moves it inside docker's write and the agent verifies. Both: the
# agent names docker's containers by asking dockerd (docker runs no hook), the
# list shows a new container's memory without waiting for a reconcile, a new
# container makes no migration record that moved nothing, and with no dockerd
# the names stay null and the log says why.
. tests/vm/lib.sh
need_nodes 2
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || skip "docker.io is not installed"
MEMHOG_STATIC=$B/memhog-static
[ -x "$MEMHOG_STATIC" ] || fail "$MEMHOG_STATIC not built"
v2=false
[ -d /sys/fs/cgroup/cpuset ] || v2=true

DSOCK=$T/docker.sock
dk() { /usr/bin/docker -H "unix://$DSOCK" "$@"; }
docker_cleanup() {
	dk rm -f -v nf-a nf-b >/dev/null 2>&1 || true
	[ ! -s "$T/dockerd.pid" ] || kill "$(cat "$T/dockerd.pid")" 2>/dev/null || true
	for _ in $(seq 1 100); do [ -S "$DSOCK" ] || break; sleep 0.1; done
	cleanup
}
trap docker_cleanup EXIT

say "dockerd (cgroupfs, vfs, no network), data and exec roots in $T"
mkdir -p "$T/dd" "$T/dx" "$T/rd" "$T/rootfs/bin"
/usr/sbin/dockerd --host "unix://$DSOCK" --data-root "$T/dd" --exec-root "$T/dx" \
	--pidfile "$T/dockerd.pid" --storage-driver vfs --iptables=false --ip-masq=false \
	--bridge=none --exec-opt native.cgroupdriver=cgroupfs >"$T/dockerd.log" 2>&1 &
docker_up() { dk version >/dev/null 2>&1; }
wait_for "dockerd" 120 docker_up || true
cp /bin/busybox "$T/rootfs/bin/busybox"
ln -s busybox "$T/rootfs/bin/sh"
cp "$MEMHOG_STATIC" "$T/rootfs/memhog"
tar -C "$T/rootfs" -c . | dk import - nf-memhog:1 >/dev/null || fail "docker import"

# run NAME: a container on node 0 with 128 MiB, its id in ID once touched.
ready() { [ -s "$T/rd/$1" ]; }
run() {
	dk run -d --name "$1" --network none --cpuset-mems 0 -v "$T/rd:/ready" nf-memhog:1 \
		/memhog -m 128 -r "/ready/$1" >"$T/id" || fail "docker run $1: $(tail -n 5 "$T/dockerd.log")"
	ID=$(cat "$T/id")
	wait_for "container $1's memory" 120 ready "$1"
}
pid_of() { dk inspect --format '{{.State.Pid}}' "$1"; }
cgdir() { echo "$(cg_root)/docker/$1"; }

if ! $v2; then
	say "v1 without the agent: docker update leaves the memory behind"
	run nf-a
	ida=$ID
	pa=$(pid_of nf-a)
	expect_eq "memory_migrate" "$(cat "$(cgdir "$ida")/cpuset.memory_migrate")" 0
	expect_on "$pa" 0 "before the update"
	dk update --cpuset-mems 1 nf-a >/dev/null
	expect_eq "nf-a's mems" "$(cat "$(cgdir "$ida")/cpuset.mems")" 1
	expect_on "$pa" 0 "after docker update, with no agent"
fi

# No reconcile during the test: what the list shows must not wait for one.
start_agent --docker-socket "$DSOCK" --reconcile-interval 3600
if ! $v2; then
	say "the agent's start finds nf-a's memory outside its mems and moves it"
	moved() { [ "$(pct "$(anon_bytes "$pa" 1)" "$(anon_bytes "$pa" all)")" -ge 99 ]; }
	wait_for "nf-a's memory on node 1" 120 moved
	expect_on "$pa" 1 "after the agent's start"
fi

say "a new container: named from dockerd, its memory listed, no empty record"
run nf-b
idb=$ID
pb=$(pid_of nf-b)
expect_on "$pb" 0 "at start"
named() { [ "$(api "/v1/containers/$idb" | jq -r .name)" = nf-b ]; }
wait_for "the name nf-b from dockerd" 30 named
listed() {
	api /v1/containers | jq -e --arg id "$idb" \
		'.containers[] | select(.id == $id) | (.memory | add) >= 120 * 1048576' >/dev/null
}
wait_for "the list to show nf-b's 128 MiB (no reconcile runs)" 30 listed
"$NF" ps --socket "$SOCK" >"$T/ps"
grep -q "nf-b" "$T/ps" || fail "numafollow ps does not name nf-b: $(cat "$T/ps")"
say "ps: $(grep nf-b "$T/ps")"
# runc narrows the mems (v2) while the task is its init: no record, when the
# agent read the write before runc's exec (the stand-ins below check the rule
# itself, with no such race)
api "/v1/migrations?container=$idb" >"$T/recs"
if grep -q "$idb: effective mems .*runc's init" "$T/agent.log"; then
	expect_eq "records of nf-b's start" "$(jq '.migrations | length' "$T/recs")" 0
else
	say "records of nf-b's start: $(jq -c '[.migrations[] | {moved_bytes, kernel_moved_bytes}]' \
		"$T/recs") (no narrowing seen during runc's init)"
fi

if $v2; then
	say "mems narrowed while the tasks are runc's init: no record (the exec drops that memory)"
	# the same 16 MiB on node 1 in two cgroups narrowed to node 0, one task
	# named as runc's init is, the other not: only the second makes a record
	cp "$MEMHOG" "$T/runc:[2:INIT]"
	id1=1111111111111111111111111111111111111111111111111111111111111111
	id2=2222222222222222222222222222222222222222222222222222222222222222
	for k in 1 2; do
		d=$(mkcg "docker/$(eval echo "\$id$k")" 0-1)
		bin=$T/runc:[2:INIT]
		[ "$k" = 1 ] || bin=$MEMHOG
		# shellcheck disable=SC2016
		setsid bash -c 'echo $$ >"$1/cgroup.procs" && exec numactl --membind=1 "$2" -m 16 -r "$3"' \
			_ "$d" "$bin" "$T/rd/init$k" </dev/null >/dev/null 2>&1 &
		wait_for "stand-in $k" 60 ready "init$k"
	done
	expect_eq "the first stand-in's comm" "$(cat "/proc/$(cat "$T/rd/init1")/comm")" "runc:[2:INIT]"
	api "/v1/containers/$id1" >/dev/null # samples them now, with their memory
	api "/v1/containers/$id2" >/dev/null
	set_mems "$(cg_root)/docker/$id1" 0
	set_mems "$(cg_root)/docker/$id2" 0
	recs() { api "/v1/migrations?container=$1" | jq '.migrations | length'; }
	control() { [ "$(recs "$id2")" -ge 1 ]; }
	wait_for "the other's record" 60 control
	expect_on "$(cat "$T/rd/init1")" 0 "(runc's init, moved by the kernel)"
	expect_on "$(cat "$T/rd/init2")" 0 "(the other, moved by the kernel)"
	expect_eq "records of runc's init narrowed" "$(recs "$id1")" 0
fi

say "docker update --cpuset-mems 1 nf-b is followed"
dk update --cpuset-mems 1 nf-b >/dev/null
rec_ok() {
	api "/v1/migrations?container=$idb" |
		jq -e '[.migrations[] | select(.to == "1" and .result == "ok")] | length == 1' >/dev/null
}
wait_for "nf-b's migration record" 120 rec_ok
expect_on "$pb" 1 "after docker update"
api "/v1/migrations?container=$idb" | jq -c '.migrations[] | select(.to == "1") |
	{result, moved_bytes, kernel_moved_bytes, duration_ms}' >"$T/rec"
say "record: $(cat "$T/rec")"
if $v2; then
	expect_ge "kernel_moved MiB (v2: docker's write moved it)" \
		$(($(jq .kernel_moved_bytes "$T/rec") / MiB)) 100
else
	expect_ge "moved MiB (v1: the agent moved it)" $(($(jq .moved_bytes "$T/rec") / MiB)) 100
fi

say "no dockerd to ask: names are null, and the log says why"
kill "$AGENT"
wait "$AGENT" || true
start_agent --docker-socket "$T/none.sock" --reconcile-interval 3600
said() { grep -q "dockerd at $T/none.sock did not answer" "$T/agent.log"; }
wait_for "the log to say dockerd did not answer" 30 said
expect_eq "nf-b's name without dockerd" "$(api "/v1/containers/$idb" | jq -r .name)" null
say "log: $(grep -m1 'did not answer' "$T/agent.log" | cut -c1-160)"
say "PASS"

#!/bin/bash
# vm: --cgroup v1
# Processes that exit while a migration runs count as exited, not failed, and
# the survivors are moved. The big process goes first, by move_pages at
# 64 MiB/s (5 s at least; tasks under 16 MiB wait for the sweeps after it);
# the small ones exit 3 s after they are ready, while it is being moved (a
# loaded emulator may take a second or more to start numafollow, hence not
# sooner).
. tests/vm/lib.sh
need_nodes 2

cg=$(mkcg nf-exit 0)
seen=0
for attempt in 1 2 3; do
	set_mems "$cg" 0
	big=$(start_hog "$cg" -m 320)
	for _ in 1 2 3 4; do start_hog "$cg" -m 8 -x 3000 >/dev/null & done
	wait
	set_mems "$cg" 1
	"$NF" migrate --json --max-rate 64 nf-exit >"$T/r.json" || fail "migrate exited $?: $(cat "$T/r.json")"
	jq -c '{tasks, tasks_migrated, tasks_exited, tasks_failed, residual_bytes, errors}' "$T/r.json"
	expect_eq tasks_failed "$(jq -r .tasks_failed "$T/r.json")" 0
	expect_eq errors "$(jq -c .errors "$T/r.json")" "[]"
	expect_eq "migrated + exited" \
		"$(jq -r '.tasks_migrated + .tasks_exited' "$T/r.json")" "$(jq -r .tasks "$T/r.json")"
	expect_on "$big" 1
	kill "$big"
	if [ "$(jq -r .tasks_exited "$T/r.json")" -ge 1 ]; then
		seen=1
		break
	fi
	say "attempt $attempt: no task exited mid-way; again"
	sleep 0.5
done
[ "$seen" = 1 ] || fail "no attempt saw a task exit during the migration"

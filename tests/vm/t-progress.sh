#!/bin/bash
# vm: --cgroup v2
# The progress line of `numafollow move` (and migrate: the same code), in a real terminal
# (tmux: the line is redrawn in place, then left with the time taken); none
# when stderr is not a terminal, with --json or --quiet; --progress draws it
# anyway.
. tests/vm/lib.sh
need_nodes 2
command -v tmux >/dev/null || skip "tmux not installed"
echo 0 >/proc/sys/kernel/numa_balancing 2>/dev/null || true
. tests/vm/probe-lib.sh
cg=$(mkcg nfp 0)
start_probe "$cg" -P -m 128
export TMUX_TMPDIR=$T
pane() { tmux capture-pane -p -t nf; }
# the screen shows a progress line: phase, bar, MiB of MiB, rate, time left
drawing() { pane | grep -Eq '^move +\[#*\.*\] +[0-9.]+/[0-9.]+ MiB +[0-9]+ MiB/s +[0-9:-]+ left'; }
finished() { pane | grep -q '^exit='; }

say "move in a terminal, at 32 MiB/s so that it lasts about 4 s"
tmux new-session -d -s nf -x 150 -y 40 "$NF move --max-rate 32 --to 1 nfp; echo exit=\$?; sleep 600"
wait_for "a progress line" 60 drawing
pane | grep -E '^move ' | head -n 1
wait_for "the move's end" 120 finished
pane | grep -E 'in all|^moved|^exit='
# the whole move, with its time: a full bar, done = total (128 MiB and the
# probe's own pages)
last=$(pane | grep -E '^done +\[#{24}\] +[0-9.]+/[0-9.]+ MiB +[0-9]+ MiB/s +[0-9:]+ in all') ||
	fail "the last progress line is not the whole move with its time: $(pane | grep -E 'MiB/s')"
read -r done total < <(sed -E 's|.*\] +([0-9.]+)/([0-9.]+) MiB.*|\1 \2|' <<<"$last")
expect_eq "moved of to move (MiB)" "$done" "$total"
expect_ge "to move (MiB)" "${total%.*}" 128
pane | grep -q '^exit=0' || fail "move did not exit 0"
expect_on "$PID" 1
tmux kill-session -t nf

say "--quiet in a terminal: no line"
tmux new-session -d -s nf -x 150 -y 40 "$NF move --quiet --max-rate 64 --to 0 nfp; echo exit=\$?; sleep 600"
wait_for "the move's end" 120 finished
! pane | grep -q 'MiB/s' || fail "--quiet drew: $(pane)"
tmux kill-session -t nf

say "--json in a terminal: no line"
tmux new-session -d -s nf -x 150 -y 40 "$NF move --json --max-rate 64 --to 1 nfp >$T/j.json; echo exit=\$?; sleep 600"
wait_for "the move's end" 120 finished
! pane | grep -q 'MiB/s' || fail "--json drew: $(pane)"
jq -e .moved_bytes "$T/j.json" >/dev/null || fail "--json's output is not JSON"
tmux kill-session -t nf
"$NF" move --quiet --to 0 nfp >/dev/null || fail "move back exited $?"

say "not a terminal: nothing on stderr; --progress: the lines anyway"
"$NF" move --max-rate 64 --to 1 nfp >"$T/out" 2>"$T/err" || fail "move exited $?"
[ ! -s "$T/err" ] || fail "stderr was not a terminal, yet: $(cat -v "$T/err")"
"$NF" move --json --progress --max-rate 64 --to 0 nfp >"$T/out" 2>"$T/err" || fail "move exited $?"
jq -e .moved_bytes "$T/out" >/dev/null || fail "--json's output is not JSON"
tr '\r' '\n' <"$T/err" | grep -Eq '^move +\[' || fail "--progress drew no line: $(cat -v "$T/err")"
tr '\r' '\n' <"$T/err" | grep -c 'MiB/s' | xargs -I{} echo "-- {} redraws"
expect_on "$PID" 0
echo PASS

#!/bin/bash
# vm: --cgroup v2
# The CLI through the agent by name: an id, an id's prefix, a name,
# namespace/pod/container; an ambiguous or unknown one exits 2 and lists the
# candidates. move --via-agent; history --follow prints records as they end
# (the event stream); top in a real terminal (tmux) over TCP with the token,
# live progress, Ctrl-Z gives the terminal back and fg the view, q quits;
# plain lines when stdout is not a terminal.
. tests/vm/lib.sh
need_nodes 2
command -v tmux >/dev/null || skip "tmux not installed"

web=$(mkcg nf-cli/web 0)
wpid=$(start_hog "$web" -m 128)
db=$(mkcg nf-cli/db 0)
dpid=$(start_hog "$db" -m 4)
echo s3cret >"$T/token" && chmod 600 "$T/token"
export NUMAFOLLOW_SOCKET=$SOCK
start_agent --cgroup-root /nf-cli --max-rate 32 --listen 127.0.0.1:18081 --token-file "$T/token"
api /v1/containers -X POST -d "{\"id\": \"abc123def\", \"pid\": $wpid, \"name\": \"web\",
	\"annotations\": {\"io.kubernetes.cri.sandbox-name\": \"shop\", \"io.kubernetes.cri.sandbox-namespace\": \"prod\"}}" >/dev/null
api /v1/containers -X POST -d "{\"id\": \"abc999\", \"pid\": $dpid, \"name\": \"db\"}" >/dev/null

say "names"
rc=0; "$NF" migrate --via-agent ab 2>"$T/err" || rc=$?
expect_eq "exit of an ambiguous prefix" "$rc" 2
grep -q "'ab' is ambiguous" "$T/err" && grep -q "abc123def prod/shop/web" "$T/err" && grep -q "abc999 db" "$T/err" ||
	fail "the candidates are not listed: $(cat "$T/err")"
rc=0; "$NF" history nope 2>"$T/err" || rc=$?
expect_eq "exit of an unknown name" "$rc" 2
grep -q "no container 'nope'; the agent knows: " "$T/err" || fail "unknown: $(cat "$T/err")"
cat "$T/err"

"$NF" history --follow --json prod/shop/web >"$T/follow" 2>"$T/follow.err" &
FOLLOW=$!
following() { [ "$(api /v1/status | jq .events.clients)" = 1 ]; }
wait_for "history --follow to follow" 30 following

"$NF" migrate --via-agent db >/dev/null || fail "migrate --via-agent db exited $?"
"$NF" move --via-agent --to 1 abc12 >"$T/move" || fail "move --via-agent by prefix exited $?"
cat "$T/move"
expect_on "$wpid" 1
printed() { [ -s "$T/follow" ] && jq -e 'select(.container == "abc123def" and .trigger == "move" and .result == "ok")' "$T/follow" >/dev/null; }
wait_for "history --follow to print the move" 60 printed
! jq -e 'select(.container == "abc999")' "$T/follow" >/dev/null || fail "history --follow printed another container's record"
"$NF" history web | grep -q "abc123def.*move" || fail "history web lacks the move"

say "top in a terminal, over TCP with the token"
export TMUX_TMPDIR=$T
pane() { tmux capture-pane -p -t top; }
# in an interactive shell, for Ctrl-Z
tmux new-session -d -s top -x 160 -y 30 "bash --norc --noprofile -i"
# top alone in its job: bash reports the job stopped when top is (a subshell
# around it would stop, and be reported, before top has left its screen)
tmux send-keys -t top "$NF top --interval 1 --url http://127.0.0.1:18081 --token-file $T/token" Enter
listed() { pane | grep -Eq '^abc123def +prod/shop/web +1 .* [0-9]+\[#+\.*\] *[0-9.]+'; }
wait_for "top to list web with its bars" 60 listed
"$NF" move --via-agent --to 0 web >/dev/null &
MOVE=$!
moving() { pane | grep -Eq '^ +[0-9]+ abc123def +move .*running +(move|sweep|measure|widen|narrow) +\[[#.]+\] +[0-9.]+/[0-9.]+ +MiB'; }
wait_for "top to show the move's progress" 60 moving
pane | grep -E 'abc123def' || true
wait "$MOVE" || fail "the second move exited $?"
tmux send-keys -t top C-z
# the pane, for a failure's message
seen() { pane >"$T/pane" && grep -q "$1" "$T/pane"; }
wait_term() { # WHAT REGEX
	local end=$((SECONDS + 120))
	until seen "$2"; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out waiting for $1; the terminal:"$'\n'"$(cat "$T/pane")"
		sleep 0.1
	done
}
wait_term "Ctrl-Z to stop top" 'Stopped'
# (bash restores the tty's modes itself; not the screen nor the cursor)
expect_eq "the alternate screen while top is stopped" "$(tmux display -p -t top '#{alternate_on}')" 0
expect_eq "the cursor shown while top is stopped" "$(tmux display -p -t top '#{cursor_flag}')" 1
tmux send-keys -t top fg Enter
wait_term "top's view back after fg" '^numafollow top'
expect_eq "the alternate screen after fg" "$(tmux display -p -t top '#{alternate_on}')" 1
# q alone quits: the keys are read raw again (bash's fg gives a cooked tty)
tmux send-keys -t top q
wait_term "q to quit top" '^bash.*# *$'
tmux send-keys -t top 'echo exit=$?' Enter
wait_term "top's exit status" '^exit=0$'
tmux kill-session -t top

say "top, not a terminal: plain lines"
"$NF" top -n 2 --interval 1 >"$T/top"
expect_eq "frames" "$(grep -c '^numafollow top' "$T/top")" 2
grep -q '^abc999 ' "$T/top" || fail "top -n lacks db: $(cat "$T/top")"
! grep -q $'\033' "$T/top" || fail "escape sequences when stdout is not a terminal"

kill "$AGENT"; wait "$AGENT" || fail "numafollowd exited $?"
AGENT=
rc=0; wait "$FOLLOW" || rc=$?
expect_eq "history --follow's exit when the agent stops" "$rc" 3
cat "$T/follow.err"
echo PASS

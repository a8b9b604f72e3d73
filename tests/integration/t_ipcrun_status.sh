#!/bin/bash
# `ipcrun status` and `ipcrun top` on a graph started by another shell (a
# background job here): the list of runs holds it; `status RUN` shows every
# kernel and channel; `--json` parses (jq) and holds its kernels, channels and
# live rates; `top` on a terminal (tmux) shows rates, marks the bottleneck,
# and quits on q. --stats after a second Ctrl-C still counts what moved.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_status ($BUILD)"
jqc() { jq -e "$@" >/dev/null; }

# src -> mid -> sink, the sink slow (2 ms a record): the bottleneck
sed -e "s|@PIDFILE@|$T/pid|" -e "s|@DELAY@|2000|" -e "s|u64:50,|u64:0,|" \
	-e 's/^\[graph\]$/[graph]\nname = statustest/' "$INI/endless.ini" >"$T/status.ini"
start_ipcrun status --stats "$T/status.ini"
wait_for 5000 test -s "$T/pid" || not_ok "the graph never ran"

"$IPCRUN" status >"$T/list.out" 2>&1
check "status: lists the run with its name, topology, pid and state" \
	grep -Eq "^statustest +$T/status.ini +$IPID +[0-9]+s +running +3 +0$" "$T/list.out"
"$IPCRUN" status --json >"$T/list.json"
check "status --json: a JSON array holding the run" \
	jqc --argjson pid "$IPID" '.[] | select(.pid == $pid and .name == "statustest" and .kernels == 3)' "$T/list.json"

"$IPCRUN" status statustest >"$T/one.out" 2>&1
check "status RUN: every kernel with its state" \
	grep -Eq "^sink +p3 +[0-9]+ +[0-9.]+s +running" "$T/one.out"
check "status RUN: every channel" \
	test "$(grep -Ec '^(src\.out->mid\.in|mid\.out->sink\.in) ' "$T/one.out")" -eq 2
check "status RUN: the slow sink is the bottleneck" \
	grep -Eq "^mid\.out->sink\.in .*<- bottleneck$" "$T/one.out"
"$IPCRUN" status "$IPID" >"$T/bypid.out" 2>&1
check "status PID: the same run" grep -q "^run statustest " "$T/bypid.out"

"$IPCRUN" status --json statustest >"$T/one.json"
check "status --json RUN: parses" jqc . "$T/one.json"
check "status --json RUN: its three kernels, by name, with pids and states" \
	jqc '[.kernels[] | select(.pid > 0 and (.state | length) > 0) | .name] == ["src", "mid", "sink"]' "$T/one.json"
check "status --json RUN: its two channels, with records moving" \
	jqc '[.channels[] | select(.records_per_s > 0 and .sent > 0)] | length == 2' "$T/one.json"
check "status --json RUN: fill and time blocked of each channel" \
	jqc '.channels | all(has("fill") and has("blocked_send_s") and has("blocked_recv_s") and has("bytes_per_s"))' "$T/one.json"

"$IPCRUN" status nosuchrun >/dev/null 2>"$T/nosuch.err"
check "status of an unknown run: exit 1, and the runs that exist" \
	grep -q "^ipcrun: no run 'nosuchrun' of this user is running (running: statustest \[$IPID\])$" "$T/nosuch.err"

"$IPCRUN" top -n 2 -d 0.3 statustest >"$T/top.out" 2>&1
check "top without a terminal: two screens" test "$(grep -c '^ipcrun top - ' "$T/top.out")" -eq 2

# top on a terminal
# (a server of its own, in the foreground: it needs neither the user's
# config nor daemon(), which fails when /dev/null is not the device)
: >"$T/tmux.conf"
TM="tmux -S $T/tmux.sock -f $T/tmux.conf"
if command -v tmux >/dev/null; then
	$TM -D </dev/zero >"$T/tmux.log" 2>&1 &
	TMPID=$!
	wait_for 5000 test -S "$T/tmux.sock" || not_ok "tmux server did not start: $(cat "$T/tmux.log")"
	$TM new-session -d -x 132 -y 30 \
		"env IPCRUN_STATE_DIR=$IPCRUN_STATE_DIR $IPCRUN top -d 0.3 statustest; echo top-exit=\$?; sleep 30" ||
		not_ok "tmux could not start a session (it needs /dev/null: $(ls -l /dev/null))"
	screen() { $TM capture-pane -p -e >"$T/screen"; }
	rates() { screen; grep -Eq '^src\.out->mid\.in +[0-9.]+[kM]? +[0-9.]+[kM]? ' "$T/screen" &&
		grep -q '^ipcrun top - ' "$T/screen"; }
	check "top on a terminal: refreshes with the channels' rates" wait_for 5000 rates
	check "top on a terminal: the bottleneck in reverse video" \
		grep -q $'\033\\[7mmid\\.out->sink\\.in .*<- bottleneck' "$T/screen"
	$TM send-keys q
	quit() { $TM capture-pane -p >"$T/screen"; grep -q '^top-exit=0$' "$T/screen"; }
	check "top on a terminal: q quits, exit 0, the terminal restored" wait_for 3000 quit
	$TM kill-server 2>/dev/null
	wait "$TMPID"
else
	not_ok "tmux is missing (scripts/deps.sh test installs it)"
fi

# a second Ctrl-C kills the graph: --stats still counts what moved
kill -INT "$IPID"
wait_for 2000 grep -q "stopping the graph" "$E"
kill -INT "$IPID"
await_ipcrun 5000
check "second Ctrl-C: exit 130" test "$RC" -eq 130
check "second Ctrl-C: --stats counts the records that moved" \
	awk '$1 == "src.out->mid.in" && $2 > 0 {ok = 1} END {exit !ok}' "$E"
check "the run is no longer listed" bash -c "! ls '$IPCRUN_STATE_DIR' | grep -q sock"
"$IPCRUN" status statustest >/dev/null 2>&1
check "status of the ended run: exit 1" test $? -eq 1
check_clean "$H" "status"

# a run whose ipcrun was killed with -9 leaves its socket: status drops it
start_ipcrun killed "$T/status.ini"
wait_for 5000 bash -c "ls '$IPCRUN_STATE_DIR' | grep -q 'sock$'" || not_ok "the run never listed itself"
kill -9 "$IPID"
wait "$IPID" 2>/dev/null
"$IPCRUN" status >"$T/afterkill.out" 2>&1
check "a killed run is not listed" grep -qx "no runs" "$T/afterkill.out"
check "its socket is gone" bash -c "! ls '$IPCRUN_STATE_DIR' | grep -q 'sock$'"
"$IPCRUN" --gc >/dev/null 2>&1
check_clean "$H" "killed run, after --gc"

finish

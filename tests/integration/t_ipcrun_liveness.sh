#!/bin/bash
# Graphs that cannot run or cannot finish. --check refuses a two-kernel cycle
# nothing feeds and a self-loop (exit 2, file:line). At run time the
# diamond of diamond.ini (two branches meeting at a two-input function
# kernel, one branch holding everything back, capacity 64) stops by itself
# after stall_timeout, exit 1, naming every waiting kernel, its channel and
# whether it is full or empty, and the connection to give room to. With the
# watchdog off, a first Ctrl-C that cannot drain escalates by itself, says
# so, and exits 130. Nothing of any run survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_liveness ($BUILD)"

cat >"$T/cycle.ini" <<'INI'
[kernel:src]
library = libtestkernels.so
function = t_seq
args = 10
[kernel:sink]
library = libtestkernels.so
function = t_count
[kernel:a]
library = libtestkernels.so
function = t_pass
[kernel:b]
library = libtestkernels.so
function = t_pass
[connections]
connect = src.out -> sink.in
connect = a.out -> b.in
connect = b.out -> a.in
INI
"$IPCRUN" --check "$T/cycle.ini" >"$T/cycle.out" 2>"$T/cycle.err"
RC=$?
check "a two-kernel cycle: --check exits 2" test "$RC" -eq 2
check "a two-kernel cycle: file, line and why" \
	grep -q "cycle.ini:16: error: kernels 'a', 'b' form a cycle that nothing outside it feeds" "$T/cycle.err"

cat >"$T/self.ini" <<'INI'
[kernel:src]
library = libtestkernels.so
function = t_seq
args = 10
[kernel:loop]
library = libtestkernels.so
function = t_pass
[kernel:sink]
library = libtestkernels.so
function = t_count
[connections]
connect = src.out -> sink.in
connect = loop.out -> loop.in
INI
"$IPCRUN" "$T/self.ini" >"$T/self.out" 2>"$T/self.err"
RC=$?
check "a self-loop: exit 2 before anything starts" test "$RC" -eq 2
check "a self-loop: file, line and why" \
	grep -q "self.ini:13: error: 'loop.out -> loop.in' feeds kernel 'loop' its own output" "$T/self.err"

for mode in "" --threads; do
	what="the diamond${mode:+ $mode}"
	t0=$(now_ms)
	run_ipcrun dia $mode "$INI/diamond.ini"
	ms=$(( $(now_ms) - t0 ))
	check "$what: stops by itself, exit 1, within 6 s of a 1 s stall_timeout ($ms ms)" \
		test "$RC" -eq 1 -a "$ms" -lt 6000
	check "$what: says it is stalled" \
		grep -q "^ipcrun: the graph is stalled: no channel moved for 1.0 s and every running kernel waits on a channel:$" "$E"
	check "$what: names the join waiting on its empty input" \
		grep -q "^ipcrun:   kernel 'join' (process 'main') waits to receive from 'in1': channel 5 'hold.out -> join.in1' (line 48) is empty (0 of 64)$" "$E"
	check "$what: names the full branch" \
		grep -q "^ipcrun:   kernel 'sq' (process '[a-z0-9]*') waits to send on 'out': channel 4 'sq.out -> join.in0' (line 47) is full (6[34] of 64)$" "$E"
	check "$what: names the fix: capacity= on sq.out -> join.in0" \
		grep -q "^ipcrun: likely fix: 'sq.out -> join.in0' (line 47) is full .* 'connect = sq.out -> join.in0 capacity=N' with N larger than 64$" "$E"
	check_clean "$H" "$what"
done

run_ipcrun roomy -D CAP=2000 "$INI/diamond.ini"
check "the diamond with room (capacity 2000): exit 0, every sum" \
	test "$RC" -eq 0 -a "$(cat "$T/roomy.out")" = "count=1000 sum=333333000"

# A source that ignores ipc_stopping feeds the diamond: Ctrl-C cannot drain
# it, whenever it comes; the watchdog is off, so only the escalation ends it.
# --progress: its first line (a plain line into this file, 2 s after the
# kernels started) says the graph runs, so that the Ctrl-C does not come
# before it (which quits)
start_ipcrun wedge --progress -D STALL=0 -D N=1000000000000 "$INI/diamond.ini"
wait_for 10000 grep -q '^ipcrun: *[0-9.]*s | ' "$E" ||
	not_ok "Ctrl-C escalation: the graph never ran"
kill -INT "$IPID"
t0=$(now_ms)
await_ipcrun 8000
ms=$((EXIT_MS - t0))
check "Ctrl-C that cannot drain: escalates by itself, exit 130, within 5 s ($ms ms)" \
	test "$RC" -eq 130 -a "$ms" -lt 5000
tr '\r' '\n' <"$E" | sed 's/\x1b\[K//g' >"$T/wedge.lines"
check "Ctrl-C that cannot drain: says so" \
	grep -q "^ipcrun: the graph is not draining (no channel moved for 2.0 s after Interrupt, every kernel waiting on a channel): killing it$" "$T/wedge.lines"
check_clean "$H" "Ctrl-C escalation"

# stall_timeout values
"$IPCRUN" --check -D stall_timeout=soon "$INI/diamond.ini" >/dev/null 2>"$T/st.err"
RC=$?
check "stall_timeout=soon: exit 2 naming the key" \
	test "$RC" -eq 2 -a -n "$(grep "stall_timeout 'soon' must be a duration" "$T/st.err")"

finish

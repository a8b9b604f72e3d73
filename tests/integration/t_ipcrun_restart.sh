#!/bin/bash
# Restart policies, under each of the four shm/semaphore backends:
#  - a kernel whose process crashes once (holding one record) under
#    restart = on-failure is restarted, takes its input over where the dead
#    one stopped, and the graph completes with exit 0: every record but the
#    lost one arrives, and the lost one is counted;
#  - a crash loop gives up after restart_max restarts: exit 1 naming the
#    kernel, downstream sees IPC_TX_ABORTED, and the first line of the
#    report names the crashed kernel;
#  - `ipcrun status --json` and --stats count restarts and lost records.
# Nothing of any run survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_restart ($BUILD)"
first_is() { first_report_line "$1" | grep -Eq "$2"; }

sed "s|@MARK@|$T/mark|" "$INI/restart_once.ini" >"$T/once.ini"
"$IPCRUN" --check "$T/once.ini" >"$T/check.out" 2>&1
check "--check shows the restart policy" \
	grep -qx "  process p2: 1 thread, restart = on-failure (at most 5 within 60 s)" "$T/check.out"

for combo in posix:posix posix:sysv sysv:posix sysv:sysv; do
	export IPC_SHM=${combo%:*} IPC_SEM=${combo#*:}
	b="[$combo]"

	rm -f "$T/mark"
	sed "s|@MARK@|$T/mark|" "$INI/restart_once.ini" >"$T/once.ini"
	run_ipcrun once --stats "$T/once.ini"
	check "$b crash once under on-failure: exit 0" test "$RC" -eq 0
	check "$b crash once: the crash is reported first, naming the kernel" \
		first_is "$T/once.err" "^ipcrun: kernel 'mid' \(process 'p2', pid [0-9]+\) crashed: signal 11 "
	check "$b crash once: the restart is said, with the record lost" \
		grep -q "^ipcrun: restarting process 'p2' (kernel 'mid'; restart = on-failure, 1 of at most 5 within 60 s); 1 record it held lost$" "$T/once.err"
	# 0..99999 less the record held at the crash (1000): nothing else lost,
	# nothing twice
	check "$b crash once: every other record arrives, once" \
		grep -qx "count=99999 sum=4999949000" "$T/once.out"
	check "$b crash once: the count of lost records at the end" \
		grep -qx "ipcrun: process 'p2' was restarted 1 time (restart = on-failure); 1 record lost" "$T/once.err"
	check "$b crash once: --stats counts the restart" \
		grep -Eq "^p2 +on-failure +1 +1$" "$T/once.err"
	check "$b crash once: no failure reported at the end" \
		bash -c "! grep -q 'consequence\|failed:\|aborted' '$T/once.err'"
	check_clean "$H" "$b crash once"

	sed "s|@STAMP@|$T/stamp|" "$INI/restart_loop.ini" >"$T/loop.ini"
	run_ipcrun loop "$T/loop.ini"
	check "$b crash loop: exit 1" test "$RC" -eq 1
	check "$b crash loop: gives up after restart_max, naming the kernel" \
		grep -q "^ipcrun: process 'p2' (kernel 'crash') failed again: 2 restarts within 60 s already (restart_max = 2); giving up$" "$T/loop.err"
	check "$b crash loop: three crashes, two restarts" \
		test "$(grep -c "crashed: signal 11 (SIGSEGV" "$T/loop.err")" -eq 3 -a \
		     "$(grep -c "^ipcrun: restarting process 'p2'" "$T/loop.err")" -eq 2
	check "$b crash loop: the first line names the crashed kernel" \
		first_is "$T/loop.err" "^ipcrun: kernel 'crash' \(process 'p2', pid [0-9]+\) crashed: "
	check "$b crash loop: downstream sees IPC_TX_ABORTED only once it gives up" \
		test "$(grep -c "^sink: input ended with 3 (aborted)$" "$T/loop.err")" -eq 1
	check "$b crash loop: the records the three processes passed on arrived" \
		grep -qx "count=15 sum=105" "$T/loop.out"
	check_clean "$H" "$b crash loop"
done
unset IPC_SHM IPC_SEM

# restart = always: a kernel that returns 1 once is restarted too (nothing
# held, nothing lost); under on-failure the same failure stops the graph
rm -f "$T/mark"
sed -e "s|@MARK@|$T/mark|" -e 's/^function = t_segv_once$/function = t_fail_once/' \
	-e 's/^restart = on-failure$/restart = always/' "$INI/restart_once.ini" >"$T/always.ini"
run_ipcrun always "$T/always.ini"
check "always, a kernel returning 1 once: exit 0" test "$RC" -eq 0
check "always: the failure, then the restart" \
	grep -q "^ipcrun: restarting process 'p2' (kernel 'mid'; restart = always, 1 of at most 5 within 60 s); 0 records it held lost$" "$T/always.err"
check "always: every record arrives, once" grep -qx "count=100000 sum=4999950000" "$T/always.out"
check_clean "$H" "always"
rm -f "$T/mark"
sed -e 's/^restart = always$/restart = on-failure/' "$T/always.ini" >"$T/onfail.ini"
run_ipcrun onfail "$T/onfail.ini"
check "on-failure, a kernel returning 1: not restarted, exit 1" \
	test "$RC" -eq 1 -a "$(grep -c "restarting" "$T/onfail.err")" -eq 0
check "on-failure, a kernel returning 1: named first" \
	test "$(first_report_line "$T/onfail.err")" = "ipcrun: kernel 'mid' (process 'p2') failed: returned 1"
check_clean "$H" "on-failure, returned 1"

# status counts restarts of a run that goes on
rm -f "$T/mark"
sed -e "s|@PIDFILE@|$T/pid|" -e "s|@DELAY@|1000|" -e "s|u64:50,|u64:100,|" \
	-e 's/^\[graph\]$/[graph]\nname = restarting/' \
	-e "s/^function = t_pass$/function = t_segv_once\nargs = u64:20, str:$(printf '%s' "$T/mark" | sed 's/[\/&]/\\&/g')/" \
	-e 's/^\[process:p2\]$/[process:p2]\nrestart = on-failure/' \
	"$INI/endless.ini" >"$T/live.ini"
start_ipcrun live "$T/live.ini"
restarted() { grep -q "^ipcrun: restarting process 'p2'" "$E"; }
check "live run: restarted" wait_for 10000 restarted
"$IPCRUN" status --json restarting >"$T/live.json" 2>&1
check "status --json: the restart and the lost record counted" \
	jq -e '.restarts == 1 and .lost_records == 1 and (.processes[] | select(.name == "p2") | .restarts == 1)' "$T/live.json" >/dev/null
"$IPCRUN" status restarting >"$T/live.txt" 2>&1
check "status: the kernel says it was restarted" \
	grep -Eq "^mid +p2 .*, restarted 1$" "$T/live.txt"
kill -INT "$IPID"
await_ipcrun 5000
check "live run: Ctrl-C after the restart drains: exit 130" test "$RC" -eq 130
check_clean "$H" "live run"

finish

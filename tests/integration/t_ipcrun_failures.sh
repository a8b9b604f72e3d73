#!/bin/bash
# Kernels that fail: one returning non-zero, one that segfaults mid-run, one
# whose process is killed with -9 mid-run. ipcrun exits 1 naming the kernel,
# its process and the code or signal; the rest of the graph stops within 1 s
# (measured over several rounds: from the fault, or the kill, to ipcrun's
# exit, which comes after every process is reaped); downstream sees
# IPC_TX_ABORTED and upstream -EPIPE; nothing of any run survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh
ROUNDS=${IPCRUN_TEST_ROUNDS:-5}
LIMIT_MS=1000

echo "t_ipcrun_failures ($BUILD)"

run_ipcrun fail "$INI/fail.ini"
check "non-zero return: exit 1" test "$RC" -eq 1
check "non-zero return: named with process and code, as failed (not died)" \
	grep -q "^ipcrun: kernel 'bad' (process 'p2') failed: returned 3$" "$T/fail.err"
check "non-zero return: said once" \
	test "$(grep -c "kernel 'bad'" "$T/fail.err")" -eq 1
check_clean "$H" "non-zero return"

worst=0
times=()
for r in $(seq "$ROUNDS"); do
	stamp=$T/stamp.$r
	sed -e "s|@STAMP@|$stamp|" -e "s|@PIDFILE@|$T/src.pid.$r|" "$INI/segv.ini" >"$T/segv.ini"
	run_ipcrun segv "$T/segv.ini"
	end=$(now_ms)
	if [ "$RC" -ne 1 ] || [ ! -s "$stamp" ]; then
		not_ok "segfault round $r: exit $RC, stamp $(cat "$stamp" 2>/dev/null)"
		sed 's/^/      /' "$T/segv.err"
		continue
	fi
	ms=$(( end - $(cat "$stamp") / 1000000 ))
	times+=("$ms")
	[ "$ms" -gt "$worst" ] && worst=$ms
	grep -Eq "^ipcrun: kernel 'crash' \(process 'p2', pid [0-9]+\) crashed: signal 11 \(Segmentation fault\) at address 0x10 in t_segv\+0x[0-9a-f]+ \(libtestkernels\.so\+0x[0-9a-f]+\)$" \
		"$T/segv.err" || { not_ok "segfault round $r: not named"; sed 's/^/      /' "$T/segv.err"; }
	first_report_line "$T/segv.err" | grep -Eq "^ipcrun: kernel 'crash' \(process 'p2', pid [0-9]+\) crashed: signal 11 \(SIGSEGV, Segmentation fault\) at address 0x10 in t_segv\+" ||
		{ not_ok "segfault round $r: the first line does not name the crashed kernel"; sed 's/^/      /' "$T/segv.err"; }
	grep -Eq "^ipcrun:     #0 t_segv\+0x[0-9a-f]+ \(libtestkernels\.so" "$T/segv.err" ||
		not_ok "segfault round $r: no backtrace from the crashed kernel"
	grep -q "^ipcrun:   consequence: kernel 'sink' (process 'p3') failed: returned 1$" "$T/segv.err" ||
		not_ok "segfault round $r: the sink's failure is not marked as a consequence"
	grep -q "^sink: input ended with 3 (aborted)$" "$T/segv.err" ||
		not_ok "segfault round $r: downstream did not see IPC_TX_ABORTED"
	clean_now "$H" "$E" ||
		not_ok "segfault round $r: left behind: $(leftovers "$H" "$E")"
done
echo "       segfault -> exit (ms): ${times[*]}"
check "segfault: exit 1, named, downstream aborted, clean, stopped within ${LIMIT_MS} ms in $ROUNDS rounds (worst ${worst} ms)" \
	test "${#times[@]}" -eq "$ROUNDS" -a "$worst" -lt "$LIMIT_MS"

worst=0
times=()
for r in $(seq "$ROUNDS"); do
	pidfile=$T/mid.pid.$r
	sed "s|@PIDFILE@|$pidfile|" "$INI/killmid.ini" >"$T/killmid.ini"
	start_ipcrun killmid "$T/killmid.ini"
	if ! wait_for 10000 test -s "$pidfile"; then
		not_ok "kill -9 round $r: the kernel never ran"
		kill -9 "$IPID"; wait "$IPID"
		continue
	fi
	victim=$(cat "$pidfile")
	t0=$(now_ms)
	kill -9 "$victim"
	await_ipcrun 10000
	ms=$(( EXIT_MS - t0 ))
	times+=("$ms")
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$RC" -eq 1 ] || not_ok "kill -9 round $r: exit $RC"
	grep -Eq "^ipcrun: kernel 'mid' \(process 'p2', pid $victim\) died: killed by signal 9 \(Killed\)$" \
		"$T/killmid.err" || { not_ok "kill -9 round $r: not named"; sed 's/^/      /' "$T/killmid.err"; }
	grep -q "^sink: input ended with 3 (aborted)$" "$T/killmid.err" ||
		not_ok "kill -9 round $r: downstream did not see IPC_TX_ABORTED"
	grep -q "^src: send returned -32 " "$T/killmid.err" ||
		not_ok "kill -9 round $r: upstream did not see -EPIPE"
	grep -q "killed by ipcrun" "$T/killmid.err" &&
		not_ok "kill -9 round $r: a kernel had to be killed: it did not stop by itself"
	clean_now "$H" "$E" ||
		not_ok "kill -9 round $r: left behind: $(leftovers "$H" "$E")"
done
echo "       kill -9 -> exit (ms): ${times[*]}"
check "kernel process killed with -9: exit 1, named, ABORTED downstream, -EPIPE upstream, clean, stopped within ${LIMIT_MS} ms in $ROUNDS rounds (worst ${worst} ms)" \
	test "${#times[@]}" -eq "$ROUNDS" -a "$worst" -lt "$LIMIT_MS"

# A consumer that crashes while its producer still sends: the first line of
# the report names the consumer, whatever its producer makes of the -EPIPE.
sed "s|@STAMP@|$T/cstamp|" "$INI/consumer_crash.ini" >"$T/consumer_crash.ini"
run_ipcrun ccrash "$T/consumer_crash.ini"
check "consumer crash: exit 1" test "$RC" -eq 1
first_is() { first_report_line "$1" | grep -Eq "$2"; }
check "consumer crash: the first line names the crashed consumer" \
	first_is "$T/ccrash.err" "^ipcrun: kernel 'crash' \(process 'p2', pid [0-9]+\) crashed: signal 11 "
check_clean "$H" "consumer crash"

# A source that returns 1: it is named first, as failed; what follows is
# marked as its consequence, and nobody says a producer died.
run_ipcrun srcfail "$INI/source_fails.ini"
check "failed source: exit 1" test "$RC" -eq 1
check "failed source: the first line names it, as failed" \
	test "$(first_report_line "$T/srcfail.err")" = "ipcrun: kernel 'bad' (process 'p1') failed: returned 1"
check "failed source: downstream's failure marked as a consequence" \
	grep -q "^ipcrun:   consequence: kernel 'sq' (process 'p2') failed: returned 1$" "$T/srcfail.err"
check "failed source: no 'producer died'" \
	bash -c "! grep -q 'producer died' '$T/srcfail.err'"
check_clean "$H" "failed source"

finish

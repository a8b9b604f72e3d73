#!/bin/bash
# Stopping a run from outside: SIGINT mid-run drains the graph (every record
# the source sent reaches the sink) and exits 130; SIGTERM exits 143; a
# second SIGINT kills the graph at once (exit 130); `kill -9` of ipcrun takes
# its kernel processes with it, and `ipcrun --gc` (or the next run) removes
# the shared memory the dead run left. Nothing of any run survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_signals ($BUILD)"

# endless.ini with a pid file and a sink pace; starts it, waits until the
# source has sent its first record.
start_endless() { # name delay_us [ipcrun options]
	local name=$1 delay=$2; shift 2
	PIDFILE=$T/$name.pid
	sed -e "s|@PIDFILE@|$PIDFILE|" -e "s|@DELAY@|$delay|" "$INI/endless.ini" \
		>"$T/$name.ini"
	start_ipcrun "$name" "$@" "$T/$name.ini"
	wait_for 10000 test -s "$PIDFILE"
}

for sig in INT TERM; do
	start_endless drain$sig 0
	# let records flow for a while: until the sink has work queued
	kill -$sig "$IPID"
	await_ipcrun 10000
	want=$([ $sig = INT ] && echo 130 || echo 143)
	check "SIG$sig mid-run: exit $want" test "$RC" -eq "$want"
	sent=$(sed -n 's/^sent \([0-9]*\) records$/\1/p' "$T/drain$sig.out")
	got=$(sed -n 's/^slow sink: \([0-9]*\) records$/\1/p' "$T/drain$sig.out")
	check "SIG$sig mid-run: drained, every record sent was received ($sent = $got)" \
		test -n "$sent" -a "$sent" = "$got"
	check "SIG$sig mid-run: no kernel failed" \
		bash -c "! grep -q '^ipcrun: kernel' '$T/drain$sig.err'"
	check_clean "$H" "SIG$sig mid-run"
done

# the sink takes 5 ms a record, with up to 2 x 256 records queued: a drain of
# seconds, which the second SIGINT cuts short
start_endless twice 5000
kill -INT "$IPID"
wait_for 5000 grep -q 'stopping the graph' "$T/twice.err"
t0=$(now_ms)
kill -INT "$IPID"
await_ipcrun 10000
check "second SIGINT: exit 130" test "$RC" -eq 130
check "second SIGINT: kills at once ($(( EXIT_MS - t0 )) ms)" test $(( EXIT_MS - t0 )) -lt 1000
check "second SIGINT: says so" grep -q "killed on the second interrupt" "$T/twice.err"
check_clean "$H" "second SIGINT"

# kill -9 of ipcrun: the kernels die with it, the buffer stays for --gc.
# System V memory, so that only this test's record (IPCRUN_STATE_DIR) leads
# to it: POSIX segments of dead runs are also collected by any other ipcrun
# that happens to start on this machine meanwhile.
kill9() { # name [ipcrun options]
	local name=$1; shift
	start_endless "$name" 0 "$@"
	{ kill -9 "$IPID"; wait "$IPID"; } 2>/dev/null
}
shm_only() { test "$(leftovers "$1" "$2" | grep -cv '^sysv \|^shm ')" -eq 0; }
kill9 k9 -D shm=sysv
check "kill -9 ipcrun: its 3 kernel processes had started" test "$(pids_of "$E" | wc -l)" -eq 3
check "kill -9 ipcrun: every kernel process dies with it" wait_for 2000 shm_only "$H" "$E"
check "kill -9 ipcrun: the buffer is left behind" test -n "$(leftovers "$H" "$E")"
"$IPCRUN" --gc 2>"$T/gc.err"
check "--gc reports the dead run" grep -q "dead run $H" "$T/gc.err"
check_clean "$H" "kill -9 ipcrun, then --gc"
"$IPCRUN" --gc 2>"$T/gc2.err"
check "--gc again: nothing to collect" grep -q "nothing to collect" "$T/gc2.err"

# the same with POSIX memory (found in /dev/shm, by us or any other ipcrun)
kill9 k9p -D shm=posix
check "kill -9 ipcrun (posix): every kernel process dies with it" wait_for 2000 shm_only "$H" "$E"
"$IPCRUN" --gc 2>"$T/gc3.err"
check_clean "$H" "kill -9 ipcrun (posix), then --gc"

# and the next run collects it by itself
kill9 k9b -D shm=sysv
dead=$H dead_err=$E
wait_for 2000 shm_only "$H" "$E"
run_ipcrun next "$INI/pipeline3.ini"
check "the next run succeeds" test "$RC" -eq 0
check "the next run removes what the killed run left" grep -q "dead run $dead" "$T/next.err"
check_clean "$dead" "kill -9 ipcrun, then another run" "$dead_err"
check_clean "$H" "the next run"

finish

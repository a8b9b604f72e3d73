#!/bin/bash
# Where users run ipcrun: a /dev/shm smaller than the buffer (Docker's 64 MB),
# a run in another PID namespace (a container sharing the host's /dev/shm and
# IPC namespace) that the host's `ipcrun --gc` and every new ipcrun must
# leave alone, a state folder that is not the user's own, and waits that
# must not follow the wall clock.
#
# Namespaces and mounts need root: without it those checks are skipped,
# saying so. Every mount is made inside `unshare -m` (a private mount
# namespace that ends with the command): the machine's /dev/shm and /proc are
# never touched.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_robust ($BUILD)"

cat >"$T/seq.ini" <<'INI'
[graph]
buffer = 16M

[process:p1]
[process:p2]

[kernel:src]
library = libtestkernels.so
function = t_seq
args = u64:1000

[kernel:sink]
library = libtestkernels.so
function = t_count

[connections]
connect = src.out -> sink.in
INI
sed -e 's/^args = u64:1000$/&\nprocess = p1/' -e 's/^function = t_count$/&\nprocess = p2/' \
	-i "$T/seq.ini"
sed 's/^buffer = 16M$/&\nshm = sysv/' "$T/seq.ini" >"$T/seq-sysv.ini"

# --- waits never follow the wall clock ----------------------------------------
# (test_robust proves the heap-lock take-over waits through
# sem_clockwait(CLOCK_MONOTONIC); this keeps every other wait honest. A
# line that compares file times, which are wall-clock, says "not a wait".)
realtime=$(grep -rnE 'sem_timedwait *\(|CLOCK_REALTIME *[,)]|gettimeofday *\(|pthread_cond_timedwait *\(|[^_a-z]time *\( *NULL *\)' \
	runtime kernels 2>/dev/null | grep -v 'not a wait')
check "no wait or timeout in the runtime or kernels reads the wall clock" test -z "$realtime"
[ -z "$realtime" ] || echo "$realtime" | sed 's/^/      /'

# --- the state folder must be ours --------------------------------------------
mkdir -m 0777 "$T/open-state"
chmod 0777 "$T/open-state"
IPCRUN_STATE_DIR=$T/open-state "$IPCRUN" --gc >"$T/st1.out" 2>"$T/st1.err"
check "a state folder others can write is refused, named, with its mode" \
	grep -q "state folder $T/open-state is a folder, owner uid $(id -u), mode 0777" "$T/st1.err"
mkdir -m 0700 "$T/real-state"
ln -s "$T/real-state" "$T/link-state"
IPCRUN_STATE_DIR=$T/link-state "$IPCRUN" --no-progress "$T/seq.ini" >"$T/st2.out" 2>"$T/st2.err"
rc=$?
check "a state folder that is a symlink is refused (exit $rc)" \
	grep -q "state folder $T/link-state is a symlink" "$T/st2.err"
check "a refused state folder leaves nothing in it" test -z "$(ls -A "$T/real-state")"

if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
	echo "  skip small /dev/shm and PID namespace checks: they need root (unshare, mount)"
	finish
	exit
fi

# --- a /dev/shm smaller than the buffer ---------------------------------------
# in_small_shm SIZE CMD...: CMD with a tmpfs of SIZE over /dev/shm, in a
# private mount namespace; afterwards what is left there goes to $T/left.
in_small_shm() {
	local size=$1; shift
	unshare -m --propagation private sh -c '
		size=$1 left=$2; shift 2
		mount -t tmpfs -o size=$size,mode=1777 ipc-small /dev/shm || exit 97
		"$@"; rc=$?
		ls -A /dev/shm >"$left"
		exit $rc' sh "$size" "$T/left" "$@"
}
in_small_shm 4m "$IPCRUN" -v --no-progress "$T/seq.ini" >"$T/small.out" 2>"$T/small.err"
rc=$?
check "buffer = 16M on a 4 MB /dev/shm: exit 1 (not SIGBUS), got $rc" test "$rc" -eq 1
check "  names the size asked and the room free" \
	grep -Eq "needs 16\.[0-9] MiB of shared memory, but /dev/shm has only [0-9.]+ [KM]iB free" \
	"$T/small.err"
check "  names the fixes: buffer =, shm = sysv, docker --shm-size" \
	grep -q 'fixes: a smaller buffer (ipcrun: `buffer =`.*`shm = sysv`.*--shm-size' "$T/small.err"
check "  leaves nothing in /dev/shm" test ! -s "$T/left"
H=$(sed -n "s/^libipc: buffer '\(ipcrun\.[0-9]*\.[0-9a-f]*\)' needs .*/\1/p" "$T/small.err")
check_clean "$H" "small /dev/shm" "$T/small.err"
in_small_shm 4m "$IPCRUN" -v --no-progress "$T/seq-sysv.ini" >"$T/sysv.out" 2>"$T/sysv.err"
rc=$?
check "the suggested fix, shm = sysv, runs on the same 4 MB /dev/shm (exit $rc)" \
	grep -q "count=1000 sum=499500" "$T/sysv.out"
check_clean "$(handle_of "$T/sysv.err")" "shm = sysv run" "$T/sysv.err"

# --- a run in another PID namespace -------------------------------------------
# ipcrun as pid 1 of its own PID namespace with its own /proc (as in a
# container), sharing /dev/shm, the IPC namespace and the state folder.
PIDFILE=$T/ns.pid
sed -e "s|@PIDFILE@|$PIDFILE|" -e "s|@DELAY@|200|" "$INI/endless.ini" >"$T/ns.ini"
unshare -p --fork --mount-proc "$IPCRUN" -v --no-progress "$T/ns.ini" \
	>"$T/ns.out" 2>"$T/ns.err" &
UPID=$!
wait_for 10000 test -s "$PIDFILE"
NSRUN=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null | tr -d ' ')
NSH=$(handle_of "$T/ns.err")
check "the namespaced run started (handle $NSH, pid 1 there, $NSRUN here)" \
	test -n "$NSH" -a -n "$NSRUN"
"$IPCRUN" --gc >"$T/gc.out" 2>"$T/gc.err"
"$IPCRUN" -v --no-progress "$T/seq.ini" >"$T/host.out" 2>"$T/host.err"
check "a new run on the host (which cleans up at start) works" \
	grep -q "count=1000 sum=499500" "$T/host.out"
check "--gc on the host does not remove the live run of another PID namespace" \
	test -e "/dev/shm/ipc.$NSH" -o -n "$(ipcs -m | awk -v k="$(sysv_key "$NSH" 0)" '$1 == k')"
check "  nor its record" test -e "$IPCRUN_STATE_DIR/$NSH"
check "  nor says it removed it" eval '! grep -q "dead run $NSH" "$T/gc.err" "$T/host.err"'
kill -INT "$NSRUN"
wait "$UPID"
rc=$?
check "the namespaced run still ran and stopped cleanly on SIGINT (exit $rc)" test "$rc" -eq 130
check "  its sink saw every record its source sent" \
	eval '[ -n "$(sed -n "s/^sent \([0-9]*\) records$/\1/p" "$T/ns.out")" ] &&
	      [ "$(sed -n "s/^sent \([0-9]*\) records$/\1/p" "$T/ns.out")" = \
	        "$(sed -n "s/^slow sink: \([0-9]*\) records$/\1/p" "$T/ns.out")" ]'
# Its kernels' pids are those of its namespace, which died with its pid 1:
# only its shared objects are looked for here.
grep -v '^ipcrun: process ' "$T/ns.err" >"$T/ns.objects"
check_clean "$NSH" "namespaced run" "$T/ns.objects"

# A namespaced run killed with -9 (its whole namespace dies): the host's gc
# proves it dead by the kernel's death marks, not by pids, and removes it.
rm -f "$PIDFILE"
unshare -p --fork --mount-proc "$IPCRUN" -v --no-progress "$T/ns.ini" \
	>"$T/ns2.out" 2>"$T/ns2.err" &
UPID=$!
wait_for 10000 test -s "$PIDFILE"
NSRUN=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null | tr -d ' ')
NSH=$(handle_of "$T/ns2.err")
kill -9 "$NSRUN"
wait "$UPID"
"$IPCRUN" --gc >"$T/gc2.out" 2>"$T/gc2.err"
check "after kill -9 of a namespaced run, the host's --gc removes it" \
	grep -q "dead run $NSH" "$T/gc2.err"
grep -v '^ipcrun: process ' "$T/ns2.err" >"$T/ns2.objects"
check_clean "$NSH" "killed namespaced run" "$T/ns2.objects"

finish

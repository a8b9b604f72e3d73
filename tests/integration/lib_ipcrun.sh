# Helpers for tests/integration/t_ipcrun_*.sh; sourced, with BUILD as $1.
#
# Every run goes through run_ipcrun / start_ipcrun with -v, so that the run's
# buffer handle and kernel process ids are known; check_clean then verifies
# that nothing of that run survives: none of its kernel processes (nor any
# process they exec'd, which carries IPCRUN_HANDLE=<handle>), no /dev/shm
# entry, no System V segment or semaphore set with the handle's keys.

BUILD=${1:-build}
IPCRUN=$BUILD/bin/ipcrun
INI=tests/integration/ini
EXP=tests/integration/expected
export IPC_KERNEL_PATH=$PWD/$BUILD/tests/integration
export IPCRUN_STATE_DIR
IPCRUN_STATE_DIR=$(mktemp -d /tmp/ipcrun-test-state.XXXXXX)
T=$(mktemp -d /tmp/ipcrun-test.XXXXXX)
trap 'rm -rf "$T" "$IPCRUN_STATE_DIR"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "  ok   $*"; }
not_ok() { fail=$((fail + 1)); echo "  FAIL $*"; }
check() { # description, command...
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() {
	echo "  $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Wait until a command succeeds, polling every 10 ms, for at most $1 ms.
wait_for() {
	local deadline=$(( $(now_ms) + $1 )); shift
	until "$@"; do
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.01
	done
}

# The System V key libipc derives from a handle (FNV-1a; see shm.c).
sysv_key() {
	local h=2166136261 s=$1 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(( ((h ^ c) * 16777619) & 0xffffffff ))
	done
	printf '0x%08x' $(( (h & 0x3ffffffe) | 0x40000000 | $2 ))
}

# The handle a -v run printed in file $1.
handle_of() { sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$1" | head -1; }

# The kernel process ids a -v run printed in file $1.
pids_of() { sed -n 's/^ipcrun: process [^ ]* pid \([0-9]*\)$/\1/p' "$1"; }

# What of run $1 (whose -v stderr is file $2) is still there, if anything.
leftovers() {
	local h=$1 p
	[ -n "$h" ] || return 0
	for p in $(pids_of "$2"); do
		gone "$p" || echo "process $p"
	done
	grep -lsaz "^IPCRUN_HANDLE=$h\$" /proc/[0-9]*/environ 2>/dev/null |
		sed "s/^/exec'd process /"
	ls /dev/shm 2>/dev/null | grep -F "$h" | sed 's/^/shm /'
	local km ks
	km=$(sysv_key "$h" 0)
	ks=$(sysv_key "$h" 1)
	ipcs -m 2>/dev/null | awk -v k="$km" '$1 == k {print "sysv shm " $2}'
	ipcs -s 2>/dev/null | awk -v k="$ks" '$1 == k {print "sysv sem " $2}'
}

# Nothing of run $1 survives (allowing processes a moment to be reaped by
# init after ipcrun exits). $2 describes the run.
# $3: the run's stderr (default: that of the last run started, $E).
check_clean() {
	local h=$1 what=$2 e=${3:-$E}
	if [ -z "$h" ]; then
		not_ok "$what: no run handle (was -v given?)"
		return
	fi
	if wait_for 2000 test -z "$(leftovers "$h" "$e")"; then
		ok "$what: nothing left behind"
	else
		not_ok "$what: left behind: $(leftovers "$h" "$e" | tr '\n' ' ')"
	fi
}

# clean_now H ERR: true when nothing of the run is left (after a grace).
clean_now() { wait_for 2000 test -z "$(leftovers "$1" "$2")"; }

# run_ipcrun NAME ARGS...: run to the end; stdout in $T/NAME.out, stderr in
# $T/NAME.err, exit status in RC, handle in H.
run_ipcrun() {
	local name=$1; shift
	"$IPCRUN" -v --no-progress "$@" >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	E=$T/$name.err
	H=$(handle_of "$E")
}

# start_ipcrun NAME ARGS...: in the background; IPID, and H once it started.
start_ipcrun() {
	local name=$1; shift
	"$IPCRUN" -v --no-progress "$@" >"$T/$name.out" 2>"$T/$name.err" &
	IPID=$!
	E=$T/$name.err
	wait_for 5000 grep -qs '^ipcrun: process ' "$E"
	H=$(handle_of "$E")
}

# Process $1 has exited (gone, or a zombie waiting for us to reap it).
gone() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -z "$st" ] || [ "$st" = Z ]
}

# Wait for background ipcrun $IPID to exit (deadline $1 ms); RC its status.
# EXIT_MS: when it was seen gone.
await_ipcrun() {
	if wait_for "$1" gone "$IPID"; then
		EXIT_MS=$(now_ms)
		wait "$IPID"
		RC=$?
		return 0
	fi
	kill -9 "$IPID" 2>/dev/null
	wait "$IPID"
	RC=$?
	EXIT_MS=$(now_ms)
	return 1
}

# The pid of process NAME of the run whose stderr is file $1.
pid_of_process() { sed -n "s/^ipcrun: process $2 pid \([0-9]*\)/\1/p" "$1"; }

# same_output NAME EXPECTED-FILE: stdout equals the expected file.
same_output() {
	if diff -u "$2" "$T/$1.out" >"$T/$1.diff"; then
		return 0
	fi
	sed 's/^/      /' "$T/$1.diff"
	return 1
}

# The first line of a run's report in stderr file $1: the first line that is
# not one of -v's "run ..." / "process ... pid ..." lines.
first_report_line() {
	grep -Ev '^ipcrun: (run ipcrun\.[0-9]+\.[0-9a-f]+ \(pid [0-9]+\)|process [^ ]+ pid [0-9]+)$' "$1" | head -1
}

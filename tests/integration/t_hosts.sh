#!/bin/bash
# One topology across two hosts under mpirun (SCALE_OUT.md 6): two ranks on
# this machine with TCP forced on loopback, then two network namespaces
# joined by a veth pair with a private /dev/shm each (records can only cross
# by the network). Every mpirun runs under a hard timeout. Asserts:
#  - the config topologies in two-host variants print byte for byte what the
#    same file prints run by ipcrun alone (the reference run);
#  - EOF count exact; back-pressure bound (the source runs at most
#    capacity + window x batch + capacity records ahead of a slow sink);
#  - a kernel failing or killed on rank 1 is named with its host, exit 1;
#    a consumer leaving on rank 1 gives -EPIPE to the producer on rank 0,
#    also while the edge is idle;
#  - idle bridged edges cost each bridge under 1 % of a core;
#  - rank 1's ipcrun killed: the job ends within 10 s, and after
#    ipcrun --gc nothing is left;
#  - a library missing on one host only, or a job size that is not the
#    number of hosts: exit 2 everywhere, nothing started, the host named;
#  - nothing of any run is left (processes, /dev/shm, System V).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_hosts ($BUILD)"
if ! command -v mpirun >/dev/null || [ ! -x "$BUILD/bin/ipcrun-net" ]; then
	echo "  skip: no mpirun or no $BUILD/bin/ipcrun-net (make test installs Open MPI)"
	exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
HI=tests/integration/ini/hosts
MPI=(mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1
     --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo
     --mca oob_tcp_if_include lo -x IPC_KERNEL_PATH -x IPCRUN_STATE_DIR)
LIMIT=60

# mpi_run NAME [MPIRUN-ARGS... --] ARGS...: two ranks of ipcrun -v; stdout,
# stderr in $T/NAME.{out,err}, RC, and the handles of both ranks in HS.
mpi_run() {
	local name=$1; shift
	local pre=()
	if [[ " $* " == *" -- "* ]]; then
		while [ "$1" != -- ]; do pre+=("$1"); shift; done
		shift
	fi
	timeout -k 5 $LIMIT "${MPI[@]}" "${pre[@]}" -n 2 "$IPCRUN" -v --no-progress "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	E=$T/$name.err
	HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
}

# Nothing of any rank of the last run survives.
hosts_clean() {
	local h n=0
	for h in $HS; do
		n=$((n + 1))
		clean_now "$h" "$E" || { not_ok "$1: rank left behind: $(leftovers "$h" "$E")"; return; }
	done
	if [ "$n" -eq "${2:-2}" ]; then ok "$1: nothing left on either host"; else
		not_ok "$1: $n run handles (expected ${2:-2})"; fi
}

# two_host SRC DST PROC...: SRC with hosts = head, worker and PROCs on worker.
two_host() {
	local src=$1 dst=$2; shift 2
	awk -v procs=" $* " '
		{ print }
		/^\[graph\]/ { print "hosts = head, worker" }
		/^\[process:/ { p = $0; sub(/^\[process:/, "", p); sub(/\].*/, "", p)
		                if (index(procs, " " p " ")) print "host = worker" }
	' "$src" >"$dst"
}

norm() { sed -E 's/ in [0-9.]+ s: [0-9.]+[kMG]?\/s$//' "$1" | LC_ALL=C sort; }

# ---- --check and --dot: one cluster per host, bridged edges marked ----
"$IPCRUN" --check config/hosts.ini >"$T/check.out" 2>&1
check "--check: one section per host, in rank order" \
	test "$(grep -E '^  host ' "$T/check.out" | cut -d: -f1)" = "$(printf '  host head (rank 0)\n  host worker (rank 1)')"
check "--check: bridged edges say between which hosts" \
	grep -q "^    1: read.out -> grep.in .* bridged head -> worker window 8$" "$T/check.out"
"$IPCRUN" --dot config/hosts.ini >"$T/dot.out" 2>&1
check "--dot: a cluster per host, bridged edges dashed" \
	test "$(grep -c 'subgraph "cluster_host_' "$T/dot.out")" -eq 2 -a \
	     "$(grep -c 'bridged, window [0-9]*)", style=dashed' "$T/dot.out")" -eq 2

# ---- the config topologies, two-host variants vs the reference run ----
for spec in "pipeline filter" "copy reader" "large copy" "fanout f1" \
            "function sq1" "words count1 count3"; do
	set -- $spec
	name=$1; shift
	[ -f "config/$name.ini" ] || continue
	two_host "config/$name.ini" "$T/h_$name.ini" "$@"
	# the variant's folder must resolve relative paths as config/ does
	cp "$T/h_$name.ini" "config/.h_$name.ini"
	trap 'rm -f config/.h_*.ini; rm -rf "$T" "$IPCRUN_STATE_DIR"' EXIT
	"$IPCRUN" --no-progress "config/.h_$name.ini" >"$T/ref_$name.out" 2>"$T/ref_$name.err"
	refrc=$?
	mpi_run "mpi_$name" "config/.h_$name.ini"
	if [ "$refrc" -ne 0 ] || [ "$RC" -ne 0 ]; then
		not_ok "$name on two hosts: exit $RC (reference $refrc)"
		sed 's/^/      /' "$E" | head -20
		continue
	fi
	if [ "$name" = pipeline ] || [ "$name" = copy ]; then
		# one printing kernel: the very bytes, in order
		check "$name on two hosts: output byte-identical to one host" \
			cmp -s "$T/ref_$name.out" "$T/mpi_$name.out"
	else
		# several printing kernels on two hosts: mpirun interleaves lines
		check "$name on two hosts: same output lines as one host" \
			cmp -s <(norm "$T/ref_$name.out") <(norm "$T/mpi_$name.out")
	fi
	[ "$name" = copy ] && check "copy on two hosts: cmp with the input file" \
		cmp -s config/data/ferry.txt "$T/mpi_copy.out"
	hosts_clean "$name on two hosts"
	rm -f "config/.h_$name.ini"
done

# ---- EOF: every record, then EOF ----
"$IPCRUN" --no-progress "$HI/eof.ini" >"$T/ref_eof.out" 2>/dev/null
mpi_run eof "$HI/eof.ini"
check "EOF: exit 0" test "$RC" -eq 0
check "EOF: count and sum exact (count=200000 sum=19999900000)" \
	grep -qx "count=200000 sum=19999900000" "$T/eof.out"
check "EOF: same as one host" cmp -s "$T/ref_eof.out" "$T/eof.out"
hosts_clean "EOF"

# ---- large records (sent alone, received straight into records) mixed
# with small ones (packed in frames): every byte, in order ----
awk 'BEGIN { srand(13); for (i = 0; i < 3000; i++) {
	n = (i % 7 == 3) ? 32768 + int(rand() * 90000) : 1 + int(rand() * 300)
	c = sprintf("%c", 33 + i % 90); s = ""
	while (length(s) < n) s = s c sprintf("%d", i)
	print substr(s, 1, n) } }' >"$T/mixed.txt"
cat >"$T/mixed.ini" <<INI
[graph]
buffer = 32M
hosts  = head, worker
[process:p1]
[process:p2]
host = worker
[kernel:src]
library  = libipckernels.so
function = file_lines
process  = p1
args     = str:$T/mixed.txt
[kernel:sum]
library  = libipckernels.so
function = digest_sink
process  = p2
[connections]
connect = src.out -> sum.in window=2
INI
"$IPCRUN" --no-progress "$T/mixed.ini" >"$T/ref_mixed.out" 2>/dev/null
mpi_run mixed "$T/mixed.ini"
check "mixed large and small records: exit 0" test "$RC" -eq 0
check "mixed large and small records: same count, bytes and CRC as one host" \
	test -s "$T/ref_mixed.out" -a "$(cat "$T/ref_mixed.out")" = "$(cat "$T/mixed.out")"
check "mixed large and small records: 3000 records, 429 of them over 32 KiB" \
	test "$(awk 'length($0) >= 32768' "$T/mixed.txt" | wc -l)" -eq 429 -a \
	     "$(sed -n 's/.*records=\([0-9]*\) .*/\1/p' "$T/mixed.out")" -eq 3000
hosts_clean "mixed large and small records"

# ---- a kernel on rank 1 fails ----
mpi_run fail "$HI/fail.ini"
check "failed kernel on worker: exit 1" test "$RC" -eq 1
check "failed kernel on worker: named with process and host" \
	grep -q "^ipcrun: kernel 'bad' (process 'p2', host 'worker') failed: returned 3$" "$E"
check "failed kernel on worker: head told to stop" \
	grep -q "^ipcrun: host 'head': stopping the graph: host 'worker' (rank 1) had a kernel fail$" "$E"
hosts_clean "failed kernel"

# ---- a kernel process on rank 1 killed with -9 ----
pidfile=$T/mid.pid
sed "s|@PIDFILE@|$pidfile|" "$HI/killmid.ini" >"$T/killmid.ini"
(mpi_run killmid "$T/killmid.ini"; echo "$RC" >"$T/killmid.rc") &
MP=$!
if wait_for 20000 test -s "$pidfile"; then
	t0=$(now_ms)
	kill -9 "$(cat "$pidfile")"
	wait_for 15000 test -s "$T/killmid.rc"
	ms=$(( $(now_ms) - t0 ))
	wait "$MP"
	RC=$(cat "$T/killmid.rc")
	E=$T/killmid.err
	HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
	echo "       kill -9 on worker -> job exit: $ms ms"
	check "killed kernel on worker: exit 1 within 5 s ($ms ms)" \
		test "$RC" -eq 1 -a "$ms" -lt 5000
	check "killed kernel on worker: named with host and signal, once" \
		test "$(grep -cE "^ipcrun: kernel 'mid' \(process 'p2', host 'worker', pid [0-9]+\) died: killed by signal 9 \(Killed\)$" "$E")" -eq 1
	check "killed kernel on worker: the sink on head saw IPC_TX_ABORTED" \
		grep -q "^sink: input ended with 3 (aborted)$" "$E"
	hosts_clean "killed kernel"
else
	not_ok "killed kernel: the kernel never ran"; sed 's/^/      /' "$T/killmid.err"
	kill "$MP"; wait "$MP"
fi

# ---- the consumer on rank 1 leaves: -EPIPE on rank 0 ----
mpi_run take "$HI/take.ini"
check "consumer gone on worker: exit 0" test "$RC" -eq 0
check "consumer gone on worker: it took 1000 records" grep -qx "took 1000 records" "$T/take.out"
check "consumer gone on worker: the producer on head got -EPIPE" \
	grep -q "^src: send returned -32 (Broken pipe)$" "$E"
hosts_clean "consumer gone"

# ---- the consumer leaves while the producer is idle: the bridge's watcher
# has the channel then (it sleeps in it); -EPIPE must still come ----
sed -e 's/u64:10$/u64:300000/' -e 's/u64:1000$/u64:3/' "$HI/take.ini" >"$T/take_idle.ini"
mpi_run take_idle "$T/take_idle.ini"
check "consumer gone while the edge is idle: exit 0, it took 3 records" \
	test "$RC" -eq 0 -a "$(cat "$T/take_idle.out")" = "took 3 records"
check "consumer gone while the edge is idle: the producer on head got -EPIPE" \
	grep -q "^src: send returned -32 (Broken pipe)$" "$E"
hosts_clean "consumer gone while idle"

# ---- idle bridged edges sleep: CPU of both bridges over 4 s of idle ----
# 4 edges whose sources send one record after 8 s. The bridges wake for
# nothing but a hello a second (net_wait.c); the bound, 1 % of a core,
# is the issue's goal (measured ~0.05 %); ticks are 1/CLK_TCK s.
{
	printf '[graph]\nhosts = head, worker\nstall_timeout = 0\n'
	for i in 1 2 3 4; do
		printf '[process:s%d]\n[process:d%d]\nhost = worker\n' "$i" "$i"
		printf '[kernel:s%d]\nlibrary = libtestkernels.so\nfunction = t_stamp_source\n' "$i"
		printf 'process = s%d\nargs = u64:8000000, u64:1\n' "$i"
		printf '[kernel:d%d]\nlibrary = libtestkernels.so\nfunction = t_latency_sink\n' "$i"
		printf 'process = d%d\n' "$i"
	done
	printf '[connections]\n'
	for i in 1 2 3 4; do printf 'connect = s%d.out -> d%d.in\n' "$i" "$i"; done
} >"$T/idle.ini"
(mpi_run idle "$T/idle.ini"; echo "$RC" >"$T/idle.rc") &
MP=$!
handles() { sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$T/idle.err"; }
nets() { sed -n 's/^ipcrun: process @net pid \([0-9]*\)$/\1/p' "$T/idle.err"; }
ticks() { local p t=0; for p in $NETS; do
	t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
both_up() { [ "$(handles | wc -l)" -eq 2 ] && [ "$(nets | wc -l)" -eq 2 ]; }
if wait_for 20000 both_up; then
	NETS=$(nets)
	sleep 3 # past the start (the first hellos teach the bridges to sleep)
	c0=$(ticks); t0=$(now_ms); sleep 4; c1=$(ticks); t1=$(now_ms)
	pct=$(awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v ms=$((t1 - t0)) \
		'BEGIN { printf "%.2f", 100 * c / hz / (ms / 1000) / 2 }')
	echo "       idle bridges, 4 edges: $pct % of a core each ($((c1 - c0)) ticks in $((t1 - t0)) ms)"
	check "idle: each bridge under 1 % of a core over 4 s, 4 idle edges ($pct %)" \
		awk -v p="$pct" 'BEGIN { exit !(p < 1) }'
else
	not_ok "idle: the bridges never ran"; sed 's/^/      /' "$T/idle.err" | head
fi
wait "$MP"
RC=$(cat "$T/idle.rc"); E=$T/idle.err
HS=$(handles)
check "idle: exit 0, every sink got its record" \
	test "$RC" -eq 0 -a "$(grep -c '^latency median' "$T/idle.out")" -eq 4
hosts_clean "idle"

# ---- back-pressure: a slow sink on worker holds the source on head ----
sl=$T/src.log; kl=$T/sink.log
sed -e "s|@SRCLOG@|$sl|" -e "s|@SINKLOG@|$kl|" "$HI/slow.ini" >"$T/slow.ini"
(mpi_run slow "$T/slow.ini"; echo "$RC" >"$T/slow.rc") &
MP=$!
worst=0
if wait_for 20000 test -s "$kl"; then
	for i in 1 2 3 4 5 6 7 8; do
		sleep 0.1
		s=$(cat "$sl"); k=$(cat "$kl")
		d=$((s - k)); [ "$d" -gt "$worst" ] && worst=$d
	done
fi
# capacity 64 + window 2 x 4095 records of 8 B per 64 KiB frame + capacity
# 64, plus what the two logs lag (256 each) and one record per kernel
bound=$((64 + 2 * 4095 + 64 + 512 + 2))
wait_for 30000 test -s "$T/slow.rc"
wait "$MP"
RC=$(cat "$T/slow.rc")
E=$T/slow.err
HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
check "back-pressure: exit 0, the sink got all 20000 records" \
	test "$RC" -eq 0 -a "$(cat "$T/slow.out")" = "slow sink: 20000 records"
echo "       run-ahead of the source: at most $worst records (bound $bound)"
check "back-pressure across hosts: source at most $bound records ahead (worst $worst)" \
	test "$worst" -gt 0 -a "$worst" -le "$bound"
hosts_clean "back-pressure"

# ---- rank 1's ipcrun killed with -9 ----
pidfile=$T/end.pid
sed "s|@PIDFILE@|$pidfile|" "$HI/endless.ini" >"$T/endless.ini"
(mpi_run endless "$T/endless.ini"; echo "$RC" >"$T/endless.rc") &
MP=$!
if wait_for 20000 test -s "$pidfile"; then
	victim=$(awk '{print $4}' "/proc/$(cat "$pidfile")/stat")  # worker's ipcrun
	t0=$(now_ms)
	kill -9 "$victim"
	wait_for 15000 test -s "$T/endless.rc"
	ms=$(( $(now_ms) - t0 ))
	wait "$MP"
	RC=$(cat "$T/endless.rc")
	E=$T/endless.err
	HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
	echo "       kill -9 of worker's ipcrun -> job exit: $ms ms"
	check "killed rank: job ends non-zero within 10 s ($ms ms, exit $RC)" \
		test "$RC" -ne 0 -a "$RC" -ne 124 -a "$ms" -lt 10000
	"$IPCRUN" --gc >/dev/null 2>&1
	hosts_clean "killed rank, after ipcrun --gc"
else
	not_ok "killed rank: the kernel never ran"; kill "$MP"; wait "$MP"
fi

# ---- a library missing on one host only: exit 2 everywhere ----
timeout -k 5 $LIMIT "${MPI[@]}" -n 1 -x IPC_KERNEL_PATH="$IPC_KERNEL_PATH" \
	"$IPCRUN" -v --no-progress "$HI/eof.ini" : -n 1 -x IPC_KERNEL_PATH=/nonexistent \
	"$IPCRUN" -v --no-progress "$HI/eof.ini" >"$T/nolib.out" 2>"$T/nolib.err"
RC=$?
E=$T/nolib.err
HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
check "library missing on worker: exit 2" test "$RC" -eq 2
check "library missing on worker: head names the host" \
	grep -q "^ipcrun: host 'head' (rank 0): host 'worker' (rank 1) cannot start: .*cannot load library 'libtestkernels.so'" "$E"
check "library missing on worker: worker names itself" \
	grep -q "^ipcrun: host 'worker' (rank 1) cannot start: .*cannot load library 'libtestkernels.so'" "$E"
check "library missing on worker: nothing started, no kernel reported" \
	test ! -s "$T/nolib.out" -a -z "$(grep "^ipcrun: kernel " "$E")"
hosts_clean "library missing" 1

# ---- SIGUSR1 to mpirun (forwarded to every rank): drain, one status ----
pidfile=$T/drain.pid
sed "s|@PIDFILE@|$pidfile|" "$HI/drain.ini" >"$T/drain.ini"
timeout -k 5 $LIMIT "${MPI[@]}" -n 2 "$IPCRUN" -v --no-progress "$T/drain.ini" \
	>"$T/drain.out" 2>"$T/drain.err" &
MP=$!
if wait_for 20000 test -s "$pidfile"; then
	sleep 0.3
	kill -USR1 "$(pgrep -P "$MP" mpirun)"
	wait "$MP"
	RC=$?
	E=$T/drain.err
	HS=$(sed -n 's/^ipcrun: run \(ipcrun\.[0-9]*\.[0-9a-f]*\) .*/\1/p' "$E")
	sent=$(sed -n 's/^sent \([0-9]*\) records$/\1/p' "$T/drain.out")
	check "SIGUSR1: every rank stopped and drained, exit 138 (128 + SIGUSR1)" test "$RC" -eq 138
	check "SIGUSR1: the sink on head counted every record sent ($sent)" \
		grep -qx "count=$sent sum=$(( sent * (sent - 1) / 2 ))" "$T/drain.out"
	hosts_clean "SIGUSR1"
else
	not_ok "SIGUSR1: the source never ran"; kill "$MP"; wait "$MP"
fi

# ---- hosts whose byte order differs are refused at start ----
mpi_run abi -x IPCRUN_NET_TEST_ABI=1 -- "$HI/eof.ini"
check "foreign byte order on worker: exit 2" test "$RC" -eq 2
check "foreign byte order on worker: refused, named" \
	grep -q "^ipcrun: host 'head' (rank 0): host 'worker' (rank 1) cannot start: its byte order differs" "$E"
check "foreign byte order: nothing ran" test ! -s "$T/abi.out"
hosts_clean "foreign byte order"

# ---- a malformed frame is a protocol error: named, the job aborted ----
mpi_run spoil -x IPCRUN_NET_TEST_CORRUPT=0 -- "$HI/eof.ini"
check "malformed frame: the job ends non-zero" test "$RC" -ne 0 -a "$RC" -ne 124
check "malformed frame: worker names it and aborts the job" \
	grep -q "^ipcrun: host 'worker' (rank 1): bad frame from host 'head' on edge src.out->mid.in: record larger than the receiving buffer takes; aborting the job$" "$E"
"$IPCRUN" --gc >/dev/null 2>&1
hosts_clean "malformed frame, after ipcrun --gc"

# ---- the job size must be the number of hosts ----
timeout -k 5 $LIMIT "${MPI[@]}" -n 3 "$IPCRUN" --no-progress "$HI/eof.ini" \
	>"$T/three.out" 2>"$T/three.err"
RC=$?
check "3 ranks for 2 hosts: exit 2" test "$RC" -eq 2
check "3 ranks for 2 hosts: says so" \
	grep -q "^ipcrun: the job has 3 ranks but .* names 2 hosts; start it with mpirun -n 2" "$T/three.err"

# ---- two real hosts: network namespaces joined by a veth pair ----
# Addresses only in 10.77.0.0/24, inside namespaces this test creates and
# removes on every path; each "host" has its own /dev/shm.
NA=ipct13a$$; NB=ipct13b$$; VA=v13a$$; VB=v13b$$
netns_down() { ip netns del "$NA" 2>/dev/null; ip netns del "$NB" 2>/dev/null; }
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! ip netns add "$NA" 2>/dev/null; then
	echo "  skip: two network namespaces need root and iproute2"
else
	trap 'netns_down; rm -f config/.h_*.ini; rm -rf "$T" "$IPCRUN_STATE_DIR"' EXIT
	ip netns add "$NB" && ip link add "$VA" type veth peer name "$VB" &&
	ip link set "$VA" netns "$NA" && ip link set "$VB" netns "$NB" &&
	ip -n "$NA" addr add 10.77.0.1/24 dev "$VA" && ip -n "$NB" addr add 10.77.0.2/24 dev "$VB" &&
	ip -n "$NA" link set "$VA" up && ip -n "$NB" link set "$VB" up &&
	ip -n "$NA" link set lo up && ip -n "$NB" link set lo up
	check "netns: two namespaces joined by a veth pair" test $? -eq 0
	export NETNS_B=$NB NETNS_LEFT_B=$T/left_b
	cp config/hosts.ini config/.h_netns.ini
	"$IPCRUN" --no-progress config/.h_netns.ini >"$T/ref_netns.out" 2>/dev/null
	: >"$T/left_a"; : >"$T/left_b"
	timeout -k 5 $LIMIT ip netns exec "$NA" unshare --mount --uts --propagation private \
		sh -c 'mount -t tmpfs tmpfs /dev/shm && hostname host-a && { "$@"; }; rc=$?; ls -A /dev/shm > "$LEFT_A"; exit $rc' \
		sh env LEFT_A="$T/left_a" mpirun --host 10.77.0.1,10.77.0.2 -n 2 --bind-to none \
		--mca plm_rsh_agent "$PWD/tests/integration/netns-agent.sh" \
		--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
		--mca oob_tcp_if_include 10.77.0.0/24 --mca mpi_yield_when_idle 1 \
		-x IPC_KERNEL_PATH -x IPCRUN_STATE_DIR -x PATH \
		"$PWD/$IPCRUN" -v --no-progress config/.h_netns.ini >"$T/netns.out" 2>"$T/netns.err"
	RC=$?
	check "netns: exit 0" test "$RC" -eq 0
	check "netns: output byte-identical to one host" cmp -s "$T/ref_netns.out" "$T/netns.out"
	check "netns: the bridge ran on host-b, over the veth" \
		grep -q "^ipcrun: process @net pid" "$T/netns.err"
	check "netns: nothing left in either host's /dev/shm" \
		test ! -s "$T/left_a" -a ! -s "$T/left_b"
	[ "$RC" -eq 0 ] || sed 's/^/      /' "$T/netns.err" | head -20
	# a partition: the link goes down under a running graph; the bridges
	# notice the silence (2 s here) and abort; mpirun itself may hang on
	# the unreachable daemon (Open MPI 4.1), which the timeout ends
	pidfile=$T/part.pid
	sed "s|@PIDFILE@|$pidfile|" "$HI/endless.ini" >"config/.h_part.ini"
	timeout -k 2 20 ip netns exec "$NA" unshare --mount --uts --propagation private \
		sh -c 'mount -t tmpfs tmpfs /dev/shm && hostname host-a && exec "$@"' \
		sh mpirun --host 10.77.0.1,10.77.0.2 -n 2 --bind-to none \
		--mca plm_rsh_agent "$PWD/tests/integration/netns-agent.sh" \
		--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
		--mca oob_tcp_if_include 10.77.0.0/24 --mca mpi_yield_when_idle 1 \
		-x IPC_KERNEL_PATH -x IPCRUN_STATE_DIR -x PATH -x IPCRUN_NET_TIMEOUT_MS=2000 \
		"$PWD/$IPCRUN" --no-progress config/.h_part.ini >"$T/part.out" 2>"$T/part.err" &
	MP=$!
	if wait_for 20000 test -s "$pidfile"; then
		t0=$(now_ms)
		ip -n "$NA" link set "$VA" down
		wait_for 10000 grep -q "silent for" "$T/part.err"
		ms=$(( $(now_ms) - t0 ))
		check "partition: a bridge reports the silent host within 5 s ($ms ms)" \
			grep -qE "^ipcrun: host '(head|worker)' \(rank [01]\): host '(head|worker)' \(rank [01]\) silent for [0-9.]+ s; aborting the job$" "$T/part.err"
		check "partition: detected within 5 s" test "$ms" -lt 5000
	else
		not_ok "partition: the graph never ran"; sed 's/^/      /' "$T/part.err" | head
	fi
	wait "$MP"
	# what the timeout left in the namespaces is ours: end it by pid
	for p in $(ip netns pids "$NA") $(ip netns pids "$NB"); do kill -9 "$p" 2>/dev/null; done
	rm -f config/.h_netns.ini config/.h_part.ini
	netns_down
	check "netns: namespaces removed" test -z "$(ip netns list | grep -E "^($NA|$NB)( |$)")"
fi

finish

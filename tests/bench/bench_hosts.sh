#!/bin/bash
# Bridged edges vs local channels vs raw MPI, in one sitting (issue 13,
# SCALE_OUT.md 7.3). Two ranks on this machine with TCP forced on loopback.
#   - 64 B records: the same 2-process pipeline (blob_source -> discard_sink)
#     on one host (local channel) and across two ranks (bridged), vs raw MPI
#     with one MPI_Send per 64 B message;
#   - 1 MiB records: bridged vs raw MPI 1 MiB messages;
#   - CPU of the two bridge processes over an idle edge (a record every 5 s);
#   - one-way latency of a record sent after 50 ms of idle vs raw MPI
#     ping-pong.
# Each figure is the median of IPC_BENCH_RUNS (3) runs.
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build}
IPCRUN=$B/bin/ipcrun
RUNS=${IPC_BENCH_RUNS:-3}
export IPC_KERNEL_PATH=$PWD/$B/tests/integration
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1
     --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo
     --mca oob_tcp_if_include lo -x IPC_KERNEL_PATH)
T=$(mktemp -d /tmp/bench-hosts.XXXXXX)
trap 'rm -rf "$T"' EXIT
N64=${BENCH_N64:-4000000}
N1M=${BENCH_N1M:-512}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

graph() { # FILE COUNT SIZE
	cat >"$1" <<INI
[graph]
buffer = 256M
hosts  = a, b
[process:src]
[process:dst]
host = b
[kernel:src]
library  = libipckernels.so
function = blob_source
process  = src
args     = u64:$2, u64:$3
[kernel:dst]
library  = libipckernels.so
function = discard_sink
process  = dst
[connections]
connect = src.out -> dst.in
INI
}

# seconds from go to the end, the longest of the hosts (--stats)
secs() { sed -n 's/^ipcrun: [^ ]*: \([0-9.]*\) s$/\1/p' "$1" | sort -g | tail -1; }

graph "$T/g64.ini" "$N64" 64
graph "$T/g1m.ini" "$N1M" 1048576
for i in $(seq "$RUNS"); do
	"$IPCRUN" --stats --no-progress "$T/g64.ini" 2>"$T/l64.err" >/dev/null
	awk -v n="$N64" -v s="$(secs "$T/l64.err")" 'BEGIN { print n / s }' >>"$T/local64"
	timeout -k 5 120 "${MPI[@]}" "$IPCRUN" --stats --no-progress "$T/g64.ini" \
		2>"$T/b64.err" >/dev/null
	awk -v n="$N64" -v s="$(secs "$T/b64.err")" 'BEGIN { print n / s }' >>"$T/bridged64"
	timeout -k 5 120 "${MPI[@]}" "$IPCRUN" --stats --no-progress "$T/g1m.ini" \
		2>"$T/b1m.err" >/dev/null
	awk -v n="$N1M" -v s="$(secs "$T/b1m.err")" 'BEGIN { print n * 1048576 / s }' >>"$T/bridged1m"
	timeout -k 5 120 "${MPI[@]}" "$B/tests/bench/bench_mpi" 1000000 "$N1M" >"$T/mpi.out" 2>/dev/null
	awk '$1 == "mpi64" { print $2 }' "$T/mpi.out" >>"$T/mpi64"
	awk '$1 == "mpi1m" { print $2 }' "$T/mpi.out" >>"$T/mpi1m"
	awk '$1 == "pingpong" { print $2 }' "$T/mpi.out" >>"$T/pingpong"
done

# idle: one record every 5 s; CPU of both bridges over 3 s
cat >"$T/idle.ini" <<INI
[graph]
hosts = a, b
[process:src]
[process:dst]
host = b
[kernel:src]
library  = libtestkernels.so
function = t_stamp_source
process  = src
args     = u64:5000000, u64:1
[kernel:dst]
library  = libtestkernels.so
function = t_latency_sink
process  = dst
[connections]
connect = src.out -> dst.in
INI
timeout -k 5 60 "${MPI[@]}" "$IPCRUN" --no-progress "$T/idle.ini" >/dev/null 2>&1 &
mp=$!
sleep 1.5
nets=$(pgrep -f "^ipcrun-net run")
ticks() { local t=0 p; for p in $nets; do
	t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
c0=$(ticks); t0=$(date +%s.%N); sleep 3; c1=$(ticks); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
idle=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v a="$t0" -v b="$t1" -v n="$(echo $nets | wc -w)" \
	'BEGIN { printf "%.2f", 100 * c / hz / (b - a) / (n ? n : 1) }')
wait "$mp"

# latency after idle: a record every 50 ms
sed -e 's/u64:5000000, u64:1/u64:50000, u64:60/' "$T/idle.ini" >"$T/lat.ini"
for i in $(seq "$RUNS"); do
	timeout -k 5 60 "${MPI[@]}" "$IPCRUN" --no-progress "$T/lat.ini" 2>/dev/null |
		awk '/^latency median/ { print $3 }' >>"$T/lat"
done

l64=$(median <"$T/local64"); b64=$(median <"$T/bridged64"); m64=$(median <"$T/mpi64")
b1m=$(median <"$T/bridged1m"); m1m=$(median <"$T/mpi1m")
pp=$(median <"$T/pingpong"); lat=$(median <"$T/lat")
echo "### Across hosts: bridged edges (2 ranks, TCP on loopback), medians of $RUNS runs"
echo
echo "| measure | bridged | yardstick | ratio | goal |"
echo "|---|---|---|---|---|"
awk -v b="$b64" -v l="$l64" 'BEGIN { printf "| 64 B records/s vs the same edge local | %.2fM | %.2fM | %.2fx | >= 0.3x |\n", b/1e6, l/1e6, b/l }'
awk -v b="$b64" -v m="$m64" 'BEGIN { printf "| 64 B records/s vs raw MPI, one message per record | %.2fM | %.2fM | %.1fx | >= 4x |\n", b/1e6, m/1e6, b/m }'
awk -v b="$b1m" -v m="$m1m" 'BEGIN { printf "| 1 MiB records, GB/s vs raw MPI 1 MiB | %.2f | %.2f | %.2fx | >= 0.6x |\n", b/1e9, m/1e9, b/m }'
echo "| CPU of an idle bridge process | $idle % | - | - | <= 1 % |"
awk -v l="$lat" -v p="$pp" 'BEGIN { printf "| first record after 50 ms idle, one-way us | %.1f | ping-pong %.1f | +%.0f us | <= raw + 1000 us |\n", l, p, l - p }'

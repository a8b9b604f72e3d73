#!/bin/bash
# Bridged edges vs local channels vs raw MPI, in one sitting: every goal of
# issue 13 (SCALE_OUT.md 7.3) as a ratio. Two ranks on this machine, TCP
# forced on loopback, and (as root, where network namespaces can be made)
# two "hosts" in network namespaces joined by a veth pair, each with its
# own /dev/shm, as tests/integration/t_hosts.sh builds them.
#   - 64 B records: the same 2-process pipeline (blob_source -> discard_sink)
#     on one host (local channel) and across two ranks (bridged), vs raw
#     MPI with one MPI_Send per 64 B message;
#   - 1 MiB records: b_src -> b_sink (libbenchkernels: records allocated in
#     place and not filled, as raw MPI sends a buffer it does not fill),
#     buffer = 8M per host (a few records in flight, as raw MPI reuses one
#     buffer), bridged vs raw MPI 1 MiB messages, on loopback and over veth;
#   - CPU of the two bridge processes while 1 and while 4 bridged edges are
#     idle, over IDLE_SECS (10) s;
#   - one-way latency of a record sent after 50 ms of idle vs raw MPI
#     ping-pong (half a round trip).
# Each figure is the median of IPC_BENCH_RUNS (5) runs; each ratio is the
# median of the runs' own ratios (both figures of a run measured one after
# the other), all in this one sitting.
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build}
IPCRUN=$PWD/$B/bin/ipcrun
RUNS=${IPC_BENCH_RUNS:-5}
IDLE_SECS=${IDLE_SECS:-10}
export IPC_KERNEL_PATH=$PWD/$B/tests/integration:$PWD/$B/bench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1
     --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo
     --mca oob_tcp_if_include lo -x IPC_KERNEL_PATH)
T=$(mktemp -d /tmp/bench-hosts.XXXXXX)
NA=ipcb13a$$; NB=ipcb13b$$; VA=vb13a$$; VB=vb13b$$
VETH=no
cleanup() {
	if [ "$VETH" = yes ]; then
		for p in $(ip netns pids "$NA" 2>/dev/null) $(ip netns pids "$NB" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$NA" 2>/dev/null; ip netns del "$NB" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
N64=${BENCH_N64:-4000000}
N1M=${BENCH_N1M:-1024}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'; }

# two private addresses inside two namespaces this script makes and removes
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && ip netns add "$NA" 2>/dev/null; then
	VETH=yes
	if ! { ip netns add "$NB" && ip link add "$VA" type veth peer name "$VB" &&
	       ip link set "$VA" netns "$NA" && ip link set "$VB" netns "$NB" &&
	       ip -n "$NA" addr add 10.77.0.1/24 dev "$VA" &&
	       ip -n "$NB" addr add 10.77.0.2/24 dev "$VB" &&
	       ip -n "$NA" link set "$VA" up && ip -n "$NB" link set "$VB" up &&
	       ip -n "$NA" link set lo up && ip -n "$NB" link set lo up; }; then
		VETH=failed
	fi
	export NETNS_B=$NB NETNS_LEFT_B=$T/left_b
fi
# mpirun PROGRAM ARGS... with host a in namespace NA and host b (started by
# the agent, Open MPI's "ssh") in NB; the ranks talk over the veth only
veth_mpirun() {
	timeout -k 5 120 ip netns exec "$NA" unshare --mount --uts --propagation private \
		sh -c 'mount -t tmpfs tmpfs /dev/shm && hostname host-a && exec "$@"' \
		sh mpirun --host 10.77.0.1,10.77.0.2 -n 2 --bind-to none \
		--mca plm_rsh_agent "$PWD/tests/integration/netns-agent.sh" \
		--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
		--mca oob_tcp_if_include 10.77.0.0/24 --mca mpi_yield_when_idle 1 \
		-x IPC_KERNEL_PATH -x PATH "$@"
}

graph() { # FILE LIBRARY SOURCE SINK COUNT SIZE BUFFER
	cat >"$1" <<INI
[graph]
buffer = $7
hosts  = a, b
[process:src]
[process:dst]
host = b
[kernel:src]
library  = $2
function = $3
process  = src
args     = u64:$5, u64:$6
[kernel:dst]
library  = $2
function = $4
process  = dst
[connections]
connect = src.out -> dst.in
INI
}

# seconds from go to the end, the longest of the hosts (--stats)
secs() { sed -n 's/^ipcrun: [^ ]*: \([0-9.]*\) s$/\1/p' "$1" | sort -g | tail -1; }
# records or bytes per second of a run: COUNT SIZE ERRFILE
rate() { awk -v n="$1" -v z="$2" -v s="$(secs "$3")" 'BEGIN { if (s > 0) print n * z / s; else print 0 }'; }

graph "$T/g64.ini" libipckernels.so blob_source discard_sink "$N64" 64 256M
graph "$T/g1m.ini" libbenchkernels.so b_src b_sink "$N1M" 1048576 8M
for i in $(seq "$RUNS"); do
	"$IPCRUN" --stats --no-progress "$T/g64.ini" 2>"$T/l64.err" >/dev/null
	rate "$N64" 1 "$T/l64.err" >>"$T/local64"
	timeout -k 5 120 "${MPI[@]}" "$IPCRUN" --stats --no-progress "$T/g64.ini" \
		2>"$T/b64.err" >/dev/null
	rate "$N64" 1 "$T/b64.err" >>"$T/bridged64"
	timeout -k 5 120 "${MPI[@]}" "$IPCRUN" --stats --no-progress "$T/g1m.ini" \
		2>"$T/b1m.err" >/dev/null
	rate "$N1M" 1048576 "$T/b1m.err" >>"$T/bridged1m"
	timeout -k 5 120 "${MPI[@]}" "$B/tests/bench/bench_mpi" 1000000 "$N1M" >"$T/mpi.out" 2>/dev/null
	awk '$1 == "mpi64" { print $2 }' "$T/mpi.out" >>"$T/mpi64"
	awk '$1 == "mpi1m" { print $2 }' "$T/mpi.out" >>"$T/mpi1m"
	awk '$1 == "pingpong" { print $2 }' "$T/mpi.out" >>"$T/pingpong"
	if [ "$VETH" = yes ]; then
		veth_mpirun "$IPCRUN" --stats --no-progress "$T/g1m.ini" 2>"$T/v1m.err" >/dev/null
		rate "$N1M" 1048576 "$T/v1m.err" >>"$T/veth1m"
		veth_mpirun "$PWD/$B/tests/bench/bench_mpi" 1000 "$N1M" >"$T/vmpi.out" 2>/dev/null
		awk '$1 == "mpi1m" { print $2 }' "$T/vmpi.out" >>"$T/vmpi1m"
	fi
done

# idle: NEDGES sources that send one record after IDLE_SECS + 7 s; CPU of
# both bridges (utime + stime of /proc/PID/stat) over IDLE_SECS s, from 3 s
# after they started (past the first hellos); prints % of a core per bridge
idle_cpu() {
	local n=$1 i
	{
		printf '[graph]\nhosts = a, b\nstall_timeout = 0\n'
		for i in $(seq "$n"); do
			printf '[process:s%d]\n[process:d%d]\nhost = b\n' "$i" "$i"
			printf '[kernel:s%d]\nlibrary = libtestkernels.so\nfunction = t_stamp_source\n' "$i"
			printf 'process = s%d\nargs = u64:%d, u64:1\n' "$i" $(( (IDLE_SECS + 7) * 1000000 ))
			printf '[kernel:d%d]\nlibrary = libtestkernels.so\nfunction = t_latency_sink\n' "$i"
			printf 'process = d%d\n' "$i"
		done
		printf '[connections]\n'
		for i in $(seq "$n"); do printf 'connect = s%d.out -> d%d.in\n' "$i" "$i"; done
	} >"$T/idle$n.ini"
	: >"$T/idle$n.err"
	timeout -k 5 $((IDLE_SECS + 40)) "${MPI[@]}" "$IPCRUN" -v --no-progress "$T/idle$n.ini" \
		>/dev/null 2>"$T/idle$n.err" &
	local mp=$! k nets=
	for k in $(seq 200); do
		nets=$(sed -n 's/^ipcrun: process @net pid \([0-9]*\)$/\1/p' "$T/idle$n.err")
		[ "$(echo "$nets" | wc -w)" -eq 2 ] && break
		sleep 0.05
	done
	sleep 3 # past the start: the first hellos teach the bridges to sleep
	ticks() { local t=0 p; for p in $nets; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
	local c0 t0 c1 t1
	c0=$(ticks); t0=$(date +%s.%N); sleep "$IDLE_SECS"; c1=$(ticks); t1=$(date +%s.%N)
	awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v a="$t0" -v b="$t1" -v n="$(echo $nets | wc -w)" \
		'BEGIN { printf "%.2f", 100 * c / hz / (b - a) / (n ? n : 1) }'
	wait "$mp"
}
idle1=$(idle_cpu 1)
idle4=$(idle_cpu 4)

# latency after idle: a record every 50 ms
cat >"$T/lat.ini" <<INI
[graph]
hosts = a, b
[process:src]
[process:dst]
host = b
[kernel:src]
library  = libtestkernels.so
function = t_stamp_source
process  = src
args     = u64:50000, u64:60
[kernel:dst]
library  = libtestkernels.so
function = t_latency_sink
process  = dst
[connections]
connect = src.out -> dst.in
INI
for i in $(seq "$RUNS"); do
	timeout -k 5 60 "${MPI[@]}" "$IPCRUN" --no-progress "$T/lat.ini" 2>/dev/null |
		awk '/^latency median/ { print $3 }' >>"$T/lat"
done

# the ratio of a row: the median of the runs' own ratios (the two figures
# of a run were measured one after the other, under the same load)
ratio() { paste "$1" "$2" | awk '$2 > 0 { print $1 / $2 }' | median; }
l64=$(median <"$T/local64"); b64=$(median <"$T/bridged64"); m64=$(median <"$T/mpi64")
b1m=$(median <"$T/bridged1m"); m1m=$(median <"$T/mpi1m")
pp=$(median <"$T/pingpong"); lat=$(median <"$T/lat")
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "### Across hosts: bridged edges (2 ranks), medians of $RUNS runs (load average $load)"
echo "(figures: medians; ratios: the median of each run's ratio)"
echo
echo "| measure | bridged | yardstick | ratio | goal |"
echo "|---|---|---|---|---|"
awk -v b="$b64" -v l="$l64" -v r="$(ratio "$T/bridged64" "$T/local64")" 'BEGIN { printf "| 64 B records/s vs the same edge local (loopback) | %.2fM | %.2fM | %.2fx | >= 0.3x |\n", b/1e6, l/1e6, r }'
awk -v b="$b64" -v m="$m64" -v r="$(ratio "$T/bridged64" "$T/mpi64")" 'BEGIN { printf "| 64 B records/s vs raw MPI, one message per record (loopback) | %.2fM | %.2fM | %.1fx | >= 4x |\n", b/1e6, m/1e6, r }'
awk -v b="$b1m" -v m="$m1m" -v r="$(ratio "$T/bridged1m" "$T/mpi1m")" 'BEGIN { printf "| 1 MiB records, GB/s vs raw MPI 1 MiB messages (loopback) | %.2f | %.2f | %.2fx | >= 0.6x |\n", b/1e9, m/1e9, r }'
if [ "$VETH" = yes ]; then
	v1m=$(median <"$T/veth1m"); vm1m=$(median <"$T/vmpi1m")
	awk -v b="$v1m" -v m="$vm1m" -v r="$(ratio "$T/veth1m" "$T/vmpi1m")" 'BEGIN { printf "| 1 MiB records, GB/s vs raw MPI 1 MiB messages (veth, two namespaces) | %.2f | %.2f | %.2fx | >= 0.8x |\n", b/1e9, m/1e9, r }'
else
	echo "| 1 MiB records over veth | skipped: two network namespaces need root and iproute2 ($VETH) | - | - | >= 0.8x |"
fi
echo "| CPU of an idle bridge process, 1 idle edge ($IDLE_SECS s) | $idle1 % | - | - | <= 1 % |"
echo "| CPU of an idle bridge process, 4 idle edges ($IDLE_SECS s) | $idle4 % | - | - | <= 1 % |"
awk -v l="$lat" -v p="$pp" 'BEGIN { printf "| first record after 50 ms idle, one-way us | %.1f | ping-pong %.1f | +%.0f us | <= raw + 1000 us |\n", l, p, l - p }'
echo
echo "Per run (in order): 64 B local $(awk '{ printf "%.2fM ", $1 / 1e6 }' "$T/local64")"
echo "  bridged $(awk '{ printf "%.2fM ", $1 / 1e6 }' "$T/bridged64")raw MPI $(awk '{ printf "%.2fM ", $1 / 1e6 }' "$T/mpi64")"
echo "  1 MiB loopback bridged $(awk '{ printf "%.2f ", $1 / 1e9 }' "$T/bridged1m")raw MPI $(awk '{ printf "%.2f ", $1 / 1e9 }' "$T/mpi1m")GB/s"
if [ "$VETH" = yes ]; then
	echo "  1 MiB veth bridged $(awk '{ printf "%.2f ", $1 / 1e9 }' "$T/veth1m")raw MPI $(awk '{ printf "%.2f ", $1 / 1e9 }' "$T/vmpi1m")GB/s"
fi
echo "  latency after idle $(awk '{ printf "%.0f ", $1 }' "$T/lat")us, ping-pong $(awk '{ printf "%.1f ", $1 }' "$T/pingpong")us"
exit 0

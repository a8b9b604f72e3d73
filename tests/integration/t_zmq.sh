#!/bin/bash
# The second engine: `ipcrun --host NAME` runs one host's part of a graph
# whose hosts have addresses, its bridged edges carried by the ZeroMQ
# kernels of libipcnet.so. Two hosts on loopback, each started by hand:
#  - the output is byte for byte the one-host run's, plain TCP and CURVE;
#  - the worker killed mid-run: head's edges end (IPC_TX_ABORTED downstream,
#    -EPIPE upstream), exit 1, never a silent resume;
#  - a second peer on an edge: refused, the edge aborted;
#  - nothing of any run left behind.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_zmq ($BUILD)"
if [ ! -f "$BUILD/lib/libipcnet.so" ]; then
	echo "  skip: no $BUILD/lib/libipcnet.so (make test installs libzmq3-dev)"
	exit 0
fi
P=$((20000 + RANDOM % 20000))
addr() { # FILE OUT: hosts with loopback addresses (ports P.., P+2000..)
	sed "s/^hosts *= *head, worker/hosts = head@127.0.0.1:$P, worker@127.0.0.1:$((P + 2000))/" \
		"$1" >"$2"
	P=$((P + 10))
}
trap 'rm -f config/.z_*.ini; rm -rf "$T" "$IPCRUN_STATE_DIR"' EXIT

# two_hosts NAME FILE: worker in the background, head in the foreground;
# RCW, RCH their exit status, EW/EH their stderr, HW/HH their handles.
two_hosts() {
	local name=$1 f=$2
	timeout -k 5 60 "$IPCRUN" -v --no-progress --host worker "$f" \
		>"$T/$name.w.out" 2>"$T/$name.w.err" &
	local wp=$!
	timeout -k 5 60 "$IPCRUN" -v --no-progress --host head "$f" \
		>"$T/$name.h.out" 2>"$T/$name.h.err"
	RCH=$?
	wait "$wp"
	RCW=$?
	EW=$T/$name.w.err; EH=$T/$name.h.err
	HW=$(handle_of "$EW"); HH=$(handle_of "$EH")
}

addr config/hosts.ini config/.z_plain.ini
"$IPCRUN" --no-progress config/.z_plain.ini >"$T/ref.out" 2>/dev/null
two_hosts plain config/.z_plain.ini
check "zmq: both hosts exit 0" test "$RCH" -eq 0 -a "$RCW" -eq 0
check "zmq: output byte-identical to one host" cmp -s "$T/ref.out" "$T/plain.h.out"
check_clean "$HW" "zmq worker" "$EW"
check_clean "$HH" "zmq head" "$EH"

# CURVE: a key pair per host in the topology's curve folder
mkdir -p "$T/keys"
"$BUILD/bin/ipcnet-keygen" "$T/keys" head && "$BUILD/bin/ipcnet-keygen" "$T/keys" worker
check "zmq: ipcnet-keygen writes a 0600 secret key" \
	test "$(stat -c %a "$T/keys/head.key")" = 600 -a "$(wc -c <"$T/keys/head.pub")" -eq 40
addr config/hosts.ini config/.z_curve.ini
sed -i "s|^\[graph\]|[graph]\ncurve = $T/keys|" config/.z_curve.ini
two_hosts curve config/.z_curve.ini
check "zmq CURVE: both hosts exit 0, same output" \
	test "$RCH" -eq 0 -a "$RCW" -eq 0 -a "$(cmp "$T/ref.out" "$T/curve.h.out" && echo same)" = same
# an impostor: a worker whose key pair is not the one head knows as
# worker.pub (each host reads its own key folder, -D curve=...)
mkdir -p "$T/kh" "$T/kw"
cp "$T/keys/head.key" "$T/keys/head.pub" "$T/keys/worker.pub" "$T/kh/"
"$BUILD/bin/ipcnet-keygen" "$T/kw" worker
cp "$T/keys/head.pub" "$T/kw/"
addr config/hosts.ini config/.z_bad.ini
timeout -k 5 8 "$IPCRUN" --no-progress --host worker -D curve="$T/kw" config/.z_bad.ini \
	>/dev/null 2>"$T/bad.w.err" &
wp=$!
timeout -k 5 8 "$IPCRUN" --no-progress --host head -D curve="$T/kh" config/.z_bad.ini \
	>"$T/bad.h.out" 2>"$T/bad.h.err"
RCH=$?
wait "$wp"
check "zmq CURVE: an impostor worker gets nothing through" \
	test "$RCH" -ne 0 -a ! -s "$T/bad.h.out"
check "zmq CURVE: head's ZAP handler refuses it by name" \
	grep -q "refused a client that is not host 'worker' (its CURVE key is not worker.pub) on edge 1" "$T/bad.h.err"

# the worker killed mid-run
pidfile=$T/z.pid
sed "s|@PIDFILE@|$pidfile|" tests/integration/ini/hosts/endless.ini >"$T/endless.ini"
addr "$T/endless.ini" config/.z_kill.ini
timeout -k 5 60 "$IPCRUN" -v --no-progress --host worker config/.z_kill.ini \
	>"$T/kill.w.out" 2>"$T/kill.w.err" &
wp=$!
timeout -k 5 60 "$IPCRUN" -v --no-progress --host head config/.z_kill.ini \
	>"$T/kill.h.out" 2>"$T/kill.h.err" &
hp=$!
if wait_for 20000 test -s "$pidfile"; then
	sleep 0.3
	wipc=$(pgrep -P "$wp" ipcrun)
	t0=$(now_ms)
	kill -9 "$wipc"
	wait "$hp"
	RCH=$?
	ms=$(( $(now_ms) - t0 ))
	wait "$wp"
	echo "       kill -9 of the worker -> head exit: $ms ms"
	check "zmq: worker killed: head exits 1 within 10 s ($ms ms)" \
		test "$RCH" -eq 1 -a "$ms" -lt 10000
	check "zmq: worker killed: the disconnect is named, never resumed" \
		grep -q "host 'worker' disconnected on edge [01]; the edge is aborted, never resumed" "$T/kill.h.err"
	check "zmq: worker killed: downstream saw IPC_TX_ABORTED" \
		grep -q "^sink: input ended with 3 (aborted)$" "$T/kill.h.err"
	check_clean "$(handle_of "$T/kill.h.err")" "zmq kill, head" "$T/kill.h.err"
	"$IPCRUN" --gc >/dev/null 2>&1
	check_clean "$(handle_of "$T/kill.w.err")" "zmq kill, worker after --gc" "$T/kill.w.err"
else
	not_ok "zmq kill: the graph never ran"; kill "$wp" "$hp"; wait
fi

# a second head connecting to the worker's edge
addr "$T/endless.ini" config/.z_two.ini
rm -f "$pidfile"
timeout -k 5 30 "$IPCRUN" -v --no-progress --host worker config/.z_two.ini \
	>"$T/two.w.out" 2>"$T/two.w.err" &
wp=$!
timeout -k 5 30 "$IPCRUN" -v --no-progress --host head config/.z_two.ini \
	>"$T/two.h.out" 2>"$T/two.h.err" &
hp=$!
if wait_for 20000 test -s "$pidfile"; then
	timeout -k 5 20 "$IPCRUN" -v --no-progress --host head config/.z_two.ini \
		>"$T/two.h2.out" 2>"$T/two.h2.err"
	wait "$wp"
	RCW=$?
	kill -INT "$(pgrep -P "$hp" ipcrun)" 2>/dev/null
	wait "$hp"
	check "zmq: a second peer on an edge: the worker aborts it, exit 1" \
		test "$RCW" -eq 1
	check "zmq: a second peer on an edge: named" \
		grep -q "a second peer connected to edge 0; the edge is aborted" "$T/two.w.err"
	check_clean "$(handle_of "$T/two.w.err")" "zmq second peer, worker" "$T/two.w.err"
	check_clean "$(handle_of "$T/two.h.err")" "zmq second peer, head" "$T/two.h.err"
else
	not_ok "zmq second peer: the graph never ran"; kill "$wp" "$hp"; wait
fi

finish

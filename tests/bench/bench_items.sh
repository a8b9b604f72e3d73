#!/bin/bash
# Items: does a graph pay off against the loop it replaces? (issue 10)
#
#   bench_items.sh BUILD        (make bench runs it through BUILD/bench/bench_items)
#
# Each case runs IPC_BENCH_RUNS times (default 3), interleaved with its
# alternative, and the medians are compared (the machine is shared: a single
# run says little). Cases:
#   demo      config/demo.ini's word count (4 M words) through ipcrun, in
#             processes and --threads, and config/words.ini's (every word an
#             item), against wc_plain (the same count as one single-threaded
#             C program) and tr | sort | uniq -c
#   functions three i64(i64) function kernels (src -> f1 -> f2 -> f3 -> sink,
#             two processes) against fn_loop (the three in one loop)
#   8-byte    8-byte items summed in another process, kernels written with
#             arrays (seq_source, ipc_next_many) and with a call per item,
#             against a pipe with stdio buffering and with 64 KiB writes
#             (pipe_items)
#   trickle   one item per ms through three stages (src -> f -> f -> sink):
#             p50 and p99 from emit to receive; and one item per second
set -u
export LC_ALL=C
B=${1:?usage: bench_items.sh BUILD}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
case $B in /*) ;; *) B=$ROOT/$B ;; esac
RUNS=${IPC_BENCH_RUNS:-3}
IPCRUN=$B/bin/ipcrun
LIB=$B/bench/libbenchkernels.so
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-items.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export IPCRUN_STATE_DIR=$TMP/state

# time_of CMD...: wall seconds of one run (output to $TMP/out), or "fail"
time_of() {
	local s e
	s=$(date +%s.%N)
	if ! "$@" >"$TMP/out" 2>"$TMP/err"; then
		echo fail
		sed 's/^/    /' "$TMP/err" >&2
		return
	fi
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }

# ---- demo ----------------------------------------------------------------
text=$TMP/text.txt
for _ in $(seq 2000); do cat config/data/ferry.txt; done >"$text"
words=$(tr -cs 'A-Za-z0-9' '\n' <"$text" | grep -c .)
uniqc() { tr -cs 'A-Za-z0-9' '\n' <"$text" | tr 'A-Z' 'a-z' | sort | uniq -c | sort -rn | head -10; }
p=() t=() w=() c=() u=()
for _ in $(seq "$RUNS"); do
	p+=("$(time_of "$IPCRUN" --no-progress config/demo.ini)")
	grep -q "summary: $words counted" "$TMP/out" || echo "bench_items: demo counted wrong" >&2
	t+=("$(time_of "$IPCRUN" --no-progress --threads config/demo.ini)")
	w+=("$(time_of "$IPCRUN" --no-progress config/words.ini)")
	grep -q "summary: $words counted" "$TMP/out" || echo "bench_items: words.ini counted wrong" >&2
	c+=("$(time_of "$B/bench/wc_plain" config/data/ferry.txt 2000 10)")
	grep -q "summary: $words counted" "$TMP/out" || echo "bench_items: wc_plain counted wrong" >&2
	u+=("$(time_of uniqc)")
done
mp=$(echo "${p[*]}" | median) mt=$(echo "${t[*]}" | median) mw=$(echo "${w[*]}" | median)
mc=$(echo "${c[*]}" | median) mu=$(echo "${u[*]}" | median)
echo "### Word count of make run ($words words; median of $RUNS, seconds)"
echo
echo "| job | time | vs one C loop |"
echo "|---|--:|--:|"
row() { awk -v n="$1" -v t="$2" -v c="$mc" 'BEGIN { printf "| %s | %.3f s | %.2fx |\n", n, t, t / c }'; }
row "config/demo.ini: lines to 2 word_count replicas, 5 processes" "$mp"
row "the same, --threads" "$mt"
row "config/words.ini: every word an item, 9 kernels, 7 processes" "$mw"
row "single-threaded C (tests/bench/wc_plain.c)" "$mc"
row "tr \\| sort \\| uniq -c" "$mu"
echo

# ---- three function kernels ----------------------------------------------
N=${IPC_BENCH_FN_ITEMS:-20000000}
cat >"$TMP/fn3.ini" <<INI
[graph]
name = bench-fn3
[process:p1]
[process:p2]
[kernel:src]
library  = libipckernels.so
function = seq_source
args     = u64:$N
process  = p1
[kernel:f1]
library   = $LIB
function  = b_inc
signature = i64(i64)
process   = p1
[kernel:f2]
library   = $LIB
function  = b_dbl
signature = i64(i64)
process   = p2
[kernel:f3]
library   = $LIB
function  = b_mix
signature = i64(i64)
process   = p2
[kernel:sink]
library  = libipckernels.so
function = discard_sink
process  = p2
[connections]
connect = src.out -> f1.in0
connect = f1.out -> f2.in0
connect = f2.out -> f3.in0
connect = f3.out -> sink.in
INI
g=() l=()
for _ in $(seq "$RUNS"); do
	g+=("$(time_of "$IPCRUN" --no-progress "$TMP/fn3.ini")")
	grep -q "records=$N " "$TMP/out" || echo "bench_items: fn3 lost items" >&2
	l+=("$(time_of "$B/bench/fn_loop" "$LIB" "$N")")
done
mg=$(echo "${g[*]}" | median) ml=$(echo "${l[*]}" | median)
echo "### Three i64(i64) function kernels ($N items; median of $RUNS)"
echo
echo "| job | items/s | vs one loop |"
echo "|---|--:|--:|"
awk -v n="$N" -v g="$mg" -v l="$ml" 'BEGIN {
	printf "| ipcrun: src -> f1 -> f2 -> f3 -> sink, 2 processes | %.1f M | %.2fx |\n", n / g / 1e6, l / g
	printf "| the three functions in one loop (fn_loop) | %.1f M | 1.00x |\n", n / l / 1e6 }'
echo

# ---- 8-byte items between two processes ---------------------------------
# Two ways to write the kernels (an API call per item, or arrays of items:
# ipc_emit_many / ipc_next_many, as seq_source does) against the same two
# ways over a pipe (stdio per item, write / read of 64 KiB). Every sink
# reads and sums every item and is checked.
M=${IPC_BENCH_8B_ITEMS:-50000000}
eight_ini() { # source-function source-args sink-function
	cat <<INI
[graph]
name = bench-8b
[process:a]
[process:b]
[kernel:src]
library  = $2
function = $1
args     = u64:$M
process  = a
[kernel:sink]
library  = $LIB
function = $3
process  = b
[connections]
connect = src.out -> sink.in
INI
}
eight_ini seq_source libipckernels.so b_sum_many >"$TMP/eight_many.ini"
eight_ini b_seq_each "$LIB" b_sum_each >"$TMP/eight_each.ini"
sum=$(awk -v m="$M" 'BEGIN { printf "%.0f", m * (m - 1) / 2 }')
em=() ee=() q=() qb=()
for _ in $(seq "$RUNS"); do
	em+=("$(time_of "$IPCRUN" --no-progress "$TMP/eight_many.ini")")
	grep -q "sum: items=$M sum=$sum$" "$TMP/out" || echo "bench_items: 8-byte (many) lost items" >&2
	ee+=("$(time_of "$IPCRUN" --no-progress "$TMP/eight_each.ini")")
	grep -q "sum: items=$M sum=$sum$" "$TMP/out" || echo "bench_items: 8-byte (each) lost items" >&2
	q+=("$(time_of "$B/bench/pipe_items" "$M")")
	qb+=("$(time_of "$B/bench/pipe_items" "$M" bulk)")
done
mem=$(echo "${em[*]}" | median) mee=$(echo "${ee[*]}" | median)
mq=$(echo "${q[*]}" | median) mqb=$(echo "${qb[*]}" | median)
echo "### 8-byte items between two processes ($M items, summed; median of $RUNS, whole runs)"
echo
echo "| path | items/s | vs stdio pipe | vs 64 KiB pipe |"
echo "|---|--:|--:|--:|"
awk -v n="$M" -v em="$mem" -v ee="$mee" -v q="$mq" -v qb="$mqb" 'BEGIN {
	r = "| %s | %.1f M | %.2fx | %.2fx |\n"
	printf r, "ipcrun, arrays: seq_source (ipc_emit_many) -> ipc_next_many", n / em / 1e6, q / em, qb / em
	printf r, "ipcrun, a call per item: ipc_emit -> ipc_next", n / ee / 1e6, q / ee, qb / ee
	printf r, "pipe, stdio: fwrite / fread per item (pipe_items)", n / q / 1e6, 1, qb / q
	printf r, "pipe, arrays: write / read of 64 KiB (pipe_items bulk)", n / qb / 1e6, q / qb, 1 }'
echo

# ---- trickle latency ------------------------------------------------------
T=${IPC_BENCH_TRICKLE_ITEMS:-2000}
trickle_ini() { # items period_us
	cat <<INI
[graph]
name = bench-trickle
[process:a]
[process:b]
[kernel:src]
library  = $LIB
function = b_trickle
args     = u64:$1, u64:$2
process  = a
[kernel:f1]
library   = $LIB
function  = b_mix
signature = i64(i64)
process   = a
[kernel:f2]
library   = $LIB
function  = b_mix
signature = i64(i64)
process   = b
[kernel:sink]
library  = $LIB
function = b_latency
process  = b
[connections]
connect = src.out -> f1.in0
connect = f1.out -> f2.in0
connect = f2.out -> sink.in
INI
}
trickle_ini "$T" 1000 >"$TMP/trickle.ini"
p50=() p99=()
for _ in $(seq "$RUNS"); do
	time_of "$IPCRUN" --no-progress "$TMP/trickle.ini" >/dev/null
	p50+=("$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' "$TMP/out")")
	p99+=("$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$TMP/out")")
done
# one item a second (a slow sensor): one run of S items, p50 and the worst
S=${IPC_BENCH_SLOW_ITEMS:-8}
trickle_ini "$S" 1000000 >"$TMP/slow.ini"
time_of "$IPCRUN" --no-progress "$TMP/slow.ini" >/dev/null
s50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' "$TMP/out")
smax=$(sed -n 's/.*max_us=\([0-9.]*\).*/\1/p' "$TMP/out")
echo "### Trickle: items through three stages, emit -> receive"
echo
echo "| source | items | p50 | p99 (max) |"
echo "|---|--:|--:|--:|"
echo "| one item per ms (median of $RUNS runs) | $T | $(echo "${p50[*]}" | median) us | $(echo "${p99[*]}" | median) us |"
echo "| one item per second (one run) | $S | $s50 us | ($smax us) |"
echo
"$B/bench/bench_kapi"

#!/bin/bash
# Replicas of a CPU-bound function kernel (f_busy: about 6 us of arithmetic
# per item, in libtestkernels.so) between seq_source and digest_sink, each
# stage its own process:
#   replicas = 1                 the kernel alone (no split, no merge)
#   replicas = 2, order = any    split_rr + 2 processes + merge
#   replicas = 2, order = keep   seq_split_rr + 2 processes + merge_ordered
# Items/s = items / wall time of the whole ipcrun run (start-up included,
# about 10 ms of a run of about a second); CPU per item = user + system
# time of ipcrun and every kernel process / items (what the split, the
# merge and the ordering cost in CPU). Goals (issue 12): replicas 2 vs
# 1 >= 1.7x on a 2-core machine; keep vs any >= 0.9x. Cases interleaved,
# IPC_BENCH_RUNS rounds (default 5), medians. Every run's digest is
# checked: the same sum in every case, and keep's crc32 (order) equal to
# replicas = 1's.
#   bench_replicas [items]          default 200000
BUILD=@BUILD@
IPCRUN=$BUILD/bin/ipcrun
export IPC_KERNEL_PATH=$BUILD/tests/integration
N=${1:-200000}
ROUNDS=${IPC_BENCH_RUNS:-5}
[ "$ROUNDS" -ge 3 ] 2>/dev/null || ROUNDS=3
T=$(mktemp -d /tmp/bench_replicas.XXXXXX)
trap 'rm -rf "$T"' EXIT

cat >"$T/b.ini" <<'INI'
[graph]
name = bench_replicas
[process:src]
[process:work]
[process:sink]
[kernel:src]
library = libipckernels.so
function = seq_source
process = src
args = u64:${N}
[kernel:w]
library = libtestkernels.so
function = f_busy
signature = i64(i64)
process = work
replicas = ${R}
order = ${ORDER}
[kernel:sink]
library = libipckernels.so
function = digest_sink
process = sink
[connections]
connect = src.out -> w.in0
connect = w.out -> sink.in
INI

cases=("1 any" "2 any" "2 keep")
names=("replicas = 1" "replicas = 2, order = any" "replicas = 2, order = keep")
declare -A rate digest cpu
fail=0
for r in $(seq "$ROUNDS"); do
	for c in 0 1 2; do
		set -- ${cases[$c]}
		t0=$(date +%s%N)
		TIMEFORMAT='%3U %3S'
		{ time "$IPCRUN" --no-progress -D N="$N" -D R="$1" -D ORDER="$2" "$T/b.ini" \
			>"$T/out" 2>"$T/err"; } 2>"$T/cpu"
		rc=$?
		t1=$(date +%s%N)
		out=$(cat "$T/out")
		if [ $rc -ne 0 ] || ! grep -q "records=$N " <<<"$out"; then
			echo "bench_replicas: ${names[$c]}: exit $rc, $out"; cat "$T/err"
			fail=1
			continue
		fi
		rate[$c]+="$(awk -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }') "
		cpu[$c]+="$(awk -v n="$N" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$T/cpu") "
		digest[$c]=$out
	done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
sum_of() { sed -n 's/.* sum=\([0-9a-f]*\).*/\1/p' <<<"$1"; }
crc_of() { sed -n 's/.* crc32=\([0-9a-f]*\).*/\1/p' <<<"$1"; }
[ "$(sum_of "${digest[0]}")" = "$(sum_of "${digest[1]}")" ] &&
	[ "$(sum_of "${digest[0]}")" = "$(sum_of "${digest[2]}")" ] ||
	{ echo "bench_replicas: the cases disagree on the items' sum"; fail=1; }
[ "$(crc_of "${digest[0]}")" = "$(crc_of "${digest[2]}")" ] ||
	{ echo "bench_replicas: order = keep did not keep the order"; fail=1; }
[ $fail -eq 0 ] || exit 1

m0=$(echo "${rate[0]}" | median)
m1=$(echo "${rate[1]}" | median)
m2=$(echo "${rate[2]}" | median)
echo "### Replicas: a CPU-bound function kernel (about 6 us per item), $N items, median of $ROUNDS"
echo
echo "| case | items/s | vs replicas = 1 | CPU per item (all processes) |"
echo "|---|---|---|---|"
for c in 0 1 2; do
	m=$(echo "${rate[$c]}" | median)
	u=$(echo "${cpu[$c]}" | median)
	awk -v n="${names[$c]}" -v m="$m" -v b="$m0" -v u="$u" \
		'BEGIN { printf "| %s | %.0f | %.2fx | %.2f us |\n", n, m, m / b, u }'
done
echo
awk -v a="$m1" -v b="$m0" -v k="$m2" 'BEGIN {
	printf "replicas 2 vs 1: %.2fx (goal >= 1.7x); order = keep vs any: %.2fx (goal >= 0.9x)\n", a / b, k / a }'
echo "runs (items/s): replicas=1: ${rate[0]}; 2 any: ${rate[1]}; 2 keep: ${rate[2]}"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (above the"
echo "CPU count, other work shares the cores and the ratios mean little)"

#!/bin/bash
# replicas = N: round-robin and hash splits, first-come and ordered merges,
# function and actor kernels, in processes and with --threads. Items take
# random times (one in 32 about 1000x longer than the rest), so replicas
# finish out of order: order = any must deliver every item, order = keep
# exactly the input's order. Then: the demo's word count with keyed_count
# replicated behind a hash split gives words.ini's top 10; a replica killed
# with -9 makes ipcrun exit 1 naming it with its index; a replicated kernel
# with two inputs is refused before anything starts. Nothing of any run
# survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_replicas ($BUILD)"
N=3000

# f_jitter: x squared, in order
seq 0 $((N - 1)) | awk '{ print $1 * $1 }' >"$T/squares"
sort -n "$T/squares" >"$T/squares.sorted"
# t_jitter_pass: x + 1e9 first for multiples of 7, x unless a multiple of 5
seq 0 $((N - 1)) | awk '{ if ($1 % 7 == 0) print $1 + 1000000000;
                          if ($1 % 5 != 0) print $1 }' >"$T/passed"
sort -n "$T/passed" >"$T/passed.sorted"

for mode in "" --threads; do
	for split in rr hash; do
		for order in any keep; do
			what="function kernel, split=$split order=$order${mode:+ $mode}"
			run_ipcrun rf $mode -D N=$N -D SPLIT=$split -D ORDER=$order \
				"$INI/replicas.ini"
			if [ "$order" = keep ]; then
				check "$what: exit 0, every item in the input's order" \
					test "$RC" -eq 0 -a -z "$(cmp "$T/rf.out" "$T/squares" 2>&1)"
			else
				cmp -s "$T/rf.out" "$T/squares" || reordered=1
				sort -n "$T/rf.out" >"$T/rf.sorted"
				check "$what: exit 0, every item once" \
					test "$RC" -eq 0 -a -z "$(cmp "$T/rf.sorted" "$T/squares.sorted" 2>&1)"
			fi
			[ "$RC" -eq 0 ] || sed 's/^/      /' "$E"
			check_clean "$H" "$what"

			what="actor kernel (drops, extra records), split=$split order=$order${mode:+ $mode}"
			run_ipcrun ra $mode -D N=$N -D SPLIT=$split -D ORDER=$order \
				"$INI/replicas_actor.ini"
			if [ "$order" = keep ]; then
				check "$what: exit 0, every item in the input's order" \
					test "$RC" -eq 0 -a -z "$(cmp "$T/ra.out" "$T/passed" 2>&1)"
			else
				sort -n "$T/ra.out" >"$T/ra.sorted"
				check "$what: exit 0, every item once" \
					test "$RC" -eq 0 -a -z "$(cmp "$T/ra.sorted" "$T/passed.sorted" 2>&1)"
			fi
			[ "$RC" -eq 0 ] || sed 's/^/      /' "$E"
		done
	done
done

# without keep, the random delays do reorder items: keep is what orders them
check "order=any delivered items out of order at least once (keep is tested)" \
	test "${reordered:-0}" -eq 1

# a filter (bool result) keeps the order of what it lets through
run_ipcrun filt -D N=$N -D FN=f_even -D 'SIG=bool(i64)' -D ORDER=keep -D R=4 \
	"$INI/replicas.ini"
check "filter, 4 replicas, order=keep: the even numbers in order" \
	test "$RC" -eq 0 -a "$(seq 0 2 $((N - 1)) | cmp - "$T/filt.out" 2>&1)" = ""

# what replicas send after their input ended comes last, replica by replica
run_ipcrun tail -D N=2000 -D FN=t_tail_pass -D ORDER=keep "$INI/replicas_actor.ini"
check "order=keep: records sent after the input ended come last, by replica" \
	test "$RC" -eq 0 -a "$({ seq 0 1999; echo -667; echo -667; echo -666; } |
		cmp - "$T/tail.out" 2>&1)" = ""

# capacity 1: the ordered merge must not deadlock when channels are tiny
run_ipcrun cap1 -D N=500 -D CAP=1 -D ORDER=keep -D SPLIT=hash \
	"$INI/replicas_actor.ini"
check "capacity 1, hash split, order=keep: exit 0, in order" \
	test "$RC" -eq 0 -a "$(seq 0 499 | awk '{ if ($1 % 7 == 0) print $1 + 1000000000;
		if ($1 % 5 != 0) print $1 }' | cmp - "$T/cap1.out" 2>&1)" = ""

# --check and --dot show the expansion
"$IPCRUN" --check -D R=2 "$INI/replicas.ini" >"$T/check.out" 2>&1
has_all() { # file, patterns...
	local f=$1 p; shift
	for p in "$@"; do grep -q -- "$p" "$f" || return 1; done
}
check "--check lists w#0, w#1, w#split (split_rr), w#merge (merge)" \
	has_all "$T/check.out" "kernel w#0: f_jitter" "kernel w#1: f_jitter" \
	"kernel w#split: split_rr" "kernel w#merge: merge from"
check "--check: a line says what replicas = 2 expanded into" \
	grep -q "^  replicas of w (line 20): w#0..w#1, split rr by w#split, merged by w#merge (order any)$" "$T/check.out"
check "--check: the replicas run in processes work#0 and work#1" \
	test "$(grep -c '^  process work#[01]: 1 thread$' "$T/check.out")" -eq 2
"$IPCRUN" --dot -D R=2 -D ORDER=keep "$INI/replicas.ini" >"$T/dot.out" 2>&1
check "--dot: merge_ordered behind the replicas" \
	grep -q '"w#1" -> "w#merge"' "$T/dot.out"

# words.ini's word count, its four counters as one replicated section
run_ipcrun demo config/words.ini
cp "$T/demo.out" "$T/demo.top"
run_ipcrun repl --stats config/replicated.ini
check "replicated.ini (keyed_count x4, hash split): words.ini's top 10" \
	test "$RC" -eq 0 -a "$(head -11 "$T/repl.out")" = "$(head -11 "$T/demo.top")" \
	-a "$(head -11 "$T/repl.out" | wc -l)" -eq 11
check "replicated.ini: --stats shows count#0..count#3" \
	test "$(grep -Ec '^count#[0-3] +count#[0-3] ' "$T/repl.err")" -eq 4
check_clean "$H" "replicated.ini"

# a replica killed with -9 (value 700 goes to replica 700 % 3 = 1)
run_ipcrun die -D FN=t_die_at -D ARGS=700 -D ORDER=keep "$INI/replicas_actor.ini"
check "a replica killed: exit 1" test "$RC" -eq 1
check "a replica killed: named with its index and process" \
	grep -Eq "^ipcrun: kernel 'w#1' \(process 'work#1', pid [0-9]+\) died: killed by signal 9" "$E"
check_clean "$H" "a replica killed"

# two inputs cannot be replicated
cat >"$T/join.ini" <<'INI'
[kernel:a]
library = libtestkernels.so
function = t_seq_i64
args = 0, 10
[kernel:b]
library = libtestkernels.so
function = t_seq_i64
args = 0, 10
[kernel:add]
library = libtestkernels.so
function = f_add
signature = i64(i64, i64)
replicas = 2
[kernel:out]
library = libtestkernels.so
function = t_count
[connections]
connect = a.out -> add.in0
connect = b.out -> add.in1
connect = add.out -> out.in
INI
"$IPCRUN" --check "$T/join.ini" >"$T/join.out" 2>"$T/join.err"
RC=$?
check "two inputs replicated: --check exits 2" test "$RC" -eq 2
check "two inputs replicated: the replicas line, the inputs' lines, the fix" \
	grep -q "join.ini:13: error: kernel 'add' has 2 inputs (connected at lines 18 and 19); only a kernel with one input can be replicated" "$T/join.err"

finish

#!/bin/bash
# A table of bad topologies: tests/integration/ini/bad/*.ini, each opening
# with "; expect: LINE: MESSAGE" (LINE "-" for the file as a whole). ipcrun
# must print FILE:LINE: error: MESSAGE..., exit 2, and start nothing: no run
# is recorded, no buffer created, no kernel process started.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_errors ($BUILD)"
n=0
for f in "$INI"/bad/*.ini; do
	n=$((n + 1))
	exp=$(sed -n '1s/^; expect: //p' "$f")
	line=${exp%%: *}
	msg=${exp#*: }
	if [ "$line" = - ]; then want="$f: error: $msg"; else want="$f:$line: error: $msg"; fi
	run_ipcrun bad "$f"
	name=$(basename "$f" .ini)
	if [ "$RC" -ne 2 ]; then
		not_ok "$name: exit $RC, expected 2"
	elif ! grep -qF -- "$want" "$T/bad.err"; then
		not_ok "$name: expected '$want', got:"
		sed 's/^/      /' "$T/bad.err"
	elif ! grep -q "nothing was started$" "$T/bad.err" || [ -n "$H" ] ||
		[ -n "$(ls -A "$IPCRUN_STATE_DIR")" ]; then
		not_ok "$name: something was started"
	else
		ok "$name"
	fi
done
check "at least 20 bad topologies ($n)" test "$n" -ge 20

# several errors in one file are all reported, in line order
cat "$INI"/bad/02_unknown_graph_key.ini >"$T/multi.ini"
printf 'shm = tmpfs\n[kernel:x]\nlibrary = libtestkernels.so\nfunction = nope\n' >>"$T/multi.ini"
run_ipcrun multi "$T/multi.ini"
check "every error of a file is reported, in line order" \
	test "$(sed -n 's/^[^:]*:\([0-9]*\): error: .*/\1/p' "$T/multi.err" | tr '\n' ' ')" = "3 4 7 "

# -D errors name the command line
run_ipcrun dbad -D bufer=1M "$INI/pipeline3.ini"
check "-D with an unknown key: exit 2" test "$RC" -eq 2
check "-D with an unknown key: named" \
	grep -qF "ipcrun: -D: error: unknown [graph] key 'bufer'; did you mean 'buffer'?" "$T/dbad.err"
run_ipcrun dbad2 -D buffer=lots "$INI/pipeline3.ini"
check "-D with a bad value: named" grep -qF "ipcrun: -D: error: buffer 'lots' is not a size" "$T/dbad2.err"

# the cause comes first: a misspelt kernel in a connection before the
# "never connected" it causes, which says it may follow from it
printf '%s\n' '[kernel:src]' 'library = libtestkernels.so' 'function = t_seq' \
	'args = u64:10' '[kernel:sq]' 'library = libtestkernels.so' 'function = f_square' \
	'signature = i64(i64)' '[kernel:out]' 'library = libtestkernels.so' \
	'function = t_count' '[connections]' 'connect = src.out -> sqr.in0' \
	'connect = sq.out -> out.in' >"$T/order.ini"
run_ipcrun order "$T/order.ini"
check "error order: the misspelt kernel first" \
	test "$(grep -m1 ': error: ' "$T/order.err")" = "$T/order.ini:13: error: unknown kernel 'sqr' in 'sqr.in0'; did you mean 'sq'?"
check "error order: then what it causes, said to follow from it" \
	grep -qF "$T/order.ini:5: error: input 'sq.in0' is never connected; add 'connect = KERNEL.PORT -> sq.in0' under [connections] (this may follow from an error above)" "$T/order.err"

# did you mean, for a function and for a library (a bare name, and a path)
sed -e 's/function = f_square/function = f_sqare/' -e '2s/libtestkernels.so/libtestkernel.so/' \
	-e 's/sqr.in0/sq.in0/' "$T/order.ini" >"$T/typo.ini"
run_ipcrun typo "$T/typo.ini"
check "a misspelt function: did you mean" \
	grep -qF "$T/typo.ini:7: error: library 'libtestkernels.so' has no function 'f_sqare'; did you mean 'f_square'?" "$T/typo.err"
check "a misspelt library: did you mean" \
	grep -qE "^$T/typo.ini:2: error: cannot load library 'libtestkernel.so': .*; did you mean 'libtestkernels.so'\?$" "$T/typo.err"
sed -e "2s|libtestkernels.so|$PWD/$BUILD/tests/integration/libtestkernel.so|" \
	-e 's/sqr.in0/sq.in0/' "$T/order.ini" >"$T/typo2.ini"
run_ipcrun typo2 "$T/typo2.ini"
check "a misspelt library path: did you mean, as a path" \
	grep -qF "did you mean '$PWD/$BUILD/tests/integration/libtestkernels.so'?" "$T/typo2.err"

finish

#!/bin/bash
# Items through ipcrun: the line bound of the line sources (an error naming
# the file and the line, never a buffer growing without limit), the same word
# count whatever the batch size (0: a record per item), and the batch and
# linger keys: shown by --check, bad values rejected with file:line.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh
export LC_ALL=C

echo "t_items ($BUILD)"

lines_ini() { # FILE: file_lines -> discard_sink
	cat <<INI
[graph]
buffer = 16M
[process:p1]
[kernel:src]
library = libipckernels.so
function = file_lines
args = str:$1
process = p1
[kernel:sink]
library = libipckernels.so
function = discard_sink
[connections]
connect = src.out -> sink.in
INI
}

# A file of 2 MiB without a newline: one line over the bound.
head -c 2097152 /dev/zero | tr '\0' 'x' >"$T/long.txt"
lines_ini "$T/long.txt" >"$T/long.ini"
run_ipcrun long "$T/long.ini"
check "a 2 MiB line: exit 1" test "$RC" -eq 1
check "a 2 MiB line: the message names the file, the line and the bound" \
	grep -q "^src: $T/long.txt: line 1 is longer than 1048576 bytes" "$T/long.err"
check_clean "$H" "a 2 MiB line"

# A line of exactly the bound is fine, and so is a last line without '\n'.
{ head -c 1048576 /dev/zero | tr '\0' 'y'; echo; printf 'tail'; } >"$T/edge.txt"
lines_ini "$T/edge.txt" >"$T/edge.ini"
run_ipcrun edge "$T/edge.ini"
check "a line of 1 MiB and a last line without newline: exit 0" test "$RC" -eq 0
check "... two text items of 1048577 and 5 bytes" \
	grep -qx "sink: records=2 bytes=1048582" "$T/edge.out"

# The word count is the same with a record per item and with big batches:
# words.ini (every word an item) and demo.ini (lines as items).
for ini in words demo; do
	for b in 0 64K; do
		run_ipcrun "$ini$b" -D batch=$b config/$ini.ini
		check "$ini with batch=$b: exit 0" test "$RC" -eq 0
	done
	run_ipcrun "$ini" config/$ini.ini
	check "$ini: batch=0, the default and batch=64K print the same count" \
		cmp -s <(grep -v summary "$T/$ini.out") <(grep -v summary "$T/${ini}0.out")
	check "... and 64K too" \
		cmp -s <(grep -v summary "$T/$ini.out") <(grep -v summary "$T/${ini}64K.out")
	check "... the whole text counted" grep -q "summary: 4052000 counted" "$T/${ini}0.out"
done

# Keys: shown by --check, bad values refused with file:line.
"$IPCRUN" --check -D batch=1K -D linger=2ms config/demo.ini >"$T/check.out" 2>&1
check "--check shows batch and linger" \
	grep -q "capacity 1024, batch 1024, linger 2000us$" "$T/check.out"
lines_ini "$T/edge.txt" | sed 's/^connect = src.out -> sink.in$/& batch=8K capacity=16/' >"$T/conn.ini"
"$IPCRUN" --check "$T/conn.ini" >"$T/conn.out" 2>&1
check "batch= on a connection, shown by --check" \
	grep -q "src.out -> sink.in capacity 16 batch 8192 " "$T/conn.out"
bad() { # NAME SED-EXPR EXPECTED-MESSAGE
	lines_ini "$T/edge.txt" | sed "$2" >"$T/$1.ini"
	"$IPCRUN" --check "$T/$1.ini" >"$T/$1.out" 2>&1
	local rc=$?
	check "$1: exit 2, file:line and the fix" \
		grep -q "^$T/$1.ini:[0-9]*: error: $3" "$T/$1.out"
	[ "$rc" -eq 2 ] || not_ok "$1: exit $rc, expected 2"
}
bad badbatch 's/^buffer = 16M$/&\nbatch = lots/' "batch 'lots' must be a size in bytes"
bad bigbatch 's/^buffer = 16M$/&\nbatch = 8M/' "batch 8388608 is more than a quarter of the buffer"
bad badlinger 's/^buffer = 16M$/&\nlinger = soon/' "linger 'soon' must be a duration"
bad badconn 's/^connect = src.out -> sink.in$/& batch=x/' "batch 'x' must be a size in bytes"
finish

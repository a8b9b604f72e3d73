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

finish

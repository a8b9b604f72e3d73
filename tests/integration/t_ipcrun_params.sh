#!/bin/bash
# Parameters: ${NAME} from -D, else the environment; ${NAME:-default};
# ${TOPDIR}; an unset one names file:line; a -D nobody uses is an error;
# `ipcrun -` reads the topology from standard input (TOPDIR: the working
# folder then); the stock topologies run the same from any folder.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh
ROOT=$PWD

echo "t_ipcrun_params ($BUILD)"

cat >"$T/p.ini" <<'INI'
[graph]
capacity = ${CAP:-16}
[kernel:src]
library = libtestkernels.so
function = t_seq
args = ${N}
[kernel:sink]
library = libtestkernels.so
function = t_count
[connections]
connect = src.out -> sink.in
INI

run_ipcrun unset "$T/p.ini"
check "an unset parameter: exit 2" test "$RC" -eq 2
check "an unset parameter: file:line and the fix" \
	grep -qF "p.ini:6: error: parameter \${N} is not set; give it with -D N=VALUE or in the environment, or write \${N:-DEFAULT}" "$E"

N=5 run_ipcrun env "$T/p.ini"
check "from the environment: N=5" test "$RC" -eq 0 -a "$(cat "$T/env.out")" = "count=5 sum=10"
N=5 run_ipcrun def -D N=7 "$T/p.ini"
check "-D wins over the environment: N=7" test "$RC" -eq 0 -a "$(cat "$T/def.out")" = "count=7 sum=21"

"$IPCRUN" --check -D N=3 "$T/p.ini" >"$T/cap.out" 2>&1
check "\${CAP:-16}: the default when unset" grep -q "capacity 16," "$T/cap.out"
"$IPCRUN" --check -D N=3 -D CAP=4 "$T/p.ini" >"$T/cap.out" 2>&1
check "\${CAP:-16}: -D CAP=4" grep -q "capacity 4," "$T/cap.out"

"$IPCRUN" --check -D N=3 -D NN=4 "$T/p.ini" >/dev/null 2>"$T/nn.err"
RC=$?
check "a -D the topology does not use: exit 2, named" \
	test "$RC" -eq 2 -a -n "$(grep -F "'NN' is neither a [graph] key" "$T/nn.err")"

"$IPCRUN" -v --no-progress -D N=4 - <"$T/p.ini" >"$T/stdin.out" 2>"$T/stdin.err"
RC=$?
check "ipcrun - reads standard input" test "$RC" -eq 0 -a "$(cat "$T/stdin.out")" = "count=4 sum=6"
check_clean "$(handle_of "$T/stdin.err")" "ipcrun -" "$T/stdin.err"
echo "[kernel:x]" | "$IPCRUN" --check - >/dev/null 2>"$T/stdin2.err"
check "ipcrun -: errors name <stdin>:line" grep -q "^<stdin>:1: error:" "$T/stdin2.err"

# ${TOPDIR}: the topology's folder, absolute; the working folder for stdin
mkdir -p "$T/sub"
printf '[kernel:a]\nlibrary = ${TOPDIR}/lib.so\nfunction = f\n' >"$T/sub/t.ini"
(cd / && "$ROOT/$IPCRUN" --check "$T/sub/t.ini") >/dev/null 2>"$T/td.err"
check "\${TOPDIR} is the topology's folder" grep -qF "'$T/sub/lib.so'" "$T/td.err"
(cd "$T" && "$ROOT/$IPCRUN" --check - <"$T/sub/t.ini") >/dev/null 2>"$T/td2.err"
check "\${TOPDIR} is the working folder for ipcrun -" grep -qF "'$T/lib.so'" "$T/td2.err"

# the stock topologies read their data through ${TOPDIR}: any folder will do
(cd "$T" && "$ROOT/$IPCRUN" --no-progress "$ROOT/config/pipeline.ini" >"$T/far.out" 2>"$T/far.err")
RC=$?
(cd "$ROOT" && "$ROOT/$IPCRUN" --no-progress config/pipeline.ini >"$T/near.out" 2>/dev/null)
check "config/pipeline.ini from another folder: exit 0, the same output" \
	test "$RC" -eq 0 -a -s "$T/far.out" -a -z "$(cmp "$T/far.out" "$T/near.out" 2>&1)"

finish

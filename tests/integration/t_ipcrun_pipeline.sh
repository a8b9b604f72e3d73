#!/bin/bash
# ipcrun runs graphs to a correct result: a pipeline across 3 processes, the
# same with --threads, actor kernels with every arg type, function kernels of
# several signatures (i64, f64, str, two inputs), a bool filter, a void sink;
# --check, --dot, --stats, -D, --help, --version. Nothing survives any run.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_ipcrun_pipeline ($BUILD)"

run_ipcrun p3 "$INI/pipeline3.ini"
check "pipeline across 3 processes: exit 0" test "$RC" -eq 0
check "pipeline across 3 processes: output" same_output p3 "$EXP/pipeline3.out"
check "pipeline across 3 processes: 3 kernel processes" \
	test "$(grep -c '^ipcrun: process p[123] pid' "$T/p3.err")" -eq 3
check_clean "$H" "pipeline across 3 processes"

run_ipcrun p3t --threads "$INI/pipeline3.ini"
check "--threads: exit 0" test "$RC" -eq 0
check "--threads: output" same_output p3t "$EXP/pipeline3.out"
check "--threads: one kernel process" \
	test "$(grep -c '^ipcrun: process .* pid' "$T/p3t.err")" -eq 1
check_clean "$H" "--threads"

run_ipcrun args "$INI/args.ini"
check "actor args of every type: exit 0" test "$RC" -eq 0
sort -o "$T/args.out" "$T/args.out"
check "actor args of every type: values" same_output args "$EXP/args.out"
check_clean "$H" "actor args"

run_ipcrun fn "$INI/functions.ini"
check "function kernels i64, bool filter, void sink: exit 0" test "$RC" -eq 0
check "function kernels i64, bool filter, void sink: output" \
	same_output fn "$EXP/functions.out"
check_clean "$H" "function kernels"

run_ipcrun fn2 "$INI/functions2.ini"
check "function kernels f64, str, two inputs: exit 0" test "$RC" -eq 0
sort -o "$T/fn2.out" "$T/fn2.out"
check "function kernels f64, str, two inputs: output" \
	same_output fn2 "$EXP/functions2.out"
check_clean "$H" "function kernels 2"

run_ipcrun fn2t --threads "$INI/functions2.ini"
sort -o "$T/fn2t.out" "$T/fn2t.out"
check "function kernels with --threads" same_output fn2t "$EXP/functions2.out"
check_clean "$H" "function kernels with --threads"

run_ipcrun stats --stats -D capacity=16 "$INI/pipeline3.ini"
check "--stats: exit 0" test "$RC" -eq 0
check "--stats: channel table" grep -Eq '^src\.out->mid\.in +100000 +800000 ' "$T/stats.err"
check "--stats: kernel table" grep -Eq '^sink +p3 +[0-9.]+s +0$' "$T/stats.err"
check "--stats: -D capacity=16 bounds the high-water mark" \
	awk '$1 == "src.out->mid.in" { exit !($4 <= 16) }' "$T/stats.err"
check_clean "$H" "--stats"

"$IPCRUN" --check -D capacity=16 -D name=renamed -D wait=hybrid "$INI/pipeline3.ini" \
	| sed "s|$PWD/$BUILD/|BUILD/|" >"$T/check.out"
check "--check prints the resolved graph" same_output check "$EXP/pipeline3.check"
# wait = auto (the default): hybrid while every kernel has a core, else block
if [ 3 -gt "$(nproc)" ]; then want_wait=block; else want_wait=hybrid; fi
check "wait auto: $want_wait for 3 kernels on $(nproc) cores" \
	bash -c "'$IPCRUN' --check '$INI/pipeline3.ini' | head -1 | grep -q 'wait $want_wait,'"
"$IPCRUN" --dot "$INI/pipeline3.ini" >"$T/dot.out"
check "--dot prints Graphviz" same_output dot "$EXP/pipeline3.dot"

"$IPCRUN" --help >"$T/help.out"
check "--help: every option" bash -c "for o in --check --dot --stats --progress \
	--no-progress --threads -D --gc --version --help --verbose; do \
	grep -q -- \"\$o\" '$T/help.out' || exit 1; done"
check "--help: exit codes" grep -q '^  130 ' "$T/help.out"
check "--version" bash -c "'$IPCRUN' --version | grep -q '^ipcrun [0-9]'"
"$IPCRUN" >/dev/null 2>&1
check "no topology: exit 2" test $? -eq 2
"$IPCRUN" --bogus x.ini >/dev/null 2>&1
check "unknown option: exit 2" test $? -eq 2
"$IPCRUN" "$T/does-not-exist.ini" >/dev/null 2>&1
check "missing file: exit 2" test $? -eq 2

finish

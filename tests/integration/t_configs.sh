#!/bin/bash
# Integration: every topology in config/ run by ipcrun, its output checked
# against an independent computation with standard tools (grep, tr, sort,
# uniq, awk, gzip, cmp), and nothing of any run left behind: no process, no
# /dev/shm entry, no System V object.
#
#   tests/integration/t_configs.sh BUILD        (build, build/asan, ...)
#
# t_examples.sh and t_readme.sh source this file with KX_LIB_ONLY=1 for its
# helpers (kx_*), which stop there.
set -u
export LC_ALL=C

# --- helpers ---------------------------------------------------------------

KX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KX_PASS=0
KX_FAIL=0
KX_FAILED=()
KX_TIMEOUT=${KX_TIMEOUT:-180}

# kx_init BUILD: paths, a scratch folder removed on exit.
kx_init() {
	KX_BUILD=${1:?usage: $0 BUILD}
	case $KX_BUILD in /*) ;; *) KX_BUILD=$KX_ROOT/$KX_BUILD ;; esac
	KX_IPCRUN=$KX_BUILD/bin/ipcrun
	KX_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kx-test.XXXXXX")
	trap 'rm -rf "$KX_TMP"' EXIT
	cd "$KX_ROOT" || exit 1
}

kx_pass() { KX_PASS=$((KX_PASS + 1)); echo "ok   $1"; }
kx_fail() {
	KX_FAIL=$((KX_FAIL + 1)); KX_FAILED+=("$1")
	echo "FAIL $1${2:+: $2}"
}

# kx_done NAME: the closing line and the exit status.
kx_done() {
	for f in "${KX_FAILED[@]}"; do echo "failed: $f"; done
	echo "$1: $KX_PASS passed, $KX_FAIL failed"
	[ "$KX_FAIL" -eq 0 ]
}

# What a run could leave behind: /dev/shm names, System V segment and
# semaphore ids.
kx_snapshot() {
	{ ls -1 /dev/shm 2>/dev/null | sed 's/^/posix /'
	  ipcs -m 2>/dev/null | awk '$2 ~ /^[0-9]+$/ {print "shm " $2}'
	  ipcs -s 2>/dev/null | awk '$2 ~ /^[0-9]+$/ {print "sem " $2}'; } | sort
}

# Is an object new since the snapshot still in use by a live process (that
# is, not ours: our processes are checked gone first)? Other engineers'
# tests run on the same machine; their objects are mapped, attached or were
# last touched by a live process.
kx_in_use() { # kind id
	case $1 in
	posix)
		grep -qsF "/dev/shm/$2" /proc/[0-9]*/maps && return 0
		ls -l /proc/[0-9]*/fd 2>/dev/null | grep -qF "/dev/shm/$2" ;;
	shm)
		[ "$(ipcs -m 2>/dev/null | awk -v id="$2" '$2 == id {print $6}')" != 0 ] ;;
	sem)
		local pid
		for pid in $(ipcs -s -i "$2" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && NF >= 5 {print $5}'); do
			[ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null && return 0
		done
		return 1 ;;
	esac
}

# kx_leftovers BEFORE: print what appeared since BEFORE and is not in use.
kx_leftovers() {
	local kind id
	comm -13 <(echo "$1") <(kx_snapshot) | while read -r kind id; do
		[ -n "$kind" ] || continue
		# Gone meanwhile: another test's object that was being removed.
		kx_snapshot | grep -qx "$kind $id" || continue
		kx_in_use "$kind" "$id" || echo "$kind $id"
	done
}

# Processes that carry a run's tag in their environment (ipcrun's children
# inherit it), so a survivor is found whatever it became.
kx_tagged() { grep -lsaF "KX_TEST_TAG=$1" /proc/[0-9]*/environ | cut -d/ -f3; }

# kx_run LABEL OUT ERR [INPUT] -- COMMAND...: run COMMAND with a unique tag,
# stdout to OUT, stderr to ERR, stdin from INPUT (default /dev/null), under a
# timeout. Sets KX_RC. Fails LABEL (and returns 1) if a process of the run
# survives it or it leaves shared memory or semaphores behind.
kx_run() {
	local label=$1 out=$2 err=$3 input=/dev/null before tag pids left
	shift 3
	if [ "$1" != -- ]; then input=$1; shift; fi
	shift
	tag=$label.$$.$RANDOM
	before=$(kx_snapshot)
	if [ "$out" = "$err" ]; then
		KX_TEST_TAG=$tag timeout -k 5 "$KX_TIMEOUT" "$@" <"$input" >"$out" 2>&1
	else
		KX_TEST_TAG=$tag timeout -k 5 "$KX_TIMEOUT" "$@" <"$input" >"$out" 2>"$err"
	fi
	KX_RC=$?
	pids=$(kx_tagged "$tag")
	if [ -n "$pids" ]; then
		kx_fail "$label" "processes left behind: $(echo $pids)"
		kill -9 $pids 2>/dev/null
		return 1
	fi
	left=$(kx_leftovers "$before")
	if [ -n "$left" ]; then
		kx_fail "$label" "left behind: $(echo $left)"
		return 1
	fi
	if [ "$KX_RC" -eq 124 ] || [ "$KX_RC" -eq 137 ]; then
		kx_fail "$label" "timed out after ${KX_TIMEOUT}s"; sed 's/^/    /' "$err" | tail -20
		return 1
	fi
	return 0
}

# kx_expect_rc LABEL WANT ERR: check KX_RC, showing stderr when it is wrong.
kx_expect_rc() {
	if [ "$KX_RC" -ne "$2" ]; then
		kx_fail "$1" "exit $KX_RC, expected $2"
		sed 's/^/    /' "$3" | tail -20
		return 1
	fi
}

# kx_same LABEL EXPECTED ACTUAL: pass if the files are equal, else show a diff.
kx_same() {
	if cmp -s "$2" "$3"; then
		kx_pass "$1"
	else
		kx_fail "$1" "output differs (expected < > actual)"
		diff "$2" "$3" | head -20 | sed 's/^/    /'
	fi
}

# The words of a file as tokenize defines them, one per line.
kx_words() { tr -cs 'A-Za-z0-9' '\n' <"$1" | tr 'A-Z' 'a-z' | grep -v '^$'; }

# "count word" for every word of FILE, times MULT, in top_sink's order
# (largest count first, equal counts in byte order).
kx_word_counts() { # file mult
	kx_words "$1" | sort | uniq -c |
		awk -v m="$2" '{printf "%.0f %s\n", $1 * m, $2}' | sort -k1,1nr -k2,2
}

# top_sink's table as "count word", and its check of its own ranks.
kx_top_table() { awk '/^top [0-9]+ of [0-9]+ keys:$/ {on = 1; next}
	/^summary:/ {on = 0} on {print $2, $3}' "$1"; }
kx_top_ranks_ok() { awk '/^top / {on = 1; next} /^summary:/ {on = 0}
	on && $1 != ++n {bad = 1} END {exit bad}' "$1"; }

[ "${KX_LIB_ONLY:-0}" = 1 ] && return 0

# --- the topologies --------------------------------------------------------

kx_init "$@"
if [ ! -x "$KX_IPCRUN" ]; then
	kx_fail "ipcrun" "$KX_IPCRUN not built"
	kx_done t_configs
	exit 1
fi
TEXT=config/data/ferry.txt
OUT=$KX_TMP/out
ERR=$KX_TMP/err
CHECKED=()

# check_wordcount LABEL OUT MULT TOPN: top_sink's output against the shell.
check_wordcount() {
	local label=$1 out=$2 mult=$3 top=$4 exp=$KX_TMP/exp total distinct
	kx_word_counts "$TEXT" "$mult" >"$exp.all"
	if [ "$top" -eq 0 ]; then cp "$exp.all" "$exp"; else head -n "$top" "$exp.all" >"$exp"; fi
	kx_top_table "$out" >"$KX_TMP/act"
	kx_same "$label: top words" "$exp" "$KX_TMP/act"
	total=$(awk '{s += $1} END {printf "%.0f", s}' "$exp.all")
	distinct=$(wc -l <"$exp.all")
	if grep -q "^top $(wc -l <"$exp") of $distinct keys:$" "$out" &&
	   grep -q "^summary: $total counted ($distinct distinct) from [0-9]* records in [0-9.]* s: [0-9]*/s$" "$out" &&
	   kx_top_ranks_ok "$out"; then
		kx_pass "$label: $total words, $distinct distinct"
	else
		kx_fail "$label: summary" "expected $total words, $distinct distinct"
		sed 's/^/    /' "$out" | tail -3
	fi
}

# Every topology passes --check first.
for ini in config/*.ini; do
	if kx_run "check $ini" "$OUT" "$ERR" -- "$KX_IPCRUN" --check "$ini" &&
	   kx_expect_rc "check $ini" 0 "$ERR"; then
		kx_pass "check $ini"
	fi
done

# demo.ini: the word count of `make run`, under the four backend combinations
# and with --threads; also with --stats, whose report must not disturb it.
CHECKED+=(demo)
for combo in posix:posix posix:sysv sysv:posix sysv:sysv; do
	l="demo [$combo]"
	kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" -D shm="${combo%:*}" -D sem="${combo#*:}" \
		config/demo.ini && kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 400 10
done
kx_run "demo --threads --stats" "$OUT" "$ERR" -- "$KX_IPCRUN" --threads --stats config/demo.ini &&
	kx_expect_rc "demo --threads" 0 "$ERR" && check_wordcount "demo --threads --stats" "$OUT" 400 10

# pipeline.ini: grep across three processes, lines in order.
CHECKED+=(pipeline)
kx_run pipeline "$OUT" "$ERR" -- "$KX_IPCRUN" config/pipeline.ini &&
	kx_expect_rc pipeline 0 "$ERR" && {
	grep -E 'river|ferry' "$TEXT" >"$KX_TMP/exp"
	kx_same "pipeline: the lines grep -E finds, in order" "$KX_TMP/exp" "$OUT"
}

# fanout.ini: the same filter split three ways and merged: same lines, any order.
CHECKED+=(fanout)
kx_run fanout "$OUT" "$ERR" -- "$KX_IPCRUN" config/fanout.ini &&
	kx_expect_rc fanout 0 "$ERR" && {
	grep -E '^[A-Z]|the' "$TEXT" | sort >"$KX_TMP/exp"
	sort "$OUT" >"$KX_TMP/act"
	kx_same "fanout: the lines grep -E finds, each once" "$KX_TMP/exp" "$KX_TMP/act"
}

# function.ini: square() from libmykernels.so in two processes.
CHECKED+=(function)
kx_run function "$OUT" "$ERR" -- "$KX_IPCRUN" config/function.ini &&
	kx_expect_rc function 0 "$ERR" && {
	seq 0 99999 | awk '{printf "%.0f\n", $1 * $1}' | sort -n >"$KX_TMP/exp"
	sort -n "$OUT" >"$KX_TMP/act"
	kx_same "function: the squares of 0..99999, each once" "$KX_TMP/exp" "$KX_TMP/act"
}

# threads.ini: one process, every word counted and printed.
CHECKED+=(threads)
kx_run threads "$OUT" "$ERR" -- "$KX_IPCRUN" config/threads.ini &&
	kx_expect_rc threads 0 "$ERR" && check_wordcount threads "$OUT" 1 0

# stdin.ini: the story on standard input.
CHECKED+=(stdin)
kx_run stdin "$OUT" "$ERR" "$TEXT" -- "$KX_IPCRUN" config/stdin.ini &&
	kx_expect_rc stdin 0 "$ERR" && check_wordcount stdin "$OUT" 1 10

# copy.ini: file_chunks -> write_bytes is cat.
CHECKED+=(copy)
kx_run copy "$OUT" "$ERR" -- "$KX_IPCRUN" config/copy.ini &&
	kx_expect_rc copy 0 "$ERR" && kx_same "copy: byte for byte" "$TEXT" "$OUT"

# large.ini: 256 x 1 MiB broadcast to two digests. The expected CRC-32 comes
# from gzip over the same bytes generated here: byte i of record j is
# (i + j) mod 256.
CHECKED+=(large)
kx_run large "$OUT" "$ERR" -- "$KX_IPCRUN" config/large.ini &&
	kx_expect_rc large 0 "$ERR" && {
	pat=$KX_TMP/pattern
	printf "$(printf '\\%03o' $(seq 0 255))" >"$pat"
	for _ in $(seq 13); do cat "$pat" "$pat" >"$pat.2" && mv "$pat.2" "$pat"; done
	crc=$(for ((j = 0; j < 256; j++)); do tail -c +$((j + 1)) "$pat" | head -c 1048576; done |
		gzip -1 -c | tail -c 8 | od -An -tx4 -N4 | tr -d ' \n')
	sums=$(awk '{print $NF}' "$OUT" | sort -u | wc -l)
	for sink in a b; do
		if grep -qx "$sink: records=256 bytes=268435456 crc32=$crc sum=[0-9a-f]*" "$OUT"; then
			kx_pass "large: sink $sink got 256 MiB intact (crc32 $crc)"
		else
			kx_fail "large: sink $sink" "expected records=256 bytes=268435456 crc32=$crc"
			sed 's/^/    /' "$OUT"
		fi
	done
	[ "$sums" -eq 1 ] && kx_pass "large: both sinks agree" || kx_fail "large: both sinks agree"
}

# Every topology shipped in config/ has a check above.
for ini in config/*.ini; do
	name=$(basename "$ini" .ini)
	case " ${CHECKED[*]} " in
	*" $name "*) ;;
	*) kx_fail "$ini" "no output check in t_configs.sh" ;;
	esac
done

kx_done t_configs

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
	# Each run gets its own System V IPC namespace and its own /dev/shm when
	# the system allows it (root, or unprivileged user namespaces): what is
	# left in them when the run ends is exactly what the run left, whatever
	# else runs on the machine. Otherwise new objects are attributed by
	# name and owner (kx_ours).
	cat >"$KX_TMP/wrap.sh" <<'WRAP'
#!/bin/sh
# wrap.sh PRIVATE PIDFILE LEFTFILE COMMAND...: with PRIVATE=1, mount a
# private /dev/shm first (we are in a new mount namespace). COMMAND's pid
# goes to PIDFILE (it becomes COMMAND); then what is left in this
# namespace's /dev/shm and System V tables goes to LEFTFILE.
priv=$1 pidf=$2 leftf=$3
shift 3
if [ "$priv" = 1 ]; then
	mount -t tmpfs -o mode=1777,size=1g kx-shm /dev/shm || exit 125
fi
sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidf" "$@"
rc=$?
if [ "$priv" = 1 ]; then
	{ ls -1 /dev/shm | sed 's/^/posix /'
	  ipcs -m | awk '$2 ~ /^[0-9]+$/ {print "shm " $2}'
	  ipcs -s | awk '$2 ~ /^[0-9]+$/ {print "sem " $2}'; } >"$leftf"
fi
exit $rc
WRAP
	chmod +x "$KX_TMP/wrap.sh"
	# ipcrun records its runs for --gc; ours stay ours (the README runs
	# `ipcrun --gc`, which must not touch other tests' records).
	export IPCRUN_STATE_DIR=$KX_TMP/ipcrun-state
	KX_UNSHARE=
	KX_PRIVATE=0
	local u
	for u in "unshare --ipc --mount --propagation private" \
	         "unshare --user --map-root-user --ipc --mount --propagation private"; do
		# shellcheck disable=SC2086
		if $u sh -c 'mount -t tmpfs kx-shm /dev/shm' 2>/dev/null; then
			KX_UNSHARE=$u
			KX_PRIVATE=1
			break
		fi
	done
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

# Is an object new since the snapshot ours? Other engineers' tests run on
# the same machine, so new objects are attributed before they count:
#  - POSIX names carry the pid of the run's first process: ipcrun names its
#    buffer ipcrun.<pid>.<random>, ipc_buffer_gen_handle h<hex pid>-...;
#  - a System V segment was created by that process (ipcs cpid) or by one
#    that is gone, and nobody is attached;
#  - a System V semaphore set was last used by no live process.
kx_ours() { # kind id toppid
	case $1 in
	posix)
		case $2 in
		*".ipcrun.$3."* | "ipc.h$(printf %x "$3")-"*) return 0 ;;
		*) return 1 ;;
		esac ;;
	shm)
		local cpid nattch
		cpid=$(ipcs -m -p 2>/dev/null | awk -v id="$2" '$1 == id {print $3}')
		nattch=$(ipcs -m 2>/dev/null | awk -v id="$2" '$2 == id {print $6}')
		[ "${nattch:-1}" = 0 ] || return 1
		[ "$cpid" = "$3" ] || ! kill -0 "$cpid" 2>/dev/null ;;
	sem)
		local pid
		for pid in $(ipcs -s -i "$2" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && NF >= 5 {print $5}'); do
			[ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null && return 1
		done
		return 0 ;;
	esac
}

# kx_leftovers BEFORE TOPPID: print what the run left: everything in its
# private namespaces, or else what appeared since BEFORE and is ours.
kx_leftovers() {
	local kind id
	if [ "$KX_PRIVATE" = 1 ]; then
		cat "$KX_TMP/left" 2>/dev/null
		return
	fi
	comm -13 <(echo "$1") <(kx_snapshot) | while read -r kind id; do
		[ -n "$kind" ] || continue
		kx_ours "$kind" "$id" "$2" && echo "$kind $id"
	done
}

# Processes that carry a run's tag in their environment (ipcrun's children
# inherit it), so a survivor is found whatever it became.
kx_tagged() { grep -lsaF "KX_TEST_TAG=$1" /proc/[0-9]*/environ | cut -d/ -f3; }

# kx_start LABEL OUT ERR [INPUT] -- COMMAND...: start COMMAND in the
# background with a unique tag in its environment, stdout to OUT, stderr to
# ERR, stdin from INPUT (default /dev/null), under a timeout. KX_TOPPID is
# the pid of its first process once kx_toppid has returned.
kx_start() {
	KX_LABEL=$1 KX_ERRF=$3
	local out=$2 err=$3 input=/dev/null
	shift 3
	if [ "$1" != -- ]; then input=$1; shift; fi
	shift
	KX_TAG=$KX_LABEL.$$.$RANDOM
	KX_BEFORE=$(kx_snapshot)
	KX_TOPPID=
	rm -f "$KX_TMP/toppid" "$KX_TMP/left"
	# shellcheck disable=SC2086
	set -- $KX_UNSHARE "$KX_TMP/wrap.sh" "$KX_PRIVATE" "$KX_TMP/toppid" "$KX_TMP/left" "$@"
	if [ "$out" = "$err" ]; then
		KX_TEST_TAG=$KX_TAG timeout -k 5 "$KX_TIMEOUT" "$@" <"$input" >"$out" 2>&1 &
	else
		KX_TEST_TAG=$KX_TAG timeout -k 5 "$KX_TIMEOUT" "$@" <"$input" >"$out" 2>"$err" &
	fi
	KX_BGPID=$!
}

# kx_until SECONDS COMMAND...: poll COMMAND every 20 ms until it succeeds;
# false after SECONDS.
kx_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.02
	done
}

# kx_toppid: wait for the pid of the started command's first process.
kx_toppid() {
	kx_until 30 test -s "$KX_TMP/toppid" && KX_TOPPID=$(cat "$KX_TMP/toppid")
}

# kx_finish: wait for the started command. Sets KX_RC. Fails the label (and
# returns 1) if a process of the run survives it, it leaves shared memory or
# semaphores behind, or it timed out.
kx_finish() {
	local pids left
	wait "$KX_BGPID"
	KX_RC=$?
	[ -n "$KX_TOPPID" ] || KX_TOPPID=$(cat "$KX_TMP/toppid" 2>/dev/null)
	pids=$(kx_tagged "$KX_TAG")
	if [ -n "$pids" ]; then
		kx_fail "$KX_LABEL" "processes left behind: $(echo $pids)"
		kill -9 $pids 2>/dev/null
		return 1
	fi
	left=$(kx_leftovers "$KX_BEFORE" "$KX_TOPPID")
	if [ -n "$left" ]; then
		kx_fail "$KX_LABEL" "left behind: $(echo $left)"
		return 1
	fi
	if [ "$KX_RC" -eq 124 ] || [ "$KX_RC" -eq 137 ]; then
		kx_fail "$KX_LABEL" "timed out after ${KX_TIMEOUT}s"
		sed 's/^/    /' "$KX_ERRF" | tail -20
		return 1
	fi
	return 0
}

# kx_run LABEL OUT ERR [INPUT] -- COMMAND...: kx_start, then kx_finish.
kx_run() {
	kx_start "$@"
	kx_finish
}

# The pid of a tagged process whose name (comm) is NAME: ipcrun names its
# kernel processes ipcrun:<process>.
kx_proc_named() { # tag name
	local pid
	for pid in $(kx_tagged "$1"); do
		[ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ] && { echo "$pid"; return 0; }
	done
	return 1
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
	   grep -q "^summary: $total counted ($distinct distinct) from [0-9]* items in [0-9.]* s: [0-9]*/s$" "$out" &&
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

# demo.ini: the word count of `make run` (the story read 2000 times), with
# --threads and --stats (whose report must not disturb it), and in the plain
# build under all four backend combinations (the sanitizer builds, several
# times slower, under the default one).
CHECKED+=(demo)
combos=posix:posix
case $KX_BUILD in */asan | */tsan) ;; *) combos="posix:posix posix:sysv sysv:posix sysv:sysv" ;; esac
for combo in $combos; do
	l="demo [$combo]"
	kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" -D shm="${combo%:*}" -D sem="${combo#*:}" \
		config/demo.ini && kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 2000 10
done
l="demo --threads --stats"
kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" --threads --stats config/demo.ini &&
	kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 2000 10

# words.ini: the same count with every word an item of its own (tokenize ->
# split_hash -> four keyed_count -> merge -> top, seven processes).
CHECKED+=(words)
kx_run words "$OUT" "$ERR" -- "$KX_IPCRUN" config/words.ini &&
	kx_expect_rc words 0 "$ERR" && check_wordcount words "$OUT" 2000 10
l="words --threads"
kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" --threads config/words.ini &&
	kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 2000 10
# demo.ini with four counters rather than two (-D R=4): the same counts.
l="demo -D R=4"
kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" -D R=4 config/demo.ini &&
	kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 2000 10

# word_count counts exactly what tokenize -> keyed_count counts, on text
# that tries the edges: a 600-letter word (cut at 256, as tokenize cuts it),
# upper case, digits, punctuation, CR LF, blank lines, no final newline.
wc_edge=$KX_TMP/wc_edge.txt
{ printf 'The THE the, 42 a1b2!\r\n\n  \t--\n'; head -c 600 /dev/zero | tr '\0' 'Q'
  printf ' tail x\nlast line without newline'; } >"$wc_edge"
wc_ini() { # counter kernels (as "connect" lines)...
	printf '[graph]\nname = wc-edge\n[kernel:src]\nlibrary = libipckernels.so\n'
	printf 'function = file_lines\nargs = str:%s\n' "$wc_edge"
	printf '[kernel:top]\nlibrary = libipckernels.so\nfunction = top_sink\nargs = u64:0\n'
	printf '%s\n' "$@"
}
wc_ini '[kernel:wc]' 'library = libipckernels.so' 'function = word_count' \
	'[connections]' 'connect = src.out -> wc.in' 'connect = wc.out -> top.in' >"$KX_TMP/wc1.ini"
wc_ini '[kernel:tok]' 'library = libipckernels.so' 'function = tokenize' \
	'[kernel:kc]' 'library = libipckernels.so' 'function = keyed_count' \
	'[connections]' 'connect = src.out -> tok.in' 'connect = tok.out -> kc.in' \
	'connect = kc.out -> top.in' >"$KX_TMP/wc2.ini"
if kx_run "word_count" "$OUT" "$ERR" -- "$KX_IPCRUN" "$KX_TMP/wc1.ini" &&
   kx_expect_rc word_count 0 "$ERR" &&
   kx_run "tokenize -> keyed_count" "$KX_TMP/wc2.out" "$ERR" -- "$KX_IPCRUN" "$KX_TMP/wc2.ini" &&
   kx_expect_rc "tokenize -> keyed_count" 0 "$ERR"; then
	grep -v '^summary' "$OUT" >"$KX_TMP/wc1.top"
	grep -v '^summary' "$KX_TMP/wc2.out" >"$KX_TMP/wc2.top"
	kx_same "word_count: the counts of tokenize -> keyed_count on edge text" \
		"$KX_TMP/wc2.top" "$KX_TMP/wc1.top"
	if grep -q '^ *[0-9]* *3  the$' "$OUT" && grep -q "^top 11 of 11 keys:" "$OUT" &&
	   grep -q "^summary: 14 counted (11 distinct)" "$OUT"; then
		kx_pass "word_count: 'the' 3 times, 14 words, 11 distinct (600 letters: 256, 256, 88)"
	else
		kx_fail "word_count: edge counts" "$(head -3 "$OUT")"
	fi
fi

# replicated.ini: demo.ini's word count with one replicated counter section
# (replicas = 4 behind a hash split): the same exact counts.
CHECKED+=(replicated)
l="replicated"
kx_run "$l" "$OUT" "$ERR" -- "$KX_IPCRUN" config/replicated.ini &&
	kx_expect_rc "$l" 0 "$ERR" && check_wordcount "$l" "$OUT" 2000 10

# pipeline.ini: grep across three processes, lines in order.
CHECKED+=(pipeline)
kx_run pipeline "$OUT" "$ERR" -- "$KX_IPCRUN" config/pipeline.ini &&
	kx_expect_rc pipeline 0 "$ERR" && {
	grep -E 'river|ferry' "$TEXT" >"$KX_TMP/exp"
	kx_same "pipeline: the lines grep -E finds, in order" "$KX_TMP/exp" "$OUT"
}

# hosts.ini: the same pipeline with two hosts, run without a launcher (the
# reference run; t_hosts.sh runs it across two MPI ranks).
CHECKED+=(hosts)
kx_run hosts "$OUT" "$ERR" -- "$KX_IPCRUN" config/hosts.ini &&
	kx_expect_rc hosts 0 "$ERR" && {
	grep -E 'river|ferry' "$TEXT" >"$KX_TMP/exp"
	kx_same "hosts (one host): the lines grep -E finds, in order" "$KX_TMP/exp" "$OUT"
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

# stdin.ini fed through a FIFO that stays open, so the source is still
# waiting for input when the test acts. fifo_empty: everything written has
# been read by the source (FIONREAD, through perl, which Debian always has).
FIFO=$KX_TMP/fifo
mkfifo "$FIFO"
fifo_empty() {
	[ "$(perl -e 'open(my $f, "+<", $ARGV[0]) or die "$!";
		my $n = pack("i", 0); ioctl($f, 0x541B, $n) or die "$!";
		print unpack("i", $n)' "$FIFO")" = 0 ]
}
# feed_fifo: keep the FIFO open for writing on fd 7 and write the story.
feed_fifo() { exec 7>"$FIFO" && cat "$TEXT" >&7; }

# Ctrl-C: once the source has read everything, SIGINT stops it (it polls
# ipc_stopping while waiting for input); the rest drains; the count is whole;
# ipcrun exits 130.
l="stdin: Ctrl-C while waiting for input"
kx_start "$l" "$OUT" "$ERR" "$FIFO" -- "$KX_IPCRUN" config/stdin.ini
feed_fifo
if kx_toppid && kx_until 60 fifo_empty; then
	kill -INT "$KX_TOPPID"
fi
kx_finish && kx_expect_rc "$l" 130 "$ERR" && check_wordcount "$l" "$OUT" 1 10
exec 7>&-

# A kernel process killed with -9: its consumer (top_sink) sees IPC_TX_ABORTED
# and prints no result rather than a partial one; ipcrun exits 1 naming it.
l="stdin: kill -9 of the counting process"
kx_start "$l" "$OUT" "$ERR" "$FIFO" -- "$KX_IPCRUN" config/stdin.ini
feed_fifo
victim=
if kx_toppid && kx_until 60 fifo_empty &&
   kx_until 30 kx_proc_named "$KX_TAG" ipcrun:count >/dev/null; then
	victim=$(kx_proc_named "$KX_TAG" ipcrun:count)
	kill -9 "$victim"
fi
if kx_finish && kx_expect_rc "$l" 1 "$ERR"; then
	if [ -z "$victim" ]; then
		kx_fail "$l" "the counting process never showed up"
	elif grep -q '^summary:' "$OUT"; then
		kx_fail "$l" "a result was printed from an aborted input"
	elif ! grep -q 'top: an input was aborted' "$ERR"; then
		kx_fail "$l" "top_sink did not report its aborted input"
		sed 's/^/    /' "$ERR"
	else
		kx_pass "$l: no partial result, exit 1"
	fi
fi
exec 7>&-

# Every topology shipped in config/ has a check above.
for ini in config/*.ini; do
	name=$(basename "$ini" .ini)
	case " ${CHECKED[*]} " in
	*" $name "*) ;;
	*) kx_fail "$ini" "no output check in t_configs.sh" ;;
	esac
done

kx_done t_configs

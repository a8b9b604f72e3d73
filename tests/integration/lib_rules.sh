#!/bin/bash
# The house rules of runtime/lib, checked on the sources (CONTRIBUTING.md,
# "Locks and atomics"); run by t_layers.sh.
#
#  1. The lock rule: a function that expects the buffer's lock L held ends
#     in _locked. Checked both ways a function can show that it expects it:
#       - its comment (just above its definition or declaration) says
#         "L held";
#       - it calls a _locked function, or ipc__heap_alloc/free/repair (all
#         of heap.c runs under L), without taking L itself (ipc__lock_buf),
#         without a `bool locked` parameter (the few that serve both), and
#         without a "No lock:" comment in its body saying why none is needed
#         (the creator, before it publishes the buffer).
#     heap.c (and heap.h) are the stated exception: all of heap.c runs
#     under L.
#  2. The pairing rule: every atomic with acquire, release, acq_rel or
#     seq_cst order (ipc__load_acquire, ipc__store_release, ipc__*_acq_rel,
#     ipc__*_seq_cst, ipc__cas_acq_rel, an explicit memory_order_*, or a
#     C11 atomic_* call without _explicit, which is seq_cst) carries a
#     comment saying "pairs with" on its line or on one of the PAIR_ABOVE
#     lines just above, and that comment names at least one function as
#     name(); every name() in a "pairs with" comment is a function (or
#     function-like macro) of runtime/. atomic_signal_fence (a compiler
#     barrier, no pair) and atomic.h (the macros themselves) are left out.
#
#   tests/integration/lib_rules.sh            check, print each breach
set -u
cd "$(dirname "$0")/../.." || exit 1
PAIR_ABOVE=5
ok=0
shopt -s nullglob

# ---- 1. the lock rule ------------------------------------------------------
locked_awk='
function flush() {
	if (fname == "")
		return
	if (calls != "" && fname !~ /_locked$/ && !takes && !param)
		printf "%s:%d: %s calls %s without taking L: name it %s_locked, or take L, " \
		       "or say why none is needed (\"No lock:\")\n", FILENAME, fline, fname, calls, fname
	if (held && fname !~ /_locked$/)
		printf "%s:%d: %s: its comment says L is held: name it %s_locked\n",
		       FILENAME, fline, fname, fname
	fname = ""
}
function name_of(h,    n, w) {
	sub(/\(.*/, "", h)
	n = split(h, w, /[ \t*]+/)
	return w[n]
}
function says_held(c) { return c ~ /[( ]L held/ }
{ line = $0 }
# a comment outside a body: remember it for what follows at once
!inbody && !incomment && /^[ \t]*\/\*/ { incomment = 1; comment = "" }
!inbody && incomment {
	comment = comment " " line
	if (line ~ /\*\//) { incomment = 0; lastc = comment }
	next
}
!inbody && /^[ \t]*$/ { lastc = ""; hdr = ""; next }
# a declaration or the start of a definition at column 0
!inbody && hdr == "" && /^[A-Za-z_]/ && line ~ /\(/ && line !~ /^(typedef|#)/ {
	hdr = line; hline = FNR; hc = lastc; lastc = ""
	if (hdr ~ /\);[ \t]*$/ || hdr ~ /\)[ \t]*__attribute__.*;[ \t]*$/) {
		if (says_held(hc) && name_of(hdr) !~ /_locked$/ && hdr !~ /bool locked[,)]/)
			printf "%s:%d: %s: its comment says L is held: name it %s_locked\n",
			       FILENAME, FNR, name_of(hdr), name_of(hdr)
		hdr = ""
	}
	next
}
!inbody && hdr != "" && /^\{/ {
	fname = name_of(hdr); fline = hline; inbody = 1; calls = ""; takes = 0
	param = (hdr ~ /bool locked[,)]/); held = says_held(hc) && !param; hdr = ""
	next
}
!inbody && hdr != "" {
	hdr = hdr " " line
	if (line ~ /;[ \t]*$/) {
		if (says_held(hc) && name_of(hdr) !~ /_locked$/ && hdr !~ /bool locked[,)]/)
			printf "%s:%d: %s: its comment says L is held: name it %s_locked\n",
			       FILENAME, hline, name_of(hdr), name_of(hdr)
		hdr = ""
	}
	next
}
!inbody { lastc = ""; next }
inbody && /^\}/ { flush(); inbody = 0; next }
inbody {
	if (line ~ /No lock:/)
		takes = 1
	code = line
	gsub(/\/\*.*\*\//, "", code)
	sub(/\/\*.*/, "", code)
	if (code ~ /^[ \t]*\*/)
		next
	gsub(/"[^"]*"/, "\"\"", code)
	if (code ~ /ipc__lock_buf\(|ipc__lock\(/)
		takes = 1
	s = code
	while (match(s, /[A-Za-z_][A-Za-z0-9_]*_locked\(|ipc__heap_(alloc|free|repair)\(/)) {
		c = substr(s, RSTART, RLENGTH - 1)
		s = substr(s, RSTART + RLENGTH)
		if (c == fname || index(" " calls " ", " " c " "))
			continue
		calls = calls (calls == "" ? "" : " ") c
	}
}
END { flush() }
'
for f in runtime/lib/*.c runtime/lib/*.h; do
	case $f in */heap.c | */heap.h) continue ;; esac
	out=$(awk "$locked_awk" "$f")
	[ -z "$out" ] || { echo "$out" | sed 's/^/lib_rules: /'; ok=1; }
done

# ---- 2. the pairing rule ---------------------------------------------------
# Functions and function-like macros of runtime/: NAME( on a line at
# column 0 (a definition or a declaration), or #define NAME(.
defs=$(cat runtime/*/*.c runtime/*/*.h runtime/include/ipc/*.h 2>/dev/null | awk '
	/^#define [A-Za-z_][A-Za-z0-9_]*\(/ { n = $2; sub(/\(.*/, "", n); print n; next }
	/^[A-Za-z_]/ && !/^(#|typedef)/ {
		s = $0
		while (match(s, /[A-Za-z_][A-Za-z0-9_]*\(/)) {
			print substr(s, RSTART, RLENGTH - 1); s = substr(s, RSTART + RLENGTH)
		}
	}' | sort -u | tr '\n' ' ')

pairs_awk='
BEGIN { n = split(defs, d, " "); for (i = 1; i <= n; i++) def[d[i]] = 1 }
{ L[FNR] = $0 }
END {
	ordered = "ipc__load_acquire\\(|ipc__load_seq_cst\\(|ipc__store_release\\(|" \
	          "ipc__store_seq_cst\\(|ipc__(add|sub|or|xchg)_acq_rel\\(|ipc__xchg_seq_cst\\(|" \
	          "ipc__cas_acq_rel\\(|memory_order_(acquire|release|acq_rel|seq_cst)|" \
	          "atomic_(load|store|exchange|fetch_[a-z]+|compare_exchange_(strong|weak))\\("
	incomment = 0
	for (i = 1; i <= FNR; i++) {
		code = L[i]
		# strip comments: what is inside one is no atomic
		out = ""
		while (code != "") {
			if (incomment) {
				p = index(code, "*/")
				if (!p) { code = ""; break }
				code = substr(code, p + 2); incomment = 0
			} else {
				p = index(code, "/*")
				if (!p) { out = out code; break }
				out = out substr(code, 1, p - 1); code = substr(code, p + 2); incomment = 1
			}
		}
		sub(/\/\/.*/, "", out)
		if (out !~ ordered || out ~ /atomic_signal_fence/)
			continue
		sites++
		found = 0
		for (j = i; j >= 1 && j >= i - above; j--) {
			if (tolower(L[j]) ~ /pairs? with/) { found = j; break }
		}
		if (!found) {
			printf "%s:%d: ordered atomic without a \"pairs with\" comment on its line or " \
			       "the %d above: %s\n", FILENAME, i, above, L[i]
			bad = 1
			continue
		}
		if (checked[found])
			continue
		checked[found] = 1
	}
	# every "pairs with" comment: names a function, and only ones that exist
	for (j = 1; j <= FNR; j++) {
		if (tolower(L[j]) !~ /pairs? with/)
			continue
		text = L[j]; sub(/.*[Pp]airs? with/, "", text)
		for (k = j; L[k] !~ /\*\// && k < j + 6 && k < FNR; ) { k++; text = text " " L[k] }
		sub(/\*\/.*/, "", text)
		names = 0; s = text
		while (match(s, /[A-Za-z_][A-Za-z0-9_]*\(\)/)) {
			nm = substr(s, RSTART, RLENGTH - 2); s = substr(s, RSTART + RLENGTH); names++
			if (!(nm in def)) {
				printf "%s:%d: \"pairs with\" names %s(), which is no function of runtime/\n",
				       FILENAME, j, nm
				bad = 1
			}
		}
		if (!names) {
			printf "%s:%d: a \"pairs with\" comment names no function (write it as name()): %s\n",
			       FILENAME, j, L[j]
			bad = 1
		}
	}
	printf "%d\n", sites > "/dev/stderr"
	exit bad
}
'
sites=0
for f in runtime/lib/*.c runtime/lib/*.h; do
	case $f in */atomic.h) continue ;; esac
	n=$(awk -v defs="$defs" -v above="$PAIR_ABOVE" "$pairs_awk" "$f" 2>&1 >/dev/null)
	out=$(awk -v defs="$defs" -v above="$PAIR_ABOVE" "$pairs_awk" "$f" 2>/dev/null) ||
		{ echo "$out" | sed 's/^/lib_rules: /'; ok=1; }
	sites=$((sites + ${n:-0}))
done
# The check must see the atomics to prove anything.
[ "$sites" -gt 50 ] || { echo "lib_rules: only $sites ordered atomics found (the patterns broke?)"; ok=1; }
[ $ok -eq 0 ] && echo "lib_rules: ok (the lock rule; $sites ordered atomics, each with its pair)"
exit $ok

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
#   tests/integration/lib_rules.sh            check, print each breach
set -u
cd "$(dirname "$0")/../.." || exit 1
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

[ $ok -eq 0 ] && echo "lib_rules: ok (the lock rule)"
exit $ok

#!/bin/bash
# Integration: the manual and the installed reference.
#  - every page renders without a warning (groff -ww, man --warnings);
#  - ipc-topology(5) names every key of config/README.md's tables, ipcrun(1)
#    every option of --help;
#  - `make install PREFIX=...` installs the pages and the bash completion;
#    `man -l` and `man -M PREFIX/share/man` show them; the installed --help
#    points at the pages, not at config/README.md (not installed);
#  - every example of the pages and of --help is run, the way t_readme.sh
#    runs the README: with the installed ipcrun first on PATH, from the
#    project's root, HOME a scratch folder; a block after
#      .\" example: sh          is run by bash -e -o pipefail and must succeed,
#      .\" example: file PATH   is written to PATH (~ is HOME),
#      .\" example: expect      lists lines the last command block printed,
#    each block checked to leave no process, /dev/shm entry or System V
#    object behind;
#  - the completion completes options, topology files, libraries, -D keys and
#    values, and `status` run names through its hook.
#
#   tests/integration/t_man.sh BUILD
set -u
KX_LIB_ONLY=1 . "$(dirname "$0")/t_configs.sh"
kx_init "$@"

PAGES="man/ipcrun.1 man/ipc-topology.5 man/libipc.3"

# --- rendering ----------------------------------------------------------------
for p in $PAGES; do
	w=$(groff -ww -z -man "$p" 2>&1)
	[ -z "$w" ] && kx_pass "$p: groff -ww: no warning" || kx_fail "$p: groff -ww" "$w"
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >"$KX_TMP/render")
	if [ -z "$w" ] && grep -q '^NAME' "$KX_TMP/render" && grep -q '^SEE ALSO' "$KX_TMP/render"; then
		kx_pass "$p: man -l renders it, without warning"
	else
		kx_fail "$p: man -l" "$w"
	fi
done

# --- every key, every option --------------------------------------------------
keys=$(sed -n 's/^| `\([a-z_]*\)`\(, `\([a-z_]*\)`\)\{0,1\} |.*/\1 \3/p' config/README.md |
	tr ' ' '\n' | grep -v '^$' | sort -u)
missing=
for k in $keys; do
	grep -q "^\.B[R]\{0,1\} $k\b" man/ipc-topology.5 || missing="$missing $k"
done
[ -n "$keys" ] && [ -z "$missing" ] &&
	kx_pass "ipc-topology(5) documents every key of config/README.md ($(echo $keys))" ||
	kx_fail "ipc-topology(5): keys of config/README.md not documented:$missing"
opts=$("$KX_IPCRUN" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
missing=
for o in $opts; do
	grep -q -- "${o//-/\\\\-}\b" man/ipcrun.1 || missing="$missing $o"
done
[ -n "$opts" ] && [ -z "$missing" ] &&
	kx_pass "ipcrun(1) documents every option of --help" ||
	kx_fail "ipcrun(1): options of --help not documented:$missing"

if [ "$KX_BUILD" != "$KX_ROOT/build" ]; then
	# make install and the examples use the plain build (as t_readme.sh)
	echo "skip t_man install and examples: they use build/, not ${KX_BUILD#"$KX_ROOT"/}"
	kx_done t_man
	exit
fi

# --- make install ---------------------------------------------------------------
P=$KX_TMP/prefix
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory DEPS=no \
	install PREFIX="$P" >"$KX_TMP/install.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && kx_pass "make install PREFIX=..." ||
	{ kx_fail "make install PREFIX=..." "exit $rc"; tail "$KX_TMP/install.out"; }
for f in share/man/man1/ipcrun.1 share/man/man5/ipc-topology.5 share/man/man3/libipc.3 \
         share/bash-completion/completions/ipcrun; do
	[ -f "$P/$f" ] && kx_pass "installed $f" || kx_fail "installed $f" "missing"
done
for sp in "1 ipcrun" "5 ipc-topology" "3 libipc"; do
	set -- $sp
	if MANWIDTH=80 man -M "$P/share/man" "$1" "$2" 2>/dev/null | grep -q "^NAME"; then
		kx_pass "man -M PREFIX/share/man $1 $2"
	else
		kx_fail "man -M PREFIX/share/man $1 $2" "not found"
	fi
done
"$P/bin/ipcrun" --help >"$KX_TMP/help" 2>&1
grep -q 'ipc-topology(5)' "$KX_TMP/help" && ! grep -q 'config/README' "$KX_TMP/help" &&
	kx_pass "installed --help points at the man pages, not config/README.md" ||
	kx_fail "installed --help points at the man pages"

# --- the examples ----------------------------------------------------------------
export HOME=$KX_TMP/home
mkdir -p "$HOME/ipc-man"
export PATH=$P/bin:$PATH
export PKG_CONFIG_PATH=$P/lib/pkgconfig
B=$KX_TMP/blocks
mkdir -p "$B"

# run_block LABEL FILE: bash -e the block; its output in $B/last.out.
run_block() {
	kx_run "$1" "$B/last.out" "$B/last.out" -- bash -e -o pipefail "$2" &&
		kx_expect_rc "$1" 0 "$B/last.out" && kx_pass "$1"
}

nrun=0
for page in $PAGES; do
	rm -f "$B"/*.kind "$B"/*.body "$B"/*.arg "$B"/*.line
	# split the page into marked .EX blocks, roff escapes undone
	awk -v dir="$B" '
		/^\.\\" example: / { m = $0; sub(/^\.\\" example: /, "", m)
		                     kind = m; arg = ""
		                     if (m ~ /^file /) { kind = "file"; arg = substr(m, 6) }
		                     next }
		/^\.EX$/ && kind != "" { n++; inex = 1
			printf "%s", kind > (dir "/" n ".kind"); close(dir "/" n ".kind")
			printf "%s", arg > (dir "/" n ".arg"); close(dir "/" n ".arg")
			printf "%d", NR > (dir "/" n ".line"); close(dir "/" n ".line")
			printf "" > (dir "/" n ".body"); next }
		/^\.EE$/ && inex { inex = 0; kind = ""; close(dir "/" n ".body"); next }
		inex { s = $0
		       gsub(/\\-/, "-", s); gsub(/\\\(aq/, "\047", s); gsub(/\\\(dq/, "\"", s)
		       gsub(/\\&/, "", s); gsub(/\\e/, "\\", s)
		       print s > (dir "/" n ".body"); next }
		/^\.EX$/ { kind = "" }
	' "$page"
	last=
	for kf in $(ls "$B"/*.kind 2>/dev/null | sort -V); do
		b=${kf%.kind}
		line=$(cat "$b.line")
		case $(cat "$kf") in
		file)
			path=$(cat "$b.arg")
			path=${path/#\~/$HOME}
			cp "$b.body" "$path" && kx_pass "$page:$line writes $(cat "$b.arg")" ||
				kx_fail "$page:$line writes $(cat "$b.arg")" ;;
		sh)
			nrun=$((nrun + 1))
			run_block "$page:$line: $(head -1 "$b.body")" "$b.body"
			cp "$B/last.out" "$b.out"
			last=$b.out ;;
		expect)
			missing=$(grep -vxF -f "$last" "$b.body" | grep -v '^$')
			[ -n "$last" ] && [ -z "$missing" ] &&
				kx_pass "$page:$line: output as shown" ||
				{ kx_fail "$page:$line: output as shown" "missing: $missing"
				  sed 's/^/    /' "$last" | tail -15; } ;;
		esac
	done
done
[ "$nrun" -ge 5 ] || kx_fail "man examples" "only $nrun blocks found: is the marker syntax intact?"

# --help's examples, each line a command
sed -n '/^examples/,/^$/s/^  \(ipcrun .*\)/\1/p' "$KX_TMP/help" >"$B/help.cmds"
nhelp=0
while read -r cmd; do
	nhelp=$((nhelp + 1))
	printf '%s >/dev/null\n' "$cmd" >"$B/help.$nhelp.sh"
	run_block "--help example: $cmd" "$B/help.$nhelp.sh"
done <"$B/help.cmds"
[ "$nhelp" -ge 3 ] || kx_fail "--help examples" "only $nhelp found"

# --- completion ------------------------------------------------------------------
# complete WORD...: the completions bash offers for the last word.
complete_words() {
	bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_ipcrun; printf "%s\n" "${COMPREPLY[@]}"' _ \
		"$P/share/bash-completion/completions/ipcrun" "$@" 2>/dev/null
}
offers() { # WANT WORD...: WANT is among the completions
	local want=$1; shift
	complete_words "$@" | grep -qxF -- "$want"
}
t() { offers "$@" && kx_pass "completion: '$*'" || kx_fail "completion: '$*'" "got: $(complete_words "${@:2}" | tr '\n' ' ')"; }
t --check ipcrun --ch
t --list ipcrun --l
t config/demo.ini ipcrun config/de
t config/demo.ini ipcrun --stats config/de
t libipckernels.so ipcrun --list libipck
t top_sink ipcrun --list libipckernels.so top_
t shm= ipcrun -D sh
t shm=sysv ipcrun -D shm=s
t wait=block ipcrun -D wait=b
complete_words ipcrun config/de | grep -q 'README' &&
	kx_fail "completion: only topologies" || kx_pass "completion: only topologies (no README.md)"
# `ipcrun status RUN`: run names come from `ipcrun status`'s own list
mkdir -p "$KX_TMP/stub"
cat >"$KX_TMP/stub/ipcrun" <<'EOF'
#!/bin/sh
case $1 in
--help) echo "       ipcrun status [--json] [RUN]" ;;
status) printf '%-20s %s\n' NAME TOPOLOGY demo config/demo.ini wordcount x.ini ;;
esac
EOF
chmod 755 "$KX_TMP/stub/ipcrun"
t demo "$KX_TMP/stub/ipcrun" status d
t wordcount "$KX_TMP/stub/ipcrun" status ""
complete_words "$KX_TMP/stub/ipcrun" status "" | grep -q NAME &&
	kx_fail "completion: status: no header" || kx_pass "completion: status: not the header"
t status "$KX_TMP/stub/ipcrun" sta
t status "$P/bin/ipcrun" sta
# and with the real thing: a graph that waits on its standard input
printf '[graph]\nname = waiting\n[kernel:in]\nlibrary = libipckernels.so\nfunction = stdin_lines\n[kernel:out]\nlibrary = libipckernels.so\nfunction = discard_sink\n[connections]\nconnect = in.out -> out.in\n' \
	>"$HOME/ipc-man/waiting.ini"
mkfifo "$KX_TMP/waiting.in"
"$P/bin/ipcrun" --no-progress "$HOME/ipc-man/waiting.ini" <"$KX_TMP/waiting.in" >/dev/null 2>&1 &
WPID=$!
exec 7>"$KX_TMP/waiting.in" # its input, held open until the end
listed() { "$P/bin/ipcrun" status 2>/dev/null | grep -q '^waiting '; }
if kx_until 20 listed; then
	t waiting "$P/bin/ipcrun" status wai
	t waiting "$P/bin/ipcrun" top w
else
	kx_fail "completion: a running graph" "ipcrun status never listed it"
fi
exec 7>&- # end of its input: the graph ends by itself
wait "$WPID"
rc=$?
[ "$rc" -eq 0 ] && kx_pass "completion: the waiting graph ended (0)" ||
	kx_fail "completion: the waiting graph ended" "exit $rc"

env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory DEPS=no \
	uninstall PREFIX="$P" >/dev/null 2>&1
[ -z "$(find "$P/share" -type f 2>/dev/null)" ] &&
	kx_pass "make uninstall removes the pages and the completion" ||
	kx_fail "make uninstall" "left: $(find "$P/share" -type f)"

kx_done t_man

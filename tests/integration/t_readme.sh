#!/bin/bash
# Integration: every command README.md shows is run, from the project's root,
# with HOME pointing at a scratch folder (the README's files go to ~/ipc-tour
# and its install to ~/.local), and what it says the output is, is checked.
#
# How the README is read:
#  - every ```sh block is run by `bash -e -o pipefail`, and must succeed;
#  - a block right after `<!-- file: PATH -->` is written to PATH (~ is HOME)
#    before the commands after it run;
#  - a ```text block right after `<!-- expect -->` lists lines that must each
#    appear, whole, in the output of the ```sh block before it;
#  - a ```sh block right after `<!-- untested: REASON -->` is not run, and the
#    reason is printed (`make test` is the suite itself).
# Each block is also checked to leave no process, /dev/shm entry or System V
# object behind.
#
#   tests/integration/t_readme.sh BUILD
set -u
KX_LIB_ONLY=1 . "$(dirname "$0")/t_configs.sh"
kx_init "$@"

if [ "$KX_BUILD" != "$KX_ROOT/build" ]; then
	# The README's commands name build/ and plain `make`: they run once, in
	# the plain build's integration run; the sanitizer builds run the same
	# topologies and examples through t_configs.sh and t_examples.sh.
	echo "skip t_readme: the README's commands use build/, not ${KX_BUILD#"$KX_ROOT"/}"
	exit 0
fi

export HOME=$KX_TMP/home
mkdir -p "$HOME"
BLOCKS=$KX_TMP/blocks
mkdir -p "$BLOCKS"

# Split README.md into numbered blocks: BLOCKS/N.kind (sh, file, expect,
# untested), BLOCKS/N.body, BLOCKS/N.arg (path or reason), BLOCKS/N.line.
awk -v dir="$BLOCKS" '
	function flush_marker() { marker = ""; arg = "" }
	/^<!-- file: .* -->$/     { m = $0; sub(/^<!-- file: /, "", m); sub(/ -->$/, "", m)
	                            marker = "file"; arg = m; next }
	/^<!-- expect -->$/       { marker = "expect"; arg = ""; next }
	/^<!-- untested: .* -->$/ { m = $0; sub(/^<!-- untested: /, "", m); sub(/ -->$/, "", m)
	                            marker = "untested"; arg = m; next }
	!infence && /^```/ {
		lang = substr($0, 4)
		infence = 1; n++; start = NR
		kind = ""
		if (marker == "file") kind = "file"
		else if (marker == "expect" && lang == "text") kind = "expect"
		else if (marker == "untested" && lang == "sh") kind = "untested"
		else if (lang == "sh") kind = "sh"
		if (kind != "") {
			printf "%s", kind > (dir "/" n ".kind"); close(dir "/" n ".kind")
			printf "%s", arg > (dir "/" n ".arg"); close(dir "/" n ".arg")
			printf "%d", NR > (dir "/" n ".line"); close(dir "/" n ".line")
			printf "" > (dir "/" n ".body")
		}
		flush_marker(); next
	}
	infence && /^```$/ { infence = 0; if (kind != "") close(dir "/" n ".body"); next }
	infence { if (kind != "") print > (dir "/" n ".body"); next }
	/[^ \t]/ { flush_marker() }
' README.md

LAST_OUT=
nsh=0
for kindf in $(ls "$BLOCKS"/*.kind | sort -t/ -k1 -V); do
	b=${kindf%.kind}
	kind=$(cat "$kindf")
	line=$(cat "$b.line")
	arg=$(cat "$b.arg")
	case $kind in
	file)
		path=${arg/#\~/$HOME}
		if cp "$b.body" "$path" 2>"$KX_TMP/err"; then
			kx_pass "README:$line writes $arg"
		else
			kx_fail "README:$line writes $arg" "$(cat "$KX_TMP/err")"
		fi ;;
	untested)
		echo "skip README:$line: $(head -1 "$b.body") ($arg)" ;;
	sh)
		nsh=$((nsh + 1))
		LAST_OUT=$b.out
		label="README:$line: $(head -1 "$b.body")"
		kx_run "README:$line" "$b.out" "$b.out" -- env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
			bash -e -o pipefail "$b.body" &&
			kx_expect_rc "$label" 0 "$b.out" && kx_pass "$label" ;;
	expect)
		missing=$(grep -vxF -f "$LAST_OUT" "$b.body" 2>/dev/null | grep -v '^$')
		if [ -n "$LAST_OUT" ] && [ -z "$missing" ]; then
			kx_pass "README:$line: output as shown"
		else
			kx_fail "README:$line: output as shown" "missing: $missing"
			sed 's/^/    /' "$LAST_OUT" | tail -15
		fi ;;
	esac
done
[ "$nsh" -ge 10 ] || kx_fail "README" "only $nsh command blocks found: is the marker syntax intact?"

kx_done t_readme

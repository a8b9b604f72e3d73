#!/bin/bash
# The --progress line. On a terminal (a tmux pane of 80, then 40 columns) the
# demo shows one progress line at a time, never wider than the pane less one
# column, cut with an ellipsis, and its result starts on a clean line with
# nothing of the progress line left on screen. Into a file, --progress
# writes plain lines (no carriage return, no escape code) every 2 s.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_progress ($BUILD)"

# in_pane COLS TAG COMMAND: run COMMAND (shell text, from the project's
# root) in a COLS x 30 tmux pane (its own server, its own socket),
# capturing the screen every 50 ms into $T/cap.TAG.N until it is done
# (ON_SCREEN, when set, is run once the screen shows it: sends keys).
in_pane() {
	local cols=$1 tag=$2 cmd=$3 sock=$T/tmux.$2 i sent=
	rm -f "$T"/cap.$tag.*
	# tmux's server daemonises through /dev/null and fails when that is not
	# the null device (another test on the machine may have replaced it):
	# then the server gets a private mount namespace with a null device of
	# its own bound there; nothing outside that namespace changes.
	local fix=()
	if [ ! -c /dev/null ]; then
		mknod "$T/null" c 1 3 2>/dev/null
		fix=(unshare --mount --propagation private sh -c \
			'mount --bind "$0" /dev/null && exec "$@"' "$T/null")
	fi
	if ! "${fix[@]}" tmux -S "$sock" -f /dev/null new-session -d -x "$cols" -y 30 \
		-e LANG=C.UTF-8 -e LC_ALL= \
		"cd '$PWD' && $cmd; echo \"DONE-\$?\"; sleep 600" \
		2>"$T/tmux.err"; then
		echo "  tmux did not start: $(cat "$T/tmux.err"); /dev/null: $(stat -c %F /dev/null)"
	fi
	for ((i = 0; i < 4000; i++)); do
		tmux -S "$sock" capture-pane -p >"$T/cap.$tag.$i" 2>/dev/null
		grep -q '^DONE-' "$T/cap.$tag.$i" && break
		if [ -n "${ON_SCREEN:-}" ] && [ -z "$sent" ] &&
			grep -qE "$ON_SCREEN" "$T/cap.$tag.$i"; then
			tmux -S "$sock" send-keys C-c
			sent=1
		fi
		sleep 0.05
	done
	tmux -S "$sock" kill-server 2>/dev/null
	LAST=$T/cap.$tag.$i
}
# the demo, reading its story 50000 times rather than 2000: it counts the
# 4 M words of make run in about 0.1 s, well before a progress line would
# show; 100 M words take 1.5-3 s, several lines (one every 500 ms)
sed -e 's/u64:2000$/u64:50000/' -e "s|\${TOPDIR}|$PWD/config|" config/demo.ini >"$T/demo.ini"
demo_in_pane() { in_pane "$1" "$1" "'$IPCRUN' '$T/demo.ini'"; }

for cols in 80 40; do
	demo_in_pane "$cols"
	check "demo in $cols columns: finished, exit 0" grep -qx 'DONE-0' "$LAST"
	# every screen seen while it ran: at most one progress line
	most=$(for f in "$T"/cap.$cols.*; do grep -c ' | \|s |' "$f"; done | sort -n | tail -1)
	seen=$(cat "$T"/cap.$cols.* | grep -c '^ *[0-9.]*s |')
	check "demo in $cols columns: a progress line was shown ($seen screens)" \
		test "$seen" -gt 0
	check "demo in $cols columns: never more than one progress line on screen ($most)" \
		test "${most:-9}" -le 1
	widest=$(cat "$T"/cap.$cols.* | grep '^ *[0-9.]*s |' | sed -e 's/ *$//' -e 's/…/./' |
		awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }')
	check "demo in $cols columns: the line fits in $((cols - 1)) columns ($widest)" \
		test "$widest" -le $((cols - 1))
	check "demo in $cols columns: a cut line ends with an ellipsis" \
		bash -c "cat '$T'/cap.$cols.* | grep '^ *[0-9.]*s |' | sed 's/ *\$//' | grep -q '…\$'"
	first=$(grep -v '^ *$' "$LAST" | head -1)
	check "demo in $cols columns: the result starts on a clean line ('$first')" \
		test "$first" = "top 10 of 510 keys:"
	check "demo in $cols columns: nothing of the progress line is left" \
		bash -c "! grep -q ' | ' '$LAST'"
done

# Kernel output while the line is shown: print_sink prints a record every
# 100 ms for ~2 s; each lands on a line of its own, never glued to the
# progress line, which stays one line below them. Then Ctrl-C.
cat >"$T/slow.ini" <<EOF
[process:p1]
[kernel:src]
library = libtestkernels.so
function = t_slow_source
args = u64:100000, str:$T/slow.pid
process = p1
[kernel:sink]
library = libipckernels.so
function = print_sink
[connections]
connect = src.out -> sink.in
EOF
ON_SCREEN='^1[5-9]$' in_pane 60 slow "IPC_KERNEL_PATH='$IPC_KERNEL_PATH' '$IPCRUN' '$T/slow.ini'"
check "kernel output under the line: stopped by Ctrl-C (130)" grep -qx 'DONE-130' "$LAST"
check "kernel output under the line: the records, each on its own line" \
	test "$(grep -cE '^[0-9]+$' "$LAST")" -ge 15
check "kernel output under the line: a progress line was shown" \
	grep -q '^ *[0-9.]*s | src.out' "$T"/cap.slow.*
glued=$(cat "$T"/cap.slow.* | grep ' | ' | grep -v '^ *[0-9.]*s | ' | head -3)
check "kernel output under the line: never glued to it ('$glued')" test -z "$glued"
most=$(for f in "$T"/cap.slow.*; do grep -c 's | ' "$f"; done | sort -n | tail -1)
check "kernel output under the line: one progress line at most ($most)" test "${most:-9}" -le 1
check "kernel output under the line: the line is erased at the end" \
	bash -c "! grep -q 's | ' '$LAST'"

# Into a file: plain lines, every 2 s, while endless.ini runs.
sed -e "s|@PIDFILE@|$T/plain.pid|" -e "s|@DELAY@|0|" "$INI/endless.ini" >"$T/plain.ini"
"$IPCRUN" -v --progress "$T/plain.ini" >"$T/plain.out" 2>"$T/plain.err" &
IPID=$!
E=$T/plain.err
wait_for 10000 grep -qs '^ipcrun: process ' "$E"
H=$(handle_of "$E")
check "--progress into a file: a plain line within 2 s + margin" \
	wait_for 8000 grep -qs '^ipcrun:  *[0-9.]*s | src.out [0-9.kMG]*/s | mid.out' "$E"
kill -INT "$IPID"
await_ipcrun 10000
check "--progress into a file: exit 130 after SIGINT ($RC)" test "$RC" -eq 130
check "--progress into a file: no carriage return or escape code" \
	bash -c "! grep -q \$'[\\r\\033]' '$E'"
check_clean "$H" "--progress into a file"

finish

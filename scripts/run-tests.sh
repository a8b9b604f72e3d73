#!/bin/bash
# Run test binaries under every shm/semaphore backend combination, check that
# each leaves nothing in /dev/shm or ipcs, then run the integration tests.
#   run-tests.sh BUILD "bin1 bin2 ..." [unit-only]
# Prints one closing line: "tests: N passed, N failed".
# IPC_COMBOS narrows the combinations ("posix:posix ..."); IPC_TEST_WRAP runs
# each binary under a command (make valgrind: memcheck).
#
# Each binary runs in its own IPC namespace with its own /dev/shm when the
# machine allows it (root, or user namespaces), so that what it leaves is
# seen exactly, whatever else runs on the machine; otherwise the whole
# machine's /dev/shm and ipcs are compared before and after.
#
# No test may touch the system: after every test, each device node under
# /dev (the top level: null, zero, full, random, urandom, tty, ...) must
# still be the device it was before, and /dev must hold no new regular file
# (a test kernel's "write PATH.tmp, rename it over PATH" given /dev/null once
# replaced /dev/null with a file). The first test that breaks this fails the
# run at once, naming the node.
build=$1; bins=$2; mode=${3:-all}
pass=0; fail=0; failed=()
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# "TYPE MAJOR:MINOR PATH" for every device node directly under /dev, and
# "file PATH" for every regular file there.
devices() {
	find /dev -maxdepth 1 \( -type c -o -type b -o -type f \) \
		-exec stat -c '%F %t:%T %n' {} + 2>/dev/null |
		sed -e 's/^character special file /c /' -e 's/^block special file /b /' \
		    -e 's/^regular[a-z ]* file [0-9a-f]*:[0-9a-f]* /file /' | sort
}
devices > "$tmp/devices"
if ! grep -q '^c 1:3 /dev/null$' "$tmp/devices"; then
	echo "run-tests: /dev/null is not the null character device before the tests:" >&2
	ls -l /dev/null >&2
	echo "restore it (as root): rm -f /dev/null && mknod -m 666 /dev/null c 1 3" >&2
	exit 1
fi
# devices_intact LABEL: fail the whole run if LABEL changed a node in /dev.
devices_intact() {
	local changed
	changed=$(comm -3 "$tmp/devices" <(devices))
	[ -z "$changed" ] && return 0
	echo "FAIL $1 changed /dev (a test wrote outside its own folder):" >&2
	echo "$changed" | sed 's/^/    /' >&2
	echo "tests: stopped: the machine's /dev was modified; restore it before anything else" >&2
	exit 1
}

snapshot() {
	{ ls -1 /dev/shm 2>/dev/null
	  ipcs -m 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "shm " $1 " " $2}'
	  ipcs -s 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "sem " $1 " " $2}'; } | sort
}

# Inside a fresh namespace: a private /dev/shm, the test, then what is left.
cat > "$tmp/inner.sh" <<INNER
#!/bin/bash
mount -t tmpfs ipc-test /dev/shm || exit 97
"\$@"; rc=\$?
$(declare -f snapshot)
snapshot > "$tmp/left"
exit \$rc
INNER
chmod +x "$tmp/inner.sh"
isolate=
for u in "unshare --ipc --mount --propagation private" \
         "unshare --user --map-root-user --ipc --mount --propagation private"; do
	if $u sh -c 'mount -t tmpfs ipc-probe /dev/shm' 2>/dev/null; then
		isolate=$u
		break
	fi
done
[ -n "$isolate" ] || echo "(no private IPC namespace here: leftovers are checked machine-wide)"

run_one() { # label, command...
	local label=$1; shift
	local before after left rc
	if [ -n "$isolate" ]; then
		: > "$tmp/left"
		$isolate "$tmp/inner.sh" "$@"; rc=$?
		left=$(cat "$tmp/left")
	else
		before=$(snapshot)
		"$@"; rc=$?
		after=$(snapshot)
		left=$(comm -13 <(echo "$before") <(echo "$after"))
	fi
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $label (exit $rc)"
		fail=$((fail + 1)); failed+=("$label")
	elif [ -n "$left" ]; then
		echo "FAIL $label: left behind:"; echo "$left" | sed 's/^/    /'
		fail=$((fail + 1)); failed+=("$label (leak)")
	else
		pass=$((pass + 1))
	fi
	devices_intact "$label"
}

combos=${IPC_COMBOS:-"posix:posix posix:sysv sysv:posix sysv:sysv"}
for combo in $combos; do
	shm=${combo%%:*}; sem=${combo##*:}
	echo "=== IPC_SHM=$shm IPC_SEM=$sem ==="
	for bin in $bins; do
		# shellcheck disable=SC2086 # IPC_TEST_WRAP is a command line
		run_one "$(basename "$bin") [$shm/$sem]" env IPC_SHM=$shm IPC_SEM=$sem \
			${IPC_TEST_WRAP:-} "$bin"
	done
done

if [ "$mode" != unit-only ] && [ -x tests/integration/run.sh ]; then
	echo "=== integration ==="
	run_one "integration" tests/integration/run.sh "$build"
fi

echo
for f in "${failed[@]}"; do echo "failed: $f"; done
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/bash
# Run test binaries under every shm/semaphore backend combination, check that
# each leaves nothing in /dev/shm or ipcs, then run the integration tests.
#   run-tests.sh BUILD "bin1 bin2 ..." [unit-only]
# Prints one closing line: "tests: N passed, N failed".
build=$1; bins=$2; mode=${3:-all}
pass=0; fail=0; failed=()

snapshot() {
	{ ls -1 /dev/shm 2>/dev/null
	  ipcs -m 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "shm " $1 " " $2}'
	  ipcs -s 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "sem " $1 " " $2}'; } | sort
}

run_one() { # label, command...
	local label=$1; shift
	local before after left
	before=$(snapshot)
	if "$@"; then
		after=$(snapshot)
		left=$(comm -13 <(echo "$before") <(echo "$after"))
		if [ -n "$left" ]; then
			echo "FAIL $label: left behind:"; echo "$left" | sed 's/^/    /'
			fail=$((fail + 1)); failed+=("$label (leak)")
			return
		fi
		pass=$((pass + 1))
	else
		echo "FAIL $label (exit $?)"
		fail=$((fail + 1)); failed+=("$label")
	fi
}

combos=${IPC_COMBOS:-"posix:posix posix:sysv sysv:posix sysv:sysv"}
for combo in $combos; do
	shm=${combo%%:*}; sem=${combo##*:}
	echo "=== IPC_SHM=$shm IPC_SEM=$sem ==="
	for bin in $bins; do
		run_one "$(basename "$bin") [$shm/$sem]" env IPC_SHM=$shm IPC_SEM=$sem "$bin"
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

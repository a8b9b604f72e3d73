#!/bin/bash
# Run the benchmarks one after the other and print their output; the whole
# output also goes to BUILD/bench.txt. Ends with every Markdown table the
# benchmarks printed, gathered into one block to paste into README.
#   run-bench.sh BUILD "target1 target2 ..."
# A target is any executable (binary or script), run with no arguments.
# Exit status: non-zero when a benchmark failed or left shared memory behind.
build=${1:?usage: run-bench.sh BUILD \"targets\"}; targets=$2
out=$build/bench.txt
limit=${IPC_BENCH_TIMEOUT:-300} # seconds per target
mkdir -p "$build"

snapshot() {
	{ ls -1 /dev/shm 2>/dev/null
	  ipcs -m 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "shm " $1 " " $2}'
	  ipcs -s 2>/dev/null | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print "sem " $1 " " $2}'; } | sort
}

machine() {
	local model
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
	echo "${model:-unknown CPU} | $(nproc) CPUs | Linux $(uname -r)"
}

status=0
before=$(snapshot)
export IPC_BENCH_MACHINE_SHOWN=1
{
	echo "# libipc benchmarks"
	echo
	echo "machine: $(machine)"
	echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo
	for t in $targets; do
		echo "=== $(basename "$t") ==="
		start=$(date +%s.%N)
		timeout -k 5 "$limit" "$t" 2>&1
		rc=$?
		[ $rc -eq 124 ] && echo "bench: $(basename "$t") timed out after ${limit}s"
		[ $rc -ne 0 ] && echo "bench: $(basename "$t") exited with status $rc"
		awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "(%.1f s)\n\n", e - s }'
	done
} | tee "$out"
grep -q '^bench: .* exited with status' "$out" && status=1

after=$(snapshot)
left=$(comm -13 <(echo "$before") <(echo "$after"))
{
	if [ -n "$left" ]; then
		echo "bench: shared memory or semaphores appeared during the run and remain"
		echo "(other engineers' runs may own some of them):"
		echo "$left" | sed 's/^/    /'
		echo
	fi
	echo "---- Markdown for README ----------------------------------------------"
	echo
	echo "Benchmarks on: $(machine)"
	awk '/^### / { print ""; print; print ""; next } /^\|/ { print }' "$out"
	echo
} | tee -a "$out"
exit $status

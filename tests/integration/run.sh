#!/bin/bash
# Run every tests/integration/t_*.sh with BUILD as $1, one after the other;
# print pass/fail per script and exit non-zero if any failed. A script after
# which /dev/null is no longer a character device fails (it wrote outside its
# own folder; scripts/run-tests.sh then stops the whole run).
#   tests/integration/run.sh [BUILD]
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
pass=0
failed=()
for t in tests/integration/t_*.sh; do
	[ -e "$t" ] || continue
	start=$(date +%s)
	if bash "$t" "$build" && [ -c /dev/null ]; then
		echo "PASS $(basename "$t") ($(( $(date +%s) - start )) s)"
		pass=$((pass + 1))
	else
		echo "FAIL $(basename "$t") ($(( $(date +%s) - start )) s)"
		failed+=("$(basename "$t")")
	fi
done
echo "integration: $pass passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ "${#failed[@]}" -eq 0 ]

#!/bin/bash
# Integration: libipc.so exports exactly its public API. The functions
# declared in runtime/include/ipc/*.h, the names in runtime/lib/libipc.map
# and what `nm -D` finds defined in the built library must be one list.
#   tests/integration/t_exports.sh BUILD
set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
so=$build/lib/libipc.so.1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -f "$so" ] || { echo "t_exports: $so is missing (make first)"; exit 1; }

# A declaration: a line (or continuation) naming ipc_xxx( after its type.
cat runtime/include/ipc/*.h | tr '\n' ' ' | sed 's/;/;\n/g' |
	grep -v '^\s*#' | grep -oE '\bipc_[a-z0-9_]+\s*\(' | grep -oE 'ipc_[a-z0-9_]+' |
	sort -u > "$tmp/headers"
sed -n 's/^[[:space:]]*\(ipc_[a-z0-9_]*\);$/\1/p' runtime/lib/libipc.map | sort -u > "$tmp/map"
nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwDdBbRr]$/ && $3 !~ /^IPC_/ {print $3}' |
	sort -u > "$tmp/nm"
# Versioned symbols print as name@@IPC_1.0 with some binutils.
sed -i 's/@.*//' "$tmp/nm"
ok=0
if ! diff -u "$tmp/headers" "$tmp/map" > "$tmp/d1"; then
	echo "t_exports: runtime/lib/libipc.map differs from the public headers:"
	sed -n 's/^[-+]ipc/  &/p' "$tmp/d1"; ok=1
fi
if ! diff -u "$tmp/headers" "$tmp/nm" > "$tmp/d2"; then
	echo "t_exports: nm -D $so differs from the public headers:"
	sed -n 's/^[-+]ipc/  &/p' "$tmp/d2"; ok=1
fi
n=$(wc -l < "$tmp/nm")
[ $ok -eq 0 ] && echo "t_exports: $n symbols, exactly the public API"
exit $ok

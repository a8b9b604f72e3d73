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
# Comments are dropped first: they name structs and functions in prose.
perl -0777 -pe 's{/\*.*?\*/}{}gs' runtime/include/ipc/*.h | tr '\n' ' ' | sed 's/;/;\n/g' |
	grep -v '^\s*#' | grep -oE '\bipc_[a-z0-9_]+\s*\(' | grep -oE 'ipc_[a-z0-9_]+' |
	sort -u > "$tmp/headers"
sed -n 's/^[[:space:]]*\(ipc_[a-z0-9_]*\);$/\1/p' runtime/lib/libipc.map | sort -u > "$tmp/map.all"
nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwDdBbRr]$/ && $3 !~ /^IPC_/ {print $3}' |
	sort -u > "$tmp/nm.all"
# Versioned symbols print as name@@IPC_1.0 with some binutils.
sed -i 's/@.*//' "$tmp/nm.all"
# ipc__ names: ipcrun's private entry points (runtime/lib/kernel_impl.h),
# in the map and exported, never in the public headers.
grep -v '^ipc__' "$tmp/map.all" > "$tmp/map"
grep -v '^ipc__' "$tmp/nm.all" > "$tmp/nm"
grep '^ipc__' "$tmp/map.all" > "$tmp/map.priv"
grep '^ipc__' "$tmp/nm.all" > "$tmp/nm.priv"
ok=0
if ! diff -u "$tmp/headers" "$tmp/map" > "$tmp/d1"; then
	echo "t_exports: runtime/lib/libipc.map differs from the public headers:"
	sed -n 's/^[-+]ipc/  &/p' "$tmp/d1"; ok=1
fi
if ! diff -u "$tmp/headers" "$tmp/nm" > "$tmp/d2"; then
	echo "t_exports: nm -D $so differs from the public headers:"
	sed -n 's/^[-+]ipc/  &/p' "$tmp/d2"; ok=1
fi
if ! diff -u "$tmp/map.priv" "$tmp/nm.priv" > "$tmp/d3"; then
	echo "t_exports: the ipc__ names of libipc.map differ from nm -D $so:"
	sed -n 's/^[-+]ipc/  &/p' "$tmp/d3"; ok=1
fi
for f in $(cat "$tmp/map.priv"); do
	grep -q "\b$f\b" runtime/lib/kernel_impl.h ||
		{ echo "t_exports: $f is exported but not declared in kernel_impl.h"; ok=1; }
done
n=$(wc -l < "$tmp/nm")
[ $ok -eq 0 ] && echo "t_exports: $n symbols, exactly the public API"
exit $ok

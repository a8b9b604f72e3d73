#!/bin/bash
# Integration: calls inside runtime/lib run one way, downward (DESIGN.md,
# "Layers inside runtime/lib"; README, "Project layout and development").
# For every runtime/lib object, each ipc_/ipc__ function it calls (nm -u)
# is defined (nm --defined-only) by a file whose layer is at most its own.
# Then lib_rules.sh: functions that expect the lock held end in _locked, and
# every acquire and release names what it pairs with.
#   tests/integration/t_layers.sh BUILD
set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
objdir=$build/pic/runtime/lib

# The layers, bottom (1) to top (7). A file may call its own layer and the
# layers below it, never a layer above. A new runtime/lib/*.c file must be
# given a layer here (the check fails on a file it does not know).
#   1 shared layout and primitives: atomics, ring, heap, shm, handles
#   2 the buffer lock, the channel/segment directory; liveness, notices
#   3 the per-thread table of channel ends; records and slabs
#   4 channels, channel-end takeover; segments
#   5 thread state: ipc_tls_open / ipc_tls_close
#   6 reaping of dead processes and gc
#   7 the buffer API; the kernel API
declare -A layer=(
	[util]=1 [heap]=1 [shm]=1 [layout]=1 [handle]=1
	[dir]=2 [live]=2 [notice]=2
	[ends]=3 [record]=3
	[channel]=4 [takeover]=4 [segment]=4
	[tls]=5
	[reap]=6
	[buffer]=7 [kernel]=7 [kernel_linger]=7 [record_trim]=7
)

ok=0
shopt -s nullglob
objs=("$objdir"/*.o)
[ ${#objs[@]} -gt 0 ] || { echo "t_layers: no objects in $objdir (make first)"; exit 1; }
for src in runtime/lib/*.c; do
	f=$(basename "$src" .c)
	[ -f "$objdir/$f.o" ] || { echo "t_layers: $objdir/$f.o is missing (make first)"; exit 1; }
done

# symbol -> file that defines it
declare -A owner=()
for o in "${objs[@]}"; do
	f=$(basename "$o" .o)
	if [ -z "${layer[$f]:-}" ]; then
		echo "t_layers: runtime/lib/$f.c has no layer: add it to the table in $0"
		ok=1; continue
	fi
	while read -r sym; do
		owner[$sym]=$f
	done < <(nm --defined-only "$o" | awk '$2 ~ /^[TtDdBbRrWw]$/ && $3 ~ /^ipc_/ {print $3}')
done

edges=0
declare -A seen=()
for o in "${objs[@]}"; do
	f=$(basename "$o" .o)
	[ -n "${layer[$f]:-}" ] || continue
	while read -r sym; do
		g=${owner[$sym]:-}
		[ -n "$g" ] || continue
		[ "$g" = "$f" ] && continue
		edges=$((edges + 1))
		seen[$f:$g]=1
		if [ "${layer[$g]}" -gt "${layer[$f]}" ]; then
			echo "t_layers: $f.c (layer ${layer[$f]}) calls $sym of $g.c (layer ${layer[$g]}, above it)"
			ok=1
		fi
	done < <(nm -u "$o" | awk '$2 ~ /^ipc_/ {print $2}')
done
# The check must see the calls between files to prove anything: a few that
# cross layers are known (tls.c closes channel ends, buffer.c takes the lock,
# reap.c frees records, takeover.c looks up the directory).
[ "$edges" -gt 0 ] || { echo "t_layers: no calls between files found"; ok=1; }
for e in tls:channel tls:segment buffer:dir reap:record takeover:dir channel:ends; do
	[ -n "${seen[$e]:-}" ] ||
		{ echo "t_layers: the call ${e%%:*}.c -> ${e#*:}.c was not found (nm output changed?)"; ok=1; }
done
[ $ok -eq 0 ] && echo "t_layers: ok ($edges calls between files, all downward)"
# The lock-naming and pairing rules, on the sources (lib_rules.sh).
bash tests/integration/lib_rules.sh || ok=1
exit $ok

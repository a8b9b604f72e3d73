#!/bin/bash
# Integration: the examples.
#  - RaftLib/ipc's README example in C (two processes, one buffer opened by
#    handle): every record arrives in order with its content, under the four
#    shm/semaphore backend combinations.
#  - The install as a user sees it: `make install PREFIX=<tmp>`, then the
#    custom kernel library (examples/kernels, copied elsewhere) built by its
#    own Makefile through pkg-config, run by the installed ipcrun, which must
#    find libipckernels.so by its bare name; the buffer example built with
#    `cc ... $(pkg-config --cflags --libs ipc)`; `make uninstall` removes it all.
#
#   tests/integration/t_examples.sh BUILD
set -u
KX_LIB_ONLY=1 . "$(dirname "$0")/t_configs.sh"
kx_init "$@"

REL_BUILD=${KX_BUILD#"$KX_ROOT"/}
case $REL_BUILD in */asan) SAN=asan ;; */tsan) SAN=tsan ;; *) SAN= ;; esac
SANFLAGS=
[ "$SAN" = asan ] && SANFLAGS="-fsanitize=address,undefined"
OUT=$KX_TMP/out
ERR=$KX_TMP/err
# A make of the project's own, not a job of the make that runs the tests.
pmake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory "$@"; }

# --- RaftLib/ipc's example -------------------------------------------------
EX=$KX_BUILD/examples/buffer_example
for combo in posix:posix posix:sysv sysv:posix sysv:sysv; do
	l="buffer_example [$combo]"
	if [ ! -x "$EX" ]; then kx_fail "$l" "$EX not built"; continue; fi
	kx_run "$l" "$OUT" "$ERR" -- env IPC_SHM="${combo%:*}" IPC_SEM="${combo#*:}" "$EX" 200000 &&
		kx_expect_rc "$l" 0 "$ERR" && {
		if grep -q '^received 200000 records in order, all checked' "$OUT"; then
			kx_pass "$l: 200000 records in order"
		else
			kx_fail "$l" "unexpected output: $(cat "$OUT")"
		fi
	}
done

# --- install, then build and run as a user ---------------------------------
PREFIX=$KX_TMP/prefix
PC=$PREFIX/lib/pkgconfig
if pmake -s install BUILD="$REL_BUILD" SAN="$SAN" PREFIX="$PREFIX" >"$OUT" 2>&1 &&
   [ -x "$PREFIX/bin/ipcrun" ] && [ -f "$PREFIX/lib/libipckernels.so" ] &&
   [ -f "$PC/ipc.pc" ] && [ -f "$PREFIX/include/ipc/kernel.h" ]; then
	kx_pass "make install PREFIX=<tmp>: ipcrun, libipc, libipckernels.so, ipc.pc, headers"
else
	kx_fail "make install" "$(tail -5 "$OUT")"
fi

if [ "$(PKG_CONFIG_PATH=$PC pkg-config --variable=prefix ipc 2>/dev/null)" = "$PREFIX" ]; then
	kx_pass "installed ipc.pc names the install prefix"
else
	kx_fail "installed ipc.pc" "prefix is '$(PKG_CONFIG_PATH=$PC pkg-config --variable=prefix ipc 2>&1)'"
fi

# The custom kernel library, copied out of the tree as a user would.
MINE=$KX_TMP/mykernels
cp -r examples/kernels "$MINE"
rm -f "$MINE/libmykernels.so"
if PKG_CONFIG_PATH=$PC pmake -C "$MINE" CFLAGS="-O2 -g -Wall -Wextra -Werror" >"$OUT" 2>&1 &&
   [ -f "$MINE/libmykernels.so" ]; then
	kx_pass "examples/kernels/Makefile builds libmykernels.so with pkg-config"
else
	kx_fail "examples/kernels/Makefile" "$(tail -5 "$OUT")"
fi

# squares.ini: 0..999 squared (function kernel) and summed (actor kernel).
seq 0 999 | awk '{s += $1 * $1; printf "%.0f\n", s}' >"$KX_TMP/exp"
kx_run "squares.ini" "$OUT" "$ERR" -- "$PREFIX/bin/ipcrun" "$MINE/squares.ini" &&
	kx_expect_rc "squares.ini" 0 "$ERR" &&
	kx_same "squares.ini by the installed ipcrun: running sums of squares, last 332833500" \
		"$KX_TMP/exp" "$OUT"

# The same through the example Makefile's `make run`, from another folder.
kx_run "make run (example)" "$OUT" "$ERR" -- env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	PKG_CONFIG_PATH="$PC" make -s -C "$MINE" run IPCRUN="$PREFIX/bin/ipcrun" &&
	kx_expect_rc "make run (example)" 0 "$ERR" &&
	kx_same "examples/kernels: make run" "$KX_TMP/exp" "$OUT"

# RaftLib/ipc's example built against the installed library.
# shellcheck disable=SC2046
if cc -std=c11 $SANFLAGS examples/buffer_example.c \
	$(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs ipc) -o "$KX_TMP/buffer_example" \
	>"$OUT" 2>&1; then
	kx_run "buffer_example (installed)" "$OUT" "$ERR" -- "$KX_TMP/buffer_example" 10000 &&
		kx_expect_rc "buffer_example (installed)" 0 "$ERR" &&
		grep -q '^received 10000 records in order' "$OUT" &&
		kx_pass "buffer_example built with pkg-config against the install"
else
	kx_fail "cc buffer_example.c \$(pkg-config --cflags --libs ipc)" "$(tail -5 "$OUT")"
fi

# make uninstall leaves no file behind.
if pmake -s uninstall BUILD="$REL_BUILD" SAN="$SAN" PREFIX="$PREFIX" >"$OUT" 2>&1 &&
   [ -z "$(find "$PREFIX" -type f -o -type l)" ]; then
	kx_pass "make uninstall removes every installed file"
else
	kx_fail "make uninstall" "left: $(find "$PREFIX" -type f -o -type l | tr '\n' ' ')"
fi

kx_done t_examples

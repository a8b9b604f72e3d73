#!/bin/sh
# What a make target needs, checked before it compiles anything.
#
#   scripts/deps.sh SET...     SET: build run test valgrind fuzz lint man mpi
#
# Each dependency is probed the way the build uses it: a library through
# pkg-config, or, without pkg-config, by compiling and linking a one-line
# program against it; a tool by finding it on PATH. When everything is
# there, nothing is installed and nothing is printed, whatever the
# distribution (no dpkg or apt needed). What is missing is named with its
# Debian/Ubuntu package; as root with apt-get, those packages are installed;
# otherwise the exact command is printed and the exit status is 1.
#
# The Makefile runs this for every goal that compiles (plain `make` and
# `make install` included); `make DEPS=no ...` skips it.
set -u
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipc-deps.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# lib PC-NAME HEADER LIB: the library is usable by $CC.
lib() {
	if command -v pkg-config >"$tmp/out" 2>&1 && pkg-config --exists "$1"; then
		return 0
	fi
	printf '#include <%b>\nint main(void) { return 0; }\n' "$2" >"$tmp/probe.c"
	"$CC" "$tmp/probe.c" -o "$tmp/probe" -l"$3" >"$tmp/out" 2>&1
}
tool() { command -v "$1" >"$tmp/out" 2>&1; }

# need PACKAGE WHAT PROBE...: PACKAGE (Debian's name) unless PROBE succeeds.
missing=""
what=""
need() {
	pkg=$1 desc=$2
	shift 2
	case " $missing " in *" $pkg "*) return ;; esac
	if ! "$@"; then
		missing="$missing $pkg"
		what="$what
  $desc (Debian/Ubuntu package $pkg)"
	fi
}

sets=${*:-build}
# the tests of the scale-out bridge (issue 13) need MPI and ZeroMQ, once the
# tree has it
case " $sets " in
*" test "* | *" valgrind "*)
	[ -e "$(dirname "$0")/../runtime/ipcrun/net_mpi.c" ] && sets="$sets mpi" ;;
esac
for set in $sets; do
	case $set in
	build | run)
		need gcc "a C compiler ($CC)" tool "$CC"
		need libinih-dev "inih, the INI parser (ini.h, -linih)" lib inih ini.h inih
		need libffi-dev "libffi (ffi.h, -lffi)" lib libffi ffi.h ffi ;;
	test | valgrind)
		need gcc "a C compiler ($CC)" tool "$CC"
		need libinih-dev "inih, the INI parser (ini.h, -linih)" lib inih ini.h inih
		need libffi-dev "libffi (ffi.h, -lffi)" lib libffi ffi.h ffi
		need libcmocka-dev "cmocka, the unit test library (cmocka.h)" \
			lib cmocka "stddef.h>\n#include <stdarg.h>\n#include <setjmp.h>\n#include <cmocka.h" cmocka
		need pkg-config "pkg-config (the examples build with it)" tool pkg-config
		need tmux "tmux (the tests of the progress line and of ipcrun top)" tool tmux
		need jq "jq (the test of ipcrun status --json)" tool jq
		need groff-base "groff (the man pages' test)" tool groff
		need man-db "man (the man pages' test)" tool man
		if [ "$set" = valgrind ]; then
			need valgrind "valgrind" tool valgrind
		fi ;;
	fuzz)
		need clang "clang with libFuzzer" tool clang
		need libinih-dev "inih, the INI parser (ini.h, -linih)" lib inih ini.h inih
		need libffi-dev "libffi (ffi.h, -lffi)" lib libffi ffi.h ffi ;;
	lint)
		need cppcheck "cppcheck" tool cppcheck
		need clang-tidy "clang-tidy" tool clang-tidy ;;
	man)
		need groff-base "groff" tool groff
		need man-db "man" tool man ;;
	mpi)
		need openmpi-bin "Open MPI's mpirun" tool mpirun
		need libopenmpi-dev "Open MPI's mpicc" tool mpicc
		need libzmq3-dev "ZeroMQ (zmq.h, -lzmq)" lib libzmq zmq.h zmq
		need iproute2 "ip" tool ip
		need util-linux "unshare" tool unshare ;;
	*)
		echo "deps: unknown set '$set' (build run test valgrind fuzz lint man mpi)" >&2
		exit 2 ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && tool apt-get; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # a list of package names
	if apt-get install -y -q $missing >"$tmp/apt.log" 2>&1 ||
		{ apt-get update -q >>"$tmp/apt.log" 2>&1 &&
		  apt-get install -y -q $missing >>"$tmp/apt.log" 2>&1; }; then
		exit 0
	fi
	echo "deps: apt-get install$missing failed:" >&2
	tail -n 5 "$tmp/apt.log" | sed 's/^/  /' >&2
	exit 1
fi

echo "deps: missing:$what" >&2
if tool apt-get; then
	echo "deps: install them with: sudo apt-get install -y$missing" >&2
else
	echo "deps: install them with your distribution's package manager (these are Debian's names)," >&2
	echo "deps: or build with what you have: make DEPS=no" >&2
fi
exit 1

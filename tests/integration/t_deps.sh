#!/bin/bash
# scripts/deps.sh and the Makefile's dependency check, on made-up machines:
# a PATH of our own (no pkg-config, no dpkg, no apt-get, or a fake apt-get
# that records what it was asked), a compiler that cannot link -linih, and a
# user that is not root. Nothing is installed for real.
#  - everything there (the real tools; or without pkg-config and dpkg, found
#    by compile probes): exit 0, nothing printed;
#  - inih missing, not root: exit 1, names libinih-dev and the exact
#    `sudo apt-get install` command (or, without apt-get, says Debian names);
#  - inih missing, root with apt-get: `apt-get install -y -q libinih-dev`;
#  - plain `make` with inih missing stops before compiling anything, saying
#    what is missing.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_deps"
ROOT=$PWD
lacks() { ! grep -q -- "$1" <<<"$2"; } # PATTERN TEXT

# A bin folder with the basic tools, and no pkg-config / dpkg / apt-get.
mkbin() { # DIR
	mkdir -p "$1"
	local t p
	for t in sh bash mktemp rm id cat sed tail tmux groff man cppcheck clang-tidy \
	         clang valgrind make mkdir dirname as ld; do
		p=$(command -v "$t") && ln -sf "$p" "$1/$t"
	done
	# cc that links everything but inih (the library "not installed")
	cat >"$1/cc" <<EOF
#!/bin/sh
for a in "\$@"; do [ "\$a" = -linih ] && { echo "cannot find -linih" >&2; exit 1; }; done
exec $(command -v cc) "\$@"
EOF
	chmod 755 "$1/cc"
}

# 1. Everything there, the machine's own tools: silent, exit 0.
out=$(scripts/deps.sh build test man lint 2>&1)
check "all present: exit 0, nothing said ('$out')" test $? -eq 0 -a -z "$out"

# 2. No pkg-config, no dpkg, no apt-get: compile probes find the libraries.
B=$T/bin-probe
mkbin "$B"
rm -f "$B/cc"
ln -sf "$(command -v cc)" "$B/cc"
out=$(PATH=$B scripts/deps.sh build 2>&1)
rc=$?
check "no pkg-config, no dpkg: found by compiling, exit 0, nothing said ('$out')" \
	test "$rc" -eq 0 -a -z "$out"

# 3. inih missing, not root, apt-get on PATH: the package and the command.
B=$T/bin-noinih
mkbin "$B"
printf '#!/bin/sh\necho "apt-get $*" >>%s/apt.log\n' "$T" >"$B/apt-get"
chmod 755 "$B/apt-get"
chmod 755 "$T"
mkdir -m 1777 "$T/tmp"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env TMPDIR="$T/tmp" "$@"; }
out=$(nobody env PATH="$B" scripts/deps.sh build 2>&1)
rc=$?
check "inih missing, not root: exit 1 ($rc)" test "$rc" -eq 1
check "inih missing, not root: names libinih-dev" \
	grep -q 'inih.*(Debian/Ubuntu package libinih-dev)' <<<"$out"
check "inih missing, not root: gives the command" \
	grep -qx 'deps: install them with: sudo apt-get install -y libinih-dev' <<<"$out"
check "inih missing, not root: nothing else named" lacks 'libffi-dev\|gcc' "$out"
check "inih missing, not root: apt-get not run" test ! -e "$T/apt.log"

# 4. Without apt-get: the Debian name and how to go on.
rm "$B/apt-get"
out=$(nobody env PATH="$B" scripts/deps.sh build 2>&1)
check "inih missing, no apt-get: Debian's name given" grep -q "package manager" <<<"$out"
check "inih missing, no apt-get: no 'not found'" lacks 'not found' "$out"

# 5. As root with apt-get: it installs exactly the missing package.
printf '#!/bin/sh\necho "apt-get $*" >>%s/apt.log\n' "$T" >"$B/apt-get"
chmod 755 "$B/apt-get"
out=$(PATH=$B scripts/deps.sh build 2>&1)
rc=$?
check "inih missing, root: apt-get install -y -q libinih-dev ($(cat "$T/apt.log" 2>/dev/null))" \
	grep -qx 'apt-get install -y -q libinih-dev' "$T/apt.log"
check "inih missing, root: says what it installs" \
	grep -qx 'deps: installing libinih-dev' <<<"$out"

# 6. Plain `make` with inih missing (not root, no apt-get): stops before
# compiling anything, naming the package.
rm "$B/apt-get"
mkdir -p "$T/clone"
cp -r Makefile mk scripts runtime kernels examples tests "$T/clone/" 2>/dev/null
chown -R 65534:65534 "$T/clone"
# (a make of its own, not a sub-make of the one running the tests)
UNMAKE="-u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u IPC_DEPS_DONE"
out=$(cd "$T/clone" && nobody env $UNMAKE PATH="$B" CC=cc make 2>&1)
rc=$?
check "make, inih missing: fails ($rc)" test "$rc" -ne 0
check "make, inih missing: names libinih-dev and the fix" \
	grep -q 'libinih-dev' <<<"$out"
check "make, inih missing: nothing was compiled" test ! -e "$T/clone/build"
check "make, inih missing: no 'ini.h: No such file'" lacks 'No such file' "$out"
out=$(cd "$T/clone" && nobody env $UNMAKE PATH="$B" CC=cc make DEPS=no -n 2>&1)
check "make DEPS=no: the check is skipped" lacks '^deps:' "$out"
cd "$ROOT" || exit 1

finish

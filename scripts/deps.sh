#!/bin/sh
# Install the Debian packages a target needs when they are missing.
#   deps.sh test | run | valgrind | mpi | fuzz
set -e
case "$1" in
run)      pkgs="libinih-dev libffi-dev pkg-config" ;;
valgrind) pkgs="libcmocka-dev libinih-dev libffi-dev pkg-config valgrind" ;;
fuzz)     pkgs="libinih-dev libffi-dev pkg-config clang" ;;
mpi)      pkgs="openmpi-bin libopenmpi-dev libzmq3-dev iproute2 util-linux" ;;
*)        pkgs="libcmocka-dev libinih-dev libffi-dev pkg-config jq tmux" ;;
esac
# test: also MPI and ZeroMQ, for the scale-out bridge (issue 13)
[ "$1" = test ] && pkgs="$pkgs openmpi-bin libopenmpi-dev libzmq3-dev iproute2"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root, or: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null 2>&1 ||
	{ apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }

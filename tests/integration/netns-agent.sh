#!/bin/sh
# Open MPI's "ssh" for t_hosts.sh (plm_rsh_agent): agent [options] HOST
# COMMAND... runs COMMAND inside network namespace $NETNS_B, with its own
# hostname and a private /dev/shm, so that the second "host" shares nothing
# with the first but the veth link. What the host's /dev/shm holds when
# COMMAND ends is written to $NETNS_LEFT_B.
while [ $# -gt 0 ]; do
	case "$1" in -*) shift ;; *) break ;; esac
done
shift # the host: there is only one other
exec ip netns exec "$NETNS_B" unshare --mount --uts --propagation private \
	sh -c "mount -t tmpfs tmpfs /dev/shm && hostname host-b && { $*; }; rc=\$?; ls -A /dev/shm > '$NETNS_LEFT_B'; exit \$rc"

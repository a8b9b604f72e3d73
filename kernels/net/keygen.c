/*
 * ipcnet-keygen DIR NAME: a CURVE key pair for host NAME of a topology whose
 * [graph] curve = DIR: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub
 * (public; copy it to the other hosts' DIR). Z85 text, 40 characters.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static int put(const char *dir, const char *name, const char *ext,
               const char *key, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, key, 40) != 40) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	char pub[41], sec[41];
	if (argc != 3) {
		fputs("usage: ipcnet-keygen DIR NAME\n", stderr);
		return 2;
	}
	if (zmq_curve_keypair(pub, sec)) {
		fprintf(stderr, "ipcnet-keygen: %s\n", zmq_strerror(zmq_errno()));
		return 1;
	}
	return put(argv[1], argv[2], "key", sec, 0600) ||
	       put(argv[1], argv[2], "pub", pub, 0644) ? 1 : 0;
}

/*
 * Sources: kernels with no input. Each returns 0 when it has sent everything
 * or as soon as ipc_stopping() says the graph is being stopped.
 */
#include "kx.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

IPC_KERNEL(seq_source, "", "out", "u64",
           "sends the 8-byte integers 0, 1, ..., n-1");
KX_EXPORT int seq_source(struct ipc_kernel *k, uint64_t n);

IPC_KERNEL(blob_source, "", "out", "u64,u64",
           "sends count records of size bytes; byte i of record j is (i+j) mod 256");
KX_EXPORT int blob_source(struct ipc_kernel *k, uint64_t count, uint64_t size);

IPC_KERNEL(file_lines, "", "out", "str",
           "sends each line of a file as a text record");
KX_EXPORT int file_lines(struct ipc_kernel *k, const char *path);

IPC_KERNEL(file_lines_repeat, "", "out", "str,u64",
           "sends each line of a file as a text record, reading it times times");
KX_EXPORT int file_lines_repeat(struct ipc_kernel *k, const char *path,
                                uint64_t times);

IPC_KERNEL(file_chunks, "", "out", "str,u64",
           "sends a file as records of size bytes (the last one may be shorter)");
KX_EXPORT int file_chunks(struct ipc_kernel *k, const char *path, uint64_t size);

IPC_KERNEL(stdin_lines, "", "out", "",
           "sends each line of standard input as a text record");
KX_EXPORT int stdin_lines(struct ipc_kernel *k);

int seq_source(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;

	if (!out)
		return 1;
	for (uint64_t i = 0; i < n && e == KX_DONE && !ipc_stopping(k); i++)
		e = kx__send_copy(k, out, &i, sizeof i, true);
	return kx__end(k, e);
}

int blob_source(struct ipc_kernel *k, uint64_t count, uint64_t size)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;

	if (!out)
		return 1;
	if (size == 0) {
		kx__errorf(k, "size must be at least 1");
		return 1;
	}
	for (uint64_t j = 0; j < count && e == KX_DONE && !ipc_stopping(k); j++) {
		unsigned char *rec = kx__alloc_src(k, out, size);

		if (!rec)
			return ipc_stopping(k) ? 0 : 1;
		for (uint64_t i = 0; i < size; i++)
			rec[i] = (unsigned char)(i + j);
		e = kx__send(k, out, rec);
	}
	return kx__end(k, e);
}

/* Splits what read() returns into lines; a last line without '\n' counts. */
struct line_reader {
	char *buf;
	size_t len, cap;
};

/* Send every complete line held in r (all of it when final). */
static enum kx_end lines_flush(struct ipc_kernel *k, struct ipc_port *out,
                               struct line_reader *r, bool final)
{
	size_t start = 0;
	enum kx_end e = KX_DONE;

	while (e == KX_DONE && start < r->len) {
		char *nl = memchr(r->buf + start, '\n', r->len - start);
		size_t end;

		if (nl)
			end = (size_t)(nl - r->buf);
		else if (final)
			end = r->len;
		else
			break;
		e = kx__send_text(k, out, r->buf + start, end - start, true);
		start = nl ? end + 1 : end;
	}
	memmove(r->buf, r->buf + start, r->len - start);
	r->len -= start;
	return e;
}

/* Wait until fd is readable, re-checking ipc_stopping every 100 ms, so that a
 * source blocked on a terminal or a pipe still stops on Ctrl-C. Returns
 * false when stopping. */
static bool wait_readable(struct ipc_kernel *k, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (!ipc_stopping(k)) {
		if (poll(&p, 1, 100) != 0)
			return true; /* readable, hung up, or an error read() will say */
	}
	return false;
}

/* Send the lines read from fd. */
static enum kx_end send_lines(struct ipc_kernel *k, struct ipc_port *out, int fd,
                              const char *what)
{
	struct line_reader r = {0};
	enum kx_end e = KX_DONE;

	for (;;) {
		ssize_t got;

		if (r.cap - r.len < 4096) {
			size_t cap = r.cap ? r.cap * 2 : 65536;
			char *p = realloc(r.buf, cap);

			if (!p) {
				kx__errorf(k, "out of memory reading %s", what);
				e = KX_FAILED;
				break;
			}
			r.buf = p;
			r.cap = cap;
		}
		if (!wait_readable(k, fd))
			break;
		got = read(fd, r.buf + r.len, r.cap - r.len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			kx__errorf(k, "cannot read %s: %s", what, strerror(errno));
			e = KX_FAILED;
			break;
		}
		r.len += (size_t)got;
		e = lines_flush(k, out, &r, got == 0);
		if (got == 0 || e != KX_DONE)
			break;
	}
	free(r.buf);
	return e;
}

static int open_file(struct ipc_kernel *k, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		kx__errorf(k, "cannot open '%s': %s", path, strerror(errno));
	return fd;
}

int file_lines_repeat(struct ipc_kernel *k, const char *path, uint64_t times)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;

	if (!out)
		return 1;
	for (uint64_t t = 0; t < times && e == KX_DONE && !ipc_stopping(k); t++) {
		int fd = open_file(k, path);

		if (fd < 0)
			return 1;
		e = send_lines(k, out, fd, path);
		close(fd);
	}
	return kx__end(k, e);
}

int file_lines(struct ipc_kernel *k, const char *path)
{
	return file_lines_repeat(k, path, 1);
}

int stdin_lines(struct ipc_kernel *k)
{
	struct ipc_port *out = kx__need_out(k, "out");

	if (!out)
		return 1;
	return kx__end(k, send_lines(k, out, STDIN_FILENO, "standard input"));
}

/* Fill a whole chunk unless the file ends first; returns bytes read or -1. */
static ssize_t read_full(int fd, unsigned char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t got = read(fd, p + done, n - done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		done += (size_t)got;
	}
	return (ssize_t)done;
}

int file_chunks(struct ipc_kernel *k, const char *path, uint64_t size)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;
	struct stat st;
	int fd;

	if (!out)
		return 1;
	if (size == 0) {
		kx__errorf(k, "chunk size must be at least 1");
		return 1;
	}
	fd = open_file(k, path);
	if (fd < 0)
		return 1;
	/* Read straight into the record: a chunk is never copied. The last
	 * record of a regular file is sized to what is left. */
	while (e == KX_DONE && !ipc_stopping(k)) {
		size_t want = (size_t)size;
		unsigned char *rec;
		ssize_t got;

		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			off_t pos = lseek(fd, 0, SEEK_CUR);

			if (pos >= st.st_size)
				break;
			if (pos >= 0 && (uint64_t)(st.st_size - pos) < size)
				want = (size_t)(st.st_size - pos);
		}
		rec = kx__alloc_src(k, out, want);
		if (!rec) {
			e = ipc_stopping(k) ? KX_DONE : KX_FAILED;
			break;
		}
		got = read_full(fd, rec, want);
		if (got <= 0) {
			ipc_release(out, rec);
			if (got < 0) {
				kx__errorf(k, "cannot read '%s': %s", path,
				           strerror(errno));
				e = KX_FAILED;
			}
			break;
		}
		if ((size_t)got < want) {
			/* The file shrank or is not regular: send what came, in
			 * a record of the right size. */
			e = kx__send_copy(k, out, rec, (size_t)got, true);
			ipc_release(out, rec);
			continue;
		}
		e = kx__send(k, out, rec);
	}
	close(fd);
	return kx__end(k, e);
}

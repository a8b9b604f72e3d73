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
#include <unistd.h>

IPC_KERNEL(seq_source, "", "out", "u64",
           "emits the 8-byte integers 0, 1, ..., n-1 as items");
KX_EXPORT int seq_source(struct ipc_kernel *k, uint64_t n);

IPC_KERNEL(blob_source, "", "out", "u64,u64",
           "emits count items of size bytes; byte i of item j is (i+j) mod 256");
KX_EXPORT int blob_source(struct ipc_kernel *k, uint64_t count, uint64_t size);

IPC_KERNEL(file_lines, "", "out", "str",
           "emits each line of a file as a text item");
KX_EXPORT int file_lines(struct ipc_kernel *k, const char *path);

IPC_KERNEL(file_lines_repeat, "", "out", "str,u64",
           "emits each line of a file as a text item, reading it times times");
KX_EXPORT int file_lines_repeat(struct ipc_kernel *k, const char *path,
                                uint64_t times);

IPC_KERNEL(file_chunks, "", "out", "str,u64",
           "emits a file as items of size bytes (the last one may be shorter)");
KX_EXPORT int file_chunks(struct ipc_kernel *k, const char *path, uint64_t size);

IPC_KERNEL(stdin_lines, "", "out", "",
           "emits each line of standard input as a text item");
KX_EXPORT int stdin_lines(struct ipc_kernel *k);

int seq_source(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;

	if (!out)
		return 1;
	uint64_t v[512]; /* made and emitted 512 at a time: 4 KiB, one batch */
	for (uint64_t i = 0; i < n && e == KX_DONE && !ipc_stopping(k);) {
		size_t m = n - i < 512 ? (size_t)(n - i) : 512;
		for (size_t j = 0; j < m; j++)
			v[j] = i + j;
		e = kx__emit_many(k, out, v, sizeof v[0], m);
		i += m;
	}
	return kx__end(k, e);
}

int blob_source(struct ipc_kernel *k, uint64_t count, uint64_t size)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;
	unsigned char *item;

	if (!out)
		return 1;
	if (size == 0 || size > IPC_ITEM_MAX) {
		kx__errorf(k, "size must be from 1 to %u", (unsigned)IPC_ITEM_MAX);
		return 1;
	}
	item = malloc((size_t)size);
	if (!item) {
		kx__errorf(k, "out of memory for an item of %llu bytes",
		           (unsigned long long)size);
		return 1;
	}
	for (uint64_t j = 0; j < count && e == KX_DONE && !ipc_stopping(k); j++) {
		for (uint64_t i = 0; i < size; i++)
			item[i] = (unsigned char)(i + j);
		e = kx__emit(k, out, item, (size_t)size);
	}
	free(item);
	return kx__end(k, e);
}

/* Lines out of what read() returns, in blocks of LINE_BLOCK bytes: each line
 * becomes a text item (its '\n' turned into the NUL, so it is emitted in
 * place); a last line without '\n' counts. */
#define LINE_BLOCK (256u << 10)

struct line_reader {
	char *buf;
	size_t len, cap;
	uint64_t line;  /* lines emitted */
};

static enum kx_end line_too_long(struct ipc_kernel *k, const char *what,
                                 uint64_t line)
{
	kx__errorf(k, "%s: line %llu is longer than %u bytes (the longest line a "
	           "line source takes): use file_chunks for data that is not "
	           "lines", what, (unsigned long long)line, KX_LINE_MAX);
	return KX_FAILED;
}

/* Emit every complete line held in r (all of it when final). */
static enum kx_end lines_flush(struct ipc_kernel *k, struct ipc_port *out,
                               struct line_reader *r, bool final,
                               const char *what)
{
	size_t start = 0;
	enum kx_end e = KX_DONE;

	while (e == KX_DONE && start < r->len) {
		char *nl = memchr(r->buf + start, '\n', r->len - start);
		size_t end;

		if (nl)
			end = (size_t)(nl - r->buf);
		else if (final)
			end = r->len; /* buf keeps a byte for this NUL */
		else
			break;
		if (end - start > KX_LINE_MAX)
			return line_too_long(k, what, r->line + 1);
		r->buf[end] = '\0';
		e = kx__emit(k, out, r->buf + start, end - start + 1);
		r->line++;
		start = end + 1;
	}
	if (start > r->len)
		start = r->len;
	if (r->len - start > KX_LINE_MAX)
		return line_too_long(k, what, r->line + 1);
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

/* Emit the lines read from fd. poll_first: wait with wait_readable (a pipe
 * or a terminal), else read straight away (a regular file). */
static enum kx_end send_lines(struct ipc_kernel *k, struct ipc_port *out, int fd,
                              const char *what, bool poll_first)
{
	struct line_reader r = {0};
	enum kx_end e = KX_DONE;

	r.cap = LINE_BLOCK + 1;
	r.buf = malloc(r.cap);
	if (!r.buf) {
		kx__errorf(k, "out of memory reading %s", what);
		return KX_FAILED;
	}
	for (;;) {
		ssize_t got;

		if (r.cap - r.len < LINE_BLOCK / 2 + 1) {
			/* a long line: room for it (lines_flush bounds it) */
			size_t cap = r.cap * 2;
			char *p = realloc(r.buf, cap);

			if (!p) {
				kx__errorf(k, "out of memory reading %s", what);
				e = KX_FAILED;
				break;
			}
			r.buf = p;
			r.cap = cap;
		}
		if (poll_first ? !wait_readable(k, fd) : ipc_stopping(k))
			break;
		/* keep one byte for the NUL of a last line without '\n' */
		got = read(fd, r.buf + r.len, r.cap - r.len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			kx__errorf(k, "cannot read %s: %s", what, strerror(errno));
			e = KX_FAILED;
			break;
		}
		r.len += (size_t)got;
		e = lines_flush(k, out, &r, got == 0, what);
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
		e = send_lines(k, out, fd, path, false);
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
	return kx__end(k, send_lines(k, out, STDIN_FILENO, "standard input",
	                            true));
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
	unsigned char *chunk;
	int fd;

	if (!out)
		return 1;
	if (size == 0 || size > IPC_ITEM_MAX) {
		kx__errorf(k, "chunk size must be from 1 to %u", (unsigned)IPC_ITEM_MAX);
		return 1;
	}
	chunk = malloc((size_t)size);
	if (!chunk) {
		kx__errorf(k, "out of memory for a chunk of %llu bytes",
		           (unsigned long long)size);
		return 1;
	}
	fd = open_file(k, path);
	if (fd < 0) {
		free(chunk);
		return 1;
	}
	/* Every chunk but the last is whole; the last holds what is left. */
	while (e == KX_DONE && !ipc_stopping(k)) {
		ssize_t got = read_full(fd, chunk, (size_t)size);

		if (got < 0) {
			kx__errorf(k, "cannot read '%s': %s", path, strerror(errno));
			e = KX_FAILED;
			break;
		}
		if (got == 0)
			break;
		e = kx__emit(k, out, chunk, (size_t)got);
		if ((size_t)got < size)
			break;
	}
	close(fd);
	free(chunk);
	return kx__end(k, e);
}

/*
 * libipc plumbing shared by the channel benchmarks: one fresh buffer per
 * measured run, and each side's end of it. Between threads the buffer is
 * opened once by the main thread and shared; between processes each child
 * opens it by handle after fork and closes it itself.
 */
#ifndef BENCH_IPC_H
#define BENCH_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/buffer.h>

struct bench_ipc_run {
	char handle[IPC_HANDLE_MAX + 1];
	size_t size;
	struct ipc_buffer *shared; /* threads only; NULL between processes */
};

/* A new handle, and between threads the open buffer. Exits on failure. */
void bench_ipc_run_begin(struct bench_ipc_run *r, size_t size, bool procs);
/* Close the shared buffer; report (and remove) anything left behind. */
void bench_ipc_run_end(struct bench_ipc_run *r);

struct bench_ipc_end {
	struct ipc_buffer *b;
	struct ipc_tls *t;
	bool own; /* b was opened by this end */
};

/* Attach this side (thread label side + 1). 0, or a negative errno after a
 * message on stderr. */
int bench_ipc_open(struct bench_ipc_end *e, const struct bench_ipc_run *r, int side);
void bench_ipc_close(struct bench_ipc_end *e);
/* Add channel id with the given wait mode and capacity (both sides pass the
 * same). 0, or a negative errno after a message. */
int bench_ipc_add(struct bench_ipc_end *e, uint64_t id, enum ipc_role role,
                  enum ipc_wait_mode wait, uint32_t capacity);
/* ipc_record_alloc, retrying (and counting) while the heap is exhausted;
 * NULL after a message on any other failure. */
void *bench_ipc_alloc(struct bench_ipc_end *e, size_t n, uint64_t id,
                      uint64_t *retries);

#endif /* BENCH_IPC_H */

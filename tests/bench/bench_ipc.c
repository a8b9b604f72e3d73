/* libipc plumbing for the channel benchmarks; see bench_ipc.h. */
#include "bench_ipc.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

void bench_ipc_run_begin(struct bench_ipc_run *r, size_t size, bool procs)
{
	int rc = ipc_buffer_gen_handle(r->handle, sizeof r->handle);
	if (rc) {
		fprintf(stderr, "bench: ipc_buffer_gen_handle: %s\n", ipc_strerror(rc));
		exit(1);
	}
	r->size = size;
	r->shared = NULL;
	if (!procs) {
		struct ipc_buffer_opts o = { .size = size };
		r->shared = ipc_buffer_open(r->handle, &o);
		if (!r->shared) {
			fprintf(stderr, "bench: ipc_buffer_open: %s\n", ipc_strerror(-errno));
			exit(1);
		}
	}
}

void bench_ipc_run_end(struct bench_ipc_run *r)
{
	if (r->shared) {
		struct ipc_buffer_stats st;
		if (ipc_buffer_stats(r->shared, &st) == 0 && st.record_count)
			fprintf(stderr, "bench: %llu records live after the run\n",
			        (unsigned long long)st.record_count);
		ipc_buffer_close(r->shared, false);
	}
	r->shared = NULL;
	if (ipc_buffer_gc(r->handle, IPC_SHM_DEFAULT) > 0)
		fprintf(stderr, "bench: buffer %s was left behind (removed now)\n",
		        r->handle);
}

int bench_ipc_open(struct bench_ipc_end *e, const struct bench_ipc_run *r, int side)
{
	e->own = r->shared == NULL;
	e->b = r->shared;
	if (e->own) {
		struct ipc_buffer_opts o = { .size = r->size };
		e->b = ipc_buffer_open(r->handle, &o);
		if (!e->b) {
			int err = -errno;
			fprintf(stderr, "bench: side %d: ipc_buffer_open: %s\n", side,
			        ipc_strerror(err));
			return err;
		}
	}
	e->t = ipc_tls_open(e->b, side + 1);
	if (!e->t) {
		int err = -errno;
		fprintf(stderr, "bench: side %d: ipc_tls_open: %s\n", side,
		        ipc_strerror(err));
		if (e->own)
			ipc_buffer_close(e->b, false);
		return err;
	}
	return 0;
}

void bench_ipc_close(struct bench_ipc_end *e)
{
	ipc_tls_close(e->t);
	if (e->own)
		ipc_buffer_close(e->b, false);
}

int bench_ipc_add(struct bench_ipc_end *e, uint64_t id, enum ipc_role role,
                  enum ipc_wait_mode wait, uint32_t capacity)
{
	struct ipc_channel_opts o = { .capacity = capacity, .wait = wait };
	int rc = ipc_channel_add_opts(e->t, id, role, &o);
	if (rc)
		fprintf(stderr, "bench: ipc_channel_add(%llu, %s): %s\n",
		        (unsigned long long)id,
		        role == IPC_PRODUCER ? "producer" : "consumer", ipc_strerror(rc));
	return rc;
}

void *bench_ipc_alloc(struct bench_ipc_end *e, size_t n, uint64_t id,
                      uint64_t *retries)
{
	for (unsigned tries = 0;; tries++) {
		void *p = ipc_record_alloc(e->t, n, id);
		if (p)
			return p;
		if (errno != ENOMEM || tries == 1000000) {
			fprintf(stderr, "bench: ipc_record_alloc(%zu): %s\n", n,
			        ipc_strerror(-errno));
			return NULL;
		}
		++*retries;
		sched_yield();
	}
}

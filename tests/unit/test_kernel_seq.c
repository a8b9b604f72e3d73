/*
 * Unit tests of the kernel API's ordered-replica ports (seq.h, kernel.c):
 * on a port marked seq the 16-byte sequence header is hidden from the
 * kernel, every output is stamped with the number of the input being
 * processed, each input's outputs end with a LAST mark (an EMPTY marker when
 * it gave none), what is sent after the input ended is a TAIL, and a record
 * without a header is refused. One thread plays the split and the merge with
 * the record API, another the replica with the kernel API. Threads only, so
 * the binary also runs under ThreadSanitizer.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_impl.h"
#include "seq.h"

#define FIX(state) ((struct tu_fix *)*(state))
#define CH_IN 1
#define CH_OUT 2

struct replica {
	struct ipc_buffer *b;
	struct ipc_kernel k;
	struct ipc_port port[2];
	int rc;
};

/* The replica's kernel: forwards x, drops 11 (mod 100), sends x + 1000 then
 * x for 12 (mod 100); at the end of its input, one record -1. */
static int replica_body(struct replica *r)
{
	struct ipc_port *in = &r->port[0], *out = &r->port[1];
	void *rec;
	size_t n;
	int rc;
	while ((rc = ipc_recv(in, &rec, &n)) == 0) {
		int64_t x;
		if (n != sizeof x || ((uintptr_t)rec & 15) != 0)
			return 10; /* the header leaked into the payload */
		memcpy(&x, rec, sizeof x);
		if (x % 100 == 11) {
			ipc_release(in, rec);
			continue;
		}
		if (x % 100 == 12) {
			int64_t *extra = ipc_alloc(out, sizeof *extra);
			if (!extra || ((uintptr_t)extra & 15) != 0)
				return 11;
			*extra = x + 1000;
			if (ipc_send(out, extra))
				return 12;
		}
		if (ipc_send(out, rec))
			return 13;
	}
	if (rc != IPC_TX_EOF)
		return 14;
	int64_t *tail = ipc_alloc(out, sizeof *tail);
	if (!tail)
		return 15;
	*tail = -1;
	if (ipc_send(out, tail))
		return 16;
	ipc__kernel_seq_flush(&r->k);
	return 0;
}

static void *replica_thread(void *arg)
{
	struct replica *r = arg;
	r->rc = replica_body(r);
	ipc_channel_close(r->k.tls, CH_IN);
	ipc_channel_close(r->k.tls, CH_OUT);
	return NULL;
}

static void replica_init(struct replica *r, struct ipc_buffer *b)
{
	memset(r, 0, sizeof *r);
	r->b = b;
	r->k.name = "replica";
	r->k.tls = ipc_tls_open(b, 2);
	assert_non_null(r->k.tls);
	r->k.port = r->port;
	r->k.nin = 1;
	r->k.nout = 1;
	r->port[0] = (struct ipc_port){.k = &r->k, .name = "in", .id = CH_IN,
	                               .capacity = 4, .seq = true};
	r->port[1] = (struct ipc_port){.k = &r->k, .name = "out", .id = CH_OUT,
	                               .out = true, .capacity = 4, .seq = true};
	struct ipc_channel_opts co = {.capacity = 4, .wait = IPC_WAIT_BLOCK};
	assert_int_equal(ipc_channel_add_opts(r->k.tls, CH_IN, IPC_CONSUMER, &co), 0);
	assert_int_equal(ipc_channel_add_opts(r->k.tls, CH_OUT, IPC_PRODUCER, &co), 0);
}

/* The split's side, in a thread of its own: inputs 0..count-1 carrying
 * x = their number, behind a header; then the end of the stream. */
struct split {
	struct ipc_tls *t;
	uint64_t count;
	int rc;
};

static void *split_thread(void *arg)
{
	struct split *sp = arg;
	for (uint64_t s = 0; s < sp->count && sp->rc == 0; s++) {
		int64_t x = (int64_t)s;
		char *m = ipc_record_alloc(sp->t, IPC__SEQ_HDR + sizeof x, CH_IN);
		if (!m) {
			sp->rc = -ENOMEM;
			break;
		}
		struct ipc__seq_hdr h = {s, 0, IPC__SEQ_MAGIC};
		memcpy(m, &h, sizeof h);
		memcpy(m + IPC__SEQ_HDR, &x, sizeof x);
		void *p = m;
		int rc;
		while ((rc = ipc_record_send_wait(sp->t, CH_IN, &p, 1000)) ==
		       IPC_TX_RETRY)
			;
		sp->rc = rc;
	}
	ipc_channel_close(sp->t, CH_IN);
	return NULL;
}

struct got {
	struct ipc__seq_hdr h;
	size_t n;   /* payload bytes */
	int64_t x;  /* payload, when 8 bytes */
};

/* The merge's side: the next record on CH_OUT; false at its end. */
static bool recv_numbered(struct ipc_tls *t, struct got *g)
{
	void *r = NULL;
	int rc;
	while ((rc = ipc_record_recv_wait(t, CH_OUT, &r, 1000)) == IPC_TX_RETRY)
		;
	if (rc == IPC_TX_EOF)
		return false;
	assert_int_equal(rc, 0);
	size_t n = ipc_record_size(r);
	assert_true(n >= IPC__SEQ_HDR);
	memcpy(&g->h, r, sizeof g->h);
	assert_int_equal(g->h.magic, IPC__SEQ_MAGIC);
	g->n = n - IPC__SEQ_HDR;
	g->x = 0;
	if (g->n == sizeof g->x)
		memcpy(&g->x, (char *)r + IPC__SEQ_HDR, sizeof g->x);
	ipc_record_free(t, r);
	return true;
}

/* What the replica must send for inputs 0..count-1 carrying x = seq. */
static void expect_stream(struct ipc_tls *t, uint64_t count)
{
	struct got g;
	for (uint64_t s = 0; s < count; s++) {
		int64_t x = (int64_t)s;
		if (x % 100 == 11) {
			assert_true(recv_numbered(t, &g));
			assert_int_equal(g.h.seq, s);
			assert_int_equal(g.h.flags, IPC__SEQ_LAST | IPC__SEQ_EMPTY);
			assert_int_equal(g.n, 0);
			continue;
		}
		if (x % 100 == 12) {
			assert_true(recv_numbered(t, &g));
			assert_int_equal(g.h.seq, s);
			assert_int_equal(g.h.flags, 0); /* not the last of input s */
			assert_int_equal(g.x, x + 1000);
		}
		assert_true(recv_numbered(t, &g));
		assert_int_equal(g.h.seq, s);
		assert_int_equal(g.h.flags, IPC__SEQ_LAST);
		assert_int_equal(g.x, x);
	}
	assert_true(recv_numbered(t, &g));
	assert_int_equal(g.h.flags, IPC__SEQ_TAIL);
	assert_int_equal(g.x, -1);
	assert_false(recv_numbered(t, &g));
}

/* Split, replica and merge, each a thread, over channels of capacity 4:
 * they must take turns, and the order must hold whatever the timing. */
static void run_stream(const char *h, uint64_t count)
{
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	assert_non_null(b);
	struct ipc_tls *ts = ipc_tls_open(b, 1), *tm = ipc_tls_open(b, 3);
	assert_non_null(ts);
	assert_non_null(tm);
	struct ipc_channel_opts co = {.capacity = 4, .wait = IPC_WAIT_BLOCK};
	assert_int_equal(ipc_channel_add_opts(ts, CH_IN, IPC_PRODUCER, &co), 0);
	assert_int_equal(ipc_channel_add_opts(tm, CH_OUT, IPC_CONSUMER, &co), 0);
	struct replica r;
	replica_init(&r, b);
	struct split sp = {ts, count, 0};
	pthread_t th_r, th_s;
	assert_int_equal(pthread_create(&th_r, NULL, replica_thread, &r), 0);
	assert_int_equal(pthread_create(&th_s, NULL, split_thread, &sp), 0);
	expect_stream(tm, count);
	assert_int_equal(pthread_join(th_s, NULL), 0);
	assert_int_equal(pthread_join(th_r, NULL), 0);
	assert_int_equal(sp.rc, 0);
	assert_int_equal(r.rc, 0);
	ipc_tls_close(r.k.tls);
	ipc_channel_close(tm, CH_OUT);
	ipc_tls_close(ts);
	ipc_tls_close(tm);
	assert_int_equal(ipc_buffer_close(b, true), 0);
	tu_assert_clean(h);
}

static void test_kernel_seq_marks_every_input(void **state)
{
	run_stream(FIX(state)->handle, 300);
}

static void test_kernel_seq_many_records_in_order(void **state)
{
	run_stream(FIX(state)->handle, 20000);
}

/* A record without a sequence header on a seq port: -EPROTO, not a
 * payload read at the wrong offset. */
static void test_kernel_seq_headerless_record_eproto(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 2u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	assert_non_null(t);
	struct ipc_channel_opts co = {.capacity = 4, .wait = IPC_WAIT_BLOCK};
	assert_int_equal(ipc_channel_add_opts(t, CH_IN, IPC_PRODUCER, &co), 0);
	assert_int_equal(ipc_channel_add_opts(t, CH_OUT, IPC_CONSUMER, &co), 0);
	struct replica r;
	replica_init(&r, b);
	uint64_t *m = ipc_record_alloc(t, sizeof *m, CH_IN);
	assert_non_null(m);
	*m = 42;
	assert_int_equal(ipc_record_send(t, CH_IN, (void **)&m), 0);
	void *rec = NULL;
	size_t n = 0;
	assert_int_equal(ipc_recv(&r.port[0], &rec, &n), -EPROTO);
	ipc_tls_close(r.k.tls);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, true), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_kernel_seq_marks_every_input),
		T(test_kernel_seq_many_records_in_order),
		T(test_kernel_seq_headerless_record_eproto),
	};

	tu_init(argc, argv);
	tu_watchdog(120);
	return cmocka_run_group_tests_name("kernel_seq", tests, NULL, NULL);
}

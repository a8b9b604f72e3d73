/*
 * Unit tests of SPSC channels with threads only (no fork, so the binary also
 * runs under ThreadSanitizer): ends and their errors, has-channel blocking
 * and not, listing, pending and has-producer, end-of-stream, early close,
 * destroyed channels giving records back, full and empty rings, and small
 * two-thread transfers in every wait mode. Processes: tests/stress/.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* to corrupt a channel's shared state on purpose */

#define FIX(state) ((struct tu_fix *)*(state))

static struct ipc_buffer *open_buf(const char *h, size_t size)
{
	struct ipc_buffer *b = tu_open(h, size);
	assert_non_null(b);
	return b;
}

static uint64_t recv_u64(struct ipc_tls *t, uint64_t id)
{
	uint64_t *r = NULL, v;

	assert_int_equal(ipc_record_recv(t, id, (void **)&r), 0);
	assert_non_null(r);
	assert_int_equal(ipc_record_size(r), sizeof(v));
	v = *r;
	ipc_record_free(t, r);
	return v;
}

static void test_channel_second_end_ebusy(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t1 = tu_tls(b, 1), *t2 = tu_tls(b, 2), *t3 = tu_tls(b, 3), *t4 = tu_tls(b, 4);

	assert_int_equal(ipc_channel_add(t1, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t2, 1, IPC_PRODUCER), -EBUSY);
	assert_int_equal(ipc_channel_add(t1, 1, IPC_PRODUCER), -EALREADY);
	assert_int_equal(ipc_channel_add(t3, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_channel_add(t4, 1, IPC_CONSUMER), -EBUSY);
	assert_int_equal(ipc_channel_add(t2, 1, IPC_CONSUMER), -EBUSY);
	/* a closed end stays taken: the stream it ended is not reopened */
	assert_int_equal(ipc_channel_close(t1, 1), 0);
	assert_int_equal(ipc_channel_add(t2, 1, IPC_PRODUCER), -EBUSY);
	/* bad arguments */
	assert_int_equal(ipc_channel_add(t1, 2, (enum ipc_role)0), -EINVAL);
	assert_int_equal(ipc_channel_add(t1, 2, (enum ipc_role)3), -EINVAL);
	assert_int_equal(ipc_channel_add(NULL, 2, IPC_PRODUCER), -EINVAL);
	ipc_tls_close(t1);
	ipc_tls_close(t2);
	ipc_tls_close(t3);
	ipc_tls_close(t4);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_unknown_id_enoent(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = tu_tls(b, 1), *t2 = tu_tls(b, 2);
	void *r = NULL;

	assert_int_equal(ipc_record_recv(t, 9, &r), -ENOENT);
	assert_int_equal(ipc_record_recv_wait(t, 9, &r, 10), -ENOENT);
	assert_int_equal(ipc_channel_close(t, 9), -ENOENT);
	assert_int_equal(ipc_channel_pending(t, 9), 0);
	assert_false(ipc_channel_has_producer(t, 9));
	/* a record sent on a channel this TLS does not produce on */
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t2, 2, IPC_PRODUCER), 0);
	r = ipc_record_alloc(t, 16, 1);
	assert_non_null(r);
	assert_int_equal(ipc_record_send(t, 2, &r), -ENOENT);
	assert_int_equal(ipc_record_send(t, 9, &r), -ENOENT);
	assert_int_equal(ipc_record_send_wait(t, 9, &r, 10), -ENOENT);
	assert_non_null(r); /* still ours */
	/* the consumer side of a channel cannot send */
	assert_int_equal(ipc_channel_add(t2, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_record_send(t2, 1, &r), -ENOENT);
	/* and the producer side cannot receive */
	{
		void *x = NULL;
		assert_int_equal(ipc_record_recv(t, 1, &x), -ENOENT);
	}
	ipc_record_free(t, r);
	ipc_tls_close(t);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_send_bad_record_einval(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = tu_tls(b, 1);
	char *priv = calloc(1, 256), *r;
	void *p;

	assert_non_null(priv);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	p = priv + 32;
	assert_int_equal(ipc_record_send(t, 1, &p), -EINVAL);
	p = NULL;
	assert_int_equal(ipc_record_send(t, 1, &p), -EINVAL);
	assert_int_equal(ipc_record_send(t, 1, NULL), -EINVAL);
	r = ipc_record_alloc(t, 64, 1);
	assert_non_null(r);
	p = r + 16; /* inside a record */
	assert_int_equal(ipc_record_send(t, 1, &p), -EINVAL);
	assert_int_equal(ipc_channel_pending(t, 1), 0);
	p = r;
	assert_int_equal(ipc_record_send(t, 1, &p), 0);
	assert_null(p);
	assert_int_equal(ipc_record_recv(t, 1, &p), 0);
	assert_ptr_equal(p, r);
	ipc_record_free(t, p);
	free(priv);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct creator {
	struct ipc_buffer *b;
	int go[2];
	uint64_t id;
	enum ipc_role role;
};

static void *late_creator(void *arg)
{
	struct creator *c = arg;
	struct ipc_tls *t = ipc_tls_open(c->b, 2);

	CHECK(t != NULL);
	CHECK_EQ(tu_await(c->go[0], 10000), 'g');
	CHECK_EQ(ipc_channel_add(t, c->id, c->role), 0);
	CHECK_EQ(tu_await(c->go[0], 10000), 'q');
	ipc_tls_close(t);
	return NULL;
}

static void test_channel_exists_blocking_and_not(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = tu_tls(b, 1);
	struct creator c = { .b = b, .id = 31, .role = IPC_CONSUMER };
	uint64_t t0, ms;
	pthread_t th;

	assert_false(ipc_channel_exists(t, 31, 0));
	assert_false(ipc_buffer_has_channels(b));
	/* a timeout that passes */
	t0 = tu_now_ns();
	assert_false(ipc_channel_exists(t, 31, 100));
	ms = (tu_now_ns() - t0) / 1000000;
	assert_true(ms >= 95 && ms < 2000);
	/* a channel created by another thread while we wait */
	tu_pipe(c.go);
	assert_int_equal(pthread_create(&th, NULL, late_creator, &c), 0);
	tu_notify(c.go[1], 'g');
	t0 = tu_now_ns();
	assert_true(ipc_channel_exists(t, 31, 10000));
	ms = (tu_now_ns() - t0) / 1000000;
	assert_true(ms < 5000);
	assert_true(ipc_channel_exists(t, 31, 0));
	assert_true(ipc_buffer_has_channels(b));
	/* also with "forever" */
	assert_true(ipc_channel_exists(t, 31, -1));
	assert_false(ipc_channel_exists(t, 32, 0));
	tu_notify(c.go[1], 'q');
	pthread_join(th, NULL);
	assert_false(tu_failed());
	/* the consumer-only channel stays until a producer comes and goes */
	assert_true(ipc_channel_exists(t, 31, 0));
	assert_int_equal(ipc_channel_add(t, 31, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_close(t, 31), 0);
	assert_false(ipc_channel_exists(t, 31, 0));
	assert_false(ipc_buffer_has_channels(b));
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static const struct ipc_channel_info *find_info(const struct ipc_channel_info *in,
                                                size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (in[i].id == id)
			return &in[i];
	return NULL;
}

static void test_channel_list_reports_every_channel(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 4u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	struct ipc_channel_opts o = { .capacity = 64 };
	struct ipc_channel_info info[8];
	const struct ipc_channel_info *i1, *i2, *i3, *i4;

	memset(info, 0xee, sizeof(info));
	assert_int_equal(ipc_channel_list(b, info, 8), 0);
	assert_int_equal(ipc_channel_add_opts(p, 1, IPC_PRODUCER, &o), 0);
	assert_int_equal(ipc_channel_add(c, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_channel_add(p, 2, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(c, 3, IPC_CONSUMER), 0);
	assert_int_equal(ipc_segment_add(p, 4, 5000, NULL, NULL), 0);
	for (uint64_t v = 0; v < 5; v++)
		tu_send_u64(p, 1, v);
	assert_int_equal(recv_u64(c, 1), 0);
	assert_int_equal(recv_u64(c, 1), 1);
	tu_send_u64(p, 2, 7);
	assert_int_equal(ipc_channel_close(p, 2), 0);
	assert_int_equal(ipc_channel_list(b, info, 8), 4);
	i1 = find_info(info, 4, 1);
	i2 = find_info(info, 4, 2);
	i3 = find_info(info, 4, 3);
	i4 = find_info(info, 4, 4);
	assert_non_null(i1);
	assert_non_null(i2);
	assert_non_null(i3);
	assert_non_null(i4);
	assert_int_equal(i1->type, IPC_CHANNEL_SPSC);
	assert_int_equal(i1->capacity, 64);
	assert_int_equal(i1->pending, 3);
	assert_int_equal(i1->sent, 5);
	assert_int_equal(i1->received, 2);
	assert_true(i1->producer && i1->consumer);
	assert_false(i1->closed || i1->aborted);
	assert_int_equal(i2->capacity, IPC_CHANNEL_CAPACITY_DEFAULT);
	assert_int_equal(i2->pending, 1);
	assert_false(i2->producer);
	assert_false(i2->consumer);
	assert_true(i2->closed);
	assert_false(i2->aborted);
	assert_false(i3->producer);
	assert_true(i3->consumer);
	assert_int_equal(i4->type, IPC_CHANNEL_SEGMENT);
	assert_int_equal(i4->size, 5000);
	/* a short array: the count is still the total, nothing written past */
	memset(info, 0xee, sizeof(info));
	assert_int_equal(ipc_channel_list(b, info, 2), 4);
	assert_int_equal(info[2].id, 0xeeeeeeeeeeeeeeeeull);
	assert_int_equal(ipc_channel_list(b, NULL, 0), 4);
	ipc_tls_close(p);
	ipc_tls_close(c);
	/* channel 2 never had a consumer and 3 never a producer: both stay,
	 * 2 with its record */
	assert_int_equal(ipc_channel_list(b, info, 8), 2);
	i2 = find_info(info, 2, 2);
	assert_non_null(i2);
	assert_int_equal(i2->pending, 1);
	assert_non_null(find_info(info, 2, 3));
	{
		struct ipc_tls *late = tu_tls(b, 3);
		assert_int_equal(ipc_channel_add(late, 2, IPC_CONSUMER), 0);
		assert_int_equal(recv_u64(late, 2), 7);
		assert_int_equal(ipc_channel_add(late, 3, IPC_PRODUCER), 0);
		ipc_tls_close(late);
	}
	assert_int_equal(ipc_channel_list(b, info, 8), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_has_producer_and_pending_track_state(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	void *r;

	assert_int_equal(ipc_channel_add(c, 5, IPC_CONSUMER), 0);
	assert_false(ipc_channel_has_producer(c, 5));
	assert_int_equal(ipc_channel_pending(c, 5), 0);
	assert_int_equal(ipc_record_recv(c, 5, &r), IPC_TX_RETRY);
	assert_int_equal(ipc_channel_add(p, 5, IPC_PRODUCER), 0);
	assert_true(ipc_channel_has_producer(c, 5));
	assert_true(ipc_channel_has_producer(p, 5));
	for (uint64_t v = 0; v < 3; v++)
		tu_send_u64(p, 5, v);
	assert_int_equal(ipc_channel_pending(c, 5), 3);
	assert_int_equal(ipc_channel_pending(p, 5), 3);
	assert_int_equal(recv_u64(c, 5), 0);
	assert_int_equal(ipc_channel_pending(c, 5), 2);
	assert_int_equal(ipc_channel_close(p, 5), 0);
	assert_false(ipc_channel_has_producer(c, 5));
	assert_int_equal(ipc_channel_pending(c, 5), 2);
	/* RaftLib/ipc's end test: no producer and nothing pending */
	{
		uint64_t expect = 1;
		while (ipc_channel_has_producer(c, 5) || ipc_channel_pending(c, 5) > 0)
			assert_int_equal(recv_u64(c, 5), expect++);
		assert_int_equal(expect, 3);
	}
	ipc_tls_close(p);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_eof_after_drain(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	void *r = (void *)&r;

	assert_int_equal(ipc_channel_add(p, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(c, 1, IPC_CONSUMER), 0);
	for (uint64_t v = 0; v < 100; v++)
		tu_send_u64(p, 1, v);
	assert_int_equal(ipc_channel_close(p, 1), 0);
	for (uint64_t v = 0; v < 100; v++)
		assert_int_equal(recv_u64(c, 1), v);
	assert_int_equal(ipc_record_recv(c, 1, &r), IPC_TX_EOF);
	assert_ptr_equal(r, (void *)&r); /* not written */
	assert_int_equal(ipc_record_recv(c, 1, &r), IPC_TX_EOF);
	{
		uint64_t t0 = tu_now_ns();
		assert_int_equal(ipc_record_recv_wait(c, 1, &r, -1), IPC_TX_EOF);
		assert_true(tu_now_ns() - t0 < 1000000000ull);
	}
	ipc_tls_close(p);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_early_close_before_consumer_nothing_lost(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 8u << 20);
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *p, *c;
	void *r;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	p = tu_tls(b, 1);
	assert_int_equal(ipc_channel_add(p, 8, IPC_PRODUCER), 0);
	for (uint64_t v = 0; v < 500; v++) {
		size_t n = 1 + (size_t)(v * 131) % 3000;
		r = ipc_record_alloc(p, n, 8);
		assert_non_null(r);
		tu_fill(r, n, v);
		assert_int_equal(ipc_record_send(p, 8, &r), 0);
	}
	ipc_tls_close(p); /* producer gone before any consumer */
	c = tu_tls(b, 2);
	assert_true(ipc_channel_exists(c, 8, 0));
	assert_int_equal(ipc_channel_add(c, 8, IPC_CONSUMER), 0);
	assert_false(ipc_channel_has_producer(c, 8));
	assert_int_equal(ipc_channel_pending(c, 8), 500);
	for (uint64_t v = 0; v < 500; v++) {
		size_t n = 1 + (size_t)(v * 131) % 3000;
		assert_int_equal(ipc_record_recv(c, 8, &r), 0);
		assert_int_equal(ipc_record_size(r), n);
		assert_true(tu_verify(r, n, v));
		ipc_record_free(c, r);
	}
	assert_int_equal(ipc_record_recv(c, 8, &r), IPC_TX_EOF);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_destroyed_records_back_to_heap(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 8u << 20);
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *p, *c;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	for (int order = 0; order < 2; order++) {
		p = tu_tls(b, 1);
		c = tu_tls(b, 2);
		assert_int_equal(ipc_channel_add(p, 4, IPC_PRODUCER), 0);
		assert_int_equal(ipc_channel_add(c, 4, IPC_CONSUMER), 0);
		for (uint64_t v = 0; v < 50; v++) {
			void *r = ipc_record_alloc(p, v % 2 ? 16 : 100000, 4);
			assert_non_null(r);
			assert_int_equal(ipc_record_send(p, 4, &r), 0);
		}
		for (uint64_t v = 0; v < 10; v++) {
			void *r;
			assert_int_equal(ipc_record_recv(c, 4, &r), 0);
			ipc_record_free(c, r);
		}
		/* 40 still queued when the last end closes */
		if (order == 0) {
			assert_int_equal(ipc_channel_close(c, 4), 0);
			assert_int_equal(ipc_channel_close(p, 4), 0);
		} else {
			assert_int_equal(ipc_channel_close(p, 4), 0);
			assert_int_equal(ipc_channel_close(c, 4), 0);
		}
		assert_false(ipc_channel_exists(p, 4, 0));
		ipc_tls_close(p);
		ipc_tls_close(c);
		assert_int_equal(ipc_buffer_stats(b, &s1), 0);
		assert_int_equal(s1.channels, 0);
		assert_int_equal(s1.record_count, 0);
		assert_int_equal(s1.records, 0);
		assert_int_equal(s1.free, s0.free);
	}
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_full_and_empty_retry(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	struct ipc_channel_opts o = { .capacity = 8 };
	uint64_t *extra, t0, ms;
	void *r;

	assert_int_equal(ipc_channel_add_opts(p, 1, IPC_PRODUCER, &o), 0);
	assert_int_equal(ipc_channel_add(c, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_record_recv(c, 1, &r), IPC_TX_RETRY);
	t0 = tu_now_ns();
	assert_int_equal(ipc_record_recv_wait(c, 1, &r, 50), IPC_TX_RETRY);
	ms = (tu_now_ns() - t0) / 1000000;
	assert_true(ms >= 45 && ms < 2000);
	for (uint64_t v = 0; v < 8; v++)
		tu_send_u64(p, 1, v);
	extra = ipc_record_alloc(p, 8, 1);
	assert_non_null(extra);
	*extra = 8;
	r = extra;
	assert_int_equal(ipc_record_send(p, 1, &r), IPC_TX_RETRY);
	assert_ptr_equal(r, extra); /* still ours */
	t0 = tu_now_ns();
	assert_int_equal(ipc_record_send_wait(p, 1, &r, 50), IPC_TX_RETRY);
	ms = (tu_now_ns() - t0) / 1000000;
	assert_true(ms >= 45 && ms < 2000);
	assert_int_equal(ipc_channel_pending(c, 1), 8);
	assert_int_equal(recv_u64(c, 1), 0);
	assert_int_equal(ipc_record_send(p, 1, &r), 0);
	for (uint64_t v = 1; v <= 8; v++)
		assert_int_equal(recv_u64(c, 1), v);
	ipc_tls_close(p);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_consumer_closed_send_epipe(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	void *r;

	assert_int_equal(ipc_channel_add(p, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(c, 1, IPC_CONSUMER), 0);
	tu_send_u64(p, 1, 1);
	assert_int_equal(ipc_channel_close(c, 1), 0);
	r = ipc_record_alloc(p, 8, 1);
	assert_non_null(r);
	assert_int_equal(ipc_record_send(p, 1, &r), -EPIPE);
	assert_int_equal(ipc_record_send_wait(p, 1, &r, 1000), -EPIPE);
	assert_non_null(r);
	ipc_record_free(p, r);
	ipc_tls_close(p);
	ipc_tls_close(c);
	{
		struct ipc_buffer_stats s;
		assert_int_equal(ipc_buffer_stats(b, &s), 0);
		assert_int_equal(s.channels, 0);
		assert_int_equal(s.record_count, 0);
	}
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- two threads ---------------------------------------------------------- */

struct xfer {
	struct ipc_buffer *b;
	uint64_t id, count;
	enum ipc_wait_mode mode;
	uint32_t capacity;
	int ready[2];
	uint64_t wake_ns;
};

static void *xfer_consumer(void *arg)
{
	struct xfer *x = arg;
	struct ipc_tls *t = ipc_tls_open(x->b, 2);
	struct ipc_channel_opts o = { .capacity = x->capacity, .wait = x->mode };
	uint64_t expect = 0;
	int rc;

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add_opts(t, x->id, IPC_CONSUMER, &o), 0);
	tu_notify(x->ready[1], 'c');
	for (;;) {
		uint64_t *r = NULL;
		rc = ipc_record_recv_wait(t, x->id, (void **)&r, 10000);
		if (rc != 0)
			break;
		if (expect == 0)
			x->wake_ns = tu_now_ns();
		CHECK_EQ(*r, expect);
		expect++;
		ipc_record_free(t, r);
	}
	CHECK_EQ(rc, IPC_TX_EOF);
	CHECK_EQ(expect, x->count);
	ipc_tls_close(t);
	return NULL;
}

static void run_xfer(const char *h, enum ipc_wait_mode mode, uint32_t cap, uint64_t count)
{
	struct ipc_buffer *b = open_buf(h, 4u << 20);
	struct xfer x = { .b = b, .id = 77, .count = count, .mode = mode, .capacity = cap };
	struct ipc_channel_opts o = { .capacity = cap, .wait = mode };
	struct ipc_tls *p = tu_tls(b, 1);
	struct ipc_buffer_stats s;
	pthread_t th;

	tu_pipe(x.ready);
	assert_int_equal(pthread_create(&th, NULL, xfer_consumer, &x), 0);
	assert_int_equal(tu_await(x.ready[0], 10000), 'c');
	assert_int_equal(ipc_channel_add_opts(p, 77, IPC_PRODUCER, &o), 0);
	for (uint64_t v = 0; v < count; v++) {
		uint64_t *r = ipc_record_alloc(p, sizeof(*r), 77);
		assert_non_null(r);
		*r = v;
		assert_int_equal(ipc_record_send_wait(p, 77, (void **)&r, 10000), 0);
	}
	assert_int_equal(ipc_channel_close(p, 77), 0);
	pthread_join(th, NULL);
	assert_false(tu_failed());
	ipc_tls_close(p);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.channels, 0);
	assert_int_equal(s.record_count, 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_two_threads_in_order_every_mode(void **state)
{
	const char *h = FIX(state)->handle;
	const enum ipc_wait_mode modes[] = { IPC_WAIT_HYBRID, IPC_WAIT_SPIN, IPC_WAIT_BLOCK };
	uint64_t n = tu_arg("channel_records", TU_SANITIZED ? 20000 : 100000);

	for (int m = 0; m < 3; m++) {
		run_xfer(h, modes[m], 4, n / 4);   /* tiny ring: full and empty often */
		run_xfer(h, modes[m], 0, n);       /* default capacity */
	}
}

static void test_channel_recv_wait_woken_by_send(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct xfer x = { .b = b, .id = 5, .count = 1, .mode = IPC_WAIT_BLOCK };
	struct ipc_tls *p = tu_tls(b, 1);
	uint64_t *r, sent;
	pthread_t th;

	tu_pipe(x.ready);
	assert_int_equal(pthread_create(&th, NULL, xfer_consumer, &x), 0);
	assert_int_equal(tu_await(x.ready[0], 10000), 'c');
	assert_int_equal(ipc_channel_add(p, 5, IPC_PRODUCER), 0);
	r = ipc_record_alloc(p, 8, 5);
	assert_non_null(r);
	*r = 0;
	sent = tu_now_ns();
	assert_int_equal(ipc_record_send(p, 5, (void **)&r), 0);
	assert_int_equal(ipc_channel_close(p, 5), 0);
	pthread_join(th, NULL);
	assert_false(tu_failed());
	/* woken by the send, not by a timeout slice: well under a second */
	assert_true(x.wake_ns >= sent);
	fprintf(stderr, "# blocked receiver woke %.3f ms after the send\n",
	        (double)(x.wake_ns - sent) / 1e6);
	assert_true(x.wake_ns - sent < 1000000000ull);
	ipc_tls_close(p);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_channel_many_until_full_then_all_freed(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 1u << 20);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_channel_opts o = { .capacity = 16 };
	struct ipc_buffer_stats s0, s1;
	uint64_t n = 0;
	int rc;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	while ((rc = ipc_channel_add_opts(t, n + 1, IPC_PRODUCER, &o)) == 0)
		n++;
	assert_true(rc == -ENOMEM || rc == -ENOSPC);
	assert_true(n >= 100);
	assert_int_equal(ipc_channel_list(b, NULL, 0), n);
	for (uint64_t i = 1; i <= n; i++)
		assert_int_equal(ipc_channel_add(t, i, IPC_CONSUMER), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	fprintf(stderr, "# %llu channels fit in 1 MiB\n", (unsigned long long)n);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static struct ipc__chan *chan_of(struct ipc_buffer *b, uint64_t id)
{
	struct ipc__dirent *d;
	struct ipc__chan *c = NULL;

	assert_int_equal(ipc__lock_buf(b), 0);
	d = ipc__dir_find_locked(b, id);
	if (d)
		c = ipc__ptr(b, d->off, sizeof(*c));
	ipc__unlock_buf(b);
	assert_non_null(c);
	return c;
}

/* Offsets and indices read from shared memory are checked before use: a
 * corrupt slot or tail is an error, never a wild pointer. */
static void test_channel_corrupt_offsets_rejected(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	const uint64_t bad[] = { 0, 8, UINT64_MAX - 7, (uint64_t)1 << 40 };
	struct ipc__chan *ch;
	void *r;

	assert_int_equal(ipc_channel_add(p, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(c, 1, IPC_CONSUMER), 0);
	ch = chan_of(b, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t head = atomic_load(&ch->idx.head);
		tu_send_u64(p, 1, i);
		atomic_store(&ch->ring[head & ch->mask], bad[i]);
		assert_true(ipc_record_recv(c, 1, &r) < 0);
	}
	/* a slot pointing into the middle of a live record */
	{
		uint64_t head = atomic_load(&ch->idx.head);
		char *live = ipc_record_alloc(p, 256, 1);
		assert_non_null(live);
		tu_send_u64(p, 1, 99);
		atomic_store(&ch->ring[head & ch->mask], ipc__off(b, live + 64));
		assert_true(ipc_record_recv(c, 1, &r) < 0);
		assert_int_equal(ipc_record_size(live), 256);
		ipc_record_free(p, live);
	}
	/* a tail further ahead than the ring holds */
	atomic_store(&ch->idx.tail, atomic_load(&ch->idx.head) + ch->mask + 5);
	r = &r;
	assert_int_not_equal(ipc_record_recv(c, 1, &r), IPC_TX_SUCCESS);
	assert_ptr_equal(r, &r); /* nothing handed out */
	ipc_tls_close(p);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A producer that aborts: what it sent is received, then IPC_TX_ABORTED
 * (not EOF); only a producer end can be aborted. */
static void test_channel_abort_drains_then_aborted(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *p = tu_tls(b, 1), *c = tu_tls(b, 2);
	struct ipc_buffer_stats s0, s1;
	void *r;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	assert_int_equal(ipc_channel_add(p, 3, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(c, 3, IPC_CONSUMER), 0);
	assert_int_equal(ipc_channel_abort(c, 3), -ENOENT);
	for (uint64_t i = 0; i < 3; i++)
		tu_send_u64(p, 3, i);
	assert_int_equal(ipc_channel_abort(p, 3), 0);
	assert_int_equal(ipc_channel_abort(p, 3), -ENOENT);
	assert_false(ipc_channel_has_producer(c, 3));
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(ipc_record_recv_wait(c, 3, &r, 1000), IPC_TX_SUCCESS);
		assert_int_equal(*(uint64_t *)r, i);
		ipc_record_free(c, r);
	}
	assert_int_equal(ipc_record_recv_wait(c, 3, &r, 1000), IPC_TX_ABORTED);
	assert_int_equal(ipc_record_recv(c, 3, &r), IPC_TX_ABORTED);
	assert_int_equal(ipc_channel_close(c, 3), 0);
	ipc_tls_close(p);
	ipc_tls_close(c);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_channel_second_end_ebusy),
		T(test_channel_unknown_id_enoent),
		T(test_channel_send_bad_record_einval),
		T(test_channel_exists_blocking_and_not),
		T(test_channel_list_reports_every_channel),
		T(test_channel_has_producer_and_pending_track_state),
		T(test_channel_eof_after_drain),
		T(test_channel_early_close_before_consumer_nothing_lost),
		T(test_channel_destroyed_records_back_to_heap),
		T(test_channel_full_and_empty_retry),
		T(test_channel_consumer_closed_send_epipe),
		T(test_channel_two_threads_in_order_every_mode),
		T(test_channel_recv_wait_woken_by_send),
		T(test_channel_many_until_full_then_all_freed),
		T(test_channel_corrupt_offsets_rejected),
		T(test_channel_abort_drains_then_aborted),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}

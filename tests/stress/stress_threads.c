/*
 * Stress with threads of one process (no fork: also run under
 * ThreadSanitizer). Arguments (name=value): seed, records (2^20), eof_records,
 * two_records (per channel), alloc_ms, threads.
 *
 *  - two threads pass 2^20 four-byte records in order, ending on IPC_TX_EOF
 *  - end-of-stream by "no producer and nothing pending" (RaftLib/ipc's test)
 *  - one producer thread on two channels, a consumer thread per channel
 *  - 4 threads allocate, fill, check and free random sizes, passing some
 *    records to each other to be freed remotely; free bytes end at start
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))

static uint64_t g_records, g_eof_records, g_two_records, g_alloc_ms;

struct ctx {
	struct ipc_buffer *b;
	uint64_t id, count;
	int ready[2];
	bool raftlib_end; /* stop on "no producer and nothing pending" */
};

static void *consumer(void *arg)
{
	struct ctx *x = arg;
	struct ipc_tls *t = ipc_tls_open(x->b, 2);
	uint32_t expect = 0;

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, x->id, IPC_CONSUMER), 0);
	tu_notify(x->ready[1], 'c');
	if (x->raftlib_end) {
		bool ok;
		/* the producer attaches first; then drain until it is gone and
		 * nothing is left */
		TU_POLL(ok, ipc_channel_has_producer(t, x->id) ||
		            ipc_channel_pending(t, x->id) > 0, 10000);
		CHECK(ok);
		while (ipc_channel_has_producer(t, x->id) ||
		       ipc_channel_pending(t, x->id) > 0) {
			uint32_t *r;
			int rc = ipc_record_recv_wait(t, x->id, (void **)&r, 10);
			if (rc == IPC_TX_RETRY)
				continue;
			if (rc == IPC_TX_EOF)
				break; /* producer closed between the checks */
			CHECK_EQ(rc, 0);
			CHECK_EQ(*r, expect);
			expect++;
			ipc_record_free(t, r);
		}
	} else {
		for (;;) {
			uint32_t *r;
			int rc = ipc_record_recv_wait(t, x->id, (void **)&r, 10000);
			if (rc == IPC_TX_EOF)
				break;
			CHECK_EQ(rc, 0);
			CHECK_EQ(ipc_record_size(r), 4);
			CHECK_EQ(*r, expect);
			expect++;
			ipc_record_free(t, r);
		}
	}
	CHECK_EQ(expect, x->count);
	ipc_tls_close(t);
	return NULL;
}

static void produce(struct ipc_tls *t, uint64_t id, uint64_t count)
{
	for (uint64_t v = 0; v < count; v++) {
		uint32_t *r = ipc_record_alloc(t, 4, id);
		CHECK(r != NULL);
		*r = (uint32_t)v;
		CHECK_EQ(ipc_record_send_wait(t, id, (void **)&r, 10000), 0);
	}
}

static void end_state(struct ipc_buffer *b, const struct ipc_buffer_stats *s0)
{
	struct ipc_buffer_stats s;

	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.channels, 0);
	assert_int_equal(s.record_count, 0);
	assert_int_equal(s.records, 0);
	assert_int_equal(s.slab, 0);
	assert_int_equal(s.free, s0->free);
}

static void run_pair(const char *h, uint64_t count, bool raftlib_end)
{
	struct ipc_buffer *b = tu_open(h, 16u << 20);
	struct ctx x = { .b = b, .id = 1, .count = count, .raftlib_end = raftlib_end };
	struct ipc_buffer_stats s0;
	struct ipc_tls *p;
	uint64_t t0;
	pthread_t th;

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	tu_pipe(x.ready);
	assert_int_equal(pthread_create(&th, NULL, consumer, &x), 0);
	assert_int_equal(tu_await(x.ready[0], 10000), 'c');
	p = ipc_tls_open(b, 1);
	assert_non_null(p);
	t0 = tu_now_ns();
	assert_int_equal(ipc_channel_add(p, 1, IPC_PRODUCER), 0);
	produce(p, 1, count);
	assert_int_equal(ipc_channel_close(p, 1), 0);
	pthread_join(th, NULL);
	fprintf(stderr, "# %llu records between two threads: %.3f s\n",
	        (unsigned long long)count, (double)(tu_now_ns() - t0) / 1e9);
	assert_false(tu_failed());
	ipc_tls_close(p);
	end_state(b, &s0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(x.ready[0]);
	close(x.ready[1]);
	tu_assert_clean(h);
}

static void test_threads_2p20_records_in_order(void **state)
{
	run_pair(FIX(state)->handle, g_records, false);
}

static void test_threads_no_producer_nothing_pending_ends(void **state)
{
	run_pair(FIX(state)->handle, g_eof_records, true);
}

static void test_threads_one_producer_two_channels(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 16u << 20);
	struct ctx x[2] = { { .b = b, .id = 10, .count = g_two_records },
	                    { .b = b, .id = 11, .count = g_two_records } };
	struct ipc_buffer_stats s0;
	struct ipc_tls *p;
	pthread_t th[2];

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	for (int i = 0; i < 2; i++) {
		tu_pipe(x[i].ready);
		assert_int_equal(pthread_create(&th[i], NULL, consumer, &x[i]), 0);
		assert_int_equal(tu_await(x[i].ready[0], 10000), 'c');
	}
	p = ipc_tls_open(b, 1);
	assert_non_null(p);
	assert_int_equal(ipc_channel_add(p, 10, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(p, 11, IPC_PRODUCER), 0);
	for (uint64_t v = 0; v < g_two_records; v++) {
		for (uint64_t id = 10; id <= 11; id++) {
			uint32_t *r = ipc_record_alloc(p, 4, id);
			assert_non_null(r);
			*r = (uint32_t)v;
			assert_int_equal(ipc_record_send_wait(p, id, (void **)&r, 10000), 0);
		}
	}
	assert_int_equal(ipc_channel_close(p, 10), 0);
	assert_int_equal(ipc_channel_close(p, 11), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		close(x[i].ready[0]);
		close(x[i].ready[1]);
	}
	assert_false(tu_failed());
	ipc_tls_close(p);
	end_state(b, &s0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- allocation storm ----------------------------------------------------- */

#define NTHREADS 4
#define POOL 64

struct storm {
	struct ipc_buffer *b;
	uint64_t seed;
	uint64_t end_ns;
	int idx;
	uint64_t ops, remote;
};

/* Header written into every storm record: who made it and its tag. */
struct tag {
	uint64_t tag;
	uint64_t len;
};

static void *stormer(void *arg)
{
	struct storm *s = arg;
	struct ipc_tls *t = ipc_tls_open(s->b, s->idx);
	uint64_t rng = s->seed, next_tag = (uint64_t)s->idx << 48;
	void *pool[POOL] = { 0 };
	uint64_t out = 100 + (uint64_t)s->idx; /* idx 1..N; in: the previous one's */
	uint64_t in = 100 + (uint64_t)((s->idx + NTHREADS - 2) % NTHREADS) + 1;
	bool in_done = false;

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, out, IPC_PRODUCER), 0);
	CHECK_EQ(ipc_channel_add(t, in, IPC_CONSUMER), 0);
	while (tu_now_ns() < s->end_ns) {
		int k = (int)tu_rand_range(&rng, 0, POOL - 1);
		uint64_t r = tu_rand_range(&rng, 0, 99);
		void *rec;

		if (pool[k] != NULL) {
			struct tag *g = pool[k];
			CHECK(tu_verify(g + 1, g->len, g->tag));
			CHECK_EQ(ipc_record_size(g), sizeof(*g) + g->len);
			if (r < 30) { /* hand it to the next thread */
				if (ipc_record_send(t, out, &pool[k]) != 0)
					ipc_record_free(t, pool[k]);
				s->remote++;
			} else {
				ipc_record_free(t, pool[k]);
			}
			pool[k] = NULL;
		} else {
			uint64_t len = r < 70 ? tu_rand_range(&rng, 0, 200)
			             : r < 97 ? tu_rand_range(&rng, 201, 20000)
			                      : tu_rand_range(&rng, 20001, 300000);
			struct tag *g = ipc_record_alloc(t, sizeof(*g) + len, out);
			CHECK_MSG(g != NULL, "alloc %llu: %s", (unsigned long long)len,
			          strerror(errno));
			g->tag = next_tag++;
			g->len = len;
			tu_fill(g + 1, len, g->tag);
			pool[k] = g;
		}
		while (ipc_record_recv(t, in, &rec) == 0) {
			struct tag *g = rec;
			CHECK(tu_verify(g + 1, g->len, g->tag));
			ipc_record_free(t, rec);
		}
		s->ops++;
	}
	for (int k = 0; k < POOL; k++)
		ipc_record_free(t, pool[k]);
	CHECK_EQ(ipc_channel_close(t, out), 0);
	while (!in_done) {
		void *rec;
		int rc = ipc_record_recv_wait(t, in, &rec, 10000);
		if (rc == IPC_TX_EOF) {
			in_done = true;
		} else {
			CHECK_EQ(rc, 0);
			CHECK(tu_verify((struct tag *)rec + 1, ((struct tag *)rec)->len,
			                ((struct tag *)rec)->tag));
			ipc_record_free(t, rec);
		}
	}
	ipc_tls_close(t);
	return NULL;
}

static void test_threads_alloc_storm_free_back_to_start(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 64u << 20);
	struct storm st[NTHREADS];
	struct ipc_buffer_stats s0;
	pthread_t th[NTHREADS];
	uint64_t ops = 0, remote = 0;

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	for (int i = 0; i < NTHREADS; i++) {
		st[i] = (struct storm){ .b = b, .seed = tu_seed() + (uint64_t)i * 7919,
		                        .end_ns = tu_now_ns() + g_alloc_ms * 1000000ull,
		                        .idx = i + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, stormer, &st[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ops += st[i].ops;
		remote += st[i].remote;
	}
	fprintf(stderr, "# %d threads: %llu operations, %llu records freed by "
	        "another thread\n", NTHREADS, (unsigned long long)ops,
	        (unsigned long long)remote);
	assert_false(tu_failed());
	end_state(b, &s0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_threads_2p20_records_in_order),
		T(test_threads_no_producer_nothing_pending_ends),
		T(test_threads_one_producer_two_channels),
		T(test_threads_alloc_storm_free_back_to_start),
	};

	tu_init(argc, argv);
	g_records = tu_arg("records", 1u << 20);
	g_eof_records = tu_arg("eof_records", 1u << 16);
	g_two_records = tu_arg("two_records", TU_SANITIZED ? 1u << 17 : 1u << 18);
	g_alloc_ms = tu_arg("alloc_ms", TU_SANITIZED ? 1000 : 2000);
	tu_watchdog(300);
	return cmocka_run_group_tests_name("stress_threads", tests, NULL, NULL);
}

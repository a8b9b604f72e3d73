/*
 * Unit tests of named static shared segments, with threads only (no fork,
 * so the binary also runs under ThreadSanitizer; the cross-process cases
 * are in tests/stress/stress_pingpong.c and stress_death.c).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX(state) ((struct tu_fix *)*(state))

struct init_arg {
	atomic_int calls;
	pthread_t caller;
	size_t n;
};

/* Writes a pattern, then a done word last: an opener that could see the
 * segment before init returned would find done == 0 or a partial pattern.
 * The last word is left as a counter for the users. */
static void init_pattern(void *seg, void *arg)
{
	struct init_arg *a = arg;
	uint64_t *w = seg;
	size_t words = a->n / 8;

	atomic_fetch_add(&a->calls, 1);
	a->caller = pthread_self();
	for (size_t i = 1; i + 1 < words; i++)
		w[i] = i * 0x9e3779b97f4a7c15ull;
	w[words - 1] = 0;
	w[0] = 1;
}

static void check_pattern(const void *seg, size_t n)
{
	const uint64_t *w = seg;

	CHECK_EQ(w[0], 1);
	for (size_t i = 1; i + 1 < n / 8; i++)
		CHECK(w[i] == i * 0x9e3779b97f4a7c15ull);
}

static struct ipc_buffer *open_buf(const char *h, size_t size)
{
	struct ipc_buffer *b = tu_open(h, size);
	assert_non_null(b);
	return b;
}

static void test_segment_init_runs_once_in_creator(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 4u << 20);
	struct init_arg a = { .n = 8192 };
	struct ipc_tls *t1 = ipc_tls_open(b, 1), *t2 = ipc_tls_open(b, 2);
	void *p1, *p2;

	assert_non_null(t1);
	assert_non_null(t2);
	assert_int_equal(ipc_segment_add(t1, 10, a.n, init_pattern, &a), 0);
	assert_int_equal(atomic_load(&a.calls), 1);
	assert_true(pthread_equal(a.caller, pthread_self()));
	assert_int_equal(ipc_segment_open(t1, 10, &p1), 0);
	check_pattern(p1, a.n);
	assert_int_equal(ipc_segment_size(t1, 10), a.n);
	/* adding an existing segment attaches: no second init */
	assert_int_equal(ipc_segment_add(t2, 10, a.n, init_pattern, &a), 0);
	assert_int_equal(atomic_load(&a.calls), 1);
	assert_int_equal(ipc_segment_open(t2, 10, &p2), 0);
	assert_ptr_equal(p1, p2);
	((uint64_t *)p2)[5] = 42;
	assert_int_equal(((uint64_t *)p1)[5], 42);
	assert_int_equal(ipc_segment_add(t1, 10, a.n, NULL, NULL), -EALREADY);
	ipc_tls_close(t1);
	ipc_tls_close(t2);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define RACERS 8

struct race {
	struct ipc_buffer *b;
	struct init_arg a;
	pthread_barrier_t bar;
	uint64_t id;
};

static void *racer(void *arg)
{
	struct race *r = arg;
	struct ipc_tls *t = ipc_tls_open(r->b, 1);
	void *p;

	CHECK(t != NULL);
	pthread_barrier_wait(&r->bar);
	CHECK_EQ(ipc_segment_add(t, r->id, r->a.n, init_pattern, &r->a), 0);
	CHECK_EQ(ipc_segment_open(t, r->id, &p), 0);
	check_pattern(p, r->a.n); /* init finished before we got in */
	atomic_fetch_add((atomic_ullong *)((char *)p + r->a.n - 8), 1);
	pthread_barrier_wait(&r->bar);
	CHECK_EQ(atomic_load((atomic_ullong *)((char *)p + r->a.n - 8)), RACERS);
	pthread_barrier_wait(&r->bar);
	ipc_tls_close(t);
	return NULL;
}

static void test_segment_concurrent_add_init_once(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 8u << 20);
	struct ipc_buffer_stats s0, s1;
	int rounds = (int)tu_arg("segment_rounds", 20);

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	for (int round = 0; round < rounds; round++) {
		struct race r = { .b = b, .id = 1000 + (uint64_t)round };
		pthread_t th[RACERS];

		r.a.n = 256u << 10;
		pthread_barrier_init(&r.bar, NULL, RACERS);
		for (int i = 0; i < RACERS; i++)
			assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
		for (int i = 0; i < RACERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&r.bar);
		assert_false(tu_failed());
		assert_int_equal(atomic_load(&r.a.calls), 1);
		/* every user closed: freed */
		assert_int_equal(ipc_buffer_stats(b, &s1), 0);
		assert_int_equal(s1.channels, 0);
		assert_int_equal(s1.free, s0.free);
	}
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_segment_zeroed_without_init(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	struct ipc_buffer_stats s;
	size_t n, big;
	unsigned char *p;
	void *rec;

	assert_non_null(t);
	/* dirty most of the heap first, so the segment reuses dirty blocks */
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	big = s.size / 4;
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	for (int i = 0; i < 3; i++) {
		void *r[3];
		for (int k = 0; k < 3; k++) {
			r[k] = ipc_record_alloc(t, big, 1);
			assert_non_null(r[k]);
			memset(r[k], 0xff, big);
		}
		for (int k = 0; k < 3; k++)
			ipc_record_free(t, r[k]);
	}
	rec = ipc_record_alloc(t, 100, 1);
	assert_non_null(rec);
	n = s.size / 2;
	assert_int_equal(ipc_segment_add(t, 2, n, NULL, NULL), 0);
	assert_int_equal(ipc_segment_open(t, 2, (void **)&p), 0);
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("segment byte %zu is %u, not 0", i, p[i]);
	ipc_record_free(t, rec);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_segment_id_used_as_channel_eprototype(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = ipc_tls_open(b, 1), *t2 = ipc_tls_open(b, 2);
	void *p;

	assert_non_null(t);
	assert_non_null(t2);
	/* segment, then channel */
	assert_int_equal(ipc_segment_add(t, 5, 64, NULL, NULL), 0);
	assert_int_equal(ipc_channel_add(t2, 5, IPC_PRODUCER), -EPROTOTYPE);
	assert_int_equal(ipc_channel_add(t2, 5, IPC_CONSUMER), -EPROTOTYPE);
	assert_int_equal(ipc_channel_add(t, 5, IPC_CONSUMER), -EPROTOTYPE);
	/* channel, then segment */
	assert_int_equal(ipc_channel_add(t, 6, IPC_PRODUCER), 0);
	assert_int_equal(ipc_segment_add(t2, 6, 64, NULL, NULL), -EPROTOTYPE);
	assert_int_equal(ipc_segment_open(t2, 6, &p), -EPROTOTYPE);
	assert_int_equal(ipc_segment_add(t, 6, 64, NULL, NULL), -EPROTOTYPE);
	/* a record on a segment id is not a channel of ours */
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 5));
	assert_int_equal(errno, ENOENT);
	ipc_tls_close(t);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_segment_larger_n_einval(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = ipc_tls_open(b, 1), *t2 = ipc_tls_open(b, 2);
	struct ipc_buffer_stats s;
	void *p;

	assert_non_null(t);
	assert_non_null(t2);
	assert_int_equal(ipc_segment_add(t, 7, 100, NULL, NULL), 0);
	assert_int_equal(ipc_segment_add(t2, 7, 101, NULL, NULL), -EINVAL);
	assert_int_equal(ipc_segment_add(t2, 7, 50, NULL, NULL), 0); /* smaller: fine */
	assert_int_equal(ipc_segment_size(t2, 7), 100);
	/* bad arguments */
	assert_int_equal(ipc_segment_add(t, 8, 0, NULL, NULL), -EINVAL);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(ipc_segment_add(t, 8, s.size + 1, NULL, NULL), -ENOMEM);
	assert_int_equal(ipc_segment_add(NULL, 8, 10, NULL, NULL), -EINVAL);
	assert_int_equal(ipc_segment_open(t, 8, &p), -ENOENT);
	assert_int_equal(ipc_segment_open(t, 7, NULL), -EINVAL);
	assert_int_equal(ipc_segment_size(t, 8), 0);
	ipc_tls_close(t);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_segment_freed_when_last_user_closes(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 4u << 20);
	struct ipc_tls *t1 = ipc_tls_open(b, 1), *t2 = ipc_tls_open(b, 2);
	struct ipc_buffer_stats s0, s1;
	uint32_t *p1, *p2;

	assert_non_null(t1);
	assert_non_null(t2);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	assert_int_equal(ipc_segment_add(t1, 3, 1u << 20, NULL, NULL), 0);
	assert_int_equal(ipc_segment_open(t1, 3, (void **)&p1), 0);
	assert_int_equal(ipc_segment_open(t2, 3, (void **)&p2), 0);
	p1[1000] = 0xabcdef;
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 1);
	assert_true(s0.free - s1.free >= (1u << 20));
	/* the creator leaves first: the segment stays for the other user */
	assert_int_equal(ipc_channel_close(t1, 3), 0);
	assert_true(ipc_channel_exists(t2, 3, 0));
	assert_int_equal(p2[1000], 0xabcdef);
	assert_int_equal(ipc_channel_close(t1, 3), -ENOENT);
	/* the last user leaves: freed */
	assert_int_equal(ipc_channel_close(t2, 3), 0);
	assert_false(ipc_channel_exists(t2, 3, 0));
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	/* the id can be used again, fresh and zeroed */
	assert_int_equal(ipc_segment_add(t2, 3, 1u << 20, NULL, NULL), 0);
	assert_int_equal(ipc_segment_open(t2, 3, (void **)&p2), 0);
	assert_int_equal(p2[1000], 0);
	ipc_tls_close(t2); /* a TLS close releases its segments too */
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	ipc_tls_close(t1);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_segment_listed_with_size(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	struct ipc_channel_info info[4];

	assert_non_null(t);
	assert_int_equal(ipc_segment_add(t, 77, 1234, NULL, NULL), 0);
	assert_int_equal(ipc_channel_list(b, info, 4), 1);
	assert_int_equal(info[0].id, 77);
	assert_int_equal(info[0].type, IPC_CHANNEL_SEGMENT);
	assert_int_equal(info[0].size, 1234);
	assert_true(ipc_buffer_has_channels(b));
	ipc_tls_close(t);
	assert_int_equal(ipc_channel_list(b, info, 4), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct waiter {
	struct ipc_buffer *b;
	int ready[2];
	bool found;
	uint64_t waited_ns;
};

static void *segment_waiter(void *arg)
{
	struct waiter *w = arg;
	struct ipc_tls *t = ipc_tls_open(w->b, 2);
	uint64_t t0;
	void *p;

	CHECK(t != NULL);
	tu_notify(w->ready[1], 'w');
	t0 = tu_now_ns();
	w->found = ipc_channel_exists(t, 55, 10000);
	w->waited_ns = tu_now_ns() - t0;
	if (w->found) {
		CHECK_EQ(ipc_segment_open(t, 55, &p), 0);
		CHECK_EQ(((uint64_t *)p)[0], 1);
	}
	ipc_tls_close(t);
	return NULL;
}

static void test_segment_late_creation_wakes_waiter(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h, 2u << 20);
	struct waiter w = { .b = b };
	struct init_arg a = { .n = 4096 };
	struct ipc_tls *t = ipc_tls_open(b, 1);
	pthread_t th;

	assert_non_null(t);
	tu_pipe(w.ready);
	assert_int_equal(pthread_create(&th, NULL, segment_waiter, &w), 0);
	assert_int_equal(tu_await(w.ready[0], 5000), 'w');
	assert_int_equal(ipc_segment_add(t, 55, a.n, init_pattern, &a), 0);
	pthread_join(th, NULL);
	assert_false(tu_failed());
	assert_true(w.found);
	assert_true(w.waited_ns < 5000000000ull);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_segment_init_runs_once_in_creator),
		T(test_segment_concurrent_add_init_once),
		T(test_segment_zeroed_without_init),
		T(test_segment_id_used_as_channel_eprototype),
		T(test_segment_larger_n_einval),
		T(test_segment_freed_when_last_user_closes),
		T(test_segment_listed_with_size),
		T(test_segment_late_creation_wakes_waiter),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}

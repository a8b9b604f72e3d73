/*
 * Unit tests of records: allocation rules, sizes from 1 byte to a quarter of
 * the buffer, the per-record overhead, double and foreign frees, and stats
 * that come back exactly to their start value.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX(state) ((struct tu_fix *)*(state))

static void stats(struct ipc_buffer *b, struct ipc_buffer_stats *s)
{
	assert_int_equal(ipc_buffer_stats(b, s), 0);
	assert_true(s->free <= s->size);
	assert_true(s->slab <= s->size - s->free);
}

static void test_record_alloc_without_producer_enoent(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct ipc_tls *t;

	assert_non_null(b);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 42));
	assert_int_equal(errno, ENOENT);
	/* a consumer end is not enough */
	assert_int_equal(ipc_channel_add(t, 42, IPC_CONSUMER), 0);
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 42));
	assert_int_equal(errno, ENOENT);
	/* another channel's producer end is not either */
	assert_int_equal(ipc_channel_add(t, 43, IPC_PRODUCER), 0);
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 42));
	assert_int_equal(errno, ENOENT);
	/* nor a closed one */
	assert_int_equal(ipc_channel_close(t, 43), 0);
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 43));
	assert_int_equal(errno, ENOENT);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_bad_size_einval(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *t;

	assert_non_null(b);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	stats(b, &s0);
	errno = 0;
	assert_null(ipc_record_alloc(t, 0, 1));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ipc_record_alloc(t, s0.size / 4 + 1, 1));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ipc_record_alloc(t, SIZE_MAX, 1));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(ipc_record_alloc(NULL, 8, 1));
	assert_int_equal(errno, EINVAL);
	stats(b, &s1);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(s1.record_count, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_sizes_1b_to_quarter_exact(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 16u << 20);
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *t;
	size_t sizes[200], n = 0;

	assert_non_null(b);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 7, IPC_PRODUCER), 0);
	stats(b, &s0);
	for (size_t k = 1; k <= 16; k++)
		sizes[n++] = k;
	for (size_t p = 32; p <= (1u << 20); p <<= 1) {
		sizes[n++] = p - 1;
		sizes[n++] = p;
		sizes[n++] = p + 1;
	}
	sizes[n++] = 680u << 10;     /* RaftLib/ipc's real cap */
	sizes[n++] = s0.size / 4 - 1;
	sizes[n++] = s0.size / 4;    /* the largest allowed */
	for (size_t i = 0; i < n; i++) {
		unsigned char *r = ipc_record_alloc(t, sizes[i], 7);

		assert_non_null(r);
		assert_int_equal((uintptr_t)r % 16, 0);
		assert_int_equal(ipc_record_size(r), sizes[i]);
		tu_fill(r, sizes[i], i);
		assert_true(tu_verify(r, sizes[i], i));
		stats(b, &s1);
		assert_int_equal(s1.records, sizes[i]);
		assert_int_equal(s1.record_count, 1);
		assert_int_equal(ipc_record_release(t, r), 0);
	}
	stats(b, &s1);
	assert_int_equal(s1.records, 0);
	assert_int_equal(s1.record_count, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_live_records_never_overlap(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 32u << 20);
	uint64_t rng = tu_seed();
	enum { N = 3000 };
	static void *recs[N];
	static size_t lens[N];
	struct ipc_buffer_stats s0, s1;
	uint64_t bytes = 0;
	struct ipc_tls *t;

	assert_non_null(b);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 2, IPC_PRODUCER), 0);
	stats(b, &s0);
	for (int i = 0; i < N; i++) {
		/* mostly small, some up to 64 KiB: slab and direct records */
		lens[i] = tu_rand_range(&rng, 0, 9) < 8 ? tu_rand_range(&rng, 1, 300)
		                                        : tu_rand_range(&rng, 301, 65536);
		recs[i] = ipc_record_alloc(t, lens[i], 1 + (uint64_t)(i % 2));
		assert_non_null(recs[i]);
		tu_fill(recs[i], lens[i], (uint64_t)i);
		bytes += lens[i];
	}
	stats(b, &s1);
	assert_int_equal(s1.records, bytes);
	assert_int_equal(s1.record_count, N);
	for (int i = 0; i < N; i++) {
		assert_true(tu_verify(recs[i], lens[i], (uint64_t)i));
		assert_int_equal(ipc_record_size(recs[i]), lens[i]);
	}
	/* free every other one, refill the holes, check everything again */
	for (int i = 0; i < N; i += 2)
		assert_int_equal(ipc_record_release(t, recs[i]), 0);
	for (int i = 0; i < N; i += 2) {
		recs[i] = ipc_record_alloc(t, lens[i], 1);
		assert_non_null(recs[i]);
		tu_fill(recs[i], lens[i], (uint64_t)i + N);
	}
	for (int i = 0; i < N; i++)
		assert_true(tu_verify(recs[i], lens[i], (uint64_t)i + (i % 2 ? 0 : N)));
	for (int i = 0; i < N; i++)
		assert_int_equal(ipc_record_release(t, recs[i]), 0);
	stats(b, &s1);
	assert_int_equal(s1.records, 0);
	assert_int_equal(s1.record_count, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_small_overhead_at_most_32_bytes(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 64u << 20);
	const size_t n = (size_t)tu_arg("small_records", 400000);
	struct ipc_buffer_stats s0, s1, s2;
	struct ipc_tls *t;
	void **recs = calloc(n, sizeof(*recs));
	double used, overhead;

	assert_non_null(b);
	assert_non_null(recs);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	stats(b, &s0);
	for (size_t i = 0; i < n; i++) {
		recs[i] = ipc_record_alloc(t, 4, 1);
		assert_non_null(recs[i]);
		memcpy(recs[i], &i, 4);
	}
	stats(b, &s1);
	assert_int_equal(s1.record_count, n);
	assert_int_equal(s1.records, 4 * n);
	used = (double)(s0.free - s1.free) / (double)n;
	overhead = used - 4.0;
	fprintf(stderr, "# %zu records of 4 B: %.2f heap bytes each, %.2f B overhead\n",
	        n, used, overhead);
	assert_true(overhead <= 32.0);
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, recs[i], 4);
		assert_int_equal(v, (uint32_t)i);
		ipc_record_free(t, recs[i]);
	}
	ipc_tls_close(t);
	stats(b, &s2);
	assert_int_equal(s2.record_count, 0);
	assert_int_equal(s2.slab, 0);
	free(recs);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_double_free_detected(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 8u << 20);
	struct ipc_buffer_stats s0, s1;
	const size_t sizes[] = { 8, 1000, 300000 }; /* slab and direct */
	struct ipc_tls *t;

	assert_non_null(b);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	for (size_t i = 0; i < 3; i++) {
		void *keep = ipc_record_alloc(t, sizes[i], 1);
		char *r = ipc_record_alloc(t, sizes[i], 1);

		assert_non_null(keep);
		assert_non_null(r);
		tu_fill(keep, sizes[i], 99);
		assert_int_equal(ipc_record_release(t, r), 0);
		assert_int_equal(ipc_record_size(r), 0);
		stats(b, &s0);
		assert_int_equal(ipc_record_release(t, r), -EINVAL);
		ipc_record_free(t, r); /* reported on stderr, ignored */
		stats(b, &s1);
		assert_int_equal(s1.free, s0.free);
		assert_int_equal(s1.record_count, s0.record_count);
		assert_int_equal(s1.records, s0.records);
		/* the neighbour is untouched and still frees once */
		assert_true(tu_verify(keep, sizes[i], 99));
		assert_int_equal(ipc_record_size(keep), sizes[i]);
		assert_int_equal(ipc_record_release(t, keep), 0);
		assert_int_equal(ipc_record_release(t, keep), -EINVAL);
	}
	stats(b, &s1);
	assert_int_equal(s1.record_count, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_foreign_pointer_rejected(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct ipc_buffer_stats s0, s1;
	unsigned char *heap = calloc(1, 4096);
	struct ipc_tls *t;
	char *r;

	assert_non_null(b);
	assert_non_null(heap);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	r = ipc_record_alloc(t, 256, 1);
	assert_non_null(r);
	stats(b, &s0);
	/* not records: private memory, the middle of a record, NULL */
	assert_int_equal(ipc_record_size(heap + 64), 0);
	assert_int_equal(ipc_record_release(t, heap + 64), -EINVAL);
	assert_int_equal(ipc_record_release(t, r + 16), -EINVAL);
	assert_int_equal(ipc_record_release(t, r + 1), -EINVAL);
	assert_int_equal(ipc_record_size(NULL), 0);
	ipc_record_free(t, NULL);
	stats(b, &s1);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(s1.record_count, 1);
	assert_int_equal(ipc_record_size(r), 256);
	assert_int_equal(ipc_record_release(t, r), 0);
	free(heap);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct other {
	struct ipc_buffer *b;
	void **recs;
	size_t n;
	uint64_t id;
};

static void *other_alloc(void *arg)
{
	struct other *o = arg;
	struct ipc_tls *t = ipc_tls_open(o->b, 2);

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, o->id, IPC_PRODUCER), 0);
	for (size_t i = 0; i < o->n; i++) {
		size_t len = 1 + (i * 37) % 5000;
		o->recs[i] = ipc_record_alloc(t, len, o->id);
		CHECK(o->recs[i] != NULL);
		tu_fill(o->recs[i], len, i);
	}
	/* closing the TLS leaves its records valid */
	ipc_tls_close(t);
	return NULL;
}

static void test_record_stats_return_to_start_many_channels(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 16u << 20);
	struct ipc_buffer_stats s0, s1;
	uint64_t rng = tu_seed() ^ 77;
	enum { PER = 500, CH = 4 };
	static void *recs[CH][PER];
	static void *theirs[2000];
	struct other o = { .b = b, .recs = theirs, .n = 2000, .id = 100 };
	struct ipc_tls *t, *tc;
	pthread_t th;

	assert_non_null(b);
	stats(b, &s0);
	assert_int_equal(s0.slab, 0);
	for (int round = 0; round < 3; round++) {
		t = ipc_tls_open(b, 1);
		assert_non_null(t);
		tc = ipc_tls_open(b, 3);
		assert_non_null(tc);
		for (uint64_t c = 0; c < CH; c++) {
			assert_int_equal(ipc_channel_add(t, c + 1, IPC_PRODUCER), 0);
			assert_int_equal(ipc_channel_add(tc, c + 1, IPC_CONSUMER), 0);
		}
		for (int i = 0; i < PER; i++)
			for (uint64_t c = 0; c < CH; c++) {
				size_t len = tu_rand_range(&rng, 1, c == 3 ? 20000 : 2000);
				recs[c][i] = ipc_record_alloc(t, len, c + 1);
				assert_non_null(recs[c][i]);
				memset(recs[c][i], (int)c, len);
			}
		/* another thread allocates; we free its records */
		assert_int_equal(ipc_channel_add(tc, 100, IPC_CONSUMER), 0);
		assert_int_equal(pthread_create(&th, NULL, other_alloc, &o), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_false(tu_failed());
		stats(b, &s1);
		assert_true(s1.free < s0.free);
		assert_int_equal(s1.record_count, CH * PER + 2000);
		for (size_t i = 0; i < 2000; i++) {
			assert_true(tu_verify(theirs[i], 1 + (i * 37) % 5000, i));
			ipc_record_free(t, theirs[i]);
		}
		/* free half, close the channels, free the rest after */
		for (int i = 0; i < PER / 2; i++)
			for (int c = 0; c < CH; c++)
				ipc_record_free(t, recs[c][i]);
		assert_int_equal(ipc_channel_close(tc, 100), 0);
		for (uint64_t c = 0; c < CH; c++) {
			assert_int_equal(ipc_channel_close(t, c + 1), 0);
			assert_int_equal(ipc_channel_close(tc, c + 1), 0);
		}
		for (int i = PER / 2; i < PER; i++)
			for (int c = 0; c < CH; c++) {
				assert_int_equal(((unsigned char *)recs[c][i])[0], c);
				ipc_record_free(tc, recs[c][i]);
			}
		ipc_tls_close(t);
		ipc_tls_close(tc);
		stats(b, &s1);
		assert_int_equal(s1.channels, 0);
		assert_int_equal(s1.records, 0);
		assert_int_equal(s1.record_count, 0);
		assert_int_equal(s1.slab, 0);
		assert_int_equal(s1.free, s0.free);
	}
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_record_exhaustion_enomem_then_recovers(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	const size_t sizes[] = { 60000, 4000, 100, 1 };
	enum { MAX = 1 << 17 };
	void **recs = calloc(MAX, sizeof(*recs));
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *t;
	size_t n = 0;

	assert_non_null(b);
	assert_non_null(recs);
	stats(b, &s0);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	/* big records until none fits, then smaller ones into the holes */
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		void *r;
		while ((r = ipc_record_alloc(t, sizes[k], 1)) != NULL) {
			assert_true(n < MAX);
			memset(r, 0x5a, sizes[k]);
			recs[n++] = r;
		}
		assert_int_equal(errno, ENOMEM);
	}
	assert_true(n > 60);
	stats(b, &s1);
	assert_true(s1.free < 64 * 1024);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ipc_record_release(t, recs[i]), 0);
	/* usable again, up to the largest record */
	recs[0] = ipc_record_alloc(t, s0.size / 4, 1);
	assert_non_null(recs[0]);
	ipc_record_free(t, recs[0]);
	ipc_tls_close(t); /* both ends closed: the channel goes */
	stats(b, &s1);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(s1.record_count, 0);
	free(recs);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* Records of size n, allocated until the buffer is exhausted: how much of
 * it they fill. Counted as footprints (the 16-byte header and the payload
 * rounded up to 16 bytes: what the API's alignment costs anyway), over the
 * buffer's size; the payload alone is printed too. */
static double fill_ratio(struct ipc_buffer *b, uint64_t id, size_t n)
{
	struct ipc_buffer_stats s0, s1;
	size_t cap = 1u << 16, count = 0;
	void **recs = malloc(cap * sizeof(*recs));
	struct ipc_tls *t = ipc_tls_open(b, 1);

	assert_non_null(recs);
	assert_non_null(t);
	stats(b, &s0);
	/* both ends, so that closing the TLS destroys the channel */
	assert_int_equal(ipc_channel_add(t, id, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, id, IPC_CONSUMER), 0);
	for (;;) {
		void *r = ipc_record_alloc(t, n, id);
		if (!r) {
			assert_int_equal(errno, ENOMEM);
			break;
		}
		if (count == cap) {
			recs = realloc(recs, (cap *= 2) * sizeof(*recs));
			assert_non_null(recs);
		}
		recs[count++] = r;
	}
	double foot = (double)count * (16 + ((n + 15) & ~(size_t)15)) / (double)s0.size;
	fprintf(stderr, "# %zu B: %zu records, %.1f %% (payload %.1f %%)\n", n, count,
	        100 * foot, 100.0 * (double)count * (double)n / (double)s0.size);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(ipc_record_release(t, recs[i]), 0);
	free(recs);
	/* every slab and the channel back to the heap: the next size starts
	 * from scratch */
	ipc_tls_close(t);
	stats(b, &s1);
	assert_int_equal(s1.free, s0.free);
	return foot;
}

/* Every size from 64 B to a quarter of the buffer, around each power of
 * two, fills at least 85 % of a 4 MiB and of a 64 MiB buffer. 1 MiB
 * records used to fill 50 % (one 257-block run per 512-block leaf). */
static void test_record_fill_every_size_at_least_85_percent(void **state)
{
	const char *h = FIX(state)->handle;
	const size_t bufs[2] = {4u << 20, 64u << 20};

	for (int k = 0; k < 2; k++) {
		struct ipc_buffer *b = tu_open(h, bufs[k]);
		size_t quarter = bufs[k] / 4;
		uint64_t id = 0;
		assert_non_null(b);
		/* the small sizes in the small buffer only: the same slabs */
		for (size_t p = k ? 256u << 10 : 64; p <= quarter; p <<= 1) {
			size_t sizes[4] = {p - 17, p - 16, p, p + 1};
			for (int i = 0; i < 4; i++) {
				if (sizes[i] < 64 || sizes[i] > quarter)
					continue;
				double f = fill_ratio(b, ++id, sizes[i]);
				if (f < 0.85)
					fail_msg("%zu B records fill %.1f %% of a %zu MiB buffer",
					         sizes[i], 100 * f, bufs[k] >> 20);
			}
		}
		assert_int_equal(ipc_buffer_close(b, false), 0);
	}
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_record_fill_every_size_at_least_85_percent),
		T(test_record_alloc_without_producer_enoent),
		T(test_record_bad_size_einval),
		T(test_record_sizes_1b_to_quarter_exact),
		T(test_record_live_records_never_overlap),
		T(test_record_small_overhead_at_most_32_bytes),
		T(test_record_double_free_detected),
		T(test_record_foreign_pointer_rejected),
		T(test_record_stats_return_to_start_many_channels),
		T(test_record_exhaustion_enomem_then_recovers),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}

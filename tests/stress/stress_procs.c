/*
 * Stress between processes (fork). Arguments (name=value): seed, records
 * (2^20), eof_records, two_records (per channel), big_records.
 *
 *  - a producer process and a consumer process pass 2^20 four-byte records
 *    in order, ending on IPC_TX_EOF
 *  - end-of-stream by "no producer and nothing pending"
 *  - one producer process on two channels, a consumer process running a
 *    thread per channel
 *  - random record sizes from 1 byte to 1 MiB with content checks
 * The parent creates the buffer and checks that free bytes, records and
 * channels come back to their start values and nothing is left behind.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))

static uint64_t g_records, g_eof_records, g_two_records, g_big_records;

struct job {
	const char *handle;
	uint64_t ids[2];
	int nids;
	uint64_t count;
	bool raftlib_end;
	bool big;           /* random sizes 1 B .. 1 MiB with content */
	uint64_t seed;
	int ready[2];       /* consumer -> parent: attached */
};

/* Size of record v of a big run: log-uniform over 1 B .. 1 MiB. */
static size_t big_size(uint64_t seed, uint64_t v)
{
	uint64_t s = seed ^ (v * 0x9e3779b97f4a7c15ull);
	uint64_t bits = tu_rand_range(&s, 0, 20);
	uint64_t lo = bits == 0 ? 1 : 1ull << (bits - 1);
	uint64_t hi = 1ull << bits;

	return (size_t)tu_rand_range(&s, lo, hi);
}

static int producer_main(void *arg)
{
	struct job *j = arg;
	struct ipc_buffer *b = tu_open(j->handle, 0);
	struct ipc_tls *t;

	CHECK(b != NULL);
	t = ipc_tls_open(b, 1);
	CHECK(t != NULL);
	for (int i = 0; i < j->nids; i++)
		CHECK_EQ(ipc_channel_add(t, j->ids[i], IPC_PRODUCER), 0);
	for (uint64_t v = 0; v < j->count; v++) {
		for (int i = 0; i < j->nids; i++) {
			size_t n = j->big ? big_size(j->seed, v) : 4;
			void *r;
			/* a big run may find the heap full for a moment */
			while ((r = ipc_record_alloc(t, n, j->ids[i])) == NULL) {
				CHECK_EQ(errno, ENOMEM);
				tu_pause();
			}
			if (j->big)
				tu_fill(r, n, v);
			else
				*(uint32_t *)r = (uint32_t)v;
			CHECK_EQ(ipc_record_send_wait(t, j->ids[i], &r, 10000), 0);
		}
	}
	for (int i = 0; i < j->nids; i++)
		CHECK_EQ(ipc_channel_close(t, j->ids[i]), 0);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

struct drain {
	struct ipc_buffer *b;
	const struct job *j;
	uint64_t id;
	int ready_fd;
};

static void *drain_one(void *arg)
{
	struct drain *d = arg;
	const struct job *j = d->j;
	struct ipc_tls *t = ipc_tls_open(d->b, 2);
	uint64_t expect = 0;
	bool ok;

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, d->id, IPC_CONSUMER), 0);
	tu_notify(d->ready_fd, 'c');
	if (j->raftlib_end) {
		TU_POLL(ok, ipc_channel_has_producer(t, d->id) ||
		            ipc_channel_pending(t, d->id) > 0, 10000);
		CHECK(ok);
	}
	for (;;) {
		void *r;
		int rc;

		if (j->raftlib_end && !ipc_channel_has_producer(t, d->id) &&
		    ipc_channel_pending(t, d->id) == 0)
			break;
		rc = ipc_record_recv_wait(t, d->id, &r, j->raftlib_end ? 10 : 10000);
		if (rc == IPC_TX_EOF)
			break;
		if (j->raftlib_end && rc == IPC_TX_RETRY)
			continue;
		CHECK_EQ(rc, 0);
		if (j->big) {
			size_t n = big_size(j->seed, expect);
			CHECK_EQ(ipc_record_size(r), n);
			CHECK_MSG(tu_verify(r, n, expect), "record %llu of %zu bytes differs",
			          (unsigned long long)expect, n);
		} else {
			CHECK_EQ(ipc_record_size(r), 4);
			CHECK_EQ(*(uint32_t *)r, (uint32_t)expect);
		}
		expect++;
		ipc_record_free(t, r);
	}
	CHECK_EQ(expect, j->count);
	ipc_tls_close(t);
	return NULL;
}

static int consumer_main(void *arg)
{
	struct job *j = arg;
	struct ipc_buffer *b = tu_open(j->handle, 0);
	struct drain d[2];
	pthread_t th[2];

	CHECK(b != NULL);
	for (int i = 0; i < j->nids; i++) {
		d[i] = (struct drain){ .b = b, .j = j, .id = j->ids[i],
		                       .ready_fd = j->ready[1] };
		CHECK_EQ(pthread_create(&th[i], NULL, drain_one, &d[i]), 0);
	}
	for (int i = 0; i < j->nids; i++)
		pthread_join(th[i], NULL);
	CHECK(!tu_failed());
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void run(const char *h, struct job *j, size_t size)
{
	struct ipc_buffer *b = tu_open(h, size);
	struct ipc_buffer_stats s0, s1;
	pid_t pc, pp;
	uint64_t t0;

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	j->handle = h;
	tu_pipe(j->ready);
	pc = tu_spawn(consumer_main, j);
	for (int i = 0; i < j->nids; i++)
		assert_int_equal(tu_await(j->ready[0], 10000), 'c');
	t0 = tu_now_ns();
	pp = tu_spawn(producer_main, j);
	tu_wait_ok(pp, 60000);
	tu_wait_ok(pc, 60000);
	fprintf(stderr, "# %llu x %d records between two processes: %.3f s\n",
	        (unsigned long long)j->count, j->nids, (double)(tu_now_ns() - t0) / 1e9);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.processes, 1);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.slab, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(j->ready[0]);
	close(j->ready[1]);
	tu_assert_clean(h);
}

static void test_procs_2p20_records_in_order(void **state)
{
	struct job j = { .ids = { 1 }, .nids = 1, .count = g_records };
	run(FIX(state)->handle, &j, 16u << 20);
}

static void test_procs_no_producer_nothing_pending_ends(void **state)
{
	struct job j = { .ids = { 2 }, .nids = 1, .count = g_eof_records,
	                 .raftlib_end = true };
	run(FIX(state)->handle, &j, 16u << 20);
}

static void test_procs_one_producer_two_channels_thread_each(void **state)
{
	struct job j = { .ids = { 3, 4 }, .nids = 2, .count = g_two_records };
	run(FIX(state)->handle, &j, 16u << 20);
}

static void test_procs_random_sizes_1b_to_1mib_content(void **state)
{
	struct job j = { .ids = { 5 }, .nids = 1, .count = g_big_records,
	                 .big = true, .seed = tu_seed() };
	run(FIX(state)->handle, &j, 32u << 20);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_procs_2p20_records_in_order),
		T(test_procs_no_producer_nothing_pending_ends),
		T(test_procs_one_producer_two_channels_thread_each),
		T(test_procs_random_sizes_1b_to_1mib_content),
	};

	tu_init(argc, argv);
	g_records = tu_arg("records", 1u << 20);
	g_eof_records = tu_arg("eof_records", 1u << 16);
	g_two_records = tu_arg("two_records", TU_SANITIZED ? 1u << 17 : 1u << 18);
	g_big_records = tu_arg("big_records", TU_SANITIZED ? 1000 : 4000);
	tu_watchdog(300);
	return cmocka_run_group_tests_name("stress_procs", tests, NULL, NULL);
}

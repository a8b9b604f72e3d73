/*
 * 2 processes x 4 threads allocating and freeing random sizes (0 B ..
 * 200 KB) with content checks for alloc_ms, each thread passing some of its
 * records to its twin in the other process to be checked and freed there.
 * Free bytes, records and slabs end exactly where they started.
 * Arguments: seed, alloc_ms.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))

#define PROCS 2
#define THREADS 4
#define POOL 48

static uint64_t g_alloc_ms;

struct tag {
	uint64_t tag, len;
};

struct worker {
	const char *handle;
	struct ipc_buffer *b;
	int proc, thread;
	uint64_t seed, end_ns;
	uint64_t ops;
};

static void verify_tag(void *rec)
{
	struct tag *g = rec;

	CHECK_EQ(ipc_record_size(g), sizeof(*g) + g->len);
	CHECK_MSG(tu_verify(g + 1, g->len, g->tag), "record %llx corrupt",
	          (unsigned long long)g->tag);
}

/* Thread (p, i) produces on channel 1000 + 10p + i, consumed by thread i of
 * the other process. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct ipc_tls *t = ipc_tls_open(w->b, w->thread);
	uint64_t out = 1000 + 10 * (uint64_t)w->proc + (uint64_t)w->thread;
	uint64_t in = 1000 + 10 * (uint64_t)(1 - w->proc) + (uint64_t)w->thread;
	uint64_t rng = w->seed, next = ((uint64_t)w->proc << 56) | ((uint64_t)w->thread << 48);
	void *pool[POOL] = { 0 };
	int rc;

	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, out, IPC_PRODUCER), 0);
	CHECK_EQ(ipc_channel_add(t, in, IPC_CONSUMER), 0);
	while (tu_now_ns() < w->end_ns) {
		int k = (int)tu_rand_range(&rng, 0, POOL - 1);
		uint64_t r = tu_rand_range(&rng, 0, 99);
		void *rec;

		if (pool[k]) {
			verify_tag(pool[k]);
			if (r < 40 && ipc_record_send(t, out, &pool[k]) == 0)
				;
			else
				ipc_record_free(t, pool[k]);
			pool[k] = NULL;
		} else {
			uint64_t len = r < 75 ? tu_rand_range(&rng, 0, 256)
			             : r < 98 ? tu_rand_range(&rng, 257, 16384)
			                      : tu_rand_range(&rng, 16385, 200000);
			struct tag *g = ipc_record_alloc(t, sizeof(*g) + len, out);
			if (g == NULL) {
				CHECK_EQ(errno, ENOMEM); /* others hold much for now */
				continue;
			}
			g->tag = next++;
			g->len = len;
			tu_fill(g + 1, len, g->tag);
			pool[k] = g;
		}
		while (ipc_record_recv(t, in, &rec) == 0) {
			verify_tag(rec);
			ipc_record_free(t, rec);
		}
		w->ops++;
	}
	for (int k = 0; k < POOL; k++)
		ipc_record_free(t, pool[k]);
	CHECK_EQ(ipc_channel_close(t, out), 0);
	for (;;) {
		void *rec;
		rc = ipc_record_recv_wait(t, in, &rec, 10000);
		if (rc == IPC_TX_EOF)
			break;
		CHECK_EQ(rc, 0);
		verify_tag(rec);
		ipc_record_free(t, rec);
	}
	ipc_tls_close(t);
	return NULL;
}

struct storm_arg {
	const char *handle;
	int proc;
	int start[2]; /* parent closes the write end: start */
};

static int storm_proc(void *arg)
{
	struct storm_arg *a = arg;
	struct ipc_buffer *b = tu_open(a->handle, 0);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	uint64_t ops = 0;

	CHECK(b != NULL);
	close(a->start[1]);
	CHECK_EQ(tu_await(a->start[0], 10000), -1);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .b = b, .proc = a->proc, .thread = i + 1,
		                        .seed = tu_seed() + (uint64_t)(a->proc * 100 + i),
		                        .end_ns = tu_now_ns() + g_alloc_ms * 1000000ull };
		CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ops += w[i].ops;
	}
	CHECK(!tu_failed());
	fprintf(stderr, "# process %d: %llu operations\n", a->proc, (unsigned long long)ops);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_alloc_2procs_4threads_free_back_to_start(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 64u << 20);
	struct ipc_buffer_stats s0, s1;
	struct storm_arg a[PROCS];
	int start[2];
	pid_t pid[PROCS];

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	tu_pipe(start);
	for (int p = 0; p < PROCS; p++) {
		a[p] = (struct storm_arg){ .handle = h, .proc = p,
		                           .start = { start[0], start[1] } };
		pid[p] = tu_spawn(storm_proc, &a[p]);
	}
	close(start[1]);
	for (int p = 0; p < PROCS; p++)
		tu_wait_ok(pid[p], (int)g_alloc_ms + 30000);
	close(start[0]);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.processes, 1);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.records, 0);
	assert_int_equal(s1.slab, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_alloc_2procs_4threads_free_back_to_start),
	};

	tu_init(argc, argv);
	g_alloc_ms = tu_arg("alloc_ms", TU_SANITIZED ? 1500 : 3000);
	tu_watchdog(300);
	return cmocka_run_group_tests_name("stress_alloc", tests, NULL, NULL);
}

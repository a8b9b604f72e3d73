/*
 * Unit tests of taking over the channel ends of a dead process (takeover.c),
 * with real processes killed with SIGKILL: a new producer continues the
 * stream after what its predecessor committed, a new consumer takes what is
 * queued (the record its predecessor was processing is lost and counted),
 * the peer sees neither IPC_TX_ABORTED nor -EPIPE meanwhile, and
 * ipc_buffer_orphans_abort gives the peer what a death gives when nobody
 * comes. Errors: a living owner, a closed or unheld dead end.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))
#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)
#define CH 7

static const char *g_handle;
static int g_sync[2];

static void send_u64(struct ipc_tls *t, uint64_t v)
{
	uint64_t *r = ipc_record_alloc(t, sizeof(v), CH);
	CHECK(r != NULL);
	*r = v;
	CHECK_EQ(ipc_record_send_wait(t, CH, (void **)&r, 5000), 0);
}

static uint64_t recv_u64(struct ipc_tls *t)
{
	uint64_t *r = NULL;
	CHECK_EQ(ipc_record_recv_wait(t, CH, (void **)&r, 5000), 0);
	uint64_t v = *r;
	ipc_record_free(t, r);
	return v;
}

/* Producer: hold the end, send from..to-1, keep one record allocated and
 * unsent, tell the parent, and wait to be killed. */
static int dying_producer(void *arg)
{
	uint64_t to = (uint64_t)(uintptr_t)arg;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_takeover(t, CH, IPC_PRODUCER, NULL), 0);
	CHECK_EQ(ipc_channel_hold(t, CH, IPC_PRODUCER), 0);
	for (uint64_t i = 0; i < to; i++)
		send_u64(t, i);
	CHECK(ipc_record_alloc(t, 64, CH) != NULL); /* held: lost at death */
	tu_notify(g_sync[1], 1);
	for (;;)
		pause();
}

/* The successor: take over, send from..to-1, close. */
static int new_producer(void *arg)
{
	uint64_t from = (uint64_t)(uintptr_t)arg;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_takeover(t, CH, IPC_PRODUCER, NULL), 0);
	for (uint64_t i = from; i < from + 10; i++)
		send_u64(t, i);
	CHECK_EQ(ipc_channel_close(t, CH), 0);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_takeover_producer_continues_stream(void **state)
{
	g_handle = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 0);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, CH, IPC_CONSUMER), 0);
	tu_pipe(g_sync);
	pid_t a = tu_spawn(dying_producer, (void *)(uintptr_t)10);
	assert_int_equal(tu_await(g_sync[0], 5000), 1);
	kill(a, SIGKILL);
	assert_true(tu_wait(a, 5000) >= 0);
	uint64_t lost = 0;
	assert_int_equal(ipc_buffer_reap_lost(b, &lost), 1);
	assert_int_equal(lost, 1); /* the allocated, unsent record */
	/* what was committed is all there; then the stream waits, not aborted */
	for (uint64_t i = 0; i < 10; i++)
		assert_int_equal(recv_u64(t), i);
	void *r = NULL;
	assert_int_equal(ipc_record_recv_wait(t, CH, &r, 100), IPC_TX_RETRY);
	pid_t c = tu_spawn(new_producer, (void *)(uintptr_t)10);
	for (uint64_t i = 10; i < 20; i++)
		assert_int_equal(recv_u64(t), i);
	assert_int_equal(ipc_record_recv_wait(t, CH, &r, 5000), IPC_TX_EOF);
	tu_wait_ok(c, 5000);
	ipc_tls_close(t);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(g_sync[0]);
	close(g_sync[1]);
}

/* Consumer: hold, take two records and free them, take a third and keep
 * it (lost at death), tell the parent, wait to be killed. */
static int dying_consumer(void *arg)
{
	(void)arg;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, CH, IPC_CONSUMER), 0);
	CHECK_EQ(ipc_channel_hold(t, CH, IPC_CONSUMER), 0);
	CHECK_EQ(recv_u64(t), 0);
	CHECK_EQ(recv_u64(t), 1);
	void *r = NULL;
	CHECK_EQ(ipc_record_recv_wait(t, CH, &r, 5000), 0);
	CHECK_EQ(*(uint64_t *)r, 2);
	tu_notify(g_sync[1], 1);
	for (;;)
		pause();
}

/* The successor: take over, receive 3.. until the end, check the order. */
static int new_consumer(void *arg)
{
	uint64_t until = (uint64_t)(uintptr_t)arg;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_takeover(t, CH, IPC_CONSUMER, NULL), 0);
	for (uint64_t i = 3; i < until; i++)
		CHECK_EQ(recv_u64(t), i);
	void *r = NULL;
	CHECK_EQ(ipc_record_recv_wait(t, CH, &r, 5000), IPC_TX_EOF);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_takeover_consumer_takes_queued(void **state)
{
	g_handle = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 0);
	assert_non_null(t);
	struct ipc_channel_opts co = {.capacity = 16};
	assert_int_equal(ipc_channel_add_opts(t, CH, IPC_PRODUCER, &co), 0);
	for (uint64_t i = 0; i < 10; i++)
		send_u64(t, i);
	tu_pipe(g_sync);
	pid_t a = tu_spawn(dying_consumer, NULL);
	assert_int_equal(tu_await(g_sync[0], 5000), 1);
	kill(a, SIGKILL);
	assert_true(tu_wait(a, 5000) >= 0);
	uint64_t lost = 0;
	assert_int_equal(ipc_buffer_reap_lost(b, &lost), 1);
	assert_int_equal(lost, 1); /* record 2, being processed */
	assert_int_equal(ipc_channel_pending(t, CH), 7);
	/* no -EPIPE while nobody consumes: the ring fills, then send waits */
	for (uint64_t i = 10; i < 19; i++)
		send_u64(t, i);
	void *r = ipc_record_alloc(t, 8, CH);
	assert_non_null(r);
	assert_int_equal(ipc_record_send_wait(t, CH, &r, 100), IPC_TX_RETRY);
	*(uint64_t *)r = 19;
	pid_t c = tu_spawn(new_consumer, (void *)(uintptr_t)20);
	assert_int_equal(ipc_record_send_wait(t, CH, &r, 5000), 0);
	assert_int_equal(ipc_channel_close(t, CH), 0);
	tu_wait_ok(c, 5000);
	ipc_tls_close(t);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(g_sync[0]);
	close(g_sync[1]);
}

static int unheld_producer(void *arg)
{
	(void)arg;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 1);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, CH, IPC_PRODUCER), 0);
	send_u64(t, 41);
	tu_notify(g_sync[1], 1);
	for (;;)
		pause();
}

static void test_takeover_errors_and_orphans_abort(void **state)
{
	g_handle = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(g_handle, 2u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 0), *u = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_non_null(u);
	/* nothing to take over: an ordinary attach; then its owner lives */
	assert_int_equal(ipc_channel_takeover(t, CH, IPC_CONSUMER, NULL), 0);
	assert_int_equal(ipc_channel_takeover(u, CH, IPC_CONSUMER, NULL), -EBUSY);
	assert_int_equal(ipc_channel_takeover(t, CH, IPC_CONSUMER, NULL), -EALREADY);
	assert_int_equal(ipc_channel_hold(t, CH, IPC_PRODUCER), -ENOENT);
	assert_int_equal(ipc_channel_hold(NULL, CH, IPC_PRODUCER), -EINVAL);
	assert_int_equal(ipc_channel_takeover(t, CH, (enum ipc_role)0, NULL), -EINVAL);
	/* a producer that died unheld: its stream is over */
	tu_pipe(g_sync);
	pid_t a = tu_spawn(unheld_producer, NULL);
	assert_int_equal(tu_await(g_sync[0], 5000), 1);
	kill(a, SIGKILL);
	assert_true(tu_wait(a, 5000) >= 0);
	assert_int_equal(ipc_channel_takeover(u, CH, IPC_PRODUCER, NULL), -EPIPE);
	uint64_t *r = NULL;
	assert_int_equal(ipc_record_recv_wait(t, CH, (void **)&r, 5000), 0);
	assert_int_equal(*r, 41);
	ipc_record_free(t, r);
	assert_int_equal(ipc_record_recv_wait(t, CH, (void **)&r, 5000), IPC_TX_ABORTED);
	assert_int_equal(ipc_channel_close(t, CH), 0);

	/* a held producer died, and nobody comes: the consumer sees the abort
	 * once told, not before */
	a = tu_spawn(dying_producer, (void *)(uintptr_t)3);
	assert_int_equal(ipc_channel_takeover(t, CH, IPC_CONSUMER, NULL), 0);
	assert_int_equal(tu_await(g_sync[0], 5000), 1);
	kill(a, SIGKILL);
	assert_true(tu_wait(a, 5000) >= 0);
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(recv_u64(t), i);
	assert_int_equal(ipc_record_recv_wait(t, CH, (void **)&r, 150), IPC_TX_RETRY);
	assert_int_equal(ipc_buffer_orphans_abort(b), 1);
	assert_int_equal(ipc_buffer_orphans_abort(b), 0);
	assert_int_equal(ipc_record_recv_wait(t, CH, (void **)&r, 5000), IPC_TX_ABORTED);
	ipc_tls_close(t);
	ipc_tls_close(u);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(g_sync[0]);
	close(g_sync[1]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_takeover_producer_continues_stream),
		T(test_takeover_consumer_takes_queued),
		T(test_takeover_errors_and_orphans_abort),
	};

	tu_init(argc, argv);
	tu_watchdog(120);
	return cmocka_run_group_tests_name("takeover", tests, NULL, NULL);
}

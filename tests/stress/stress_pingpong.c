/*
 * Shared-segment ping-pong between two processes (RaftLib/ipc's test, with
 * the segment created late): process A attaches to the buffer and waits in
 * ipc_channel_exists() for a segment that process B creates only once A is
 * waiting; then they bounce a counter 2^16 times through the segment, each
 * checking every value it receives. Arguments: seed, rounds (2^16).
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))
#define SEG 0x5e6

static uint64_t g_rounds;

struct board {
	_Atomic uint64_t ball;   /* A writes odd values, B even ones */
	_Atomic uint64_t magic;  /* set by init: proves init ran before use */
	uint64_t pad[6];
};

struct pp {
	const char *handle;
	int a_waiting[2]; /* A -> B: about to wait for the segment */
};

static void board_init(void *seg, void *arg)
{
	struct board *bd = seg;

	(void)arg;
	atomic_store(&bd->ball, 0);
	atomic_store(&bd->magic, 0xfeedull);
}

/* Wait until ball == want; bounded, yields the core while waiting. */
static void await_ball(struct board *bd, uint64_t want)
{
	uint64_t end = 0;
	uint32_t spins = 0;

	for (;;) {
		uint64_t v = atomic_load_explicit(&bd->ball, memory_order_acquire);
		if (v == want)
			return;
		CHECK_MSG(v + 1 == want, "ball %llu while waiting for %llu",
		          (unsigned long long)v, (unsigned long long)want);
		if (++spins < 200)
			continue;
		sched_yield();
		if ((spins & 1023) == 0) {
			uint64_t now = tu_now_ns();
			if (end == 0)
				end = now + 10000000000ull;
			CHECK_MSG(now < end, "peer silent for 10 s at %llu",
			          (unsigned long long)want);
		}
	}
}

static int side_a(void *arg)
{
	struct pp *p = arg;
	struct ipc_buffer *b = tu_open(p->handle, 0);
	struct ipc_tls *t;
	struct board *bd;

	CHECK(b != NULL);
	t = ipc_tls_open(b, 1);
	CHECK(t != NULL);
	CHECK(!ipc_channel_exists(t, SEG, 0)); /* not there yet */
	tu_notify(p->a_waiting[1], 'w');
	CHECK(ipc_channel_exists(t, SEG, 10000));
	CHECK_EQ(ipc_segment_open(t, SEG, (void **)&bd), 0);
	CHECK_EQ(atomic_load(&bd->magic), 0xfeed);
	for (uint64_t i = 0; i < g_rounds; i++) {
		await_ball(bd, 2 * i);
		atomic_store_explicit(&bd->ball, 2 * i + 1, memory_order_release);
	}
	await_ball(bd, 2 * g_rounds);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static int side_b(void *arg)
{
	struct pp *p = arg;
	struct ipc_buffer *b = tu_open(p->handle, 0);
	struct ipc_tls *t;
	struct board *bd;

	CHECK(b != NULL);
	t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK_EQ(tu_await(p->a_waiting[0], 10000), 'w');
	CHECK_EQ(ipc_segment_add(t, SEG, sizeof(*bd), board_init, NULL), 0);
	CHECK_EQ(ipc_segment_open(t, SEG, (void **)&bd), 0);
	for (uint64_t i = 0; i < g_rounds; i++) {
		await_ball(bd, 2 * i + 1);
		atomic_store_explicit(&bd->ball, 2 * i + 2, memory_order_release);
	}
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_pingpong_late_segment_2p16_values(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct ipc_buffer_stats s0, s1;
	struct pp p = { .handle = h };
	uint64_t t0;
	pid_t a, bb;

	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	tu_pipe(p.a_waiting);
	t0 = tu_now_ns();
	bb = tu_spawn(side_b, &p);
	a = tu_spawn(side_a, &p);
	tu_wait_ok(a, 60000);
	tu_wait_ok(bb, 60000);
	fprintf(stderr, "# ping-pong of %llu values: %.3f s\n",
	        (unsigned long long)g_rounds, (double)(tu_now_ns() - t0) / 1e9);
	/* both users closed: the segment is gone */
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(p.a_waiting[0]);
	close(p.a_waiting[1]);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_pingpong_late_segment_2p16_values),
	};

	tu_init(argc, argv);
	g_rounds = tu_arg("rounds", 1u << 16);
	tu_watchdog(300);
	return cmocka_run_group_tests_name("stress_pingpong", tests, NULL, NULL);
}

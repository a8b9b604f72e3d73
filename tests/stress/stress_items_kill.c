/*
 * A producer of items killed mid-stream. The child emits numbered 8-byte
 * items (0, 1, 2, ...) through the kernel API with batches of 512 bytes and
 * is SIGKILLed at a random moment; the parent receives with ipc_recv, so it
 * sees the batch records themselves. Every record must be a whole batch
 * (its header's count matches its items), the items must run 0, 1, 2, ...
 * across records without a gap or a repeat, and the stream must end with
 * IPC_TX_ABORTED. What the child's open batch held is lost: the last item
 * received is below what the child had emitted (published in a segment).
 * Arguments (name=value): seed, rounds.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipc/kernel.h>

#include "kernel_impl.h"

#define FIX(state) ((struct tu_fix *)*(state))
#define BATCH 512

struct board {
	_Atomic uint64_t emitted;
};

static const char *g_handle;
static uint64_t g_chan, g_board; /* fresh ids every round */

static int producer_main(void *arg)
{
	(void)arg;
	struct ipc_buffer *b = ipc_buffer_open(g_handle, NULL);
	CHECK(b);
	struct ipc_kernel k = {.name = "victim"};
	struct ipc_port port = {.k = &k, .name = "out", .id = g_chan, .out = true,
	                        .batch = BATCH, .capacity = 64};
	k.tls = ipc_tls_open(b, 1);
	CHECK(k.tls);
	k.port = &port;
	k.nout = 1;
	struct board *bd;
	CHECK_EQ(ipc_segment_open(k.tls, g_board, (void **)&bd), 0);
	CHECK_EQ(ipc_channel_add(k.tls, g_chan, IPC_PRODUCER), 0);
	for (uint64_t i = 0;; i++) {
		CHECK_EQ(ipc_emit(&port, &i, sizeof i), 0);
		atomic_store_explicit(&bd->emitted, i + 1, memory_order_release);
	}
}

static void test_items_killed_producer_whole_batches_in_order(void **state)
{
	const char *h = FIX(state)->handle;
	uint64_t rounds = tu_arg("rounds", 10), seed = tu_seed();
	g_handle = h;
	struct ipc_buffer *b = tu_open(h, 8u << 20);
	assert_non_null(b);
	for (uint64_t r = 0; r < rounds; r++) {
		g_chan = 100 + 2 * r;
		g_board = 101 + 2 * r;
		struct ipc_tls *t = ipc_tls_open(b, 2);
		struct board *bd;
		assert_non_null(t);
		assert_int_equal(ipc_segment_add(t, g_board, sizeof *bd, NULL, NULL), 0);
		assert_int_equal(ipc_segment_open(t, g_board, (void **)&bd), 0);
		assert_int_equal(ipc_channel_add(t, g_chan, IPC_CONSUMER), 0);
		pid_t pid = tu_spawn(producer_main, NULL);
		/* once it emits, let it run 1 to 30 ms, consuming meanwhile */
		uint64_t until = 0, give_up = tu_now_ns() + 10000000000ull;
		uint64_t next = 0, records = 0;
		bool killed = false;
		int rc;
		for (;;) {
			CHECK_MSG(tu_now_ns() < give_up, "round %llu: no end after 10 s",
			          (unsigned long long)r);
			if (!until && atomic_load(&bd->emitted))
				until = tu_now_ns() + tu_rand_range(&seed, 1, 30) * 1000000ull;
			if (!killed && until && tu_now_ns() >= until) {
				kill(pid, SIGKILL);
				killed = true;
			}
			void *rec;
			size_t n;
			rc = ipc_record_recv_wait(t, g_chan, &rec, 5);
			if (rc == IPC_TX_RETRY)
				continue;
			if (rc != 0)
				break;
			struct ipc_batch_hdr hd;
			n = ipc_record_size(rec);
			assert_true(n >= sizeof hd);
			memcpy(&hd, rec, sizeof hd);
			assert_int_equal(hd.magic, IPC_BATCH_MAGIC);
			assert_int_equal(hd.width, 8);
			assert_true(hd.count >= 1 && hd.count <= BATCH / 8);
			assert_int_equal(hd.bytes, hd.count * 8u);
			assert_true(n >= sizeof hd + hd.bytes);
			for (uint32_t i = 0; i < hd.count; i++) {
				uint64_t v;
				memcpy(&v, (char *)rec + sizeof hd + 8 * i, 8);
				assert_int_equal(v, next); /* in order, no gap, no repeat */
				next++;
			}
			records++;
			ipc_record_free(t, rec);
		}
		assert_true(killed);
		assert_int_equal(rc, IPC_TX_ABORTED);
		int st = tu_wait(pid, 5000);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		uint64_t emitted = atomic_load(&bd->emitted);
		/* the open batch is lost: at most one batch's items */
		assert_true(next <= emitted + 1); /* killed before it counted */
		assert_true(emitted <= next + BATCH / 8);
		printf("# round %llu: %llu items in %llu whole batches, %llu lost in "
		       "the open batch\n", (unsigned long long)r, (unsigned long long)next,
		       (unsigned long long)records, (unsigned long long)(emitted > next ? emitted - next : 0));
		ipc_channel_close(t, g_chan);
		ipc_channel_close(t, g_board);
		ipc_tls_close(t);
	}
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_items_killed_producer_whole_batches_in_order),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	return cmocka_run_group_tests_name("items_kill", tests, NULL, NULL);
}

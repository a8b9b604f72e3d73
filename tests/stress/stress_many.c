/*
 * 100 channels between 4 processes at once: channel i runs from process
 * i % 4 to process (i + 1 + i / 4) % 4 (never itself), every process both
 * produces and consumes on many channels from one thread, without blocking
 * (RETRY means "go on with another channel"). Each record carries its
 * channel and sequence number and random content of random size. At the
 * end every channel saw every record in order, then EOF; free bytes are
 * back to their start. Arguments: seed, channels (100), per_channel (2000).
 */
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(state) ((struct tu_fix *)*(state))
#define PROCS 4
#define MAXCH 1024

static uint64_t g_channels, g_per;

struct hdr {
	uint64_t channel, seq, len;
};

static int src_of(uint64_t i)
{
	return (int)(i % PROCS);
}

static int dst_of(uint64_t i)
{
	return (int)((i + 1 + (i / PROCS) % (PROCS - 1)) % PROCS);
}

struct many {
	const char *handle;
	int proc;
	int ready[2];
	int go[2];
};

static size_t rec_len(uint64_t ch, uint64_t seq)
{
	uint64_t s = tu_seed() ^ (ch << 32) ^ seq;
	return (size_t)tu_rand_range(&s, 0, tu_rand_range(&s, 0, 9) == 0 ? 8000 : 200);
}

static int many_proc(void *arg)
{
	struct many *m = arg;
	struct ipc_buffer *b = tu_open(m->handle, 0);
	static uint64_t sent[MAXCH], recvd[MAXCH];
	static bool out_done[MAXCH], in_done[MAXCH];
	uint64_t outs = 0, ins = 0, outs_done = 0, ins_done = 0;
	uint64_t idle_since = 0;
	struct ipc_tls *t;

	CHECK(b != NULL);
	t = ipc_tls_open(b, m->proc);
	CHECK(t != NULL);
	for (uint64_t i = 0; i < g_channels; i++) {
		if (src_of(i) == m->proc) {
			CHECK_EQ(ipc_channel_add(t, i + 1, IPC_PRODUCER), 0);
			outs++;
		}
		if (dst_of(i) == m->proc) {
			CHECK_EQ(ipc_channel_add(t, i + 1, IPC_CONSUMER), 0);
			ins++;
		}
	}
	tu_notify(m->ready[1], 'r');
	close(m->go[1]);
	CHECK_EQ(tu_await(m->go[0], 10000), -1); /* everyone attached */
	while (outs_done < outs || ins_done < ins) {
		bool progress = false;

		for (uint64_t i = 0; i < g_channels; i++) {
			uint64_t id = i + 1;
			if (src_of(i) == m->proc && !out_done[i]) {
				size_t n = rec_len(i, sent[i]);
				struct hdr *r = ipc_record_alloc(t, sizeof(*r) + n, id);
				int rc;
				CHECK_MSG(r != NULL, "alloc: %s", strerror(errno));
				r->channel = i;
				r->seq = sent[i];
				r->len = n;
				tu_fill(r + 1, n, (i << 32) ^ sent[i]);
				rc = ipc_record_send(t, id, (void **)&r);
				if (rc == 0) {
					progress = true;
					if (++sent[i] == g_per) {
						CHECK_EQ(ipc_channel_close(t, id), 0);
						out_done[i] = true;
						outs_done++;
					}
				} else {
					CHECK_EQ(rc, IPC_TX_RETRY);
					ipc_record_free(t, r);
				}
			}
			if (dst_of(i) == m->proc && !in_done[i]) {
				/* take what is there, a bounded batch */
				for (int k = 0; k < 16; k++) {
					struct hdr *r;
					int rc = ipc_record_recv(t, id, (void **)&r);
					if (rc == IPC_TX_RETRY)
						break;
					progress = true;
					if (rc == IPC_TX_EOF) {
						CHECK_EQ(recvd[i], g_per);
						in_done[i] = true;
						ins_done++;
						break;
					}
					CHECK_EQ(rc, 0);
					CHECK_EQ(r->channel, i);
					CHECK_EQ(r->seq, recvd[i]);
					CHECK_EQ(ipc_record_size(r), sizeof(*r) + r->len);
					CHECK(tu_verify(r + 1, r->len, (i << 32) ^ r->seq));
					recvd[i]++;
					ipc_record_free(t, r);
				}
			}
		}
		if (progress) {
			idle_since = 0;
		} else {
			uint64_t now = tu_now_ns();
			if (idle_since == 0)
				idle_since = now;
			CHECK_MSG(now - idle_since < 10000000000ull,
			          "process %d: no progress for 10 s", m->proc);
			sched_yield();
		}
	}
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_many_100_channels_4_processes(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 64u << 20);
	struct ipc_buffer_stats s0, s1;
	struct many m[PROCS];
	int ready[2], go[2];
	pid_t pid[PROCS];
	uint64_t t0;

	assert_non_null(b);
	assert_true(g_channels <= MAXCH);
	for (uint64_t i = 0; i < g_channels; i++)
		assert_int_not_equal(src_of(i), dst_of(i));
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	tu_pipe(ready);
	tu_pipe(go);
	for (int p = 0; p < PROCS; p++) {
		m[p] = (struct many){ .handle = h, .proc = p, .ready = { ready[0], ready[1] },
		                      .go = { go[0], go[1] } };
		pid[p] = tu_spawn(many_proc, &m[p]);
	}
	for (int p = 0; p < PROCS; p++)
		assert_int_equal(tu_await(ready[0], 10000), 'r');
	assert_int_equal(ipc_channel_list(b, NULL, 0), g_channels);
	t0 = tu_now_ns();
	close(go[1]);
	for (int p = 0; p < PROCS; p++)
		tu_wait_ok(pid[p], 120000);
	fprintf(stderr, "# %llu channels x %llu records between %d processes: %.3f s\n",
	        (unsigned long long)g_channels, (unsigned long long)g_per, PROCS,
	        (double)(tu_now_ns() - t0) / 1e9);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.processes, 1);
	assert_int_equal(s1.channels, 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.slab, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_many_100_channels_4_processes),
	};

	tu_init(argc, argv);
	g_channels = tu_arg("channels", 100);
	g_per = tu_arg("per_channel", TU_SANITIZED ? 2000 : 10000);
	tu_watchdog(300);
	return cmocka_run_group_tests_name("stress_many", tests, NULL, NULL);
}

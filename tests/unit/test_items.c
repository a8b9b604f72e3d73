/*
 * Unit tests of the kernel API's items (ipc_emit / ipc_next / ipc_flush),
 * ipc_alloc waiting for memory, and the library's ipc_record_trim and
 * ipc_record_alloc_wait. Threads only (no fork), so the binary also runs
 * under ThreadSanitizer; a producer killed mid-stream is in
 * stress/stress_items_kill.c.
 *
 * A kernel is built here as ipcrun builds one (kernel_impl.h): a TLS, ports
 * on channels added by the test, ipc__kernel_finish when it "returns".
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipc/kernel.h>

#include "kernel_impl.h"

#define FIX(state) ((struct tu_fix *)*(state))

struct tk {
	struct ipc_kernel k;
	struct ipc_port port[2];
};

/* A kernel of one port on channel id: out (producer) or in (consumer). */
static void tk_open(struct tk *x, struct ipc_buffer *b, uint64_t id, bool out,
                    uint32_t batch, uint32_t capacity)
{
	memset(x, 0, sizeof *x);
	x->k.name = out ? "producer" : "consumer";
	x->k.tls = ipc_tls_open(b, out ? 1 : 2);
	assert_non_null(x->k.tls);
	x->k.port = x->port;
	x->k.nin = out ? 0 : 1;
	x->k.nout = out ? 1 : 0;
	x->k.linger_ns = 1000000;
	x->port[0] = (struct ipc_port){.k = &x->k, .name = out ? "out" : "in",
	                               .id = id, .out = out, .batch = batch,
	                               .capacity = capacity};
	struct ipc_channel_opts o = {.capacity = capacity};
	assert_int_equal(ipc_channel_add_opts(x->k.tls, id, out ? IPC_PRODUCER : IPC_CONSUMER,
	                                      &o), 0);
}

/* The kernel returns: what it emitted goes out (EOF), its ends close. */
static void tk_close(struct tk *x)
{
	ipc__kernel_finish(&x->k);
	ipc_channel_close(x->k.tls, x->port[0].id);
	ipc_tls_close(x->k.tls);
}

static void expect_item(struct ipc_port *in, const void *want, size_t n)
{
	const void *item;
	size_t got;
	assert_int_equal(ipc_next(in, &item, &got), 0);
	assert_int_equal(got, n);
	if (n)
		assert_memory_equal(item, want, n);
}

/* Every kind of item through batches of 64 bytes: empty, odd sizes, one
 * size then another (the fixed layout turning variable), a batch filled
 * exactly, an item larger than the batch, text without a NUL, an item that
 * looks like a batch header, and the largest item the buffer takes. */
static void test_items_edges_round_trip(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 8u << 20);
	struct ipc_buffer_stats s0, s1;
	struct tk p, c;
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	tk_open(&p, b, 7, true, 64, 1024);
	tk_open(&c, b, 7, false, 64, 1024);
	struct ipc_port *out = &p.port[0], *in = &c.port[0];

	size_t big = (8u << 20) / 4 - 64;
	char *large = malloc(big);
	assert_non_null(large);
	tu_fill(large, big, 99);
	uint64_t eight[8];
	for (int i = 0; i < 8; i++)
		eight[i] = 0x1111111111111111ull * (uint64_t)i;
	struct ipc_batch_hdr fake = {IPC_BATCH_MAGIC, 1, 4, 4};
	char over[65];
	memset(over, 'x', sizeof over);
	const char text[] = {'a', 'b', 'c'}; /* no NUL */

	assert_int_equal(ipc_emit(out, "", 0), 0);               /* empty */
	assert_int_equal(ipc_emit(out, "abc", 3), 0);
	assert_int_equal(ipc_emit(out, "defgh", 5), 0);          /* 2nd size */
	assert_int_equal(ipc_flush(out), 0);
	for (int i = 0; i < 8; i++)                              /* exactly 64 */
		assert_int_equal(ipc_emit(out, &eight[i], 8), 0);
	assert_int_equal(ipc_emit(out, over, sizeof over), 0);   /* > batch */
	assert_int_equal(ipc_emit(out, text, sizeof text), 0);
	assert_int_equal(ipc_emit(out, &fake, sizeof fake), 0);  /* batch-like */
	assert_int_equal(ipc_emit_text(out, "hello"), 0);
	assert_int_equal(ipc_emit(out, large, big), 0);          /* largest */
	assert_int_equal(ipc_emit(out, large, (size_t)IPC_ITEM_MAX + 1), -EINVAL);
	assert_int_equal(ipc_emit(out, NULL, 1), -EINVAL);
	assert_int_equal(ipc_flush(out), 0);

	expect_item(in, "", 0);
	expect_item(in, "abc", 3);
	expect_item(in, "defgh", 5);
	for (int i = 0; i < 8; i++)
		expect_item(in, &eight[i], 8);
	expect_item(in, over, sizeof over);
	expect_item(in, text, sizeof text);
	expect_item(in, &fake, sizeof fake);
	expect_item(in, "hello", 6);
	expect_item(in, large, big);

	tk_close(&p);
	const void *item;
	size_t n;
	assert_int_equal(ipc_next(in, &item, &n), IPC_TX_EOF);
	tk_close(&c);
	free(large);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* batch = 0: a record per item, and ipc_recv sees exactly the item. */
static void test_items_batch_zero_record_per_item(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 3, true, 0, 64);
	tk_open(&c, b, 3, false, 0, 64);
	struct ipc_port *out = &p.port[0], *in = &c.port[0];
	uint64_t v = 42;
	assert_int_equal(ipc_emit(out, &v, 8), 0);
	assert_int_equal(ipc_emit(out, "", 0), 0); /* goes as a batch of one */
	void *rec;
	size_t n;
	assert_int_equal(ipc_recv(in, &rec, &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(rec, &v, 8);
	ipc_release(in, rec);
	expect_item(in, "", 0);
	tk_close(&p);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ipc_send between emits keeps the order; ipc_next yields a sent record as
 * one item; ipc_recv on a batched connection returns the batch record. */
static void test_items_mixing_send_next_emit_recv(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 5, true, 4096, 64);
	tk_open(&c, b, 5, false, 4096, 64);
	/* a linger longer than the test: no batch goes out at once for being
	 * sparse (under valgrind a millisecond passes between two emits) */
	p.k.linger_ns = 10000000000ull;
	struct ipc_port *out = &p.port[0], *in = &c.port[0];

	assert_int_equal(ipc_emit_text(out, "a"), 0);
	char *rec = ipc_alloc(out, 100);
	assert_non_null(rec);
	strcpy(rec, "record");
	assert_int_equal(ipc_trim(out, rec, 7), 0);
	assert_int_equal(ipc_send(out, rec), 0);
	assert_int_equal(ipc_emit_text(out, "b"), 0);
	assert_int_equal(ipc_flush(out), 0);
	expect_item(in, "a", 2);
	expect_item(in, "record", 7); /* trimmed: no bytes after the NUL */
	expect_item(in, "b", 2);

	uint32_t x = 1, y = 2;
	assert_int_equal(ipc_emit(out, &x, 4), 0);
	assert_int_equal(ipc_emit(out, &y, 4), 0);
	assert_int_equal(ipc_flush(out), 0);
	void *r;
	size_t n;
	assert_int_equal(ipc_recv(in, &r, &n), 0);
	struct ipc_batch_hdr hd;
	assert_true(n >= sizeof hd + 8);
	memcpy(&hd, r, sizeof hd);
	assert_int_equal(hd.magic, IPC_BATCH_MAGIC);
	assert_int_equal(hd.count, 2);
	assert_int_equal(hd.width, 4);
	assert_int_equal(hd.bytes, 8);
	assert_int_equal(n, sizeof hd + 8); /* trimmed to what it holds */
	assert_memory_equal((char *)r + 16, &x, 4);
	assert_memory_equal((char *)r + 20, &y, 4);
	ipc_release(in, r);
	tk_close(&p);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct slow_src {
	struct tk *p;
	int count;
	int gap_ms;
	uint64_t sent_ns[8];
};

/* Emits one item, then sleeps in its own code: only linger sends it. */
static void *slow_source(void *arg)
{
	struct slow_src *s = arg;
	for (int i = 0; i < s->count; i++) {
		s->sent_ns[i] = tu_now_ns();
		uint64_t v = s->sent_ns[i];
		CHECK_EQ(ipc_emit(&s->p->port[0], &v, 8), 0);
		struct timespec d = {0, (long)s->gap_ms * 1000000};
		nanosleep(&d, NULL);
	}
	tk_close(s->p);
	return NULL;
}

/* A source that emits an item every 200 ms: each arrives within linger
 * (1 ms) plus scheduling, not at the next emit. */
static void test_items_linger_flushes_slow_source(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 9, true, 4096, 64);
	tk_open(&c, b, 9, false, 4096, 64);
	struct slow_src s = {.p = &p, .count = 5, .gap_ms = 200};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_source, &s), 0);
	uint64_t worst = 0;
	for (int i = 0; i < s.count; i++) {
		const void *item;
		size_t n;
		assert_int_equal(ipc_next(&c.port[0], &item, &n), 0);
		uint64_t now = tu_now_ns(), t0;
		assert_int_equal(n, 8);
		memcpy(&t0, item, 8);
		if (now - t0 > worst)
			worst = now - t0;
	}
	const void *item;
	size_t n;
	assert_int_equal(ipc_next(&c.port[0], &item, &n), IPC_TX_EOF);
	pthread_join(th, NULL);
	tk_close(&c);
	/* 1 ms of linger; 100 ms of margin for a loaded machine is still half
	 * of the 200 ms an item would wait for the next emit */
	CHECK_MSG(worst < 100000000ull, "an item waited %llu us",
	          (unsigned long long)(worst / 1000));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A sparse stream goes out at once even after the linger thread sent its
 * previous batch: whether a batch waits is decided by how long ago the
 * previous one opened, not by when it left. (Timed from the send, a stream
 * of one item per 1.5 lingers waited a whole linger for every item.) */
static void test_items_sparse_after_linger_goes_at_once(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 12, true, 4096, 64);
	tk_open(&c, b, 12, false, 4096, 64);
	p.k.linger_ns = 50000000; /* 50 ms */
	uint64_t a = 1, bb = 2, cc = 3;
	assert_int_equal(ipc_emit(&p.port[0], &a, 8), 0);  /* first: at once */
	uint64_t t_b = tu_now_ns();
	assert_int_equal(ipc_emit(&p.port[0], &bb, 8), 0); /* right after: waits */
	expect_item(&c.port[0], &a, 8);
	expect_item(&c.port[0], &bb, 8); /* sent by the linger thread */
	uint64_t now = tu_now_ns();
	if (now < t_b + 75000000) { /* the source's next item, 1.5 lingers on */
		uint64_t d = t_b + 75000000 - now;
		struct timespec ts = {0, (long)d};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(ipc_emit(&p.port[0], &cc, 8), 0);
	void *r = NULL;
	size_t n = 0;
	/* no wait: it must be in the channel already */
	assert_int_equal(ipc_try_recv(&c.port[0], &r, &n), 0);
	assert_non_null(r);
	ipc_release(&c.port[0], r);
	tk_close(&p);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ipc_emit_many / ipc_next_many give the stream that ipc_emit / ipc_next
 * one at a time give: runs across many batches, then items of other sizes
 * (a second fixed size, empty items, an item larger than the batch), the
 * argument errors, a port with a record per item, and -EPIPE. */
static void test_items_many(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 8u << 20);
	struct tk p, c;
	tk_open(&p, b, 13, true, 256, 128);
	tk_open(&c, b, 13, false, 256, 128);
	struct ipc_port *out = &p.port[0], *in = &c.port[0];
	uint64_t v[1000];
	char big[300];
	for (size_t i = 0; i < 1000; i++)
		v[i] = i * 7;
	memset(big, 'b', sizeof big);
	assert_int_equal(ipc_emit_many(out, v, 8, 1000), 0);
	assert_int_equal(ipc_emit(out, "hello", 5), 0);
	assert_int_equal(ipc_emit_many(out, "abcdefghi", 3, 3), 0);
	assert_int_equal(ipc_emit_many(out, NULL, 0, 2), 0); /* two empty items */
	assert_int_equal(ipc_emit_many(out, big, sizeof big, 1), 0);
	assert_int_equal(ipc_emit_many(out, v, 8, 0), 0);
	assert_int_equal(ipc_emit_many(NULL, v, 8, 1), -EINVAL);
	assert_int_equal(ipc_emit_many(out, NULL, 8, 1), -EINVAL);
	assert_int_equal(ipc_emit_many(in, v, 8, 1), -EINVAL);
	tk_close(&p);

	const void *items;
	size_t w, m, got = 0, runs = 0;
	while (got < 1000) {
		assert_int_equal(ipc_next_many(in, &items, &w, &m), 0);
		assert_int_equal(w, 8);
		assert_true(m >= 1 && m <= 256 / 8 && got + m <= 1000);
		assert_memory_equal(items, &v[got], m * 8);
		got += m;
		runs++;
	}
	assert_true(runs >= 1000 / 32 && runs < 1000); /* whole batches, not items */
	/* then the other items, in order, however the producer packed them */
	const char *want[] = {"hello", "abc", "def", "ghi", "", "", big};
	const size_t wlen[] = {5, 3, 3, 3, 0, 0, sizeof big};
	size_t k = 0;
	while (k < 7) {
		assert_int_equal(ipc_next_many(in, &items, &w, &m), 0);
		for (size_t i = 0; i < m; i++, k++) {
			assert_true(k < 7);
			assert_int_equal(w, wlen[k]);
			assert_memory_equal((const char *)items + i * w, want[k], w);
		}
	}
	assert_int_equal(ipc_next_many(in, &items, &w, &m), IPC_TX_EOF);
	assert_int_equal(ipc_next_many(in, &items, NULL, &m), -EINVAL);
	assert_int_equal(ipc_next_many(in, NULL, &w, &m), -EINVAL);
	assert_int_equal(ipc_next_many(in, &items, &w, NULL), -EINVAL);
	tk_close(&c);

	/* a record per item: one item per record each way */
	tk_open(&p, b, 14, true, 0, 64);
	tk_open(&c, b, 14, false, 0, 64);
	assert_int_equal(ipc_emit_many(&p.port[0], v, 8, 3), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ipc_next_many(&c.port[0], &items, &w, &m), 0);
		assert_true(w == 8 && m == 1 && memcmp(items, &v[i], 8) == 0);
	}
	/* the consumer leaves: the producer learns it, not silently, even
	 * from a call whose one item was sent at once (a fresh port) */
	tk_close(&c);
	tk_open(&c, b, 15, false, 4096, 64);
	struct tk q;
	tk_open(&q, b, 15, true, 4096, 64);
	tk_close(&c);
	assert_int_equal(ipc_emit_many(&q.port[0], v, 8, 1), -EPIPE);
	tk_close(&q);
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = ipc_emit_many(&p.port[0], v, 8, 1000);
	assert_int_equal(rc, -EPIPE);
	tk_close(&p);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* Every small size through both fast paths (one size per batch, then all
 * sizes mixed in the variable layout), each byte checked, the padding of
 * the variable layout zero. */
static void test_items_small_sizes(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 8u << 20);
	struct tk p, c;
	tk_open(&p, b, 17, true, 4096, 256);
	tk_open(&c, b, 17, false, 4096, 256);
	char item[24];
	for (size_t n = 1; n <= 20; n++)
		for (uint64_t j = 0; j < 3; j++) {
			tu_fill(item, n, n * 100 + j);
			assert_int_equal(ipc_emit(&p.port[0], item, n), 0);
		}
	for (size_t n = 1; n <= 20; n++) /* mixed: the variable layout */
		for (size_t m = 20; m >= 1; m--) {
			tu_fill(item, m, n * 1000 + m);
			assert_int_equal(ipc_emit(&p.port[0], item, m), 0);
		}
	tk_close(&p);
	for (size_t n = 1; n <= 20; n++)
		for (uint64_t j = 0; j < 3; j++) {
			tu_fill(item, n, n * 100 + j);
			expect_item(&c.port[0], item, n);
		}
	for (size_t n = 1; n <= 20; n++)
		for (size_t m = 20; m >= 1; m--) {
			const void *got;
			size_t len;
			tu_fill(item, m, n * 1000 + m);
			assert_int_equal(ipc_next(&c.port[0], &got, &len), 0);
			assert_int_equal(len, m);
			assert_memory_equal(got, item, m);
			if (c.port[0].bi.width == 0) /* the padding after it */
				for (size_t z = m; z < ((m + 3) & ~(size_t)3); z++)
					assert_int_equal(((const char *)got)[z], 0);
		}
	const void *got;
	size_t len;
	assert_int_equal(ipc_next(&c.port[0], &got, &len), IPC_TX_EOF);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A steady stream that fills its batches by linger keeps batching: the
 * item after a batch the linger thread sent does not go out alone. */
static void test_items_steady_stream_keeps_lingering(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 16, true, 4096, 64);
	tk_open(&c, b, 16, false, 4096, 64);
	p.k.linger_ns = 50000000; /* 50 ms */
	uint64_t v[6] = {1, 2, 3, 4, 5, 6};
	for (int i = 0; i < 5; i++) /* the first at once, four in a batch */
		assert_int_equal(ipc_emit(&p.port[0], &v[i], 8), 0);
	for (int i = 0; i < 5; i++)
		expect_item(&c.port[0], &v[i], 8); /* the four: by the linger thread */
	/* a linger after the last batch opened, but that batch held four */
	assert_int_equal(ipc_emit(&p.port[0], &v[5], 8), 0);
	void *r = NULL;
	size_t n = 0;
	assert_int_equal(ipc_try_recv(&c.port[0], &r, &n), IPC_TX_RETRY);
	expect_item(&c.port[0], &v[5], 8); /* then within its linger */
	tk_close(&p);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A kernel's return flushes its open batch (EOF after the last item). */
static void test_items_eof_flushes(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct tk p, c;
	tk_open(&p, b, 11, true, 4096, 64);
	tk_open(&c, b, 11, false, 4096, 64);
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(ipc_emit(&p.port[0], &i, 8), 0);
	tk_close(&p);
	for (uint64_t i = 0; i < 3; i++)
		expect_item(&c.port[0], &i, 8);
	const void *item;
	size_t n;
	assert_int_equal(ipc_next(&c.port[0], &item, &n), IPC_TX_EOF);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct fast_src {
	struct tk *p;
	uint64_t count;
	size_t size;
};

static void *fast_source(void *arg)
{
	struct fast_src *s = arg;
	char item[256];
	for (uint64_t i = 0; i < s->count; i++) {
		tu_fill(item, s->size, i);
		CHECK_EQ(ipc_emit(&s->p->port[0], item, s->size), 0);
	}
	tk_close(s->p);
	return NULL;
}

/* A fast producer into a slow consumer in a buffer far smaller than the
 * stream, with a queue that could hold more than the buffer: ipc_emit
 * waits for memory instead of failing, and nothing is lost. */
static void test_items_memory_back_pressure(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 1u << 20);
	struct tk p, c;
	tk_open(&p, b, 13, true, 16384, 1024); /* 1024 x 16 KiB > 1 MiB */
	tk_open(&c, b, 13, false, 16384, 1024);
	struct fast_src s = {.p = &p, .count = 60000, .size = 200}; /* 12 MB */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fast_source, &s), 0);
	char want[256];
	for (uint64_t i = 0; i < s.count; i++) {
		const void *item;
		size_t n;
		assert_int_equal(ipc_next(&c.port[0], &item, &n), 0);
		assert_int_equal(n, s.size);
		tu_fill(want, n, i);
		assert_memory_equal(item, want, n);
		if (i % 2000 == 0) { /* a slow consumer */
			struct timespec d = {0, 2000000};
			nanosleep(&d, NULL);
		}
	}
	const void *item;
	size_t n;
	assert_int_equal(ipc_next(&c.port[0], &item, &n), IPC_TX_EOF);
	pthread_join(th, NULL);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A true deadlock: nobody will ever free (the consumer never reads). ipc_alloc
 * waits IPC_ALLOC_PATIENCE_MS (set to 2 s in main), then fails clearly. */
static void test_items_alloc_deadlock_is_a_clear_error(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 1u << 20);
	struct tk p, c;
	tk_open(&p, b, 15, true, 4096, 4096);
	tk_open(&c, b, 15, false, 4096, 4096);
	void *r;
	int sent = 0;
	uint64_t t0 = 0;
	errno = 0;
	for (;;) {
		uint64_t t = tu_now_ns();
		r = ipc_alloc(&p.port[0], 60000);
		if (!r) {
			t0 = t;
			break;
		}
		assert_int_equal(ipc_send(&p.port[0], r), 0);
		sent++;
	}
	assert_int_equal(errno, ENOMEM);
	assert_true(sent > 0);
	CHECK_MSG(tu_now_ns() - t0 >= 2000000000ull, "gave up after %llu ms",
	          (unsigned long long)((tu_now_ns() - t0) / 1000000));
	tk_close(&p);
	tk_close(&c);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ipc_record_trim: the latest record gives its tail back at once; an older
 * one leaves a filler the slab walk skips; a record of its own heap run
 * just shrinks. Stats come back to where they started. */
static void test_items_record_trim(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	struct ipc_buffer_stats s0, s1;
	struct ipc_tls *t = ipc_tls_open(b, 1), *u = ipc_tls_open(b, 2);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(u, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_buffer_stats(b, &s0), 0);

	char *a = ipc_record_alloc(t, 1000, 1), *c = ipc_record_alloc(t, 1000, 1);
	char *big = ipc_record_alloc(t, 200000, 1);
	assert_non_null(a);
	assert_non_null(c);
	assert_non_null(big);
	assert_int_equal(ipc_record_trim(t, a, 0), -EINVAL);
	assert_int_equal(ipc_record_trim(t, a, 1001), -EINVAL);
	assert_int_equal(ipc_record_trim(u, a, 10), -EINVAL); /* not u's slab */
	assert_int_equal(ipc_record_trim(t, a, 10), 0);  /* older: a filler */
	assert_int_equal(ipc_record_trim(t, c, 20), 0);  /* latest: given back */
	assert_int_equal(ipc_record_trim(t, big, 30), 0); /* its own run */
	assert_int_equal(ipc_record_size(a), 10);
	assert_int_equal(ipc_record_size(c), 20);
	assert_int_equal(ipc_record_size(big), 30);
	char *d = ipc_record_alloc(t, 16, 1);
	assert_ptr_equal(d, c + 32 + 16); /* c's tail reused */
	struct ipc_buffer_stats mid;
	assert_int_equal(ipc_buffer_stats(b, &mid), 0);
	assert_int_equal(mid.record_count - s0.record_count, 4);
	assert_int_equal(mid.records - s0.records, 10 + 20 + 30 + 16);
	void *recs[4] = {a, c, big, d};
	for (int i = 0; i < 4; i++) {
		void *r = recs[i];
		assert_int_equal(ipc_record_send(t, 1, &r), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(ipc_record_recv(u, 1, &r), 0);
		assert_ptr_equal(r, recs[i]);
		ipc_record_free(u, r);
	}
	ipc_tls_close(t);
	ipc_tls_close(u);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct freer {
	struct ipc_tls *t;
	void **recs;
	size_t n;
};

static void *free_later(void *arg)
{
	struct freer *f = arg;
	struct timespec d = {0, 50000000};
	nanosleep(&d, NULL);
	for (size_t i = 0; i < f->n; i++)
		ipc_record_free(f->t, f->recs[i]);
	return NULL;
}

/* ipc_record_alloc_wait: ENOMEM after the timeout while nobody frees; the
 * record as soon as another thread frees enough. */
static void test_items_record_alloc_wait(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 1u << 20);
	struct ipc_tls *t = ipc_tls_open(b, 1), *u = ipc_tls_open(b, 2);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	void *recs[64];
	size_t n = 0;
	while (n < 64 && (recs[n] = ipc_record_alloc(t, 100000, 1)))
		n++;
	assert_true(n > 0 && n < 64);
	uint64_t t0 = tu_now_ns();
	errno = 0;
	assert_null(ipc_record_alloc_wait(t, 100000, 1, 30));
	assert_int_equal(errno, ENOMEM);
	assert_true(tu_now_ns() - t0 >= 30000000ull);
	struct freer f = {u, recs, n};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, free_later, &f), 0);
	void *r = ipc_record_alloc_wait(t, 100000, 1, -1);
	assert_non_null(r);
	pthread_join(th, NULL);
	ipc_record_free(t, r);
	ipc_tls_close(t);
	ipc_tls_close(u);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_items_edges_round_trip),
		T(test_items_batch_zero_record_per_item),
		T(test_items_mixing_send_next_emit_recv),
		T(test_items_linger_flushes_slow_source),
		T(test_items_sparse_after_linger_goes_at_once),
		T(test_items_many),
		T(test_items_steady_stream_keeps_lingering),
		T(test_items_small_sizes),
		T(test_items_eof_flushes),
		T(test_items_memory_back_pressure),
		T(test_items_alloc_deadlock_is_a_clear_error),
		T(test_items_record_trim),
		T(test_items_record_alloc_wait),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	setenv("IPC_ALLOC_PATIENCE_MS", "2000", 1);
	return cmocka_run_group_tests_name("items", tests, NULL, NULL);
}

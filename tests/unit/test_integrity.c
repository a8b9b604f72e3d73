/*
 * Unit tests of libipc against corrupt shared memory: each test writes wrong
 * bytes into a live buffer (directly, or from a forked process, as a bug in
 * a peer would) and asserts that the victim gets an error on that call and
 * keeps working on what is intact, without crashing (run under ASan/UBSan
 * by make check) and without handing a block out twice.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h" /* to corrupt the shared layout on purpose */

#define FIX(state) ((struct tu_fix *)*(state))

static struct ipc_buffer *open_buf(const char *h)
{
	struct ipc_buffer *b = tu_open(h, 4u << 20);
	assert_non_null(b);
	return b;
}

static uint64_t recv_u64(struct ipc_tls *t, uint64_t id)
{
	uint64_t *r = NULL, v;
	assert_int_equal(ipc_record_recv_wait(t, id, (void **)&r, 2000), 0);
	v = *r;
	ipc_record_free(t, r);
	return v;
}

/* A channel on this TLS, both ends, still passing records. */
static void assert_channel_works(struct ipc_tls *t, uint64_t id)
{
	assert_int_equal(ipc_channel_add(t, id, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, id, IPC_CONSUMER), 0);
	for (uint64_t i = 0; i < 100; i++)
		tu_send_u64(t, id, i * 7);
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(recv_u64(t, id), i * 7);
	assert_int_equal(ipc_channel_close(t, id), 0);
}

static struct ipc__chan *chan_of(struct ipc_buffer *b, uint64_t id)
{
	assert_int_equal(ipc__lock_buf(b), 0);
	struct ipc__dirent *d = ipc__dir_find_locked(b, id);
	ipc__unlock_buf(b);
	assert_non_null(d);
	return (struct ipc__chan *)(b->base + d->off);
}

/* ---- the header's geometry ---------------------------------------------- */

static int open_child(void *arg)
{
	errno = 0;
	struct ipc_buffer *b = ipc_buffer_open(arg, NULL);
	if (b) {
		fprintf(stderr, "open of a buffer with a corrupt header succeeded\n");
		ipc_buffer_close(b, false);
		return 1;
	}
	return errno == EBADMSG || errno == EPROTO ? 0 : 2;
}

static void test_integrity_header_geometry_forged_ignored(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc__hdr *hd = b->hdr;
	struct ipc__hdr save = *hd;
	struct ipc_buffer_stats s;
	struct ipc_channel_info info[4];

	/* the directory's size, the tables' offsets, the counts */
	hd->dir_cap = 1u << 30;
	hd->tls_off = UINT64_C(1) << 50;
	hd->procs_off = 12345;
	hd->heap_off = hd->map_size - 8;
	hd->max_tls = 1u << 31;
	hd->max_procs = 99999;
	/* this process read them once, at open: it goes on as before */
	assert_channel_works(t, 1);
	struct ipc_tls *t2 = tu_tls(b, 2);
	assert_channel_works(t2, 2);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(ipc_channel_list(b, info, 4), 0);
	/* a new opener is refused */
	tu_wait_ok(tu_spawn(open_child, (void *)h), 10000);
	hd->dir_cap = save.dir_cap;
	hd->tls_off = save.tls_off;
	hd->procs_off = save.procs_off;
	hd->heap_off = save.heap_off;
	hd->max_tls = save.max_tls;
	hd->max_procs = save.max_procs;
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- the heap ------------------------------------------------------------ */

static void test_integrity_heap_forged_bitmap_no_overlap(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_buffer_stats s;
	const size_t big = 256u << 10;
	char *r[4];

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	r[0] = ipc_record_alloc(t, big, 1);
	assert_non_null(r[0]);
	memset(r[0], 0xaa, big);
	/* every leaf says it is free, and the leaves' order is garbage */
	struct ipc__leaf *lv = (struct ipc__leaf *)((char *)b->heap + 16);
	uint32_t *order = (uint32_t *)(lv + b->heap->nleaves);
	for (uint32_t i = 0; i < b->heap->nleaves; i++) {
		memset(lv[i].bits, 0, sizeof(lv[i].bits));
		lv[i].longest = lv[i].prefix = lv[i].suffix = IPC_LEAF_BLOCKS;
		order[i] = 0xdeadbeef;
	}
	b->heap->free_blocks = b->heap->nblocks;
	for (int i = 1; i < 4; i++) {
		r[i] = ipc_record_alloc(t, big, 1);
		assert_non_null(r[i]);
		memset(r[i], i, big);
	}
	/* the first record is intact: nothing was handed out twice */
	for (size_t k = 0; k < big; k++)
		if ((unsigned char)r[0][k] != 0xaa)
			fail_msg("byte %zu of the first record overwritten", k);
	/* a forged header is put back at the next lock */
	b->heap->nblocks = 7;
	b->heap->nleaves = 0xffffff;
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.record_count, 4);
	assert_int_equal(b->heap->nblocks, b->geo.nblocks);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ipc_record_release(t, r[i]), 0);
	assert_true(ipc__heap_valid(b->heap));
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- channels -------------------------------------------------------------- */

static int consumer_child(void *arg)
{
	const char *h = arg;
	struct ipc_buffer *b = ipc_buffer_open(h, NULL);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 9);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, 1, IPC_CONSUMER), -EBADMSG);
	/* what is intact still works */
	CHECK_EQ(ipc_channel_add(t, 2, IPC_PRODUCER), 0);
	CHECK_EQ(ipc_channel_add(t, 2, IPC_CONSUMER), 0);
	void *r = ipc_record_alloc(t, 8, 2);
	CHECK(r != NULL);
	CHECK_EQ(ipc_record_send(t, 2, &r), 0);
	CHECK_EQ(ipc_record_recv(t, 2, &r), 0);
	ipc_record_free(t, r);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_integrity_channel_mask_forged_ebadmsg(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_channel_info info[4];

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	tu_send_u64(t, 1, 42);
	struct ipc__chan *c = chan_of(b, 1);
	uint64_t mask = c->mask;
	c->mask = (UINT64_C(1) << 40) - 1; /* a ring far beyond its run */
	tu_wait_ok(tu_spawn(consumer_child, (void *)h), 10000);
	/* listed no more, and this producer's end (its own view) still sends */
	assert_int_equal(ipc_channel_list(b, info, 4), 0);
	tu_send_u64(t, 1, 43);
	c->mask = 3; /* a capacity beyond the ring */
	assert_int_equal(ipc_channel_list(b, info, 4), 0);
	c->mask = mask;
	assert_int_equal(ipc_channel_list(b, info, 4), 1);
	assert_int_equal(info[0].pending, 2);
	/* the consumer's mask is its own once attached */
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	c->mask = (UINT64_C(1) << 40) - 1;
	assert_int_equal(recv_u64(t, 1), 42);
	assert_int_equal(recv_u64(t, 1), 43);
	/* the close reports it and does not walk the ring with it */
	assert_int_equal(ipc_channel_close(t, 1), 0);
	c->mask = mask;
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_integrity_channel_indices_forged_no_crash(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_buffer_stats s0, s1;
	void *r;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	tu_send_u64(t, 1, 1);
	struct ipc__chan *c = chan_of(b, 1);
	/* tail far ahead, head behind: whoever walks [head, tail) stops */
	ipc__store_relaxed(&c->idx.tail, UINT64_C(1) << 62);
	ipc__store_relaxed(&c->idx.head, 5);
	/* a slot holding an offset into the header */
	ipc__store_relaxed(&c->ring[1], UINT64_C(64) | (UINT64_C(0) << 48));
	assert_int_equal(recv_u64(t, 1), 1);
	int rc = ipc_record_recv(t, 1, &r);
	assert_true(rc == IPC_TX_RETRY || rc == -EBADMSG);
	(void)ipc_channel_pending(t, 1);
	assert_int_equal(ipc_channel_close(t, 1), 0);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.record_count, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- the directory ------------------------------------------------------- */

static void test_integrity_forged_dirent_ebadmsg(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_channel_info info[8];
	void *seg;

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	void *rec = ipc_record_alloc(t, 100, 1); /* a slab */
	assert_non_null(rec);
	struct ipc__chan *c = chan_of(b, 1);
	uint64_t coff = ipc__off(b, c);
	uint64_t offs[] = {
		ipc__off(b, rec) - 16,            /* a record in a slab */
		coff + IPC_BLOCK,                 /* inside the channel's run */
		coff,                             /* the channel, under another id */
		b->map_size - 64,                 /* the last bytes of the mapping */
		b->geo.data_off - IPC_BLOCK,      /* the heap's metadata */
		UINT64_C(1) << 60,                /* nowhere */
	};
	assert_int_equal(ipc__lock_buf(b), 0);
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		assert_int_equal(ipc__dir_insert_locked(b, 100 + i, offs[i]), 0);
	ipc__unlock_buf(b);
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		assert_int_equal(ipc_channel_add(t, 100 + i, IPC_CONSUMER), -EBADMSG);
		assert_int_equal(ipc_segment_open(t, 100 + i, &seg), -EBADMSG);
		assert_int_equal(ipc_segment_add(t, 100 + i, 10, NULL, NULL), -EBADMSG);
		assert_false(ipc_channel_has_producer(t, 100 + i));
		assert_int_equal(ipc_channel_pending(t, 100 + i), 0);
	}
	/* the intact entry is still listed, the forged ones are not */
	assert_int_equal(ipc_channel_list(b, info, 8), 1);
	assert_int_equal(info[0].id, 1);
	ipc_record_free(t, rec);
	assert_channel_works(t, 2);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- slabs and records -------------------------------------------------- */

static void test_integrity_slab_walk_forged_sizes_no_crash(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_buffer_stats s;
	void *r[3];

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	for (int i = 0; i < 3; i++) {
		r[i] = ipc_record_alloc(t, 64, 1);
		assert_non_null(r[i]);
	}
	struct ipc__rec *hd = (struct ipc__rec *)r[1] - 1;
	struct ipc__slab *sl = ipc__block_ptr(b, ipc__load_relaxed(&hd->slab));
	/* a record whose size, with a matching check word, runs past its slab */
	uint64_t size = UINT64_C(1) << 30;
	ipc__store_relaxed(&hd->word, size | ((uint64_t)(b->proc + 1) << 48));
	ipc__store_relaxed(&hd->check, ipc__rec_check_word(size, ipc__load_relaxed(&hd->slab)));
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.record_count, 1); /* the walk stops at the bad one */
	assert_int_equal(ipc_record_size(r[1]), 0);
	assert_int_equal(ipc_record_release(t, r[1]), -EINVAL);
	/* a slab whose length is not its run's: skipped */
	uint32_t nb = sl->nblocks;
	sl->nblocks = 1u << 30;
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.record_count, 0);
	sl->nblocks = nb;
	ipc__store_relaxed(&hd->word, 64 | ((uint64_t)(b->proc + 1) << 48));
	ipc__store_relaxed(&hd->check, ipc__rec_check_word(64, ipc__load_relaxed(&hd->slab)));
	for (int i = 0; i < 3; i++)
		assert_int_equal(ipc_record_release(t, r[i]), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_integrity_record_size_forged_not_delivered(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	void *r, *got = NULL;

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	r = ipc_record_alloc(t, 64, 1);
	assert_non_null(r);
	struct ipc__rec *hd = (struct ipc__rec *)r - 1;
	assert_int_equal(ipc_record_send(t, 1, &r), 0);
	/* in flight, its size grows past its slab, check word and all */
	uint64_t size = 1u << 20;
	ipc__store_relaxed(&hd->word, size | ((uint64_t)(b->proc + 1) << 48));
	ipc__store_relaxed(&hd->check, ipc__rec_check_word(size, ipc__load_relaxed(&hd->slab)));
	assert_int_equal(ipc_record_recv(t, 1, &got), -EBADMSG);
	assert_null(got);
	tu_send_u64(t, 1, 5); /* the channel goes on */
	assert_int_equal(recv_u64(t, 1), 5);
	assert_int_equal(ipc_channel_close(t, 1), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* A record header forged in the 16 bytes just before a slab, naming that
 * slab, with a right check word: outside the slab, so not a record for the
 * receiver, ipc_record_size or a free (the receive path once let it pass:
 * its offset in the slab wrapped). And ipc_record_size of a record of a
 * second open buffer (not the first listed) still answers. */
static void test_integrity_record_before_its_slab_refused(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	void *got = NULL;

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	void *r = ipc_record_alloc(t, 64, 1);
	assert_non_null(r);
	uint32_t slab = ipc__load_relaxed(&((struct ipc__rec *)r - 1)->slab);
	assert_true(slab >= 1); /* the channel came first */
	char *sbase = ipc__block_ptr(b, slab);
	struct ipc__rec *f = (struct ipc__rec *)(void *)sbase - 1, save;
	memcpy(&save, f, sizeof(save)); /* the end of the run before: put back below */
	ipc__store_relaxed(&f->word, 8 | ((uint64_t)(b->proc + 1) << 48));
	ipc__store_relaxed(&f->slab, slab);
	ipc__store_relaxed(&f->check, ipc__rec_check_word(8, slab));
	void *p = f + 1;
	assert_int_equal(ipc_record_size(p), 0);
	assert_int_equal(ipc_record_release(t, p), -EINVAL);
	/* send looks only at its place and check word; the receiver refuses */
	void *q = p;
	assert_int_equal(ipc_record_send(t, 1, &q), 0);
	assert_int_equal(ipc_record_recv(t, 1, &got), -EBADMSG);
	assert_null(got);
	memcpy(f, &save, sizeof(save));
	tu_send_u64(t, 1, 9); /* the channel goes on */
	assert_int_equal(recv_u64(t, 1), 9);
	assert_int_equal(ipc_record_size(r), 64);

	char h2[TU_HANDLE_LEN];
	tu_handle(h2);
	struct ipc_buffer *b2 = open_buf(h2);
	struct ipc_tls *t2 = tu_tls(b2, 2);
	assert_int_equal(ipc_channel_add(t2, 1, IPC_PRODUCER), 0);
	void *r2 = ipc_record_alloc(t2, 48, 1);
	assert_non_null(r2);
	assert_int_equal(ipc_record_size(r2), 48);
	assert_int_equal(ipc_record_release(t2, r2), 0);
	assert_int_equal(ipc_record_size(r2), 0);
	assert_int_equal(ipc_channel_close(t2, 1), 0);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_close(b2, false), 0);
	tu_assert_clean(h2);

	assert_int_equal(ipc_record_release(t, r), 0);
	assert_int_equal(ipc_channel_close(t, 1), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_integrity_segment_size_forged_ebadmsg(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1), *t2 = tu_tls(b, 2);
	void *p;

	assert_int_equal(ipc_segment_add(t, 5, 100, NULL, NULL), 0);
	assert_int_equal(ipc_segment_open(t, 5, &p), 0);
	struct ipc__seg *s = (struct ipc__seg *)p - 1;
	s->size = UINT64_C(1) << 40;
	assert_int_equal(ipc_segment_open(t2, 5, &p), -EBADMSG);
	assert_int_equal(ipc_segment_add(t2, 5, 50, NULL, NULL), -EBADMSG);
	assert_int_equal(ipc_segment_size(t, 5), 100); /* as attached */
	s->size = 100;
	assert_int_equal(ipc_segment_open(t2, 5, &p), 0);
	ipc_tls_close(t2);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- thread slots -------------------------------------------------------- */

static void test_integrity_thread_slot_offsets_forged_no_crash(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_buffer_stats s0, s1;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	/* returned slabs that are none, pending frees in no slab */
	ipc__store_relaxed(&t->ts->returned, b->map_size - 8);
	ipc__store_relaxed(&t->ts->nreturned, 1);
	ipc__store_relaxed(&t->ts->pend_slab, UINT64_C(1) << 55);
	ipc__store_relaxed(&t->ts->pend_count, 3);
	assert_channel_works(t, 1);
	ipc_tls_close(t);
	/* a slab whose owner slot is out of range, emptied by a freer */
	t = tu_tls(b, 2);
	struct ipc_tls *t2 = tu_tls(b, 3);
	assert_int_equal(ipc_channel_add(t, 2, IPC_PRODUCER), 0);
	void *r = ipc_record_alloc(t, 64, 2);
	assert_non_null(r);
	struct ipc__slab *sl = ipc__block_ptr(b, ipc__load_relaxed(&((struct ipc__rec *)r - 1)->slab));
	sl->tslot = 1u << 30;
	ipc_tls_close(t); /* seals it */
	assert_int_equal(ipc_record_release(t2, r), 0);
	ipc_tls_close(t2);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- misuse: record states ---------------------------------------------- */

static void test_integrity_double_send_ealready_received_once(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	uint64_t *r, *copy, *got;

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	for (int size = 8; size <= 1 << 20; size <<= 6) { /* a slab's, and a run's */
		r = ipc_record_alloc(t, (size_t)size, 1);
		assert_non_null(r);
		*r = 77;
		copy = r;
		assert_int_equal(ipc_record_send(t, 1, (void **)&r), 0);
		assert_null(r);
		r = copy;
		assert_int_equal(ipc_record_send(t, 1, (void **)&r), -EALREADY);
		assert_ptr_equal(r, copy);
		/* free while queued: refused, the record stays queued */
		assert_int_equal(ipc_record_release(t, copy), -EALREADY);
		assert_int_equal(ipc_channel_pending(t, 1), 1);
		assert_int_equal(ipc_record_recv(t, 1, (void **)&got), 0);
		assert_ptr_equal(got, copy);
		assert_int_equal(*got, 77);
		assert_int_equal(ipc_record_recv(t, 1, (void **)&got), IPC_TX_RETRY);
		/* received, it is the receiver's: forwarding it is allowed */
		r = copy;
		assert_int_equal(ipc_record_send(t, 1, (void **)&r), 0);
		assert_int_equal(ipc_record_recv(t, 1, (void **)&got), 0);
		assert_int_equal(ipc_record_release(t, got), 0);
		/* send and free after free */
		r = copy;
		assert_int_equal(ipc_record_send(t, 1, (void **)&r), -EINVAL);
		assert_int_equal(ipc_record_release(t, copy), -EINVAL);
		assert_int_equal(ipc_channel_pending(t, 1), 0);
	}
	assert_int_equal(ipc_channel_close(t, 1), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct held {
	const char *h;
	int fd[2];
};

/* Receives one record and keeps it; a parent that sends it again is told. */
static int holder_child(void *arg)
{
	struct held *hd = arg;
	struct ipc_buffer *b = ipc_buffer_open(hd->h, NULL);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 9);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	void *r;
	CHECK_EQ(ipc_record_recv_wait(t, 1, &r, 5000), 0);
	tu_notify(hd->fd[1], 'r');
	CHECK_EQ(ipc_record_recv_wait(t, 1, &r, 300), IPC_TX_RETRY);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_integrity_send_of_received_record_einval(void **state)
{
	struct held hd = { .h = FIX(state)->handle };
	struct ipc_buffer *b = open_buf(hd.h);
	struct ipc_tls *t = tu_tls(b, 1);
	void *r, *copy;

	tu_pipe(hd.fd);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	pid_t pid = tu_spawn(holder_child, &hd);
	r = copy = ipc_record_alloc(t, 64, 1);
	assert_non_null(r);
	assert_int_equal(ipc_record_send(t, 1, &r), 0);
	assert_int_equal(tu_await(hd.fd[0], 5000), 'r');
	/* the child holds it now: a second send from here is refused */
	r = copy;
	assert_int_equal(ipc_record_send(t, 1, &r), -EINVAL);
	tu_wait_ok(pid, 10000);
	ipc_tls_close(t);
	close(hd.fd[0]);
	close(hd.fd[1]);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(hd.h);
}

/* ---- misuse: stale handles ------------------------------------------------ */

static void test_integrity_tls_after_close_ebadf(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1), *u = tu_tls(b, 2);
	void *r = NULL, *seg;

	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(u, 1, IPC_CONSUMER), 0);
	ipc_tls_close(t);
	/* every call through the closed handle: an error, no crash */
	errno = 0;
	assert_null(ipc_record_alloc(t, 8, 1));
	assert_int_equal(errno, EBADF);
	assert_int_equal(ipc_record_send(t, 1, &r), -EBADF);
	assert_int_equal(ipc_record_recv(t, 1, &r), -EBADF);
	assert_int_equal(ipc_record_send_wait(t, 1, &r, 10), -EBADF);
	assert_int_equal(ipc_record_recv_wait(t, 1, &r, 10), -EBADF);
	assert_int_equal(ipc_channel_add(t, 2, IPC_PRODUCER), -EBADF);
	assert_int_equal(ipc_channel_close(t, 1), -EBADF);
	assert_int_equal(ipc_channel_abort(t, 1), -EBADF);
	assert_int_equal(ipc_record_release(t, r), -EBADF);
	assert_int_equal(ipc_segment_add(t, 3, 10, NULL, NULL), -EBADF);
	assert_int_equal(ipc_segment_open(t, 3, &seg), -EBADF);
	assert_int_equal(ipc_segment_size(t, 3), 0);
	assert_false(ipc_channel_exists(t, 1, 0));
	assert_false(ipc_channel_has_producer(t, 1));
	assert_int_equal(ipc_channel_pending(t, 1), 0);
	ipc_tls_close(t); /* twice: reported, ignored */
	/* the consumer saw the producer's close */
	assert_int_equal(ipc_record_recv(u, 1, &r), IPC_TX_EOF);
	ipc_tls_close(u);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	/* the buffer after close */
	struct ipc_buffer_stats s;
	errno = 0;
	assert_null(ipc_tls_open(b, 3));
	assert_int_equal(errno, EBADF);
	assert_int_equal(ipc_buffer_stats(b, &s), -EBADF);
	assert_int_equal(ipc_buffer_reap(b), -EBADF);
	assert_false(ipc_buffer_has_channels(b));
	assert_int_equal(ipc_channel_list(b, NULL, 0), 0);
	assert_null(ipc_buffer_handle(b));
	assert_int_equal(ipc_buffer_close(b, false), -EBADF);
	assert_int_equal(ipc_buffer_close(NULL, false), -EINVAL);
	tu_assert_clean(h);
}

struct forked {
	struct ipc_buffer *b;
	struct ipc_tls *t;
};

/* Uses the parent's handles: refused, and nothing of the parent's moves. */
static int stale_child(void *arg)
{
	struct forked *f = arg;
	void *r = NULL;
	CHECK_EQ(ipc_record_recv(f->t, 1, &r), -ECHILD);
	CHECK_EQ(ipc_record_recv_wait(f->t, 1, &r, 50), -ECHILD);
	CHECK(r == NULL);
	errno = 0;
	CHECK(ipc_record_alloc(f->t, 8, 2) == NULL && errno == ECHILD);
	CHECK_EQ(ipc_channel_add(f->t, 9, IPC_PRODUCER), -ECHILD);
	CHECK(ipc_tls_open(f->b, 5) == NULL && errno == ECHILD);
	struct ipc_buffer_stats s;
	CHECK_EQ(ipc_buffer_stats(f->b, &s), -ECHILD);
	ipc_tls_close(f->t);                       /* only the child's copy */
	CHECK_EQ(ipc_buffer_close(f->b, true), 0); /* unmaps, nothing more */
	return 0;
}

static void test_integrity_forked_child_parent_handles_echild(void **state)
{
	const char *h = FIX(state)->handle;
	struct forked f = { .b = open_buf(h) };
	f.t = tu_tls(f.b, 1);

	assert_int_equal(ipc_channel_add(f.t, 1, IPC_PRODUCER), 0);
	assert_int_equal(ipc_channel_add(f.t, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_channel_add(f.t, 2, IPC_PRODUCER), 0);
	for (uint64_t i = 0; i < 10; i++)
		tu_send_u64(f.t, 1, i);
	tu_wait_ok(tu_spawn(stale_child, &f), 10000);
	/* the parent receives every record, in order */
	for (uint64_t i = 0; i < 10; i++)
		assert_int_equal(recv_u64(f.t, 1), i);
	assert_channel_works(f.t, 3);
	ipc_tls_close(f.t);
	assert_int_equal(ipc_buffer_close(f.b, false), 0);
	tu_assert_clean(h);
}

static void test_integrity_record_size_non_records_zero(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	_Alignas(16) char stack[64] = {0};
	char *heap = malloc(64);
	unsigned char *r;

	assert_non_null(heap);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	r = ipc_record_alloc(t, 100, 1);
	assert_non_null(r);
	assert_int_equal(ipc_record_size(r), 100);
	assert_int_equal(ipc_record_size(NULL), 0);
	assert_int_equal(ipc_record_size(stack + 16), 0);
	assert_int_equal(ipc_record_size(heap), 0);     /* would read 16 bytes before */
	assert_int_equal(ipc_record_size(r + 1), 0);    /* misaligned */
	assert_int_equal(ipc_record_size(r + 32), 0);   /* inside a record */
	assert_int_equal(ipc_record_size(b->base + 4096), 0); /* the tables */
	assert_int_equal(ipc_record_size(b->data), 0);  /* a slab header */
	assert_int_equal(ipc_record_size((void *)(uintptr_t)16), 0);
	assert_int_equal(ipc_record_release(t, r), 0);
	assert_int_equal(ipc_record_size(r), 0); /* freed */
	free(heap);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	assert_int_equal(ipc_record_size(r), 0); /* its buffer closed: not read */
	tu_assert_clean(h);
}

static void test_integrity_memfd_close_on_exec(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_opts o = { .size = 1u << 20, .shm = IPC_SHM_MEMFD };
	struct ipc_buffer *b = ipc_buffer_open(h, &o);

	assert_non_null(b);
	assert_int_equal(ipc_buffer_shm_kind(b), IPC_SHM_MEMFD);
	assert_true(b->shm.fd >= 0);
	int fl = fcntl(b->shm.fd, F_GETFD);
	assert_true(fl >= 0 && (fl & FD_CLOEXEC));
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static int other_backend_child(void *arg)
{
	const char *h = arg;
	/* ask for the backend the parent did not use */
	const char *env = getenv("IPC_SHM");
	struct ipc_buffer_opts o = { .size = 2u << 20 };
	o.shm = env && !strcmp(env, "sysv") ? IPC_SHM_POSIX : IPC_SHM_SYSV;
	struct ipc_buffer *b = ipc_buffer_open(h, &o);
	CHECK(b != NULL);
	CHECK(ipc_buffer_shm_kind(b) != o.shm); /* attached to the parent's */
	struct ipc_tls *t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK(ipc_channel_exists(t, 7, 0));
	CHECK_EQ(ipc_channel_add(t, 7, IPC_CONSUMER), 0);
	void *r;
	CHECK_EQ(ipc_record_recv_wait(t, 7, &r, 5000), 0);
	CHECK_EQ(*(uint64_t *)r, 99);
	ipc_record_free(t, r);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_integrity_two_backends_one_buffer(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);

	assert_int_equal(ipc_channel_add(t, 7, IPC_PRODUCER), 0);
	tu_send_u64(t, 7, 99);
	tu_wait_ok(tu_spawn(other_backend_child, (void *)h), 10000);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- nothing grows or leaks ------------------------------------------------ */

static int holding_child(void *arg)
{
	const char *h = arg;
	struct ipc_buffer *b = ipc_buffer_open(h, NULL);
	CHECK(b != NULL);
	struct ipc_tls *t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	CHECK_EQ(ipc_channel_add(t, 2, IPC_CONSUMER), 0);
	for (int i = 0; i < 50; i++) /* allocated, never sent nor freed */
		CHECK(ipc_record_alloc(t, i % 2 ? 64 : 100000, 1) != NULL);
	void *r;
	for (int i = 0; i < 5; i++) /* received, never freed */
		CHECK_EQ(ipc_record_recv_wait(t, 2, &r, 5000), 0);
	for (int i = 0; i < 3; i++) { /* sent, still queued: the channel's */
		r = ipc_record_alloc(t, 64, 1);
		CHECK(r != NULL);
		CHECK_EQ(ipc_record_send(t, 1, &r), 0);
	}
	ipc_tls_close(t); /* the records stay the process's */
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_integrity_clean_close_gives_records_back(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	struct ipc_buffer_stats s0, s1;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	assert_int_equal(ipc_channel_add(t, 2, IPC_PRODUCER), 0);
	for (uint64_t i = 0; i < 5; i++)
		tu_send_u64(t, 2, i);
	tu_wait_ok(tu_spawn(holding_child, (void *)h), 10000);
	/* the queued ones are still delivered */
	for (uint64_t i = 0; i < 3; i++) {
		void *r;
		assert_int_equal(ipc_record_recv(t, 1, &r), 0);
		ipc_record_free(t, r);
	}
	void *r;
	assert_int_equal(ipc_record_recv(t, 1, &r), IPC_TX_EOF);
	assert_int_equal(ipc_channel_close(t, 1), 0);
	assert_int_equal(ipc_channel_close(t, 2), 0);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.record_count, 0);
	assert_int_equal(s1.channels, 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.free, s0.free);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

static void test_integrity_end_table_reused_no_growth(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_buf(h);
	struct ipc_tls *t = tu_tls(b, 1);
	/* 10^6 as the issue measured; fewer under ASan and valgrind (slow) */
	const char *pre = getenv("LD_PRELOAD");
	bool slow = TU_SANITIZED || (pre && strstr(pre, "vgpreload"));
	const uint64_t cycles = tu_arg("cycles", slow ? 50000 : 1000000);
	struct ipc_buffer_stats s0, s1;

	assert_int_equal(ipc_buffer_stats(b, &s0), 0);
	/* a few ends that stay, and one that comes and goes */
	for (uint64_t id = 1; id <= 5; id++)
		assert_int_equal(ipc_channel_add(t, id, IPC_PRODUCER), 0);
	uint32_t cap = 0;
	for (uint64_t i = 0; i < cycles; i++) {
		uint64_t id = 100 + i;
		assert_int_equal(ipc_channel_add(t, id, IPC_PRODUCER), 0);
		assert_int_equal(ipc_channel_add(t, id, IPC_CONSUMER), 0);
		assert_int_equal(ipc_channel_close(t, id), 0);
		if (i == 1000)
			cap = t->ends_cap;
	}
	fprintf(stderr, "# %llu add/close cycles: end table of %u slots (%u after 1000)\n",
	        (unsigned long long)cycles, t->ends_cap, cap);
	assert_int_equal(t->ends_cap, cap);
	assert_true(t->ends_cap <= 64);
	for (uint64_t id = 1; id <= 5; id++)
		assert_int_equal(ipc_channel_close(t, id), 0);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	assert_int_equal(s1.channels, 5); /* producers without consumers stay */
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_integrity_header_geometry_forged_ignored),
		T(test_integrity_heap_forged_bitmap_no_overlap),
		T(test_integrity_channel_mask_forged_ebadmsg),
		T(test_integrity_channel_indices_forged_no_crash),
		T(test_integrity_forged_dirent_ebadmsg),
		T(test_integrity_slab_walk_forged_sizes_no_crash),
		T(test_integrity_record_size_forged_not_delivered),
		T(test_integrity_record_before_its_slab_refused),
		T(test_integrity_segment_size_forged_ebadmsg),
		T(test_integrity_thread_slot_offsets_forged_no_crash),
		T(test_integrity_double_send_ealready_received_once),
		T(test_integrity_send_of_received_record_einval),
		T(test_integrity_tls_after_close_ebadf),
		T(test_integrity_forked_child_parent_handles_echild),
		T(test_integrity_record_size_non_records_zero),
		T(test_integrity_memfd_close_on_exec),
		T(test_integrity_two_backends_one_buffer),
		T(test_integrity_clean_close_gives_records_back),
		T(test_integrity_end_table_reused_no_growth),
	};

	tu_init(argc, argv);
	tu_watchdog(120);
	return cmocka_run_group_tests_name("integrity", tests, NULL, NULL);
}

/*
 * Unit tests of the priority heap (runtime/lib/heap.h) on private memory:
 * the bitmap helpers against a naive reference, exhausting and returning
 * everything, runs spanning leaves, bad frees, and long random sequences
 * checked against a shadow map of who owns each block, with
 * ipc__heap_valid() after every operation.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

/* ---- reference bit helpers ---------------------------------------------- */

static bool ref_bit(const uint64_t *w, uint32_t i)
{
	return (w[i / 64] >> (i % 64)) & 1u;
}

static void set_bit(uint64_t *w, uint32_t i, bool v)
{
	if (v)
		w[i / 64] |= 1ull << (i % 64);
	else
		w[i / 64] &= ~(1ull << (i % 64));
}

static uint32_t ref_longest(const uint64_t *w, uint32_t nbits, uint32_t *pre,
                            uint32_t *suf)
{
	uint32_t best = 0, cur = 0, i;

	for (i = 0; i < nbits; i++) {
		cur = ref_bit(w, i) ? 0 : cur + 1;
		if (cur > best)
			best = cur;
	}
	for (i = 0; i < nbits && !ref_bit(w, i); i++)
		;
	*pre = i;
	for (i = 0; i < nbits && !ref_bit(w, nbits - 1 - i); i++)
		;
	*suf = i;
	return best;
}

static int64_t ref_find(const uint64_t *w, uint32_t nbits, uint32_t n)
{
	uint32_t cur = 0;

	for (uint32_t i = 0; i < nbits; i++) {
		cur = ref_bit(w, i) ? 0 : cur + 1;
		if (cur == n)
			return (int64_t)(i + 1 - n);
	}
	return -1;
}

static void check_bits(const uint64_t *w, uint32_t nbits)
{
	uint32_t p = 0xdead, s = 0xbeef, rp, rs;
	uint32_t got = ipc__bits_longest_zero(w, nbits, &p, &s);
	uint32_t want = ref_longest(w, nbits, &rp, &rs);

	assert_int_equal(got, want);
	assert_int_equal(p, rp);
	assert_int_equal(s, rs);
	/* every n around the interesting values */
	for (uint32_t n = 1; n <= nbits; n++) {
		if (n > 4 && n + 4 < want && n % 17 != 0)
			continue;
		assert_int_equal(ipc__bits_find_zero_run(w, nbits, n),
		                 ref_find(w, nbits, n));
	}
}

static void test_heap_bits_all_zero_whole_range(void **state)
{
	uint64_t w[8] = { 0 };

	(void)state;
	check_bits(w, 512);
	check_bits(w, 64);
	check_bits(w, 1);
	check_bits(w, 200);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 512), 0);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 513), -1);
}

static void test_heap_bits_all_ones_no_run(void **state)
{
	uint64_t w[8];
	uint32_t p, s;

	(void)state;
	memset(w, 0xff, sizeof(w));
	assert_int_equal(ipc__bits_longest_zero(w, 512, &p, &s), 0);
	assert_int_equal(p, 0);
	assert_int_equal(s, 0);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 1), -1);
}

static void test_heap_bits_run_across_words_found(void **state)
{
	uint64_t w[8];

	(void)state;
	memset(w, 0xff, sizeof(w));
	for (uint32_t i = 60; i < 70; i++) /* straddles words 0 and 1 */
		set_bit(w, i, false);
	check_bits(w, 512);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 10), 60);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 11), -1);
	/* a run ending exactly on bit 63 and one starting at bit 64 */
	memset(w, 0xff, sizeof(w));
	set_bit(w, 63, false);
	set_bit(w, 64, false);
	check_bits(w, 512);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 2), 63);
}

static void test_heap_bits_whole_zero_words_counted(void **state)
{
	uint64_t w[8];

	(void)state;
	memset(w, 0xff, sizeof(w));
	w[2] = w[3] = w[4] = 0; /* 192 zeros */
	set_bit(w, 127, false); /* plus one before */
	check_bits(w, 512);
	assert_int_equal(ipc__bits_find_zero_run(w, 512, 193), 127);
	/* the zero run at the end and the start */
	memset(w, 0, sizeof(w));
	w[3] = ~0ull;
	check_bits(w, 512);
	/* top bit of the last word only */
	memset(w, 0xff, sizeof(w));
	set_bit(w, 511, false);
	check_bits(w, 512);
}

static void test_heap_bits_random_match_reference(void **state)
{
	uint64_t rng = tu_seed();
	uint64_t w[8];

	(void)state;
	for (int round = 0; round < 3000; round++) {
		uint32_t nbits = (uint32_t)tu_rand_range(&rng, 1, 512);
		unsigned density = (unsigned)tu_rand_range(&rng, 0, 100);

		for (int k = 0; k < 8; k++)
			w[k] = tu_rand(&rng);
		for (uint32_t i = 0; i < 512; i++)
			set_bit(w, i, tu_rand_range(&rng, 0, 99) < density);
		/* long zero stretches so runs across words are common */
		if (round % 3 == 0) {
			uint32_t a = (uint32_t)tu_rand_range(&rng, 0, 511);
			uint32_t b = (uint32_t)tu_rand_range(&rng, a, 511);
			for (uint32_t i = a; i <= b; i++)
				set_bit(w, i, false);
		}
		check_bits(w, nbits);
	}
}

/* ---- heap on private memory ---------------------------------------------- */

struct hp {
	struct ipc__heap *h;
	uint32_t n;
	uint32_t *owner; /* shadow: 0 free, else allocation id */
	uint32_t *len;   /* shadow: run length at a run's first block */
};

static void hp_new(struct hp *p, uint32_t nblocks)
{
	size_t sz = ipc__heap_meta_size(nblocks);

	assert_true(sz > 0);
	p->h = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	assert_non_null(p->h);
	memset(p->h, 0xa5, sz); /* init must not rely on zeroed memory */
	ipc__heap_init(p->h, nblocks);
	p->n = nblocks;
	p->owner = calloc(nblocks, sizeof(uint32_t));
	p->len = calloc(nblocks, sizeof(uint32_t));
	assert_non_null(p->owner);
	assert_non_null(p->len);
	assert_true(ipc__heap_valid(p->h));
	assert_int_equal(p->h->free_blocks, nblocks);
	assert_int_equal(p->h->nblocks, nblocks);
}

static void hp_del(struct hp *p)
{
	free(p->h);
	free(p->owner);
	free(p->len);
}

/* Longest run of free blocks in the shadow, over the whole heap. */
static uint32_t hp_ref_longest(const struct hp *p)
{
	uint32_t best = 0, cur = 0;

	for (uint32_t i = 0; i < p->n; i++) {
		cur = p->owner[i] ? 0 : cur + 1;
		if (cur > best)
			best = cur;
	}
	return best;
}

/* Can a run of n blocks be found anywhere (runs may span leaves whatever
 * their length: the heap fails only when no run of n free blocks exists). */
static bool hp_ref_fits(const struct hp *p, uint32_t n)
{
	uint32_t cur = 0;

	for (uint32_t i = 0; i < p->n; i++) {
		cur = p->owner[i] ? 0 : cur + 1;
		if (cur >= n)
			return true;
	}
	return false;
}

static int64_t hp_alloc(struct hp *p, uint32_t n, uint32_t id)
{
	bool fits = hp_ref_fits(p, n);
	uint32_t free_before = p->h->free_blocks;
	int64_t b = ipc__heap_alloc(p->h, n, IPC__BLK_RECORD, (uint16_t)(id & 0x7fff));

	assert_true(ipc__heap_valid(p->h));
	if (b < 0) {
		assert_int_equal(b, -ENOMEM);
		assert_false(fits);
		assert_int_equal(p->h->free_blocks, free_before);
		return b;
	}
	assert_true((uint64_t)b + n <= p->n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(p->owner[b + i], 0);
		p->owner[b + i] = id;
	}
	p->len[b] = n;
	assert_int_equal(p->h->free_blocks, free_before - n);
	{
		struct ipc__blk *k = ipc__heap_blk(p->h, (uint32_t)b);
		assert_non_null(k);
		assert_int_equal(k->len, n);
		assert_int_equal(k->kind, IPC__BLK_RECORD);
		assert_int_equal(k->owner, id & 0x7fff);
		if (n > 1) {
			k = ipc__heap_blk(p->h, (uint32_t)b + 1);
			assert_non_null(k);
			assert_int_equal(k->len, 0);
		}
	}
	return b;
}

static void hp_free(struct hp *p, uint32_t b)
{
	uint32_t n = p->len[b];
	uint32_t free_before = p->h->free_blocks;

	assert_true(n > 0);
	assert_int_equal(ipc__heap_free(p->h, b), 0);
	assert_true(ipc__heap_valid(p->h));
	for (uint32_t i = 0; i < n; i++)
		p->owner[b + i] = 0;
	p->len[b] = 0;
	assert_int_equal(p->h->free_blocks, free_before + n);
}

static void test_heap_init_empty_all_free(void **state)
{
	struct hp p;

	(void)state;
	hp_new(&p, 8 * IPC_LEAF_BLOCKS);
	assert_int_equal(ipc__heap_longest(p.h), 8 * IPC_LEAF_BLOCKS);
	assert_null(ipc__heap_blk(p.h, 8 * IPC_LEAF_BLOCKS));
	assert_non_null(ipc__heap_blk(p.h, 8 * IPC_LEAF_BLOCKS - 1));
	hp_del(&p);
}

static void test_heap_bad_args_einval(void **state)
{
	struct hp p;

	(void)state;
	hp_new(&p, 2 * IPC_LEAF_BLOCKS);
	assert_int_equal(ipc__heap_alloc(p.h, 0, IPC__BLK_RECORD, 0), -EINVAL);
	{
		int64_t r = ipc__heap_alloc(p.h, 2 * IPC_LEAF_BLOCKS + 1,
		                            IPC__BLK_RECORD, 0);
		assert_true(r == -ENOMEM || r == -EINVAL);
	}
	assert_int_equal(ipc__heap_free(p.h, 0), -EINVAL);       /* never allocated */
	assert_int_equal(ipc__heap_free(p.h, 2 * IPC_LEAF_BLOCKS), -EINVAL);
	assert_int_equal(ipc__heap_free(p.h, UINT32_MAX), -EINVAL);
	assert_int_equal(p.h->free_blocks, 2 * IPC_LEAF_BLOCKS);
	assert_true(ipc__heap_valid(p.h));
	hp_del(&p);
}

static void test_heap_double_free_einval(void **state)
{
	struct hp p;
	int64_t a, b;

	(void)state;
	hp_new(&p, 2 * IPC_LEAF_BLOCKS);
	a = hp_alloc(&p, 5, 1);
	b = hp_alloc(&p, 3, 2);
	assert_true(a >= 0 && b >= 0);
	/* a pointer into the middle of a run is not a run */
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)a + 2), -EINVAL);
	hp_free(&p, (uint32_t)a);
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)a), -EINVAL);
	assert_true(ipc__heap_valid(p.h));
	/* b is untouched by the bad frees */
	assert_int_equal(ipc__heap_blk(p.h, (uint32_t)b)->len, 3);
	hp_free(&p, (uint32_t)b);
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)b), -EINVAL);
	assert_int_equal(p.h->free_blocks, 2 * IPC_LEAF_BLOCKS);
	hp_del(&p);
}

static void exhaust_and_return(uint32_t nblocks, uint64_t seed)
{
	struct hp p;
	uint32_t *blocks, count = 0;
	uint64_t rng = seed;

	hp_new(&p, nblocks);
	blocks = calloc(nblocks, sizeof(*blocks));
	assert_non_null(blocks);
	for (;;) {
		int64_t b = hp_alloc(&p, 1, count + 1);
		if (b < 0)
			break;
		blocks[count++] = (uint32_t)b;
	}
	assert_int_equal(count, nblocks);
	assert_int_equal(p.h->free_blocks, 0);
	assert_int_equal(ipc__heap_longest(p.h), 0);
	/* give everything back in random order */
	for (uint32_t i = count; i > 1; i--) {
		uint32_t j = (uint32_t)tu_rand_range(&rng, 0, i - 1);
		uint32_t t = blocks[i - 1];
		blocks[i - 1] = blocks[j];
		blocks[j] = t;
	}
	for (uint32_t i = 0; i < count; i++)
		hp_free(&p, blocks[i]);
	assert_int_equal(p.h->free_blocks, nblocks);
	assert_int_equal(ipc__heap_longest(p.h), nblocks);
	/* everything coalesced: the whole heap is one run again */
	{
		int64_t b = hp_alloc(&p, nblocks, 7);
		assert_int_equal(b, 0);
		assert_int_equal(p.h->free_blocks, 0);
		hp_free(&p, 0);
	}
	free(blocks);
	hp_del(&p);
}

static void test_heap_exhaust_single_blocks_all_returned(void **state)
{
	(void)state;
	exhaust_and_return(4 * IPC_LEAF_BLOCKS, tu_seed());
}

static void test_heap_partial_last_leaf_exact_capacity(void **state)
{
	(void)state;
	exhaust_and_return(IPC_LEAF_BLOCKS + 37, tu_seed() + 1);
	exhaust_and_return(100, tu_seed() + 2);
}

static void test_heap_exhaust_mixed_sizes_all_returned(void **state)
{
	struct hp p;
	uint64_t rng = tu_seed() ^ 0x55;
	uint32_t starts[4096], count = 0;
	const uint32_t nb = 8 * IPC_LEAF_BLOCKS;

	(void)state;
	hp_new(&p, nb);
	/* sizes that do not divide a leaf, until nothing of that size fits */
	for (uint32_t n = 37; n >= 1; n = n > 1 ? n / 2 : 0) {
		int64_t b;
		while ((b = hp_alloc(&p, n, count + 1)) >= 0)
			starts[count++] = (uint32_t)b;
		if (n == 1)
			break;
	}
	assert_int_equal(p.h->free_blocks, 0);
	while (count > 0) {
		uint32_t j = (uint32_t)tu_rand_range(&rng, 0, count - 1);
		hp_free(&p, starts[j]);
		starts[j] = starts[--count];
	}
	assert_int_equal(p.h->free_blocks, nb);
	assert_int_equal(ipc__heap_longest(p.h), nb);
	hp_del(&p);
}

static void test_heap_large_run_spans_leaves(void **state)
{
	struct hp p;
	const uint32_t nb = 8 * IPC_LEAF_BLOCKS; /* 16 MiB of 4 KiB blocks */
	int64_t a, b, c, s;

	(void)state;
	hp_new(&p, nb);
	/* > 2 MiB: more than one leaf */
	a = hp_alloc(&p, IPC_LEAF_BLOCKS + 1, 1);
	assert_true(a >= 0);
	b = hp_alloc(&p, 3 * IPC_LEAF_BLOCKS + 7, 2);
	assert_true(b >= 0);
	c = hp_alloc(&p, 5, 3);
	assert_true(c >= 0);
	assert_int_equal(ipc__heap_longest(p.h), hp_ref_longest(&p));
	hp_free(&p, (uint32_t)b);
	assert_int_equal(ipc__heap_longest(p.h), hp_ref_longest(&p));
	/* the freed span is whole again and can be taken in one run */
	s = hp_alloc(&p, 3 * IPC_LEAF_BLOCKS + 7, 4);
	assert_true(s >= 0);
	hp_free(&p, (uint32_t)s);
	hp_free(&p, (uint32_t)a);
	hp_free(&p, (uint32_t)c);
	/* the largest possible run: the whole heap */
	s = hp_alloc(&p, nb, 5);
	assert_int_equal(s, 0);
	hp_free(&p, 0);
	/* a run spanning leaves needs free edges: pin the middle block of
	 * each leaf and no run longer than a leaf fits */
	for (uint32_t i = 0; i < nb; i++)
		assert_true(hp_alloc(&p, 1, 100) >= 0);
	for (uint32_t i = 0; i < nb; i++) {
		if (i % IPC_LEAF_BLOCKS != IPC_LEAF_BLOCKS / 2)
			hp_free(&p, i);
	}
	/* free runs of 511 blocks across each leaf edge, 256 inside one */
	assert_int_equal(hp_ref_longest(&p), IPC_LEAF_BLOCKS - 1);
	assert_int_equal(ipc__heap_longest(p.h), IPC_LEAF_BLOCKS - 1);
	assert_true(hp_alloc(&p, IPC_LEAF_BLOCKS + 1, 9) < 0);
	assert_true(hp_alloc(&p, IPC_LEAF_BLOCKS, 9) < 0);
	assert_true((s = hp_alloc(&p, IPC_LEAF_BLOCKS / 2, 9)) >= 0);
	hp_free(&p, (uint32_t)s);
	for (uint32_t i = 0; i < p.n; i++) {
		if (p.len[i])
			hp_free(&p, i);
	}
	assert_int_equal(p.h->free_blocks, nb);
	hp_del(&p);
}

/* Runs of one length up to a quarter of the heap, taken until it is
 * exhausted, cover at least 85 % of it, whatever the length: a run of 257 blocks crosses leaf edges
 * rather than taking one 512-block leaf each. */
static void test_heap_fill_every_length_at_least_85_percent(void **state)
{
	struct hp p;
	const uint32_t nb = 8 * IPC_LEAF_BLOCKS; /* 16 MiB of 4 KiB blocks */
	uint32_t lens[128], nl = 0;

	(void)state;
	for (uint32_t v = 1; v <= nb / 4; v <<= 1) {
		lens[nl++] = v;
		if (v < nb / 4)
			lens[nl++] = v + 1;
		if (v > 2)
			lens[nl++] = v - 1;
	}
	lens[nl++] = IPC_LEAF_BLOCKS / 2 + 1;
	lens[nl++] = IPC_LEAF_BLOCKS / 3 + 1;
	hp_new(&p, nb);
	for (uint32_t i = 0; i < nl; i++) {
		uint32_t count = 0;
		int64_t b;
		/* not through hp_alloc: its full check after every run is slow
		 * under valgrind; the heap is checked once per length instead */
		while ((b = ipc__heap_alloc(p.h, lens[i], IPC__BLK_RECORD, 1)) >= 0) {
			p.len[b] = lens[i];
			count++;
		}
		assert_int_equal(b, -ENOMEM);
		assert_true(ipc__heap_valid(p.h));
		double fill = (double)count * lens[i] / nb;
		if (fill < 0.85)
			fail_msg("runs of %u blocks fill %.1f %% of the heap", lens[i], 100 * fill);
		/* equal runs pack end to end: only the tail is left */
		assert_int_equal(count, nb / lens[i]);
		for (uint32_t k = 0; k < p.n; k++) {
			if (p.len[k]) {
				assert_int_equal(ipc__heap_free(p.h, k), 0);
				p.len[k] = 0;
			}
		}
		assert_int_equal(p.h->free_blocks, nb);
		assert_true(ipc__heap_valid(p.h));
	}
	hp_del(&p);
}

static void test_heap_random_ops_stay_valid(void **state)
{
	struct hp p;
	uint64_t rng = tu_seed() ^ 0x1234;
	const uint32_t nb = 16 * IPC_LEAF_BLOCKS + 100;
	uint32_t live[8192], nlive = 0, id = 1;
	unsigned ops = (unsigned)tu_arg("heap_ops", 10000);

	(void)state;
	hp_new(&p, nb);
	for (unsigned op = 0; op < ops; op++) {
		bool do_alloc = nlive == 0 ||
		                (nlive < 8192 && tu_rand_range(&rng, 0, 99) < 55);
		if (do_alloc) {
			uint32_t n, r = (uint32_t)tu_rand_range(&rng, 0, 99);
			int64_t b;
			if (r < 60)
				n = (uint32_t)tu_rand_range(&rng, 1, 8);
			else if (r < 90)
				n = (uint32_t)tu_rand_range(&rng, 9, IPC_LEAF_BLOCKS);
			else
				n = (uint32_t)tu_rand_range(&rng, IPC_LEAF_BLOCKS + 1,
				                            4 * IPC_LEAF_BLOCKS);
			b = hp_alloc(&p, n, id++);
			if (b >= 0)
				live[nlive++] = (uint32_t)b;
		} else {
			uint32_t j = (uint32_t)tu_rand_range(&rng, 0, nlive - 1);
			hp_free(&p, live[j]);
			live[j] = live[--nlive];
		}
		if (op % 64 == 0)
			assert_int_equal(ipc__heap_longest(p.h), hp_ref_longest(&p));
	}
	while (nlive > 0)
		hp_free(&p, live[--nlive]);
	assert_int_equal(p.h->free_blocks, nb);
	assert_int_equal(ipc__heap_longest(p.h), nb);
	hp_del(&p);
}

/* A holder of the lock that dies mid-operation leaves a free half done (a
 * run whose bits are cleared) or an allocation half done (bits set with no
 * run): repair drops the one and clears the other, keeps every whole run,
 * and restores every invariant. */
static void test_heap_repair_after_half_done_ops_valid(void **state)
{
	const uint32_t nb = 3000;
	struct hp p;
	int64_t held[512];
	uint32_t nheld = 0, slab_blocks = 0;
	uint64_t rng = tu_seed();

	(void)state;
	hp_new(&p, nb);
	for (int i = 0; i < 300; i++) {
		uint32_t n = (uint32_t)tu_rand_range(&rng, 1, 40);
		enum ipc__blk_kind kind = i % 3 ? IPC__BLK_RECORD : IPC__BLK_SLAB;
		if (p.h->free_blocks < 100) /* room for the half-done one below */
			break;
		int64_t b = ipc__heap_alloc(p.h, n, kind, 1);
		assert_true(b >= 0);
		held[nheld++] = b;
		if (kind == IPC__BLK_SLAB)
			slab_blocks += n;
	}
	/* a free half done: its run entries cleared, its bits still set */
	int64_t victim = held[--nheld];
	struct ipc__blk save = *ipc__heap_blk(p.h, (uint32_t)victim);
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)victim), 0);
	for (uint32_t j = 0; j < save.len; j++) { /* the bits as they were */
		uint32_t b = (uint32_t)victim + j;
		struct ipc__leaf *lf = (struct ipc__leaf *)((char *)p.h + 16) + b / IPC_LEAF_BLOCKS;
		lf->bits[(b % IPC_LEAF_BLOCKS) / 64] |= 1ull << (b % 64);
	}
	if (save.kind == IPC__BLK_SLAB)
		slab_blocks -= save.len;
	/* an allocation half done: its run recorded, only some bits set:
	 * dropped after a death (nobody got it), kept after corruption */
	int64_t stray = ipc__heap_alloc(p.h, 7, IPC__BLK_RECORD, 1);
	assert_true(stray >= 0);
	{
		uint32_t b = (uint32_t)stray + 3;
		struct ipc__leaf *lf = (struct ipc__leaf *)((char *)p.h + 16) + b / IPC_LEAF_BLOCKS;
		lf->bits[(b % IPC_LEAF_BLOCKS) / 64] &= ~(1ull << (b % 64));
	}
	assert_false(ipc__heap_valid(p.h));
	uint8_t *copy = malloc(ipc__heap_meta_size(nb));
	assert_non_null(copy);
	memcpy(copy, p.h, ipc__heap_meta_size(nb));
	assert_int_equal(ipc__heap_repair(p.h, false), slab_blocks);
	assert_true(ipc__heap_valid(p.h));
	assert_int_equal(ipc__heap_blk(p.h, (uint32_t)stray)->len, 7);
	memcpy(p.h, copy, ipc__heap_meta_size(nb));
	free(copy);

	assert_int_equal(ipc__heap_repair(p.h, true), slab_blocks);
	assert_int_equal(ipc__heap_blk(p.h, (uint32_t)stray)->len, 0);
	assert_true(ipc__heap_valid(p.h));
	for (uint32_t i = 0; i < nheld; i++)
		assert_int_equal(ipc__heap_free(p.h, (uint32_t)held[i]), 0);
	assert_int_equal(p.h->free_blocks, nb);
	assert_true(ipc__heap_valid(p.h));
	assert_int_equal(ipc__heap_longest(p.h), nb);
	hp_del(&p);
}

/* Forged bitmap, leaf figures, order and header: the heap never hands a
 * block out twice, never reads out of bounds, and is whole again after. */
static void test_heap_forged_index_no_overlap_rebuilt(void **state)
{
	struct hp p;
	const uint32_t nb = 4 * IPC_LEAF_BLOCKS;
	struct ipc__leaf *lf;
	uint32_t *ord;
	int64_t a, b;

	(void)state;
	hp_new(&p, nb);
	lf = (struct ipc__leaf *)((char *)p.h + 16);
	ord = (uint32_t *)(lf + 4);
	a = ipc__heap_alloc(p.h, 300, IPC__BLK_RECORD, 1);
	assert_int_equal(a, 0);
	/* the bitmap says the run is free */
	memset(lf[0].bits, 0, sizeof(lf[0].bits));
	lf[0].longest = lf[0].prefix = IPC_LEAF_BLOCKS;
	b = ipc__heap_alloc(p.h, 10, IPC__BLK_RECORD, 2);
	assert_true(b >= 300);
	assert_true(ipc__heap_valid(p.h));
	/* leaf figures beyond a leaf, order indices out of range */
	lf[1].suffix = 100000;
	lf[2].prefix = 70000;
	ord[0] = 0xffffffffu;
	lf[3].pos = 1234567;
	int64_t c = ipc__heap_alloc(p.h, 600, IPC__BLK_RECORD, 3);
	assert_true(c >= 310 && c + 600 <= nb);
	assert_true(ipc__heap_valid(p.h));
	/* a forged length does not free the neighbours */
	ipc__heap_blk(p.h, (uint32_t)b)->len = 310;
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)b), -EBADMSG);
	ipc__heap_blk(p.h, (uint32_t)b)->len = 10;
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)b), 0);
	/* a forged header is put back from the private copy */
	p.h->nblocks = 0x7fffffff;
	p.h->nleaves = 0xffff;
	assert_false(ipc__heap_check(p.h, nb));
	assert_true(ipc__heap_check(p.h, nb));
	assert_true(ipc__heap_valid(p.h));
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)a), 0);
	assert_int_equal(ipc__heap_free(p.h, (uint32_t)c), 0);
	assert_int_equal(p.h->free_blocks, nb);
	assert_true(ipc__heap_valid(p.h));
	hp_del(&p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_bits_all_zero_whole_range),
		cmocka_unit_test(test_heap_bits_all_ones_no_run),
		cmocka_unit_test(test_heap_bits_run_across_words_found),
		cmocka_unit_test(test_heap_bits_whole_zero_words_counted),
		cmocka_unit_test(test_heap_bits_random_match_reference),
		cmocka_unit_test(test_heap_init_empty_all_free),
		cmocka_unit_test(test_heap_bad_args_einval),
		cmocka_unit_test(test_heap_double_free_einval),
		cmocka_unit_test(test_heap_exhaust_single_blocks_all_returned),
		cmocka_unit_test(test_heap_partial_last_leaf_exact_capacity),
		cmocka_unit_test(test_heap_exhaust_mixed_sizes_all_returned),
		cmocka_unit_test(test_heap_large_run_spans_leaves),
		cmocka_unit_test(test_heap_fill_every_length_at_least_85_percent),
		cmocka_unit_test(test_heap_random_ops_stay_valid),
		cmocka_unit_test(test_heap_repair_after_half_done_ops_valid),
		cmocka_unit_test(test_heap_forged_index_no_overlap_rebuilt),
	};

	tu_init(argc, argv);
	tu_watchdog(120);
	return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}

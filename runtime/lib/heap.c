/*
 * The priority heap (see heap.h for the picture).
 *
 * Metadata, from the start of struct ipc__heap (all offsets 8-aligned):
 *
 *   0                 struct ipc__heap   nblocks, nleaves, free_blocks
 *   16                struct ipc__leaf   leaf[nleaves]      80 bytes each
 *   16 + 80 L         uint32_t           order[nleaves]     the max-heap
 *   align8(...)       struct ipc__blk    blk[nblocks]       8 bytes each
 *
 * Invariants (checked by ipc__heap_valid):
 *   leaf[order[i]].pos == i;  leaf[order[parent(i)]].longest >= leaf[order[i]].longest
 *   bit b set  <=>  b lies in a run [s, s + blk[s].len) with blk[s].len > 0,
 *                   or b >= nblocks (the tail of the last leaf, never free)
 *   free_blocks == number of clear bits
 */
#include "heap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LEAF_OFF 16u

static struct ipc__leaf *leaves(const struct ipc__heap *h)
{
	return (struct ipc__leaf *)((char *)h + LEAF_OFF);
}

static uint32_t *order(const struct ipc__heap *h)
{
	return (uint32_t *)((char *)h + LEAF_OFF + (size_t)h->nleaves * sizeof(struct ipc__leaf));
}

static size_t blk_off(uint32_t nleaves)
{
	size_t off = LEAF_OFF + (size_t)nleaves * (sizeof(struct ipc__leaf) + sizeof(uint32_t));
	return (off + 7) & ~(size_t)7;
}

static struct ipc__blk *blks(const struct ipc__heap *h)
{
	return (struct ipc__blk *)((char *)h + blk_off(h->nleaves));
}

_Static_assert(sizeof(struct ipc__heap) == LEAF_OFF, "heap header size");
_Static_assert(sizeof(struct ipc__leaf) == 80, "leaf size");
_Static_assert(sizeof(struct ipc__blk) == 8, "blk size");

size_t ipc__heap_blk_offset(uint32_t nblocks)
{
	return blk_off((nblocks + IPC_LEAF_BLOCKS - 1) / IPC_LEAF_BLOCKS);
}

size_t ipc__heap_meta_size(uint32_t nblocks)
{
	uint32_t nleaves = (nblocks + IPC_LEAF_BLOCKS - 1) / IPC_LEAF_BLOCKS;
	return blk_off(nleaves) + (size_t)nblocks * sizeof(struct ipc__blk);
}

static inline bool bit_get(const uint64_t *w, uint32_t i)
{
	return (w[i / 64] >> (i % 64)) & 1u;
}

/* Mask of bits [a, b) of one word, 0 <= a < b <= 64. */
static inline uint64_t word_mask(uint32_t a, uint32_t b)
{
	uint64_t m = (b - a == 64) ? ~UINT64_C(0) : ((UINT64_C(1) << (b - a)) - 1);
	return m << a;
}

uint32_t ipc__bits_longest_zero(const uint64_t *words, uint32_t nbits,
                                uint32_t *prefix, uint32_t *suffix)
{
	uint32_t best = 0, run = 0, pre = 0;
	bool in_prefix = true;

	for (uint32_t i = 0; i < nbits;) {
		uint64_t w = words[i / 64];
		if (i % 64 == 0 && i + 64 <= nbits && (w == 0 || w == ~UINT64_C(0))) {
			if (w == 0) {
				run += 64;
			} else {
				if (in_prefix) pre = run;
				in_prefix = false;
				if (run > best) best = run;
				run = 0;
			}
			i += 64;
			continue;
		}
		if (!bit_get(words, i)) {
			run++;
		} else {
			if (in_prefix) pre = run;
			in_prefix = false;
			if (run > best) best = run;
			run = 0;
		}
		i++;
	}
	if (in_prefix) pre = run;
	if (run > best) best = run;
	if (prefix) *prefix = pre;
	if (suffix) *suffix = run;
	return best;
}

int64_t ipc__bits_find_zero_run(const uint64_t *words, uint32_t nbits, uint32_t n)
{
	uint32_t run = 0;

	if (n == 0 || n > nbits)
		return -1;
	for (uint32_t i = 0; i < nbits;) {
		uint64_t w = words[i / 64];
		if (i % 64 == 0 && i + 64 <= nbits && (w == 0 || w == ~UINT64_C(0))) {
			if (w == 0) {
				if (run + 64 >= n)
					return (int64_t)i - run;
				run += 64;
			} else {
				run = 0;
			}
			i += 64;
			continue;
		}
		if (!bit_get(words, i)) {
			if (++run == n)
				return (int64_t)(i + 1 - n);
		} else {
			run = 0;
		}
		i++;
	}
	return -1;
}

/* Blocks of leaf li that exist (the last leaf may be short). */
static uint32_t leaf_span(const struct ipc__heap *h, uint32_t li)
{
	uint32_t first = li * IPC_LEAF_BLOCKS;
	uint32_t n = h->nblocks - first;
	return n < IPC_LEAF_BLOCKS ? n : IPC_LEAF_BLOCKS;
}

static void leaf_update(struct ipc__heap *h, uint32_t li)
{
	struct ipc__leaf *l = &leaves(h)[li];
	l->longest = ipc__bits_longest_zero(l->bits, IPC_LEAF_BLOCKS, &l->prefix, &l->suffix);
}

static void swap_pos(struct ipc__heap *h, uint32_t a, uint32_t b)
{
	uint32_t *o = order(h);
	struct ipc__leaf *lv = leaves(h);
	uint32_t t = o[a];
	o[a] = o[b];
	o[b] = t;
	lv[o[a]].pos = a;
	lv[o[b]].pos = b;
}

/* Move leaf li to its place in the max-heap. false when the heap's order
 * is corrupt (an index out of range, or a leaf not where it says): nothing
 * is read out of bounds, and the caller rebuilds it (ipc__heap_repair). */
static bool sift(struct ipc__heap *h, uint32_t li)
{
	uint32_t *o = order(h), nl = h->nleaves;
	struct ipc__leaf *lv = leaves(h);
	uint32_t p = lv[li].pos;

	if (p >= nl || o[p] != li)
		return false;
	while (p > 0) {
		uint32_t up = o[(p - 1) / 2];
		if (up >= nl)
			return false;
		if (lv[up].longest >= lv[li].longest)
			break;
		swap_pos(h, p, (p - 1) / 2);
		p = (p - 1) / 2;
	}
	for (;;) {
		uint32_t c = 2 * p + 1, m = p;
		if (c < nl && (o[c] >= nl || (c + 1 < nl && o[c + 1] >= nl)))
			return false;
		if (c < nl && lv[o[c]].longest > lv[o[m]].longest)
			m = c;
		if (c + 1 < nl && lv[o[c + 1]].longest > lv[o[m]].longest)
			m = c + 1;
		if (m == p)
			return true;
		swap_pos(h, p, m);
		p = m;
	}
}

/* Set (or clear) bits [start, start + n) and re-sift each leaf touched.
 * false when the leaves' order was found corrupt (see sift). */
static bool mark(struct ipc__heap *h, uint32_t start, uint32_t n, bool set)
{
	uint32_t end = start + n;
	bool ok = true;

	for (uint32_t i = start; i < end;) {
		uint32_t li = i / IPC_LEAF_BLOCKS;
		uint32_t leaf_end = (li + 1) * IPC_LEAF_BLOCKS;
		uint32_t stop = end < leaf_end ? end : leaf_end;
		struct ipc__leaf *l = &leaves(h)[li];

		while (i < stop) {
			uint32_t b = i % IPC_LEAF_BLOCKS;
			uint32_t wend = (b / 64 + 1) * 64;
			uint32_t e = b + (stop - i);
			if (e > wend) e = wend;
			uint64_t m = word_mask(b % 64, (e - 1) % 64 + 1);
			if (set)
				l->bits[b / 64] |= m;
			else
				l->bits[b / 64] &= ~m;
			i += e - b;
		}
		leaf_update(h, li);
		ok = sift(h, li) && ok;
	}
	return ok;
}

static void corrupt(struct ipc__heap *h, const char *what)
{
	fprintf(stderr, "libipc: heap: corrupt %s: rebuilt from its run table\n", what);
	ipc__heap_repair(h, false);
}

void ipc__heap_init(struct ipc__heap *h, uint32_t nblocks)
{
	uint32_t nleaves = (nblocks + IPC_LEAF_BLOCKS - 1) / IPC_LEAF_BLOCKS;

	memset(h, 0, ipc__heap_meta_size(nblocks));
	h->nblocks = nblocks;
	h->nleaves = nleaves;
	h->free_blocks = nblocks;
	for (uint32_t li = 0; li < nleaves; li++) {
		struct ipc__leaf *l = &leaves(h)[li];
		uint32_t span = leaf_span(h, li);
		for (uint32_t b = span; b < IPC_LEAF_BLOCKS; b++)
			l->bits[b / 64] |= UINT64_C(1) << (b % 64);
		leaf_update(h, li);
		order(h)[li] = li;
		l->pos = li;
	}
	/* Only the last leaf can be short: it sits last, below every full one. */
}

/* The first run of n free blocks in address order, inside a leaf or across
 * the edges of as many leaves as it takes: a run ending a leaf continues
 * into the prefix of the next. O(leaves) looks at leaf summaries, and one
 * leaf's bitmap at most. */
static int64_t first_fit(const struct ipc__heap *h, uint32_t n)
{
	uint32_t run = 0, start = 0; /* free blocks up to the previous leaf's end */

	for (uint32_t li = 0; li < h->nleaves; li++) {
		const struct ipc__leaf *l = &leaves(h)[li];
		uint32_t base = li * IPC_LEAF_BLOCKS;
		if (run == 0)
			start = base;
		if (run + l->prefix >= n)
			return start;
		if (l->prefix == IPC_LEAF_BLOCKS) {
			run += IPC_LEAF_BLOCKS;
			continue;
		}
		if (l->longest >= n) {
			int64_t at = ipc__bits_find_zero_run(l->bits, IPC_LEAF_BLOCKS, n);
			if (at >= 0)
				return base + at;
		}
		run = l->suffix;
		start = base + IPC_LEAF_BLOCKS - l->suffix;
	}
	return -ENOMEM;
}

/* Blocks [start, start + n) are free in the run table, the truth (the
 * bitmap and the leaves' figures are an index over it). */
static bool run_is_free(const struct ipc__heap *h, uint64_t start, uint32_t n)
{
	const struct ipc__blk *bk = blks(h);
	if (start + n > h->nblocks)
		return false;
	for (uint64_t j = start; j < start + n; j++)
		if (bk[j].len != 0 || bk[j].kind != IPC__BLK_FREE)
			return false;
	return true;
}

int64_t ipc__heap_alloc(struct ipc__heap *h, uint32_t n, enum ipc__blk_kind kind,
                        uint16_t owner)
{
	int64_t start;

	if (n == 0 || kind == IPC__BLK_FREE)
		return -EINVAL;
	if (n > h->free_blocks || h->nleaves == 0)
		return -ENOMEM;
	/* First fit in address order, across leaf edges: runs of one size
	 * pack end to end (a run of 257 blocks no longer takes a 512-block leaf
	 * of its own), and small runs (channels, slabs) gather at the start
	 * instead of cutting every leaf in two. */
	start = first_fit(h, n);
	if (start >= 0 && !run_is_free(h, (uint64_t)start, n)) {
		/* The bitmap or a leaf's figures say free where the run table
		 * says taken: never hand out a block twice. */
		corrupt(h, "bitmap (a taken block marked free)");
		start = first_fit(h, n);
		if (start >= 0 && !run_is_free(h, (uint64_t)start, n))
			return -EBADMSG;
	}
	if (start < 0)
		return start;
	struct ipc__blk *bk = blks(h);
	bk[start].len = n;
	bk[start].kind = (uint16_t)kind;
	bk[start].owner = owner;
	for (uint32_t j = 1; j < n; j++)
		bk[start + j].kind = (uint16_t)kind;
	h->free_blocks -= n;
	if (!mark(h, (uint32_t)start, n, true))
		corrupt(h, "leaf order");
	return start;
}

int ipc__heap_free(struct ipc__heap *h, uint32_t block)
{
	if (block >= h->nblocks)
		return -EINVAL;
	struct ipc__blk *bk = blks(h);
	uint32_t n = bk[block].len;
	if (n == 0 || n > h->nblocks - block)
		return -EINVAL;
	/* The whole run must be there, as allocated: else a forged length
	 * would free someone else's blocks. */
	for (uint32_t j = block; j < block + n; j++) {
		if ((j > block && (bk[j].len != 0 || bk[j].kind != bk[block].kind)) ||
		    !bit_get(leaves(h)[j / IPC_LEAF_BLOCKS].bits, j % IPC_LEAF_BLOCKS)) {
			fprintf(stderr, "libipc: heap: corrupt run at block %u (length %u): "
			        "not freed\n", block, n);
			return -EBADMSG;
		}
	}
	memset(&bk[block], 0, (size_t)n * sizeof(*bk));
	h->free_blocks += n;
	if (!mark(h, block, n, false))
		corrupt(h, "leaf order");
	return 0;
}

bool ipc__heap_check(struct ipc__heap *h, uint32_t nblocks)
{
	uint32_t nleaves = (nblocks + IPC_LEAF_BLOCKS - 1) / IPC_LEAF_BLOCKS;
	if (h->nblocks == nblocks && h->nleaves == nleaves && h->free_blocks <= nblocks)
		return true;
	fprintf(stderr, "libipc: heap: corrupt header (%u blocks, %u leaves, %u free; "
	        "expected %u blocks): rebuilt from its run table\n", h->nblocks, h->nleaves,
	        h->free_blocks, nblocks);
	h->nblocks = nblocks;
	h->nleaves = nleaves;
	ipc__heap_repair(h, false);
	return false;
}

struct ipc__blk *ipc__heap_blk(struct ipc__heap *h, uint32_t block)
{
	return block < h->nblocks ? &blks(h)[block] : NULL;
}

uint32_t ipc__heap_longest(const struct ipc__heap *h)
{
	uint32_t best = 0, run = 0;

	if (h->nleaves == 0)
		return 0;
	if (order(h)[0] < h->nleaves)
		best = leaves(h)[order(h)[0]].longest;
	for (uint32_t li = 0; li < h->nleaves; li++) {
		const struct ipc__leaf *l = &leaves(h)[li];
		if (l->prefix == IPC_LEAF_BLOCKS) {
			run += IPC_LEAF_BLOCKS;
		} else {
			run += l->prefix;
			if (run > best) best = run;
			run = l->suffix;
		}
		if (run > best) best = run;
	}
	return best;
}

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "ipc heap: invariant: " __VA_ARGS__);   \
			fputc('\n', stderr);                                    \
			return false;                                           \
		}                                                               \
	} while (0)

bool ipc__heap_valid(const struct ipc__heap *h)
{
	const struct ipc__leaf *lv = leaves(h);
	const uint32_t *o = order(h);
	uint32_t clear = 0;

	for (uint32_t i = 0; i < h->nleaves; i++) {
		uint32_t pre, suf;
		uint32_t lg = ipc__bits_longest_zero(lv[i].bits, IPC_LEAF_BLOCKS, &pre, &suf);
		CHECK(o[lv[i].pos] == i, "leaf %u pos %u", i, lv[i].pos);
		CHECK(lg == lv[i].longest && pre == lv[i].prefix && suf == lv[i].suffix,
		      "leaf %u stats stale", i);
		if (i > 0)
			CHECK(lv[o[(i - 1) / 2]].longest >= lv[o[i]].longest, "heap order at %u", i);
		for (uint32_t b = leaf_span(h, i); b < IPC_LEAF_BLOCKS; b++)
			CHECK(bit_get(lv[i].bits, b), "tail bit %u of leaf %u clear", b, i);
	}
	for (uint32_t b = 0; b < h->nblocks;) {
		const struct ipc__blk *k = &blks(h)[b];
		const uint64_t *bits = lv[b / IPC_LEAF_BLOCKS].bits;
		if (k->len == 0) {
			CHECK(!bit_get(bits, b % IPC_LEAF_BLOCKS), "block %u set outside a run", b);
			CHECK(k->kind == IPC__BLK_FREE, "block %u: kind outside a run", b);
			clear++;
			b++;
			continue;
		}
		CHECK(k->len <= h->nblocks - b, "run at %u too long", b);
		for (uint32_t j = b; j < b + k->len; j++) {
			CHECK(bit_get(lv[j / IPC_LEAF_BLOCKS].bits, j % IPC_LEAF_BLOCKS),
			      "block %u of run %u clear", j, b);
			CHECK(j == b || blks(h)[j].len == 0, "run inside run at %u", j);
			CHECK(blks(h)[j].kind == k->kind, "block %u of run %u: kind", j, b);
		}
		b += k->len;
	}
	CHECK(clear == h->free_blocks, "free_blocks %u, clear bits %u", h->free_blocks, clear);
	return true;
}

uint32_t ipc__heap_repair(struct ipc__heap *h, bool after_death)
{
	struct ipc__leaf *lv = leaves(h);
	struct ipc__blk *bk = blks(h);
	uint32_t slab = 0, used = 0;

	/* Runs that stand: a start with its length and kind, and every block
	 * after it marked with that kind (alloc writes them before the bits,
	 * free clears them first). After a death, a run whose bits are not all
	 * set was being allocated: it is dropped (nobody got it). After
	 * corruption the bits are not asked: they are an index, and a forged
	 * one must not free a run someone holds. */
	for (uint32_t b = 0; b < h->nblocks;) {
		uint32_t n = bk[b].len;
		bool whole = n > 0 && n <= h->nblocks - b && bk[b].kind != IPC__BLK_FREE;
		for (uint32_t j = b + 1; whole && j < b + n; j++)
			whole = bk[j].len == 0 && bk[j].kind == bk[b].kind;
		for (uint32_t j = b; whole && after_death && j < b + n; j++)
			whole = bit_get(lv[j / IPC_LEAF_BLOCKS].bits, j % IPC_LEAF_BLOCKS);
		if (!whole) {
			memset(&bk[b], 0, sizeof(bk[b]));
			b++;
			continue;
		}
		used += n;
		if (bk[b].kind == IPC__BLK_SLAB)
			slab += n;
		b += n;
	}
	/* Bits exactly as the runs say, then every leaf's figures and the heap. */
	for (uint32_t li = 0; li < h->nleaves; li++) {
		memset(lv[li].bits, 0, sizeof(lv[li].bits));
		for (uint32_t b = leaf_span(h, li); b < IPC_LEAF_BLOCKS; b++)
			lv[li].bits[b / 64] |= UINT64_C(1) << (b % 64);
	}
	for (uint32_t b = 0; b < h->nblocks;) {
		uint32_t n = bk[b].len ? bk[b].len : 1;
		if (bk[b].len)
			for (uint32_t j = b; j < b + n; j++)
				lv[j / IPC_LEAF_BLOCKS].bits[(j % IPC_LEAF_BLOCKS) / 64] |=
				        UINT64_C(1) << (j % 64);
		b += n;
	}
	for (uint32_t li = 0; li < h->nleaves; li++) {
		leaf_update(h, li);
		order(h)[li] = li;
		lv[li].pos = li;
	}
	for (uint32_t i = h->nleaves / 2; i-- > 0;) { /* bottom-up heapify */
		for (uint32_t p = i;;) {
			uint32_t c = 2 * p + 1, m = p;
			if (c < h->nleaves && lv[order(h)[c]].longest > lv[order(h)[m]].longest)
				m = c;
			if (c + 1 < h->nleaves && lv[order(h)[c + 1]].longest > lv[order(h)[m]].longest)
				m = c + 1;
			if (m == p)
				break;
			swap_pos(h, p, m);
			p = m;
		}
	}
	h->free_blocks = h->nblocks - used;
	return slab;
}

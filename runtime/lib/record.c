/*
 * Per-thread slabs and records (layer 3; thread state is tls.c, the table
 * of channel ends ends.c).
 *
 * A slab is a run of heap blocks carved by one thread without any lock: a
 * bump pointer in private memory. Its shared header keeps `live`, charged
 * with IPC__SLAB_CHARGE when the slab is fresh; every free subtracts 1, and
 * the owner subtracts (CHARGE - carved) when it stops carving (seals it):
 *
 *     live == CHARGE - freed                   while the owner carves
 *     live == carved - freed                   once sealed
 *
 * (the owner counts its own frees of the current slab privately, in
 * local_freed, and subtracts them with the seal: no atomic on that path)
 *
 * so live reaches 0 exactly once, after the seal and the last free, and
 * whoever brings it there (owner or freer) owns the empty slab: the owner
 * reuses it at once; a freer pushes it on its owner's `returned` stack (a
 * CAS, release; the owner takes the whole stack with one exchange, acquire,
 * so there is no ABA), where the owner finds it, still warm in cache, at its
 * next refill without any lock. A stack already holding IPC__RET_MAX slabs,
 * or closed, sends the slab back to the heap under the lock instead.
 *
 * Sizes, and how full they keep the heap (a record's footprint is its
 * 16-byte header and its payload rounded up to 16 bytes):
 *  - a footprint of up to an eighth of the buffer's slab is carved from the
 *    thread's slab: at least 8 fit, so a slab wastes less than 1/9;
 *  - up to MEDIUM_MAX (8 blocks), from a slab sized for at least 16 of them
 *    (a "medium" slab, at most an eighth of the heap), which the thread
 *    then carves for every size until it is full;
 *  - larger, a run of blocks of its own: at least 8 of its 9+ blocks used.
 * So records of every size from 64 B to a quarter of the buffer (in buffers
 * of 4 MiB and up) fill at least 85 % of the heap with their footprints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MEDIUM_MAX IPC__MEDIUM_MAX

/* ---- slabs -------------------------------------------------------------- */

static uint32_t slab_block(struct ipc_buffer *b, const struct ipc__slab *s)
{
	return (uint32_t)(((const char *)s - b->data) / IPC_BLOCK);
}

void ipc__slab_give_back_locked(struct ipc_buffer *b, struct ipc__slab *s)
{
	b->hdr->slab_used -= s->nblocks;
	s->magic = 0;
	ipc__heap_free(b->heap, slab_block(b, s));
}

void ipc__slab_seal_locked(struct ipc_buffer *b, struct ipc__slab *s, uint32_t carved)
{
	s->sealed = 1;
	/* acq_rel: pairs with every freer's decrement of live (ipc__rec_free(),
	 * ipc__free_flush(), ipc__free_reap_locked()); the last one to reach 0
	 * sees all frees before it and owns the empty slab. */
	if (ipc__sub_acq_rel(&s->live, IPC__SLAB_CHARGE - carved) == IPC__SLAB_CHARGE - carved)
		ipc__slab_give_back_locked(b, s);
}

/* A freer emptied sealed slab s: hand it to its owner, or to the heap. */
static int slab_return(struct ipc_buffer *b, struct ipc__slab *s, bool locked)
{
	struct ipc__tslot *o = ipc__tslot_at(b, s->tslot);

	if (o && ipc__load_relaxed(&o->nreturned) < IPC__RET_MAX) {
		/* Pairs with the owner's acq_rel exchange of returned
		 * (slab_refill(), ipc__slab_drain_locked()). */
		uint64_t head = ipc__load_acquire(&o->returned);
		while (head != IPC__RET_CLOSED) {
			s->next = head;
			/* Pairs with the owner's exchange (slab_refill(),
			 * ipc__slab_drain_locked()): publishes next
			 * and every free of the slab's records. */
			if (atomic_compare_exchange_weak_explicit(&o->returned, &head, ipc__off(b, s),
			                                          memory_order_release,
			                                          memory_order_acquire)) {
				ipc__add_relaxed(&o->nreturned, 1);
				return 0;
			}
		}
	}
	if (!locked && ipc__lock_buf(b))
		return -EIDRM;
	ipc__slab_give_back_locked(b, s);
	if (!locked)
		ipc__unlock_buf(b);
	return 0;
}

void ipc__slab_drain_locked(struct ipc_buffer *b, struct ipc__tslot *ts, uint64_t spare)
{
	/* Pairs with slab_return()'s release CAS: takes every slab pushed, with its
	 * next, and closes the stack. */
	uint64_t lists[2] = {spare, ipc__xchg_acq_rel(&ts->returned, IPC__RET_CLOSED)};
	for (int i = 0; i < 2; i++) {
		/* A slab given back leaves the list: a cycle ends at the first
		 * offset that is no longer a slab. */
		for (uint64_t off = lists[i]; off > IPC__RET_CLOSED;) {
			struct ipc__slab *s = ipc__slab_at(b, off);
			if (!s) {
				ipc__corrupt(b, "thread slot: returned slab at offset %llu is none",
				             (unsigned long long)off);
				break;
			}
			off = s->next;
			ipc__slab_give_back_locked(b, s);
		}
	}
	ipc__store_relaxed(&ts->nreturned, 0);
}

static void slab_reset(struct ipc_tls *t, struct ipc__slab *s)
{
	s->sealed = 0;
	ipc__store_relaxed(&s->carved, 0);
	ipc__store_relaxed(&s->local_freed, 0);
	ipc__store_relaxed(&s->live, IPC__SLAB_CHARGE);
	t->slab = s;
	t->slab_blk = slab_block(t->b, s);
	t->carved = 0;
	t->local_freed = 0;
	t->cur = (char *)s + IPC__SLAB_HDR;
	t->end = (char *)s + (size_t)s->nblocks * IPC_BLOCK;
	t->pf = t->cur;
}

/* Blocks of a slab that holds records of footprint need well: the
 * buffer's slab size while at least 8 fit in it, else one for 16 of them
 * (at most t->slab_max blocks). */
static uint32_t slab_blocks_for(const struct ipc_tls *t, uint64_t need)
{
	uint32_t n = t->b->geo.slab_blocks;
	if (need * 8 <= (uint64_t)n * IPC_BLOCK - IPC__SLAB_HDR)
		return n;
	uint64_t want = (need * 16 + IPC__SLAB_HDR + IPC_BLOCK - 1) / IPC_BLOCK;
	return want < t->slab_max ? (uint32_t)want : t->slab_max;
}

static bool slab_room(const struct ipc__slab *s, uint64_t need)
{
	return (uint64_t)s->nblocks * IPC_BLOCK - IPC__SLAB_HDR >= need;
}

/* The current slab has no room for a footprint of need bytes: reuse it if
 * every record in it was freed (and it is large enough), otherwise seal it
 * and take another, from the slabs freers gave back or from the heap. */
static int slab_refill(struct ipc_tls *t, uint64_t need)
{
	struct ipc_buffer *b = t->b;
	struct ipc__slab *s = t->slab;
	bool drop = false;

	if (s) {
		uint64_t charge = IPC__SLAB_CHARGE - t->carved + t->local_freed;
		s->sealed = 1;
		t->slab = NULL;
		t->cur = t->end = NULL;
		/* acq_rel: pairs with every freer's decrement (ipc__rec_free(),
		 * ipc__free_flush(); see top). */
		if (ipc__sub_acq_rel(&s->live, charge) == charge) {
			/* empty: ours alone again, no lock needed */
			if (slab_room(s, need)) {
				slab_reset(t, s);
				return 0;
			}
			drop = true; /* too small for this record: back to the heap */
		}
	}
	if (!t->spare && ipc__load_relaxed(&t->ts->returned) > IPC__RET_CLOSED) {
		/* Pairs with slab_return()'s release CAS. */
		t->spare = ipc__xchg_acq_rel(&t->ts->returned, 0);
	}
	if (t->spare) {
		struct ipc__slab *sp = ipc__slab_at(b, t->spare);
		if (sp && slab_room(sp, need)) {
			t->spare = sp->next;
			ipc__add_relaxed(&t->ts->nreturned, (uint32_t)-1);
			/* The slot may have changed hands since it was carved. */
			ipc__store_relaxed(&sp->proc, b->proc);
			slab_reset(t, sp);
			if (drop && ipc__lock_buf(b) == 0) {
				ipc__slab_give_back_locked(b, s);
				ipc__unlock_buf(b);
			}
			return 0;
		}
		if (!sp) {
			ipc__corrupt(b, "thread slot %u: returned slab at offset %llu is none",
			             t->slot, (unsigned long long)t->spare);
			t->spare = 0;
		}
	}
	if (ipc__lock_buf(b))
		return -EIDRM;
	if (drop)
		ipc__slab_give_back_locked(b, s);
	uint32_t n = slab_blocks_for(t, need);
	int64_t blk = ipc__heap_alloc(b->heap, n, IPC__BLK_SLAB, (uint16_t)b->proc);
	if (blk >= 0) {
		/* Header written under the lock: walkers see whole slabs only. */
		b->hdr->slab_used += n;
		s = ipc__block_ptr(b, (uint32_t)blk);
		ipc__store_relaxed(&s->proc, b->proc);
		s->tslot = t->slot;
		s->nblocks = n;
		slab_reset(t, s);
		s->magic = IPC__SLAB_MAGIC;
	}
	ipc__unlock_buf(b);
	return blk < 0 ? (int)blk : 0;
}

/* ---- records ------------------------------------------------------------ */

/* Write a fresh record header: held by our process. */
static inline __attribute__((always_inline)) void rec_init(struct ipc_buffer *b,
                                                        struct ipc__rec *r, size_t n,
                                                        uint32_t slab)
{
	ipc__store_relaxed(&r->word, (uint64_t)n | (uint64_t)(b->proc + 1) << 48);
	ipc__store_relaxed(&r->slab, slab);
	ipc__store_relaxed(&r->check, ipc__rec_check_word(n, slab));
}

/* How far ahead of carving the producer asks for lines (measured on 64 B
 * records between processes: 512 beats 256 and 1024). */
#define PREFETCH_AHEAD 512

/* A record in a run of blocks of its own. */
static void *rec_alloc_direct(struct ipc_tls *t, size_t n, uint64_t need)
{
	struct ipc_buffer *b = t->b;
	struct ipc__rec *r = NULL;

	if (ipc__lock_buf(b)) {
		errno = EIDRM;
		return NULL;
	}
	int64_t blk = ipc__heap_alloc(b->heap, (uint32_t)((need + IPC_BLOCK - 1) / IPC_BLOCK),
	                              IPC__BLK_RECORD, (uint16_t)b->proc);
	if (blk >= 0)
		rec_init(b, r = ipc__block_ptr(b, (uint32_t)blk), n, IPC__REC_DIRECT);
	ipc__unlock_buf(b);
	if (blk < 0) {
		errno = (int)-blk;
		return NULL;
	}
	return r + 1;
}

/* Carve a record of n bytes (footprint need) from the current slab, which
 * has room for it. */
static inline __attribute__((always_inline)) void *rec_carve(struct ipc_tls *t, size_t n,
                                                             uint64_t need)
{
	struct ipc__rec *r = (struct ipc__rec *)t->cur;
	t->cur += need;
	/* Ask early for the lines of the next records, for writing: they were
	 * last written by the consumer that freed them. Every line once,
	 * PREFETCH_AHEAD bytes ahead of carving. */
	char *pf_end = t->end - t->cur > PREFETCH_AHEAD ? t->cur + PREFETCH_AHEAD : t->end;
	for (; t->pf < pf_end; t->pf += IPC__CACHELINE)
		ipc__prefetch_write(t->pf);
	rec_init(t->b, r, n, t->slab_blk);
	/* Pairs with walk_slab_locked()'s acquire load of carved: publishes the
	 * header written just before. */
	ipc__store_release(&t->slab->carved, ++t->carved);
	return r + 1;
}

static void *rec_alloc(struct ipc_tls *t, size_t n)
{
	struct ipc_buffer *b = t->b;
	uint64_t need = sizeof(struct ipc__rec) + (((uint64_t)n + 15) & ~UINT64_C(15));

	if (n - 1 >= t->max_size) { /* n == 0 or n > max_size */
		errno = EINVAL;
		return NULL;
	}
	if (need <= t->small_max) {
		if ((uint64_t)(t->end - t->cur) < need) {
			int err = slab_refill(t, need);
			/* No room for a medium slab: a run of its own may fit. */
			if (err == -ENOMEM && slab_blocks_for(t, need) > b->geo.slab_blocks)
				return rec_alloc_direct(t, n, need);
			if (err) {
				errno = -err;
				return NULL;
			}
		}
		return rec_carve(t, n, need);
	}
	return rec_alloc_direct(t, n, need);
}

/* Every case of an allocation (the fast path below takes the common one). */
static __attribute__((noinline)) void *alloc_slow(struct ipc_tls *t, size_t n, uint64_t id)
{
	int bad = ipc__tls_check(t);
	if (bad) {
		errno = -bad;
		return NULL;
	}
	if (!ipc__end_find(t, id, IPC_PRODUCER)) {
		errno = ENOENT;
		return NULL;
	}
	return rec_alloc(t, n);
}

void *ipc_record_alloc(struct ipc_tls *t, size_t n, uint64_t id)
{
	/* The hot path, without a call: a valid handle, the producer end used
	 * last, a small record, room in the current slab. */
	if (__builtin_expect(!ipc__tls_ok(t), 0))
		return alloc_slow(t, n, id);
	struct ipc__end *e = t->last[IPC_PRODUCER & 3];
	uint64_t need = sizeof(struct ipc__rec) + (((uint64_t)n + 15) & ~UINT64_C(15));
	if (__builtin_expect(!e || e->id != id || e->used != 1 || n - 1 >= t->max_size ||
	                     need > t->small_max || (uint64_t)(t->end - t->cur) < need, 0))
		return alloc_slow(t, n, id);
	return rec_carve(t, n, need);
}

bool ipc__rec_direct_ok(const struct ipc_buffer *b, const struct ipc__rec *r)
{
	uint64_t bytes;
	return ipc__run_kind(b, ipc__off(b, r), &bytes) == IPC__BLK_RECORD &&
	       ipc__rec_size((struct ipc__rec *)r) <= bytes - sizeof(*r);
}

struct ipc__rec *ipc__rec_check(struct ipc_buffer *b, const void *payload)
{
	uint64_t w;
	struct ipc__rec *r = ipc__rec_fast(b, ipc__rec_at(b, payload), &w);
	if (r)
		return r;
	r = ipc__rec_check_fast(b, payload);
	return r && ipc__load_relaxed(&r->slab) == IPC__REC_DIRECT && ipc__rec_direct_ok(b, r)
	               ? r : NULL;
}

int ipc__rec_free(struct ipc_buffer *b, struct ipc__rec *r, bool locked)
{
	uint32_t slab = ipc__load_relaxed(&r->slab);

	ipc__store_relaxed(&r->check, IPC__REC_FREED);
	if (slab == IPC__REC_DIRECT) {
		if (!locked && ipc__lock_buf(b))
			return -EIDRM;
		ipc__heap_free(b->heap, (uint32_t)(((char *)r - b->data) / IPC_BLOCK));
		if (!locked)
			ipc__unlock_buf(b);
		return 1;
	}
	struct ipc__slab *s = ipc__block_ptr(b, slab);
	/* acq_rel: pairs with the seal (slab_refill(), ipc__slab_seal_locked())
	 * and with other freers (see top). */
	if (ipc__sub_acq_rel(&s->live, 1) == 1) {
		int err = slab_return(b, s, locked);
		return err ? err : 1;
	}
	return 0;
}

/* Visit the records of the heap (L held): fn(b, r, arg) for each record
 * with a valid header; a non-zero return stops the walk of that slab (the
 * visit emptied it, and it may be reused at once). */
typedef int (*rec_visit)(struct ipc_buffer *b, struct ipc__rec *r, void *arg);

/* s was checked by ipc__slab_at: its nblocks is its run's. Records follow
 * one another; a size that runs past the slab ends the walk (reported). */
static void walk_slab_locked(struct ipc_buffer *b, struct ipc__slab *s, rec_visit fn, void *arg)
{
	uint64_t pos = IPC__SLAB_HDR, end = (uint64_t)s->nblocks * IPC_BLOCK;
	/* pairs with rec_carve()'s and ipc_record_trim()'s release of carved */
	uint32_t carved = ipc__load_acquire(&s->carved);

	for (uint32_t i = 0; i < carved && end - pos >= sizeof(struct ipc__rec); i++) {
		struct ipc__rec *r = (struct ipc__rec *)((char *)s + pos);
		uint64_t size = ipc__rec_size(r);
		if (size > end - pos - sizeof(*r)) {
			ipc__corrupt(b, "slab at offset %llu: record %u of %u claims %llu bytes",
			             (unsigned long long)ipc__off(b, s), i, carved,
			             (unsigned long long)size);
			return;
		}
		pos += sizeof(*r) + ((size + 15) & ~UINT64_C(15));
		if (ipc__rec_check(b, r + 1) && fn(b, r, arg) != 0)
			return;
		if (pos > end)
			return;
	}
}

static void walk_records_locked(struct ipc_buffer *b, rec_visit fn, void *arg)
{
	for (uint32_t blk = 0; blk < b->geo.nblocks;) {
		uint32_t len = b->blk[blk].len;
		uint64_t off = b->geo.data_off + (uint64_t)blk * IPC_BLOCK;
		if (len == 0 || len > b->geo.nblocks - blk) {
			blk++;
			continue;
		}
		if (b->blk[blk].kind == IPC__BLK_SLAB) {
			struct ipc__slab *s = ipc__slab_at(b, off);
			if (s)
				walk_slab_locked(b, s, fn, arg);
		} else if (b->blk[blk].kind == IPC__BLK_RECORD) {
			struct ipc__rec *r = ipc__block_ptr(b, blk);
			if (ipc__rec_check(b, r + 1))
				fn(b, r, arg);
		}
		blk += len;
	}
}

struct reap_arg {
	uint32_t holder;
	uint64_t freed;
};

static int reap_one(struct ipc_buffer *b, struct ipc__rec *r, void *arg)
{
	struct reap_arg *a = arg;
	if (ipc__rec_holder(r) != a->holder)
		return 0;
	a->freed++;
	return ipc__rec_free(b, r, true) != 0;
}

uint64_t ipc__rec_reap_locked(struct ipc_buffer *b, uint32_t proc)
{
	struct reap_arg a = {.holder = proc + 1};
	walk_records_locked(b, reap_one, &a);
	return a.freed;
}

static int census_one(struct ipc_buffer *b, struct ipc__rec *r, void *arg)
{
	uint64_t *acc = arg;
	(void)b;
	acc[0]++;
	acc[1] += ipc__rec_size(r);
	return 0;
}

void ipc__rec_census_locked(struct ipc_buffer *b, uint64_t *count, uint64_t *bytes)
{
	uint64_t acc[2] = {0, 0};
	walk_records_locked(b, census_one, acc);
	*count = acc[0];
	*bytes = acc[1];
}

/*
 * Frees of records in another thread's slab are counted in that slab's live
 * in batches of up to FREE_BATCH, not one atomic each: consecutive frees of
 * a FIFO stream hit one slab. The batch is published in the TLS slot first
 * (pend_slab, pend_count: plain stores to our own line), so that a reaper
 * can apply what a dead thread had not; a flush clears pend_count before it
 * subtracts, so a death in between loses the batch (the slab stays
 * allocated) rather than counting it twice. Flushed when the slab changes,
 * when the batch is full, when the thread finds its channel empty or is
 * about to sleep, and at ipc_tls_close.
 */
#define FREE_BATCH 32

void ipc__free_flush(struct ipc_tls *t)
{
	uint32_t n = t->fcount;
	struct ipc__slab *s = t->fslab;

	if (n == 0 || !s) /* counted frees always have their slab */
		return;
	t->fcount = 0;
	ipc__store_relaxed(&t->ts->pend_count, 0);
	/* acq_rel: pairs with the seal (slab_refill(), ipc__slab_seal_locked())
	 * and with other freers (see top). */
	if (ipc__sub_acq_rel(&s->live, n) == n) {
		t->fslab = NULL; /* given back: no more frees to count in it */
		slab_return(t->b, s, false);
	}
}

void ipc__free_reap_locked(struct ipc_buffer *b, struct ipc__tslot *ts)
{
	uint32_t n = ipc__load_relaxed(&ts->pend_count);
	uint64_t off = ipc__load_relaxed(&ts->pend_slab);
	struct ipc__slab *s = n ? ipc__slab_at(b, off) : NULL;

	ipc__store_relaxed(&ts->pend_count, 0);
	if (n && !s)
		ipc__corrupt(b, "thread slot: pending frees in offset %llu, which is no slab",
		             (unsigned long long)off);
	/* acq_rel: pairs with the seal (slab_refill(), ipc__slab_seal_locked())
	 * and with other freers (see top). */
	if (n && s && ipc__sub_acq_rel(&s->live, n) == n)
		slab_return(b, s, true);
}

/* Count a free in t's batch for r's slab (checked by ipc__rec_check). */
static void free_batched(struct ipc_tls *t, struct ipc__rec *r)
{
	struct ipc__slab *s = ipc__block_ptr(t->b, ipc__load_relaxed(&r->slab));

	if (s != t->fslab) {
		ipc__free_flush(t);
		t->fslab = s;
		ipc__store_relaxed(&t->ts->pend_slab, ipc__off(t->b, s));
	}
	ipc__store_relaxed(&r->check, IPC__REC_FREED);
	ipc__store_relaxed(&t->ts->pend_count, ++t->fcount);
	if (t->fcount >= FREE_BATCH)
		ipc__free_flush(t);
}

/* Every case of a release (the fast path below takes the common ones). */
static __attribute__((noinline)) int release(struct ipc_tls *t, void *rec)
{
	struct ipc__rec *r;
	int bad = ipc__tls_check(t);

	if (bad)
		return bad;
	if (!rec)
		return 0;
	r = ipc__rec_check(t->b, rec);
	if (!r)
		return -EINVAL;
	if (ipc__load_relaxed(&r->word) & IPC__REC_QUEUED)
		return -EALREADY; /* in a channel: the consumer will free it */
	uint32_t blk = ipc__load_relaxed(&r->slab);
	if (blk == t->slab_blk && t->slab && (char *)r >= (char *)t->slab && (char *)r < t->cur) {
		/* Our own current slab: counted privately until the seal. */
		ipc__store_relaxed(&r->check, IPC__REC_FREED);
		ipc__store_relaxed(&t->slab->local_freed, ++t->local_freed);
		return 0;
	}
	if (blk != IPC__REC_DIRECT) {
		free_batched(t, r);
		return 0;
	}
	int err = ipc__rec_free(t->b, r, false);
	return err < 0 ? err : 0;
}

/*
 * The hot path of a release, without a call: a record of a slab checked by
 * ipc__rec_fast, held (not queued), and either in our current slab or in
 * the slab whose frees we are batching, with room in the batch. Anything
 * else, success included, is release()'s. Returns 1 when done.
 */
static inline __attribute__((always_inline)) int release_fast(struct ipc_tls *t, void *rec)
{
	uint64_t w;
	if (__builtin_expect(!ipc__tls_ok(t) || !rec, 0))
		return 0;
	struct ipc_buffer *b = t->b;
	struct ipc__rec *r = ipc__rec_fast(b, ipc__rec_at(b, rec), &w);
	if (__builtin_expect(!r || (w & IPC__REC_QUEUED), 0))
		return 0;
	uint32_t blk = ipc__load_relaxed(&r->slab);
	struct ipc__slab *s = ipc__block_ptr(b, blk);
	if (s == t->fslab && t->fcount + 1 < FREE_BATCH) {
		/* batched (free_batched, without its flushes) */
		ipc__store_relaxed(&r->check, IPC__REC_FREED);
		ipc__store_relaxed(&t->ts->pend_count, ++t->fcount);
		return 1;
	}
	if (s == t->slab && (char *)r < t->cur) {
		/* Our own current slab: counted privately until the seal. */
		ipc__store_relaxed(&r->check, IPC__REC_FREED);
		ipc__store_relaxed(&s->local_freed, ++t->local_freed);
		return 1;
	}
	return 0;
}

int ipc_record_release(struct ipc_tls *t, void *rec)
{
	if (release_fast(t, rec))
		return 0;
	return release(t, rec);
}

static __attribute__((noinline, cold)) void free_complain(void *rec, int err)
{
	if (err == -EINVAL)
		fprintf(stderr, "libipc: ipc_record_free(%p): not a live record of this buffer "
		        "(double free?): ignored\n", rec);
	else if (err == -EALREADY)
		fprintf(stderr, "libipc: ipc_record_free(%p): the record was sent and is still "
		        "queued (free after send?): ignored\n", rec);
}

static __attribute__((noinline)) void free_slow(struct ipc_tls *t, void *rec)
{
	int err = release(t, rec);
	if (err == -EINVAL || err == -EALREADY)
		free_complain(rec, err);
}

void ipc_record_free(struct ipc_tls *t, void *rec)
{
	if (!release_fast(t, rec))
		free_slow(t, rec);
}

static __attribute__((noinline)) size_t size_slow(const void *rec)
{
	bool elsewhere = false;
	if (!rec || ((uintptr_t)rec & 15))
		return 0;
	struct ipc_buffer *b = ipc__handle_find(rec, &elsewhere);
	if (b) {
		struct ipc__rec *r = ipc__rec_check(b, rec);
		return r ? (size_t)ipc__rec_size(r) : 0;
	}
	if (!elsewhere) /* in no buffer of ours: not read */
		return 0;
	struct ipc__rec *r = (struct ipc__rec *)rec - 1;
	uint64_t size = ipc__rec_size(r);
	return ipc__load_relaxed(&r->check) == ipc__rec_check_word(size, ipc__load_relaxed(&r->slab))
	               ? (size_t)size : 0;
}

size_t ipc_record_size(const void *rec)
{
	/* The common case without a call: a slab record of the buffer listed
	 * first. ipc__rec_fast reads nothing outside that buffer's heap (a
	 * pointer elsewhere fails its first test). */
	/* Pairs with ipc__handle_register()'s release store: b's views are set. */
	struct ipc_buffer *b = atomic_load_explicit(&ipc__open_bufs[0], memory_order_acquire);
	uint64_t w;
	if (__builtin_expect(b != NULL, 1) && ipc__rec_fast(b, ipc__rec_at(b, rec), &w))
		return (size_t)(w & IPC__REC_SIZE_MASK);
	return size_slow(rec);
}

/*
 * Two additions to records, kept apart from record.c: waiting for memory
 * (ipc_record_alloc_wait) and sending a record shorter than it was allocated
 * (ipc_record_trim).
 *
 * Trim and the slab walk. A slab's records are walked (reaping, census) by
 * stepping over each one's footprint, 16 + size rounded up to 16, counting
 * `carved` records. So a record whose footprint shrinks leaves a gap that
 * must stay walkable:
 *   - the thread's latest record in its current slab: the bump pointer moves
 *     back over the gap, which is reused by the next allocation;
 *   - otherwise the gap gets a filler header (size = gap - 16, check word
 *     IPC__REC_FREED, so every walker skips it) counted in `carved` as a
 *     record born free: in the current slab both the owner's carved and
 *     local_freed grow by one (the seal's arithmetic is unchanged); in a
 *     slab already sealed, only the slab's carved (live was settled at the
 *     seal from the records carved then, which the filler is not part of).
 * Only the slab's own carver may do this (t owns the slab's thread slot), so
 * no other thread writes `carved` meanwhile. A record of its own heap run
 * keeps its blocks; only its size changes.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

void *ipc_record_alloc_wait(struct ipc_tls *t, size_t n, uint64_t id, int timeout_ms)
{
	void *r = ipc_record_alloc(t, n, id);
	if (r || errno != ENOMEM || timeout_ms == 0)
		return r;
	struct timespec ts0;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	long sleep_us = 50;
	for (;;) {
		struct timespec d = {0, sleep_us * 1000}, now;
		nanosleep(&d, NULL);
		r = ipc_record_alloc(t, n, id);
		if (r || errno != ENOMEM)
			return r;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t ns = (int64_t)(now.tv_sec - ts0.tv_sec) * 1000000000 +
		             (now.tv_nsec - ts0.tv_nsec);
		if (timeout_ms > 0 && ns >= (int64_t)timeout_ms * 1000000) {
			errno = ENOMEM;
			return NULL;
		}
		if (sleep_us < 1000)
			sleep_us *= 2;
	}
}

static uint64_t footprint(uint64_t size)
{
	return sizeof(struct ipc__rec) + ((size + 15) & ~UINT64_C(15));
}

int ipc_record_trim(struct ipc_tls *t, void *rec, size_t n)
{
	if (!t || !rec)
		return -EINVAL;
	struct ipc_buffer *b = t->b;
	struct ipc__rec *r = ipc__rec_check_fast(b, rec);
	if (!r || ipc__rec_holder(r) != b->proc + 1)
		return -EINVAL;
	uint64_t size = ipc__rec_size(r);
	if (n == 0 || n > size)
		return -EINVAL;
	if (n == size)
		return 0;
	uint32_t slab = ipc__load_relaxed(&r->slab);
	uint64_t word = (uint64_t)n | (ipc__load_relaxed(&r->word) & ~IPC__REC_SIZE_MASK);
	if (slab == IPC__REC_DIRECT) {
		if ((uint64_t)((char *)r - b->data) % IPC_BLOCK)
			return -EINVAL;
		ipc__store_relaxed(&r->check, ipc__rec_check_word(n, slab));
		ipc__store_relaxed(&r->word, word);
		return 0;
	}
	if (slab >= b->heap->nblocks)
		return -EINVAL;
	struct ipc__slab *s = ipc__block_ptr(b, slab);
	char *end = (char *)s + (size_t)s->nblocks * IPC_BLOCK;
	if (s->magic != IPC__SLAB_MAGIC || s->tslot != t->slot || (char *)r < (char *)s ||
	    (char *)r + footprint(size) > end)
		return -EINVAL;
	uint64_t gap = footprint(size) - footprint(n);
	char *after = (char *)r + footprint(n);
	if (gap && s == t->slab && after + gap == t->cur) {
		t->cur = after; /* our latest record: the gap is reused */
	} else if (gap) {
		struct ipc__rec *f = (struct ipc__rec *)after;
		ipc__store_relaxed(&f->word, gap - sizeof(*f));
		ipc__store_relaxed(&f->slab, slab);
		ipc__store_relaxed(&f->check, IPC__REC_FREED);
		if (s == t->slab) {
			t->carved++;
			ipc__store_relaxed(&s->local_freed, ++t->local_freed);
		}
		ipc__store_relaxed(&r->check, ipc__rec_check_word(n, slab));
		ipc__store_relaxed(&r->word, word);
		/* pairs with walk_slab_locked()'s acquire of carved: headers first */
		ipc__store_release(&s->carved, s == t->slab ? t->carved
		                                            : ipc__load_relaxed(&s->carved) + 1);
		return 0;
	}
	ipc__store_relaxed(&r->check, ipc__rec_check_word(n, slab));
	ipc__store_relaxed(&r->word, word);
	return 0;
}

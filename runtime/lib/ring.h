/*
 * The SPSC ring under every channel: slots of u64 and two free-running
 * 64-bit indices on their own cache lines.
 *
 *     0 <= tail - head <= capacity <= mask + 1       (unsigned differences)
 *
 * Slots [head, tail) are full. Only the producer writes tail and the slots;
 * only the consumer writes head. Each side keeps a private view: its own
 * index (pos) and a cached copy of the other's (other), re-read only when
 * the cache says full (producer) or empty (consumer).
 *
 * Pairings:
 *   put: store tail (release)  ->  empty: load tail (acquire)
 *        publishes the slots below tail, and whatever they point to
 *   get: store head (release)  ->  full: load head (acquire)
 *        publishes that the consumer is done with the slots below head
 * With seq_cst = true the index stores are seq_cst instead, for callers that
 * read the other side's sleep flag right after (see channel.c).
 */
#ifndef IPC_RING_H
#define IPC_RING_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "atomic.h"

struct ipc__ring_idx {
	alignas(64) ipc_a64 tail; /* the producer's line */
	alignas(64) ipc_a64 head; /* the consumer's line */
};

struct ipc__ring_view {
	struct ipc__ring_idx *idx;
	ipc_a64 *slot;
	uint64_t mask;     /* slots - 1, slots a power of two */
	uint64_t capacity; /* <= mask + 1 */
	uint64_t pos;      /* producer: tail; consumer: head */
	uint64_t other;    /* producer: cached head; consumer: cached tail */
};

/* Slots needed for a capacity: the next power of two. */
static inline uint64_t ipc__ring_slots(uint64_t capacity)
{
	uint64_t n = 1;
	while (n < capacity)
		n <<= 1;
	return n;
}

static inline void ipc__ring_view_init(struct ipc__ring_view *v, struct ipc__ring_idx *idx,
                                       ipc_a64 *slot, uint64_t mask, uint64_t capacity,
                                       bool producer)
{
	v->idx = idx;
	v->slot = slot;
	v->mask = mask;
	v->capacity = capacity;
	v->pos = ipc__load_relaxed(producer ? &idx->tail : &idx->head);
	v->other = ipc__load_acquire(producer ? &idx->head : &idx->tail);
}

/* Producer: no free slot. */
static inline bool ipc__ring_full(struct ipc__ring_view *v)
{
	if (v->pos - v->other < v->capacity)
		return false;
	v->other = ipc__load_acquire(&v->idx->head); /* pairs with get's store */
	return v->pos - v->other >= v->capacity;
}

/* Producer, after !ipc__ring_full(): fill one slot and publish it. */
static inline void ipc__ring_put(struct ipc__ring_view *v, uint64_t val, bool seq_cst)
{
	ipc__store_relaxed(&v->slot[v->pos & v->mask], val);
	v->pos++;
	if (seq_cst)
		ipc__store_seq_cst(&v->idx->tail, v->pos);
	else
		ipc__store_release(&v->idx->tail, v->pos); /* pairs with empty's load */
}

/* Consumer: nothing to take. A tail that breaks the invariant (corrupt
 * shared memory) reads as empty rather than being used as an index. */
static inline bool ipc__ring_empty(struct ipc__ring_view *v)
{
	if (v->pos != v->other)
		return false;
	uint64_t t = ipc__load_acquire(&v->idx->tail); /* pairs with put's store */
	if (t - v->pos > v->mask + 1)
		return true;
	v->other = t;
	return v->pos == v->other;
}

/* Consumer, after !ipc__ring_empty(): the oldest slot, still in the ring. */
static inline uint64_t ipc__ring_peek(struct ipc__ring_view *v)
{
	return ipc__load_relaxed(&v->slot[v->pos & v->mask]);
}

/* Consumer: release the slot peeked at. */
static inline void ipc__ring_advance(struct ipc__ring_view *v, bool seq_cst)
{
	v->pos++;
	if (seq_cst)
		ipc__store_seq_cst(&v->idx->head, v->pos);
	else
		ipc__store_release(&v->idx->head, v->pos); /* pairs with full's load */
}

/* Consumer, after !ipc__ring_empty(): take one slot and release it. */
static inline uint64_t ipc__ring_get(struct ipc__ring_view *v, bool seq_cst)
{
	uint64_t val = ipc__ring_peek(v);
	ipc__ring_advance(v, seq_cst);
	return val;
}

/* Slots full, as either side sees it now. */
static inline uint64_t ipc__ring_count(struct ipc__ring_idx *idx)
{
	uint64_t head = ipc__load_acquire(&idx->head);
	return ipc__load_acquire(&idx->tail) - head;
}

#endif

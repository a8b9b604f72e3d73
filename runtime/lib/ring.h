/*
 * The SPSC ring under every channel: slots of u64 and two free-running
 * 64-bit indices on their own cache lines.
 *
 *     0 <= tail - head <= capacity <= mask + 1       (unsigned differences)
 *
 * Slots [head, tail) are full. Only the producer writes tail and the slots;
 * only the consumer writes head.
 *
 * A slot says itself whether it is full: the producer stores the value
 * (non-zero, below 2^48) tagged with its lap, (pos / slots) mod 2^16, in the
 * top 16 bits. The consumer at pos takes the slot when it holds pos's lap
 * and a non-zero value, so it never reads tail on its way, and never writes
 * a slot: while data flows, the only line that moves between the two sides
 * is the slot line, once per eight slots. (A slot holding the previous lap's
 * tag is an old value; slots are rewritten every lap, so a tag can never be
 * 2^16 laps stale.) The producer knows the ring is full from head, which it
 * caches and re-reads only when the cached value says full.
 *
 * Pairings:
 *   put:  store slot (release)  ->  peek: load slot (acquire)
 *         publishes the value, and whatever it points to
 *   put:  store tail (release)  ->  count, and the sleeper's check in channel.c
 *   take: store head (release)  ->  full: load head (acquire)
 *         publishes that the consumer is done with the slots below head
 * With seq_cst = true the index stores are seq_cst instead, for callers that
 * read the other side's sleep flag right after (see channel.c).
 */
#ifndef IPC_RING_H
#define IPC_RING_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "atomic.h"

#define IPC__RING_VALUE_MASK ((UINT64_C(1) << 48) - 1)

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
	uint64_t other;    /* producer: cached head */
	unsigned shift;    /* log2(slots) */
};

/* Slots needed for a capacity: the next power of two. */
static inline uint64_t ipc__ring_slots(uint64_t capacity)
{
	uint64_t n = 1;
	while (n < capacity)
		n <<= 1;
	return n;
}

/* The value a raw slot holds (its lap tag stripped), for readers that walk
 * [head, tail) under the buffer's lock. */
static inline uint64_t ipc__ring_value(uint64_t raw)
{
	return raw & IPC__RING_VALUE_MASK;
}

static inline uint64_t ipc__ring_tag(const struct ipc__ring_view *v, uint64_t pos)
{
	return ((pos >> v->shift) & 0xffff) << 48;
}

static inline void ipc__ring_view_init(struct ipc__ring_view *v, struct ipc__ring_idx *idx,
                                       ipc_a64 *slot, uint64_t mask, uint64_t capacity,
                                       bool producer)
{
	v->idx = idx;
	v->slot = slot;
	v->mask = mask;
	v->capacity = capacity;
	v->shift = (unsigned)__builtin_ctzll(mask + 1);
	v->pos = ipc__load_relaxed(producer ? &idx->tail : &idx->head);
	/* pairs with ipc__ring_take()'s release store of head */
	v->other = producer ? ipc__load_acquire(&idx->head) : 0;
}

/* Producer: no free slot. */
static inline bool ipc__ring_full(struct ipc__ring_view *v)
{
	if (v->pos - v->other < v->capacity)
		return false;
	/* pairs with ipc__ring_take()'s release store of head */
	v->other = ipc__load_acquire(&v->idx->head);
	return v->pos - v->other >= v->capacity;
}

/* Producer, after !ipc__ring_full(): fill one slot with val (non-zero,
 * below 2^48) and publish it. */
static inline void ipc__ring_put(struct ipc__ring_view *v, uint64_t val, bool seq_cst)
{
	uint64_t pos = v->pos; /* one load: the stores below are barriers */
	ipc_a64 *tail = &v->idx->tail;
	/* Pairs with ipc__ring_peek()'s acquire load of the slot. */
	ipc__store_release(&v->slot[pos & v->mask], val | ipc__ring_tag(v, pos));
	v->pos = ++pos;
	/* Pairs with the acquire loads of tail in ipc__ring_count() and
	 * ipc__ring_slot_corrupt(), and with nap()'s seq_cst load (channel.c) */
	if (seq_cst)
		ipc__store_seq_cst(tail, pos);
	else
		ipc__store_release(tail, pos);
}

/* Consumer: the value at pos, or 0 while the producer has not filled it. */
static inline uint64_t ipc__ring_peek(const struct ipc__ring_view *v)
{
	uint64_t pos = v->pos; /* one load: the acquire below is a barrier */
	/* pairs with ipc__ring_put()'s release store of the slot */
	uint64_t raw = ipc__load_acquire(&v->slot[pos & v->mask]);
	if ((raw & ~IPC__RING_VALUE_MASK) != ipc__ring_tag(v, pos))
		return 0;
	return raw & IPC__RING_VALUE_MASK;
}

static inline bool ipc__ring_empty(const struct ipc__ring_view *v)
{
	return ipc__ring_peek(v) == 0;
}

/* Consumer: release the slot peeked at. */
static inline void ipc__ring_take(struct ipc__ring_view *v, bool seq_cst)
{
	uint64_t pos = ++v->pos;
	/* Pairs with the acquire loads of head in ipc__ring_full() and
	 * ipc__ring_view_init(), and with nap()'s seq_cst load (channel.c) */
	if (seq_cst)
		ipc__store_seq_cst(&v->idx->head, pos);
	else
		ipc__store_release(&v->idx->head, pos);
}

/* Consumer, after !ipc__ring_empty(): take one value and release its slot. */
static inline uint64_t ipc__ring_get(struct ipc__ring_view *v, bool seq_cst)
{
	uint64_t val = ipc__ring_peek(v);
	ipc__ring_take(v, seq_cst);
	return val;
}

/* Consumer: tail says the slot at pos was filled, yet it does not hold a
 * value of pos's lap: shared memory was corrupted. A tail beyond what the
 * ring can hold is corrupt itself and proves nothing. */
static inline bool ipc__ring_slot_corrupt(const struct ipc__ring_view *v)
{
	/* pairs with ipc__ring_put()'s release (or seq_cst) store of tail */
	uint64_t t = ipc__load_acquire(&v->idx->tail);
	return t - v->pos - 1 < v->mask + 1 && ipc__ring_empty(v);
}

/* Slots full, as either side sees it now. */
static inline uint64_t ipc__ring_count(struct ipc__ring_idx *idx)
{
	/* pairs with the stores of head and tail in ipc__ring_take() and
	 * ipc__ring_put() */
	uint64_t head = ipc__load_acquire(&idx->head);
	return ipc__load_acquire(&idx->tail) - head;
}

#endif

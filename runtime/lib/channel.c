/*
 * SPSC record channels: a ring of record offsets (ring.h, which states the
 * ring's invariant and its acquire/release pairings) plus end state, sleep
 * and liveness.
 *
 * End-of-stream and death: flags |= P_CLOSED / P_DEAD (acq_rel) comes after
 * the producer's last slot store; the consumer loads flags (acquire) and then
 * looks at its slot again, so every record sent before the close is received
 * before IPC_TX_EOF / IPC_TX_ABORTED.
 *
 * Sleeping (modes hybrid and block): a side that finds the ring empty (full)
 * reads its sequence word, sets its sleep flag (seq_cst), re-reads the
 * other's index (seq_cst; tail is stored after the slot, so it says as much
 * as the slot) and sleeps on the sequence word with FUTEX_WAIT. The other
 * side, after storing its index (release: no fence on the data path), reads
 * the flag and, if set, clears it (so one wake-up serves however many
 * records follow until the sleeper runs again), bumps the sequence word and
 * wakes. Without a fence on the waker's side its flag load may pass its
 * index store, so a wake-up can be missed, but only for a store that races
 * the flag store itself: the first sleep after setting the flag therefore
 * lasts at most FIRST_NAP_US, after which the sleeper looks again; the flag
 * stays set (and visible) across the sleeps that follow, which may be long.
 * Mode spin never sleeps and skips the flag.
 * A sleeping producer is woken once half the ring is free, not at every slot.
 * A peer in another process is watched while sleeping: its death wakes the
 * sleeper through the peer's death notice (notice.c); where there is none,
 * sleeps last at most SLEEP_SLICE_MS and the sleeper then looks at its peer.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define SPIN_NS 60000   /* longest spin before sleeping (mode hybrid) */
#define SPIN_NS_MIN 1000 /* shortest */
#define SPIN_YIELD_NS 5000 /* mode spin yields the core after this long */
#define SLEEP_SLICE_MS 40     /* a sleeper wakes this often to check its peer */
#define FIRST_NAP_US 200      /* the first sleep after setting the flag (see top) */
#define LIVENESS_EVERY_MS 20

/* The channel entry d names, or NULL (not a channel; reported if corrupt). */
static struct ipc__chan *dirent_chan_locked(struct ipc_buffer *b, struct ipc__dirent *d)
{
	void *c;
	return ipc__dir_obj_locked(b, d, IPC__BLK_CHANNEL, &c) == 0 ? c : NULL;
}

/* The record in ring slot pos, if the slot holds a valid one (L held; the
 * ring's geometry checked by the caller). */
static struct ipc__rec *slot_rec_locked(struct ipc_buffer *b, struct ipc__chan *c, uint64_t pos)
{
	char *p = ipc__ptr(b, ipc__ring_value(ipc__load_relaxed(&c->ring[pos & c->mask])),
	                   sizeof(struct ipc__rec));
	return p ? ipc__rec_check(b, p + sizeof(struct ipc__rec)) : NULL;
}

void ipc__chan_wake_all(struct ipc__chan *c)
{
	/* Pairs with nap()'s acquire load of each sequence word: a sleeper that
	 * read the old value is woken, one that reads the new one does not sleep. */
	ipc__add_acq_rel(&c->cons_seq, 1);
	ipc__futex_wake(&c->cons_seq);
	ipc__add_acq_rel(&c->prod_seq, 1);
	ipc__futex_wake(&c->prod_seq);
}

void ipc__chan_end_detach_locked(struct ipc_buffer *b, struct ipc__chan *c, uint8_t role,
                                 bool dead)
{
	uint32_t bit = role == IPC_PRODUCER ? (dead ? IPC__P_DEAD : IPC__P_CLOSED)
	                                    : (dead ? IPC__C_DEAD : IPC__C_CLOSED);
	struct ipc__end_owner *o = role == IPC_PRODUCER ? &c->prod : &c->cons;
	/* held for a successor (takeover.c): an orphan, its peer waits */
	if (dead && (ipc__load_relaxed(&c->flags) &
	             (role == IPC_PRODUCER ? IPC__P_HELD : IPC__C_HELD)))
		bit = role == IPC_PRODUCER ? IPC__P_ORPHAN : IPC__C_ORPHAN;
	bool geo_ok = ipc__chan_geo_ok(b, c);
	if (!geo_ok)
		ipc__corrupt(b, "channel %llu: ring mask %llu or capacity %u does not fit its run",
		             (unsigned long long)c->id, (unsigned long long)c->mask, c->capacity);
	if (dead && role == IPC_CONSUMER && geo_ok) {
		/* It may have died between taking the record at the head and
		 * releasing the slot: the record goes back to the channel. */
		/* Pairs with the stores of head and tail in ipc__ring_take() and
		 * ipc__ring_put(). */
		uint64_t head = ipc__load_acquire(&c->idx.head);
		if (head != ipc__load_acquire(&c->idx.tail)) {
			struct ipc__rec *r = slot_rec_locked(b, c, head);
			if (r && ipc__rec_holder(r) == o->proc + 1)
				ipc__store_relaxed(&r->word, ipc__rec_size(r) | IPC__REC_QUEUED);
		}
	}
	ipc__store_relaxed(&o->pid, 0);
	/* Pairs with the acquire loads of flags in try_recv(), nap(),
	 * chan_state(): this end closed or died, after its last slot. */
	ipc__or_acq_rel(&c->flags, bit);
	ipc__chan_wake_all(c);
}

void ipc__chan_adopt_locked(struct ipc_buffer *b, struct ipc__chan *c, uint32_t proc)
{
	if (!ipc__chan_geo_ok(b, c))
		return; /* reported by the detach before it */
	/* Pairs with the stores of head and tail in ipc__ring_take() and
	 * ipc__ring_put(). */
	uint64_t head = ipc__load_acquire(&c->idx.head), tail = ipc__load_acquire(&c->idx.tail);
	/* Did it die between filling a slot and publishing tail? The consumer
	 * may take that record already (it reads slots, not tail): count it. */
	struct ipc__ring_view v;
	ipc__ring_view_init(&v, &c->idx, c->ring, c->mask, c->capacity, false);
	v.pos = tail;
	if (tail - head < c->capacity && ipc__ring_peek(&v) != 0)
		/* Pairs with the acquire loads of tail in ipc__ring_count() and
		 * ipc__ring_slot_corrupt(). */
		ipc__store_release(&c->idx.tail, ++tail);
	for (; head != tail && tail - head <= c->mask + 1; head++) {
		struct ipc__rec *r = slot_rec_locked(b, c, head);
		if (!r)
			continue;
		/* A live consumer may take it meanwhile: then its mark stays. */
		uint64_t w = ipc__rec_size(r) | (uint64_t)(proc + 1) << 48 | IPC__REC_QUEUED;
		atomic_compare_exchange_strong_explicit(&r->word, &w,
		                                        ipc__rec_size(r) | IPC__REC_QUEUED,
		                                        memory_order_relaxed, memory_order_relaxed);
	}
}

void ipc__chan_maybe_destroy_locked(struct ipc_buffer *b, struct ipc__dirent *d)
{
	struct ipc__chan *c = dirent_chan_locked(b, d);
	if (!c)
		return;
	/* Pairs with the ends' ipc__or_acq_rel of flags in
	 * ipc__chan_end_detach_locked() and ipc_channel_add_opts(). */
	uint32_t f = ipc__load_acquire(&c->flags);
	bool p_done = (f & IPC__P_ATTACHED) && (f & (IPC__P_CLOSED | IPC__P_DEAD));
	bool c_done = (f & IPC__C_ATTACHED) && (f & (IPC__C_CLOSED | IPC__C_DEAD));
	if (!p_done || !c_done)
		return;
	/* Records still queued go back to the heap. Pairs with the stores of
	 * head and tail in ipc__ring_take() and ipc__ring_put(). */
	uint64_t head = ipc__load_acquire(&c->idx.head), tail = ipc__load_acquire(&c->idx.tail);
	for (; head != tail && tail - head <= c->mask + 1; head++) {
		struct ipc__rec *r = slot_rec_locked(b, c, head);
		uint32_t holder = r ? ipc__rec_holder(r) : UINT32_MAX;
		if (holder == 0 || holder == c->prod.proc + 1)
			ipc__rec_free(b, r, true);
	}
	uint32_t blk = (uint32_t)(((char *)c - b->data) / IPC_BLOCK);
	ipc__dir_remove_locked(b, d);
	ipc__heap_free(b->heap, blk);
}

int ipc_channel_add_opts(struct ipc_tls *t, uint64_t id, enum ipc_role role,
                         const struct ipc_channel_opts *opts)
{
	struct ipc_buffer *b;
	struct ipc__dirent *d;
	struct ipc__chan *c;
	uint32_t cap, wait;
	int err = 0;

	if ((err = ipc__tls_check(t)) != 0)
		return err;
	if (role != IPC_PRODUCER && role != IPC_CONSUMER)
		return -EINVAL;
	b = t->b;
	cap = opts && opts->capacity ? opts->capacity : b->hdr->def_capacity;
	wait = opts && opts->wait ? (uint32_t)opts->wait : b->hdr->def_wait;
	if (cap == 0 || cap > (1u << 30) || wait > IPC_WAIT_BLOCK)
		return -EINVAL;
	if (ipc__end_find(t, id, (uint8_t)role))
		return -EALREADY;
	if (ipc__lock_buf(b))
		return -EIDRM;
	d = ipc__dir_find_locked(b, id);
	if (d) {
		void *o;
		err = ipc__dir_obj_locked(b, d, IPC__BLK_CHANNEL, &o);
		if (err)
			goto out;
		c = o;
	} else {
		uint64_t slots = ipc__ring_slots(cap);
		uint64_t bytes = sizeof(*c) + slots * sizeof(uint64_t);
		int64_t blk = ipc__heap_alloc(b->heap, (uint32_t)((bytes + IPC_BLOCK - 1) / IPC_BLOCK),
		                              IPC__BLK_CHANNEL, (uint16_t)b->proc);
		if (blk < 0) {
			err = (int)blk;
			goto out;
		}
		c = ipc__block_ptr(b, (uint32_t)blk);
		/* Slots too: an old value of lap 0 would read as sent (ring.h). */
		memset(c, 0, bytes);
		c->id = id;
		c->type = IPC_CHANNEL_SPSC;
		c->capacity = cap;
		c->mask = slots - 1;
		c->wait = wait;
		err = ipc__dir_insert_locked(b, id, ipc__off(b, c));
		if (err) {
			ipc__heap_free(b->heap, (uint32_t)blk);
			goto out;
		}
	}
	uint32_t bit = role == IPC_PRODUCER ? IPC__P_ATTACHED : IPC__C_ATTACHED;
	if (ipc__load_relaxed(&c->flags) & bit) {
		err = -EBUSY;
		goto out;
	}
	struct ipc__end *e = ipc__end_add(t, id, (uint8_t)role);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	struct ipc__end_owner *o = role == IPC_PRODUCER ? &c->prod : &c->cons;
	o->proc = b->proc;
	o->start = b->start;
	/* Pairs with the acquire loads of pid in peer_check(), nap() and
	 * peer_is_us(): publishes proc and start. */
	ipc__store_release(&o->pid, (int32_t)b->pid);
	/* Pairs with the peer's acquire loads of flags (try_recv(), nap()):
	 * this end is attached. */
	ipc__or_acq_rel(&c->flags, bit);
	/* A peer asleep since before we came waits on nothing that says we
	 * could die (see nap): let it look again, and watch us. */
	ipc__chan_wake_all(c);
	e->c = c;
	e->wait = (uint8_t)c->wait;
	ipc__ring_view_init(&e->v, &c->idx, c->ring, c->mask, c->capacity, role == IPC_PRODUCER);
out:
	ipc__unlock_buf(b);
	return err;
}

int ipc_channel_add(struct ipc_tls *t, uint64_t id, enum ipc_role role)
{
	return ipc_channel_add_opts(t, id, role, NULL);
}

static int end_detach(struct ipc_tls *t, struct ipc__end *e, bool abort)
{
	struct ipc_buffer *b = t->b;
	if (ipc__lock_buf(b) == 0) {
		struct ipc__dirent *d = ipc__dir_find_locked(b, e->id);
		if (abort) /* an abort by the owner is final, held or not */
			atomic_fetch_and_explicit(&e->c->flags, ~(uint32_t)IPC__P_HELD,
			                          memory_order_relaxed);
		ipc__chan_end_detach_locked(b, e->c, e->role, abort);
		if (d)
			ipc__chan_maybe_destroy_locked(b, d);
		ipc__unlock_buf(b);
	}
	ipc__end_del(t, e);
	return 0;
}

int ipc__chan_close_end(struct ipc_tls *t, struct ipc__end *e)
{
	return end_detach(t, e, false);
}

int ipc_channel_abort(struct ipc_tls *t, uint64_t id)
{
	struct ipc__end *e;

	int bad = ipc__tls_check(t);
	if (bad)
		return bad;
	if (!(e = ipc__end_find(t, id, IPC_PRODUCER)))
		return -ENOENT;
	return end_detach(t, e, true);
}

int ipc_channel_close(struct ipc_tls *t, uint64_t id)
{
	struct ipc__end *e;
	int err = -ENOENT;

	int bad = ipc__tls_check(t);
	if (bad)
		return bad;
	if ((e = ipc__end_find(t, id, IPC_PRODUCER)))
		err = ipc__chan_close_end(t, e);
	if ((e = ipc__end_find(t, id, IPC_CONSUMER)))
		err = ipc__chan_close_end(t, e);
	if ((e = ipc__end_find(t, id, 0)))
		err = ipc__seg_close_end(t, e);
	return err;
}

bool ipc_channel_exists(struct ipc_tls *t, uint64_t id, int timeout_ms)
{
	struct ipc_buffer *b;
	int64_t deadline;

	if (ipc__tls_check(t))
		return false;
	b = t->b;
	deadline = ipc__now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		/* Pairs with ipc__dir_insert_locked()'s acq_rel bump of dir_gen. */
		uint32_t gen = ipc__load_acquire(&b->hdr->dir_gen);
		if (ipc__lock_buf(b))
			return false;
		bool found = ipc__dir_find_locked(b, id) != NULL;
		ipc__unlock_buf(b);
		if (found)
			return true;
		int64_t left = deadline - ipc__now_ms();
		if (timeout_ms >= 0 && left <= 0)
			return false;
		ipc__futex_wait(&b->hdr->dir_gen, gen,
		                timeout_ms < 0 || left > 100 ? 100 : (int)left);
	}
}

size_t ipc_channel_list(struct ipc_buffer *b, struct ipc_channel_info *out, size_t max)
{
	struct ipc__dirent *d;
	size_t n = 0;

	if (ipc__buf_check(b) || ipc__lock_buf(b))
		return 0;
	d = ipc__dirent_at(b, 0);
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o = NULL;
		uint32_t kind = ipc__run_kind(b, d[i].off, NULL);
		/* a corrupt entry is reported, and not listed */
		if (d[i].off <= IPC__DIR_TOMB || ipc__dir_obj_locked(b, &d[i], kind, &o))
			continue;
		if (n < max && out) {
			struct ipc_channel_info *ci = &out[n];
			struct ipc__chan *c = kind == IPC__BLK_CHANNEL ? o : NULL;
			memset(ci, 0, sizeof(*ci));
			ci->id = d[i].id;
			if (c) {
				/* Pairs with the ends' flag updates
				 * (ipc__chan_end_detach_locked(), ipc_channel_add_opts())
				 * and index stores (ipc__ring_put(), ipc__ring_take()). */
				uint32_t f = ipc__load_acquire(&c->flags);
				uint64_t head = ipc__load_acquire(&c->idx.head);
				uint64_t tail = ipc__load_acquire(&c->idx.tail);
				ci->type = IPC_CHANNEL_SPSC;
				ci->capacity = c->capacity;
				ci->sent = tail;
				ci->received = head;
				ci->pending = tail - head;
				ci->producer = (f & IPC__P_ATTACHED) && !(f & (IPC__P_CLOSED | IPC__P_DEAD));
				ci->consumer = (f & IPC__C_ATTACHED) && !(f & (IPC__C_CLOSED | IPC__C_DEAD));
				ci->closed = f & IPC__P_CLOSED;
				ci->aborted = f & IPC__P_DEAD;
			} else if (o) {
				struct ipc__seg *s = o;
				ci->type = IPC_CHANNEL_SEGMENT;
				ci->size = s->size;
			}
		}
		n++;
	}
	ipc__unlock_buf(b);
	return n;
}

/* Flags and queued records of channel id: from this TLS's end when it holds
 * one, else from the directory under the lock. false when there is no such
 * channel. */
static bool chan_state(struct ipc_tls *t, uint64_t id, uint32_t *flags, uint64_t *pending)
{
	struct ipc__end *e = ipc__end_find(t, id, IPC_CONSUMER);
	struct ipc__chan *c;
	bool found = false;

	if (!e)
		e = ipc__end_find(t, id, IPC_PRODUCER);
	if (e) {
		/* Pairs with the ipc__or_acq_rel of flags in
		 * ipc__chan_end_detach_locked() and ipc_channel_add_opts(). */
		*flags = ipc__load_acquire(&e->c->flags);
		*pending = ipc__ring_count(&e->c->idx);
		return true;
	}
	if (ipc__lock_buf(t->b))
		return false;
	struct ipc__dirent *d = ipc__dir_find_locked(t->b, id);
	c = d ? dirent_chan_locked(t->b, d) : NULL;
	if (c) {
		/* Pairs with the same: ipc__chan_end_detach_locked(),
		 * ipc_channel_add_opts(). */
		*flags = ipc__load_acquire(&c->flags);
		*pending = ipc__ring_count(&c->idx);
		found = true;
	}
	ipc__unlock_buf(t->b);
	return found;
}

bool ipc_channel_has_producer(struct ipc_tls *t, uint64_t id)
{
	uint32_t f;
	uint64_t n;
	return !ipc__tls_check(t) && chan_state(t, id, &f, &n) && (f & IPC__P_ATTACHED) &&
	       !(f & (IPC__P_CLOSED | IPC__P_DEAD));
}

size_t ipc_channel_pending(struct ipc_tls *t, uint64_t id)
{
	uint32_t f;
	uint64_t n;
	return !ipc__tls_check(t) && chan_state(t, id, &f, &n) ? (size_t)n : 0;
}

/* ---- send and receive --------------------------------------------------- */

/* Is peer pid (started at start, in process slot proc) alive? In another
 * PID namespace (or when /proc is not our namespace's) its pid means
 * nothing here: its slot's robust-futex life word says (ipc__proc_alive).
 * In ours, the first look reads /proc (which also tells a zombie and a
 * reused pid); then a pidfd, opened while the peer was known alive, answers
 * with one poll() until the peer changes. */
static bool peer_alive(struct ipc_tls *t, struct ipc__end *e, uint32_t proc, pid_t pid,
                       uint64_t start)
{
	if (!ipc__proc_same_ns(t->b, proc))
		return ipc__proc_alive(t->b, proc, pid, start);
	if (e->pidfd >= 0 && e->pidfd_pid == pid) {
		struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
		int n = poll(&p, 1, 0);
		if (n >= 0)
			return n == 0; /* readable: it exited */
	}
	if (e->pidfd >= 0) {
		close(e->pidfd);
		e->pidfd = -1;
	}
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (!ipc__pid_alive(pid, start)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (fd >= 0) { /* opened before the check above: it is the same process */
		e->pidfd = fd;
		e->pidfd_pid = pid;
	}
	return true;
}

/* Who holds the other end of e. */
static struct ipc__end_owner *peer_of(struct ipc__end *e)
{
	return e->role == IPC_PRODUCER ? &e->c->cons : &e->c->prod;
}

/* The peer is a thread of this very process: it cannot die without us, so
 * a sleep need not wake up to check on it. */
static bool peer_is_us(struct ipc_tls *t, struct ipc__end *e)
{
	struct ipc__end_owner *o = peer_of(e);
	/* The slot too: pids of other PID namespaces may equal ours.
	 * Pairs with ipc_channel_add_opts()'s release store of pid: start. */
	return ipc__load_acquire(&o->pid) == (int32_t)t->b->pid && o->proc == t->b->proc &&
	       o->start == t->b->start;
}

/* Is the peer of end e gone without closing? Checked at most every
 * LIVENESS_EVERY_MS; a dead peer's end is marked dead for everyone. */
static void peer_check(struct ipc_tls *t, struct ipc__end *e)
{
	int64_t now = ipc__now_ms();
	if (now < e->next_check_ms)
		return;
	e->next_check_ms = now + LIVENESS_EVERY_MS;
	struct ipc__chan *c = e->c;
	struct ipc__end_owner *o = peer_of(e);
	/* pairs with ipc_channel_add_opts()'s release store of pid: start */
	pid_t pid = ipc__load_acquire(&o->pid);
	if (pid == 0 || peer_alive(t, e, o->proc, pid, o->start))
		return;
	if (ipc__lock_buf(t->b))
		return;
	if (ipc__load_relaxed(&o->pid) == pid) /* nobody marked it meanwhile */
		ipc__chan_end_detach_locked(t->b, c, e->role == IPC_PRODUCER ? IPC_CONSUMER
		                                                             : IPC_PRODUCER, true);
	ipc__unlock_buf(t->b);
}

/* The record at offset off (read from a ring slot), checked in full
 * (ipc__rec_fast, else ipc__rec_check for a record alone in its run): held
 * by this process from now on, no longer queued. NULL when it is not a
 * live record. */
static inline __attribute__((always_inline)) struct ipc__rec *rec_take(struct ipc_buffer *b,
                                                                      uint64_t off)
{
	uint64_t w, at = off - b->geo.data_off;
	struct ipc__rec *r = ipc__rec_fast(b, at, &w);
	if (__builtin_expect(!r, 0)) {
		r = at < b->rec_span ? ipc__rec_check(b, b->data + at + sizeof(*r)) : NULL;
		if (!r)
			return NULL;
		w = ipc__load_relaxed(&r->word);
	}
	ipc__store_relaxed(&r->word, (w & IPC__REC_SIZE_MASK) | (uint64_t)(b->proc + 1) << 48);
	return r;
}

static __attribute__((noinline, cold)) int bad_slot(struct ipc__end *e, uint64_t off)
{
	fprintf(stderr, "libipc: channel %llu: slot holds no valid record (offset %llu): skipped\n",
	        (unsigned long long)e->id, (unsigned long long)off);
	return -EBADMSG;
}

/* The consumer's sleep flag was seen set after a put: clear it and wake
 * it (the flag stays clear for the records that follow until it sleeps
 * again). Returns IPC_TX_SUCCESS, for the send that called it. */
static __attribute__((noinline)) int wake_consumer(struct ipc__chan *c)
{
	/* Pairs with nap()'s seq_cst store of the flag: one waker takes it. */
	if (ipc__xchg_acq_rel(&c->cons_sleep, 0)) {
		/* Pairs with nap()'s acquire load of the sequence word. */
		ipc__add_acq_rel(&c->cons_seq, 1);
		ipc__futex_wake(&c->cons_seq);
	}
	return IPC_TX_SUCCESS;
}

/* The producer's sleep flag was seen set after a take: wake it, once half
 * the ring is free (or the ring is empty): waking it for every slot would
 * make both sides take turns on one core. Returns IPC_TX_SUCCESS. */
static __attribute__((noinline)) int wake_producer(struct ipc__end *e)
{
	struct ipc__chan *c = e->c;
	/* Pairs with nap()'s seq_cst store of the flag: one waker takes it. */
	if (ipc__load_relaxed(&c->idx.tail) - e->v.pos <= e->v.capacity / 2 &&
	    ipc__xchg_acq_rel(&c->prod_sleep, 0)) {
		/* Pairs with nap()'s acquire load of the sequence word. */
		ipc__add_acq_rel(&c->prod_seq, 1);
		ipc__futex_wake(&c->prod_seq);
	}
	return IPC_TX_SUCCESS;
}

/* try_send and try_recv are the whole fast path: inlined into every caller. */
static inline __attribute__((always_inline)) int try_send(struct ipc_tls *t, struct ipc__end *e,
                                                          void **rec)
{
	struct ipc__chan *c = e->c;
	struct ipc__rec *r = ipc__rec_check_fast(t->b, *rec);

	if (!r)
		return -EINVAL;
	uint64_t w = ipc__load_relaxed(&r->word);
	if (__builtin_expect((w >> 48) != t->b->proc + 1, 0)) /* not ours, or queued */
		return (w & IPC__REC_QUEUED) ? -EALREADY : -EINVAL;
	if (ipc__load_relaxed(&c->flags) & (IPC__C_CLOSED | IPC__C_DEAD))
		return -EPIPE;
	if (ipc__ring_full(&e->v))
		return IPC_TX_RETRY;
	/* Queued, and still marked as ours (see ipc__chan_adopt_locked); put's
	 * release store of the slot publishes it with the record. */
	ipc__store_relaxed(&r->word, w | IPC__REC_QUEUED);
	ipc__ring_put(&e->v, ipc__off(t->b, r), false);
	atomic_signal_fence(memory_order_seq_cst); /* keep the flag load after it */
	if (e->wait != IPC_WAIT_SPIN && ipc__load_relaxed(&c->cons_sleep))
		wake_consumer(c);
	*rec = NULL;
	return IPC_TX_SUCCESS;
}

static inline __attribute__((always_inline)) int try_recv(struct ipc_tls *t, struct ipc__end *e,
                                                          void **rec)
{
	struct ipc__chan *c = e->c;
	uint64_t off = ipc__ring_peek(&e->v);

	if (off == 0) {
		if (t->fcount)
			ipc__free_flush(t); /* idle: count batched frees now */
		/* Pairs with ipc__chan_end_detach_locked()'s ipc__or_acq_rel of
		 * P_CLOSED / P_DEAD, made after the producer's last put. */
		uint32_t f = ipc__load_acquire(&c->flags);
		/* Closed or dead after its last put: look once more. */
		if (!(f & (IPC__P_CLOSED | IPC__P_DEAD)) || !ipc__ring_empty(&e->v))
			return IPC_TX_RETRY;
		return (f & IPC__P_DEAD) ? IPC_TX_ABORTED : IPC_TX_EOF;
	}
	/* Checked (its size bounded by its slab or run, so a forged size never
	 * reaches the caller) and ours before the slot is released: if we die
	 * in between, the reaper finds it at the head of the ring and gives it
	 * back to the channel. */
	struct ipc__rec *r = rec_take(t->b, off);
	ipc__ring_take(&e->v, false);
	atomic_signal_fence(memory_order_seq_cst); /* keep the flag load after it */
	if (e->wait != IPC_WAIT_SPIN && ipc__load_relaxed(&c->prod_sleep))
		wake_producer(e);
	if (__builtin_expect(!r, 0))
		return bad_slot(e, off);
	/* No prefetch of the next record here: while the consumer keeps up,
	 * the producer is still writing it, and asking for its lines early
	 * takes them away from the producer (measured: -20 %). */
	*rec = r + 1;
	return IPC_TX_SUCCESS;
}

/* The slow path of a wait: is the peer alive, and (consumer) does tail say
 * that the empty-looking slot was filled, which only corrupt memory does?
 * IPC_TX_RETRY when neither; -EBADMSG after skipping a corrupt slot. */
static int stalled(struct ipc_tls *t, struct ipc__end *e)
{
	peer_check(t, e);
	if (e->role != IPC_CONSUMER || !ipc__ring_slot_corrupt(&e->v))
		return IPC_TX_RETRY;
	fprintf(stderr, "libipc: channel %llu: slot %llu was sent but holds nothing: skipped\n",
	        (unsigned long long)e->id, (unsigned long long)e->v.pos);
	ipc__ring_take(&e->v, e->wait != IPC_WAIT_SPIN);
	return -EBADMSG;
}

/* Sleep until the ring may have changed, for at most left_ms (-1: no
 * bound). Returns early when the condition is already gone. A peer in
 * another process is watched through its death notice (notice.c), or, where
 * there is none, looked at after every SLEEP_SLICE_MS. */
static void nap(struct ipc_tls *t, struct ipc__end *e, int64_t left_ms)
{
	struct ipc__chan *c = e->c;
	bool prod = e->role == IPC_PRODUCER;
	ipc_a32 *seq = prod ? &c->prod_seq : &c->cons_seq;
	ipc_a32 *flag = prod ? &c->prod_sleep : &c->cons_sleep;
	/* Pairs with the acq_rel bump of the sequence word in wake_consumer(),
	 * wake_producer() and ipc__chan_wake_all(). */
	uint32_t s = ipc__load_acquire(seq);
	bool fresh = ipc__load_relaxed(flag) == 0;

	/* seq_cst flag store, then seq_cst index load (see the top of this
	 * file): either the other side sees the flag or this sees its index.
	 * Pairs with its flag load (try_send(), try_recv(), send_fast(),
	 * recv_fast()) and its index store (ipc__ring_put(), ipc__ring_take()). */
	if (fresh)
		ipc__store_seq_cst(flag, 1);
	/* pairs with ipc__ring_put()'s / ipc__ring_take()'s index store */
	bool still = prod ? e->v.pos - ipc__load_seq_cst(&c->idx.head) >= e->v.capacity
	                  : ipc__load_seq_cst(&c->idx.tail) == e->v.pos;
	/* Pairs with ipc__chan_end_detach_locked()'s ipc__or_acq_rel of the
	 * peer's closed / dead flag. */
	uint32_t f = ipc__load_acquire(&c->flags);
	if (!still || (f & (prod ? (IPC__C_CLOSED | IPC__C_DEAD) : (IPC__P_CLOSED | IPC__P_DEAD))))
		return;
	int64_t us = left_ms < 0 ? -1 : left_ms * 1000;
	if (fresh && (us < 0 || us > FIRST_NAP_US))
		us = FIRST_NAP_US;
	struct ipc__end_owner *o = peer_of(e);
	/* pairs with ipc_channel_add_opts()'s release store of pid: proc */
	pid_t pid = ipc__load_acquire(&o->pid);
	/* Nothing to watch while the peer has not attached (its attach wakes
	 * us), nor when it is a thread of ours (it cannot die without us). */
	if ((pid == 0 && !(f & (prod ? IPC__C_ATTACHED : IPC__P_ATTACHED))) || peer_is_us(t, e)) {
		ipc__futex_wait_us(seq, s, us);
		return;
	}
	uint32_t proc = o->proc, seen;
	int notice = pid != 0 ? ipc__notice_arm(t->b, proc, &seen) : 0;
	if (notice > 0) {
		int rc = ipc__notice_wait(t->b, seq, s, proc, seen, us);
		if (ipc__notice_pass(t->b, proc, seen))
			e->next_check_ms = 0; /* it may have died: look now */
		if (rc != -ENOSYS)
			return;
	}
	if (us < 0 || us > SLEEP_SLICE_MS * 1000)
		us = SLEEP_SLICE_MS * 1000;
	if (notice < 0) {
		/* Its keeper died with it; its last threads may still be on
		 * their way out, and their exit makes the pidfd readable.
		 * (A peer that exec'd without closing also lands here, and is
		 * looked at every SLEEP_SLICE_MS while its pid lives.) */
		e->next_check_ms = 0; /* look at it once this returns */
		if (!peer_alive(t, e, proc, pid, o->start))
			return;
		if (e->pidfd >= 0 && e->pidfd_pid == pid) {
			struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
			poll(&p, 1, (int)((us + 999) / 1000));
			return;
		}
	}
	ipc__futex_wait_us(seq, s, us);
}

/* The wait is over: the peer need not wake us any more. */
static void nap_done(struct ipc__end *e)
{
	struct ipc__chan *c = e->c;
	ipc__store_relaxed(e->role == IPC_PRODUCER ? &c->prod_sleep : &c->cons_sleep, 0);
}

/* Mode hybrid spins for e->spin_ns before sleeping, and adapts it: a wait
 * that ends while spinning grows it by an eighth (up to SPIN_NS), one that
 * has to sleep halves it (down to SPIN_NS_MIN). With a peer running on another core the
 * spin catches the next record without a system call; on an oversubscribed
 * machine, where the peer needs this core to make progress, spinning mostly
 * fails and the waiter soon sleeps at once. */
static inline __attribute__((always_inline)) int
wait_loop(struct ipc_tls *t, struct ipc__end *e, void **rec, int timeout_ms,
          int (*try)(struct ipc_tls *, struct ipc__end *, void **))
{
	int rc;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : ipc__now_ms() + timeout_ms;
	int64_t spin_until = 0;
	bool spinning = e->wait != IPC_WAIT_BLOCK, slept = false;

	if (e->spin_ns == 0)
		e->spin_ns = SPIN_NS;
	/* A producer waiting for room backs off between looks: each look at
	 * head pulls the consumer's line away from it, and room comes in
	 * batches anyway. A consumer looks at once (latency). */
	uint32_t backoff = 1, backoff_max = e->role == IPC_PRODUCER ? 64 : 1;
	for (uint64_t round = 0;; round++) {
		if (spinning) {
			for (uint32_t i = 0; i < backoff; i++)
				ipc__cpu_relax();
			if (backoff < backoff_max)
				backoff <<= 1;
			if ((round & 63) != 63)
				goto again;
			int64_t ns = ipc__now_ns();
			/* Spins that mostly fail (the adaptive spin is short), or a
			 * spin-mode wait that outlasts SPIN_YIELD_NS, mean the peer may be
			 * waiting for this very core: let it have it. */
			if ((e->wait == IPC_WAIT_HYBRID && e->spin_ns < SPIN_NS / 4) ||
			    (e->wait == IPC_WAIT_SPIN && spin_until && ns > spin_until))
				sched_yield();
			if (spin_until == 0)
				spin_until = ns + (e->wait == IPC_WAIT_SPIN ? SPIN_YIELD_NS : e->spin_ns);
			else if (e->wait != IPC_WAIT_SPIN && ns > spin_until)
				spinning = false;
		}
		int64_t now = ipc__now_ms();
		if (now >= deadline || (rc = stalled(t, e)) != IPC_TX_RETRY) {
			if (slept)
				nap_done(e);
			return now >= deadline ? IPC_TX_RETRY : rc;
		}
		if (spinning)
			continue;
		if (!slept && e->wait == IPC_WAIT_HYBRID && e->spin_ns > SPIN_NS_MIN)
			e->spin_ns /= 2;
		slept = true;
		ipc__free_flush(t);
		nap(t, e, deadline == INT64_MAX ? -1 : deadline - now);
again:
		rc = try(t, e, rec);
		if (rc != IPC_TX_RETRY) {
			if (!slept && e->spin_ns < SPIN_NS)
				e->spin_ns += e->spin_ns / 8;
			if (slept)
				nap_done(e);
			return rc;
		}
	}
}

/* The waits, after a first try found nothing to do. */
static __attribute__((noinline)) int send_wait_slow(struct ipc_tls *t, struct ipc__end *e,
                                                    void **rec, int timeout_ms)
{
	return wait_loop(t, e, rec, timeout_ms, try_send);
}

static __attribute__((noinline)) int recv_wait_slow(struct ipc_tls *t, struct ipc__end *e,
                                                    void **rec, int timeout_ms)
{
	return wait_loop(t, e, rec, timeout_ms, try_recv);
}

/*
 * The public calls. Each tries the common case first without any call, so
 * that it needs no stack frame: a valid handle, the end used last, a
 * record whose check word is right (send; the receiver checks it in full)
 * or that passes ipc__rec_fast (receive), room (or a record) in the ring, no
 * sleeper to wake. Everything else, errors included, goes to its _slow
 * twin, which starts over with the full checks.
 */
static __attribute__((noinline)) int send_slow(struct ipc_tls *t, uint64_t id, void **rec,
                                               int timeout_ms, bool wait)
{
	struct ipc__end *e;
	int bad = ipc__tls_check(t);
	if (bad || !rec)
		return bad ? bad : -EINVAL;
	if (!(e = ipc__end_find(t, id, IPC_PRODUCER)))
		return -ENOENT;
	int rc = try_send(t, e, rec);
	if (rc != IPC_TX_RETRY)
		return rc;
	return wait ? send_wait_slow(t, e, rec, timeout_ms) : stalled(t, e);
}

static __attribute__((noinline)) int recv_slow(struct ipc_tls *t, uint64_t id, void **rec,
                                               int timeout_ms, bool wait)
{
	struct ipc__end *e;
	int bad = ipc__tls_check(t);
	if (bad || !rec)
		return bad ? bad : -EINVAL;
	if (!(e = ipc__end_find(t, id, IPC_CONSUMER)))
		return -ENOENT;
	int rc = try_recv(t, e, rec);
	if (rc != IPC_TX_RETRY)
		return rc;
	if (wait)
		return recv_wait_slow(t, e, rec, timeout_ms);
	if ((rc = stalled(t, e)) == IPC_TX_RETRY)
		rc = try_recv(t, e, rec);
	return rc;
}

/* What the fast paths return besides IPC_TX_SUCCESS: done, and the peer
 * sleeps (the caller wakes it with a tail call); not done (the caller
 * starts over on its slow path). */
#define FAST_WAKE (-1)
#define FAST_NOT (IPC_TX_RETRY)

/* try_send's common case; FAST_NOT for anything else (nothing done). */
static inline __attribute__((always_inline)) int send_fast(struct ipc_tls *t, uint64_t id,
                                                           void **rec)
{
	if (__builtin_expect(!ipc__tls_ok(t) || !rec, 0))
		return FAST_NOT;
	struct ipc__end *e = t->last[IPC_PRODUCER & 3];
	if (__builtin_expect(!e || e->id != id || e->used != 1, 0))
		return FAST_NOT;
	struct ipc_buffer *b = t->b;
	struct ipc__chan *c = e->c;
	uint64_t w;
	/* What send needs of the record (it reads nothing else of it): inside
	 * the mapping, aligned, its check word right; the receiver checks the
	 * rest (ipc__rec_fast). */
	uintptr_t p = (uintptr_t)*rec;
	struct ipc__rec *r = (struct ipc__rec *)p - 1;
	if (__builtin_expect((p & 15) || p - (uintptr_t)b->data - sizeof(*r) >= b->rec_span, 0))
		return FAST_NOT;
	w = ipc__load_relaxed(&r->word);
	if (ipc__load_relaxed(&r->check) !=
	    ipc__rec_check_word(w & IPC__REC_SIZE_MASK, ipc__load_relaxed(&r->slab)))
		return FAST_NOT;
	/* held by us (not queued, not another's), the consumer there, room */
	if (__builtin_expect((w >> 48) != b->proc + 1 ||
	                     (ipc__load_relaxed(&c->flags) & (IPC__C_CLOSED | IPC__C_DEAD)) ||
	                     ipc__ring_full(&e->v), 0))
		return FAST_NOT;
	ipc__store_relaxed(&r->word, w | IPC__REC_QUEUED);
	ipc__ring_put(&e->v, ipc__off(b, r), false);
	atomic_signal_fence(memory_order_seq_cst); /* keep the flag load after it */
	*rec = NULL;
	if (e->wait != IPC_WAIT_SPIN && ipc__load_relaxed(&c->cons_sleep))
		return FAST_WAKE;
	return IPC_TX_SUCCESS;
}

/* try_recv's common case; FAST_NOT for anything else (nothing done). */
static inline __attribute__((always_inline)) int recv_fast(struct ipc_tls *t, uint64_t id,
                                                           void **rec)
{
	if (__builtin_expect(!ipc__tls_ok(t) || !rec, 0))
		return FAST_NOT;
	struct ipc__end *e = t->last[IPC_CONSUMER & 3];
	if (__builtin_expect(!e || e->id != id || e->used != 1, 0))
		return FAST_NOT;
	struct ipc_buffer *b = t->b;
	uint64_t w;
	/* An empty slot (0) fails the check too: 0 lies before the heap. */
	struct ipc__rec *r = ipc__rec_fast(b, ipc__ring_peek(&e->v) - b->geo.data_off, &w);
	if (__builtin_expect(!r, 0))
		return FAST_NOT;
	/* Ours before the slot is released (see try_recv). */
	ipc__store_relaxed(&r->word, (w & IPC__REC_SIZE_MASK) | (uint64_t)(b->proc + 1) << 48);
	ipc__ring_take(&e->v, false);
	atomic_signal_fence(memory_order_seq_cst); /* keep the flag load after it */
	*rec = r + 1;
	if (e->wait != IPC_WAIT_SPIN && ipc__load_relaxed(&e->c->prod_sleep))
		return FAST_WAKE;
	return IPC_TX_SUCCESS;
}

int ipc_record_send(struct ipc_tls *t, uint64_t id, void **rec)
{
	int rc = send_fast(t, id, rec);
	if (__builtin_expect(rc == IPC_TX_SUCCESS, 1))
		return rc;
	if (rc == FAST_WAKE)
		return wake_consumer(t->last[IPC_PRODUCER & 3]->c);
	return send_slow(t, id, rec, 0, false);
}

int ipc_record_recv(struct ipc_tls *t, uint64_t id, void **rec)
{
	int rc = recv_fast(t, id, rec);
	if (__builtin_expect(rc == IPC_TX_SUCCESS, 1))
		return rc;
	if (rc == FAST_WAKE)
		return wake_producer(t->last[IPC_CONSUMER & 3]);
	return recv_slow(t, id, rec, 0, false);
}

int ipc_record_send_wait(struct ipc_tls *t, uint64_t id, void **rec, int timeout_ms)
{
	int rc = send_fast(t, id, rec);
	if (__builtin_expect(rc == IPC_TX_SUCCESS, 1))
		return rc;
	if (rc == FAST_WAKE)
		return wake_consumer(t->last[IPC_PRODUCER & 3]->c);
	return send_slow(t, id, rec, timeout_ms, true);
}

int ipc_record_recv_wait(struct ipc_tls *t, uint64_t id, void **rec, int timeout_ms)
{
	int rc = recv_fast(t, id, rec);
	if (__builtin_expect(rc == IPC_TX_SUCCESS, 1))
		return rc;
	if (rc == FAST_WAKE)
		return wake_producer(t->last[IPC_CONSUMER & 3]);
	return recv_slow(t, id, rec, timeout_ms, true);
}

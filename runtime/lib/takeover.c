/*
 * Taking over the channel ends of a dead process (restart policies).
 *
 * An end is held (ipc_channel_hold) by the process that owns it when a
 * successor may come. Its process's death then makes it an orphan instead
 * of dead (channel.c, ipc__chan_end_detach_locked): the peer does not see
 * IPC_TX_ABORTED / -EPIPE, it waits (a producer until the ring is full, a
 * consumer once it has drained what was committed). A new process takes
 * the orphan over (ipc_channel_takeover):
 *
 *   - a new producer continues the stream at tail, after the records its
 *     predecessor committed (a slot the dead one filled without publishing
 *     tail was published by the reaper: ipc__chan_adopt_locked);
 *   - a new consumer continues at head: what is queued is its, including a
 *     record the dead one had peeked at but not released (the reaper gave
 *     it back to the channel).
 *
 * Records the dead process held (allocated and not sent, received and not
 * freed) are freed by the reaper and are lost: ipc_buffer_reap_lost counts
 * them. When nobody will take over, ipc_buffer_orphans_abort makes every
 * orphan dead: its peer sees what it would have seen at the death.
 *
 * Flags change under the buffer lock (L); the peer reads them with acquire
 * loads on its slow path only: nothing here touches the data path.
 */
#include <errno.h>

#include "internal.h"

static struct ipc__chan *find_chan_locked(struct ipc_buffer *b, uint64_t id, int *err)
{
	struct ipc__dirent *d = ipc__dir_find_locked(b, id);
	void *c = NULL;
	*err = !d ? -ENOENT : ipc__dir_obj_locked(b, d, IPC__BLK_CHANNEL, &c);
	return *err ? NULL : c;
}

int ipc_channel_hold(struct ipc_tls *t, uint64_t id, enum ipc_role role)
{
	if (!t || (role != IPC_PRODUCER && role != IPC_CONSUMER))
		return -EINVAL;
	struct ipc__end *e = ipc__end_find(t, id, (uint8_t)role);
	if (!e)
		return -ENOENT;
	/* no lock: our own end, and the flag only matters once we are dead
	 * (ipc__chan_end_detach_locked() reads it then, under L). Pairs with
	 * the acquire loads of flags in ipc_channel_takeover(). */
	ipc__or_acq_rel(&e->c->flags, role == IPC_PRODUCER ? IPC__P_HELD : IPC__C_HELD);
	return 0;
}

int ipc_channel_takeover(struct ipc_tls *t, uint64_t id, enum ipc_role role,
                         const struct ipc_channel_opts *opts)
{
	if (!t || (role != IPC_PRODUCER && role != IPC_CONSUMER))
		return -EINVAL;
	struct ipc_buffer *b = t->b;
	bool prod = role == IPC_PRODUCER;
	uint32_t attached = prod ? IPC__P_ATTACHED : IPC__C_ATTACHED;
	uint32_t orphan = prod ? IPC__P_ORPHAN : IPC__C_ORPHAN;
	uint32_t gone = prod ? (IPC__P_CLOSED | IPC__P_DEAD) : (IPC__C_CLOSED | IPC__C_DEAD);
	if (ipc__end_find(t, id, (uint8_t)role))
		return -EALREADY;
	if (ipc__lock_buf(b))
		return -EIDRM;
	int err;
	struct ipc__chan *c = find_chan_locked(b, id, &err);
	/* Pairs with the ipc__or_acq_rel of flags in ipc_channel_hold(),
	 * ipc__chan_end_detach_locked() and ipc_channel_add_opts(). */
	uint32_t f = c ? ipc__load_acquire(&c->flags) : 0;
	if (c && (f & attached) && !(f & (orphan | gone))) {
		/* its owner may have died without anyone noticing yet */
		b->reap_locked(b);
		/* pairs with ipc__chan_end_detach_locked()'s, as above */
		f = ipc__load_acquire(&c->flags);
	}
	if (!c || !(f & attached)) {
		/* nobody to take over from: an ordinary attach */
		ipc__unlock_buf(b);
		return err == -ENOENT || !err ? ipc_channel_add_opts(t, id, role, opts) : err;
	}
	if (f & gone) {
		err = -EPIPE; /* closed, or its owner died unheld: that stream ended */
		goto out;
	}
	if (!(f & orphan)) {
		err = -EBUSY; /* its owner lives */
		goto out;
	}
	struct ipc__end *e = ipc__end_add(t, id, (uint8_t)role);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	struct ipc__end_owner *o = prod ? &c->prod : &c->cons;
	o->proc = b->proc;
	o->start = b->start;
	/* Pairs with the acquire loads of pid in peer_check(), nap() and
	 * peer_is_us() (channel.c): publishes proc and start. */
	ipc__store_release(&o->pid, (int32_t)b->pid);
	/* Pairs with the acquire loads of flags in try_recv() and nap(). */
	atomic_fetch_and_explicit(&c->flags, ~orphan, memory_order_acq_rel);
	e->c = c;
	e->wait = (uint8_t)c->wait;
	ipc__ring_view_init(&e->v, &c->idx, c->ring, c->mask, c->capacity, prod);
	ipc__chan_wake_all(c); /* the peer waits on nothing that says we came */
	err = 0;
out:
	ipc__unlock_buf(b);
	return err;
}

int ipc_buffer_orphans_abort(struct ipc_buffer *b)
{
	if (!b)
		return -EINVAL;
	if (ipc__lock_buf(b))
		return -EIDRM;
	struct ipc__dirent *d = ipc__dirent_at(b, 0);
	int n = 0;
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o = NULL;
		/* segments, and corrupt entries (reported), are left alone */
		if (d[i].off <= IPC__DIR_TOMB ||
		    ipc__run_kind(b, d[i].off, NULL) != IPC__BLK_CHANNEL ||
		    ipc__dir_obj_locked(b, &d[i], IPC__BLK_CHANNEL, &o))
			continue;
		struct ipc__chan *c = o;
		/* Pairs with ipc__chan_end_detach_locked()'s ipc__or_acq_rel of
		 * the ORPHAN flags. */
		uint32_t f = ipc__load_acquire(&c->flags);
		uint32_t add = 0;
		if (f & IPC__P_ORPHAN)
			add |= IPC__P_DEAD;
		if (f & IPC__C_ORPHAN)
			add |= IPC__C_DEAD;
		if (!add)
			continue;
		atomic_fetch_and_explicit(&c->flags, ~(uint32_t)(IPC__P_ORPHAN | IPC__C_ORPHAN),
		                          memory_order_relaxed);
		/* Pairs with the acquire loads of flags in try_recv() and nap(). */
		ipc__or_acq_rel(&c->flags, add);
		ipc__chan_wake_all(c);
		ipc__chan_maybe_destroy_locked(b, &d[i]);
		n++;
	}
	ipc__unlock_buf(b);
	return n;
}

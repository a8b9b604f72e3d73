/*
 * Reaping of dead processes and garbage collection. Layer 6 (README,
 * "Project layout and development"): it reaches channels, records and
 * segments below it; only the buffer API is above.
 *
 * A process found provably dead (live.c) is reaped under L: its thread
 * slots, slabs, channel ends, segment uses and the records it held. A
 * buffer nobody uses any more is removed (ipc_buffer_gc).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/* ---- dead processes (L held) ------------------------------------------- */

static void reap_proc_locked(struct ipc_buffer *b, uint32_t slot, pid_t pid)
{
	struct ipc__dirent *d = ipc__dirent_at(b, 0);

	/* Its threads' slots: fold counters, free the slots. */
	for (uint32_t i = 0; i < b->geo.max_tls; i++) {
		struct ipc__tslot *t = ipc__tslot_at(b, i);
		if (!ipc__load_relaxed(&t->used) || t->proc != slot)
			continue;
		ipc__free_reap_locked(b, t);
		ipc__slab_drain_locked(b, t, 0);
		ipc__tslot_reset_locked(t, IPC__RET_CLOSED);
		/* Pairs with ipc_tls_open()'s load of used (under L): the slot was
		 * reset first. */
		ipc__store_release(&t->used, 0);
	}
	/* Its slabs: seal those still being carved, as their owner would; give
	 * back the empty ones it kept aside. */
	for (uint32_t blk = 0; blk < b->geo.nblocks;) {
		uint32_t len = b->blk[blk].len;
		if (len == 0 || len > b->geo.nblocks - blk)
			len = 1;
		struct ipc__slab *s = ipc__slab_at(b, b->geo.data_off + (uint64_t)blk * IPC_BLOCK);
		if (s && ipc__load_relaxed(&s->proc) == slot) {
			if (!s->sealed)
				ipc__slab_seal_locked(b, s, ipc__load_relaxed(&s->carved) -
				                              ipc__load_relaxed(&s->local_freed));
			/* Pairs with the freers' acq_rel decrements of live
			 * (ipc__rec_free(), ipc__free_flush()): every free is seen. */
			else if (ipc__load_acquire(&s->live) == 0)
				ipc__slab_give_back_locked(b, s);
		}
		blk += len;
	}
	/* Its channel ends: dead, so that peers drain and stop. */
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o = NULL;
		if (d[i].off <= IPC__DIR_TOMB || ipc__dir_obj_locked(b, &d[i], IPC__BLK_CHANNEL, &o) ||
		    !o)
			continue;
		struct ipc__chan *c = o;
		/* Pairs with the ipc__or_acq_rel of flags in
		 * ipc__chan_end_detach_locked() and ipc_channel_add_opts(). */
		uint32_t f = ipc__load_acquire(&c->flags);
		if ((f & IPC__P_ATTACHED) && !(f & (IPC__P_CLOSED | IPC__P_DEAD)) &&
		    ipc__load_relaxed(&c->prod.pid) == pid && c->prod.proc == slot)
			ipc__chan_end_detach_locked(b, c, IPC_PRODUCER, true);
		if ((f & IPC__C_ATTACHED) && !(f & (IPC__C_CLOSED | IPC__C_DEAD)) &&
		    ipc__load_relaxed(&c->cons.pid) == pid && c->cons.proc == slot)
			ipc__chan_end_detach_locked(b, c, IPC_CONSUMER, true);
		if ((f & IPC__P_ATTACHED) && c->prod.proc == slot)
			ipc__chan_adopt_locked(b, c, slot);
		ipc__chan_maybe_destroy_locked(b, &d[i]);
	}
	ipc__seg_reap_locked(b, slot);
	/* What it held (allocated and not sent, or received and not freed). */
	b->reaped_records += ipc__rec_reap_locked(b, slot);
}

int ipc__reap_locked(struct ipc_buffer *b)
{
	int n = 0;

	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		pid_t pid = ipc__load_relaxed(&p->pid);
		if (pid == 0 || (pid == b->pid && i == b->proc) ||
		    ipc__slot_alive(p, pid, p->start, b->pidns))
			continue;
		reap_proc_locked(b, i, pid);
		/* Pairs with the acquire loads of pid in ipc__proc_alive(),
		 * ipc__pid_alive_in(), ipc__holder_dead(): the slot is free. */
		ipc__store_release(&p->pid, 0);
		ipc__add_relaxed(&b->hdr->nprocs, (uint32_t)-1);
		n++;
	}
	return n;
}

int ipc_buffer_reap(struct ipc_buffer *b)
{
	int n = ipc__buf_check(b);
	if (n)
		return n;
	if (ipc__lock_buf(b))
		return -EIDRM;
	n = ipc__reap_locked(b);
	ipc__unlock_buf(b);
	return n;
}

int ipc_buffer_reap_lost(struct ipc_buffer *b, uint64_t *lost)
{
	if (!b || !lost)
		return -EINVAL;
	if (ipc__lock_buf(b))
		return -EIDRM;
	uint64_t before = b->reaped_records;
	int n = ipc__reap_locked(b);
	*lost = b->reaped_records - before;
	ipc__unlock_buf(b);
	return n;
}

/* ---- garbage collection ------------------------------------------------- */

/* System V segments: how many attaches it has (every process that maps it,
 * in any PID namespace), or -1. */
static int sysv_nattch(const struct ipc__shm *s)
{
	struct shmid_ds ds;
	if (s->shmid < 0 || shmctl(s->shmid, IPC_STAT, &ds) != 0)
		return -1;
	return (int)ds.shm_nattch;
}

/* A System V semaphore set owned and created by our euid (root too leaves
 * other users' sets alone). */
static bool sem_ours(int semid)
{
	struct semid_ds ds = {0};
	union semun { int val; struct semid_ds *buf; } arg = {.buf = &ds};
	return semctl(semid, 0, IPC_STAT, arg) == 0 && ds.sem_perm.uid == geteuid() &&
	       ds.sem_perm.cuid == geteuid();
}

/* The keyed semaphore set of handle, when no buffer of either memory kind
 * exists to own it (memfd buffers never use the key): a creator that died
 * between the two, or a destroy cut short. 1 removed, 0 none, -EBUSY a
 * buffer of the handle exists (the set may be its own). */
static int gc_orphan_sem(const char *handle)
{
	char name[IPC_HANDLE_MAX + 16];
	int semid = semget(ipc__sysv_key(handle, 1), 0, 0);
	if (semid < 0)
		return 0;
	snprintf(name, sizeof(name), "/ipc.%s", handle);
	int fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
	if (fd >= 0 || errno != ENOENT) {
		if (fd >= 0)
			close(fd);
		return -EBUSY;
	}
	if (shmget(ipc__sysv_key(handle, 0), 0, 0) >= 0 || errno != ENOENT)
		return -EBUSY;
	if (!sem_ours(semid))
		return -EPERM;
	return semctl(semid, 0, IPC_RMID) == 0 ? 1 : -errno;
}

int ipc_buffer_gc(const char *handle, enum ipc_shm_kind kind)
{
	struct ipc__shm s;
	int removed = 0, err;

	if (!ipc__handle_ok(handle))
		return -EINVAL;
	if (kind == IPC_SHM_DEFAULT)
		kind = IPC_SHM_POSIX;
	if (kind < IPC_SHM_POSIX || kind > IPC_SHM_MEMFD)
		return -EINVAL;
	err = ipc__shm_open(&s, kind, handle);
	if (err == -ENOENT || err == -EIDRM)
		return kind == IPC_SHM_MEMFD ? 0 : gc_orphan_sem(handle);
	if (err) {
		ipc__shm_detach(&s);
		return err; /* -EPERM: another user's, or not a buffer: untouched */
	}
	size_t size = ipc__shm_size(&s);
	int nattch = sysv_nattch(&s); /* before we attach ourselves */
	if (size < 4096 || ipc__shm_map(&s, size) != 0) {
		if (ipc__shm_creator_busy(&s) == 0 || (kind == IPC_SHM_SYSV && nattch == 0)) {
			/* its creator died before sizing (POSIX) or attaching it */
			ipc__shm_unlink(&s, handle);
			removed = 1;
		} else {
			removed = -EBUSY;
		}
		ipc__shm_detach(&s);
		return removed;
	}
	struct ipc__hdr *h = s.base;
	struct ipc_buffer tmp;
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.handle, sizeof(tmp.handle), "%s", handle);
	tmp.pidns = ipc__pidns_self();
	/* pairs with creator_init()'s release store of magic (buffer.c) */
	bool ready = ipc__load_acquire(&h->magic) == IPC__MAGIC;
	if (ready) {
		err = ipc__header_check(&tmp, h, kind, size);
		if (err == -EAGAIN) /* its semaphore set is gone already */
			err = 0;
		if (err) {
			ipc__shm_detach(&s);
			return err; /* not judged: not touched */
		}
	}
	/* In use: any process attached (SysV counts every attach, in every PID
	 * namespace), any process slot not provably dead (its life word, or
	 * /proc in our own namespace), or a creator still at work. */
	bool alive = kind == IPC_SHM_SYSV && nattch > 0;
	if (ready) {
		struct ipc__proc *p = (struct ipc__proc *)((char *)s.base + h->procs_off);
		for (uint32_t i = 0; i < IPC__MAX_PROCS; i++) {
			pid_t pid = ipc__load_relaxed(&p[i].pid);
			if (pid && ipc__slot_alive(&p[i], pid, p[i].start, tmp.pidns))
				alive = true;
		}
	} else {
		int busy = ipc__shm_creator_busy(&s);
		alive = alive || busy == 1 ||
		        (busy < 0 && h->creator_pid > 0 &&
		         !(tmp.pidns != 0 && h->creator_pidns == tmp.pidns &&
		           !ipc__pid_alive(h->creator_pid, 0)));
	}
	if (alive) {
		ipc__shm_detach(&s);
		return -EBUSY;
	}
	if (ready && h->sem_kind == IPC_SEM_SYSV) {
		if (h->lock.semid >= 0 && semctl(h->lock.semid, 0, IPC_RMID) == 0)
			removed = 1;
	} else if (!ready) {
		/* A creator that died half-way may have made its semaphore set
		 * (by key, or private with its id in the header). */
		int semid = kind == IPC_SHM_MEMFD ? -1 : semget(ipc__sysv_key(handle, 1), 0, 0);
		if (semid >= 0 && sem_ours(semid) && semctl(semid, 0, IPC_RMID) == 0)
			removed = 1;
		if (h->lock.kind == IPC_SEM_SYSV && h->lock.semid > 0 && h->lock.semid != semid &&
		    sem_ours(h->lock.semid) && semctl(h->lock.semid, 0, IPC_RMID) == 0)
			removed = 1;
	}
	if (!ready || !h->name_unlinked) {
		char name[IPC_HANDLE_MAX + 16];
		snprintf(name, sizeof(name), "/ipc.%s", handle);
		if (kind == IPC_SHM_POSIX ? shm_unlink(name) == 0
		    : kind == IPC_SHM_SYSV ? shmctl(s.shmid, IPC_RMID, NULL) == 0 : false)
			removed = 1;
	}
	ipc__shm_detach(&s);
	return removed;
}

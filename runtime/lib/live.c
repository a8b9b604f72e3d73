/*
 * Liveness and garbage collection: whether a process of a buffer is
 * provably dead, and the removal of buffers nobody uses any more.
 *
 * A pid read from /proc names the right process only inside the PID
 * namespace whose /proc it is; processes of one buffer may live in several
 * (containers sharing /dev/shm and the IPC namespace). So a process's
 * liveness rests on its slot's life word, a robust futex held by its keeper
 * thread, which the kernel marks FUTEX_OWNER_DIED when the process dies,
 * whatever namespace either side is in (notice.c). /proc is asked only
 * about a process of our own namespace with our own /proc (the slot's
 * pidns equals ours). What cannot be proven dead counts as alive: it is
 * never reaped, its lock never taken over, its buffer never collected.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

bool ipc__proc_same_ns(struct ipc_buffer *b, uint32_t proc)
{
	return b->pidns != 0 && proc < b->geo.max_procs && ipc__proc_at(b, proc)->pidns == b->pidns;
}

/* Slot p by its life word alone: 0 dead, 1 alive, 2 ask /proc (our own
 * namespace). */
static int life_verdict(const struct ipc__proc *p, uint64_t my_ns)
{
	uint32_t life = ipc__load_acquire(&((struct ipc__proc *)p)->life);
	bool same = my_ns != 0 && p->pidns == my_ns;
	if (life & FUTEX_OWNER_DIED)
		return same ? 2 : 0;
	if (life & FUTEX_TID_MASK)
		return 1;
	return same ? 2 : 1;
}

bool ipc__slot_alive(const struct ipc__proc *p, pid_t pid, uint64_t start, uint64_t my_ns)
{
	switch (life_verdict(p, my_ns)) {
	case 0: return false;
	case 1: return true;
	default: return ipc__pid_alive(pid, start);
	}
}

bool ipc__proc_alive(struct ipc_buffer *b, uint32_t proc, pid_t pid, uint64_t start)
{
	if (pid <= 0 || proc >= b->geo.max_procs)
		return false;
	struct ipc__proc *p = ipc__proc_at(b, proc);
	if (ipc__load_acquire(&p->pid) != pid || p->start != start)
		return false; /* the slot changed hands: it closed or was reaped */
	return ipc__slot_alive(p, pid, start, b->pidns);
}

bool ipc__pid_alive_in(struct ipc_buffer *b, pid_t pid, uint64_t start)
{
	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		if (ipc__load_acquire(&p->pid) == pid && p->start == start)
			return ipc__slot_alive(p, pid, start, b->pidns);
	}
	return false;
}

/* The lock's holder h is provably dead. In our own PID namespace (with our
 * own /proc), its pid says; elsewhere, the life word of the slot that holds
 * that pid in that namespace. A holder with no slot (it dies between taking
 * the lock and taking a slot at open, or after giving its slot back at
 * close) in another namespace cannot be judged: never taken over. (The
 * ipc__holder_dead_fn of ipc__lock_buf.) */
bool ipc__holder_dead(void *ctx, uint64_t h)
{
	struct ipc_buffer *b = ctx;
	pid_t pid = IPC__HOLDER_PID(h);
	uint32_t ns = IPC__HOLDER_NS(h);
	if (pid <= 0)
		return false;
	if (ns != 0 && b->pidns != 0 && ns == (uint32_t)b->pidns)
		return !ipc__pid_alive(pid, 0);
	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		if (ipc__load_acquire(&p->pid) == pid && (uint32_t)p->pidns == ns)
			return life_verdict(p, b->pidns) == 0;
	}
	return false;
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

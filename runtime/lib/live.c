/*
 * Liveness: whether a process of a buffer is provably dead (layer 2, below
 * the lock that asks it; garbage collection, which relies on it, is reap.c).
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
#include <linux/futex.h>

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
	/* Pairs with keeper_main()'s release store of its thread id (notice.c);
	 * the kernel's FUTEX_OWNER_DIED is set at the keeper's death. */
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
	/* Pairs with the release stores of pid in proc_attach_locked(),
	 * ipc_buffer_close() and ipc__reap_locked(): start is pid's. */
	if (ipc__load_acquire(&p->pid) != pid || p->start != start)
		return false; /* the slot changed hands: it closed or was reaped */
	return ipc__slot_alive(p, pid, start, b->pidns);
}

bool ipc__pid_alive_in(struct ipc_buffer *b, pid_t pid, uint64_t start)
{
	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		/* pairs with proc_attach_locked()'s release store of pid */
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
		/* pairs with proc_attach_locked()'s release store of pid */
		if (ipc__load_acquire(&p->pid) == pid && (uint32_t)p->pidns == ns)
			return life_verdict(p, b->pidns) == 0;
	}
	return false;
}

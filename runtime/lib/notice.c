/*
 * Death notices: a waiter whose peer is another process sleeps until the
 * ring changes or that process dies, with no periodic wake-up to look at it.
 *
 * Every process runs one keeper thread per buffer it has open, which does
 * nothing but hold its process slot's life word (struct ipc__proc.life) as a
 * robust futex: the word holds the keeper's thread id, and the keeper's
 * robust list (set_robust_list(2), registered by the keeper for itself only,
 * so glibc's list in every other thread is untouched) names that word. When
 * the process dies, however it dies, the kernel walks the list as the keeper
 * exits, finds its own thread id in the word, replaces it with
 * FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) and, if FUTEX_WAITERS was set,
 * wakes one waiter on the word.
 *
 * A waiter (ipc__notice_arm) sets FUTEX_WAITERS in the word with a CAS, then
 * sleeps with futex_waitv(2) on two words at once: its ring's sequence word
 * and the peer's life word, each with the value it last read. A death after
 * that read changes the word, so the wait cannot miss it: it either returns
 * at once (value changed) or is woken by the kernel. A keeper that stops
 * because its process closes the buffer clears the word and wakes every
 * waiter itself.
 *
 * The kernel wakes only one waiter, which then wakes the others
 * (ipc__notice_pass); but if that one is stopped or killed at that very
 * moment, the others would sleep on. So only a waiter that is alone on the
 * word sleeps without a bound (it is "solo"); while there are several, each
 * sleeps at most BACKSTOP_US and then looks at the peer. The count and the
 * solo mark share one word (life_waiters), changed by CAS: a waiter that
 * joins a solo one clears the mark and wakes it, and it goes back to sleep
 * bounded. A waiter killed while waiting leaves the count too high, which
 * only makes later waiters bounded; the count is reset with the slot.
 *
 * Without a notice (no keeper: IPC_DEATH_NOTICE=0 in the peer's environment
 * when it opened the buffer; a kernel without futex_waitv) a waiter falls
 * back to sleeping in slices and looking at its peer after each
 * (channel.c).
 *
 * The life word is also what liveness rests on everywhere (ipc__proc_alive
 * in live.c: channel peers, reaping, the lock take-over, gc), because it
 * is right across PID namespaces, where a pid read from /proc names another
 * process or none. What each fallback can know:
 *   - no futex_waitv (before Linux 5.16, or a seccomp filter): the keeper
 *     still holds the word, the kernel still marks it at death; waiters
 *     only poll it in slices instead of sleeping on it. Liveness is exact.
 *   - no keeper (IPC_DEATH_NOTICE=0, or it could not start): the word stays
 *     0. A peer in the same PID namespace, with that namespace's /proc,
 *     judges by pid and start time as before; a peer anywhere else cannot
 *     tell a live process from a dead one and must count it alive: its
 *     death is noticed only from its own namespace, and gc elsewhere leaves
 *     its buffer alone.
 *   - a marked word: in another namespace the process is dead at once; in
 *     ours /proc is asked as well, so that the last threads of a dying
 *     process are gone before it is reaped (and a process that exec'd
 *     without closing, which the kernel also marks, counts as alive while
 *     its pid lives, as it always did). Across namespaces that wait for the
 *     last threads cannot be made: the window is the few microseconds in
 *     which the kernel tears down a killed process's other threads.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif

/* futex_waitv(2)'s element (linux/futex.h has it since 5.16; spelled out
 * here so that older headers build too). */
struct waitv {
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
};

static _Atomic int waitv_missing; /* futex_waitv failed: no notices here */

/* Waiters on a life word (struct ipc__proc.life_waiters): a count, and
 * WAITERS_SOLO while the only one sleeps without a bound. */
#define WAITERS_SOLO (1u << 31)
#define BACKSTOP_US (100 * 1000)

static struct ipc__proc *slot(struct ipc_buffer *b, uint32_t proc)
{
	return ipc__proc_at(b, proc);
}

static void private_wait(ipc_a32 *w, uint32_t v)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void private_wake(ipc_a32 *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void *keeper_main(void *arg)
{
	struct ipc_buffer *b = arg;
	ipc_a32 *life = &slot(b, b->proc)->life;
	struct robust_list_head head, *saved = NULL;
	struct robust_list entry;
	size_t saved_len = 0;

	/* This thread's own list: glibc's (empty here: this thread takes no
	 * robust mutex) comes back before the thread returns. The list is
	 * the head and one entry; futex_offset leads from the entry (on this
	 * stack) to the word (in the shared mapping). */
	syscall(SYS_get_robust_list, 0, &saved, &saved_len);
	entry.next = &head.list;
	head.list.next = &entry;
	head.futex_offset = (long)((char *)life - (char *)&entry);
	head.list_op_pending = NULL;
	bool armed = syscall(SYS_set_robust_list, &head, sizeof(head)) == 0;
	/* Pairs with the acquire loads of life in ipc__notice_arm(),
	 * ipc__notice_pass() and life_verdict() (live.c). */
	if (armed)
		ipc__store_release(life, (uint32_t)gettid());
	/* tell the opener; pairs with ipc__keeper_start()'s acquire load */
	ipc__store_release(&b->keeper_state, armed ? 1 : 2);
	private_wake(&b->keeper_state);

	/* pairs with ipc__keeper_stop()'s release store of keeper_quit */
	while (ipc__load_acquire(&b->keeper_quit) == 0)
		private_wait(&b->keeper_quit, 0);

	/* The process closes the buffer: nobody should count on this word. */
	if (armed) {
		syscall(SYS_set_robust_list, saved, saved_len);
		/* Pairs with ipc__notice_arm()'s CAS (FUTEX_WAITERS) and the
		 * acquire loads of life in ipc__notice_pass(), life_verdict(). */
		if (ipc__xchg_acq_rel(life, 0) & FUTEX_WAITERS)
			ipc__futex_wake(life);
	}
	return NULL;
}

void ipc__keeper_start(struct ipc_buffer *b)
{
	pthread_attr_t a;

	ipc__store_relaxed(&slot(b, b->proc)->life, 0);
	ipc__store_relaxed(&slot(b, b->proc)->life_waiters, 0);
	b->keeper_state = 0;
	b->keeper_quit = 0;
	const char *v = getenv("IPC_DEATH_NOTICE");
	if ((v && strcmp(v, "0") == 0) || pthread_attr_init(&a) != 0)
		return; /* peers look at us in slices instead */
	pthread_attr_setstacksize(&a, 64u << 10);
	/* Every signal blocked in the keeper (it inherits the mask): a signal
	 * sent to the process goes to the program's own threads, as it would
	 * without us. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	b->keeper_on = pthread_create(&b->keeper, &a, keeper_main, b) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (!b->keeper_on)
		return; /* peers look at us in slices instead */
	/* pairs with keeper_main()'s release store of keeper_state */
	while (ipc__load_acquire(&b->keeper_state) == 0)
		private_wait(&b->keeper_state, 0);
}

void ipc__keeper_stop(struct ipc_buffer *b)
{
	if (!b->keeper_on)
		return;
	/* pairs with keeper_main()'s acquire load of keeper_quit */
	ipc__store_release(&b->keeper_quit, 1);
	private_wake(&b->keeper_quit);
	pthread_join(b->keeper, NULL);
	b->keeper_on = false;
}

int ipc__notice_arm(struct ipc_buffer *b, uint32_t proc, uint32_t *seen)
{
	if (proc >= b->geo.max_procs)
		return 0;
	ipc_a32 *life = &slot(b, proc)->life;
	/* pairs with keeper_main()'s release store of its thread id */
	uint32_t w = ipc__load_acquire(life);
	bool usable = !ipc__load_relaxed(&waitv_missing);
	for (;;) {
		if (w & FUTEX_OWNER_DIED)
			return -1; /* its keeper is gone: dying, dead, or exec'd */
		if ((w & FUTEX_TID_MASK) == 0 || !usable)
			return 0;
		if (w & FUTEX_WAITERS)
			break;
		/* Pairs with keeper_main()'s stores of life (its thread id,
		 * then 0 with an exchange) and other waiters' CAS. */
		if (atomic_compare_exchange_weak_explicit(life, &w, w | FUTEX_WAITERS,
		                                          memory_order_acq_rel,
		                                          memory_order_acquire)) {
			w |= FUTEX_WAITERS;
			break;
		}
	}
	*seen = w;
	return 1;
}

bool ipc__notice_pass(struct ipc_buffer *b, uint32_t proc, uint32_t seen)
{
	ipc_a32 *life = &slot(b, proc)->life;
	/* pairs with keeper_main()'s exchange of life at its stop */
	uint32_t w = ipc__load_acquire(life);
	if (w == seen)
		return false;
	if (w & FUTEX_OWNER_DIED)
		ipc__futex_wake(life); /* the kernel woke only one of us */
	return true;
}

/* Join (or leave) the waiters on slot p's life word; see the top. Returns
 * whether this waiter is the solo one. */
static bool waiters_join(struct ipc__proc *p)
{
	uint32_t old = ipc__load_relaxed(&p->life_waiters), nw;
	bool solo, displaced;

	do {
		solo = (old & ~WAITERS_SOLO) == 0;
		displaced = !solo && (old & WAITERS_SOLO);
		nw = ((old & ~WAITERS_SOLO) + 1) | (solo ? WAITERS_SOLO : 0);
		/* pairs with waiters_leave()'s CAS and other joiners' */
	} while (!atomic_compare_exchange_weak_explicit(&p->life_waiters, &old, nw,
	                                                memory_order_acq_rel,
	                                                memory_order_relaxed));
	if (displaced) /* the solo waiter sleeps without a bound: bound it */
		ipc__futex_wake(&p->life);
	return solo;
}

static void waiters_leave(struct ipc__proc *p, bool solo)
{
	uint32_t old = ipc__load_relaxed(&p->life_waiters), nw;

	do {
		if ((old & ~WAITERS_SOLO) == 0)
			return; /* reset meanwhile: the slot changed hands */
		nw = old - 1;
		if (solo)
			nw &= ~WAITERS_SOLO;
		/* pairs with waiters_join()'s CAS and other leavers' */
	} while (!atomic_compare_exchange_weak_explicit(&p->life_waiters, &old, nw,
	                                                memory_order_acq_rel,
	                                                memory_order_relaxed));
}

int ipc__notice_wait(struct ipc_buffer *b, ipc_a32 *seq, uint32_t s, uint32_t proc,
                     uint32_t seen, int64_t timeout_us)
{
	struct ipc__proc *p = slot(b, proc);
	struct waitv v[2] = {
		{.val = s, .uaddr = (uint64_t)(uintptr_t)seq, .flags = FUTEX2_SIZE_U32},
		{.val = seen, .uaddr = (uint64_t)(uintptr_t)&p->life, .flags = FUTEX2_SIZE_U32},
	};
	struct {
		int64_t tv_sec, tv_nsec; /* the kernel's __kernel_timespec */
	} kts, *tp = NULL;
	struct timespec now;

	bool solo = waiters_join(p);
	if (!solo && (timeout_us < 0 || timeout_us > BACKSTOP_US))
		timeout_us = BACKSTOP_US;
	if (timeout_us >= 0) { /* futex_waitv's timeout is absolute */
		clock_gettime(CLOCK_MONOTONIC, &now);
		kts.tv_sec = (int64_t)now.tv_sec + timeout_us / 1000000;
		kts.tv_nsec = (int64_t)now.tv_nsec + timeout_us % 1000000 * 1000;
		if (kts.tv_nsec >= 1000000000) {
			kts.tv_sec++;
			kts.tv_nsec -= 1000000000;
		}
		tp = &kts;
	}
	long rc = syscall(SYS_futex_waitv, v, 2u, 0u, tp, CLOCK_MONOTONIC);
	int err = rc >= 0 ? 0 : errno;
	waiters_leave(p, solo);
	if (err == 0 || err == EAGAIN || err == ETIMEDOUT || err == EINTR)
		return -err;
	/* ENOSYS (before Linux 5.16), or EPERM from a seccomp filter, or
	 * anything else: this process waits without notices from now on. */
	ipc__store_relaxed(&waitv_missing, 1);
	return -ENOSYS;
}

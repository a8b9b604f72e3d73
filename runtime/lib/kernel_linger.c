/*
 * The linger thread of the kernel API: one per process, it sends batches
 * older than their kernel's linger while the kernel is outside the API (in
 * its own code, asleep). See kernel.c's top comment for the hand-over
 * (busy / steal, membarrier). Everything here runs under lg_mu.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kernel_impl.h"
#include "kernel_linger.h"

#if defined(__SANITIZE_THREAD__)
#define IPC__NO_MEMBARRIER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPC__NO_MEMBARRIER 1
#endif
#endif

/* 1: membarrier works (the kernel's fast enter); 0: compare-and-swap on
 * busy. Set once, before the first kernel registers. */
ipc_a32 ipc__kernel_membarrier;

/* ---- the linger thread -------------------------------------------------- */

/* Started with the first kernel of the process that opens a batch, it
 * lives as long as the process (sleeping when no kernel has a batch open):
 * stopping it when the last kernel leaves would race with the next one
 * starting it. A fork()ed child starts with none (lg_child). */
static pthread_mutex_t lg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lg_cv;
static pthread_once_t lg_once = PTHREAD_ONCE_INIT;
static struct ipc_kernel *lg_list;
static bool lg_running;
static ipc_a32 lg_idle; /* the thread sleeps with no batch to watch */

static void lg_cv_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&lg_cv, &a);
	pthread_condattr_destroy(&a);
}

static void lg_child(void)
{
	pthread_mutex_init(&lg_mu, NULL);
	lg_cv_init();
	lg_list = NULL;
	lg_running = false;
	ipc__store_relaxed(&lg_idle, 0);
}

static void lg_setup(void)
{
	lg_cv_init();
	pthread_atfork(NULL, NULL, lg_child);
#ifndef IPC__NO_MEMBARRIER
	ipc__store_relaxed(&ipc__kernel_membarrier,
	                   syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	                           0, 0) == 0 ? 1 : 0);
#endif
}

void ipc__linger_poke(void)
{
	if (ipc__load_seq_cst(&lg_idle)) { /* pairs with linger_main()'s store */
		pthread_mutex_lock(&lg_mu);
		pthread_cond_signal(&lg_cv);
		pthread_mutex_unlock(&lg_mu);
	}
}

/* Take k from its thread; true when it is ours until give_back. */
static bool take(struct ipc_kernel *k)
{
	if (ipc__load_relaxed(&ipc__kernel_membarrier)) {
		ipc__store_seq_cst(&k->steal, 1); /* pairs with enter(), enter_slow() */
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 &&
		    ipc__load_acquire(&k->busy) == 0) /* pairs with leave(), ipc_emit() */
			return true;
		ipc__store_release(&k->steal, 0); /* pairs with enter(), enter_slow() */
		return false;
	}
	uint32_t zero = 0;
	return ipc__cas_acq_rel(&k->busy, &zero, 2); /* pairs with leave(), ipc_emit() */
}

static void give_back(struct ipc_kernel *k)
{
	if (ipc__load_relaxed(&ipc__kernel_membarrier))
		ipc__store_release(&k->steal, 0); /* pairs with enter(), enter_slow() */
	else
		ipc__store_release(&k->busy, 0); /* pairs with enter_slow()'s CAS */
}

/* One look at every kernel (lg_mu held): send the batches due; returns the
 * next deadline (0: nothing open). */
static uint64_t linger_scan(void)
{
	uint64_t now = ipc__kernel_now_ns(), next = 0;
	for (struct ipc_kernel *k = lg_list; k; k = k->lnext) {
		uint64_t linger = k->linger_ns ? k->linger_ns : IPC__LINGER_DEFAULT_NS;
		bool due = false;
		for (size_t i = k->nin; i < k->nin + k->nout; i++) {
			uint64_t o = ipc__load_seq_cst(&k->port[i].bo.open_ns); /* pairs with open_batch() */
			if (!o)
				continue;
			if (o + linger <= now)
				due = true;
			else if (!next || o + linger < next)
				next = o + linger;
		}
		if (!due)
			continue;
		if (take(k)) {
			for (size_t i = k->nin; i < k->nin + k->nout; i++) {
				struct ipc_port *p = &k->port[i];
				uint64_t o = ipc__load_relaxed(&p->bo.open_ns);
				if (o && o + linger <= now)
					ipc__kernel_flush_port(p, 0);
			}
			give_back(k);
		}
		/* still open (busy kernel, full channel): look again soon */
		uint64_t again = now + linger / 4;
		if (!next || again < next)
			next = again;
	}
	return next;
}

static void *linger_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lg_mu);
	for (;;) {
		uint64_t next = linger_scan();
		if (!next) {
			ipc__store_seq_cst(&lg_idle, 1); /* pairs with ipc__linger_poke() */
			/* a batch opened meanwhile would be missed otherwise */
			next = linger_scan();
			if (!next) {
				pthread_cond_wait(&lg_cv, &lg_mu);
				ipc__store_relaxed(&lg_idle, 0);
				continue;
			}
			ipc__store_relaxed(&lg_idle, 0);
		}
		struct timespec ts = {(time_t)(next / 1000000000u),
		                      (long)(next % 1000000000u)};
		/* lg_cv runs on CLOCK_MONOTONIC (lg_cv_init): not a wait on the wall clock */
		pthread_cond_timedwait(&lg_cv, &lg_mu, &ts); /* not a wait on the wall clock */
	}
	return NULL;
}

void ipc__linger_register(struct ipc_kernel *k)
{
	pthread_once(&lg_once, lg_setup);
	pthread_mutex_lock(&lg_mu);
	if (!lg_running) {
		/* the thread must not take signals meant for the kernels */
		sigset_t all, old;
		pthread_t th;
		pthread_attr_t a;
		sigfillset(&all);
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&a, 64 * 1024);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		lg_running = pthread_create(&th, &a, linger_main, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&a);
		if (!lg_running) {
			pthread_mutex_unlock(&lg_mu);
			return; /* no thread: batches still go out on every other rule */
		}
	}
	ipc__store_relaxed(&k->busy, 1); /* we are inside the API */
	ipc__store_relaxed(&k->steal, 0);
	k->lnext = lg_list;
	lg_list = k;
	k->lingering = true;
	pthread_mutex_unlock(&lg_mu);
}

void ipc__linger_unregister(struct ipc_kernel *k)
{
	pthread_mutex_lock(&lg_mu);
	for (struct ipc_kernel **p = &lg_list; *p; p = &(*p)->lnext)
		if (*p == k) {
			*p = k->lnext;
			break;
		}
	k->lingering = false;
	pthread_mutex_unlock(&lg_mu);
}

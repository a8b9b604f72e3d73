/*
 * Thread state: ipc_tls_open takes a thread slot of the buffer;
 * ipc_tls_close closes the thread's channel and segment ends, gives back its
 * slabs and frees the slot. Layer 5 (README, "Project layout and
 * development"): above channels, segments and records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define MEDIUM_MAX IPC__MEDIUM_MAX

/* ---- TLS ---------------------------------------------------------------- */

struct ipc_tls *ipc_tls_open(struct ipc_buffer *b, int32_t thread_id)
{
	struct ipc__tslot *slot;
	struct ipc_tls *t;

	int bad = ipc__buf_check(b);
	if (bad) {
		errno = -bad;
		return NULL;
	}
	t = ipc__tls_new();
	if (!t)
		return NULL;
	t->ends_cap = 16;
	t->ends = calloc(t->ends_cap, sizeof(*t->ends));
	if (!t->ends)
		goto fail;
	t->b = b;
	t->thread_id = thread_id;
	t->slab_max = b->geo.nblocks / 8;
	if (t->slab_max < b->geo.slab_blocks)
		t->slab_max = b->geo.slab_blocks;
	t->small_max = ((uint64_t)t->slab_max * IPC_BLOCK - IPC__SLAB_HDR) / 8;
	if (t->small_max > MEDIUM_MAX)
		t->small_max = MEDIUM_MAX;
	t->max_size = ipc__heap_asked(b) / 4;
	if (ipc__lock_buf(b)) {
		errno = EIDRM;
		goto fail;
	}
	for (uint32_t i = 0; i < b->geo.max_tls; i++) {
		slot = ipc__tslot_at(b, i);
		if (ipc__load_relaxed(&slot->used) == 0) {
			t->slot = i;
			t->ts = slot;
			ipc__tslot_reset_locked(t->ts, 0);
			t->ts->proc = (uint16_t)b->proc;
			t->ts->thread_id = thread_id;
			/* Pairs with reap_proc_locked()'s load of used (under L):
			 * the slot was reset first. */
			ipc__store_release(&t->ts->used, 1);
			break;
		}
	}
	ipc__unlock_buf(b);
	if (!t->ts) {
		errno = ENOSPC;
		goto fail;
	}
	pthread_mutex_lock(&b->tls_mu);
	t->next = b->tls_list;
	b->tls_list = t;
	pthread_mutex_unlock(&b->tls_mu);
	t->live = ipc__live_token;
	return t;
fail:
	ipc__tls_retire(t);
	return NULL;
}

void ipc_tls_close(struct ipc_tls *t)
{
	struct ipc_buffer *b;
	int bad = ipc__tls_check(t);

	if (bad == -ECHILD) { /* the parent's: only our copy goes */
		ipc__tls_retire(t);
		return;
	}
	if (bad) {
		if (bad == -EBADF)
			fprintf(stderr, "libipc: ipc_tls_close(%p): already closed: ignored\n",
			        (void *)t);
		return;
	}
	b = t->b;
	for (uint32_t i = 0; i < t->ends_cap; i++) {
		struct ipc__end *e = &t->ends[i];
		if (e->used != 1)
			continue;
		if (e->seg)
			ipc__seg_close_end(t, e);
		else
			ipc__chan_close_end(t, e);
	}
	ipc__free_flush(t);
	if (ipc__lock_buf(b) == 0) {
		if (t->slab)
			ipc__slab_seal_locked(b, t->slab, t->carved - t->local_freed);
		ipc__slab_drain_locked(b, t->ts, t->spare);
		ipc__tslot_reset_locked(t->ts, IPC__RET_CLOSED);
		/* Pairs with ipc_tls_open()'s load of used (under L): the slot
		 * was reset first. */
		ipc__store_release(&t->ts->used, 0);
		ipc__unlock_buf(b);
	}
	pthread_mutex_lock(&b->tls_mu);
	for (struct ipc_tls **p = &b->tls_list; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	pthread_mutex_unlock(&b->tls_mu);
	ipc__tls_retire(t);
}

/*
 * Named static shared segments: memory shared by everyone who names its id.
 * The creator inserts the segment in state INIT under the lock, runs init
 * outside it, then publishes READY (release; pairs with seg_wait_ready()'s
 * acquire load of state), so no one sees the memory before init has run.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "util.h"

static void *seg_data(struct ipc__seg *s)
{
	return (char *)s + sizeof(*s);
}

/* Wait for the creator to finish init. 0, or -EOWNERDEAD. The creator's
 * liveness is its process slot's (ipc__pid_alive_in): right across PID
 * namespaces. */
static int seg_wait_ready(struct ipc_buffer *b, struct ipc__seg *s)
{
	for (;;) {
		/* Pairs with ipc_segment_add()'s release store of READY: init's
		 * writes. */
		uint32_t st = ipc__load_acquire(&s->state);
		if (st == IPC__SEG_READY)
			return 0;
		if (st == IPC__SEG_DEAD)
			return -EOWNERDEAD;
		if (!ipc__pid_alive_in(b, s->creator_pid, s->creator_start)) {
			uint32_t expect = IPC__SEG_INIT;
			/* seq_cst; pairs with ipc_segment_add()'s release store
			 * of READY: only one of the two wins. */
			atomic_compare_exchange_strong(&s->state, &expect, IPC__SEG_DEAD);
			continue;
		}
		ipc__futex_wait(&s->state, IPC__SEG_INIT, 20);
	}
}

/* One more user, from our process (L held). */
static void seg_use_locked(struct ipc_buffer *b, struct ipc__seg *s)
{
	s->users++;
	s->by_proc[b->proc]++;
}

/* n fewer users from process slot proc; the last one frees it (L held). */
static void seg_drop_locked(struct ipc_buffer *b, struct ipc__dirent *d, struct ipc__seg *s,
                            uint32_t proc, uint32_t n)
{
	s->by_proc[proc] -= (uint16_t)n;
	s->users -= n;
	if (s->users == 0) {
		ipc__dir_remove_locked(b, d);
		ipc__heap_free(b->heap, (uint32_t)(((char *)s - b->data) / IPC_BLOCK));
	}
}

static void seg_release(struct ipc_buffer *b, uint64_t id, struct ipc__seg *s)
{
	if (ipc__lock_buf(b))
		return;
	struct ipc__dirent *d = ipc__dir_find_locked(b, id);
	void *o;
	if (s && d && ipc__dir_obj_locked(b, d, IPC__BLK_SEGMENT, &o) == 0 && o == (void *)s &&
	    s->by_proc[b->proc] > 0)
		seg_drop_locked(b, d, s, b->proc, 1);
	ipc__unlock_buf(b);
}

void ipc__seg_reap_locked(struct ipc_buffer *b, uint32_t proc)
{
	struct ipc__dirent *d = ipc__dirent_at(b, 0);
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o;
		if (d[i].off <= IPC__DIR_TOMB ||
		    ipc__run_kind(b, d[i].off, NULL) != IPC__BLK_SEGMENT ||
		    ipc__dir_obj_locked(b, &d[i], IPC__BLK_SEGMENT, &o))
			continue;
		struct ipc__seg *s = o;
		if (s->by_proc[proc] > 0)
			seg_drop_locked(b, &d[i], s, proc, s->by_proc[proc]);
	}
}

/* Attach this TLS to segment s (its users count already includes us). */
static int seg_attach(struct ipc_tls *t, uint64_t id, struct ipc__seg *s, void **out)
{
	int err = seg_wait_ready(t->b, s);
	struct ipc__end *e = err ? NULL : ipc__end_add(t, id, 0);
	if (!e) {
		seg_release(t->b, id, s);
		return err ? err : -ENOMEM;
	}
	e->seg = s;
	e->seg_size = s->size; /* checked against its run by ipc__seg_at */
	if (out)
		*out = seg_data(s);
	return 0;
}

int ipc_segment_add(struct ipc_tls *t, uint64_t id, size_t n,
                    void (*init)(void *seg, void *arg), void *arg)
{
	struct ipc_buffer *b;
	struct ipc__dirent *d;
	struct ipc__seg *s;
	int err = 0;

	if ((err = ipc__tls_check(t)) != 0)
		return err;
	if (n == 0)
		return -EINVAL;
	b = t->b;
	if (n > ipc__heap_asked(b))
		return -ENOMEM;
	if (ipc__end_find(t, id, 0))
		return -EALREADY;
	if (ipc__lock_buf(b))
		return -EIDRM;
	d = ipc__dir_find_locked(b, id);
	if (d) {
		void *o = NULL;
		err = ipc__dir_obj_locked(b, d, IPC__BLK_SEGMENT, &o);
		s = o;
		if (err == 0 && n > s->size)
			err = -EINVAL;
		if (err == 0)
			seg_use_locked(b, s);
		ipc__unlock_buf(b);
		return err ? err : seg_attach(t, id, s, NULL);
	}
	uint64_t bytes = sizeof(*s) + n;
	int64_t blk = ipc__heap_alloc(b->heap, (uint32_t)((bytes + IPC_BLOCK - 1) / IPC_BLOCK),
	                              IPC__BLK_SEGMENT, (uint16_t)b->proc);
	if (blk < 0) {
		ipc__unlock_buf(b);
		return (int)blk;
	}
	s = ipc__block_ptr(b, (uint32_t)blk);
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->type = IPC_CHANNEL_SEGMENT;
	s->size = n;
	seg_use_locked(b, s);
	s->creator_pid = (int32_t)b->pid;
	s->creator_start = b->start;
	err = ipc__dir_insert_locked(b, id, ipc__off(b, s));
	if (err) {
		ipc__heap_free(b->heap, (uint32_t)blk);
		ipc__unlock_buf(b);
		return err;
	}
	ipc__unlock_buf(b);
	if (init)
		init(seg_data(s), arg);
	else
		memset(seg_data(s), 0, n);
	/* Pairs with seg_wait_ready()'s acquire load of state: publishes
	 * init's writes. */
	ipc__store_release(&s->state, IPC__SEG_READY);
	ipc__futex_wake(&s->state);
	return seg_attach(t, id, s, NULL);
}

int ipc_segment_open(struct ipc_tls *t, uint64_t id, void **out)
{
	struct ipc_buffer *b;
	struct ipc__dirent *d;
	struct ipc__seg *s = NULL;
	struct ipc__end *e;
	int err = 0;

	if ((err = ipc__tls_check(t)) != 0)
		return err;
	if (!out)
		return -EINVAL;
	if ((e = ipc__end_find(t, id, 0))) {
		*out = seg_data(e->seg);
		return 0;
	}
	b = t->b;
	if (ipc__lock_buf(b))
		return -EIDRM;
	d = ipc__dir_find_locked(b, id);
	void *o = NULL;
	if (!d)
		err = -ENOENT;
	else if ((err = ipc__dir_obj_locked(b, d, IPC__BLK_SEGMENT, &o)) == 0)
		seg_use_locked(b, s = o);
	ipc__unlock_buf(b);
	return err ? err : seg_attach(t, id, s, out);
}

size_t ipc_segment_size(struct ipc_tls *t, uint64_t id)
{
	struct ipc__end *e = ipc__tls_check(t) ? NULL : ipc__end_find(t, id, 0);
	return e ? (size_t)e->seg_size : 0;
}

int ipc__seg_close_end(struct ipc_tls *t, struct ipc__end *e)
{
	seg_release(t->b, e->id, e->seg);
	ipc__end_del(t, e);
	return 0;
}

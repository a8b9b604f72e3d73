/*
 * The buffer lock (L) and the channel/segment directory: an open-addressing
 * table in shared memory from id to the offset of a channel or segment,
 * changed under L. Layer 2 (README, "Project layout and development"):
 * below records, channels, segments and everything above them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

/* ---- the buffer lock ---------------------------------------------------- */

int ipc__lock_buf(struct ipc_buffer *b)
{
	int rc = ipc__lock(&b->hdr->lock, IPC__HOLDER(b->pid, b->pidns), ipc__holder_dead, b);
	if (rc < 0)
		return rc;
	/* The previous holder died inside: the heap may be half-updated. A
	 * stray write may have moved its header (reported, put back). */
	if (!ipc__heap_check(b->heap, b->geo.nblocks) || rc > 0)
		b->hdr->slab_used = ipc__heap_repair(b->heap, rc > 0);
	return 0;
}

void ipc__unlock_buf(struct ipc_buffer *b)
{
	ipc__unlock(&b->hdr->lock);
}

/* ---- directory (L held) ------------------------------------------------ */

static uint32_t dir_slot(uint64_t id, uint32_t cap)
{
	return (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static struct ipc__dirent *dir(struct ipc_buffer *b)
{
	return ipc__dirent_at(b, 0);
}

struct ipc__dirent *ipc__dir_find_locked(struct ipc_buffer *b, uint64_t id)
{
	uint32_t cap = b->geo.dir_cap;
	struct ipc__dirent *d = dir(b);
	for (uint32_t i = dir_slot(id, cap), n = 0; n < cap; i = (i + 1) & (cap - 1), n++) {
		if (d[i].off == IPC__DIR_EMPTY)
			return NULL;
		if (d[i].off != IPC__DIR_TOMB && d[i].id == id)
			return &d[i];
	}
	return NULL;
}

int ipc__dir_insert_locked(struct ipc_buffer *b, uint64_t id, uint64_t off)
{
	struct ipc__hdr *h = b->hdr;
	uint32_t cap = b->geo.dir_cap;
	struct ipc__dirent *d = dir(b);

	if (h->dir_live + 1 > cap / 4 * 3)
		return -ENOSPC;
	if (h->dir_used + 1 > cap / 4 * 3) { /* too many tombstones: rehash */
		struct ipc__dirent *copy = malloc((size_t)cap * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, d, (size_t)cap * sizeof(*copy));
		memset(d, 0, (size_t)cap * sizeof(*d));
		h->dir_used = h->dir_live = 0;
		for (uint32_t i = 0; i < cap; i++)
			if (copy[i].off > IPC__DIR_TOMB)
				ipc__dir_insert_locked(b, copy[i].id, copy[i].off);
		free(copy);
	}
	uint32_t i = dir_slot(id, cap), n = 0;
	while (d[i].off > IPC__DIR_TOMB && ++n < cap)
		i = (i + 1) & (cap - 1);
	if (n == cap) /* its counters said there was room */
		return ipc__corrupt(b, "directory: full, but counts %u live entries", h->dir_live);
	if (d[i].off == IPC__DIR_EMPTY)
		h->dir_used++;
	d[i].id = id;
	d[i].off = off;
	h->dir_live++;
	/* Pairs with ipc_channel_exists()'s acquire load of dir_gen: the
	 * entry is in. */
	ipc__add_acq_rel(&h->dir_gen, 1);
	ipc__futex_wake(&h->dir_gen);
	return 0;
}

void ipc__dir_remove_locked(struct ipc_buffer *b, struct ipc__dirent *e)
{
	e->off = IPC__DIR_TOMB;
	if (b->hdr->dir_live > 0)
		b->hdr->dir_live--;
}

int ipc__dir_obj_locked(struct ipc_buffer *b, const struct ipc__dirent *d, uint32_t want, void **out)
{
	uint64_t off = d->off, id = d->id;
	uint32_t kind = ipc__run_kind(b, off, NULL);
	void *o = kind == IPC__BLK_CHANNEL ? (void *)ipc__chan_at(b, off, id)
	        : kind == IPC__BLK_SEGMENT ? (void *)ipc__seg_at(b, off, id) : NULL;

	if (!o)
		return ipc__corrupt(b, "directory entry of id %llu: offset %llu holds no valid %s",
		                    (unsigned long long)id, (unsigned long long)off,
		                    kind == IPC__BLK_CHANNEL ? "channel"
		                    : kind == IPC__BLK_SEGMENT ? "segment" : "channel or segment");
	if (kind != want)
		return -EPROTOTYPE;
	*out = o;
	return 0;
}

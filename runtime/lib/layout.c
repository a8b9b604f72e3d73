/*
 * Checked access to the shared layout (layout.h): the geometry copied and
 * checked once at open, tables by index, and objects by an offset read from
 * shared memory, checked against the heap's run table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

int ipc__corrupt(const struct ipc_buffer *b, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	/* clang-tidy 14 sees ap uninitialised here only when given several
	 * files at once (make lint): a false positive. */
	vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	fprintf(stderr, "libipc: buffer '%s': corrupt shared memory: %s\n", b->handle, msg);
	return -EBADMSG;
}

/* [off, off + len) lies in [lo, hi). */
static bool within(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}

int ipc__geo_load(struct ipc_buffer *b)
{
	const struct ipc__hdr *h = b->hdr;
	struct ipc__geo g = {
		.procs_off = h->procs_off, .tls_off = h->tls_off, .dir_off = h->dir_off,
		.heap_off = h->heap_off, .data_off = h->data_off, .data_size = h->data_size,
		.max_procs = h->max_procs, .max_tls = h->max_tls, .dir_cap = h->dir_cap,
		.slab_blocks = h->slab_blocks,
	};
	uint64_t map = b->map_size;
	const char *what = NULL;

	g.nblocks = (uint32_t)(g.data_size / IPC_BLOCK);
	if (g.max_procs == 0 || g.max_procs > IPC__MAX_PROCS || g.max_tls == 0 ||
	    g.max_tls > IPC__MAX_TLS)
		what = "process or thread slot count";
	else if (g.dir_cap == 0 || (g.dir_cap & (g.dir_cap - 1)) || g.dir_cap > (1u << 26))
		what = "directory size";
	else if (g.data_size % IPC_BLOCK || g.data_off % IPC_BLOCK || g.data_size == 0 ||
	         g.data_size / IPC_BLOCK > UINT32_MAX - IPC_LEAF_BLOCKS ||
	         !within(g.data_off, g.data_size, sizeof(struct ipc__hdr), map))
		what = "data region";
	else if (!within(g.procs_off, (uint64_t)g.max_procs * sizeof(struct ipc__proc),
	                 sizeof(struct ipc__hdr), g.tls_off) || g.procs_off % 8)
		what = "process table";
	else if (!within(g.tls_off, (uint64_t)g.max_tls * sizeof(struct ipc__tslot), g.procs_off,
	                 g.dir_off) || g.tls_off % 8)
		what = "thread slot table";
	else if (!within(g.dir_off, (uint64_t)g.dir_cap * sizeof(struct ipc__dirent), g.tls_off,
	                 g.heap_off) || g.dir_off % 8)
		what = "directory";
	else if (!within(g.heap_off, ipc__heap_meta_size(g.nblocks), g.dir_off, g.data_off) ||
	         g.heap_off % 8)
		what = "heap metadata";
	else if (g.slab_blocks == 0 || g.slab_blocks > g.nblocks)
		what = "slab size";
	if (what)
		return ipc__corrupt(b, "header: %s out of bounds", what);
	b->geo = g;
	b->blk = (struct ipc__blk *)(b->base + g.heap_off + ipc__heap_blk_offset(g.nblocks));
	return 0;
}

struct ipc__proc *ipc__proc_at(const struct ipc_buffer *b, uint32_t i)
{
	return i < b->geo.max_procs ? (struct ipc__proc *)(b->base + b->geo.procs_off) + i : NULL;
}

struct ipc__tslot *ipc__tslot_at(const struct ipc_buffer *b, uint32_t i)
{
	return i < b->geo.max_tls ? (struct ipc__tslot *)(b->base + b->geo.tls_off) + i : NULL;
}

struct ipc__dirent *ipc__dirent_at(const struct ipc_buffer *b, uint32_t i)
{
	return i < b->geo.dir_cap ? (struct ipc__dirent *)(b->base + b->geo.dir_off) + i : NULL;
}

uint32_t ipc__run_kind(const struct ipc_buffer *b, uint64_t off, uint64_t *bytes)
{
	if (off < b->geo.data_off || (off - b->geo.data_off) % IPC_BLOCK)
		return IPC__BLK_FREE;
	uint64_t blk = (off - b->geo.data_off) / IPC_BLOCK;
	if (blk >= b->geo.nblocks)
		return IPC__BLK_FREE;
	const struct ipc__blk *k = &b->blk[blk];
	uint32_t len = k->len;
	if (len == 0 || len > b->geo.nblocks - blk)
		return IPC__BLK_FREE;
	if (bytes)
		*bytes = (uint64_t)len * IPC_BLOCK;
	return k->kind;
}

struct ipc__slab *ipc__slab_at(const struct ipc_buffer *b, uint64_t off)
{
	uint64_t bytes;
	if (ipc__run_kind(b, off, &bytes) != IPC__BLK_SLAB)
		return NULL;
	struct ipc__slab *s = (struct ipc__slab *)(b->base + off);
	if (s->magic != IPC__SLAB_MAGIC || (uint64_t)s->nblocks * IPC_BLOCK != bytes)
		return NULL;
	return s;
}

bool ipc__chan_geo_ok(const struct ipc_buffer *b, const struct ipc__chan *c)
{
	uint64_t bytes, slots = c->mask + 1;
	return ipc__run_kind(b, (uint64_t)((const char *)c - b->base), &bytes) == IPC__BLK_CHANNEL &&
	       c->type == IPC_CHANNEL_SPSC && slots != 0 && (slots & (slots - 1)) == 0 &&
	       slots <= (bytes - sizeof(*c)) / sizeof(uint64_t) && c->capacity != 0 &&
	       c->capacity <= slots;
}

struct ipc__chan *ipc__chan_at(const struct ipc_buffer *b, uint64_t off, uint64_t id)
{
	struct ipc__chan *c = (struct ipc__chan *)(b->base + off);
	if (ipc__run_kind(b, off, NULL) != IPC__BLK_CHANNEL || c->id != id || !ipc__chan_geo_ok(b, c))
		return NULL;
	return c;
}

struct ipc__seg *ipc__seg_at(const struct ipc_buffer *b, uint64_t off, uint64_t id)
{
	uint64_t bytes;
	if (ipc__run_kind(b, off, &bytes) != IPC__BLK_SEGMENT)
		return NULL;
	struct ipc__seg *s = (struct ipc__seg *)(b->base + off);
	if (s->id != id || s->type != IPC_CHANNEL_SEGMENT || s->size > bytes - sizeof(*s))
		return NULL;
	return s;
}

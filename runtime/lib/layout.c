/*
 * Checked access to the shared layout (layout.h): the geometry copied and
 * checked once at open, tables by index, and objects by an offset read from
 * shared memory, checked against the heap's run table; the layout a buffer
 * of a given size has (ipc__plan) and a published header checked against it
 * (ipc__header_check: buffer.c attaching, reap.c collecting).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/sem.h>

#include "internal.h"

#define MAX_PROCS IPC__MAX_PROCS
#define MAX_TLS IPC__MAX_TLS
#define SIZE_MIN_BYTES IPC__SIZE_MIN_BYTES
#define SIZE_MAX_BYTES IPC__SIZE_MAX_BYTES

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

/* ---- a buffer's layout by its size; a published header checked ------- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void ipc__plan(struct ipc__plan *l, uint64_t size)
{
	uint64_t data = align_up(size, IPC_BLOCK);
	/* Room for one entry per block (every channel or segment takes at
	 * least one) at a load of at most 3/4. */
	uint32_t cap = 512;
	while ((uint64_t)cap / 4 * 3 < data / IPC_BLOCK && cap < (1u << 26))
		cap <<= 1;
	l->nblocks = (uint32_t)(data / IPC_BLOCK) + IPC__HEAP_RESERVE;
	l->data_size = (uint64_t)l->nblocks * IPC_BLOCK;
	l->dir_cap = cap;
	l->procs_off = 4096;
	l->tls_off = l->procs_off + MAX_PROCS * sizeof(struct ipc__proc);
	l->dir_off = l->tls_off + MAX_TLS * sizeof(struct ipc__tslot);
	l->heap_off = align_up(l->dir_off + (uint64_t)cap * sizeof(struct ipc__dirent), 64);
	l->data_off = align_up(l->heap_off + ipc__heap_meta_size(l->nblocks), IPC_BLOCK);
	l->map_size = l->data_off + l->data_size;
	/* Slabs of 64 KiB (less in small buffers): a producer and its consumer
	 * keep about two slabs of a stream in flight, and that working set
	 * must stay in cache (measured on 64 B records between processes:
	 * 32-64 KiB slabs 15-22 M/s, 128-256 KiB 7-10 M/s). */
	uint64_t slab = data / 256;
	if (slab < (16u << 10)) slab = 16u << 10;
	if (slab > (64u << 10)) slab = 64u << 10;
	l->slab_blocks = (uint32_t)(slab / IPC_BLOCK);
}

/* Every field of a published header, against the mapping's real size,
 * before any is used: the layout is a function of data_size alone (ipc__plan()),
 * so each offset must be exactly what ipc__plan() gives. -EPROTO for another
 * layout version; -EBADMSG for anything else (another user's planted
 * object, or memory overwritten by a bug); -EPERM for a System V semaphore
 * set that is not ours. */
int ipc__header_check(struct ipc_buffer *b, const struct ipc__hdr *h,
                      enum ipc_shm_kind kind, size_t size)
{
	struct ipc__plan l;
	const char *bad = NULL;

	if (h->version != IPC__LAYOUT || h->hdr_size != sizeof(*h)) {
		fprintf(stderr, "libipc: buffer '%s' has layout %u (header %u bytes), expected %u "
		        "(%zu): made by another version of libipc\n", b->handle, h->version,
		        h->hdr_size, IPC__LAYOUT, sizeof(*h));
		return -EPROTO;
	}
	/* data_size holds the heap's reserve besides the size asked for, which
	 * is what ipc__plan was given. */
	uint64_t reserve = (uint64_t)IPC__HEAP_RESERVE * IPC_BLOCK;
	if (h->data_size < SIZE_MIN_BYTES + reserve || h->data_size > SIZE_MAX_BYTES + reserve ||
	    h->data_size % IPC_BLOCK != 0) {
		bad = "data size";
	} else {
		ipc__plan(&l, h->data_size - reserve);
		if (h->map_size != size || l.map_size != size)
			bad = "mapping size";
		else if (h->data_off != l.data_off || h->procs_off != l.procs_off ||
		         h->tls_off != l.tls_off || h->dir_off != l.dir_off ||
		         h->heap_off != l.heap_off)
			bad = "region offsets";
		else if (h->max_procs != MAX_PROCS || h->max_tls != MAX_TLS ||
		         h->dir_cap != l.dir_cap || h->slab_blocks != l.slab_blocks)
			bad = "table sizes";
		else if (((const struct ipc__heap *)((const char *)h + h->heap_off))->nblocks !=
		         l.nblocks)
			bad = "heap size";
		else if (h->shm_kind != (uint32_t)kind ||
		         (h->sem_kind != IPC_SEM_POSIX && h->sem_kind != IPC_SEM_SYSV) ||
		         h->lock.kind != h->sem_kind)
			bad = "backends";
		else if (h->def_capacity == 0 || h->def_capacity > (1u << 30) ||
		         h->def_wait > IPC_WAIT_BLOCK)
			bad = "channel defaults";
		else if (ipc__load_relaxed(&((struct ipc__hdr *)h)->nprocs) > MAX_PROCS ||
		         h->dir_live > h->dir_used || h->dir_used > h->dir_cap)
			bad = "counts";
		else if (memchr(h->handle, '\0', sizeof(h->handle)) == NULL)
			bad = "handle";
	}
	if (bad) {
		fprintf(stderr, "libipc: buffer '%s': its header is damaged (%s does not match a "
		        "%zu-byte mapping): not attaching\n", b->handle, bad, size);
		return -EBADMSG;
	}
	if (h->sem_kind == IPC_SEM_SYSV) {
		struct semid_ds ds;
		char what[64];
		union semun { int val; struct semid_ds *buf; } arg = {.buf = &ds};
		if (semctl(h->lock.semid, 0, IPC_STAT, arg) != 0)
			return errno == EINVAL || errno == EIDRM ? -EAGAIN : -errno;
		snprintf(what, sizeof(what), "System V semaphore set id %d", h->lock.semid);
		return ipc__sysv_check(&ds.sem_perm, b->handle, what);
	}
	return 0;
}

/*
 * libipc's private structures (per process) and the functions the library's
 * files share. The shared-memory layout, its offset tables and its checked
 * accessors live in layout.h.
 *
 * Naming: a function that expects the buffer's lock (L, ipc__lock_buf) held
 * ends in _locked; one that takes L itself does not; the few that serve both
 * take `bool locked`. heap.c is the exception: all of it runs under L
 * (heap.h). Every acquire and release names the function(s) on its other
 * side. Both rules: CONTRIBUTING.md, "Locks and atomics"; checked by
 * tests/integration/lib_rules.sh.
 */
#ifndef IPC_INTERNAL_H
#define IPC_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipc/buffer.h>

#include "atomic.h"
#include "heap.h"
#include "layout.h"
#include "ring.h"
#include "shm.h"

/* ---- private, per process ---------------------------------------------- */

#define IPC__LIVE 0x4556494cu /* "LIVE": an open handle */
#define IPC__DEAD 0x44414544u /* "DEAD": closed, kept for reuse (handle.c) */

struct ipc_buffer {
	uint64_t live;            /* ipc__live_token while open (handle.c) */
	struct ipc_buffer *spare_next; /* closed, in handle.c's spares */
	struct ipc__shm shm;
	char *base;
	struct ipc__hdr *hdr;
	struct ipc__heap *heap;
	struct ipc__blk *blk;     /* the heap's run table, placed by geo */
	struct ipc__geo geo;      /* the header's geometry, checked (layout.h) */
	char *data;
	uint64_t map_size;
	uint64_t rec_span;        /* map_size - data_off - sizeof(struct ipc__rec) */
	pid_t pid;                /* the process that opened it */
	uint32_t proc;            /* our process slot */
	uint64_t start;           /* our start time (0 unless pidns is known) */
	uint64_t pidns;           /* ipc__pidns_self() at open */
	pthread_mutex_t tls_mu;   /* guards tls_list */
	pthread_t keeper;         /* holds our slot's life word (notice.c) */
	bool keeper_on;
	ipc_a32 keeper_state;     /* 0 starting, 1 holding, 2 could not */
	ipc_a32 keeper_quit;
	struct ipc_tls *tls_list;
	bool listed;              /* in handle.c's table of open buffers */
	char handle[IPC_HANDLE_MAX + 1];
	uint64_t reaped_records;  /* records of dead processes this process
	                             freed (lost: ipc_buffer_reap_lost), (L) */
	/* ipc__reap_locked (reap.c, layer 6), set at open: takeover.c (layer 4)
	 * reaps a possibly dead owner through it, never calling up. */
	int (*reap_locked)(struct ipc_buffer *b);
};

struct ipc__end {
	uint64_t id;              /* key; with role */
	uint8_t role;             /* IPC_PRODUCER, IPC_CONSUMER, or 0 (segment) */
	uint8_t used;
	uint8_t wait;
	uint8_t pad;
	uint32_t pad2;
	struct ipc__chan *c;
	struct ipc__seg *seg;
	uint64_t seg_size;        /* its size when attached, checked */
	struct ipc__ring_view v;  /* our side of the ring */
	int64_t next_check_ms;    /* when to check the peer's liveness again */
	int64_t spin_ns;          /* how long to spin before sleeping (hybrid) */
	int pidfd;                /* the peer's pidfd, or -1 */
	pid_t pidfd_pid;
};

struct ipc_tls {
	uint64_t live;            /* ipc__live_token while open (handle.c) */
	struct ipc_buffer *b;
	struct ipc__tslot *ts;
	uint32_t slot;
	int32_t thread_id;
	/* current slab */
	struct ipc__slab *slab;
	char *cur, *end;
	char *pf;                 /* next line of the slab to prefetch */
	uint32_t carved;
	uint32_t local_freed;     /* records of the current slab freed by us */
	struct ipc__slab *fslab;  /* frees of another's slab, counted in batches;
	                             NULL once a flush gave it back */
	uint32_t fcount;
	uint32_t slab_blk;        /* first block of the current slab */
	uint64_t small_max;       /* largest footprint carved from slabs */
	uint32_t slab_max;        /* blocks of the largest slab (record.c) */
	uint64_t max_size;        /* largest record */
	uint64_t spare;           /* empty slabs taken from ts->returned */
	/* channel ends and segments: open addressing on (id, role) */
	struct ipc__end *ends;
	uint32_t ends_cap, ends_used;
	struct ipc__end *last[4]; /* last end used, by role */
	struct ipc_tls *next;     /* in b->tls_list */
};

/* ---- cross-file functions, by layer ------------------------------------
 *
 * Calls run one way, downward: a file calls its own layer and the layers
 * below, never one above (tests/integration/t_layers.sh checks the built
 * objects; README, "Project layout and development"). Bottom to top:
 *   1 atomic.h, ring.h, util.c, heap.c, shm.c, layout.h/layout.c, handle.c
 *   2 dir.c (lock, directory), live.c, notice.c
 *   3 ends.c, record.c
 *   4 channel.c, takeover.c, segment.c
 *   5 tls.c
 *   6 reap.c
 *   7 buffer.c, kernel.c, kernel_linger.c, record_trim.c
 */

/* ==== 1. shared layout (layout.h, layout.c), handles (handle.c) =========== */

/* Limits of a buffer's heap size (IPC_BUFFER_SIZE, opts.size). */
#define IPC__SIZE_MIN_BYTES (UINT64_C(64) << 10)
#define IPC__SIZE_MAX_BYTES (((uint64_t)UINT32_MAX - IPC_LEAF_BLOCKS) * IPC_BLOCK)

/* Clear a TLS slot (L held; freers may read it meanwhile). returned: 0 for
 * a new owner, IPC__RET_CLOSED for a slot given up. */
static inline void ipc__tslot_reset_locked(struct ipc__tslot *ts, uint64_t returned)
{
	ts->proc = 0;
	ts->thread_id = 0;
	ipc__store_relaxed(&ts->returned, returned);
	ipc__store_relaxed(&ts->nreturned, 0);
	ipc__store_relaxed(&ts->pend_count, 0);
	ipc__store_relaxed(&ts->pend_slab, 0);
}

static inline void *ipc__ptr(const struct ipc_buffer *b, uint64_t off, uint64_t len)
{
	if (off < b->geo.data_off || off > b->map_size || len > b->map_size - off)
		return NULL;
	return b->base + off;
}

/* The heap's size as the opener asked for it (stats, largest record and
 * segment): without the reserve. */
static inline uint64_t ipc__heap_asked(const struct ipc_buffer *b)
{
	return b->hdr->data_size - (uint64_t)IPC__HEAP_RESERVE * IPC_BLOCK;
}

static inline uint64_t ipc__off(const struct ipc_buffer *b, const void *p)
{
	return (uint64_t)((const char *)p - b->base);
}

static inline void *ipc__block_ptr(const struct ipc_buffer *b, uint32_t block)
{
	return b->data + (size_t)block * IPC_BLOCK;
}

/* The layout of a buffer whose heap holds size bytes (layout.c): a
 * function of size alone, so an attacher can check every offset. */
struct ipc__plan {
	uint64_t procs_off, tls_off, dir_off, heap_off, data_off, data_size, map_size;
	uint32_t dir_cap, nblocks, slab_blocks;
};
void ipc__plan(struct ipc__plan *l, uint64_t size);
/* Every field of a published header, against the mapping's real size,
 * before any is used (layout.c): 0, -EPROTO (another layout), -EBADMSG
 * (damaged or planted), -EPERM (a System V semaphore set not ours), or
 * -EAGAIN (its semaphore set is gone). */
int ipc__header_check(struct ipc_buffer *b, const struct ipc__hdr *h, enum ipc_shm_kind kind,
                      size_t size);

/* Handles (handle.c). An open handle's live word is ipc__live_token:
 * IPC__LIVE << 32 | the fork generation, bumped in every child of a fork;
 * a closed one's is IPC__DEAD << 32. new: a zeroed handle (a closed one
 * reused, or fresh); retire: mark it closed and keep it (a TLS's ends table
 * is freed). check: 0 for an open handle of this process, else -EINVAL
 * (NULL), -EBADF (closed), -ECHILD (opened by the parent of this forked
 * process). One load and one compare besides the NULL test. */
extern __attribute__((visibility("hidden"))) uint64_t ipc__live_token;
struct ipc_tls *ipc__tls_new(void);
void ipc__tls_retire(struct ipc_tls *t);
struct ipc_buffer *ipc__buf_new(void);
void ipc__buf_retire(struct ipc_buffer *b);
/* The backend that already holds handle's buffer, else asked. */
enum ipc_shm_kind ipc__handle_backend(const char *handle, enum ipc_shm_kind asked);
int ipc__handle_bad(const void *h, uint64_t live) __attribute__((cold));
static inline int ipc__tls_check(const struct ipc_tls *t)
{
	if (__builtin_expect(t && t->live == ipc__live_token, 1))
		return 0;
	return ipc__handle_bad(t, t ? t->live : 0);
}
/* The same test without the call, for the hot paths' first look (their
 * slow path runs ipc__tls_check for the error). */
static inline bool ipc__tls_ok(const struct ipc_tls *t)
{
	return __builtin_expect(t && t->live == ipc__live_token, 1);
}
static inline int ipc__buf_check(const struct ipc_buffer *b)
{
	if (__builtin_expect(b && b->live == ipc__live_token, 1))
		return 0;
	return ipc__handle_bad(b, b ? b->live : 0);
}

/* This process's open buffers (handle.c): listed once open, until close.
 * find: the open buffer whose heap holds p, or NULL (*maybe_elsewhere: some
 * buffer could not be listed, so p may still be in one). */
void ipc__handle_register(struct ipc_buffer *b);
void ipc__handle_unregister(struct ipc_buffer *b);
struct ipc_buffer *ipc__handle_find(const void *p, bool *maybe_elsewhere);
/* The table itself (handle.c), for ipc_record_size's first look: its first
 * entry, loaded with acquire (which pairs with ipc__handle_register()'s
 * release store), is the buffer of most programs. */
extern __attribute__((visibility("hidden"))) _Atomic(struct ipc_buffer *) ipc__open_bufs[];

/* A handle libipc accepts (see IPC_HANDLE_MAX; handle.c). */
bool ipc__handle_ok(const char *h);

/* ==== 2. the lock and the directory (dir.c), liveness (live.c, notice.c) === */

/* The buffer lock L (dir.c). */
int ipc__lock_buf(struct ipc_buffer *b);
void ipc__unlock_buf(struct ipc_buffer *b);

/* Directory (dir.c, L held): find, insert, remove by id. */
struct ipc__dirent *ipc__dir_find_locked(struct ipc_buffer *b, uint64_t id);
int ipc__dir_insert_locked(struct ipc_buffer *b, uint64_t id, uint64_t off);
void ipc__dir_remove_locked(struct ipc_buffer *b, struct ipc__dirent *e);
/* The object entry d names, checked (layout.h): 0 and *out when it is of
 * kind want (IPC__BLK_CHANNEL or IPC__BLK_SEGMENT); -EPROTOTYPE when it is
 * the other; -EBADMSG (reported) when it is neither or not valid. */
int ipc__dir_obj_locked(struct ipc_buffer *b, const struct ipc__dirent *d, uint32_t want, void **out);

/* Liveness of the process in slot proc that had pid and start (a channel's
 * peer, a lock holder, a segment's creator), never judged by pid numbers
 * that could name another process:
 *   the slot no longer holds that pid and start: gone (it closed, or was
 *   reaped);
 *   its life word marked FUTEX_OWNER_DIED by the kernel: dead, in any PID
 *   namespace (in our own, /proc is asked too, so that a zombie's last
 *   threads are gone first);
 *   its life word holding its keeper's thread id: alive;
 *   no keeper (IPC_DEATH_NOTICE=0, or between open and keeper start): /proc
 *   when the process is in our PID namespace, else alive: what cannot be
 *   proven dead is never reaped. */
bool ipc__proc_alive(struct ipc_buffer *b, uint32_t proc, pid_t pid, uint64_t start);
/* The same for pid and start whose slot is not known: the slot holding
 * them, or gone when none does. */
bool ipc__pid_alive_in(struct ipc_buffer *b, pid_t pid, uint64_t start);
/* Whether ipc__proc_alive may ask /proc about slot proc (the process is in
 * our PID namespace and /proc is that namespace's). */
bool ipc__proc_same_ns(struct ipc_buffer *b, uint32_t proc);
/* Slot p (which held pid and start) by its life word, or /proc when my_ns
 * is its namespace; no check that the slot still holds them. */
bool ipc__slot_alive(const struct ipc__proc *p, pid_t pid, uint64_t start, uint64_t my_ns);
/* The allocation lock's holder h is provably dead (an ipc__holder_dead_fn;
 * ctx is the struct ipc_buffer). */
bool ipc__holder_dead(void *ctx, uint64_t h);

/* Death notices (notice.c). The keeper runs from attach to close. A waiter
 * on a peer in process slot proc: arm (1; 0: no notice, sleep in slices;
 * -1: the keeper is gone: the process is dying or dead, or it exec'd),
 * wait on seq and the life word together, then pass (true: the word changed,
 * the peer may be dead; wakes the other waiters on a dead word). */
void ipc__keeper_start(struct ipc_buffer *b);
void ipc__keeper_stop(struct ipc_buffer *b);
int ipc__notice_arm(struct ipc_buffer *b, uint32_t proc, uint32_t *seen);
int ipc__notice_wait(struct ipc_buffer *b, ipc_a32 *seq, uint32_t s, uint32_t proc,
                     uint32_t seen, int64_t timeout_us);
bool ipc__notice_pass(struct ipc_buffer *b, uint32_t proc, uint32_t seen);

/* ==== 3. channel ends of a thread (ends.c), records and slabs (record.c) === */

/* TLS end map (ends.c): the end last used in each role first, then the map. */
struct ipc__end *ipc__end_lookup(struct ipc_tls *t, uint64_t id, uint8_t role);
static inline struct ipc__end *ipc__end_find(struct ipc_tls *t, uint64_t id, uint8_t role)
{
	struct ipc__end *e = t->last[role & 3];
	if (__builtin_expect(e && e->id == id && e->used == 1, 1))
		return e;
	return ipc__end_lookup(t, id, role);
}
struct ipc__end *ipc__end_add(struct ipc_tls *t, uint64_t id, uint8_t role);
void ipc__end_del(struct ipc_tls *t, struct ipc__end *e);

/* Footprints up to this are carved from a thread's slabs (record.c; tls.c
 * sizes them). */
#define IPC__MEDIUM_MAX (8u * IPC_BLOCK)

/* Records (record.c). ipc__rec_check: the header of payload if it is a live record
 * of this buffer, checked against its slab too (before the slab is used);
 * ipc__rec_check_fast: only inside the mapping, aligned, its check word
 * right (enough to read it and pass it on: send, whose receiver checks it
 * in full). */
struct ipc__rec *ipc__rec_check(struct ipc_buffer *b, const void *payload);
static inline struct ipc__rec *ipc__rec_check_fast(const struct ipc_buffer *b,
                                                   const void *payload)
{
	uintptr_t p = (uintptr_t)payload;
	/* one unsigned compare: data + 16 <= p < end of the mapping */
	if ((p & 15) || p - (uintptr_t)b->data - sizeof(struct ipc__rec) >= b->rec_span)
		return NULL;
	struct ipc__rec *r = (struct ipc__rec *)payload - 1;
	uint64_t size = ipc__rec_size(r);
	if (ipc__load_relaxed(&r->check) != ipc__rec_check_word(size, ipc__load_relaxed(&r->slab)) ||
	    size > (uintptr_t)b->base + b->map_size - p)
		return NULL;
	return r;
}
/* r (checked by ipc__rec_check_fast) is alone in a run of kind
 * IPC__BLK_RECORD that holds it all. */
bool ipc__rec_direct_ok(const struct ipc_buffer *b, const struct ipc__rec *r);
/*
 * The hot paths' check (send excepted: ipc__rec_check_fast), fused and
 * without a call: the header at byte `at` of the heap (from b->data) is a
 * live record of this buffer carved from a live slab that holds it whole:
 * inside the mapping, aligned, its check word right, its slab's magic
 * right and its run inside the heap, the record (header and size) inside
 * that slab after the slab's header. Each shared field is loaded once;
 * *word gets the record's word. NULL when it is not, and for a record
 * alone in its run: callers then take their slow path, which checks in
 * full (ipc__rec_check) and reports.
 */
static inline __attribute__((always_inline)) struct ipc__rec *
ipc__rec_fast(const struct ipc_buffer *b, uint64_t at, uint64_t *word)
{
	if ((at & 15) || at >= b->rec_span) /* also: the header fits before the end */
		return NULL;
	struct ipc__rec *r = (struct ipc__rec *)(void *)(b->data + at);
	uint64_t w = ipc__load_relaxed(&r->word), size = w & IPC__REC_SIZE_MASK;
	uint32_t slab = ipc__load_relaxed(&r->slab);
	uint64_t first = (uint64_t)slab * IPC_BLOCK; /* its slab's, from the heap's start */
	/* r after the slab's header: then the slab's header lies inside the
	 * mapping too (below r); IPC__REC_DIRECT fails here */
	if (ipc__load_relaxed(&r->check) != ipc__rec_check_word(size, slab) ||
	    at < first + IPC__SLAB_HDR)
		return NULL;
	const struct ipc__slab *s = (const struct ipc__slab *)(void *)(b->data + first);
	uint64_t last = (uint64_t)slab + s->nblocks; /* the block after the slab */
	/* the slab's run inside the heap, the whole record inside the slab */
	if (s->magic != IPC__SLAB_MAGIC || last > b->geo.nblocks ||
	    at + sizeof(*r) + size > last * IPC_BLOCK)
		return NULL;
	*word = w;
	return r;
}
/* The heap byte of the header of payload p (huge when p is below the heap:
 * ipc__rec_fast rejects it). */
static inline uint64_t ipc__rec_at(const struct ipc_buffer *b, const void *p)
{
	return (uint64_t)((uintptr_t)p - (uintptr_t)b->data - sizeof(struct ipc__rec));
}

/* Free a record; locked: L held. Returns 1 when that emptied its slab (which
 * then belongs to someone else), 0, or a negative errno. */
int ipc__rec_free(struct ipc_buffer *b, struct ipc__rec *r, bool locked);
/* Live records and their bytes, by walking the heap (L held). */
void ipc__rec_census_locked(struct ipc_buffer *b, uint64_t *count, uint64_t *bytes);
/* Free every record that process slot proc holds (L held); how many. */
uint64_t ipc__rec_reap_locked(struct ipc_buffer *b, uint32_t proc);
/* Seal a slab: the owner stops carving; frees it if empty (L held). */
void ipc__slab_seal_locked(struct ipc_buffer *b, struct ipc__slab *s, uint32_t carved);
/* Return an empty slab to the heap (L held). */
void ipc__slab_give_back_locked(struct ipc_buffer *b, struct ipc__slab *s);
/* Count this TLS's batched frees in their slab now. */
void ipc__free_flush(struct ipc_tls *t);
/* Apply the batched frees a dead thread's slot left (L held). */
void ipc__free_reap_locked(struct ipc_buffer *b, struct ipc__tslot *ts);
/* Give back every slab cached in (or returned to) TLS slot ts (L held). */
void ipc__slab_drain_locked(struct ipc_buffer *b, struct ipc__tslot *ts, uint64_t spare);

/* ==== 4. channels (channel.c, takeover.c), segments (segment.c) =========== */

/* Channels (channel.c, L held): destroy when both ends are done; mark ends of a dead process. */
void ipc__chan_maybe_destroy_locked(struct ipc_buffer *b, struct ipc__dirent *e);
void ipc__chan_end_detach_locked(struct ipc_buffer *b, struct ipc__chan *c, uint8_t role,
                                 bool dead);
/* Wake both ends' sleepers (no lock needed). */
void ipc__chan_wake_all(struct ipc__chan *c);
/* Records queued by dead producer slot proc now belong to the channel. */
void ipc__chan_adopt_locked(struct ipc_buffer *b, struct ipc__chan *c, uint32_t proc);
int ipc__chan_close_end(struct ipc_tls *t, struct ipc__end *e);

/* Segments (segment.c): close this TLS's use of one. */
int ipc__seg_close_end(struct ipc_tls *t, struct ipc__end *e);
/* Drop every use of segments by process slot proc (L held). */
void ipc__seg_reap_locked(struct ipc_buffer *b, uint32_t proc);

/* ==== 5. thread state (tls.c) ============================================= */

/* ipc_tls_open, ipc_tls_close: public (ipc/buffer.h). */

/* ==== 6. reaping and gc (reap.c) ========================================== */

/* Process slots (L held): reap every dead process; returns how many. */
int ipc__reap_locked(struct ipc_buffer *b);

/* ==== 7. the buffer API (buffer.c), the kernel API (kernel.c, kernel_impl.h) === */

/* Public (ipc/buffer.h, ipc/kernel.h); ipcrun's entry points: kernel_impl.h. */

#endif

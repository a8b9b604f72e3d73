/*
 * libipc's shared-memory layout and private structures.
 *
 * One mapping per buffer:
 *
 *   offset            what                                   who writes, under
 *   0                 struct ipc__hdr (4096 bytes)           creator; then fields
 *                                                            marked (L) under the lock
 *   procs_off         struct ipc__proc[max_procs]  32 B      attach/close/reap (L);
 *                                                            life: its keeper, the
 *                                                            kernel, waiters (notice.c)
 *   tls_off           struct ipc__tslot[max_tls]   64 B      slot: (L); counters: the
 *                                                            owning thread only
 *   dir_off           struct ipc__dirent[dir_cap]  16 B      (L)
 *   heap_off          struct ipc__heap + metadata            (L)
 *   data_off          the heap's blocks (IPC_BLOCK each)     slabs, records, channels,
 *                                                            segments
 *
 * Every reference stored in shared memory is an offset from the start of the
 * mapping, checked with ipc__ptr() before use. Objects in the data region:
 *
 *   slab     struct ipc__slab (192 B), then records      kind IPC__BLK_SLAB
 *   record   struct ipc__rec (16 B) + payload            in a slab, or a run of
 *                                                        its own (IPC__BLK_RECORD)
 *   channel  struct ipc__chan (320 B) + ring of u64      IPC__BLK_CHANNEL
 *   segment  struct ipc__seg (576 B) + payload           IPC__BLK_SEGMENT
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
#include "ring.h"
#include "shm.h"

#define IPC__MAGIC UINT64_C(0x3146554243504931) /* "1IPCBUF1" */
#define IPC__LAYOUT 3u
/* Blocks the heap holds beyond the size asked for: room for the 16-byte
 * headers of four quarter-size records, a channel's ring and a slab, so that
 * records of a quarter of the buffer fit four times. Stats leave it out. */
#define IPC__HEAP_RESERVE 16u
#define IPC__CACHELINE 64
#define IPC__MAX_PROCS 256u
#define IPC__MAX_TLS 1024u

enum { IPC__ST_INIT = 0, IPC__ST_READY = 1, IPC__ST_DESTROYED = 2 };

struct ipc__hdr {
	ipc_a64 magic;            /* written last by the creator (release) */
	uint32_t version;         /* IPC__LAYOUT */
	uint32_t hdr_size;        /* sizeof(struct ipc__hdr) */
	uint64_t map_size;
	uint64_t data_off, data_size; /* the heap: the size asked for, rounded to
	                                 blocks, + IPC__HEAP_RESERVE blocks */
	uint64_t procs_off, tls_off, dir_off, heap_off;
	uint32_t max_procs, max_tls, dir_cap, slab_blocks;
	uint32_t def_capacity, def_wait;
	uint32_t shm_kind, sem_kind;
	int32_t creator_pid;
	uint32_t pad0;
	uint64_t creator_start;
	ipc_a32 state;            /* IPC__ST_* (L) */
	ipc_a32 nprocs;           /* attached processes (L) */
	ipc_a32 dir_gen;          /* futex: bumped when a channel/segment appears */
	uint32_t dir_used;        /* live + tombstone entries (L) */
	uint32_t dir_live;        /* live entries (L) */
	uint32_t name_unlinked;   /* the name was removed early (L) */
	uint32_t slab_used;       /* blocks held by slabs (L) */
	char handle[IPC_HANDLE_MAX + 1];
	struct ipc__lock lock;
};
_Static_assert(sizeof(struct ipc__hdr) <= 4096, "header fits its page");

struct ipc__proc {
	ipc_ai32 pid;             /* 0: free slot (L) */
	uint32_t gen;
	uint64_t start;           /* process start time */
	ipc_a32 life;             /* its keeper's thread id, a robust futex: the
	                             kernel marks it when the process dies (notice.c) */
	ipc_a32 life_waiters;     /* who waits on life, and whether one is alone */
	uint64_t pad2;
};
_Static_assert(sizeof(struct ipc__proc) == 32, "proc slot");

struct ipc__tslot {
	ipc_a32 used;             /* (L) */
	uint16_t proc;            /* process slot */
	uint16_t pad;
	int32_t thread_id;
	uint32_t pad2;
	ipc_a64 returned;         /* empty slabs given back by freers: a stack of
	                             offsets linked by slab.next; IPC__RET_CLOSED
	                             once the owner closed */
	ipc_a32 nreturned;
	ipc_a32 pend_count;       /* frees counted in pend_slab's live not yet */
	ipc_a64 pend_slab;        /* (owner writes; a reaper applies them) */
	uint64_t pad4[3];
};
#define IPC__RET_CLOSED 1u
#define IPC__RET_MAX 4u
_Static_assert(sizeof(struct ipc__tslot) == 64, "tls slot");

#define IPC__DIR_EMPTY 0u
#define IPC__DIR_TOMB 1u
struct ipc__dirent {
	uint64_t id;
	uint64_t off;             /* object offset, or EMPTY / TOMB (L) */
};

/* Channel end flags. */
enum {
	IPC__P_ATTACHED = 1u << 0, /* a producer attached at some point */
	IPC__C_ATTACHED = 1u << 1,
	IPC__P_CLOSED = 1u << 2,   /* the producer closed: end-of-stream */
	IPC__C_CLOSED = 1u << 3,
	IPC__P_DEAD = 1u << 4,     /* the producer died: aborted */
	IPC__C_DEAD = 1u << 5,
};

struct ipc__end_owner {
	ipc_ai32 pid;
	uint32_t proc;
	uint64_t start;
};

struct ipc__chan {
	/* line 0: fixed at creation, and end state (L for attach/close) */
	uint64_t id;
	uint32_t type;            /* IPC_CHANNEL_SPSC */
	uint32_t capacity;        /* records in flight, <= mask + 1 */
	uint64_t mask;            /* ring slots - 1 (power of two) */
	uint32_t wait;            /* enum ipc_wait_mode */
	ipc_a32 flags;            /* IPC__P_* / IPC__C_* */
	struct ipc__end_owner prod, cons;
	/* lines 1 and 2: tail (the producer's) and head (the consumer's) */
	struct ipc__ring_idx idx;
	/* line 3: consumer sleeps here (written rarely) */
	alignas(IPC__CACHELINE) ipc_a32 cons_seq;
	ipc_a32 cons_sleep;
	/* line 4: producer sleeps here */
	alignas(IPC__CACHELINE) ipc_a32 prod_seq;
	ipc_a32 prod_sleep;
	alignas(IPC__CACHELINE) ipc_a64 ring[];
};

enum { IPC__SEG_INIT = 0, IPC__SEG_READY = 1, IPC__SEG_DEAD = 2 };
struct ipc__seg {
	uint64_t id;
	uint32_t type;            /* IPC_CHANNEL_SEGMENT */
	ipc_a32 state;            /* IPC__SEG_*; futex while INIT */
	uint64_t size;
	uint32_t users;           /* (L) == sum of by_proc[] */
	int32_t creator_pid;
	uint64_t creator_start;
	uint64_t pad[3];
	uint16_t by_proc[IPC__MAX_PROCS]; /* users per process slot, so that a
	                                     dead process's users go away (L) */
};
_Static_assert(sizeof(struct ipc__seg) % 64 == 0, "segment header");

#define IPC__SLAB_MAGIC 0x534c4142u
#define IPC__SLAB_CHARGE (UINT64_C(1) << 40)
struct ipc__slab {
	/* line 0: fixed while the slab lives; read by freers */
	uint32_t magic;
	ipc_a32 proc;             /* process slot of its current owner */
	uint32_t sealed;          /* the owner stopped carving (owner, or reaper) */
	uint32_t tslot;
	uint32_t nblocks;
	/* line 1: freers' */
	alignas(IPC__CACHELINE) ipc_a64 live; /* IPC__SLAB_CHARGE - freed, until sealed */
	uint64_t next;            /* in its owner's returned stack */
	/* line 2: the owner's counter, read only by a reaper after its death */
	alignas(IPC__CACHELINE) ipc_a32 carved;
	ipc_a32 local_freed;      /* records the owner freed itself, unsealed */
};
#define IPC__SLAB_HDR 192u
_Static_assert(sizeof(struct ipc__slab) == IPC__SLAB_HDR, "slab header");

#define IPC__REC_MAGIC 0x52454331u /* check = MAGIC ^ size ^ (size >> 32) ^ slab */
#define IPC__REC_FREED 0xdeadf4eeu
#define IPC__REC_DIRECT UINT32_MAX
#define IPC__REC_SIZE_MASK ((UINT64_C(1) << 48) - 1)
struct ipc__rec {
	ipc_a64 word;             /* size as asked for (low 48 bits) | holder << 48:
	                             the process slot + 1 that allocated or last
	                             received it (a queued record keeps its
	                             producer's mark), 0 once its channel adopted
	                             it. Written by the holder only; the reaper
	                             frees what a dead process held. */
	ipc_a32 slab;             /* first block of its slab, or IPC__REC_DIRECT */
	ipc_a32 check;            /* see IPC__REC_MAGIC, or IPC__REC_FREED */
};
_Static_assert(sizeof(struct ipc__rec) == 16, "record header");

static inline uint32_t ipc__rec_check_word(uint64_t size, uint32_t slab)
{
	return IPC__REC_MAGIC ^ (uint32_t)size ^ (uint32_t)(size >> 32) ^ slab;
}

static inline uint64_t ipc__rec_size(struct ipc__rec *r)
{
	return ipc__load_relaxed(&r->word) & IPC__REC_SIZE_MASK;
}

static inline uint32_t ipc__rec_holder(struct ipc__rec *r)
{
	return (uint32_t)(ipc__load_relaxed(&r->word) >> 48);
}

/* holder: process slot + 1, or 0 for "in a channel". */
static inline void ipc__rec_hold(struct ipc__rec *r, uint32_t holder)
{
	ipc__store_relaxed(&r->word, ipc__rec_size(r) | (uint64_t)holder << 48);
}

/* ---- private, per process ---------------------------------------------- */

struct ipc_buffer {
	struct ipc__shm shm;
	char *base;
	struct ipc__hdr *hdr;
	struct ipc__heap *heap;
	char *data;
	uint64_t map_size;
	uint64_t rec_span;        /* map_size - data_off - sizeof(struct ipc__rec) */
	pid_t pid;                /* the process that opened it */
	uint32_t proc;            /* our process slot */
	uint64_t start;
	pthread_mutex_t tls_mu;   /* guards tls_list */
	pthread_t keeper;         /* holds our slot's life word (notice.c) */
	bool keeper_on;
	ipc_a32 keeper_state;     /* 0 starting, 1 holding, 2 could not */
	ipc_a32 keeper_quit;
	struct ipc_tls *tls_list;
	char handle[IPC_HANDLE_MAX + 1];
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
	struct ipc__ring_view v;  /* our side of the ring */
	int64_t next_check_ms;    /* when to check the peer's liveness again */
	int64_t spin_ns;          /* how long to spin before sleeping (hybrid) */
	int pidfd;                /* the peer's pidfd, or -1 */
	pid_t pidfd_pid;
};

struct ipc_tls {
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

/* ---- cross-file helpers ------------------------------------------------- */

/* Clear a TLS slot (L held; freers may read it meanwhile). returned: 0 for
 * a new owner, IPC__RET_CLOSED for a slot given up. */
static inline void ipc__tslot_reset(struct ipc__tslot *ts, uint64_t returned)
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
	if (off < b->hdr->data_off || off > b->map_size || len > b->map_size - off)
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

int ipc__lock_buf(struct ipc_buffer *b);
void ipc__unlock_buf(struct ipc_buffer *b);

/* Directory (L): find, insert, remove by id. */
struct ipc__dirent *ipc__dir_find(struct ipc_buffer *b, uint64_t id);
int ipc__dir_insert(struct ipc_buffer *b, uint64_t id, uint64_t off);
void ipc__dir_remove(struct ipc_buffer *b, struct ipc__dirent *e);

/* TLS end map: the end last used in each role first, then the map. */
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

/* Records. ipc__rec_check: the header of payload if it is a live record
 * of this buffer, checked against its slab too (before the slab is used);
 * ipc__rec_check_fast: only inside the mapping, aligned, its check word
 * right (enough to read it and pass it on: send and receive). */
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
/* Free a record; locked: L held. Returns 1 when that emptied its slab (which
 * then belongs to someone else), 0, or a negative errno. */
int ipc__rec_free(struct ipc_buffer *b, struct ipc__rec *r, bool locked);
/* Live records and their bytes, by walking the heap (L held). */
void ipc__rec_census_locked(struct ipc_buffer *b, uint64_t *count, uint64_t *bytes);
/* Free every record that process slot proc holds (L held). */
void ipc__rec_reap_locked(struct ipc_buffer *b, uint32_t proc);
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

/* Channels (L held): destroy when both ends are done; mark ends of a dead process. */
void ipc__chan_maybe_destroy(struct ipc_buffer *b, struct ipc__dirent *e);
void ipc__chan_end_detach_locked(struct ipc_buffer *b, struct ipc__chan *c, uint8_t role,
                                 bool dead);
void ipc__chan_wake_all(struct ipc__chan *c);
/* Records queued by dead producer slot proc now belong to the channel. */
void ipc__chan_adopt_locked(struct ipc_buffer *b, struct ipc__chan *c, uint32_t proc);
int ipc__chan_close_end(struct ipc_tls *t, struct ipc__end *e);
int ipc__seg_close_end(struct ipc_tls *t, struct ipc__end *e);

/* Drop every use of segments by process slot proc (L held). */
void ipc__seg_reap_locked(struct ipc_buffer *b, uint32_t proc);

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

/* Process slots (L held): reap every dead process; returns how many. */
int ipc__reap_locked(struct ipc_buffer *b);

#endif

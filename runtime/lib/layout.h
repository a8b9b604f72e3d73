/*
 * The shared-memory layout of a libipc buffer: one mapping, every reference
 * in it an offset from its start, every field pinned below by
 * _Static_assert(offsetof/sizeof). Who writes what: (L) under the buffer's
 * lock (struct ipc__hdr.lock, taken by ipc__lock_buf); (C) the creator,
 * before it publishes magic, never again; other writers are named.
 *
 * The mapping                       bytes                       writers
 *   0          struct ipc__hdr      4096 (one page)             (C); fields below
 *   procs_off  struct ipc__proc     32 x max_procs (256)        (L); life: notice.c
 *   tls_off    struct ipc__tslot    64 x max_tls (1024)         (L); see the slot
 *   dir_off    struct ipc__dirent   16 x dir_cap (power of 2)   (L)
 *   heap_off   struct ipc__heap     heap.c's metadata           (L)
 *   data_off   blocks of 4096 B     data_size / 4096 of them    by kind, below
 *   map_size   (end)
 *
 * struct ipc__hdr (layout IPC__LAYOUT)
 *   0    u64  magic          "1IPCBUF1"; (C) stores it last, release
 *   8    u32  version        IPC__LAYOUT                      (C)
 *   12   u32  hdr_size       sizeof(struct ipc__hdr)          (C)
 *   16   u64  map_size       bytes of the mapping             (C)
 *   24   u64  data_off       heap blocks start (4096-aligned) (C)
 *   32   u64  data_size      heap bytes, reserve included     (C)
 *   40   u64  procs_off, 48 tls_off, 56 dir_off, 64 heap_off  (C)
 *   72   u32  max_procs, 76 max_tls, 80 dir_cap, 84 slab_blocks (C)
 *   88   u32  def_capacity, 92 def_wait                       (C)
 *   96   u32  shm_kind, 100 sem_kind                          (C)
 *   104  i32  creator_pid, 108 pad, 112 u64 creator_start     (C)
 *   120  u32  state          IPC__ST_*                        (L)
 *   124  u32  nprocs         attached processes               (L)
 *   128  u32  dir_gen        futex: bumped by every insert    (L)
 *   132  u32  dir_used       live + tombstone entries         (L)
 *   136  u32  dir_live       live entries                     (L)
 *   140  u32  name_unlinked                                   (L)
 *   144  u32  slab_used      blocks held by slabs             (L)
 *   148  char handle[49]                                      (C)
 *   200  struct ipc__lock    the lock itself (shm.h); its holder is
 *                            IPC__HOLDER(pid, PID namespace)
 *   200 + sizeof(lock), 8-aligned: u64 creator_pidns          (C)
 *
 * After attach a process reads none of the creator's fields again: it
 * checks them once (ipc__geo_load) and keeps a private copy (struct
 * ipc__geo), so a later stray write to them cannot move its tables.
 *
 * struct ipc__proc (32 B)                    struct ipc__tslot (64 B)
 *   0  i32 pid    0: free            (L)       0  u32 used             (L)
 *   4  u32 gen                       (L)       4  u16 proc, 6 pad      (L)
 *   8  u64 start  its start time     (L)       8  i32 thread_id        (L)
 *   16 u32 life   keeper's robust futex        16 u64 returned  stack of empty
 *   20 u32 life_waiters  (notice.c)                slabs: freers push (CAS),
 *   24 u64 pidns                                   the owner takes all (xchg)
 *                                              24 u32 nreturned        (atomic)
 *                                              28 u32 pend_count  } the owning
 *                                              32 u64 pend_slab   } thread only
 *                                              40 pad[3]
 * struct ipc__dirent (16 B): 0 u64 id, 8 u64 off: object, or EMPTY/TOMB (L)
 *
 * Objects in the data region, each at the first block of a heap run whose
 * kind (heap.h) says what it is; an offset read from shared memory is used
 * only through the accessors at the end of this file, which check it
 * against the heap's run table:
 *
 *   slab (IPC__BLK_SLAB)  struct ipc__slab, 192 B, then records
 *     0  u32 magic, 4 u32 proc (owner's slot), 8 u32 sealed, 12 u32 tslot,
 *     16 u32 nblocks         the owner, at refill (or L for a fresh one)
 *     64 u64 live, 72 u64 next    freers (atomic) / the pusher
 *     128 u32 carved, 132 u32 local_freed   the owner; a reaper after death
 *   record                struct ipc__rec, 16 B, then the payload
 *     0  u64 word (size | holder << 48), 8 u32 slab, 12 u32 check
 *     in a slab, or alone in a run (IPC__BLK_RECORD, slab IPC__REC_DIRECT);
 *     written by its holder only; check = MAGIC ^ size ^ slab, or FREED
 *   channel (IPC__BLK_CHANNEL)  struct ipc__chan, 320 B, then mask + 1 slots
 *     0 u64 id, 8 u32 type, 12 u32 capacity, 16 u64 mask, 24 u32 wait  (L)
 *     28 u32 flags (atomic or, L), 32 prod, 48 cons (L)
 *     64 tail (producer's line), 128 head (consumer's line): ring.h
 *     192 cons_seq, cons_sleep; 256 prod_seq, prod_sleep (futexes)
 *     320 u64 ring[mask + 1]    the producer
 *   segment (IPC__BLK_SEGMENT)  struct ipc__seg, 576 B, then size bytes
 *     0 u64 id, 8 u32 type, 12 u32 state (creator, release), 16 u64 size,
 *     24 u32 users, 28 creator_pid, 32 creator_start, 64 u16 by_proc[256] (L)
 */
#ifndef IPC_LAYOUT_H
#define IPC_LAYOUT_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/buffer.h>

#include "atomic.h"
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
	uint64_t creator_pidns;   /* the creator's PID namespace, 0 unknown (C) */
};
_Static_assert(sizeof(struct ipc__hdr) <= 4096, "header fits its page");

struct ipc__proc {
	ipc_ai32 pid;             /* 0: free slot (L) */
	uint32_t gen;
	uint64_t start;           /* process start time, when pidns is known */
	ipc_a32 life;             /* its keeper's thread id, a robust futex: the
	                             kernel marks it when the process dies (notice.c) */
	ipc_a32 life_waiters;     /* who waits on life, and whether one is alone */
	uint64_t pidns;           /* its PID namespace (ipc__pidns_self), 0 unknown:
	                             pid and start are judged through /proc only by
	                             a process of that same namespace */
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
	/* takeover.c: an end held for a successor (ipc_channel_hold) becomes
	 * an orphan, not dead, when its process dies; its peer waits until a
	 * new process takes it over, or ipc_buffer_orphans_abort */
	IPC__P_HELD = 1u << 6,
	IPC__C_HELD = 1u << 7,
	IPC__P_ORPHAN = 1u << 8,
	IPC__C_ORPHAN = 1u << 9,
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
#define IPC__REC_HOLDER_MASK 0x7fffu
#define IPC__REC_QUEUED (UINT64_C(1) << 63)
/*
 * A record's states, in its word:
 *
 *   held      holder = slot + 1 of the process that allocated or received it
 *   queued    QUEUED | holder (a queued record keeps its producer's mark),
 *             or QUEUED | 0 once its channel adopted it (producer dead)
 *   freed     check == IPC__REC_FREED
 *
 *   alloc -> held --send--> queued --receive--> held (the consumer's)
 *   held --free--> freed; queued --channel destroyed--> freed
 *
 * So a send of a queued record (sent twice) is -EALREADY, a send of a
 * record another process holds is -EINVAL, a send or free of a freed one
 * is -EINVAL, and a free of a queued one is -EALREADY: it stays queued.
 */
struct ipc__rec {
	ipc_a64 word;             /* size as asked for (low 48 bits) | holder << 48
	                             | QUEUED (bit 63); written by its holder (the
	                             sender sets QUEUED before it publishes the
	                             slot; the receiver's hold clears it), by the
	                             channel's adoption under the lock; the reaper
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
	return (uint32_t)(ipc__load_relaxed(&r->word) >> 48) & IPC__REC_HOLDER_MASK;
}

/* Held by holder (process slot + 1): no longer queued. */
static inline void ipc__rec_hold(struct ipc__rec *r, uint32_t holder)
{
	ipc__store_relaxed(&r->word, ipc__rec_size(r) | (uint64_t)holder << 48);
}

/* ---- the layout, pinned ------------------------------------------------- */

#define IPC__PIN(type, field, off, size)                                        \
	_Static_assert(offsetof(struct type, field) == (off) &&                 \
	               sizeof(((struct type *)0)->field) == (size),             \
	               #type "." #field " moved")
IPC__PIN(ipc__hdr, magic, 0, 8);
IPC__PIN(ipc__hdr, version, 8, 4);
IPC__PIN(ipc__hdr, hdr_size, 12, 4);
IPC__PIN(ipc__hdr, map_size, 16, 8);
IPC__PIN(ipc__hdr, data_off, 24, 8);
IPC__PIN(ipc__hdr, data_size, 32, 8);
IPC__PIN(ipc__hdr, procs_off, 40, 8);
IPC__PIN(ipc__hdr, tls_off, 48, 8);
IPC__PIN(ipc__hdr, dir_off, 56, 8);
IPC__PIN(ipc__hdr, heap_off, 64, 8);
IPC__PIN(ipc__hdr, max_procs, 72, 4);
IPC__PIN(ipc__hdr, max_tls, 76, 4);
IPC__PIN(ipc__hdr, dir_cap, 80, 4);
IPC__PIN(ipc__hdr, slab_blocks, 84, 4);
IPC__PIN(ipc__hdr, def_capacity, 88, 4);
IPC__PIN(ipc__hdr, def_wait, 92, 4);
IPC__PIN(ipc__hdr, shm_kind, 96, 4);
IPC__PIN(ipc__hdr, sem_kind, 100, 4);
IPC__PIN(ipc__hdr, creator_pid, 104, 4);
IPC__PIN(ipc__hdr, creator_start, 112, 8);
IPC__PIN(ipc__hdr, state, 120, 4);
IPC__PIN(ipc__hdr, nprocs, 124, 4);
IPC__PIN(ipc__hdr, dir_gen, 128, 4);
IPC__PIN(ipc__hdr, dir_used, 132, 4);
IPC__PIN(ipc__hdr, dir_live, 136, 4);
IPC__PIN(ipc__hdr, name_unlinked, 140, 4);
IPC__PIN(ipc__hdr, slab_used, 144, 4);
IPC__PIN(ipc__hdr, handle, 148, IPC_HANDLE_MAX + 1);
_Static_assert(offsetof(struct ipc__hdr, lock) == 200, "ipc__hdr.lock moved");
_Static_assert(offsetof(struct ipc__hdr, creator_pidns) ==
               (200 + sizeof(struct ipc__lock) + 7) / 8 * 8,
               "ipc__hdr.creator_pidns moved");

IPC__PIN(ipc__proc, pid, 0, 4);
IPC__PIN(ipc__proc, gen, 4, 4);
IPC__PIN(ipc__proc, start, 8, 8);
IPC__PIN(ipc__proc, life, 16, 4);
IPC__PIN(ipc__proc, life_waiters, 20, 4);
IPC__PIN(ipc__proc, pidns, 24, 8);

IPC__PIN(ipc__tslot, used, 0, 4);
IPC__PIN(ipc__tslot, proc, 4, 2);
IPC__PIN(ipc__tslot, thread_id, 8, 4);
IPC__PIN(ipc__tslot, returned, 16, 8);
IPC__PIN(ipc__tslot, nreturned, 24, 4);
IPC__PIN(ipc__tslot, pend_count, 28, 4);
IPC__PIN(ipc__tslot, pend_slab, 32, 8);

IPC__PIN(ipc__dirent, id, 0, 8);
IPC__PIN(ipc__dirent, off, 8, 8);
_Static_assert(sizeof(struct ipc__dirent) == 16, "dirent");

IPC__PIN(ipc__chan, id, 0, 8);
IPC__PIN(ipc__chan, type, 8, 4);
IPC__PIN(ipc__chan, capacity, 12, 4);
IPC__PIN(ipc__chan, mask, 16, 8);
IPC__PIN(ipc__chan, wait, 24, 4);
IPC__PIN(ipc__chan, flags, 28, 4);
IPC__PIN(ipc__chan, prod, 32, 16);
IPC__PIN(ipc__chan, cons, 48, 16);
IPC__PIN(ipc__chan, idx, 64, 128);
IPC__PIN(ipc__chan, cons_seq, 192, 4);
IPC__PIN(ipc__chan, cons_sleep, 196, 4);
IPC__PIN(ipc__chan, prod_seq, 256, 4);
IPC__PIN(ipc__chan, prod_sleep, 260, 4);
_Static_assert(offsetof(struct ipc__chan, ring) == 320 && sizeof(struct ipc__chan) == 320,
               "ipc__chan.ring moved");

IPC__PIN(ipc__seg, id, 0, 8);
IPC__PIN(ipc__seg, type, 8, 4);
IPC__PIN(ipc__seg, state, 12, 4);
IPC__PIN(ipc__seg, size, 16, 8);
IPC__PIN(ipc__seg, users, 24, 4);
IPC__PIN(ipc__seg, creator_pid, 28, 4);
IPC__PIN(ipc__seg, creator_start, 32, 8);
IPC__PIN(ipc__seg, by_proc, 64, 2 * IPC__MAX_PROCS);
_Static_assert(sizeof(struct ipc__seg) == 576, "segment header");

IPC__PIN(ipc__slab, magic, 0, 4);
IPC__PIN(ipc__slab, proc, 4, 4);
IPC__PIN(ipc__slab, sealed, 8, 4);
IPC__PIN(ipc__slab, tslot, 12, 4);
IPC__PIN(ipc__slab, nblocks, 16, 4);
IPC__PIN(ipc__slab, live, 64, 8);
IPC__PIN(ipc__slab, next, 72, 8);
IPC__PIN(ipc__slab, carved, 128, 4);
IPC__PIN(ipc__slab, local_freed, 132, 4);

IPC__PIN(ipc__rec, word, 0, 8);
IPC__PIN(ipc__rec, slab, 8, 4);
IPC__PIN(ipc__rec, check, 12, 4);

/* ---- checked access --------------------------------------------------- */

/* The creator's geometry, checked once at open and kept in private memory
 * (struct ipc_buffer.geo): nothing after attach reads it from the header. */
struct ipc__geo {
	uint64_t procs_off, tls_off, dir_off, heap_off, data_off, data_size;
	uint32_t max_procs, max_tls, dir_cap, nblocks, slab_blocks;
};

struct ipc_buffer;
struct ipc__heap;

/* Check the header's geometry against the mapping and copy it to b->geo.
 * 0, or -EBADMSG (reported). */
int ipc__geo_load(struct ipc_buffer *b);

/* Report corrupt shared memory: one line on stderr naming the buffer and
 * what was wrong. Returns -EBADMSG, for the caller to return. */
int ipc__corrupt(const struct ipc_buffer *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Table entries by index; NULL when i is out of range. */
struct ipc__proc *ipc__proc_at(const struct ipc_buffer *b, uint32_t i);
struct ipc__tslot *ipc__tslot_at(const struct ipc_buffer *b, uint32_t i);
struct ipc__dirent *ipc__dirent_at(const struct ipc_buffer *b, uint32_t i);

/* The object at offset off read from shared memory: the first block of a
 * heap run of that kind, whose header agrees with the run (a slab's magic
 * and length; a channel's id, type, mask and capacity; a segment's id, type
 * and size). NULL otherwise; these do not report, their callers do, naming
 * where the offset came from. *bytes (if not NULL): the run's bytes. They
 * read the heap's run table, which changes under L: with L taken the answer
 * stays true; without it (slab_refill's spare slab, the free of a record
 * alone in its run) it is true when read, which is enough for an object
 * the caller owns (an empty slab given to it, a record it holds), and the
 * heap checks the run again under L before it frees it. */
uint32_t ipc__run_kind(const struct ipc_buffer *b, uint64_t off, uint64_t *bytes);
struct ipc__slab *ipc__slab_at(const struct ipc_buffer *b, uint64_t off);
struct ipc__chan *ipc__chan_at(const struct ipc_buffer *b, uint64_t off, uint64_t id);
struct ipc__seg *ipc__seg_at(const struct ipc_buffer *b, uint64_t off, uint64_t id);
/* A channel's ring geometry is still what its run can hold (the mask and
 * capacity of a channel found earlier, read again under the lock). */
bool ipc__chan_geo_ok(const struct ipc_buffer *b, const struct ipc__chan *c);

#endif

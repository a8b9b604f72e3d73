/*
 * libipc: one shared-memory buffer that any number of processes and threads
 * attach to, a multi-process heap with per-thread lock-free slabs, many
 * single-producer/single-consumer (SPSC) zero-copy record channels, and named
 * static shared segments.
 *
 * Conventions
 *  - Actions return 0 (IPC_TX_SUCCESS), a documented positive IPC_TX_* code,
 *    or a negative errno value. ipc_strerror() names both kinds.
 *  - Out-parameters come last and are written only on success.
 *  - A struct ipc_buffer may be shared by the threads of one process; a
 *    struct ipc_tls belongs to exactly one thread at a time.
 *  - After fork(), a child must call ipc_buffer_open() itself: a call through
 *    a struct ipc_buffer or struct ipc_tls its parent opened fails with
 *    -ECHILD (NULL and errno ECHILD) and touches nothing shared; closing
 *    them in the child only unmaps and forgets them.
 *  - A call through a closed handle fails with -EBADF (closing twice too).
 *    Like a file descriptor, a closed handle may be reused by a later open.
 *  - Shared memory is checked before use: what another process corrupted is
 *    reported (one line on stderr naming the buffer and what was wrong) and
 *    the call that met it fails with -EBADMSG; what is intact keeps working.
 */
#ifndef IPC_BUFFER_H
#define IPC_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define IPC_VERSION_MAJOR 1
#define IPC_VERSION_MINOR 0

/* Longest handle accepted, without the terminating NUL. Handles use only
 * [A-Za-z0-9._-] and must not start with '.'. */
#define IPC_HANDLE_MAX 48

enum ipc_shm_kind {
	IPC_SHM_DEFAULT = 0, /* env IPC_SHM ("posix", "sysv", "memfd"), else POSIX */
	IPC_SHM_POSIX,       /* shm_open("/ipc.<handle>") */
	IPC_SHM_SYSV,        /* shmget(key derived from the handle) */
	IPC_SHM_MEMFD,       /* memfd_create: anonymous; other processes attach
	                        through /proc/<creator>/fd while the creator lives */
};

enum ipc_sem_kind {
	IPC_SEM_DEFAULT = 0, /* env IPC_SEM ("posix", "sysv"), else POSIX */
	IPC_SEM_POSIX,       /* process-shared sem_t inside the buffer */
	IPC_SEM_SYSV,        /* a private System V semaphore set, SEM_UNDO */
};

enum ipc_wait_mode {
	IPC_WAIT_DEFAULT = 0, /* the buffer's default (env IPC_WAIT), else hybrid */
	IPC_WAIT_HYBRID,      /* spin briefly, then sleep on a futex */
	IPC_WAIT_SPIN,        /* never sleep: lowest latency, burns a core (yields
	                         it after 5 us without progress) */
	IPC_WAIT_BLOCK,       /* sleep at once when the channel is full or empty */
};

enum ipc_role {
	IPC_PRODUCER = 1,
	IPC_CONSUMER = 2,
};

enum ipc_channel_type {
	IPC_CHANNEL_SPSC = 1,
	IPC_CHANNEL_SEGMENT = 2,
};

/* Positive results of send/receive; failures are negative errno values. */
enum {
	IPC_TX_SUCCESS = 0,
	IPC_TX_RETRY = 1,   /* ring full on send, empty on receive; or timeout */
	IPC_TX_EOF = 2,     /* producer closed and everything was received */
	IPC_TX_ABORTED = 3, /* producer died; everything it committed was received */
};

#define IPC_CHANNEL_CAPACITY_DEFAULT 1024u
#define IPC_BUFFER_SIZE_DEFAULT (64u << 20)

struct ipc_buffer_opts {
	size_t size;                /* data bytes; 0: env IPC_BUFFER_SIZE, else 64 MiB.
	                               Ignored when attaching to an existing buffer. */
	enum ipc_shm_kind shm;
	enum ipc_sem_kind sem;
	enum ipc_wait_mode wait;    /* default wait mode of channels created here */
	uint32_t capacity;          /* default channel capacity; 0: 1024 */
	int open_timeout_ms;        /* how long an opener waits for a creator
	                               to finish; 0: 5000 */
};

struct ipc_channel_opts {
	uint32_t capacity;          /* records in flight; 0: the buffer's default */
	enum ipc_wait_mode wait;    /* 0: the buffer's default */
};

struct ipc_buffer_stats {
	uint64_t size;      /* bytes of the heap: opts.size rounded up to 4 KiB
	                       (the heap keeps 64 KiB more for record headers
	                       and rings, counted neither here nor in free) */
	uint64_t free;      /* heap bytes not allocated */
	uint64_t slab;      /* heap bytes held by slabs */
	uint64_t records;   /* bytes of live records (as asked for) */
	uint64_t record_count;
	uint32_t channels;  /* channels and segments alive */
	uint32_t processes; /* attached processes */
};

struct ipc_channel_info {
	uint64_t id;
	enum ipc_channel_type type;
	uint32_t capacity;         /* records (channels) */
	uint64_t size;             /* bytes (segments) */
	uint64_t pending;          /* records queued */
	uint64_t sent, received;   /* totals */
	bool producer, consumer;   /* an end is attached now */
	bool closed, aborted;      /* producer closed / died */
};

struct ipc_buffer;
struct ipc_tls;

/*
 * Create the buffer named by handle, or attach to it if it exists. Safe to
 * call from every process at once: exactly one creates, the others wait (at
 * most opts->open_timeout_ms) until it is ready. The creator reserves the
 * buffer's memory (POSIX shm and memfd: every page, up front), so a buffer
 * that does not fit fails here rather than with SIGBUS later. An existing
 * object is attached only when it is a regular object (never a FIFO or a
 * symlink) owned by the caller's effective uid with mode 0600, as the
 * creator makes it (System V: the segment and the semaphore set), and only
 * after every header field checked out against the mapping's real size. A
 * handle names one buffer whatever backend is asked for: when it exists
 * under another backend, the opener attaches to that one
 * (ipc_buffer_shm_kind() tells which).
 * Returns NULL with errno set: EINVAL bad handle or options (or an
 * IPC_BUFFER_SIZE outside 64K..16383G, said on stderr), ETIMEDOUT creator
 * still not done, EOWNERDEAD creator died half-way, EPROTO version or
 * layout mismatch, EEXIST another object holds the name, ENOSPC the memory
 * cannot be had (/dev/shm too small, System V limits: stderr names the size
 * asked, the room free and the fixes), EPERM the object under the name is
 * not ours (another user's, a FIFO, a symlink, another mode: stderr names
 * it and its owner; refused at once), EBADMSG its header is damaged, or
 * what the OS said.
 */
struct ipc_buffer *ipc_buffer_open(const char *handle,
                                   const struct ipc_buffer_opts *opts);

/*
 * Detach. The last process to close removes every OS object of the buffer.
 * unlink: also remove the name now, so that later opens create a new buffer
 * (processes already attached keep working). Closes any TLS still open, and
 * gives back the records this process still holds (allocated and not sent,
 * received and not freed), as its death would; those it sent stay queued
 * for their consumers. Returns 0, -EBADF (closed already), or a negative
 * errno (the buffer is detached anyway).
 */
int ipc_buffer_close(struct ipc_buffer *b, bool unlink);

/* Write a fresh handle, unique on this machine, to out. Returns 0 or -EINVAL
 * (len too small: IPC_HANDLE_MAX + 1 always suffices). */
int ipc_buffer_gen_handle(char *out, size_t len);

/* Snapshot of the buffer's counters. Returns 0 or -EINVAL. Thread-safe. */
int ipc_buffer_stats(struct ipc_buffer *b, struct ipc_buffer_stats *out);

/* true while a channel or segment exists in the buffer. */
bool ipc_buffer_has_channels(struct ipc_buffer *b);

/*
 * Look for processes that died attached to the buffer: mark their channel
 * ends dead (their consumers drain and then see IPC_TX_ABORTED, their
 * producers get -EPIPE), wake every waiter, give back their slabs and their
 * process slot. Waiters also do this by themselves within 100 ms.
 * Returns the number of dead processes found, or a negative errno.
 */
int ipc_buffer_reap(struct ipc_buffer *b);

/* The handle, and the backends actually in use. */
const char *ipc_buffer_handle(const struct ipc_buffer *b);
enum ipc_shm_kind ipc_buffer_shm_kind(const struct ipc_buffer *b);
enum ipc_sem_kind ipc_buffer_sem_kind(const struct ipc_buffer *b);

/* Remove every OS object of a buffer whose processes are all provably dead
 * (what a crashed run leaves), whichever PID namespaces they ran in: a
 * process counts as dead when the kernel marked its robust-futex life word,
 * or (in our own PID namespace only) when /proc says so; a System V segment
 * still attached anywhere is in use. shm names the memory kind to look at;
 * the handle's keyed System V semaphore set is removed only with its
 * buffer, or when no buffer of the handle exists in either kind.
 * Returns 1 when something was removed (by this call), 0 when there was
 * nothing of that handle, -EBUSY when the buffer exists and is (or may be)
 * in use (nothing touched), -EPERM when the object is not ours (another
 * user's, or not a buffer: untouched), -EBADMSG/-EPROTO for a header it
 * cannot read (untouched), or another negative errno. */
int ipc_buffer_gc(const char *handle, enum ipc_shm_kind shm);

/*
 * Per-thread state: slabs and channel ends. thread_id is the caller's own
 * label (shown in diagnostics). Returns NULL with errno ENOSPC when every
 * thread slot of the buffer is taken.
 */
struct ipc_tls *ipc_tls_open(struct ipc_buffer *b, int32_t thread_id);

/* Close this thread's channel ends (a producer's close is end-of-stream) and
 * segments, and give back its slabs. Records are the process's, not the
 * thread's: those this thread still holds stay valid (another thread may
 * free or send them) until freed, or until the process closes the buffer,
 * which gives them back. Records in flight stay valid until their receiver
 * frees them. A second close is reported on stderr and ignored. */
void ipc_tls_close(struct ipc_tls *t);

/* Attach to channel id as producer or consumer, creating it if needed.
 * Returns 0; -EBUSY that end is taken; -EPROTOTYPE id is a segment;
 * -EALREADY this TLS already has that end; -ENOMEM no room; -EINVAL. */
int ipc_channel_add(struct ipc_tls *t, uint64_t id, enum ipc_role role);
int ipc_channel_add_opts(struct ipc_tls *t, uint64_t id, enum ipc_role role,
                         const struct ipc_channel_opts *opts);

/* Detach this TLS's end of channel id (or segment id). A producer's close is
 * end-of-stream; a channel is destroyed once both ends attached and closed,
 * and its queued records go back to the heap. Returns 0 or -ENOENT. */
int ipc_channel_close(struct ipc_tls *t, uint64_t id);

/* Detach this TLS's producer end of channel id as if the producer had died:
 * the consumer receives everything sent so far, then IPC_TX_ABORTED instead
 * of IPC_TX_EOF. For a producer that failed and must not have its partial
 * stream taken for a whole one. Returns 0, or -ENOENT (no producer end of
 * id in this TLS). */
int ipc_channel_abort(struct ipc_tls *t, uint64_t id);

/* true when a channel or segment id exists; waits up to timeout_ms (< 0:
 * forever) for another thread or process to create it. */
bool ipc_channel_exists(struct ipc_tls *t, uint64_t id, int timeout_ms);

/* Up to max entries describing the buffer's channels and segments; returns
 * how many exist (which may exceed max). */
size_t ipc_channel_list(struct ipc_buffer *b, struct ipc_channel_info *out,
                        size_t max);

/* true when channel id has a producer attached that has not closed. */
bool ipc_channel_has_producer(struct ipc_tls *t, uint64_t id);

/* Records queued in channel id (0 when it does not exist). */
size_t ipc_channel_pending(struct ipc_tls *t, uint64_t id);

/*
 * A record of n bytes (1 <= n <= a quarter of the buffer) in the shared heap,
 * to send on channel id, which this TLS must have added as producer.
 * Returns NULL and sets errno: ENOENT channel not added as producer,
 * EINVAL bad size, ENOMEM buffer exhausted. 16-byte aligned.
 */
void *ipc_record_alloc(struct ipc_tls *t, size_t n, uint64_t id);

/* As ipc_record_alloc, but while the buffer is exhausted (ENOMEM) wait for
 * records to be freed, up to timeout_ms (< 0: forever; 0: not at all),
 * polling every 50 us to 1 ms. NULL with errno ENOMEM when the time passed,
 * or the other errors of ipc_record_alloc at once. */
void *ipc_record_alloc_wait(struct ipc_tls *t, size_t n, uint64_t id,
                            int timeout_ms);

/* Shorten rec, allocated by this thread (t) and not sent yet, to its first n
 * bytes, 1 <= n <= its size: ipc_record_size and the consumer see n. The
 * space given up is reused at once when rec is t's latest allocation.
 * Returns 0, or -EINVAL (bad n, not a live record, or not t's own). */
int ipc_record_trim(struct ipc_tls *t, void *rec, size_t n);

/* Queue *rec on channel id; on success *rec = NULL and the record belongs to
 * the consumer. Returns 0, IPC_TX_RETRY (full), -EPIPE (consumer closed or
 * died), -ENOENT, -EALREADY (the record is already queued: sent twice),
 * -EINVAL (not a record of this buffer held by this process: freed, or
 * received by another process). A record received may be sent on. */
int ipc_record_send(struct ipc_tls *t, uint64_t id, void **rec);

/* Take the next record of channel id into *rec. Returns 0, IPC_TX_RETRY
 * (empty), IPC_TX_EOF, IPC_TX_ABORTED, -ENOENT. */
int ipc_record_recv(struct ipc_tls *t, uint64_t id, void **rec);

/* As above, but wait up to timeout_ms (< 0: forever) while full / empty;
 * IPC_TX_RETRY when the time passes. */
int ipc_record_send_wait(struct ipc_tls *t, uint64_t id, void **rec,
                         int timeout_ms);
int ipc_record_recv_wait(struct ipc_tls *t, uint64_t id, void **rec,
                         int timeout_ms);

/* Give a record back; any thread or process of the buffer may free any
 * record once. A NULL rec is ignored. A pointer that is not a live record,
 * or a record still queued in a channel (freed after it was sent), is
 * reported on stderr and ignored. */
void ipc_record_free(struct ipc_tls *t, void *rec);

/* As ipc_record_free, returning 0, -EINVAL (not a live record: freed
 * already, or not a record) or -EALREADY (sent and still queued: the
 * consumer will free it). */
int ipc_record_release(struct ipc_tls *t, void *rec);

/* Size asked for at allocation, or 0 for a pointer that is not a live record
 * of a buffer this process has open (never read outside those buffers). */
size_t ipc_record_size(const void *rec);

/*
 * Create named static segment id of n bytes, or attach to it if it exists
 * (n larger than it has: -EINVAL). init(seg, arg) runs once, in the creator,
 * before any other thread or process can open it; without init it is zeroed.
 * Returns 0; -EPROTOTYPE id is a channel; -ENOMEM; -EOWNERDEAD the creator
 * died in init. The segment is freed when its last user closes.
 */
int ipc_segment_add(struct ipc_tls *t, uint64_t id, size_t n,
                    void (*init)(void *seg, void *arg), void *arg);

/* Attach to existing segment id, waiting while its creator runs init.
 * Returns 0 and *out, or -ENOENT, -EPROTOTYPE, -EOWNERDEAD. */
int ipc_segment_open(struct ipc_tls *t, uint64_t id, void **out);

/* Size of segment id in bytes, or 0. */
size_t ipc_segment_size(struct ipc_tls *t, uint64_t id);

/*
 * Taking over the ends of a dead process (a restarted process goes on where
 * its predecessor stopped). Nothing here is on the data path.
 *
 * ipc_channel_hold: mark this TLS's end of channel id (role) as held for a
 * successor: if its process dies, the end becomes an orphan instead of dead,
 * and its peer waits (a consumer sees neither IPC_TX_ABORTED nor EOF once it
 * has drained what was committed; a producer does not get -EPIPE and waits
 * when the ring is full) until a process takes it over or
 * ipc_buffer_orphans_abort. An abort by the owner itself (ipc_channel_abort)
 * stays final. Returns 0, -ENOENT (no such end here), -EINVAL.
 *
 * ipc_channel_takeover: attach role of channel id; when that end is an
 * orphan, take it over: a producer continues the stream after the records
 * its predecessor committed, a consumer takes what is queued (including a
 * record its predecessor had peeked at but not released). A dead owner
 * nobody noticed yet is noticed first. When nobody held the end before, the
 * same as ipc_channel_add_opts. Returns 0, -EBUSY (its owner is alive),
 * -EPIPE (that end closed, or died unheld: its stream is over), -EALREADY,
 * or what ipc_channel_add_opts returns. One thread per end, as for add.
 *
 * ipc_buffer_orphans_abort: nobody will take over: every orphaned end of the
 * buffer becomes dead, as at its process's death (consumers drain and see
 * IPC_TX_ABORTED, producers get -EPIPE). Returns how many channels.
 *
 * ipc_buffer_reap_lost: ipc_buffer_reap, and *lost = the records the dead
 * processes it found held (allocated and not sent, or received and not yet
 * freed), which it freed and which are lost. Records a dead producer had
 * committed to a channel are not lost: they stay queued. Returns what
 * ipc_buffer_reap returns. Any thread; takes the buffer's lock.
 */
int ipc_channel_hold(struct ipc_tls *t, uint64_t id, enum ipc_role role);
int ipc_channel_takeover(struct ipc_tls *t, uint64_t id, enum ipc_role role,
                         const struct ipc_channel_opts *opts);
int ipc_buffer_orphans_abort(struct ipc_buffer *b);
int ipc_buffer_reap_lost(struct ipc_buffer *b, uint64_t *lost);

/* Text for an IPC_TX_* code or a negative errno. */
const char *ipc_strerror(int err);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* IPC_BUFFER_H */

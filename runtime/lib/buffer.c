/*
 * The buffer API (layer 7, the top): create-or-attach, process slots, close
 * and removal, stats. The lock and the directory are dir.c, the layout and
 * header check layout.c, reaping and garbage collection reap.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define MAX_PROCS IPC__MAX_PROCS
#define MAX_TLS IPC__MAX_TLS
#define SIZE_MIN_BYTES IPC__SIZE_MIN_BYTES
#define SIZE_MAX_BYTES IPC__SIZE_MAX_BYTES

/* IPC_BUFFER_SIZE ("64M", "1G", "4096", "512KiB"): 0 with the size, or
 * -EINVAL with a message giving the accepted range. */
static int env_size(const char *v, uint64_t *out)
{
	if (ipc__parse_u64(v, true, SIZE_MIN_BYTES, SIZE_MAX_BYTES, out) == 0)
		return 0;
	fprintf(stderr, "libipc: IPC_BUFFER_SIZE=%s: not a size from 64K to %lluG "
	        "(a number of bytes, or with K, M, G or T)\n", v,
	        (unsigned long long)(SIZE_MAX_BYTES >> 30));
	return -EINVAL;
}

static int env_choice(const char *var, const char *a, int va, const char *b, int vb,
                      const char *c, int vc, int dflt)
{
	const char *v = getenv(var);
	if (!v || !*v)
		return dflt;
	if (!strcmp(v, a)) return va;
	if (!strcmp(v, b)) return vb;
	if (c && !strcmp(v, c)) return vc;
	fprintf(stderr, "libipc: %s=%s: expected %s, %s%s%s\n", var, v, a, b, c ? " or " : "",
	        c ? c : "");
	return -1;
}

/* Take a process slot (L held). */
static int proc_attach_locked(struct ipc_buffer *b)
{
	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		if (ipc__load_relaxed(&p->pid) == 0) {
			p->gen++;
			p->start = b->start;
			p->pidns = b->pidns;
			/* No keeper yet: the last owner's FUTEX_OWNER_DIED must not
			 * make us look dead (ipc__keeper_start sets it). */
			ipc__store_relaxed(&p->life, 0);
			/* Pairs with the acquire loads of pid in ipc__proc_alive(),
			 * ipc__pid_alive_in(), ipc__holder_dead() (live.c):
			 * publishes gen, start, pidns and life. */
			ipc__store_release(&p->pid, (int32_t)b->pid);
			b->proc = i;
			ipc__add_relaxed(&b->hdr->nprocs, 1);
			return 0;
		}
	}
	return -EUSERS;
}

/* Our views of the mapping, from the header's geometry once checked
 * (ipc__geo_load): 0 or -EBADMSG. */
static int set_views(struct ipc_buffer *b)
{
	b->base = b->shm.base;
	b->hdr = (struct ipc__hdr *)b->base;
	b->map_size = b->shm.size;
	int err = ipc__geo_load(b);
	if (err)
		return err;
	b->heap = (struct ipc__heap *)(b->base + b->geo.heap_off);
	b->data = b->base + b->geo.data_off;
	b->rec_span = b->map_size - b->geo.data_off - sizeof(struct ipc__rec);
	return 0;
}

static int creator_init(struct ipc_buffer *b, const struct ipc__plan *l,
                        const struct ipc_buffer_opts *o, enum ipc_sem_kind sem)
{
	struct ipc__hdr *h = b->hdr;
	int err;

	h->version = IPC__LAYOUT;
	h->hdr_size = sizeof(*h);
	h->map_size = l->map_size;
	h->data_off = l->data_off;
	h->data_size = l->data_size;
	h->procs_off = l->procs_off;
	h->tls_off = l->tls_off;
	h->dir_off = l->dir_off;
	h->heap_off = l->heap_off;
	h->max_procs = MAX_PROCS;
	h->max_tls = MAX_TLS;
	h->dir_cap = l->dir_cap;
	h->slab_blocks = l->slab_blocks;
	h->def_capacity = o->capacity ? o->capacity : IPC_CHANNEL_CAPACITY_DEFAULT;
	h->def_wait = o->wait;
	h->shm_kind = (uint32_t)b->shm.kind;
	h->sem_kind = (uint32_t)sem;
	h->creator_pid = (int32_t)b->pid;
	h->creator_start = b->start;
	h->creator_pidns = b->pidns;
	snprintf(h->handle, sizeof(h->handle), "%s", b->handle);
	err = ipc__lock_create(&h->lock, sem, b->shm.kind == IPC_SHM_MEMFD ? NULL : b->handle);
	if (err)
		return err;
	err = set_views(b);
	if (err)
		return err;
	ipc__heap_init(b->heap, l->nblocks);
	/* No lock: nobody else can see the buffer before magic is stored
	 * below (and openers wait on the flock until ipc__shm_ready()). */
	proc_attach_locked(b);
	/* Pairs with attach()'s load of state (under L, taken after this by
	 * ipc__lock_buf()), and with its futex wait on it. */
	ipc__store_release(&h->state, IPC__ST_READY);
	/* Pairs with the acquire loads of magic in attach() and
	 * ipc_buffer_gc(): publishes the header. */
	ipc__store_release(&h->magic, IPC__MAGIC);
	ipc__futex_wake(&h->state);
	ipc__shm_ready(&b->shm);
	return 0;
}

/* Attach to an existing buffer. -EAGAIN: it vanished or is being destroyed,
 * try again from the start. */
static int attach(struct ipc_buffer *b, enum ipc_shm_kind kind, int64_t deadline)
{
	struct ipc__hdr *h;
	size_t size;
	int err = ipc__shm_open(&b->shm, kind, b->handle);

	if (err)
		return err == -ENOENT || err == -EIDRM ? -EAGAIN : err;
	for (;;) {
		size = ipc__shm_size(&b->shm);
		if (size >= 4096)
			break;
		if (size == 0 && kind == IPC_SHM_SYSV)
			return -EAGAIN; /* removed */
		if (ipc__now_ms() > deadline)
			goto timeout;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	err = ipc__shm_map(&b->shm, size);
	if (err)
		return err == -EIDRM || err == -EINVAL ? -EAGAIN : err;
	h = (struct ipc__hdr *)b->shm.base;
	/* Pairs with creator_init()'s release store of magic. */
	while (ipc__load_acquire(&h->magic) != IPC__MAGIC) {
		int busy = ipc__shm_creator_busy(&b->shm);
		if (busy == 0 && ipc__load_acquire(&h->magic) != IPC__MAGIC)
			return -EOWNERDEAD;
		/* SysV: no creation lock; its creator's pid is judged only
		 * in our own PID namespace (elsewhere it is waited for). */
		if (busy < 0 && h->creator_pid > 0 && b->pidns != 0 &&
		    h->creator_pidns == b->pidns && !ipc__pid_alive(h->creator_pid, 0))
			return -EOWNERDEAD;
		if (ipc__now_ms() > deadline)
			goto timeout;
		ipc__futex_wait(&h->state, IPC__ST_INIT, 10);
	}
	err = ipc__header_check(b, h, kind, size);
	if (err)
		return err;
	if (strcmp(h->handle, b->handle) != 0)
		return -EEXIST; /* SysV key collision with another handle */
	err = set_views(b);
	if (err)
		return err;
	err = ipc__lock_buf(b);
	if (err)
		return -EAGAIN;
	if (ipc__load_relaxed(&h->state) != IPC__ST_READY) {
		ipc__unlock_buf(b);
		return -EAGAIN;
	}
	/* A slot first, then reaping: a holder of the lock with no slot
	 * cannot be judged by peers in other PID namespaces (holder_dead), so
	 * that stretch is kept short. */
	err = proc_attach_locked(b);
	if (err == -EUSERS && ipc__reap_locked(b) > 0)
		err = proc_attach_locked(b);
	else if (err == 0)
		ipc__reap_locked(b);
	ipc__unlock_buf(b);
	return err;
timeout:
	fprintf(stderr, "libipc: buffer '%s': its creator did not finish in time\n", b->handle);
	return -ETIMEDOUT;
}

struct ipc_buffer *ipc_buffer_open(const char *handle, const struct ipc_buffer_opts *opts)
{
	struct ipc_buffer_opts o = {0};
	struct ipc_buffer *b;
	struct ipc__plan l;
	int err;

	if (opts)
		o = *opts;
	if (!ipc__handle_ok(handle)) {
		errno = EINVAL;
		return NULL;
	}
	if (o.shm == IPC_SHM_DEFAULT)
		o.shm = env_choice("IPC_SHM", "posix", IPC_SHM_POSIX, "sysv", IPC_SHM_SYSV,
		                   "memfd", IPC_SHM_MEMFD, IPC_SHM_POSIX);
	if (o.sem == IPC_SEM_DEFAULT)
		o.sem = env_choice("IPC_SEM", "posix", IPC_SEM_POSIX, "sysv", IPC_SEM_SYSV,
		                   NULL, 0, IPC_SEM_POSIX);
	if (o.wait == IPC_WAIT_DEFAULT)
		o.wait = env_choice("IPC_WAIT", "hybrid", IPC_WAIT_HYBRID, "spin", IPC_WAIT_SPIN,
		                    "block", IPC_WAIT_BLOCK, IPC_WAIT_HYBRID);
	if (o.size == 0) {
		const char *v = getenv("IPC_BUFFER_SIZE");
		uint64_t size = IPC_BUFFER_SIZE_DEFAULT;
		if (v && *v && env_size(v, &size)) {
			errno = EINVAL;
			return NULL;
		}
		o.size = size;
	}
	if ((int)o.shm < 0 || o.shm > IPC_SHM_MEMFD || (int)o.sem < 0 || o.sem > IPC_SEM_SYSV ||
	    (int)o.wait < 0 || o.wait > IPC_WAIT_BLOCK || o.size < SIZE_MIN_BYTES ||
	    o.size > SIZE_MAX_BYTES ||
	    o.capacity > (1u << 30) || o.open_timeout_ms < 0) {
		errno = EINVAL;
		return NULL;
	}
	if (o.open_timeout_ms == 0)
		o.open_timeout_ms = 5000;
	o.shm = ipc__handle_backend(handle, o.shm);
	b = ipc__buf_new();
	if (!b)
		return NULL;
	snprintf(b->handle, sizeof(b->handle), "%s", handle);
	b->pid = getpid();
	b->reap_locked = ipc__reap_locked;
	b->pidns = ipc__pidns_self();
	b->start = b->pidns ? ipc__proc_start(b->pid) : 0;
	pthread_mutex_init(&b->tls_mu, NULL);
	ipc__plan(&l, o.size);

	int64_t deadline = ipc__now_ms() + o.open_timeout_ms;
	for (;;) {
		err = ipc__shm_create(&b->shm, o.shm, handle, l.map_size);
		if (err == 0) {
			b->base = b->shm.base;
			b->hdr = (struct ipc__hdr *)b->base;
			err = creator_init(b, &l, &o, o.sem);
			if (err == 0) {
				ipc__keeper_start(b);
				b->live = ipc__live_token;
				ipc__handle_register(b);
				return b;
			}
			ipc__shm_unlink(&b->shm, handle);
			ipc__shm_detach(&b->shm);
			break;
		}
		if (err != -EEXIST)
			break;
		err = attach(b, o.shm, deadline);
		if (err == 0) {
			ipc__keeper_start(b);
			b->live = ipc__live_token;
			ipc__handle_register(b);
			return b;
		}
		ipc__shm_detach(&b->shm);
		if (err != -EAGAIN)
			break;
		if (ipc__now_ms() > deadline) {
			err = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_destroy(&b->tls_mu);
	ipc__buf_retire(b);
	errno = -err;
	return NULL;
}

/* Remove every OS object (the caller made sure nobody is attached). */
static void destroy(struct ipc_buffer *b)
{
	if (b->hdr->sem_kind == IPC_SEM_SYSV)
		ipc__lock_destroy(&b->hdr->lock);
	if (!b->hdr->name_unlinked)
		ipc__shm_unlink(&b->shm, b->handle);
}

/* The records this process still holds (allocated and not sent, received
 * and not freed, by any of its threads) go back to the heap as if it had
 * died: those it queued become their channels' first (L held). */
static void give_back_locked(struct ipc_buffer *b)
{
	struct ipc__dirent *d = ipc__dirent_at(b, 0);
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o;
		if (d[i].off <= IPC__DIR_TOMB || ipc__run_kind(b, d[i].off, NULL) != IPC__BLK_CHANNEL ||
		    ipc__dir_obj_locked(b, &d[i], IPC__BLK_CHANNEL, &o))
			continue;
		struct ipc__chan *c = o;
		/* Pairs with ipc_channel_add_opts()'s ipc__or_acq_rel of P_ATTACHED. */
		if ((ipc__load_acquire(&c->flags) & IPC__P_ATTACHED) && c->prod.proc == b->proc)
			ipc__chan_adopt_locked(b, c, b->proc);
	}
	ipc__rec_reap_locked(b, b->proc);
}

int ipc_buffer_close(struct ipc_buffer *b, bool unlink)
{
	bool last = false;
	int err = ipc__buf_check(b);

	if (err == -ECHILD) { /* inherited across fork: not ours to count */
		ipc__handle_unregister(b);
		ipc__shm_detach(&b->shm);
		ipc__buf_retire(b);
		return 0;
	}
	if (err)
		return err; /* NULL, or closed already */
	ipc__handle_unregister(b);
	b->live = (uint64_t)IPC__DEAD << 32; /* from here on, a second close is -EBADF */
	while (b->tls_list)
		ipc_tls_close(b->tls_list);
	ipc__keeper_stop(b);
	err = ipc__lock_buf(b);
	if (err == 0) {
		struct ipc__proc *p = ipc__proc_at(b, b->proc);
		give_back_locked(b);
		ipc__add_relaxed(&b->hdr->nprocs, (uint32_t)-1);
		ipc__reap_locked(b); /* skips our own slot */
		/* The slots say who is left, not the counter: a forged count
		 * must not remove a buffer others still use. */
		last = true;
		for (uint32_t i = 0; i < b->geo.max_procs && last; i++)
			last = i == b->proc || ipc__load_relaxed(&ipc__proc_at(b, i)->pid) == 0;
		if (last != (ipc__load_relaxed(&b->hdr->nprocs) == 0))
			ipc__corrupt(b, "header: %u processes counted, the process table says %s",
			             ipc__load_relaxed(&b->hdr->nprocs), last ? "none" : "more");
		if (last)
			/* Pairs with attach()'s check of state (under L): a late
			 * opener starts over. */
			ipc__store_release(&b->hdr->state, IPC__ST_DESTROYED);
		else if (unlink && !b->hdr->name_unlinked) {
			ipc__shm_unlink(&b->shm, b->handle);
			b->hdr->name_unlinked = 1;
		}
		/* The slot goes last: while we hold the lock, peers in other
		 * PID namespaces judge us by it (ipc__holder_dead()).
		 * Pairs with the acquire loads of pid in ipc__proc_alive(),
		 * ipc__pid_alive_in(), ipc__holder_dead(): the slot is free. */
		ipc__store_release(&p->pid, 0);
		ipc__unlock_buf(b);
		if (last)
			destroy(b);
	}
	ipc__shm_detach(&b->shm);
	pthread_mutex_destroy(&b->tls_mu);
	ipc__buf_retire(b);
	return err;
}

int ipc_buffer_gen_handle(char *out, size_t len)
{
	static _Atomic uint32_t counter;
	uint32_t r = 0;

	if (!out || len < 32)
		return -EINVAL;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)ipc__now_ms() ^ (uint32_t)(uintptr_t)&r;
	snprintf(out, len, "h%x-%x-%08x", (unsigned)getpid(),
	         (unsigned)ipc__add_relaxed(&counter, 1), (unsigned)r);
	return 0;
}

int ipc_buffer_stats(struct ipc_buffer *b, struct ipc_buffer_stats *out)
{
	struct ipc_buffer_stats s = {0};
	struct ipc__hdr *h;

	int bad = ipc__buf_check(b);
	if (bad || !out)
		return bad ? bad : -EINVAL;
	h = b->hdr;
	if (ipc__lock_buf(b))
		return -EIDRM;
	/* The heap's reserve (IPC__HEAP_RESERVE) is counted in neither. */
	uint64_t reserve = (uint64_t)IPC__HEAP_RESERVE * IPC_BLOCK;
	uint64_t free_bytes = (uint64_t)b->heap->free_blocks * IPC_BLOCK;
	s.size = ipc__heap_asked(b);
	s.free = free_bytes > reserve ? free_bytes - reserve : 0;
	s.slab = (uint64_t)h->slab_used * IPC_BLOCK;
	ipc__rec_census_locked(b, &s.record_count, &s.records);
	s.channels = h->dir_live;
	s.processes = ipc__load_relaxed(&h->nprocs);
	ipc__unlock_buf(b);
	*out = s;
	return 0;
}

bool ipc_buffer_has_channels(struct ipc_buffer *b)
{
	bool any;
	if (ipc__buf_check(b) || ipc__lock_buf(b))
		return false;
	any = b->hdr->dir_live > 0;
	ipc__unlock_buf(b);
	return any;
}

const char *ipc_buffer_handle(const struct ipc_buffer *b)
{
	return ipc__buf_check(b) ? NULL : b->handle;
}

enum ipc_shm_kind ipc_buffer_shm_kind(const struct ipc_buffer *b)
{
	return ipc__buf_check(b) ? IPC_SHM_DEFAULT : b->shm.kind;
}

enum ipc_sem_kind ipc_buffer_sem_kind(const struct ipc_buffer *b)
{
	return ipc__buf_check(b) ? IPC_SEM_DEFAULT : (enum ipc_sem_kind)b->hdr->sem_kind;
}

const char *ipc_strerror(int err)
{
	switch (err) {
	case IPC_TX_SUCCESS: return "success";
	case IPC_TX_RETRY: return "try again: channel full or empty, or time out";
	case IPC_TX_EOF: return "end of stream: the producer closed and everything was received";
	case IPC_TX_ABORTED: return "aborted: the producer died; everything it sent was received";
	case -ENOENT: return "no such channel or segment (in this thread's TLS)";
	case -EPROTOTYPE: return "the id names a segment where a channel was expected, or the reverse";
	case -EBUSY: return "that end of the SPSC channel is already taken";
	case -ENOMEM: return "the shared buffer is exhausted";
	case -EINVAL: return "invalid argument";
	case -EPIPE: return "the consumer closed or died";
	case -EALREADY: return "already done: this TLS holds that end, or the record was sent";
	case -EOWNERDEAD: return "the creator died before it finished";
	case -ETIMEDOUT: return "timed out";
	case -EPROTO: return "buffer made by another version of libipc";
	case -ENOSPC: return "no room: /dev/shm too small for the buffer, or too many channels, "
	                     "threads or processes";
	case -EPERM: return "not ours: the shared object belongs to another user, or is not a buffer";
	case -EBADMSG: return "damaged shared data: a header or record that does not check out "
	                      "(reported on stderr)";
	default: return err < 0 ? strerror(-err) : "unknown result";
	}
}

/*
 * Buffers: create-or-attach, process slots, close and removal, stats, the
 * channel directory, dead-process reaping, garbage collection.
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

struct layout {
	uint64_t procs_off, tls_off, dir_off, heap_off, data_off, data_size, map_size;
	uint32_t dir_cap, nblocks, slab_blocks;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void plan(struct layout *l, uint64_t size)
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

bool ipc__handle_ok(const char *h)
{
	size_t n = h ? strlen(h) : 0;
	if (n == 0 || n > IPC_HANDLE_MAX || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

#define SIZE_MIN_BYTES (UINT64_C(64) << 10)
#define SIZE_MAX_BYTES (((uint64_t)UINT32_MAX - IPC_LEAF_BLOCKS) * IPC_BLOCK)

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
			/* Pairs with the acquire loads of pid (reap, gc, notice.c,
			 * live.c): publishes gen, start, pidns and life. */
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

static int creator_init(struct ipc_buffer *b, const struct layout *l,
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
	proc_attach_locked(b);
	/* Pairs with attach's load of state, and with the futex wait on it. */
	ipc__store_release(&h->state, IPC__ST_READY);
	/* Pairs with the opener's acquire load of magic: publishes the header. */
	ipc__store_release(&h->magic, IPC__MAGIC);
	ipc__futex_wake(&h->state);
	ipc__shm_ready(&b->shm);
	return 0;
}

/* Every field of a published header, against the mapping's real size,
 * before any is used: the layout is a function of data_size alone (plan()),
 * so each offset must be exactly what plan() gives. -EPROTO for another
 * layout version; -EBADMSG for anything else (another user's planted
 * object, or memory overwritten by a bug); -EPERM for a System V semaphore
 * set that is not ours. */
int ipc__header_check(struct ipc_buffer *b, const struct ipc__hdr *h,
                      enum ipc_shm_kind kind, size_t size)
{
	struct layout l;
	const char *bad = NULL;

	if (h->version != IPC__LAYOUT || h->hdr_size != sizeof(*h)) {
		fprintf(stderr, "libipc: buffer '%s' has layout %u (header %u bytes), expected %u "
		        "(%zu): made by another version of libipc\n", b->handle, h->version,
		        h->hdr_size, IPC__LAYOUT, sizeof(*h));
		return -EPROTO;
	}
	/* data_size holds the heap's reserve too (plan()) */
	uint64_t reserve = (uint64_t)IPC__HEAP_RESERVE * IPC_BLOCK;
	uint64_t asked = h->data_size >= reserve ? h->data_size - reserve : 0;
	if (asked < SIZE_MIN_BYTES || asked > SIZE_MAX_BYTES || h->data_size % IPC_BLOCK != 0) {
		bad = "data size";
	} else {
		plan(&l, asked);
		if (h->map_size != size || l.map_size != size || l.data_size != h->data_size)
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
	/* Pairs with the creator's release store of magic. */
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
	struct layout l;
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
	b->pidns = ipc__pidns_self();
	b->start = b->pidns ? ipc__proc_start(b->pid) : 0;
	pthread_mutex_init(&b->tls_mu, NULL);
	plan(&l, o.size);

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
		/* Pairs with the attach's ipc__or_acq_rel of P_ATTACHED. */
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
			/* Pairs with attach's check of state: a late opener starts over. */
			ipc__store_release(&b->hdr->state, IPC__ST_DESTROYED);
		else if (unlink && !b->hdr->name_unlinked) {
			ipc__shm_unlink(&b->shm, b->handle);
			b->hdr->name_unlinked = 1;
		}
		/* The slot goes last: while we hold the lock, peers in other
		 * PID namespaces judge us by it (holder_dead). Pairs with the
		 * acquire loads of pid: the slot is free. */
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
	/* Pairs with ipc_channel_exists' acquire load of dir_gen: the entry is in. */
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

/* ---- dead processes (L held) ------------------------------------------- */

static void reap_proc_locked(struct ipc_buffer *b, uint32_t slot, pid_t pid)
{
	struct ipc__dirent *d = dir(b);

	/* Its threads' slots: fold counters, free the slots. */
	for (uint32_t i = 0; i < b->geo.max_tls; i++) {
		struct ipc__tslot *t = ipc__tslot_at(b, i);
		if (!ipc__load_relaxed(&t->used) || t->proc != slot)
			continue;
		ipc__free_reap_locked(b, t);
		ipc__slab_drain_locked(b, t, 0);
		ipc__tslot_reset_locked(t, IPC__RET_CLOSED);
		/* Pairs with ipc_tls_open's load of used: the slot was reset first. */
		ipc__store_release(&t->used, 0);
	}
	/* Its slabs: seal those still being carved, as their owner would; give
	 * back the empty ones it kept aside. */
	for (uint32_t blk = 0; blk < b->geo.nblocks;) {
		uint32_t len = b->blk[blk].len;
		if (len == 0 || len > b->geo.nblocks - blk)
			len = 1;
		struct ipc__slab *s = ipc__slab_at(b, b->geo.data_off + (uint64_t)blk * IPC_BLOCK);
		if (s && ipc__load_relaxed(&s->proc) == slot) {
			if (!s->sealed)
				ipc__slab_seal_locked(b, s, ipc__load_relaxed(&s->carved) -
				                              ipc__load_relaxed(&s->local_freed));
			/* Pairs with the freers' acq_rel decrements: every free is seen. */
			else if (ipc__load_acquire(&s->live) == 0)
				ipc__slab_give_back_locked(b, s);
		}
		blk += len;
	}
	/* Its channel ends: dead, so that peers drain and stop. */
	for (uint32_t i = 0; i < b->geo.dir_cap; i++) {
		void *o = NULL;
		if (d[i].off <= IPC__DIR_TOMB || ipc__dir_obj_locked(b, &d[i], IPC__BLK_CHANNEL, &o) ||
		    !o)
			continue;
		struct ipc__chan *c = o;
		/* Pairs with the ends' ipc__or_acq_rel of their flags. */
		uint32_t f = ipc__load_acquire(&c->flags);
		if ((f & IPC__P_ATTACHED) && !(f & (IPC__P_CLOSED | IPC__P_DEAD)) &&
		    ipc__load_relaxed(&c->prod.pid) == pid && c->prod.proc == slot)
			ipc__chan_end_detach_locked(b, c, IPC_PRODUCER, true);
		if ((f & IPC__C_ATTACHED) && !(f & (IPC__C_CLOSED | IPC__C_DEAD)) &&
		    ipc__load_relaxed(&c->cons.pid) == pid && c->cons.proc == slot)
			ipc__chan_end_detach_locked(b, c, IPC_CONSUMER, true);
		if ((f & IPC__P_ATTACHED) && c->prod.proc == slot)
			ipc__chan_adopt_locked(b, c, slot);
		ipc__chan_maybe_destroy_locked(b, &d[i]);
	}
	ipc__seg_reap_locked(b, slot);
	/* What it held (allocated and not sent, or received and not freed). */
	b->reaped_records += ipc__rec_reap_locked(b, slot);
}

int ipc__reap_locked(struct ipc_buffer *b)
{
	int n = 0;

	for (uint32_t i = 0; i < b->geo.max_procs; i++) {
		struct ipc__proc *p = ipc__proc_at(b, i);
		pid_t pid = ipc__load_relaxed(&p->pid);
		if (pid == 0 || (pid == b->pid && i == b->proc) ||
		    ipc__slot_alive(p, pid, p->start, b->pidns))
			continue;
		reap_proc_locked(b, i, pid);
		/* Pairs with the acquire loads of pid: the slot is free. */
		ipc__store_release(&p->pid, 0);
		ipc__add_relaxed(&b->hdr->nprocs, (uint32_t)-1);
		n++;
	}
	return n;
}

int ipc_buffer_reap(struct ipc_buffer *b)
{
	int n = ipc__buf_check(b);
	if (n)
		return n;
	if (ipc__lock_buf(b))
		return -EIDRM;
	n = ipc__reap_locked(b);
	ipc__unlock_buf(b);
	return n;
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

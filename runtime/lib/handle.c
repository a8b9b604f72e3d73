/*
 * The buffers this process has open, so that a bare pointer can be checked
 * against them: ipc_record_size() takes no buffer, and must answer 0 for a
 * pointer into no buffer without reading it.
 *
 * A fixed table written under a mutex (open, close) and read without it:
 * each entry is published with release after the buffer's views are set,
 * and cleared before the buffer is unmapped. A reader racing a close of
 * the very buffer its pointer is in is using a record after its buffer's
 * close, which the API forbids.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_OPEN 256

/* Read inline by ipc_record_size (its first entry; internal.h). */
_Atomic(struct ipc_buffer *) ipc__open_bufs[MAX_OPEN];
static ipc_a32 unlisted; /* buffers open beyond MAX_OPEN */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

void ipc__handle_register(struct ipc_buffer *b)
{
	pthread_mutex_lock(&open_mu);
	for (int i = 0; i < MAX_OPEN; i++) {
		if (atomic_load_explicit(&ipc__open_bufs[i], memory_order_relaxed) == NULL) {
			/* Pairs with the acquire loads of the table in
			 * ipc__handle_find() and ipc_record_size(): publishes b's
			 * views. */
			atomic_store_explicit(&ipc__open_bufs[i], b, memory_order_release);
			b->listed = true;
			break;
		}
	}
	if (!b->listed)
		ipc__add_relaxed(&unlisted, 1);
	pthread_mutex_unlock(&open_mu);
}

void ipc__handle_unregister(struct ipc_buffer *b)
{
	pthread_mutex_lock(&open_mu);
	for (int i = 0; b->listed && i < MAX_OPEN; i++) {
		if (atomic_load_explicit(&ipc__open_bufs[i], memory_order_relaxed) == b) {
			atomic_store_explicit(&ipc__open_bufs[i], NULL, memory_order_relaxed);
			break;
		}
	}
	if (!b->listed)
		ipc__add_relaxed(&unlisted, (uint32_t)-1);
	b->listed = false;
	pthread_mutex_unlock(&open_mu);
}

struct ipc_buffer *ipc__handle_find(const void *p, bool *maybe_elsewhere)
{
	uintptr_t a = (uintptr_t)p;
	for (int i = 0; i < MAX_OPEN; i++) {
		/* Pairs with ipc__handle_register()'s release store: b's views
		 * are set. */
		struct ipc_buffer *b = atomic_load_explicit(&ipc__open_bufs[i], memory_order_acquire);
		if (b && a - (uintptr_t)b->data < b->map_size - b->geo.data_off)
			return b;
	}
	*maybe_elsewhere = ipc__load_relaxed(&unlisted) != 0;
	return NULL;
}

/*
 * Stale handles. A struct ipc_tls or struct ipc_buffer is never given back
 * to malloc: a closed one is marked dead and kept for the next open, so a
 * call through a closed handle reads memory that is still ours and fails
 * with -EBADF instead of crashing (like a closed file descriptor, a handle
 * may be reused by a later open). Across fork the child inherits handles
 * that are its parent's: every handle's live word holds the fork generation
 * it was opened in (ipc__live_token), and a call from a child fails with
 * -ECHILD without touching shared memory (a child using its parent's TLS would otherwise share its
 * cursors and receive the parent's records).
 */
uint64_t ipc__live_token = (uint64_t)IPC__LIVE << 32;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct ipc_tls *spare_tls;
static struct ipc_buffer *spare_bufs;

static void in_child(void)
{
	ipc__live_token++; /* one thread in the child: no race */
	pthread_mutex_init(&open_mu, NULL);
}

static void atfork_setup(void)
{
	pthread_atfork(NULL, NULL, in_child);
}

int ipc__handle_bad(const void *h, uint64_t live)
{
	if (!h)
		return -EINVAL;
	return live >> 32 == IPC__LIVE ? -ECHILD : -EBADF;
}

struct ipc_tls *ipc__tls_new(void)
{
	struct ipc_tls *t;
	pthread_mutex_lock(&open_mu);
	t = spare_tls;
	if (t)
		spare_tls = t->next;
	pthread_mutex_unlock(&open_mu);
	if (!t && !(t = malloc(sizeof(*t))))
		return NULL;
	memset(t, 0, sizeof(*t));
	return t;
}

void ipc__tls_retire(struct ipc_tls *t)
{
	free(t->ends);
	memset(t, 0, sizeof(*t));
	t->live = (uint64_t)IPC__DEAD << 32;
	pthread_mutex_lock(&open_mu);
	t->next = spare_tls;
	spare_tls = t;
	pthread_mutex_unlock(&open_mu);
}

struct ipc_buffer *ipc__buf_new(void)
{
	struct ipc_buffer *b;
	pthread_once(&atfork_once, atfork_setup);
	pthread_mutex_lock(&open_mu);
	b = spare_bufs;
	if (b)
		spare_bufs = b->spare_next;
	pthread_mutex_unlock(&open_mu);
	if (!b && !(b = malloc(sizeof(*b))))
		return NULL;
	memset(b, 0, sizeof(*b));
	return b;
}

void ipc__buf_retire(struct ipc_buffer *b)
{
	memset(b, 0, sizeof(*b));
	b->live = (uint64_t)IPC__DEAD << 32;
	pthread_mutex_lock(&open_mu);
	b->spare_next = spare_bufs;
	spare_bufs = b;
	pthread_mutex_unlock(&open_mu);
}

/*
 * One buffer per handle, whichever backend an opener asks for: when the
 * handle already names a buffer under another backend, attach to that one
 * (ipc_buffer_shm_kind() tells which). Two first openers asking for
 * different backends at the very same time may still each create one.
 */
enum ipc_shm_kind ipc__handle_backend(const char *handle, enum ipc_shm_kind asked)
{
	static const enum ipc_shm_kind kinds[] = {IPC_SHM_POSIX, IPC_SHM_SYSV, IPC_SHM_MEMFD};
	struct ipc__shm s;

	if (ipc__shm_open(&s, asked, handle) == 0) {
		ipc__shm_detach(&s);
		return asked;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (kinds[i] == asked || ipc__shm_open(&s, kinds[i], handle) != 0)
			continue;
		ipc__shm_detach(&s);
		return kinds[i];
	}
	return asked;
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

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
#include <pthread.h>

#include "internal.h"

#define MAX_OPEN 256

static _Atomic(struct ipc_buffer *) open_bufs[MAX_OPEN];
static ipc_a32 unlisted; /* buffers open beyond MAX_OPEN */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

void ipc__handle_register(struct ipc_buffer *b)
{
	pthread_mutex_lock(&open_mu);
	for (int i = 0; i < MAX_OPEN; i++) {
		if (atomic_load_explicit(&open_bufs[i], memory_order_relaxed) == NULL) {
			/* Pairs with ipc__handle_find's acquire: publishes b's views. */
			atomic_store_explicit(&open_bufs[i], b, memory_order_release);
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
		if (atomic_load_explicit(&open_bufs[i], memory_order_relaxed) == b) {
			atomic_store_explicit(&open_bufs[i], NULL, memory_order_relaxed);
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
		struct ipc_buffer *b = atomic_load_explicit(&open_bufs[i], memory_order_acquire);
		if (b && a - (uintptr_t)b->data < b->map_size - b->geo.data_off)
			return b;
	}
	*maybe_elsewhere = ipc__load_relaxed(&unlisted) != 0;
	return NULL;
}

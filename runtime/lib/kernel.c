/*
 * The kernel API of <ipc/kernel.h> on top of the public buffer API: a port is
 * one end of one SPSC channel in the kernel thread's struct ipc_tls. ipcrun
 * builds struct ipc_kernel (kernel_impl.h), attaches every channel end before
 * the kernel runs and closes them after it returns; this file only moves
 * records and keeps the per-port counters that `ipcrun --stats` prints.
 *
 * Every function here is called by the one thread that runs the kernel; none
 * takes a lock. Fast path: one non-blocking send or receive; the clock is
 * read only when a call has to wait.
 *
 * Items (ipc_emit / ipc_next) are packed into batch records, laid out as
 * <ipc/kernel.h> says. An output's open batch is written in place in its
 * record: while every item has one size the items lie back to back (fixed
 * layout); the first item of another size turns the batch into the
 * variable layout, moving the items already there once, backwards.
 *
 * Linger (the thread is in kernel_linger.c). One thread per process
 * (started with the first kernel that opens a batch, kept until the process
 * ends) sends batches older
 * than their kernel's linger when the kernel is outside the API (in its own
 * code, asleep). The kernel's side of the hand-over is two plain stores and
 * a load per call (busy, steal); the thread pays for the ordering with
 * membarrier(2), the asymmetric fence, or, where that is missing (and under
 * ThreadSanitizer, which cannot see it), both sides use a compare-and-swap
 * on busy instead.
 */

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipc/buffer.h>
#include <ipc/kernel.h>

#include "internal.h" /* record headers: sizes of records the library checked */
#include "kernel_impl.h"
#include "kernel_linger.h"
#include "seq.h"

/* Sends between two samples of the queue length (high-water mark). */
#define HWM_SAMPLE_EVERY 64u
/* ipc_recv_any: rounds of polling every input before it sleeps, and the
 * longest sleep on one input while the others might get data. */
#define ANY_SPIN_ROUNDS 64
#define ANY_WAIT_MS 2
/* Default linger, and how long ipc_alloc waits for memory. */
#define ALLOC_PATIENCE_MS 30000
#define BATCH_HDR ((uint32_t)sizeof(struct ipc_batch_hdr))

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the kernel's side of the linger hand-over -------------------------- */

static void enter_slow(struct ipc_kernel *k)
{
	for (;;) {
		if (ipc__load_relaxed(&ipc__kernel_membarrier)) {
			ipc__store_relaxed(&k->busy, 0);
			while (ipc__load_acquire(&k->steal)) /* pairs with give_back() */
				sched_yield();
			ipc__store_relaxed(&k->busy, 1);
			/* compiler ordering only: membarrier orders the CPUs */
			atomic_signal_fence(memory_order_seq_cst);
			if (!ipc__load_acquire(&k->steal)) /* pairs with take() */
				return;
		} else {
			uint32_t zero = 0;
			if (ipc__cas_acq_rel(&k->busy, &zero, 1)) /* pairs with give_back() */
				return;
			sched_yield();
		}
	}
}

/* Mark the kernel inside the API: the linger thread leaves it alone. */
static inline void enter(struct ipc_kernel *k)
{
	if (!k->lingering)
		return; /* nobody else ever touches it */
	if (ipc__load_relaxed(&ipc__kernel_membarrier)) {
		ipc__store_relaxed(&k->busy, 1);
		atomic_signal_fence(memory_order_seq_cst);
		if (__builtin_expect(ipc__load_acquire(&k->steal) == 0, 1)) /* pairs with take() */
			return;
	}
	enter_slow(k);
}

static inline void leave(struct ipc_kernel *k)
{
	if (k->lingering)
		ipc__store_release(&k->busy, 0); /* pairs with take() */
}

/* ipcrun's watchdog: which port the kernel waits on, while it waits. */
static void wait_mark(struct ipc_port *p, bool on)
{
	struct ipc_kernel *k = p->k;
	if (k->waiting)
		/* pairs with waits_on() and all_waiting() (ipcrun's run.c) */
		ipc__store_release(k->waiting, on ? (uint32_t)(p - k->port) + 1 : 0);
}

static struct ipc_port *find_port(struct ipc_kernel *k, bool out,
                                  const char *name)
{
	if (!k || !name)
		return NULL;
	size_t first = out ? k->nin : 0, n = out ? k->nout : k->nin;
	for (size_t i = first; i < first + n; i++)
		if (strcmp(k->port[i].name, name) == 0)
			return &k->port[i];
	return NULL;
}

struct ipc_port *ipc_in(struct ipc_kernel *k, const char *port)
{
	return find_port(k, false, port);
}

struct ipc_port *ipc_out(struct ipc_kernel *k, const char *port)
{
	return find_port(k, true, port);
}

size_t ipc_port_count(struct ipc_kernel *k, bool out)
{
	if (!k)
		return 0;
	return out ? k->nout : k->nin;
}

struct ipc_port *ipc_port_at(struct ipc_kernel *k, bool out, size_t i)
{
	if (!k || i >= (out ? k->nout : k->nin))
		return NULL;
	return &k->port[(out ? k->nin : 0) + i];
}

const char *ipc_port_name(const struct ipc_port *p)
{
	return p ? p->name : NULL;
}

bool ipc_stopping(struct ipc_kernel *k)
{
	/* pairs with ir_runner_main()'s store_release of the flag; nothing else is
	 * published with it */
	return k && k->stop && ipc__load_acquire(k->stop) != 0;
}

const char *ipc_kernel_name(struct ipc_kernel *k)
{
	return k ? k->name : NULL;
}

static void sample_hwm(struct ipc_port *p)
{
	if (++p->sample < HWM_SAMPLE_EVERY)
		return;
	p->sample = 0;
	uint64_t q = ipc_channel_pending(p->k->tls, p->id);
	if (q > p->st.hwm)
		p->st.hwm = q;
}

/* ---- sending ------------------------------------------------------------ */

static int flush_port(struct ipc_port *out, int timeout_ms);
/* On a port marked seq (an ordered replica's, seq.h) these hide the
 * sequence header: they take and give the kernel's pointers, past it. */
static int port_send(struct ipc_port *out, void *rec, int timeout_ms);
static void *port_alloc(struct ipc_port *out, size_t n);
static int port_recv(struct ipc_port *in, void **rec, size_t *n, int timeout_ms);

/* The record a kernel's pointer on port p lies in. */
static void *real_rec(const struct ipc_port *p, void *rec)
{
	return p->seq ? (char *)rec - IPC__SEQ_HDR : rec;
}

static void port_free(struct ipc_port *p, void *rec)
{
	ipc_record_free(p->k->tls, real_rec(p, rec));
}

static int port_trim(struct ipc_port *out, void *rec, size_t n)
{
	if (out->seq && n > SIZE_MAX - IPC__SEQ_HDR)
		return -EINVAL;
	return ipc_record_trim(out->k->tls, real_rec(out, rec),
	                       out->seq ? n + IPC__SEQ_HDR : n);
}

/* Send every open batch of k but skip (blocking up to timeout_ms on a full
 * channel; 0: not at all). Returns how many stay open. */
static size_t flush_all(struct ipc_kernel *k, const struct ipc_port *skip,
                        int timeout_ms)
{
	size_t left = 0;
	for (size_t i = k->nin; i < k->nin + k->nout; i++) {
		struct ipc_port *p = &k->port[i];
		if (p != skip && p->bo.rec && flush_port(p, timeout_ms) == IPC_TX_RETRY)
			left++;
	}
	return left;
}

/* The size of record rec of t's buffer for a port's byte count, without
 * ipc_record_size's search of the process's buffers (two calls of it were a
 * quarter of the kernel API's cost per record): rec's place and check word
 * are checked (0 when they are wrong: the send then says why). */
static inline size_t rec_bytes(const struct ipc_tls *t, const void *rec)
{
	struct ipc__rec *r = ipc__rec_check_fast(t->b, rec);
	return r ? (size_t)ipc__rec_size(r) : 0;
}

/* Queue rec (which the port's end owns; a whole record, its sequence header
 * included). timeout_ms < 0: wait while full, sending the kernel's other
 * open batches meanwhile; otherwise wait at most that long and return
 * IPC_TX_RETRY with rec kept. Frees rec on failure. */
static int raw_send(struct ipc_port *out, void *rec, int timeout_ms)
{
	struct ipc_tls *t = out->k->tls;
	if (out->end) {
		ipc_record_free(t, rec);
		return out->end;
	}
	size_t n = rec_bytes(t, rec);
	void *r = rec;
	int rc = ipc_record_send(t, out->id, &r);
	if (rc == IPC_TX_RETRY && timeout_ms != 0) {
		/* full: the queue is at capacity right now */
		if (out->capacity > out->st.hwm)
			out->st.hwm = out->capacity;
		uint64_t t0 = now_ns();
		wait_mark(out, true);
		if (timeout_ms > 0) {
			rc = ipc_record_send_wait(t, out->id, &r, timeout_ms);
		} else {
			/* going to wait: the other open batches go first, and
			 * again whenever the wait is long */
			bool others = flush_all(out->k, out, 0) > 0;
			do {
				rc = ipc_record_send_wait(t, out->id, &r, others ? 1 : -1);
				if (rc == IPC_TX_RETRY && others)
					others = flush_all(out->k, out, 0) > 0;
			} while (rc == IPC_TX_RETRY);
		}
		wait_mark(out, false);
		out->st.blocked_ns += now_ns() - t0;
	}
	if (rc == IPC_TX_SUCCESS) {
		out->st.records++;
		out->st.bytes += n;
		sample_hwm(out);
		return 0;
	}
	if (rc == IPC_TX_RETRY)
		return rc;
	if (rc == -EPIPE)
		out->end = -EPIPE;
	ipc_record_free(t, r);
	return rc;
}

/* Send out's open batch; IPC_TX_RETRY (batch kept) when the channel stayed
 * full for timeout_ms. */
static int flush_port(struct ipc_port *out, int timeout_ms)
{
	struct ipc__bout *b = &out->bo;
	if (!b->rec)
		return 0;
	struct ipc_batch_hdr h = {IPC_BATCH_MAGIC, b->count, b->width, b->used};
	memcpy(b->rec, &h, sizeof h);
	port_trim(out, b->rec, BATCH_HDR + b->used);
	int rc = port_send(out, b->rec, timeout_ms);
	if (rc == IPC_TX_RETRY) {
		b->cap = b->used; /* trimmed: closed to new items, sent next */
		return rc;
	}
	b->rec = NULL;
	b->prev_count = h.count;
	ipc__store_relaxed(&b->open_ns, 0);
	return rc;
}

int ipc__kernel_flush_port(struct ipc_port *out, int timeout_ms)
{
	return flush_port(out, timeout_ms);
}

uint64_t ipc__kernel_now_ns(void)
{
	return now_ns();
}

static uint32_t patience_ms(void)
{
	static ipc_a32 cached; /* 0: not read yet */
	uint32_t v = ipc__load_relaxed(&cached);
	if (v)
		return v;
	const char *e = getenv("IPC_ALLOC_PATIENCE_MS");
	long ms = e ? strtol(e, NULL, 10) : 0;
	v = ms > 0 && ms < 86400000 ? (uint32_t)ms : ALLOC_PATIENCE_MS;
	ipc__store_relaxed(&cached, v);
	return v;
}

/* A record on out, waiting for memory (see ipc_alloc). */
static void *raw_alloc(struct ipc_port *out, size_t n)
{
	struct ipc_kernel *k = out->k;
	void *r = ipc_record_alloc(k->tls, n, out->id);
	if (r || errno != ENOMEM)
		return r;
	/* the buffer is full: what this kernel holds goes first */
	flush_all(k, NULL, -1);
	uint64_t t0 = now_ns();
	r = ipc_record_alloc_wait(k->tls, n, out->id, (int)patience_ms());
	out->st.blocked_ns += now_ns() - t0;
	if (!r && errno == ENOMEM) {
		fprintf(stderr, "%s: %s: no room for a record of %zu bytes: the "
		        "buffer stayed full for %u ms (records downstream are not "
		        "released): raise [graph] buffer, or lower batch or "
		        "capacity\n", k->name ? k->name : "kernel",
		        out->name ? out->name : "out", n, patience_ms());
		errno = ENOMEM;
	}
	return r;
}

/* ipc_alloc, ipc_send and ipc_recv: a fast path for a port without ordered
 * replicas (seq) that calls the library once, and the whole of each in a
 * function of its own. Before, every call went through three levels of
 * functions, each with a frame: 245 instructions a record of the kernel
 * layer's own (callgrind, bench_kapi), the raw path about 390 in all. */
static __attribute__((noinline)) void *alloc_other(struct ipc_port *out, size_t n)
{
	if (!out || !out->out) {
		errno = EINVAL;
		return NULL;
	}
	enter(out->k);
	void *r = port_alloc(out, n);
	int e = errno;
	leave(out->k);
	errno = e;
	return r;
}

void *ipc_alloc(struct ipc_port *out, size_t n)
{
	if (__builtin_expect(out && out->out && !out->seq, 1)) {
		struct ipc_kernel *k = out->k;
		enter(k);
		void *r = ipc_record_alloc(k->tls, n, out->id);
		leave(k);
		if (__builtin_expect(r != NULL, 1))
			return r;
	}
	return alloc_other(out, n); /* the buffer full (a wait), or an error */
}

int ipc_trim(struct ipc_port *out, void *rec, size_t n)
{
	if (!out || !out->out || !rec)
		return -EINVAL;
	enter(out->k);
	int rc = port_trim(out, rec, n);
	leave(out->k);
	return rc;
}

static __attribute__((noinline)) int send_other(struct ipc_port *out, void *rec)
{
	if (!out || !out->out || !rec)
		return -EINVAL;
	enter(out->k);
	int rc = 0;
	if (out->bo.rec)
		rc = flush_port(out, -1); /* what was emitted goes first */
	if (rc == 0)
		rc = port_send(out, rec, -1);
	else
		port_free(out, rec);
	leave(out->k);
	return rc;
}

int ipc_send(struct ipc_port *out, void *rec)
{
	if (__builtin_expect(out && rec && out->out && !out->seq, 1)) {
		struct ipc_kernel *k = out->k;
		enter(k); /* bo.rec and end are the linger thread's too */
		if (__builtin_expect(!out->bo.rec && !out->end, 1)) {
			size_t nb = rec_bytes(k->tls, rec);
			void *r = rec;
			if (__builtin_expect(ipc_record_send(k->tls, out->id, &r) == IPC_TX_SUCCESS, 1)) {
				out->st.records++;
				out->st.bytes += nb;
				sample_hwm(out);
				leave(k);
				return 0;
			}
		}
		leave(k); /* a batch to send first, full, or an error: all of it */
	}
	return send_other(out, rec);
}

/* ---- items: emitting ---------------------------------------------------- */

static uint32_t pad4(uint32_t n)
{
	return (n + 3u) & ~3u;
}

/* Append an item of n bytes to b's variable layout (room checked by the
 * caller): its 4-byte length, the bytes, zeros up to 4-byte alignment. */
static inline void append_var(struct ipc__bout *b, const void *item, size_t n)
{
	uint32_t len = (uint32_t)n;
	char *p = b->data + b->used;
	memcpy(p, &len, 4);
	if (n)
		memcpy(p + 4, item, n);
	memset(p + 4 + n, 0, pad4(len) - len);
	b->used += 4 + pad4(len);
}

/* Would n bytes at p be read as a batch record? */
static bool looks_like_batch(const void *p, size_t n)
{
	struct ipc_batch_hdr h;
	if (n < sizeof h)
		return false;
	memcpy(&h, p, sizeof h);
	return h.magic == IPC_BATCH_MAGIC && h.bytes <= n - sizeof h &&
	       (h.width == 0 || (uint64_t)h.count * h.width == h.bytes);
}


/* Open a batch on out for a first item of n bytes. */
static int open_batch(struct ipc_port *out, size_t n)
{
	struct ipc__bout *b = &out->bo;
	if (!out->k->lingering)
		ipc__linger_register(out->k);
	char *rec = port_alloc(out, BATCH_HDR + out->batch);
	if (!rec)
		return -errno;
	b->rec = rec;
	b->data = rec + BATCH_HDR;
	b->cap = out->batch;
	b->used = 0;
	b->count = 0;
	b->width = (uint32_t)n; /* 0: an empty first item starts variable */
	/* A sparse stream (a trickle, or the first item after a pause) gains
	 * nothing by waiting: when the previous batch opened a linger or more
	 * ago and held one item, this one goes out with its first item. A busy
	 * port opens its batches back to back, or fills them within a linger.
	 * (Timed from the previous opening, not from when it was sent: a batch
	 * sent by the linger thread leaves a linger after it opened, and timing
	 * from then would lock a stream of one item per two lingers into waiting
	 * a whole linger for every item. The count keeps a steady stream that
	 * fills batches by linger from sending the item after each alone.) */
	uint64_t now = now_ns(), linger = out->k->linger_ns ? out->k->linger_ns
	                                                    : IPC__LINGER_DEFAULT_NS;
	b->eager = now - b->prev_open_ns >= linger && b->prev_count <= 1;
	b->prev_open_ns = now;
	/* seq_cst, paired with the linger thread's: it either sees this batch
	 * or this kernel sees it idle and wakes it */
	ipc__store_seq_cst(&b->open_ns, now); /* pairs with linger_main(), linger_scan() */
	ipc__linger_poke();
	return 0;
}

/* Turn a fixed-layout batch into the variable layout, in place. */
static void to_variable(struct ipc__bout *b)
{
	uint32_t w = b->width, s = 4 + pad4(w);
	for (uint32_t i = b->count; i-- > 0;) {
		char *dst = b->data + (size_t)i * s;
		memmove(dst + 4, b->data + (size_t)i * w, w);
		memcpy(dst, &w, 4);
		memset(dst + 4 + w, 0, pad4(w) - w);
	}
	b->used = b->count * s;
	b->width = 0;
}

/* An item that does not go in a batch: a record of its own (wrapped in a
 * batch of one when it is empty or would be taken for a batch). */
static int emit_alone(struct ipc_port *out, const void *item, size_t n)
{
	int rc = flush_port(out, -1);
	if (rc)
		return rc;
	bool wrap = n == 0 || looks_like_batch(item, n);
	size_t size = wrap ? BATCH_HDR + 4 + pad4((uint32_t)n) : n;
	char *rec = port_alloc(out, size);
	if (!rec)
		return -errno;
	char *p = rec;
	if (wrap) {
		struct ipc_batch_hdr h = {IPC_BATCH_MAGIC, 1, 0, 4 + pad4((uint32_t)n)};
		uint32_t len = (uint32_t)n;
		memcpy(rec, &h, sizeof h);
		memcpy(rec + BATCH_HDR, &len, 4);
		memset(rec + BATCH_HDR + 4 + n, 0, pad4((uint32_t)n) - n);
		p = rec + BATCH_HDR + 4;
	}
	if (n)
		memcpy(p, item, n);
	return port_send(out, rec, -1);
}

static int emit_slow(struct ipc_port *out, const void *item, size_t n)
{
	struct ipc__bout *b = &out->bo;
	if (out->end)
		return out->end;
	if (out->batch == 0 || n + 4 > out->batch)
		return emit_alone(out, item, n);
	if (b->rec) {
		uint32_t need = 4 + pad4((uint32_t)n);
		if (b->width && b->width != n) {
			/* a second size: the variable layout, if it fits */
			if ((uint64_t)b->count * (4 + pad4(b->width)) + need <= b->cap)
				to_variable(b);
			else if (flush_port(out, -1))
				return out->end ? out->end : -EIO;
		} else if (!b->width && b->used + need > b->cap) {
			int rc = flush_port(out, -1);
			if (rc)
				return rc;
		} else if (b->width && b->used + n > b->cap) {
			int rc = flush_port(out, -1);
			if (rc)
				return rc;
		}
	}
	if (!b->rec) {
		int rc = open_batch(out, n);
		if (rc)
			return rc;
	}
	if (b->width) {
		memcpy(b->data + b->used, item, n);
		b->used += (uint32_t)n;
	} else {
		append_var(b, item, n);
	}
	b->count++;
	if (b->eager)
		return flush_port(out, -1);
	return 0;
}

/* ipc_emit without its fast path: checks, the variable layout, a new batch. */
static __attribute__((noinline)) int emit_other(struct ipc_port *out, const void *item,
                                                size_t n)
{
	if (!out || !out->out || (!item && n) || n > IPC_ITEM_MAX)
		return -EINVAL;
	struct ipc_kernel *k = out->k;
	struct ipc__bout *b = &out->bo;
	enter(k);
	int rc = 0;
	if (b->rec && !b->width && b->used + 4 + pad4((uint32_t)n) <= b->cap) {
		append_var(b, item, n);
		b->count++;
	} else if (b->rec && b->width == n && n && b->used + n <= b->cap) {
		memcpy(b->data + b->used, item, n);
		b->used += (uint32_t)n;
		b->count++;
	} else {
		rc = emit_slow(out, item, n);
	}
	leave(k);
	return rc;
}

/* Copy n bytes, 1 <= n <= 16, without a call (two overlapping moves). */
static inline void copy_small(char *d, const char *s, size_t n)
{
	if (n >= 8) {
		uint64_t x, y;
		memcpy(&x, s, 8);
		memcpy(&y, s + n - 8, 8);
		memcpy(d, &x, 8);
		memcpy(d + n - 8, &y, 8);
	} else if (n >= 4) {
		uint32_t x, y;
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		memcpy(d, &x, 4);
		memcpy(d + n - 4, &y, 4);
	} else {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* The fast path: an item of at most 16 bytes into the open batch, which has
 * room, entered without contention. It calls nothing (no frame, no saved
 * registers: 10.2 M items measured at 54 instructions an emit before, when
 * it shared a frame with its slow paths); everything else is emit_other's. */
int ipc_emit(struct ipc_port *out, const void *item, size_t n)
{
	if (__builtin_expect(out && item && n - 1 < 16 && out->k->lingering &&
	                     ipc__load_relaxed(&ipc__kernel_membarrier), 1)) {
		struct ipc_kernel *k = out->k;
		struct ipc__bout *b = &out->bo;
		ipc__store_relaxed(&k->busy, 1);
		atomic_signal_fence(memory_order_seq_cst);
		/* pairs with take() */
		if (__builtin_expect(ipc__load_acquire(&k->steal) == 0 && b->rec, 1)) {
			if (__builtin_expect(b->width == n && b->used + n <= b->cap, 1)) {
				copy_small(b->data + b->used, item, n);
				b->used += (uint32_t)n;
				b->count++;
				ipc__store_release(&k->busy, 0); /* pairs with take() */
				return 0;
			}
			uint32_t len = (uint32_t)n, pl = pad4(len);
			if (!b->width && b->used + 4 + pl <= b->cap) {
				/* the variable layout: length, bytes, zeros to 4 */
				char *p = b->data + b->used;
				memcpy(p, &len, 4);
				memset(p + pl, 0, 4); /* the last word: the padding */
				copy_small(p + 4, item, n);
				b->used += 4 + pl;
				b->count++;
				ipc__store_release(&k->busy, 0); /* pairs with take() */
				return 0;
			}
		}
		ipc__store_release(&k->busy, 0); /* pairs with take() */
	}
	return emit_other(out, item, n);
}

int ipc_emit_text(struct ipc_port *out, const char *s)
{
	if (!s)
		return -EINVAL;
	return ipc_emit(out, s, strlen(s) + 1);
}

int ipc_flush(struct ipc_port *out)
{
	if (!out || !out->out)
		return -EINVAL;
	enter(out->k);
	int rc = flush_port(out, -1);
	leave(out->k);
	return rc;
}

void *ipc__emit_room(struct ipc_port *out, size_t w, size_t *room)
{
	struct ipc__bout *b = &out->bo;
	*room = 0;
	if (out->batch == 0 || w == 0 || w + 4 > out->batch)
		return NULL;
	enter(out->k); /* out->end too is written by the linger thread's sends */
	if (out->end) { /* the consumer is gone: say so before any work */
		leave(out->k);
		*room = 1;
		errno = out->end < 0 ? -out->end : EPIPE;
		return NULL;
	}
	if (b->rec && (b->width != w || b->used + w > b->cap)) {
		int rc = flush_port(out, -1);
		if (rc) {
			leave(out->k);
			*room = 1;
			errno = rc < 0 ? -rc : EIO;
			return NULL;
		}
	}
	if (!b->rec) {
		int rc = open_batch(out, w);
		if (rc) {
			leave(out->k);
			*room = 1;
			errno = -rc;
			return NULL;
		}
	}
	*room = (b->cap - b->used) / w;
	return b->data + b->used; /* left entered: ipc__emit_commit leaves */
}

int ipc__emit_commit(struct ipc_port *out, size_t w, size_t m)
{
	struct ipc__bout *b = &out->bo;
	int rc = 0;
	b->used += (uint32_t)(m * w);
	b->count += (uint32_t)m;
	if (b->eager)
		rc = flush_port(out, -1);
	leave(out->k);
	return rc;
}

size_t ipc__next_run(struct ipc_port *in, size_t w, const void **p)
{
	struct ipc__bin *b = &in->bi;
	if (b->width != w || w == 0 || w == UINT32_MAX || b->left == 0)
		return 0;
	size_t m = b->left;
	*p = b->p;
	b->p += m * w;
	b->left = 0;
	return m;
}

int ipc_emit_many(struct ipc_port *out, const void *items, size_t width, size_t count)
{
	if (!out || !out->out || (!items && count && width) || width > IPC_ITEM_MAX)
		return -EINVAL;
	const char *p = items;
	while (count) {
		size_t room;
		char *dst = ipc__emit_room(out, width, &room);
		if (!dst) {
			if (room) /* failed: errno says why */
				return -errno;
			/* no batch to fill (a record per item, empty or wide items) */
			for (; count; count--, p += width) {
				int rc = ipc_emit(out, p, width);
				if (rc)
					return rc;
			}
			return 0;
		}
		size_t m = room < count ? room : count;
		memcpy(dst, p, m * width);
		int rc = ipc__emit_commit(out, width, m);
		if (rc) /* sent at once, and the send failed: these were lost */
			return rc;
		p += m * width;
		count -= m;
	}
	return 0;
}

int ipc_next_many(struct ipc_port *in, const void **items, size_t *width, size_t *count)
{
	if (!items || !width || !count)
		return -EINVAL;
	const void *first, *more;
	size_t n;
	int rc = ipc_next(in, &first, &n);
	if (rc)
		return rc;
	*items = first;
	*width = n;
	*count = 1 + ipc__next_run(in, n, &more); /* more == first + n */
	return 0;
}

/* ---- receiving ---------------------------------------------------------- */

/* One receive on in, waiting up to timeout_ms (0: not at all, < 0: until a
 * record or the end; the kernel's open batches are sent before it waits).
 * Keeps the port's counters and end state. */
static int raw_recv(struct ipc_port *in, void **rec, size_t *n, int timeout_ms)
{
	if (in->end)
		return in->end;
	struct ipc_tls *t = in->k->tls;
	void *r = NULL;
	int rc = ipc_record_recv(t, in->id, &r);
	if (rc == IPC_TX_RETRY && timeout_ms != 0) {
		uint64_t t0 = now_ns();
		flush_all(in->k, NULL, -1);
		rc = ipc_record_recv(t, in->id, &r);
		wait_mark(in, true);
		while (rc == IPC_TX_RETRY) {
			rc = ipc_record_recv_wait(t, in->id, &r, timeout_ms);
			if (timeout_ms > 0)
				break;
		}
		wait_mark(in, false);
		in->st.blocked_ns += now_ns() - t0;
	}
	if (rc == IPC_TX_SUCCESS) {
		/* checked whole by the receive (its size bounded by its slab) */
		size_t size = (size_t)ipc__rec_size((struct ipc__rec *)r - 1);
		in->st.records++;
		in->st.bytes += size;
		*rec = r;
		if (n)
			*n = size;
		return 0;
	}
	if (rc == IPC_TX_EOF || rc == IPC_TX_ABORTED)
		in->end = rc;
	return rc;
}

/* ---- ordered replicas (seq.h) -------------------------------------------
 *
 * On a port marked seq every record starts with a struct ipc__seq_hdr,
 * hidden from the kernel: it receives and allocates the payload after it.
 * Each input's number is remembered while the kernel works on it and
 * stamped on whatever it sends (batches included: they are sent before the
 * next input is taken, so a batch never mixes two inputs' items). The last
 * record sent is held back until the kernel asks for its next input, then
 * goes out marked LAST (or, when the input gave no output, an EMPTY marker
 * does), so that merge_ordered knows where every input's outputs end,
 * whether the kernel is 1:1, a filter, or sends several records per input.
 * What is sent after the input ended is marked TAIL and goes out at once.
 */

static struct ipc__seq_hdr *seq_hdr(void *user)
{
	return (struct ipc__seq_hdr *)(void *)((char *)user - IPC__SEQ_HDR);
}

static void *port_alloc(struct ipc_port *out, size_t n)
{
	if (!out->seq)
		return raw_alloc(out, n);
	if (n == 0 || n > SIZE_MAX - IPC__SEQ_HDR) {
		errno = EINVAL;
		return NULL;
	}
	char *r = raw_alloc(out, n + IPC__SEQ_HDR);
	if (!r)
		return NULL;
	struct ipc__seq_hdr h = {0, 0, IPC__SEQ_MAGIC};
	memcpy(r, &h, sizeof h);
	return r + IPC__SEQ_HDR;
}

/* Send the held record, if any, with flags; returns the send's result. */
static int seq_send_held(struct ipc_kernel *k, uint32_t flags)
{
	void *rec = k->seq_held;
	if (!rec)
		return 0;
	struct ipc_port *out = k->seq_held_port;
	k->seq_held = NULL;
	k->seq_held_port = NULL;
	struct ipc__seq_hdr *h = seq_hdr(rec);
	*h = (struct ipc__seq_hdr){k->seq_cur, flags, IPC__SEQ_MAGIC};
	return raw_send(out, h, -1);
}

static int port_send(struct ipc_port *out, void *rec, int timeout_ms)
{
	if (!out->seq)
		return raw_send(out, rec, timeout_ms);
	struct ipc_kernel *k = out->k;
	if (k->seq_state == 2) {
		struct ipc__seq_hdr *h = seq_hdr(rec);
		*h = (struct ipc__seq_hdr){UINT64_MAX, IPC__SEQ_TAIL, IPC__SEQ_MAGIC};
		return raw_send(out, h, -1);
	}
	int rc = seq_send_held(k, 0);
	k->seq_held = rec;
	k->seq_held_port = out;
	if (rc == 0 && out->end)
		rc = seq_send_held(k, 0); /* frees it and says why */
	return rc;
}

/* The kernel is done with input seq_cur. */
static void seq_input_done(struct ipc_kernel *k)
{
	if (k->seq_state != 1)
		return;
	flush_all(k, NULL, -1); /* its items belong to seq_cur */
	k->seq_state = 3;
	if (k->seq_held) {
		seq_send_held(k, IPC__SEQ_LAST);
		return;
	}
	for (size_t i = k->nin; i < k->nin + k->nout; i++) {
		struct ipc_port *out = &k->port[i];
		if (!out->seq || out->end)
			continue;
		struct ipc__seq_hdr *h = raw_alloc(out, sizeof *h);
		if (!h)
			continue; /* the merge then reports the gap */
		*h = (struct ipc__seq_hdr){k->seq_cur, IPC__SEQ_LAST | IPC__SEQ_EMPTY,
		                           IPC__SEQ_MAGIC};
		raw_send(out, h, -1);
	}
}

/* A record still held once the input ended (or the kernel returned without
 * reading to the end): it goes out after every numbered record. */
static void seq_tail(struct ipc_kernel *k)
{
	if (!k->seq_held)
		return;
	struct ipc_port *out = k->seq_held_port;
	struct ipc__seq_hdr *h = seq_hdr(k->seq_held);
	k->seq_held = NULL;
	k->seq_held_port = NULL;
	*h = (struct ipc__seq_hdr){UINT64_MAX, IPC__SEQ_TAIL, IPC__SEQ_MAGIC};
	raw_send(out, h, -1);
}

void ipc__kernel_seq_flush(struct ipc_kernel *k)
{
	if (!k)
		return;
	enter(k);
	seq_input_done(k);
	flush_all(k, NULL, -1); /* batches opened after the input ended */
	seq_tail(k);
	leave(k);
}

static int port_recv(struct ipc_port *in, void **rec, size_t *n, int timeout_ms)
{
	if (!in->seq)
		return raw_recv(in, rec, n, timeout_ms);
	struct ipc_kernel *k = in->k;
	void *r;
	size_t size;
	int rc = raw_recv(in, &r, &size, 0);
	if (rc == IPC_TX_RETRY && timeout_ms == 0)
		return rc; /* nothing yet: the current input is not done */
	if (rc == IPC_TX_RETRY) {
		seq_input_done(k);
		rc = raw_recv(in, &r, &size, timeout_ms);
	} else {
		seq_input_done(k);
	}
	if (rc == IPC_TX_EOF || rc == IPC_TX_ABORTED) {
		k->seq_state = 2;
		flush_all(k, NULL, -1);
		seq_tail(k);
	}
	if (rc != 0)
		return rc;
	struct ipc__seq_hdr h;
	if (size < IPC__SEQ_HDR ||
	    (memcpy(&h, r, sizeof h), h.magic != IPC__SEQ_MAGIC)) {
		ipc_record_free(k->tls, r);
		return -EPROTO; /* not from an ordered split */
	}
	k->seq_cur = h.seq;
	k->seq_state = 1;
	*rec = (char *)r + IPC__SEQ_HDR;
	if (n)
		*n = size - IPC__SEQ_HDR;
	return 0;
}

static __attribute__((noinline)) int recv_other(struct ipc_port *in, void **rec, size_t *n)
{
	if (!in || in->out || !rec)
		return -EINVAL;
	enter(in->k);
	int rc = port_recv(in, rec, n, -1);
	leave(in->k);
	return rc;
}

int ipc_recv(struct ipc_port *in, void **rec, size_t *n)
{
	if (__builtin_expect(in && rec && !in->out && !in->seq, 1)) {
		struct ipc_kernel *k = in->k;
		void *r;
		enter(k);
		if (__builtin_expect(!in->end && ipc_record_recv(k->tls, in->id, &r) ==
		                                     IPC_TX_SUCCESS, 1)) {
			/* checked whole by the receive (its size bounded by its slab) */
			size_t size = (size_t)ipc__rec_size((struct ipc__rec *)r - 1);
			in->st.records++;
			in->st.bytes += size;
			leave(k);
			*rec = r;
			if (n)
				*n = size;
			return 0;
		}
		leave(k);
	}
	return recv_other(in, rec, n); /* empty (a wait), the end, or an error */
}

int ipc_try_recv(struct ipc_port *in, void **rec, size_t *n)
{
	if (!in || in->out || !rec)
		return -EINVAL;
	enter(in->k);
	int rc = port_recv(in, rec, n, 0);
	leave(in->k);
	return rc;
}

void ipc_release(struct ipc_port *in, void *rec)
{
	if (!in || !rec)
		return;
	enter(in->k);
	port_free(in, rec);
	leave(in->k);
}

/* Set in's walk over record rec of size bytes: a batch, or one item. */
static void bin_start(struct ipc__bin *b, void *rec, size_t size)
{
	b->rec = rec;
	if (looks_like_batch(rec, size)) {
		struct ipc_batch_hdr h;
		memcpy(&h, rec, sizeof h);
		b->p = (const char *)rec + BATCH_HDR;
		b->end = b->p + h.bytes;
		b->left = h.count;
		b->width = h.width;
	} else {
		b->p = rec;
		b->end = (const char *)rec + size;
		b->left = 1;
		b->width = size <= UINT32_MAX ? (uint32_t)size : 0;
		if (!b->width) {
			/* one item too big for the fixed walk: say so by hand */
			b->width = UINT32_MAX;
		}
	}
}

/* ipc_next without its fast path: checks, the other layouts, the next record. */
static __attribute__((noinline)) int next_other(struct ipc_port *in, const void **item,
                                               size_t *n)
{
	if (!in || in->out || !item || !n)
		return -EINVAL;
	struct ipc__bin *b = &in->bi;
	for (;;) {
		if (__builtin_expect(b->left != 0, 1)) {
			if (b->width == UINT32_MAX) { /* a record as one item */
				*item = b->p;
				*n = (size_t)(b->end - b->p);
				b->p = b->end;
				b->left = 0;
				return 0;
			}
			if (b->width) {
				*item = b->p;
				*n = b->width;
				b->p += b->width;
				b->left--;
				return 0;
			}
			uint32_t len;
			if (b->end - b->p >= 4) {
				memcpy(&len, b->p, 4);
				if ((size_t)(b->end - b->p) - 4 >= len) {
					*item = b->p + 4;
					*n = len;
					b->p += 4 + pad4(len) <= (size_t)(b->end - b->p)
					                ? 4 + pad4(len) : 4 + (size_t)len;
					b->left--;
					return 0;
				}
			}
			b->left = 0; /* overruns its record: drop the rest */
			return -EBADMSG;
		}
		enter(in->k);
		if (b->rec) {
			port_free(in, b->rec);
			b->rec = NULL;
		}
		void *rec;
		size_t size;
		int rc = port_recv(in, &rec, &size, -1);
		leave(in->k);
		if (rc)
			return rc;
		bin_start(b, rec, size);
	}
}

/* The fast path: the next item of the batch being walked, fixed or
 * variable layout; it calls nothing (see ipc_emit). A port whose walk has
 * items left is an input (outputs never walk). */
int ipc_next(struct ipc_port *in, const void **item, size_t *n)
{
	if (__builtin_expect(in && item && n && in->bi.left != 0, 1)) {
		struct ipc__bin *b = &in->bi;
		uint32_t w = b->width, len;
		if (__builtin_expect(w != 0 && w != UINT32_MAX, 1)) {
			*item = b->p;
			*n = w;
			b->p += w;
			b->left--;
			return 0;
		}
		size_t room = (size_t)(b->end - b->p);
		if (w == 0 && room >= 4 && (memcpy(&len, b->p, 4), room - 4 >= len) &&
		    room - 4 - len >= pad4(len) - len) {
			*item = b->p + 4;
			*n = len;
			b->p += 4 + pad4(len);
			b->left--;
			return 0;
		}
	}
	return next_other(in, item, n);
}

/* One pass over the open inputs from k->rr. Returns 0 with a record, 1 when
 * every input is empty, 2 when every input has ended, or a negative errno. */
static int any_pass(struct ipc_kernel *k, struct ipc_port **from, void **rec,
                    size_t *n)
{
	bool open = false;
	for (size_t i = 0; i < k->nin; i++) {
		size_t j = (k->rr + i) % k->nin;
		struct ipc_port *p = &k->port[j];
		if (p->end)
			continue;
		int rc = port_recv(p, rec, n, 0);
		if (rc == 0) {
			k->rr = j + 1;
			*from = p;
			return 0;
		}
		if (rc < 0)
			return rc;
		if (rc == IPC_TX_RETRY)
			open = true;
	}
	return open ? 1 : 2;
}

static int recv_any(struct ipc_kernel *k, struct ipc_port **from, void **rec,
                    size_t *n)
{
	for (unsigned round = 0;; round++) {
		int rc = any_pass(k, from, rec, n);
		if (rc == 0 || rc < 0)
			return rc;
		if (rc == 2) {
			for (size_t i = 0; i < k->nin; i++)
				if (k->port[i].end == IPC_TX_ABORTED)
					return IPC_TX_ABORTED;
			return IPC_TX_EOF;
		}
		if (round == 0)
			flush_all(k, NULL, -1); /* going to wait: batches go out */
		if (round < ANY_SPIN_ROUNDS) {
			sched_yield();
			continue;
		}
		/* Everything is empty: sleep on the input that delivered last (the
		 * likeliest next), briefly, so that the others are polled again. */
		size_t j = (k->rr + k->nin - 1) % k->nin;
		for (size_t i = 0; i < k->nin && k->port[j].end; i++)
			j = (j + 1) % k->nin;
		rc = port_recv(&k->port[j], rec, n, ANY_WAIT_MS);
		if (rc == 0) {
			k->rr = j + 1;
			*from = &k->port[j];
			return 0;
		}
		if (rc < 0)
			return rc;
	}
}

int ipc_recv_any(struct ipc_kernel *k, struct ipc_port **from, void **rec,
                 size_t *n)
{
	if (!k || !from || !rec)
		return -EINVAL;
	enter(k);
	int rc = recv_any(k, from, rec, n);
	leave(k);
	return rc;
}

void ipc__kernel_ready(struct ipc_kernel *k)
{
	if (!k || k->lingering)
		return;
	for (size_t i = k->nin; i < k->nin + k->nout; i++)
		if (k->port[i].batch) {
			ipc__linger_register(k); /* leaves k marked inside the API */
			leave(k);
			return;
		}
}

void ipc__kernel_finish(struct ipc_kernel *k)
{
	if (!k)
		return;
	enter(k);
	flush_all(k, NULL, -1);
	for (size_t i = 0; i < k->nin; i++) {
		struct ipc__bin *b = &k->port[i].bi;
		if (b->rec)
			port_free(&k->port[i], b->rec);
		memset(b, 0, sizeof *b);
	}
	leave(k);
	if (k->lingering)
		ipc__linger_unregister(k);
}

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
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include <ipc/buffer.h>
#include <ipc/kernel.h>

#include "kernel_impl.h"
#include "seq.h"

/* Sends between two samples of the queue length (high-water mark). */
#define HWM_SAMPLE_EVERY 64u
/* ipc_recv_any: rounds of polling every input before it sleeps, and the
 * longest sleep on one input while the others might get data. */
#define ANY_SPIN_ROUNDS 64
#define ANY_WAIT_MS 2

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ipcrun's watchdog: which port the kernel waits on, while it waits. */
static void wait_mark(struct ipc_port *p, bool on)
{
	struct ipc_kernel *k = p->k;
	if (k->waiting)
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
	/* pairs with the runner's store_release of the flag; nothing else is
	 * published with it */
	return k && k->stop && ipc__load_acquire(k->stop) != 0;
}

const char *ipc_kernel_name(struct ipc_kernel *k)
{
	return k ? k->name : NULL;
}

/* ---- ordered replicas (seq.h) ----
 *
 * On a port marked seq every record starts with a struct ipc__seq_hdr,
 * hidden from the kernel: it receives and allocates the payload after it.
 * Each input's number is remembered while the kernel works on it and
 * stamped on whatever it sends. The last record sent is held back until the
 * kernel asks for its next input, then goes out marked LAST (or, when the
 * input gave no output, an EMPTY marker does), so that merge_ordered knows
 * where every input's outputs end, whether the kernel is 1:1, a filter, or
 * sends several records per input. What is sent after the input ended is
 * marked TAIL and goes out at once.
 */

static int send_record(struct ipc_port *out, void *rec);
static int port_recv_record(struct ipc_port *in, void **rec, size_t *n,
                            int timeout_ms);

static struct ipc__seq_hdr *seq_hdr(void *user)
{
	return (struct ipc__seq_hdr *)(void *)((char *)user - IPC__SEQ_HDR);
}

static void *seq_alloc(struct ipc_port *out, size_t n)
{
	if (n == 0 || n > SIZE_MAX - IPC__SEQ_HDR) {
		errno = EINVAL;
		return NULL;
	}
	char *r = ipc_record_alloc(out->k->tls, n + IPC__SEQ_HDR, out->id);
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
	h->seq = k->seq_cur;
	h->flags = flags;
	h->magic = IPC__SEQ_MAGIC;
	return send_record(out, h);
}

static int seq_send(struct ipc_port *out, void *rec)
{
	struct ipc_kernel *k = out->k;
	if (k->seq_state == 2) {
		struct ipc__seq_hdr *h = seq_hdr(rec);
		*h = (struct ipc__seq_hdr){UINT64_MAX, IPC__SEQ_TAIL, IPC__SEQ_MAGIC};
		return send_record(out, h);
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
	k->seq_state = 3;
	if (k->seq_held) {
		seq_send_held(k, IPC__SEQ_LAST);
		return;
	}
	for (size_t i = k->nin; i < k->nin + k->nout; i++) {
		struct ipc_port *out = &k->port[i];
		if (!out->seq || out->end)
			continue;
		struct ipc__seq_hdr *h = ipc_record_alloc(k->tls, sizeof *h, out->id);
		if (!h)
			continue; /* the merge then reports the gap */
		*h = (struct ipc__seq_hdr){k->seq_cur, IPC__SEQ_LAST | IPC__SEQ_EMPTY,
		                           IPC__SEQ_MAGIC};
		send_record(out, h);
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
	send_record(out, h);
}

void ipc__kernel_seq_flush(struct ipc_kernel *k)
{
	if (!k)
		return;
	seq_input_done(k);
	seq_tail(k);
}

static int seq_recv(struct ipc_port *in, void **rec, size_t *n,
                    int timeout_ms)
{
	struct ipc_kernel *k = in->k;
	seq_input_done(k);
	void *r;
	size_t size;
	int rc = port_recv_record(in, &r, &size, timeout_ms);
	if (rc == IPC_TX_EOF || rc == IPC_TX_ABORTED) {
		k->seq_state = 2;
		seq_tail(k);
	}
	if (rc != 0)
		return rc;
	struct ipc__seq_hdr h;
	if (size < IPC__SEQ_HDR || (memcpy(&h, r, sizeof h), h.magic !=
	    IPC__SEQ_MAGIC)) {
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

void *ipc_alloc(struct ipc_port *out, size_t n)
{
	if (!out || !out->out) {
		errno = EINVAL;
		return NULL;
	}
	if (out->seq)
		return seq_alloc(out, n);
	return ipc_record_alloc(out->k->tls, n, out->id);
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

int ipc_send(struct ipc_port *out, void *rec)
{
	if (!out || !out->out || !rec)
		return -EINVAL;
	if (out->seq)
		return seq_send(out, rec);
	return send_record(out, rec);
}

/* ipc_send of a record as the library knows it (with its header, if any). */
static int send_record(struct ipc_port *out, void *rec)
{
	struct ipc_tls *t = out->k->tls;
	if (out->end) {
		ipc_record_free(t, rec);
		return out->end;
	}
	size_t n = ipc_record_size(rec);
	void *r = rec;
	int rc = ipc_record_send(t, out->id, &r);
	if (rc == IPC_TX_RETRY) {
		/* full: the queue is at capacity right now */
		if (out->capacity > out->st.hwm)
			out->st.hwm = out->capacity;
		uint64_t t0 = now_ns();
		wait_mark(out, true);
		do
			rc = ipc_record_send_wait(t, out->id, &r, -1);
		while (rc == IPC_TX_RETRY);
		wait_mark(out, false);
		out->st.blocked_ns += now_ns() - t0;
	}
	if (rc == IPC_TX_SUCCESS) {
		out->st.records++;
		out->st.bytes += n;
		sample_hwm(out);
		return 0;
	}
	if (rc == -EPIPE)
		out->end = -EPIPE;
	ipc_record_free(t, r);
	return rc;
}

/* One receive on in, waiting up to timeout_ms (0: not at all, < 0: until a
 * record or the end). Keeps the port's counters and end state. */
static int port_recv(struct ipc_port *in, void **rec, size_t *n, int timeout_ms)
{
	if (!in || in->out || !rec)
		return -EINVAL;
	if (in->seq)
		return seq_recv(in, rec, n, timeout_ms);
	return port_recv_record(in, rec, n, timeout_ms);
}

static int port_recv_record(struct ipc_port *in, void **rec, size_t *n,
                            int timeout_ms)
{
	if (in->end)
		return in->end;
	struct ipc_tls *t = in->k->tls;
	void *r = NULL;
	int rc = ipc_record_recv(t, in->id, &r);
	if (rc == IPC_TX_RETRY && timeout_ms != 0) {
		uint64_t t0 = now_ns();
		wait_mark(in, true);
		do
			rc = ipc_record_recv_wait(t, in->id, &r, timeout_ms);
		while (rc == IPC_TX_RETRY && timeout_ms < 0);
		wait_mark(in, false);
		in->st.blocked_ns += now_ns() - t0;
	}
	if (rc == IPC_TX_SUCCESS) {
		size_t size = ipc_record_size(r);
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

int ipc_recv(struct ipc_port *in, void **rec, size_t *n)
{
	return port_recv(in, rec, n, -1);
}

int ipc_try_recv(struct ipc_port *in, void **rec, size_t *n)
{
	return port_recv(in, rec, n, 0);
}

void ipc_release(struct ipc_port *in, void *rec)
{
	if (in && rec)
		ipc_record_free(in->k->tls, in->seq ? (char *)rec - IPC__SEQ_HDR
		                                    : rec);
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

int ipc_recv_any(struct ipc_kernel *k, struct ipc_port **from, void **rec,
                 size_t *n)
{
	if (!k || !from || !rec)
		return -EINVAL;
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

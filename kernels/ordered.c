/*
 * Ordered fan-out and fan-in: what ipcrun inserts around `replicas = N` with
 * `order = keep`, usable on their own in a topology as well.
 *
 *   seq_split_rr / seq_split_hash: number every record (0, 1, ...) and send
 *     it, behind a 16-byte sequence header, to out0, out1, ... in turn, or
 *     number every item and send it to the output a hash of its bytes picks
 *     (as split_hash hashes items). The hash split also tells the merge
 *     where each item went, on its `route` output.
 *   merge_ordered: the outputs of the replicas, in the order of the split's
 *     input. It reads the replica that holds the next number (out of N
 *     round-robin, or as `route` says) and nothing else, so it keeps no
 *     reorder buffer at all: a replica that falls behind holds the others
 *     back once their output channels are full. In flight at most: the
 *     capacities of the channels between split, replicas and merge.
 *
 * Between them the replicas must carry the header: ipcrun marks the ports of
 * `replicas` with `order = keep` so that the kernel API hides it from the
 * replica and stamps every output with the number of the input it came from
 * (runtime/lib/seq.h). Each input's outputs end with a LAST mark (an EMPTY
 * marker when the input gave none), so filters and kernels that send several
 * records per input stay in order. What a replica sends after its input
 * ended (a TAIL record, e.g. totals) comes after every numbered record,
 * replica by replica.
 *
 * The header costs one copy at the split and one at the merge (records do
 * not cross them in place as with split_rr and merge).
 */
#include "kx.h"

#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/lib/seq.h"

IPC_KERNEL(seq_split_rr, "in", "out*", "",
           "numbers every record and sends it to out0, out1, ... in turn, for merge_ordered");
KX_EXPORT int seq_split_rr(struct ipc_kernel *k);

IPC_KERNEL(seq_split_hash, "in", "out*, route?", "",
           "numbers every record and sends it to the output a hash of its bytes picks "
           "(as split_hash), telling merge_ordered on route");
KX_EXPORT int seq_split_hash(struct ipc_kernel *k);

IPC_KERNEL(merge_ordered, "in*, route?", "out", "",
           "the records of in0, in1, ... in the order seq_split_* numbered them");
KX_EXPORT int merge_ordered(struct ipc_kernel *k);

static struct ipc_port **numbered(struct ipc_kernel *k, bool out, size_t *count)
{
	size_t n = 0, all = ipc_port_count(k, out);
	struct ipc_port **p = calloc(all ? all : 1, sizeof *p);

	if (!p) {
		kx__errorf(k, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < all; i++) {
		struct ipc_port *q = ipc_port_at(k, out, i);
		if (strcmp(ipc_port_name(q), "route") != 0)
			p[n++] = q;
	}
	if (n == 0) {
		kx__errorf(k, "no %s port is connected (%s0, %s1, ...)",
		           out ? "output" : "input", out ? "out" : "in",
		           out ? "out" : "in");
		free(p);
		return NULL;
	}
	*count = n;
	return p;
}

/* Send size bytes at rec to out behind a sequence header numbered seq. */
static enum kx_end send_numbered(struct ipc_kernel *k, struct ipc_port *out,
                                 const void *rec, size_t size, uint64_t seq)
{
	char *m = kx__alloc(k, out, size + IPC__SEQ_HDR);
	if (!m)
		return KX_FAILED;
	struct ipc__seq_hdr h = {seq, 0, IPC__SEQ_MAGIC};
	memcpy(m, &h, sizeof h);
	memcpy(m + IPC__SEQ_HDR, rec, size);
	return kx__send(k, out, m);
}

/*
 * The round-robin split numbers whole records (a batch of items is one
 * record: its items stay together and in order). The hash split must send
 * equal items to one replica, so it numbers items, each a record of its
 * own: exact order and exact partitioning at a record per item.
 */
static int seq_split(struct ipc_kernel *k, bool hash)
{
	struct ipc_port *in = kx__need_in(k, "in");
	struct ipc_port *route = hash ? ipc_out(k, "route") : NULL;
	struct ipc_port **outs;
	enum kx_end e = KX_DONE;
	size_t n = 0, next = 0;
	uint64_t seq = 0;

	if (!in || !(outs = numbered(k, true, &n)))
		return 1;
	while (e == KX_DONE) {
		const void *item = NULL;
		void *rec = NULL;
		size_t size, to;
		int rc = hash ? ipc_next(in, &item, &size) : ipc_recv(in, &rec, &size);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		if (hash) {
			to = (size_t)(kx__fnv1a(item, kx__text_len(item, size)) % n);
		} else {
			item = rec;
			to = next;
			next = next + 1 == n ? 0 : next + 1;
		}
		/* the route first: the merge then waits only on a replica that has
		 * been sent, or is being sent, what it waits for */
		if (route) {
			uint32_t r = (uint32_t)to;
			e = kx__send_copy(k, route, &r, sizeof r, false);
		}
		if (e == KX_DONE)
			e = send_numbered(k, outs[to], item, size, seq++);
		if (rec)
			ipc_release(in, rec);
	}
	free(outs);
	return kx__end(k, e);
}

int seq_split_rr(struct ipc_kernel *k)
{
	return seq_split(k, false);
}

int seq_split_hash(struct ipc_kernel *k)
{
	return seq_split(k, true);
}

/* Forward the payload of a numbered record on out (nothing for a marker). */
static enum kx_end forward(struct ipc_kernel *k, struct ipc_port *out,
                           struct ipc_port *in, void *rec, size_t size,
                           uint32_t flags)
{
	enum kx_end e = KX_DONE;

	if (!(flags & IPC__SEQ_EMPTY) && size > IPC__SEQ_HDR)
		e = kx__send_copy(k, out, (char *)rec + IPC__SEQ_HDR,
		                  size - IPC__SEQ_HDR, false);
	ipc_release(in, rec);
	return e;
}

/* ipc_recv, polling first (yielding the core) as ipc_recv_any does: the
 * merge waits on one replica at a time, and a replica a few microseconds
 * from its next record is cheaper to wait for so than through a sleep and
 * a wake-up. */
#define TAKE_POLLS 64

static int recv_polling(struct ipc_port *in, void **rec, size_t *size)
{
	for (int i = 0; i < TAKE_POLLS; i++) {
		int rc = ipc_try_recv(in, rec, size);
		if (rc != IPC_TX_RETRY)
			return rc;
		sched_yield();
	}
	return ipc_recv(in, rec, size);
}

/* Read one numbered record from in: 0, or the end (rc) / a bad record
 * (KX_FAILED after a message, as *bad). */
static int take(struct ipc_kernel *k, struct ipc_port *in, void **rec,
                size_t *size, struct ipc__seq_hdr *h, bool *bad)
{
	int rc = recv_polling(in, rec, size);

	if (rc != 0)
		return rc;
	if (*size < IPC__SEQ_HDR ||
	    (memcpy(h, *rec, sizeof *h), h->magic != IPC__SEQ_MAGIC)) {
		kx__errorf(k, "%s: a record without a sequence header; connect "
		           "merge_ordered only behind seq_split_* and replicas",
		           ipc_port_name(in));
		ipc_release(in, *rec);
		*bad = true;
	}
	return 0;
}

/* After the numbered records: every replica's TAIL records, replica 0
 * first. first: a TAIL record of replica at already read (NULL: none). */
static enum kx_end drain_tails(struct ipc_kernel *k, struct ipc_port *out,
                               struct ipc_port **ins, size_t n, size_t at,
                               void *first, size_t first_size)
{
	for (size_t i = 0; i < n; i++) {
		if (i == at && first) {
			enum kx_end e = forward(k, out, ins[i], first, first_size, 0);
			first = NULL;
			if (e != KX_DONE)
				return e;
		}
		for (;;) {
			void *rec;
			size_t size;
			struct ipc__seq_hdr h;
			bool bad = false;
			int rc = take(k, ins[i], &rec, &size, &h, &bad);

			if (bad)
				return KX_FAILED;
			if (rc != 0) {
				enum kx_end e = kx__input_end(k, ipc_port_name(ins[i]), rc);
				if (e != KX_DONE)
					return e;
				break;
			}
			if (!(h.flags & IPC__SEQ_TAIL)) {
				kx__errorf(k, "%s: record %" PRIu64 " after the input "
				           "ended; is the split a seq_split_*?",
				           ipc_port_name(ins[i]), h.seq);
				ipc_release(ins[i], rec);
				return KX_FAILED;
			}
			enum kx_end e = forward(k, out, ins[i], rec, size, 0);
			if (e != KX_DONE)
				return e;
		}
	}
	return KX_DONE;
}

int merge_ordered(struct ipc_kernel *k)
{
	struct ipc_port *out = kx__need_out(k, "out");
	struct ipc_port *route = ipc_in(k, "route");
	struct ipc_port **ins;
	size_t n = 0, tail_at = 0, tail_size = 0;
	uint64_t want = 0;
	enum kx_end e = KX_DONE;
	void *tail_rec = NULL;

	if (!out || !(ins = numbered(k, false, &n)))
		return 1;
	while (e == KX_DONE) {
		size_t r;
		if (route) {
			void *rec;
			size_t size;
			int rc = ipc_recv(route, &rec, &size);
			if (rc != 0) {
				e = kx__input_end(k, "route", rc);
				break; /* the split ended: only tails are left */
			}
			uint32_t v = UINT32_MAX;
			if (size == sizeof v)
				memcpy(&v, rec, sizeof v);
			ipc_release(route, rec);
			if (v >= n) {
				kx__errorf(k, "route: replica %" PRIu32 " of %zu", v, n);
				e = KX_FAILED;
				break;
			}
			r = v;
		} else {
			r = (size_t)(want % n);
		}
		/* every output of input `want`, up to its LAST mark */
		bool last = false, tail = false;
		while (!last && e == KX_DONE) {
			void *rec;
			size_t size;
			struct ipc__seq_hdr h;
			bool bad = false;
			int rc = take(k, ins[r], &rec, &size, &h, &bad);
			if (bad) {
				e = KX_FAILED;
				break;
			}
			if (rc != 0) {
				/* round-robin: input `want` was never sent, the split
				 * ended; with a route, the replica lost it */
				e = kx__input_end(k, ipc_port_name(ins[r]), rc);
				if (e == KX_DONE && route) {
					kx__errorf(k, "%s ended before record %" PRIu64,
					           ipc_port_name(ins[r]), want);
					e = KX_FAILED;
				}
				tail = true;
				break;
			}
			if ((h.flags & IPC__SEQ_TAIL) && route) {
				kx__errorf(k, "%s: its input ended before record %" PRIu64
				           ", which the route says it got",
				           ipc_port_name(ins[r]), want);
				ipc_release(ins[r], rec);
				e = KX_FAILED;
				break;
			}
			if (h.flags & IPC__SEQ_TAIL) {
				/* the replica's input ended before `want`: the numbered
				 * records are over; this one waits for its turn */
				tail_rec = rec;
				tail_size = size;
				tail_at = r;
				tail = true;
				break;
			}
			if (h.seq != want) {
				kx__errorf(k, "%s: record %" PRIu64 " where %" PRIu64
				           " was due; does the replica send records it did "
				           "not get from its input?", ipc_port_name(ins[r]),
				           h.seq, want);
				ipc_release(ins[r], rec);
				e = KX_FAILED;
				break;
			}
			last = (h.flags & IPC__SEQ_LAST) != 0;
			e = forward(k, out, ins[r], rec, size, h.flags);
		}
		if (tail || e != KX_DONE)
			break;
		want++;
	}
	if (e == KX_DONE)
		e = drain_tails(k, out, ins, n, tail_at, tail_rec, tail_size);
	else if (tail_rec)
		ipc_release(ins[tail_at], tail_rec);
	free(ins);
	return kx__end(k, e);
}

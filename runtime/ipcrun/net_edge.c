/*
 * One bridged edge of ipcrun-net (see net_mpi.c): tx takes the records of
 * a local channel as they come and sends them in DATA frames (a record of
 * BIG_MIN bytes or more alone, straight from its shared record), at most
 * `window` frames uncredited; rx takes frames in order, checks each whole,
 * posts large payloads' receives at once, passes the records on into its
 * local channel and credits each frame once all of it went in. EOF and
 * ABORT ride on the last frame; CLOSED goes back when the local consumer
 * left, and tx then closes its own end so that the producer gets -EPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_mpi.h"

/* ---- tx: local channel -> frames ---- */

void ir_bridge_tx_close(struct edge *e)
{
	if (e->held) {
		ipc_record_free(e->tls, e->held);
		e->held = NULL;
	}
	ipc_channel_close(e->tls, e->chan);
	e->closed_local = true;
}

static void tx_back(struct edge *e)
{
	if (e->back_req == MPI_REQUEST_NULL || !ir_bridge_test(&e->back_req))
		return;
	ir_br.mpi_events++;
	ir_br.last_seen[e->peer] = ir_bridge_now_ns();
	struct ir_frame_hdr h;
	const char *why;
	if (ir_frame_parse(e->back, IR_FRAME_HDR, ir_br.nidx, ir_br.max_record, &h, &why) ||
	    h.edge != e->idx || (h.type != IR_FRAME_CREDIT && h.type != IR_FRAME_CLOSED))
		ir_bridge_fatal("bad frame from host '%s' on edge %s: %s", ir_br.host[e->peer], e->name,
		      why ? why : "not a credit");
	if (h.type == IR_FRAME_CREDIT) {
		if (h.count > e->nframes - e->credited)
			ir_bridge_fatal("host '%s' credited frames never sent on edge %s",
			      ir_br.host[e->peer], e->name);
		e->credited += h.count;
	} else if (!e->consumer_gone) {
		/* the remote consumer left: so does ours, and the upstream
		 * producer gets -EPIPE (by the watcher if it has the channel) */
		e->consumer_gone = true;
		if (e->lent)
			atomic_store_explicit(&e->close_req, true, memory_order_release);
		else
			ir_bridge_tx_close(e);
	}
	if (e->state == E_FINAL && e->credited == e->nframes) {
		e->state = E_DONE;
		return;
	}
	MPI_Irecv(e->back, IR_FRAME_HDR, MPI_BYTE, e->peer, TAG_BACK(e->idx),
	          MPI_COMM_WORLD, &e->back_req);
}

bool ir_bridge_tx_step(struct edge *e)
{
	bool progress = false;
	uint64_t before = e->credited;
	tx_back(e);
	progress |= e->credited != before;
	/* a large record goes back to the buffer as soon as its payload is
	 * sent (ir_bridge_in_flight nulls the request): the producer needs
	 * the room */
	for (uint32_t s = 0; s < e->window; s++)
		if (e->big[s] && e->breq[s] == MPI_REQUEST_NULL) {
			ipc_record_free(ir_br.tls, e->big[s]);
			e->big[s] = NULL;
		}
	/* lent: the watcher has the channel (net_wait.c) */
	if (e->lent || e->state != E_OPEN || e->nframes - e->credited >= e->window)
		return progress;
	size_t slot = e->nframes % e->window;
	if (!ir_bridge_test(&e->req[slot]) || !ir_bridge_test(&e->breq[slot]))
		return progress;
	if (e->big[slot]) {
		ipc_record_free(ir_br.tls, e->big[slot]);
		e->big[slot] = NULL;
	}
	struct ir_frame_writer w;
	ir_frame_begin(&w, e->buf[slot], BATCH);
	uint16_t flags = 0;
	void *big = NULL;
	for (;;) {
		void *rec = e->held;
		int rc = 0;
		e->held = NULL;
		if (!rec && e->held_rc)
			rc = e->held_rc; /* the end, as the watcher met it */
		else if (!rec)
			rc = e->consumer_gone ? IPC_TX_EOF : ipc_record_recv(e->tls, e->chan, &rec);
		if (rc == IPC_TX_RETRY)
			break;
		if (rc == IPC_TX_EOF || rc == -ENOENT) {
			flags = IR_FRAME_EOF;
			break;
		}
		if (rc != 0) {
			flags = IR_FRAME_ABORT;
			break;
		}
		size_t n = ipc_record_size(rec);
		if (n >= BIG_MIN) {
			if (w.count == 0)
				big = rec;
			else
				e->held = rec;
			break;
		}
		if (!ir_frame_fits(&w, n)) {
			e->held = rec;
			break;
		}
		ir_frame_add(&w, rec, n);
		ipc_record_free(e->tls, rec);
	}
	if (!big && w.count == 0 && !flags)
		return progress;
	size_t len;
	if (big) {
		struct ir_frame_hdr h = {
			.version = IR_FRAME_VERSION, .type = IR_FRAME_DATA,
			.flags = IR_FRAME_BIG, .edge = e->idx, .seq = e->seq, .count = 1,
			.big = ipc_record_size(big)};
		ir_frame_put_hdr(e->buf[slot], &h);
		len = IR_FRAME_HDR;
		e->seq++;
	} else {
		len = ir_frame_end(&w, e->idx, e->seq, flags);
		e->seq += w.count;
		if (ir_br.corrupt && w.count) {
			/* tests: the first record's length now runs past the frame */
			e->buf[slot][IR_FRAME_HDR + 3] = 0x7f;
			ir_br.corrupt = false;
		}
	}
	MPI_Isend(e->buf[slot], (int)len, MPI_BYTE, e->peer, TAG_DATA(e->idx),
	          MPI_COMM_WORLD, &e->req[slot]);
	if (big) {
		/* straight from the shared record: freed when the send is done */
		e->big[slot] = big;
		MPI_Isend(big, (int)ipc_record_size(big), MPI_BYTE, e->peer,
		          TAG_PAYLOAD(e->idx), MPI_COMM_WORLD, &e->breq[slot]);
	}
	e->nframes++;
	if (flags)
		e->state = E_FINAL;
	return true;
}

/* ---- rx: frames -> local channel ---- */

void ir_bridge_rx_post(struct edge *e, size_t slot)
{
	MPI_Irecv(e->buf[slot], BATCH, MPI_BYTE, e->peer, TAG_DATA(e->idx),
	          MPI_COMM_WORLD, &e->req[slot]);
}

static bool rx_credit(struct edge *e)
{
	struct ir_frame_hdr c = {.version = IR_FRAME_VERSION,
	                         .type = IR_FRAME_CREDIT, .edge = e->idx, .count = 1};
	return ir_bridge_send_ctl(e->ctl, CTL_SLOTS, e->peer, TAG_BACK(e->idx), &c);
}

/* Pass one record on; false when the channel is full (try later). */
static bool rx_push(struct edge *e)
{
	if (e->consumer_gone) {
		ipc_record_free(ir_br.tls, e->pend);
		e->pend = NULL;
		return true;
	}
	int rc = ipc_record_send(ir_br.tls, e->chan, &e->pend);
	if (rc == IPC_TX_RETRY)
		return false;
	if (rc != 0) {
		/* -EPIPE: the local consumer left; tell tx, drop the rest */
		ipc_record_free(ir_br.tls, e->pend);
		e->pend = NULL;
		e->consumer_gone = true;
	}
	return true;
}

/* Frames that came, in order: check each whole and post the receive of a
 * BIG frame's payload at once, straight into a record of our buffer, so
 * that several large records are on the wire together (a rendezvous send
 * waits for its receive). */
static bool rx_arrive(struct edge *e)
{
	bool progress = false;
	while (!e->final_recv && e->nrecv - e->nframes < e->window) {
		size_t slot = e->nrecv % e->window;
		MPI_Status st;
		int done = 0;
		MPI_Test(&e->req[slot], &done, &st);
		if (!done)
			break;
		ir_br.mpi_events++;
		ir_br.last_seen[e->peer] = ir_bridge_now_ns();
		int n = 0;
		MPI_Get_count(&st, MPI_BYTE, &n);
		struct ir_frame_hdr *h = &e->hs[slot];
		const char *why = NULL;
		if (ir_frame_parse(e->buf[slot], (size_t)n, ir_br.nidx, ir_br.max_record, h, &why))
			ir_bridge_fatal("bad frame from host '%s' on edge %s: %s", ir_br.host[e->peer],
			      e->name, why);
		if (h->type != IR_FRAME_DATA || h->edge != e->idx)
			ir_bridge_fatal("frame of another kind or edge from host '%s' on edge %s",
			      ir_br.host[e->peer], e->name);
		if (h->seq != e->seq)
			ir_bridge_fatal("sequence gap from host '%s' on edge %s: record %llu "
			      "expected, %llu came", ir_br.host[e->peer], e->name,
			      (unsigned long long)e->seq, (unsigned long long)h->seq);
		e->seq += h->count;
		e->final_recv = (h->flags & (IR_FRAME_EOF | IR_FRAME_ABORT)) != 0;
		e->nrecv++;
		progress = true;
	}
	while (e->nposted < e->nrecv) {
		size_t slot = e->nposted % e->window;
		const struct ir_frame_hdr *h = &e->hs[slot];
		if (h->flags & IR_FRAME_BIG) {
			/* a consumer that left still takes the message, once */
			void *rec = NULL;
			e->heap[slot] = e->consumer_gone;
			if (e->consumer_gone)
				rec = malloc(h->big);
			else if (!(rec = ipc_record_alloc(ir_br.tls, h->big, e->chan)))
				break; /* ENOMEM: the buffer is full for now; later */
			if (!rec)
				ir_bridge_fatal("out of memory for a %llu-byte record",
				      (unsigned long long)h->big);
			e->big[slot] = rec;
			MPI_Irecv(rec, (int)h->big, MPI_BYTE, e->peer, TAG_PAYLOAD(e->idx),
			          MPI_COMM_WORLD, &e->breq[slot]);
		}
		e->nposted++;
		progress = true;
	}
	return progress;
}

bool ir_bridge_rx_step(struct edge *e)
{
	bool progress = false;
	if (e->consumer_gone && !e->closed_sent) {
		struct ir_frame_hdr c = {.version = IR_FRAME_VERSION,
		                         .type = IR_FRAME_CLOSED, .edge = e->idx};
		if (ir_bridge_send_ctl(e->ctl, CTL_SLOTS, e->peer, TAG_BACK(e->idx), &c))
			e->closed_sent = true;
		progress = true;
	}
	if (e->state == E_DONE)
		return progress;
	progress |= rx_arrive(e);
	if (e->nposted == e->nframes)
		return progress;
	/* the oldest frame: pass its records on */
	size_t slot = e->nframes % e->window;
	const struct ir_frame_hdr *h = &e->hs[slot];
	if (!e->active) {
		ir_frame_iter_init(&e->it, e->buf[slot]);
		e->active = true;
	}
	if (e->pend && !rx_push(e))
		return progress;
	if (h->flags & IR_FRAME_BIG) {
		if (e->big[slot]) {
			if (!ir_bridge_test(&e->breq[slot]))
				return progress;
			ir_br.mpi_events++;
			void *rec = e->big[slot];
			e->big[slot] = NULL;
			progress = true;
			if (e->heap[slot]) {
				free(rec);
			} else if (e->consumer_gone) {
				ipc_record_free(ir_br.tls, rec);
			} else {
				e->pend = rec;
				if (!rx_push(e))
					return progress;
			}
		}
	} else {
		const uint8_t *p;
		size_t n;
		struct ir_frame_iter at = e->it;
		while (ir_frame_next(&e->it, &p, &n)) {
			progress = true;
			if (e->consumer_gone)
				continue;
			void *rec = ipc_record_alloc(ir_br.tls, n, e->chan);
			if (!rec) {
				e->it = at; /* the buffer is full for now: again, later */
				return progress;
			}
			at = e->it;
			memcpy(rec, p, n);
			e->pend = rec;
			if (!rx_push(e))
				return progress;
		}
	}
	/* every record of the frame is passed on: credit it */
	if (!rx_credit(e))
		return progress;
	e->nframes++;
	e->active = false;
	if (h->flags & (IR_FRAME_EOF | IR_FRAME_ABORT)) {
		if (!e->consumer_gone) {
			if (h->flags & IR_FRAME_ABORT)
				ipc_channel_abort(ir_br.tls, e->chan);
			else
				ipc_channel_close(ir_br.tls, e->chan);
		}
		e->state = E_DONE;
	} else {
		ir_bridge_rx_post(e, slot);
	}
	return true;
}

/* A transfer under way on edge e (not just a receive posted in advance). */
/* Some request of r[0..n) still under way. One MPI_Testsome for them all
 * (it lets MPI progress once) rather than one MPI_Test each: while large
 * records move this runs every pass, and each progress is a poll(2). The
 * requests that completed become MPI_REQUEST_NULL, which the edge code
 * takes as done (ir_bridge_test); only sends and payload receives, whose
 * status nobody reads, are tested here. */
static bool some_pending(MPI_Request *r, uint32_t n)
{
	static int idx[2 * 1024]; /* windows are at most 1024 */
	int active = 0, out = 0;
	for (uint32_t i = 0; i < n; i++)
		active += r[i] != MPI_REQUEST_NULL;
	if (!active)
		return false;
	MPI_Testsome((int)n, r, &out, idx, MPI_STATUSES_IGNORE);
	return out != MPI_UNDEFINED && out < active;
}

bool ir_bridge_in_flight(struct edge *e)
{
	for (int i = 0; i < CTL_SLOTS; i++)
		if (!ir_bridge_test(&e->ctl[i].req))
			return true;
	if (e->tx == 'r')
		return some_pending(e->breq, e->window);
	return some_pending(e->req, 2 * e->window); /* req, then breq */
}

bool ir_bridge_stalled(struct edge *e)
{
	if (e->tx == 't')
		return false; /* what it waits for comes by MPI or its watcher */
	return e->state != E_DONE && (e->nrecv != e->nframes ||
	                              (e->consumer_gone && !e->closed_sent));
}

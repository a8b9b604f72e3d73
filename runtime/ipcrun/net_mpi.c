/*
 * ipcrun-net: the bridge process `@net` of one host (SCALE_OUT.md 5.2-5.6).
 * ipcrun forks and execs it when it runs under an MPI launcher; it is the
 * only program of the project that links MPI, so that ipcrun and the kernel
 * processes never load libmpi (and ipcrun builds and runs without it).
 *
 *   ipcrun-net run HANDLE SHM SEM CTRL STATUS RANK HOSTS TIMEOUT_MS EDGE...
 *   ipcrun-net fail RANK HOSTS MESSAGE
 *
 * HOSTS is the host names in rank order, comma-separated; EDGE is
 * "t|r:INDEX:CHANNEL:PEER:WINDOW:CAPACITY:NAME" for a bridged edge whose local end
 * this host's net takes: t (tx) consumes local channel CHANNEL and sends to
 * rank PEER, r (rx) receives from PEER and produces into CHANNEL. INDEX is
 * the connection's index in the topology, the same on every host.
 *
 * With the supervisor (run.c, net.c) it speaks the ready/go/stop protocol:
 *   status (write)  R  attached and MPI up        G  every host is ready
 *                   F <text>  some host could not start (exit 2 everywhere)
 *                   S <failed>  a peer asked the graph to stop
 *                   E <text>  a bridge error (the graph stops, exit 1)
 *   ctrl (read)     B  this host is ready   F<text>\n  it is not
 *                   S  stop (a signal)      X  stop: a kernel failed
 *
 * The start barrier is one MPI_Allgather of every host's verdict and ABI
 * (byte order, type sizes): all go together, or all exit 2 naming the host.
 * Then one thread loops over every bridged edge without ever blocking inside
 * MPI: non-blocking ipc_record_recv / ipc_record_send on the local channels,
 * MPI_Isend / pre-posted MPI_Irecv tested with MPI_Test, spinning ~50 us
 * after the last progress and then sleeping with a doubling back-off up to
 * 1 ms (an idle edge costs well under 1 % of a core; a blocked MPI_Recv
 * would take all of one).
 *
 * Per edge, at most WINDOW frames are in flight: rx credits a frame only
 * after every record of it went into the local channel, so a slow consumer
 * on one host blocks the producer on the other, and memory stays bounded
 * (window x 64 KiB per edge on each side).
 */
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <ipc/buffer.h>

#include "frame.h"

#define BATCH (64u * 1024)      /* bytes of a DATA frame */
#define BIG_MIN (32u * 1024)    /* records this large go alone, zero-copy */
#define TAG_CTRL 1              /* STOP, HELLO */
#define TAG_BASE 16
#define TAG_DATA(e) (TAG_BASE + 4 * (e))
#define TAG_PAYLOAD(e) (TAG_BASE + 4 * (e) + 1)
#define TAG_BACK(e) (TAG_BASE + 4 * (e) + 2) /* CREDIT, CLOSED */
#define HELLO_NS 1000000000ull
#define SPIN_NS 50000ull
#define SLEEP_MAX_NS 1000000ull
#define HOSTS_NS 5000000ull
#define CTL_SLOTS 8

enum { E_OPEN, E_FINAL, E_DONE };

struct ctl_slot {
	uint8_t buf[IR_FRAME_HDR];
	MPI_Request req;
};

struct edge {
	char tx;              /* 't' or 'r' */
	uint32_t idx;
	uint64_t chan;
	int peer;
	uint32_t window;
	uint32_t capacity;    /* of the local channel, as the topology says */
	const char *name;
	int state;
	uint64_t seq;         /* next record number */
	uint8_t **buf;        /* window frame buffers */
	MPI_Request *req;     /* tx: DATA sends; rx: pre-posted receives */
	MPI_Request *breq;    /* tx: BIG payload sends */
	void **big;           /* tx: the record a BIG send reads; rx: target */
	uint64_t nframes;     /* frames sent (tx) or taken (rx) */
	uint64_t credited;    /* tx: frames credited */
	void *held;           /* tx: a record taken that did not fit */
	bool consumer_gone;   /* tx: CLOSED came; rx: -EPIPE locally */
	uint8_t back[IR_FRAME_HDR];
	MPI_Request back_req; /* tx: the pre-posted CREDIT/CLOSED receive */
	/* rx: frames taken (nrecv), BIG payloads posted (nposted), passed on
	 * (nframes): nframes <= nposted <= nrecv <= nframes + window */
	uint64_t nrecv, nposted;
	bool final_recv;
	struct ir_frame_hdr *hs; /* per slot: the checked header */
	bool *heap;              /* per slot: payload in malloc'd memory */
	bool active;             /* the oldest frame is being passed on */
	struct ir_frame_iter it;
	void *pend;           /* a record allocated, not yet sent */
	bool closed_sent;
	struct ctl_slot ctl[CTL_SLOTS];
};

static int status_fd = -1, ctrl_fd = -1;
static int rank, nranks;
static char **host;
static struct edge *edges;
static size_t nedge;
static uint32_t nidx; /* edges of the topology, for frame checks */
static struct ipc_tls *tls;
static uint64_t max_record;
static uint64_t *last_seen, next_hello;
static uint64_t timeout_ns;
static bool stop_sent;
static int final_failed = -1; /* ipcrun's "Z0"/"Z1": this host's outcome */
static uint8_t hello_in[IR_FRAME_HDR];
static MPI_Request hello_req = MPI_REQUEST_NULL;
static struct ctl_slot *hello_out;

#ifdef __SANITIZE_ADDRESS__
/* `make check`: Open MPI 4.1 leaves what it allocated in MPI_Init (hwloc
 * topology, MCA components it unloads before LeakSanitizer looks, so that
 * their frames are "unknown module" and cannot be suppressed by name).
 * Leak checking is off for this program only; every other ASan check stays
 * on, and the frame codec it uses is leak-checked in test_frame. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || status_fd < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t w;
	do
		w = write(status_fd, buf, (size_t)n);
	while (w < 0 && errno == EINTR);
}

/* A fault the job cannot survive: tell ipcrun and every host, then abort. */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                       noreturn));

static void fatal(const char *fmt, ...)
{
	char buf[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "ipcrun: host '%s' (rank %d): %s; aborting the job\n",
	        host[rank], rank, buf);
	say("E %s", buf);
	MPI_Abort(MPI_COMM_WORLD, 1);
	_exit(1);
}

static bool test(MPI_Request *r)
{
	if (*r == MPI_REQUEST_NULL)
		return true;
	int done = 0;
	MPI_Test(r, &done, MPI_STATUS_IGNORE);
	return done;
}

/* Send a 32-byte control frame from one of the edge's slots; false when
 * every slot is still busy (try again later). */
static bool send_ctl(struct ctl_slot *slots, size_t n, int peer, int tag,
                     const struct ir_frame_hdr *h)
{
	for (size_t i = 0; i < n; i++) {
		if (!test(&slots[i].req))
			continue;
		ir_frame_put_hdr(slots[i].buf, h);
		MPI_Isend(slots[i].buf, IR_FRAME_HDR, MPI_BYTE, peer, tag,
		          MPI_COMM_WORLD, &slots[i].req);
		return true;
	}
	return false;
}

/* ---- tx: local channel -> frames ---- */

static void tx_back(struct edge *e)
{
	if (e->back_req == MPI_REQUEST_NULL || !test(&e->back_req))
		return;
	last_seen[e->peer] = now_ns();
	struct ir_frame_hdr h;
	const char *why;
	if (ir_frame_parse(e->back, IR_FRAME_HDR, nidx, max_record, &h, &why) ||
	    h.edge != e->idx || (h.type != IR_FRAME_CREDIT && h.type != IR_FRAME_CLOSED))
		fatal("bad frame from host '%s' on edge %s: %s", host[e->peer], e->name,
		      why ? why : "not a credit");
	if (h.type == IR_FRAME_CREDIT) {
		if (h.count > e->nframes - e->credited)
			fatal("host '%s' credited frames never sent on edge %s",
			      host[e->peer], e->name);
		e->credited += h.count;
	} else if (!e->consumer_gone) {
		/* the remote consumer left: so does ours, and the upstream
		 * producer gets -EPIPE */
		e->consumer_gone = true;
		if (e->held) {
			ipc_record_free(tls, e->held);
			e->held = NULL;
		}
		ipc_channel_close(tls, e->chan);
	}
	if (e->state == E_FINAL && e->credited == e->nframes) {
		e->state = E_DONE;
		return;
	}
	MPI_Irecv(e->back, IR_FRAME_HDR, MPI_BYTE, e->peer, TAG_BACK(e->idx),
	          MPI_COMM_WORLD, &e->back_req);
}

static bool tx_step(struct edge *e)
{
	bool progress = false;
	uint64_t before = e->credited;
	tx_back(e);
	progress |= e->credited != before;
	if (e->state != E_OPEN || e->nframes - e->credited >= e->window)
		return progress;
	size_t slot = e->nframes % e->window;
	if (!test(&e->req[slot]) || !test(&e->breq[slot]))
		return progress;
	if (e->big[slot]) {
		ipc_record_free(tls, e->big[slot]);
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
		if (!rec)
			rc = e->consumer_gone ? IPC_TX_EOF : ipc_record_recv(tls, e->chan, &rec);
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
		ipc_record_free(tls, rec);
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

static void rx_post(struct edge *e, size_t slot)
{
	MPI_Irecv(e->buf[slot], BATCH, MPI_BYTE, e->peer, TAG_DATA(e->idx),
	          MPI_COMM_WORLD, &e->req[slot]);
}

static bool rx_credit(struct edge *e)
{
	struct ir_frame_hdr c = {.version = IR_FRAME_VERSION,
	                         .type = IR_FRAME_CREDIT, .edge = e->idx, .count = 1};
	return send_ctl(e->ctl, CTL_SLOTS, e->peer, TAG_BACK(e->idx), &c);
}

/* Pass one record on; false when the channel is full (try later). */
static bool rx_push(struct edge *e)
{
	if (e->consumer_gone) {
		ipc_record_free(tls, e->pend);
		e->pend = NULL;
		return true;
	}
	int rc = ipc_record_send(tls, e->chan, &e->pend);
	if (rc == IPC_TX_RETRY)
		return false;
	if (rc != 0) {
		/* -EPIPE: the local consumer left; tell tx, drop the rest */
		ipc_record_free(tls, e->pend);
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
		last_seen[e->peer] = now_ns();
		int n = 0;
		MPI_Get_count(&st, MPI_BYTE, &n);
		struct ir_frame_hdr *h = &e->hs[slot];
		const char *why = NULL;
		if (ir_frame_parse(e->buf[slot], (size_t)n, nidx, max_record, h, &why))
			fatal("bad frame from host '%s' on edge %s: %s", host[e->peer],
			      e->name, why);
		if (h->type != IR_FRAME_DATA || h->edge != e->idx)
			fatal("frame of another kind or edge from host '%s' on edge %s",
			      host[e->peer], e->name);
		if (h->seq != e->seq)
			fatal("sequence gap from host '%s' on edge %s: record %llu "
			      "expected, %llu came", host[e->peer], e->name,
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
			else if (!(rec = ipc_record_alloc(tls, h->big, e->chan)))
				break; /* ENOMEM: the buffer is full for now; later */
			if (!rec)
				fatal("out of memory for a %llu-byte record",
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

static bool rx_step(struct edge *e)
{
	bool progress = false;
	if (e->consumer_gone && !e->closed_sent) {
		struct ir_frame_hdr c = {.version = IR_FRAME_VERSION,
		                         .type = IR_FRAME_CLOSED, .edge = e->idx};
		if (send_ctl(e->ctl, CTL_SLOTS, e->peer, TAG_BACK(e->idx), &c))
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
			if (!test(&e->breq[slot]))
				return progress;
			void *rec = e->big[slot];
			e->big[slot] = NULL;
			progress = true;
			if (e->heap[slot]) {
				free(rec);
			} else if (e->consumer_gone) {
				ipc_record_free(tls, rec);
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
			void *rec = ipc_record_alloc(tls, n, e->chan);
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
				ipc_channel_abort(tls, e->chan);
			else
				ipc_channel_close(tls, e->chan);
		}
		e->state = E_DONE;
	} else {
		rx_post(e, slot);
	}
	return true;
}

/* ---- hosts: STOP and HELLO ---- */

static void broadcast(uint8_t type, uint16_t flags)
{
	struct ir_frame_hdr h = {.version = IR_FRAME_VERSION, .type = type,
	                         .flags = flags};
	for (int p = 0; p < nranks; p++)
		if (p != rank)
			send_ctl(&hello_out[(size_t)p * CTL_SLOTS], CTL_SLOTS, p, TAG_CTRL, &h);
}

static bool hosts_step(void)
{
	bool progress = false;
	MPI_Status st;
	int done = 0;
	if (hello_req != MPI_REQUEST_NULL)
		MPI_Test(&hello_req, &done, &st);
	if (done) {
		progress = true;
		struct ir_frame_hdr h;
		const char *why = NULL;
		int n = 0;
		MPI_Get_count(&st, MPI_BYTE, &n);
		if (st.MPI_SOURCE < 0 || st.MPI_SOURCE >= nranks ||
		    ir_frame_parse(hello_in, (size_t)n, nidx, max_record, &h, &why) ||
		    (h.type != IR_FRAME_STOP && h.type != IR_FRAME_HELLO))
			fatal("bad control frame from rank %d: %s", st.MPI_SOURCE,
			      why ? why : "not STOP or HELLO");
		last_seen[st.MPI_SOURCE] = now_ns();
		if (h.type == IR_FRAME_STOP && !stop_sent) {
			stop_sent = true;
			say("S %d %d", (h.flags & IR_FRAME_FAILED) != 0, st.MPI_SOURCE);
		}
		MPI_Irecv(hello_in, IR_FRAME_HDR, MPI_BYTE, MPI_ANY_SOURCE, TAG_CTRL,
		          MPI_COMM_WORLD, &hello_req);
	}
	char c;
	ssize_t r;
	static bool z;
	while ((r = read(ctrl_fd, &c, 1)) == 1) {
		if (z) {
			final_failed = c == '1';
			z = false;
		} else if (c == 'Z') {
			z = true;
		} else if ((c == 'S' || c == 'X') && !stop_sent) {
			stop_sent = true;
			broadcast(IR_FRAME_STOP, c == 'X' ? IR_FRAME_FAILED : 0);
		}
		progress = true;
	}
	if (r == 0)
		fatal("ipcrun is gone");
	uint64_t now = now_ns();
	if (now >= next_hello) {
		broadcast(IR_FRAME_HELLO, 0);
		next_hello = now + HELLO_NS;
	}
	for (int p = 0; p < nranks; p++)
		if (p != rank && now - last_seen[p] > timeout_ns)
			fatal("host '%s' (rank %d) silent for %.1f s", host[p], p,
			      (double)(now - last_seen[p]) / 1e9);
	return progress;
}

/* ---- start barrier ---- */

struct verdict {
	uint32_t magic;     /* 0x1c9e7001 in the sender's byte order */
	uint8_t ok;
	uint8_t sizes[7];   /* short int long long-long pointer float double */
	char why[480];
};

static void my_verdict(struct verdict *v, bool ok, const char *why)
{
	memset(v, 0, sizeof *v);
	v->magic = 0x1c9e7001u;
	v->ok = ok;
	const uint8_t s[7] = {sizeof(short), sizeof(int), sizeof(long),
	                      sizeof(long long), sizeof(void *), sizeof(float),
	                      sizeof(double)};
	memcpy(v->sizes, s, sizeof s);
	const char *env = getenv("IPCRUN_NET_TEST_ABI"); /* tests: a foreign host */
	if (env && atoi(env) == rank)
		v->magic = __builtin_bswap32(v->magic);
	snprintf(v->why, sizeof v->why, "%s", why ? why : "");
}

/* true when every host may go. */
static bool barrier(bool ok, const char *why)
{
	struct verdict mine, *all = calloc((size_t)nranks, sizeof *all);
	if (!all)
		return false;
	my_verdict(&mine, ok, why);
	MPI_Request r;
	MPI_Iallgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE,
	               MPI_COMM_WORLD, &r);
	uint64_t sleep_ns = 1000;
	while (!test(&r)) {
		struct timespec ts = {0, (long)sleep_ns};
		nanosleep(&ts, NULL);
		if (sleep_ns < SLEEP_MAX_NS)
			sleep_ns *= 2;
	}
	bool go = true;
	char msg[400] = "";
	for (int p = 0; p < nranks; p++) {
		const struct verdict *v = &all[p];
		const char *what = NULL;
		if (v->magic != 0x1c9e7001u)
			what = "its byte order differs from this host's; records are "
			       "raw bytes, so hosts must match";
		else if (memcmp(v->sizes, mine.sizes, sizeof mine.sizes))
			what = "its C type sizes differ from this host's; records are "
			       "raw bytes, so hosts must match";
		else if (!v->ok)
			what = v->why[0] ? v->why : "it could not start";
		if (!what)
			continue;
		go = false;
		if (p == rank && v->ok)
			continue;
		if (!msg[0])
			snprintf(msg, sizeof msg, "host '%s' (rank %d): %.*s", host[p], p,
			         300, what);
		if (p == rank)
			fprintf(stderr, "ipcrun: host '%s' (rank %d) cannot start: %s; "
			        "nothing was started on any host\n", host[p], p, what);
		else
			fprintf(stderr, "ipcrun: host '%s' (rank %d): host '%s' (rank %d) "
			        "cannot start: %s; nothing was started on any host\n",
			        host[rank], rank, host[p], p, what);
	}
	free(all);
	if (!go)
		say("F %s", msg[0] ? msg : "a host could not start");
	return go;
}

/* ---- main ---- */

static char **split_hosts(char *s, int *n)
{
	char **h = NULL;
	*n = 0;
	for (char *save = NULL, *t = strtok_r(s, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		h = realloc(h, (size_t)(*n + 1) * sizeof *h);
		if (!h)
			exit(1);
		h[(*n)++] = t;
	}
	return h;
}

static int parse_edge(const char *spec, struct edge *e)
{
	char kind;
	unsigned idx, peer, window, capacity;
	unsigned long long chan;
	int off = 0;
	if (sscanf(spec, "%c:%u:%llu:%u:%u:%u:%n", &kind, &idx, &chan, &peer,
	           &window, &capacity, &off) != 6 || (kind != 't' && kind != 'r') ||
	    !off || !capacity ||
	    window == 0 || window > 1024 || (int)peer >= nranks || (int)peer == rank)
		return -1;
	*e = (struct edge){.tx = kind, .idx = idx, .chan = chan, .peer = (int)peer,
	                   .window = window, .capacity = capacity, .name = spec + off,
	                   .back_req = MPI_REQUEST_NULL};
	e->buf = calloc(window, sizeof *e->buf);
	e->req = calloc(window, sizeof *e->req);
	e->breq = calloc(window, sizeof *e->breq);
	e->big = calloc(window, sizeof *e->big);
	e->hs = calloc(window, sizeof *e->hs);
	e->heap = calloc(window, sizeof *e->heap);
	if (!e->buf || !e->req || !e->breq || !e->big || !e->hs || !e->heap)
		return -1;
	for (unsigned i = 0; i < window; i++) {
		e->buf[i] = malloc(BATCH);
		e->req[i] = e->breq[i] = MPI_REQUEST_NULL;
		if (!e->buf[i])
			return -1;
	}
	for (int i = 0; i < CTL_SLOTS; i++)
		e->ctl[i].req = MPI_REQUEST_NULL;
	if (idx + 1 > nidx)
		nidx = idx + 1;
	return 0;
}

static int init_mpi(int *argc, char ***argv)
{
	int provided;
	if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return -1;
	int r, n;
	MPI_Comm_rank(MPI_COMM_WORLD, &r);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	if (r != rank || n != nranks) {
		fprintf(stderr, "ipcrun-net: MPI says rank %d of %d, the launcher's "
		        "environment said %d of %d\n", r, n, rank, nranks);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	return 0;
}

static void cancel(MPI_Request *r)
{
	if (*r == MPI_REQUEST_NULL)
		return;
	MPI_Cancel(r);
	MPI_Wait(r, MPI_STATUS_IGNORE);
}

static void idle_until(MPI_Request *r, bool (*done)(MPI_Request *))
{
	uint64_t sleep_ns = 1000;
	while (!done(r)) {
		if (hosts_step())
			sleep_ns = 1000;
		struct timespec ts = {0, (long)sleep_ns};
		nanosleep(&ts, NULL);
		if (sleep_ns < SLEEP_MAX_NS)
			sleep_ns *= 2;
	}
}

static bool have_final(MPI_Request *r)
{
	(void)r;
	return final_failed >= 0;
}

/* After every edge is done: wait for this host's outcome from ipcrun (every
 * local kernel ended), agree on one exit status with every host, without
 * blocking in MPI, still answering HELLO and watching for silence; then
 * finalize. */
static void finish(void)
{
	MPI_Request r = MPI_REQUEST_NULL;
	idle_until(&r, have_final);
	int *all = calloc((size_t)nranks, sizeof *all);
	if (!all)
		fatal("out of memory");
	MPI_Iallgather(&final_failed, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD, &r);
	idle_until(&r, test);
	for (int p = 0; p < nranks; p++)
		if (p != rank && all[p])
			say("S 1 %d", p);
	free(all);
	cancel(&hello_req);
	for (size_t i = 0; i < (size_t)nranks * CTL_SLOTS; i++)
		MPI_Wait(&hello_out[i].req, MPI_STATUS_IGNORE);
	for (size_t i = 0; i < nedge; i++)
		for (int j = 0; j < CTL_SLOTS; j++)
			MPI_Wait(&edges[i].ctl[j].req, MPI_STATUS_IGNORE);
	MPI_Finalize();
}

/* A transfer under way on edge e (not just a receive posted in advance). */
static bool in_flight(struct edge *e)
{
	if (e->tx == 'r') {
		for (uint64_t f = e->nframes; f < e->nposted; f++)
			if (!test(&e->breq[f % e->window]))
				return true;
		return false;
	}
	for (uint32_t s = 0; s < e->window; s++)
		if (!test(&e->req[s]) || !test(&e->breq[s]))
			return true;
	return false;
}

/* Fully idle: sleep in the local channel of one tx edge (in turn), so
 * that a record sent into it wakes the bridge at once (the futex of the
 * channel) rather than at the next poll: 1 ms while this host also has
 * edges coming in (only polling MPI finds their frames), 10 ms when it
 * only sends (nothing else is urgent: credits matter once the window is
 * full, and then this is not called). Returns false when there is no such
 * edge (the caller sleeps instead). */
static bool idle_wait(size_t *turn)
{
	static int ms = -1;
	if (ms < 0) {
		ms = 10;
		for (size_t i = 0; i < nedge; i++)
			if (edges[i].tx == 'r')
				ms = 1;
	}
	for (size_t k = 0; k < nedge; k++) {
		struct edge *e = &edges[(*turn + k) % nedge];
		if (e->tx != 't' || e->state != E_OPEN || e->held || e->consumer_gone ||
		    e->nframes - e->credited >= e->window)
			continue;
		*turn = (*turn + k + 1) % nedge;
		void *rec = NULL;
		if (ipc_record_recv_wait(tls, e->chan, &rec, ms) == 0)
			e->held = rec;
		return true;
	}
	return false;
}

static int run_bridge(void)
{
	for (size_t i = 0; i < nedge; i++) {
		struct edge *e = &edges[i];
		if (e->tx == 't')
			MPI_Irecv(e->back, IR_FRAME_HDR, MPI_BYTE, e->peer,
			          TAG_BACK(e->idx), MPI_COMM_WORLD, &e->back_req);
		else
			for (uint32_t s = 0; s < e->window; s++)
				rx_post(e, s);
	}
	MPI_Irecv(hello_in, IR_FRAME_HDR, MPI_BYTE, MPI_ANY_SOURCE, TAG_CTRL,
	          MPI_COMM_WORLD, &hello_req);
	uint64_t t = now_ns(), idle_since = t, sleep_ns = 1000;
	for (int p = 0; p < nranks; p++)
		last_seen[p] = t;
	next_hello = t + HELLO_NS;
	size_t turn = 0;
	uint64_t next_hosts = 0;
	for (;;) {
		/* stop, hello and silence between hosts need no sub-millisecond
		 * care: looked at every HOSTS_NS, so that an idle wake-up costs
		 * one MPI_Test per edge and nothing more */
		bool progress = false, open = false, busy = false;
		uint64_t now = now_ns();
		if (now >= next_hosts) {
			progress = hosts_step();
			next_hosts = now + HOSTS_NS;
		}
		for (size_t i = 0; i < nedge; i++) {
			struct edge *e = &edges[i];
			progress |= e->tx == 't' ? tx_step(e) : rx_step(e);
			open |= e->state != E_DONE;
			busy |= in_flight(e);
		}
		if (!open)
			break;
		if (progress) {
			idle_since = now_ns();
			sleep_ns = 1000;
			continue;
		}
		if (busy || now_ns() - idle_since < SPIN_NS) {
			/* MPI moves bytes only inside MPI calls: while a transfer is
			 * under way, poll again at once (yielding the core) */
			sched_yield();
			continue;
		}
		if (sleep_ns >= SLEEP_MAX_NS && idle_wait(&turn))
			continue;
		struct timespec ts = {0, (long)sleep_ns};
		nanosleep(&ts, NULL);
		if (sleep_ns < SLEEP_MAX_NS)
			sleep_ns *= 2;
	}
	/* the last sends: BIG payloads still read their records */
	for (size_t i = 0; i < nedge; i++) {
		struct edge *e = &edges[i];
		for (uint32_t s = 0; e->tx == 't' && s < e->window; s++) {
			while (!test(&e->req[s]) || !test(&e->breq[s]))
				hosts_step();
			if (e->big[s])
				ipc_record_free(tls, e->big[s]);
			e->big[s] = NULL;
		}
		if (e->held)
			ipc_record_free(tls, e->held);
		e->held = NULL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "fail") == 0) {
		rank = atoi(argv[2]);
		host = split_hosts(argv[3], &nranks);
		if (rank < 0 || rank >= nranks || init_mpi(&argc, &argv))
			return 2;
		barrier(false, argv[4]);
		MPI_Finalize();
		return 2;
	}
	if (argc < 11 || strcmp(argv[1], "run") != 0) {
		fputs("ipcrun-net: started by ipcrun only\n", stderr);
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	const char *handle = argv[2];
	struct ipc_buffer_opts bo = {.shm = (enum ipc_shm_kind)atoi(argv[3]),
	                             .sem = (enum ipc_sem_kind)atoi(argv[4])};
	ctrl_fd = atoi(argv[5]);
	status_fd = atoi(argv[6]);
	rank = atoi(argv[7]);
	host = split_hosts(argv[8], &nranks);
	timeout_ns = strtoull(argv[9], NULL, 10) * 1000000ull;
	if (rank < 0 || rank >= nranks || !timeout_ns) {
		say("F bad arguments");
		return 2;
	}
	nedge = (size_t)(argc - 10);
	edges = calloc(nedge + 1, sizeof *edges);
	last_seen = calloc((size_t)nranks, sizeof *last_seen);
	hello_out = calloc((size_t)nranks * CTL_SLOTS, sizeof *hello_out);
	if (!edges || !last_seen || !hello_out)
		return 1;
	for (size_t i = 0; i < (size_t)nranks * CTL_SLOTS; i++)
		hello_out[i].req = MPI_REQUEST_NULL;
	for (size_t i = 0; i < nedge; i++)
		if (parse_edge(argv[10 + i], &edges[i])) {
			say("F bad edge '%s'", argv[10 + i]);
			return 2;
		}
	struct ipc_buffer *b = ipc_buffer_open(handle, &bo);
	if (!b) {
		say("F cannot open the buffer %s: %s", handle, strerror(errno));
		return 1;
	}
	struct ipc_buffer_stats bs;
	ipc_buffer_stats(b, &bs);
	max_record = bs.size / 4;
	tls = ipc_tls_open(b, -1);
	if (!tls) {
		say("F cannot open a thread slot: %s", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < nedge; i++) {
		/* the bridge's ends sleep at once when they wait (idle_wait):
		 * it never spins in libipc */
		struct ipc_channel_opts co = {.capacity = edges[i].capacity,
		                              .wait = IPC_WAIT_BLOCK};
		int rc = ipc_channel_add_opts(tls, edges[i].chan, edges[i].tx == 't' ?
		                              IPC_CONSUMER : IPC_PRODUCER, &co);
		if (rc < 0) {
			say("F cannot attach edge %s: %s", edges[i].name, ipc_strerror(rc));
			return 1;
		}
	}
	if (init_mpi(&argc, &argv)) {
		say("F MPI_Init failed");
		return 1;
	}
	say("R");
	/* this host's verdict from ipcrun: B ready, F<text>\n not */
	char c = 0, why[480] = "";
	while (read(ctrl_fd, &c, 1) < 0 && errno == EINTR)
		;
	if (c == 'F') {
		size_t n = 0;
		char ch;
		while (n + 1 < sizeof why && read(ctrl_fd, &ch, 1) == 1 && ch != '\n')
			why[n++] = ch;
		why[n] = 0;
	}
	if (!barrier(c == 'B', c == 'F' ? why : "ipcrun is gone")) {
		MPI_Finalize();
		return 2;
	}
	say("G");
	fcntl(ctrl_fd, F_SETFL, O_NONBLOCK);
	run_bridge();
	ipc_tls_close(tls);
	ipc_buffer_close(b, false);
	finish();
	return 0;
}

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
 * Then one thread loops over every bridged edge (net_edge.c) without ever
 * blocking inside MPI: non-blocking ipc_record_recv / ipc_record_send on the
 * local channels, MPI_Isend / pre-posted MPI_Irecv tested with MPI_Test.
 * While bytes move it polls again at once (MPI progresses only inside MPI
 * calls); after ~50 us without progress it sleeps (net_wait.c) until one of
 * MPI's sockets is readable, a watcher thread takes a record from a tx
 * edge's channel (futex), or ipcrun writes: no timer wake-ups while idle
 * but the hello every second (measured: an idle bridge ~0.05 % of a core,
 * 1 or 4 edges; a blocked MPI_Recv would take all of one). Where MPI's
 * transport has no sockets it polls every 1 ms instead.
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
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <ipc/buffer.h>

#include "net_mpi.h"

struct ir_bridge ir_br;

static int status_fd = -1, ctrl_fd = -1;
static uint64_t next_hello;
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

uint64_t ir_bridge_now_ns(void)
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
void ir_bridge_fatal(const char *fmt, ...)
{
	char buf[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "ipcrun: host '%s' (rank %d): %s; aborting the job\n",
	        ir_br.host[ir_br.rank], ir_br.rank, buf);
	say("E %s", buf);
	MPI_Abort(MPI_COMM_WORLD, 1);
	_exit(1);
}

bool ir_bridge_test(MPI_Request *r)
{
	if (*r == MPI_REQUEST_NULL)
		return true;
	int done = 0;
	MPI_Test(r, &done, MPI_STATUS_IGNORE);
	return done;
}

/* Send a 32-byte control frame from one of the edge's slots; false when
 * every slot is still busy (try again later). */
bool ir_bridge_send_ctl(struct ctl_slot *slots, size_t n, int peer, int tag,
                     const struct ir_frame_hdr *h)
{
	for (size_t i = 0; i < n; i++) {
		if (!ir_bridge_test(&slots[i].req))
			continue;
		ir_frame_put_hdr(slots[i].buf, h);
		MPI_Isend(slots[i].buf, IR_FRAME_HDR, MPI_BYTE, peer, tag,
		          MPI_COMM_WORLD, &slots[i].req);
		return true;
	}
	return false;
}

/* ---- hosts: STOP and HELLO ---- */

static void broadcast(uint8_t type, uint16_t flags)
{
	struct ir_frame_hdr h = {.version = IR_FRAME_VERSION, .type = type,
	                         .flags = flags};
	for (int p = 0; p < ir_br.nranks; p++)
		if (p != ir_br.rank)
			ir_bridge_send_ctl(&hello_out[(size_t)p * CTL_SLOTS], CTL_SLOTS, p, TAG_CTRL, &h);
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
		ir_br.mpi_events++;
		struct ir_frame_hdr h;
		const char *why = NULL;
		int n = 0;
		MPI_Get_count(&st, MPI_BYTE, &n);
		if (st.MPI_SOURCE < 0 || st.MPI_SOURCE >= ir_br.nranks ||
		    ir_frame_parse(hello_in, (size_t)n, ir_br.nidx, ir_br.max_record, &h, &why) ||
		    (h.type != IR_FRAME_STOP && h.type != IR_FRAME_HELLO))
			ir_bridge_fatal("bad control frame from rank %d: %s", st.MPI_SOURCE,
			      why ? why : "not STOP or HELLO");
		ir_br.last_seen[st.MPI_SOURCE] = ir_bridge_now_ns();
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
		ir_bridge_fatal("ipcrun is gone");
	uint64_t now = ir_bridge_now_ns();
	if (now >= next_hello) {
		broadcast(IR_FRAME_HELLO, 0);
		next_hello = now + HELLO_NS;
	}
	for (int p = 0; p < ir_br.nranks; p++)
		if (p != ir_br.rank && now - ir_br.last_seen[p] > timeout_ns)
			ir_bridge_fatal("host '%s' (rank %d) silent for %.1f s", ir_br.host[p], p,
			      (double)(now - ir_br.last_seen[p]) / 1e9);
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
	if (env && atoi(env) == ir_br.rank)
		v->magic = __builtin_bswap32(v->magic);
	snprintf(v->why, sizeof v->why, "%s", why ? why : "");
}

/* true when every host may go. */
static bool barrier(bool ok, const char *why)
{
	struct verdict mine, *all = calloc((size_t)ir_br.nranks, sizeof *all);
	if (!all)
		return false;
	my_verdict(&mine, ok, why);
	MPI_Request r;
	MPI_Iallgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE,
	               MPI_COMM_WORLD, &r);
	uint64_t sleep_ns = 1000;
	while (!ir_bridge_test(&r)) {
		struct timespec ts = {0, (long)sleep_ns};
		nanosleep(&ts, NULL);
		if (sleep_ns < SLEEP_MAX_NS)
			sleep_ns *= 2;
	}
	bool go = true;
	char msg[400] = "";
	for (int p = 0; p < ir_br.nranks; p++) {
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
		if (p == ir_br.rank && v->ok)
			continue;
		if (!msg[0])
			snprintf(msg, sizeof msg, "host '%s' (rank %d): %.*s", ir_br.host[p], p,
			         300, what);
		if (p == ir_br.rank)
			fprintf(stderr, "ipcrun: host '%s' (rank %d) cannot start: %s; "
			        "nothing was started on any host\n", ir_br.host[p], p, what);
		else
			fprintf(stderr, "ipcrun: host '%s' (rank %d): host '%s' (rank %d) "
			        "cannot start: %s; nothing was started on any host\n",
			        ir_br.host[ir_br.rank], ir_br.rank, ir_br.host[p], p, what);
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
	    window == 0 || window > 1024 || (int)peer >= ir_br.nranks || (int)peer == ir_br.rank)
		return -1;
	*e = (struct edge){.tx = kind, .idx = idx, .chan = chan, .peer = (int)peer,
	                   .window = window, .capacity = capacity, .name = spec + off,
	                   .back_req = MPI_REQUEST_NULL};
	e->buf = calloc(window, sizeof *e->buf);
	/* req and breq side by side: tx tests them with one MPI_Testsome */
	e->req = calloc(2 * (size_t)window, sizeof *e->req);
	e->breq = e->req ? e->req + window : NULL;
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
	if (idx + 1 > ir_br.nidx)
		ir_br.nidx = idx + 1;
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
	if (r != ir_br.rank || n != ir_br.nranks) {
		fprintf(stderr, "ipcrun-net: MPI says rank %d of %d, the launcher's "
		        "environment said %d of %d\n", r, n, ir_br.rank, ir_br.nranks);
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
	int *all = calloc((size_t)ir_br.nranks, sizeof *all);
	if (!all)
		ir_bridge_fatal("out of memory");
	MPI_Iallgather(&final_failed, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD, &r);
	idle_until(&r, ir_bridge_test);
	for (int p = 0; p < ir_br.nranks; p++)
		if (p != ir_br.rank && all[p])
			say("S 1 %d", p);
	free(all);
	cancel(&hello_req);
	for (size_t i = 0; i < (size_t)ir_br.nranks * CTL_SLOTS; i++)
		MPI_Wait(&hello_out[i].req, MPI_STATUS_IGNORE);
	for (size_t i = 0; i < ir_br.nedge; i++)
		for (int j = 0; j < CTL_SLOTS; j++)
			MPI_Wait(&ir_br.edges[i].ctl[j].req, MPI_STATUS_IGNORE);
	MPI_Finalize();
}

static int run_bridge(void)
{
	for (size_t i = 0; i < ir_br.nedge; i++) {
		struct edge *e = &ir_br.edges[i];
		if (e->tx == 't')
			MPI_Irecv(e->back, IR_FRAME_HDR, MPI_BYTE, e->peer,
			          TAG_BACK(e->idx), MPI_COMM_WORLD, &e->back_req);
		else
			for (uint32_t s = 0; s < e->window; s++)
				ir_bridge_rx_post(e, s);
	}
	MPI_Irecv(hello_in, IR_FRAME_HDR, MPI_BYTE, MPI_ANY_SOURCE, TAG_CTRL,
	          MPI_COMM_WORLD, &hello_req);
	uint64_t t = ir_bridge_now_ns(), idle_since = t, sleep_ns = 1000;
	for (int p = 0; p < ir_br.nranks; p++)
		ir_br.last_seen[p] = t;
	/* each host's hellos in their own phase: a sleep that ends as its
	 * own hello is due then never meets a peer's (net_wait.c learns from
	 * what wakes the bridge whether MPI's sockets announce arrivals) */
	next_hello = t + HELLO_NS / 2 + HELLO_NS / 2 * (uint64_t)ir_br.rank / (uint64_t)ir_br.nranks;
	uint64_t next_hosts = 0;
	enum ir_wake woke = IR_WAKE_LOCAL;
	bool after_sleep = false;
	uint64_t events = 0;
	unsigned unsure = 0;
	bool was_busy = false;
	if (ir_wait_start())
		ir_bridge_fatal("cannot start the watcher threads");
	for (;;) {
		/* stop, hello and silence between hosts need no sub-millisecond
		 * care: looked at every HOSTS_NS while busy, after every sleep */
		bool progress = ir_wait_collect(), open = false, busy = false, quiet = true;
		uint64_t now = ir_bridge_now_ns();
		/* a pass that may end in a sleep: did MPI read during it? (not
		 * while a transfer is under way: that pass only yields) */
		bool last = !was_busy && now - idle_since >= SPIN_NS;
		uint64_t reads = last ? ir_wait_reads() : 0;
		if (now >= next_hosts || after_sleep || last) {
			progress |= hosts_step();
			next_hosts = now + HOSTS_NS;
		}
		for (size_t i = 0; i < ir_br.nedge; i++) {
			struct edge *e = &ir_br.edges[i];
			progress |= e->tx == 't' ? ir_bridge_tx_step(e) : ir_bridge_rx_step(e);
			open |= e->state != E_DONE;
			busy |= ir_bridge_in_flight(e);
			quiet &= !ir_bridge_stalled(e);
		}
		after_sleep = false;
		if (!open)
			break;
		for (size_t i = 0; i < (size_t)ir_br.nranks * CTL_SLOTS && !busy; i++)
			busy = !ir_bridge_test(&hello_out[i].req);
		was_busy = busy;
		if (progress) {
			idle_since = ir_bridge_now_ns();
			sleep_ns = 1000;
			continue;
		}
		if (busy || !last) {
			/* MPI moves bytes only inside MPI calls: while a transfer is
			 * under way, poll again at once (yielding the core) */
			sched_yield();
			continue;
		}
		if (ir_wait_reads() != reads && ++unsure < 64)
			continue; /* what MPI read may have completed a request
			             this pass had looked at already (net_wait.c) */
		unsure = 0;
		/* what the last wake-up brought: were MPI's sockets right? */
		ir_wait_account(woke, ir_br.mpi_events != events);
		woke = IR_WAKE_LOCAL;
		/* idle (net_wait.c): the tx edges' channels go to their
		 * watchers; then sleep until a socket of MPI, a watcher or
		 * ipcrun wakes us, or the next hello is due. Only while MPI's
		 * sockets are not known to announce what comes, or something
		 * local holds an rx edge up (a full channel), poll instead,
		 * backing off up to SLEEP_MAX_NS. */
		ir_wait_lend();
		uint64_t nap = sleep_ns;
		now = ir_bridge_now_ns();
		if (quiet && ir_wait_trusted())
			nap = next_hello > now + SLEEP_MAX_NS ? next_hello - now : SLEEP_MAX_NS;
		else if (sleep_ns < SLEEP_MAX_NS)
			sleep_ns *= 2;
		woke = ir_wait_sleep(nap);
		events = ir_br.mpi_events;
		after_sleep = true;
	}
	ir_wait_stop();
	/* the last sends: BIG payloads still read their records */
	for (size_t i = 0; i < ir_br.nedge; i++) {
		struct edge *e = &ir_br.edges[i];
		for (uint32_t s = 0; e->tx == 't' && s < e->window; s++) {
			while (!ir_bridge_test(&e->req[s]) || !ir_bridge_test(&e->breq[s]))
				hosts_step();
			if (e->big[s])
				ipc_record_free(ir_br.tls, e->big[s]);
			e->big[s] = NULL;
		}
		if (e->held)
			ipc_record_free(ir_br.tls, e->held);
		e->held = NULL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "fail") == 0) {
		ir_br.rank = atoi(argv[2]);
		ir_br.host = split_hosts(argv[3], &ir_br.nranks);
		if (ir_br.rank < 0 || ir_br.rank >= ir_br.nranks || init_mpi(&argc, &argv))
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
	ctrl_fd = ir_br.ctrl_fd = atoi(argv[5]);
	status_fd = atoi(argv[6]);
	ir_br.rank = atoi(argv[7]);
	ir_br.host = split_hosts(argv[8], &ir_br.nranks);
	timeout_ns = strtoull(argv[9], NULL, 10) * 1000000ull;
	if (ir_br.rank < 0 || ir_br.rank >= ir_br.nranks || !timeout_ns) {
		say("F bad arguments");
		return 2;
	}
	ir_br.nedge = (size_t)(argc - 10);
	ir_br.edges = calloc(ir_br.nedge + 1, sizeof *ir_br.edges);
	ir_br.last_seen = calloc((size_t)ir_br.nranks, sizeof *ir_br.last_seen);
	hello_out = calloc((size_t)ir_br.nranks * CTL_SLOTS, sizeof *hello_out);
	if (!ir_br.edges || !ir_br.last_seen || !hello_out)
		return 1;
	for (size_t i = 0; i < (size_t)ir_br.nranks * CTL_SLOTS; i++)
		hello_out[i].req = MPI_REQUEST_NULL;
	for (size_t i = 0; i < ir_br.nedge; i++)
		if (parse_edge(argv[10 + i], &ir_br.edges[i])) {
			say("F bad edge '%s'", argv[10 + i]);
			return 2;
		}
	const char *spoil = getenv("IPCRUN_NET_TEST_CORRUPT");
	ir_br.corrupt = spoil && *spoil && atoi(spoil) == ir_br.rank;
	struct ipc_buffer *b = ipc_buffer_open(handle, &bo);
	if (!b) {
		say("F cannot open the buffer %s: %s", handle, strerror(errno));
		return 1;
	}
	struct ipc_buffer_stats bs;
	ipc_buffer_stats(b, &bs);
	ir_br.max_record = bs.size / 4;
	ir_br.tls = ipc_tls_open(b, -1);
	if (!ir_br.tls) {
		say("F cannot open a thread slot: %s", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < ir_br.nedge; i++) {
		/* the bridge's ends sleep at once when they wait (the watchers,
		 * net_wait.c): it never spins in libipc. A tx edge's end has a
		 * thread slot of its own, lent to its watcher while idle. */
		struct edge *e = &ir_br.edges[i];
		struct ipc_channel_opts co = {.capacity = e->capacity,
		                              .wait = IPC_WAIT_BLOCK};
		e->tls = e->tx == 't' ? ipc_tls_open(b, -1) : ir_br.tls;
		if (!e->tls) {
			say("F cannot open a thread slot: %s", strerror(errno));
			return 1;
		}
		int rc = ipc_channel_add_opts(e->tls, e->chan, e->tx == 't' ?
		                              IPC_CONSUMER : IPC_PRODUCER, &co);
		if (rc < 0) {
			say("F cannot attach edge %s: %s", e->name, ipc_strerror(rc));
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
	for (size_t i = 0; i < ir_br.nedge; i++)
		if (ir_br.edges[i].tls != ir_br.tls)
			ipc_tls_close(ir_br.edges[i].tls);
	ipc_tls_close(ir_br.tls);
	ipc_buffer_close(b, false);
	finish();
	return 0;
}

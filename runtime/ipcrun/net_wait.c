/*
 * How ipcrun-net sleeps while no record moves (issue 13: an idle bridged
 * edge costs at most 1 % of a core, and the first record after an idle
 * spell arrives within raw MPI ping-pong + 1 ms).
 *
 * Polling cannot meet both: measured on this project's 2-vCPU VM, a timer
 * wake-up alone (clock_nanosleep, no work) costs ~17 us of CPU and an
 * MPI_Test under mpi_yield_when_idle ~20 us more, so a poll every 1 ms (the
 * latency bound) is 2-4 % of a core per bridge, whatever else it does. So
 * the bridge sleeps on events instead, and never inside MPI:
 *   - MPI's sockets (the TCP transport's, found in /proc/self/fd): a frame,
 *     credit or hello that comes makes one readable. The bridge only polls
 *     them, never reads them, then lets MPI progress with MPI_Test;
 *   - ipcrun's control pipe;
 *   - an eventfd written by the watcher thread of a tx edge: while the
 *     bridge sleeps, the local channel of each tx edge is lent to a thread
 *     that sleeps in the channel's futex (ipc_record_recv_wait) and gives
 *     it back with the first record, or the end, it takes. The watchers
 *     never call MPI (MPI_THREAD_FUNNELED holds).
 * That sockets announce what comes is learnt, not assumed: a frame that MPI
 * delivered without reading anything (shared memory between ranks of one
 * node, InfiniBand verbs: transports without a file descriptor) makes the
 * bridge poll every millisecond as before, and so it does until it has
 * seen TRUST arrivals read off a socket (hellos come every second). A socket that wakes the bridge with
 * nothing for MPI (a peer that closed) is left out for a second.
 *
 * Everything here but watch() runs on the bridge's main thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "net_mpi.h"

#define WATCH_MS 1000                /* a watcher looks at close_req this often */
#define MAX_POLL 256                 /* sockets polled at most */
#define MUTE_FDS 1024                /* fds below this can be left out */
#define MUTE_NS 1000000000ull        /* ... for this long */
#define RESCAN_NS 100000000ull       /* look for new sockets this often */
#define TRUST 2                      /* announced arrivals before long sleeps */

static int evfd = -1;
static struct pollfd pfd[MAX_POLL + 2]; /* [0] eventfd, [1] ctrl, sockets */
static nfds_t npfd;
static uint64_t last_scan;
static bool rescan_due = true;
static int score;                    /* arrivals read off a socket, minus 4 x not */
static uint64_t mute_until[MUTE_FDS];
static bool any_muted;
static uint64_t woke_reads;          /* ir_wait_reads() as the sleep ended */
static _Atomic bool quit;

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *watch(void *arg)
{
	struct edge *e = arg;
	for (;;) {
		while (atomic_load_explicit(&e->watched, memory_order_acquire) == 0) {
			if (atomic_load_explicit(&quit, memory_order_acquire))
				return NULL;
			syscall(SYS_futex, (uint32_t *)&e->watched, FUTEX_WAIT_PRIVATE, 0,
			        NULL, NULL, 0);
		}
		void *rec = NULL;
		int rc;
		do
			rc = ipc_record_recv_wait(e->tls, e->chan, &rec, WATCH_MS);
		while (rc == IPC_TX_RETRY &&
		       !atomic_load_explicit(&e->close_req, memory_order_acquire) &&
		       !atomic_load_explicit(&quit, memory_order_acquire));
		if (atomic_load_explicit(&e->close_req, memory_order_acquire)) {
			/* the remote consumer left: so does ours (-EPIPE upstream) */
			if (rc == 0)
				ipc_record_free(e->tls, rec);
			rec = NULL;
			rc = 0;
			ipc_channel_close(e->tls, e->chan);
			e->closed_local = true;
		}
		e->held = rc == 0 ? rec : NULL;
		e->held_rc = rc == IPC_TX_RETRY ? 0 : rc;
		atomic_store_explicit(&e->watched, 0, memory_order_release);
		uint64_t one = 1;
		ssize_t w;
		do
			w = write(evfd, &one, sizeof one);
		while (w < 0 && errno == EINTR);
	}
}

int ir_wait_start(void)
{
	evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (evfd < 0)
		return -errno;
	/* signals are the main thread's */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = 0;
	for (size_t i = 0; i < ir_br.nedge && !rc; i++) {
		struct edge *e = &ir_br.edges[i];
		if (e->tx != 't')
			continue;
		rc = -pthread_create(&e->watcher, NULL, watch, e);
		e->has_watcher = rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

void ir_wait_stop(void)
{
	atomic_store_explicit(&quit, true, memory_order_release);
	for (size_t i = 0; i < ir_br.nedge; i++) {
		struct edge *e = &ir_br.edges[i];
		if (!e->has_watcher)
			continue;
		futex_wake(&e->watched);
		pthread_join(e->watcher, NULL);
		e->has_watcher = false;
	}
	if (evfd >= 0)
		close(evfd);
	evfd = -1;
}

bool ir_wait_collect(void)
{
	bool any = false;
	for (size_t i = 0; i < ir_br.nedge; i++) {
		struct edge *e = &ir_br.edges[i];
		if (!e->lent || atomic_load_explicit(&e->watched, memory_order_acquire))
			continue;
		/* held, held_rc and closed_local are ours again */
		e->lent = false;
		any = true;
		if (e->consumer_gone && !e->closed_local)
			ir_bridge_tx_close(e);
	}
	return any;
}

void ir_wait_lend(void)
{
	for (size_t i = 0; i < ir_br.nedge; i++) {
		struct edge *e = &ir_br.edges[i];
		if (!e->has_watcher || e->lent || e->state != E_OPEN || e->held ||
		    e->held_rc || e->consumer_gone || e->nframes - e->credited >= e->window)
			continue;
		e->lent = true;
		atomic_store_explicit(&e->watched, 1, memory_order_release);
		futex_wake(&e->watched);
	}
}

/* The sockets of this process (MPI's: the bridge opens none), but those
 * left out for now. */
static void scan(uint64_t now)
{
	last_scan = now;
	rescan_due = false;
	any_muted = false;
	pfd[0] = (struct pollfd){.fd = evfd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = ir_br.ctrl_fd, .events = POLLIN};
	npfd = 2;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d)) && npfd < MAX_POLL + 2) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		struct stat st;
		if (*end || end == de->d_name || fd == self || fd == ir_br.ctrl_fd ||
		    fstat((int)fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		if (fd < MUTE_FDS && mute_until[fd] > now) {
			any_muted = true;
			continue;
		}
		pfd[npfd++] = (struct pollfd){.fd = (int)fd, .events = POLLIN};
	}
	closedir(d);
}

enum ir_wake ir_wait_sleep(uint64_t timeout_ns)
{
	uint64_t now = ir_bridge_now_ns();
	if (rescan_due || now - last_scan > RESCAN_NS || npfd == 0)
		scan(now);
	if (any_muted && timeout_ns > SLEEP_MAX_NS)
		timeout_ns = SLEEP_MAX_NS; /* what a muted socket brings waits less */
	struct timespec ts = {(time_t)(timeout_ns / 1000000000u),
	                      (long)(timeout_ns % 1000000000u)};
	int n = ppoll(pfd, npfd, &ts, NULL);
	if (n > 0 && pfd[0].revents) {
		uint64_t v;
		if (read(evfd, &v, sizeof v) < 0 && errno != EAGAIN)
			ir_bridge_fatal("eventfd: %s", strerror(errno));
	}
	woke_reads = ir_wait_reads(); /* what MPI reads from here on */
	if (n <= 0)
		return IR_WAKE_TIMEOUT;
	enum ir_wake w = IR_WAKE_LOCAL;
	for (nfds_t i = 2; i < npfd; i++)
		if (pfd[i].revents)
			w = IR_WAKE_MPI;
	if (w == IR_WAKE_MPI)
		rescan_due = true; /* an accepted connection brings a socket */
	return w;
}

void ir_wait_account(enum ir_wake w, bool mpi_progress)
{
	/* MPI completed a receive since the wake: if it read a socket to do
	 * so, its transport has file descriptors that announce arrivals
	 * (whether or not this wake was theirs: timeouts and arrivals can
	 * fall together); if it read nothing, it has none to poll */
	bool read = ir_wait_reads() != woke_reads;
	if (mpi_progress && read) {
		if (score < 8)
			score++;
	} else if (mpi_progress) {
		score -= 4;
		if (score < -8)
			score = -8;
	} else if (w == IR_WAKE_MPI && !read) {
		/* readable, yet nothing for MPI: a closed peer, or traffic of
		 * Open MPI's own threads; left out for a while */
		uint64_t until = ir_bridge_now_ns() + MUTE_NS;
		for (nfds_t i = 2; i < npfd; i++)
			if (pfd[i].revents && pfd[i].fd < MUTE_FDS)
				mute_until[pfd[i].fd] = until;
		rescan_due = true;
	}
}

/* Bytes this thread has read (rchar of /proc/thread-self/io) but for its
 * reads of that file, or 0. */
uint64_t ir_wait_reads(void)
{
	static int fd = -2;
	static uint64_t own;
	if (fd == -2)
		fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
	char buf[256];
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *p = strstr(buf, "rchar:");
	uint64_t r = p ? strtoull(p + 6, NULL, 10) - own : 0;
	own += (uint64_t)n; /* counted from now on */
	return r;
}

bool ir_wait_trusted(void)
{
	return score >= TRUST;
}

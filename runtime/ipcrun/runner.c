/*
 * A kernel process. Forked by the supervisor (run.c) with two pipes:
 *
 *   ctrl   (read)   'G' go, 'S' stop (ipc_stopping() turns true),
 *                   'Q' quit before starting; end of file: ipcrun is gone
 *   status (write)  one text line per event, each a single write() shorter
 *                   than PIPE_BUF so lines from several threads never mix:
 *                     R                    every kernel attached its ports
 *                     F <text>             the process could not start
 *                     E <k> <text>         kernel k could not attach
 *                     P <k> <i> <records> <bytes> <blocked_ns> <hwm>
 *                     K <k> <rc> <cpu_ns>  kernel k returned rc
 *                     X <k> <signo>        kernel k's thread took signo
 *
 * The process opens the buffer itself (nothing of the parent's struct is
 * used after fork), runs one thread per kernel, and exits with _exit().
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "ipcrun.h"

struct runner;

struct kthread {
	struct runner *rn;
	size_t kidx;
	struct ipc_kernel k;
	pthread_t th;
	bool started;
};

struct runner {
	struct ir_run *r;
	size_t proc;
	struct ipc_buffer *b;
	ipc_a32 stop;
	int ctrl, status;
	int wake[2];              /* kernel threads -> main thread: one byte each */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t nattached, nfailed;
	int go;                   /* 0 waiting, 1 go, -1 quit */
	struct kthread *kt;
	size_t nk;
};

static int status_fd = -1;
static _Thread_local long cur_kernel = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t w;
	do
		w = write(status_fd, buf, (size_t)n);
	while (w < 0 && errno == EINTR);
}

/* Async-signal-safe: tell ipcrun which kernel crashed, then die of it. */
static void on_crash(int sig)
{
	long k = cur_kernel;
	if (k >= 0 && status_fd >= 0) {
		char buf[48], tmp[24] = {0};
		size_t n = 0, t = 0;
		buf[n++] = 'X';
		buf[n++] = ' ';
		unsigned long v = (unsigned long)k;
		do
			tmp[t++] = (char)('0' + v % 10);
		while ((v /= 10));
		while (t)
			buf[n++] = tmp[--t];
		buf[n++] = ' ';
		v = (unsigned long)sig;
		do
			tmp[t++] = (char)('0' + v % 10);
		while ((v /= 10));
		while (t)
			buf[n++] = tmp[--t];
		buf[n++] = '\n';
		ssize_t w = write(status_fd, buf, n);
		(void)w;
	}
	/* SA_RESETHAND restored the default action: die of the same signal */
	raise(sig);
}

static void install_crash_handlers(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
	                           SIGTRAP, SIGSYS};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int attach(struct kthread *kt)
{
	struct runner *rn = kt->rn;
	const struct ir_graph *g = rn->r->g;
	const struct ir_kernel *gk = &g->kernel[kt->kidx];
	struct ipc_kernel *k = &kt->k;
	k->tls = ipc_tls_open(rn->b, (int32_t)kt->kidx);
	if (!k->tls) {
		say("E %zu cannot open a thread slot in the buffer: %s", kt->kidx,
		    strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < gk->nport; i++) {
		const struct ir_conn *c = &g->conn[gk->port[i].conn];
		struct ipc_channel_opts co = {.capacity = c->capacity, .wait = c->wait};
		int rc = ipc_channel_add_opts(k->tls, c->id, gk->port[i].out ?
		                              IPC_PRODUCER : IPC_CONSUMER, &co);
		if (rc < 0) {
			say("E %zu cannot attach port %s (channel %llu, %s.%s -> %s.%s): %s",
			    kt->kidx, gk->port[i].name, (unsigned long long)c->id, c->fk,
			    c->fp, c->tk, c->tp, ipc_strerror(rc));
			for (size_t j = 0; j < i; j++)
				ipc_channel_close(k->tls, k->port[j].id);
			ipc_tls_close(k->tls);
			k->tls = NULL;
			return -1;
		}
	}
	return 0;
}

static void *kthread_main(void *arg)
{
	struct kthread *kt = arg;
	struct runner *rn = kt->rn;
	const struct ir_graph *g = rn->r->g;
	const struct ir_kernel *gk = &g->kernel[kt->kidx];
	cur_kernel = (long)kt->kidx;

	stack_t ss = {.ss_size = 64 * 1024};
	ss.ss_sp = malloc(ss.ss_size);
	if (ss.ss_sp)
		sigaltstack(&ss, NULL);

	int ok = attach(kt);
	pthread_mutex_lock(&rn->mu);
	if (ok == 0)
		rn->nattached++;
	else
		rn->nfailed++;
	pthread_cond_broadcast(&rn->cv);
	while (rn->go == 0)
		pthread_cond_wait(&rn->cv, &rn->mu);
	int go = rn->go;
	pthread_mutex_unlock(&rn->mu);

	if (ok == 0) {
		int rc = 0;
		if (go > 0)
			rc = gk->func ? ir_call_function(gk, &kt->k)
			              : ir_call_actor(gk, &kt->k);
		/* what it emitted goes out first (EOF flushes) */
		if (go > 0)
			ipc__kernel_finish(&kt->k);
		/* a kernel's return closes its outputs (EOF downstream; a failed
		 * kernel's are aborted instead, so that downstream does not take
		 * a partial stream for a whole one) and its inputs (-EPIPE
		 * upstream) */
		for (size_t i = 0; i < kt->k.nin + kt->k.nout; i++) {
			if (rc != 0 && kt->k.port[i].out)
				ipc_channel_abort(kt->k.tls, kt->k.port[i].id);
			else
				ipc_channel_close(kt->k.tls, kt->k.port[i].id);
		}
		ipc_tls_close(kt->k.tls);
		kt->k.tls = NULL;
		if (go > 0) {
			for (size_t i = 0; i < gk->nport; i++) {
				const struct ipc__port_stats *s = &kt->k.port[i].st;
				say("P %zu %zu %llu %llu %llu %llu", kt->kidx, i,
				    (unsigned long long)s->records,
				    (unsigned long long)s->bytes,
				    (unsigned long long)s->blocked_ns,
				    (unsigned long long)s->hwm);
			}
			say("K %zu %d %llu", kt->kidx, rc,
			    (unsigned long long)thread_cpu_ns());
		}
	}
	cur_kernel = -1;
	if (ss.ss_sp) {
		stack_t off = {.ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
		free(ss.ss_sp);
	}
	char c = 'x';
	ssize_t w;
	do
		w = write(rn->wake[1], &c, 1);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void set_go(struct runner *rn, int go)
{
	pthread_mutex_lock(&rn->mu);
	rn->go = go;
	pthread_cond_broadcast(&rn->cv);
	pthread_mutex_unlock(&rn->mu);
}

/* Read one control byte; 0 at end of file (ipcrun is gone). */
static char read_ctrl(int fd)
{
	char c;
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? c : 0;
}

static void build_kernels(struct runner *rn)
{
	const struct ir_graph *g = rn->r->g;
	rn->kt = calloc(g->proc[rn->proc].nkernel, sizeof *rn->kt);
	if (!rn->kt) {
		say("F out of memory");
		_exit(IR_EXIT_FAILED);
	}
	for (size_t i = 0; i < g->nkernel; i++) {
		const struct ir_kernel *gk = &g->kernel[i];
		if (gk->proc != rn->proc)
			continue;
		struct kthread *kt = &rn->kt[rn->nk++];
		kt->rn = rn;
		kt->kidx = i;
		kt->k.name = gk->name;
		kt->k.stop = &rn->stop;
		kt->k.linger_ns = g->linger_ns;
		kt->k.nin = gk->nin;
		kt->k.nout = gk->nport - gk->nin;
		kt->k.port = calloc(gk->nport ? gk->nport : 1, sizeof *kt->k.port);
		if (!kt->k.port) {
			say("F out of memory");
			_exit(IR_EXIT_FAILED);
		}
		for (size_t j = 0; j < gk->nport; j++) {
			const struct ir_conn *c = &g->conn[gk->port[j].conn];
			kt->k.port[j] = (struct ipc_port){
				.k = &kt->k, .name = gk->port[j].name, .id = c->id,
				.out = gk->port[j].out, .capacity = c->capacity,
				.batch = c->batch};
		}
	}
}

void ir_runner_main(struct ir_run *r, size_t proc, int ctrl, int status)
{
	/* die with ipcrun; and if it is already gone, do not start at all */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != r->parent)
		_exit(IR_EXIT_FAILED);
	status_fd = status;
	signal(SIGINT, SIG_IGN); /* Ctrl-C reaches the whole group: ipcrun decides */
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setenv("IPCRUN_HANDLE", r->handle, 1);
	char comm[16];
	snprintf(comm, sizeof comm, "ipcrun:%s", r->g->proc[proc].name);
	prctl(PR_SET_NAME, comm);
	install_crash_handlers();

	struct runner rn = {.r = r, .proc = proc, .ctrl = ctrl, .status = status};
	pthread_mutex_init(&rn.mu, NULL);
	pthread_cond_init(&rn.cv, NULL);
	if (pipe(rn.wake)) {
		say("F pipe: %s", strerror(errno));
		_exit(IR_EXIT_FAILED);
	}
	rn.b = ipc_buffer_open(r->handle, &r->bopts);
	if (!rn.b) {
		say("F cannot open the buffer %s: %s", r->handle, strerror(errno));
		_exit(IR_EXIT_FAILED);
	}
	build_kernels(&rn);
	size_t started = 0;
	for (size_t i = 0; i < rn.nk; i++) {
		int rc = pthread_create(&rn.kt[i].th, NULL, kthread_main, &rn.kt[i]);
		if (rc) {
			say("F cannot start a thread for kernel %s: %s",
			    rn.kt[i].k.name, strerror(rc));
			break;
		}
		rn.kt[i].started = true;
		started++;
	}
	pthread_mutex_lock(&rn.mu);
	while (rn.nattached + rn.nfailed < started)
		pthread_cond_wait(&rn.cv, &rn.mu);
	bool ready = started == rn.nk && rn.nfailed == 0;
	pthread_mutex_unlock(&rn.mu);
	if (ready)
		say("R");
	else if (started == rn.nk)
		say("F some kernels could not attach their ports");

	/* wait for go; a stop before go means quit */
	char c = read_ctrl(ctrl);
	set_go(&rn, ready && c == 'G' ? 1 : -1);

	size_t done = 0;
	while (done < started) {
		struct pollfd pf[2] = {{.fd = rn.wake[0], .events = POLLIN},
		                       {.fd = ctrl, .events = POLLIN}};
		if (poll(pf, ctrl >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (pf[0].revents) {
			char buf[64];
			ssize_t n = read(rn.wake[0], buf, sizeof buf);
			if (n > 0)
				done += (size_t)n;
		}
		if (ctrl >= 0 && pf[1].revents) {
			c = read_ctrl(ctrl);
			if (c == 'S' || c == 'Q') {
				/* pairs with ipc_stopping()'s load_acquire */
				ipc__store_release(&rn.stop, 1);
			} else if (c == 0) {
				_exit(IR_EXIT_FAILED); /* ipcrun died: so do we */
			}
		}
	}
	for (size_t i = 0; i < rn.nk; i++)
		if (rn.kt[i].started)
			pthread_join(rn.kt[i].th, NULL);
	fflush(NULL); /* what kernels printed: _exit does not flush stdio */
	ipc_buffer_close(rn.b, false);
	_exit(ready ? 0 : IR_EXIT_FAILED);
}

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
 *                     K <k> <rc> <cpu_ns> <peer> <t>
 *                                          kernel k returned rc at monotonic
 *                                          time t; peer 1: one of its ports
 *                                          ended because its peer died or
 *                                          failed (its failure is a consequence)
 *                     X <k> <signo> <addr> <has_addr> <t> <where>
 *                                          kernel k's thread took signo
 *
 * The process opens the buffer itself (nothing of the parent's struct is
 * used after fork), runs one thread per kernel, and exits with _exit().
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "ipcrun.h"
#include "status.h"

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
	struct ipc_tls *seg_tls;  /* the main thread's, for the counters segment */
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

/* ---- crash reports: async-signal-safe text ------------------------------ */

static const struct ir_graph *crash_g;   /* set before any kernel runs */
static const char *crash_proc;

struct sbuf {
	char b[480];
	size_t n;
};

static void sb_str(struct sbuf *s, const char *t)
{
	while (t && *t && s->n < sizeof s->b - 1)
		s->b[s->n++] = *t++;
}

static void sb_num(struct sbuf *s, unsigned long long v, unsigned base)
{
	char tmp[24];
	size_t t = 0;
	do
		tmp[t++] = "0123456789abcdef"[v % base];
	while ((v /= base));
	if (base == 16)
		sb_str(s, "0x");
	while (t && s->n < sizeof s->b - 1)
		s->b[s->n++] = tmp[--t];
}

static void sb_write(int fd, struct sbuf *s)
{
	s->b[s->n++] = '\n';
	ssize_t w;
	do
		w = write(fd, s->b, s->n);
	while (w < 0 && errno == EINTR);
	s->n = 0;
}

static void sb_sym(struct sbuf *s, void *pc)
{
	Dl_info di;
	if (dladdr(pc, &di) && di.dli_sname) {
		sb_str(s, di.dli_sname);
		sb_str(s, "+");
		sb_num(s, (unsigned long long)((char *)pc - (char *)di.dli_saddr), 16);
	} else {
		sb_str(s, "??");
	}
	if (di.dli_fname && di.dli_fname[0]) {
		const char *base = strrchr(di.dli_fname, '/');
		sb_str(s, " (");
		sb_str(s, base ? base + 1 : di.dli_fname);
		if (di.dli_fbase) {
			sb_str(s, "+");
			sb_num(s, (unsigned long long)((char *)pc - (char *)di.dli_fbase), 16);
		}
		sb_str(s, ")");
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Where the fault happened: the interrupted program counter. */
static void *fault_pc(void *uctx)
{
	ucontext_t *uc = uctx;
	if (!uc)
		return NULL;
#if defined(__x86_64__)
	return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (void *)uc->uc_mcontext.pc;
#else
	return NULL;
#endif
}

/*
 * Async-signal-safe in practice (dladdr reads the loader's tables; it could
 * only block if the fault hit inside dlopen): the crashing process writes
 * its own report on stderr before it dies, so that it is the first line of
 * the failure whatever its neighbours print once they see the death, and
 * tells ipcrun on the status pipe:
 *   X <k> <signo> <fault address> <mono ns> <function+off (library+off)>
 * then dies of the same signal.
 */
static void on_crash(int sig, siginfo_t *si, void *uctx)
{
	long k = cur_kernel;
	int saved = errno;
	bool addr = sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
	            sig == SIGILL || sig == SIGTRAP;
	void *pc = fault_pc(uctx);
	struct sbuf s = {.n = 0};
	struct sbuf where = {.n = 0};
	if (pc)
		sb_sym(&where, pc);
	where.b[where.n] = 0;

	if (isatty(STDERR_FILENO))
		sb_str(&s, "\r\033[K"); /* ipcrun's --progress line */
	sb_str(&s, "ipcrun: ");
	if (k >= 0 && crash_g) {
		sb_str(&s, "kernel '");
		sb_str(&s, crash_g->kernel[k].name);
		sb_str(&s, "' (process '");
	} else {
		sb_str(&s, "a thread of process '");
	}
	sb_str(&s, crash_proc);
	sb_str(&s, "', pid ");
	sb_num(&s, (unsigned long long)getpid(), 10);
	sb_str(&s, ") crashed: signal ");
	sb_num(&s, (unsigned long long)sig, 10);
	sb_str(&s, " (SIG");
	sb_str(&s, sigabbrev_np(sig));
	sb_str(&s, ", ");
	sb_str(&s, sigdescr_np(sig));
	sb_str(&s, ")");
	if (addr && si) {
		sb_str(&s, " at address ");
		sb_num(&s, (unsigned long long)(uintptr_t)si->si_addr, 16);
	}
	if (where.n) {
		sb_str(&s, " in ");
		sb_str(&s, where.b);
	}
	sb_write(STDERR_FILENO, &s);

	/* the stack, innermost first, without the handler's own frames */
	void *fr[32];
	int n = backtrace(fr, 32), first = 0;
	for (int i = 0; i < n && pc; i++)
		if ((char *)fr[i] >= (char *)pc - 1 && (char *)fr[i] <= (char *)pc + 1) {
			first = i;
			break;
		}
	if (pc && first == 0 && n > 2)
		first = 2; /* handler, signal trampoline */
	for (int i = first, d = 0; i < n; i++, d++) {
		sb_str(&s, "ipcrun:     #");
		sb_num(&s, (unsigned long long)d, 10);
		sb_str(&s, " ");
		/* return addresses point after their call: look up the call */
		sb_sym(&s, i == first ? fr[i] : (char *)fr[i] - 1);
		sb_write(STDERR_FILENO, &s);
	}

	if (k >= 0 && status_fd >= 0) {
		sb_str(&s, "X ");
		sb_num(&s, (unsigned long long)k, 10);
		sb_str(&s, " ");
		sb_num(&s, (unsigned long long)sig, 10);
		sb_str(&s, " ");
		sb_num(&s, addr && si ? (unsigned long long)(uintptr_t)si->si_addr : 0, 10);
		sb_str(&s, addr ? " 1 " : " 0 ");
		sb_num(&s, mono_ns(), 10);
		sb_str(&s, " ");
		sb_str(&s, where.n ? where.b : "?");
		sb_write(status_fd, &s);
	}
	errno = saved;
	/* SA_RESETHAND restored the default action: die of the same signal */
	raise(sig);
}

static void install_crash_handlers(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
	                           SIGTRAP, SIGSYS};
	/* load what backtrace() needs now, not in the handler */
	void *warm[2];
	backtrace(warm, 2);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK | SA_NODEFER;
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
		enum ipc_role role = gk->port[i].out ? IPC_PRODUCER : IPC_CONSUMER;
		int rc;
		if (g->proc[rn->proc].policy == IR_RESTART_NO) {
			rc = ipc_channel_add_opts(k->tls, c->id, role, &co);
		} else {
			/* restartable: take over what a predecessor left, and
			 * leave the same to a successor */
			rc = ipc_channel_takeover(k->tls, c->id, role, &co);
			if (rc == 0)
				rc = ipc_channel_hold(k->tls, c->id, role);
		}
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
	if (ok == 0)
		ipc__kernel_ready(&kt->k);
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
		/* what it emitted goes out first (EOF flushes); and a kernel
		 * that never ran leaves the linger thread it joined */
		ipc__kernel_finish(&kt->k);
		if (gk->seq) /* what an ordered replica still holds back */
			ipc__kernel_seq_flush(&kt->k);
		if (kt->k.waiting) /* not waiting any more: the watchdog skips it */
			ipc__store_release(kt->k.waiting, IR_WATCH_DONE);
		/* A port that ended because its peer died or failed (aborted
		 * input, -EPIPE output) makes this kernel's failure a consequence.
		 * A failure of its own is told now, before its outputs are
		 * aborted: downstream cannot report the abort before this line. */
		int peer = 0;
		for (size_t i = 0; i < kt->k.nin + kt->k.nout; i++)
			if (kt->k.port[i].end == IPC_TX_ABORTED || kt->k.port[i].end == -EPIPE)
				peer = 1;
		uint64_t t_end = mono_ns();
		if (rc != 0 && !peer && go > 0) {
			const char *host = ir_proc_host(g, rn->proc);
			fprintf(stderr, "ipcrun: kernel '%s' (process '%s%s%s') failed: "
			        "returned %d\n", gk->name, g->proc[rn->proc].name,
			        host ? "', host '" : "", host ? host : "", rc);
		}
		/* restart = always: a failed kernel's process dies, and its held
		 * ends wait for the process that replaces it */
		if (rc != 0 && go > 0 &&
		    g->proc[rn->proc].policy == IR_RESTART_ALWAYS) {
			say("K %zu %d %llu %d %llu", kt->kidx, rc,
			    (unsigned long long)thread_cpu_ns(), peer,
			    (unsigned long long)t_end);
			fflush(NULL);
			_exit(IR_EXIT_FAILED);
		}
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
			say("K %zu %d %llu %d %llu", kt->kidx, rc,
			    (unsigned long long)thread_cpu_ns(), peer,
			    (unsigned long long)t_end);
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
		/* a restarted process runs again only what had not finished */
		if (rn->r->krt[i].state == IR_K_RETURNED && rn->r->krt[i].rc == 0)
			continue;
		struct kthread *kt = &rn->kt[rn->nk++];
		kt->rn = rn;
		kt->kidx = i;
		kt->k.name = gk->name;
		kt->k.stop = &rn->stop;
		kt->k.waiting = rn->r->watch ? &rn->r->watch[i] : NULL;
		kt->k.linger_ns = g->linger_ns;
		kt->k.nin = gk->nin;
		kt->k.nout = gk->nport - gk->nin;
		/* the ports live in the run's counters segment (status.h), so
		 * that ipcrun reads their counters whatever happens to us; a
		 * restarted process's kernels go on counting where they were */
		kt->k.port = ir_seg_ports(rn->seg_tls, g, i);
		if (!kt->k.port)
			kt->k.port = calloc(gk->nport ? gk->nport : 1, sizeof *kt->k.port);
		if (!kt->k.port) {
			say("F out of memory");
			_exit(IR_EXIT_FAILED);
		}
		for (size_t j = 0; j < gk->nport; j++) {
			const struct ir_conn *c = &g->conn[gk->port[j].conn];
			struct ipc__port_stats st = kt->k.port[j].st;
			kt->k.port[j] = (struct ipc_port){
				.k = &kt->k, .name = gk->port[j].name, .id = c->id,
				.out = gk->port[j].out, .capacity = c->capacity, .st = st,
				.seq = gk->seq, .batch = c->batch};
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
	signal(SIGUSR1, SIG_IGN); /* so does mpirun's SIGUSR1 */
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
	crash_g = r->g;
	crash_proc = r->g->proc[proc].name;
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
	rn.seg_tls = ipc_tls_open(rn.b, -1);
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
	if (rn.seg_tls)
		ipc_tls_close(rn.seg_tls);
	ipc_buffer_close(rn.b, false);
	_exit(ready ? 0 : IR_EXIT_FAILED);
}

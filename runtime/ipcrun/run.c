/*
 * The supervisor: ipcrun's own process during a run.
 *
 *  1. removes what dead runs left (gc.c), records this run, creates the
 *     buffer "ipcrun.<pid>.<random>" before any kernel process exists;
 *  2. forks one process per topology process (runner.c); each opens the
 *     buffer itself, attaches every channel end of its kernels and says
 *     "R" (ready) on its status pipe;
 *  3. once every process is ready, so that every channel exists, writes "G"
 *     (go) to every control pipe: no kernel runs before that;
 *  4. supervises: reads kernel results from the status pipes, reaps
 *     processes (SIGCHLD through a signalfd), and on a death marks the dead
 *     process's channel ends (ipc_buffer_reap: downstream sees
 *     IPC_TX_ABORTED, upstream -EPIPE), asks everything to stop ("S", which
 *     makes ipc_stopping() true) and SIGKILLs whatever still runs
 *     STOP_GRACE_MS later, so the graph is down within a second;
 *  5. SIGINT/SIGTERM/SIGHUP: the first asks the graph to stop and drain, the
 *     second SIGKILLs every kernel process;
 *  6. closes the buffer last, so that every OS object of the run goes away,
 *     and forgets the run's record.
 *
 * Kernel processes die with ipcrun (PR_SET_PDEATHSIG), so a `kill -9` of
 * ipcrun leaves only the buffer, which the next ipcrun or `ipcrun --gc`
 * removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcrun.h"

/* After a kernel process died: how long the others get to stop by
 * themselves before they are killed. */
#define STOP_GRACE_MS 500
#define PROGRESS_MS 500
/* The watchdog looks at the channels this often. */
#define WATCH_TICK_MS 200

uint64_t ir_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_ctrl(struct ir_run *r, char c)
{
	for (size_t p = 0; p < r->g->nproc; p++) {
		struct ir_proc_rt *pr = &r->prt[p];
		if (pr->ctrl < 0 || pr->reaped)
			continue;
		ssize_t w;
		do
			w = write(pr->ctrl, &c, 1);
		while (w < 0 && errno == EINTR);
	}
}

static void kill_all(struct ir_run *r)
{
	for (size_t p = 0; p < r->g->nproc; p++) {
		struct ir_proc_rt *pr = &r->prt[p];
		if (pr->pid > 0 && !pr->reaped) {
			kill(pr->pid, SIGKILL);
			pr->killed = true;
		}
	}
}

static void request_stop(struct ir_run *r)
{
	if (r->stopping)
		return;
	r->stopping = true;
	send_ctrl(r, r->t_go ? 'S' : 'Q');
	/* no restart from now on: ends held for one end now */
	if (r->buf)
		ipc_buffer_orphans_abort(r->buf);
	ir_net_stop(r);
}

/* One line from process p's status pipe. */
static void status_line(struct ir_run *r, size_t p, char *line)
{
	struct ir_graph *g = r->g;
	struct ir_proc_rt *pr = &r->prt[p];
	unsigned long long a, b, c, d, e, f;
	int i1;
	switch (line[0]) {
	case 'R':
		pr->ready = true;
		if (pr->restarting && r->t_go && !r->stopping) {
			/* a restarted process: its kernels go on at once */
			char go = 'G';
			if (write(pr->ctrl, &go, 1) == 1)
				pr->restarting = false;
		}
		return;
	case 'F':
		pr->setup_failed = true;
		ir_term_clear(r);
		fprintf(stderr, "ipcrun: process '%s': %s\n", g->proc[p].name,
		        line[1] ? line + 2 : "setup failed");
		if (pr->restarting) {
			/* a restarted process that cannot take its ends over:
			 * stopping lets it quit instead of waiting for go */
			pr->restarting = false;
			r->failed = true;
			request_stop(r);
		}
		return;
	case 'E':
		if (sscanf(line, "E %llu", &a) == 1 && a < g->nkernel) {
			r->krt[a].setup_failed = true;
			ir_term_clear(r);
			const char *msg = strchr(line + 2, ' ');
			fprintf(stderr, "ipcrun: kernel '%s' (process '%s'): %s\n",
			        g->kernel[a].name, g->proc[p].name, msg ? msg + 1 : "");
		}
		return;
	case 'X': {
		int i2 = 0, off = 0;
		if (sscanf(line, "X %llu %d %llu %d %llu %n", &a, &i1, &b, &i2, &c,
		           &off) >= 5 && a < g->nkernel &&
		    r->krt[a].state == IR_K_PENDING) {
			struct ir_kernel_rt *kr = &r->krt[a];
			kr->state = IR_K_CRASHED;
			kr->signo = i1;
			kr->addr = b;
			kr->has_addr = i2 != 0;
			kr->t_fail = c;
			if (off > 0 && strcmp(line + off, "?") != 0)
				snprintf(kr->where, sizeof kr->where, "%s", line + off);
		}
		return;
	}
	case 'P':
		if (sscanf(line, "P %llu %llu %llu %llu %llu %llu", &a, &b, &c, &d, &e,
		           &f) == 6 && a < g->nkernel && b < g->kernel[a].nport) {
			struct ipc__port_stats *s = &r->krt[a].pst[b];
			s->records = c;
			s->bytes = d;
			s->blocked_ns = e;
			s->hwm = f;
		}
		return;
	case 'K':
		if (sscanf(line, "K %llu %d %llu %llu %llu", &a, &i1, &b, &c, &d) == 5 &&
		    a < g->nkernel) {
			r->krt[a].state = IR_K_RETURNED;
			r->krt[a].rc = i1;
			r->krt[a].cpu_ns = b;
			r->krt[a].peer = c != 0;
			r->krt[a].t_fail = d;
			/* restart = always: its process dies and is started again */
			if (i1 != 0 && !(g->proc[p].policy == IR_RESTART_ALWAYS &&
			                 r->t_go && !r->stopping)) {
				r->failed = true;
				request_stop(r);
			}
		}
		return;
	default:
		return;
	}
}

static void read_status(struct ir_run *r, size_t p)
{
	struct ir_proc_rt *pr = &r->prt[p];
	for (;;) {
		ssize_t n = read(pr->status, pr->buf + pr->len,
		                 sizeof pr->buf - 1 - pr->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(pr->status);
				pr->status = -1;
				pr->closed = true;
			}
			return;
		}
		pr->len += (size_t)n;
		pr->buf[pr->len] = 0;
		char *s = pr->buf, *nl;
		while ((nl = strchr(s, '\n'))) {
			*nl = 0;
			status_line(r, p, s);
			s = nl + 1;
		}
		pr->len -= (size_t)(s - pr->buf);
		memmove(pr->buf, s, pr->len);
		if (pr->len == sizeof pr->buf - 1)
			pr->len = 0; /* a line that long is not ours */
	}
}

static bool restart(struct ir_run *r, size_t p);

/* Process p is gone with status ws. */
static void on_exit_status(struct ir_run *r, size_t p, int ws)
{
	struct ir_graph *g = r->g;
	struct ir_proc_rt *pr = &r->prt[p];
	pr->reaped = true;
	pr->wstatus = ws;
	if (pr->status >= 0)
		read_status(r, p); /* what it said before it died */
	if (pr->status >= 0) {
		close(pr->status);
		pr->status = -1;
		pr->closed = true;
	}
	if (pr->ctrl >= 0) {
		close(pr->ctrl);
		pr->ctrl = -1;
	}
	bool lost = false;
	for (size_t k = 0; k < g->nkernel; k++) {
		if (g->kernel[k].proc != p || r->krt[k].state == IR_K_RETURNED)
			continue;
		if (r->krt[k].state == IR_K_PENDING) {
			r->krt[k].state = IR_K_LOST;
			r->krt[k].t_fail = ir_now_ns();
			r->krt[k].signo = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
			r->krt[k].rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 0;
		}
		lost = true;
	}
	if (!lost && WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return;
	if (restart(r, p))
		return;
	/* a kernel process died: mark its channel ends dead so that its
	 * neighbours see IPC_TX_ABORTED / -EPIPE now, and stop the rest */
	if (!pr->killed)
		r->failed = true;
	if (r->buf) {
		uint64_t n = 0;
		ipc_buffer_reap_lost(r->buf, &n);
		pr->lost += n;
		ipc_buffer_orphans_abort(r->buf); /* held ends: nobody will come */
	}
	request_stop(r);
	if (!r->kill_at)
		r->kill_at = ir_now_ns() + STOP_GRACE_MS * 1000000ull;
}

static void reap(struct ir_run *r)
{
	for (;;) {
		int ws;
		pid_t pid = waitpid(-1, &ws, WNOHANG);
		if (pid <= 0)
			return;
		if (ir_net_reap(r, pid, ws)) {
			if (r->failed)
				request_stop(r);
			continue;
		}
		for (size_t p = 0; p < r->g->nproc; p++)
			if (r->prt[p].pid == pid && !r->prt[p].reaped)
				on_exit_status(r, p, ws);
	}
}


/* ---- the watchdog ----
 * Every WATCH_TICK_MS: the total of records sent and received over every
 * channel. When it has not changed for stall_timeout while every kernel that
 * has not returned waits on a channel (the kernel API says which, in
 * r->watch), the graph can never move again: say who waits on what, name the
 * likely fix, and stop it (exit 1). After a first Ctrl-C, a graph that moves
 * nothing for IR_DRAIN_STALL_MS while every kernel waits on a channel (or
 * for IR_DRAIN_IDLE_MS whatever they do) is not draining: kill it, and say
 * so. */

static struct ipc_channel_info *channel_infos(struct ir_run *r, size_t *n)
{
	size_t cap = r->g->nconn + 8;
	struct ipc_channel_info *ci = ir_xrealloc(NULL, cap * sizeof *ci);
	*n = ipc_channel_list(r->buf, ci, cap);
	if (*n > cap)
		*n = cap;
	return ci;
}

static const struct ipc_channel_info *info_of(const struct ipc_channel_info *ci,
                                              size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ci[i].id == id)
			return &ci[i];
	return NULL;
}

/* The port kernel k waits on, or NULL when it runs or returned. */
static const struct ir_port *waits_on(const struct ir_run *r, size_t k)
{
	uint32_t w = ipc__load_acquire(&r->watch[k]);
	if (w == 0 || w == IR_WATCH_DONE || w > r->g->kernel[k].nport)
		return NULL;
	return &r->g->kernel[k].port[w - 1];
}

static bool all_waiting(const struct ir_run *r)
{
	size_t live = 0;
	for (size_t k = 0; k < r->g->nkernel; k++) {
		if (r->krt[k].state != IR_K_PENDING ||
		    ipc__load_acquire(&r->watch[k]) == IR_WATCH_DONE)
			continue;
		if (!waits_on(r, k))
			return false;
		live++;
	}
	return live > 0;
}

static void report_stall(struct ir_run *r, const struct ipc_channel_info *ci,
                         size_t n)
{
	const struct ir_graph *g = r->g;
	if (r->prog_shown)
		fputs("\r\033[K", stderr);
	r->prog_shown = false;
	fprintf(stderr, "ipcrun: the graph is stalled: no channel moved for %.1f s "
	        "and every running kernel waits on a channel:\n",
	        (double)g->stall_ms / 1000);
	const struct ir_conn *fix = NULL, *because = NULL;
	for (size_t k = 0; k < g->nkernel; k++) {
		const struct ir_port *p = waits_on(r, k);
		if (!p)
			continue;
		const struct ir_conn *c = &g->conn[p->conn];
		const struct ipc_channel_info *i = info_of(ci, n, c->id);
		uint64_t q = i ? i->pending : 0;
		fprintf(stderr, "ipcrun:   kernel '%s' (process '%s') waits to %s "
		        "'%s': channel %llu '%s.%s -> %s.%s' (line %d) is %s (%llu of "
		        "%u)\n", g->kernel[k].name, g->proc[g->kernel[k].proc].name,
		        p->out ? "send on" : "receive from", p->name,
		        (unsigned long long)c->id, c->fk, c->fp, c->tk, c->tp, c->line,
		        p->out ? "full" : "empty", (unsigned long long)q, c->capacity);
		if (p->out || fix)
			continue;
		/* k waits on an empty input while another of its inputs is full:
		 * that full channel needs room for what the other branch holds */
		for (size_t j = 0; j < g->kernel[k].nport && !fix; j++) {
			const struct ir_port *o = &g->kernel[k].port[j];
			const struct ir_conn *oc = &g->conn[o->conn];
			const struct ipc_channel_info *oi = info_of(ci, n, oc->id);
			const struct ir_port *ow = waits_on(r, oc->from);
			bool full = (oi && oi->pending >= oc->capacity) ||
			            (ow && ow->conn == o->conn); /* its producer waits */
			if (!o->out && o != p && full) {
				fix = oc;
				because = c;
			}
		}
	}
	if (fix)
		fprintf(stderr, "ipcrun: likely fix: '%s.%s -> %s.%s' (line %d) is "
		        "full while '%s' waits on '%s.%s -> %s.%s', which '%s' does "
		        "not feed yet (it holds its records back): give the full one "
		        "room for all of them, e.g. 'connect = %s.%s -> %s.%s "
		        "capacity=N' with N larger than %u\n", fix->fk, fix->fp,
		        fix->tk, fix->tp, fix->line, fix->tk, because->fk, because->fp,
		        because->tk, because->tp, because->fk, fix->fk, fix->fp,
		        fix->tk, fix->tp, fix->capacity);
	else
		fprintf(stderr, "ipcrun: likely fix: a kernel holds records back "
		        "that another waits for; raise 'capacity=' on the full "
		        "connections above (or [graph] capacity)\n");
	fprintf(stderr, "ipcrun: stopping the graph (stall_timeout = %.1f s; 0 "
	        "turns the watchdog off)\n", (double)g->stall_ms / 1000);
}

static void watch_tick(struct ir_run *r)
{
	if (!r->t_go || !r->watch || r->killed || !r->buf)
		return;
	size_t n;
	struct ipc_channel_info *ci = channel_infos(r, &n);
	uint64_t moved = 0, now = ir_now_ns();
	for (size_t i = 0; i < n; i++)
		moved += ci[i].sent + ci[i].received;
	if (moved != r->moved || !r->moved_at) {
		r->moved = moved;
		r->moved_at = now;
	}
	uint64_t idle_ms = (now - r->moved_at) / 1000000u;
	bool waiting = all_waiting(r);
	if (r->stop_signal && !r->kill_at &&
	    now - r->stop_at >= IR_DRAIN_STALL_MS * 1000000ull &&
	    (idle_ms >= IR_DRAIN_IDLE_MS || (idle_ms >= IR_DRAIN_STALL_MS &&
	                                     waiting))) {
		if (r->prog_shown)
			fputs("\r\033[K", stderr);
		r->prog_shown = false;
		fprintf(stderr, "ipcrun: the graph is not draining (no channel moved "
		        "for %.1f s after %s%s): killing it\n", (double)(waiting &&
		        idle_ms < IR_DRAIN_IDLE_MS ? IR_DRAIN_STALL_MS :
		        IR_DRAIN_IDLE_MS) / 1000, strsignal(r->stop_signal), waiting ?
		        ", every kernel waiting on a channel" : "");
		r->killed = true;
		r->escalated = true;
		kill_all(r);
	} else if (!r->stopping && !r->stalled && r->g->stall_ms &&
	           idle_ms >= r->g->stall_ms && waiting) {
		r->stalled = true;
		report_stall(r, ci, n);
		r->failed = true;
		request_stop(r);
		/* nobody can drain a stalled graph: kill what does not stop */
		r->kill_at = now + STOP_GRACE_MS * 1000000ull;
	}
	free(ci);
}

static void on_signal(struct ir_run *r, int sig)
{
	if (sig == SIGCHLD) {
		reap(r);
		return;
	}
	r->interrupts++;
	if (r->interrupts == 1) {
		r->stop_signal = sig;
		r->stop_at = ir_now_ns();
		if (r->prog_shown)
			fputs("\r\033[K", stderr);
		r->prog_shown = false;
		fprintf(stderr, "ipcrun: %s: stopping the graph (again to kill it)\n",
		        strsignal(sig));
		request_stop(r);
	} else if (!r->killed) {
		ir_term_clear(r);
		fprintf(stderr, "ipcrun: %s again: killing the graph\n", strsignal(sig));
		r->killed = true;
		kill_all(r);
		ir_net_kill(r);
	}
}

static bool procs_done(const struct ir_run *r)
{
	for (size_t p = 0; p < r->g->nproc; p++)
		if (!r->prt[p].reaped)
			return false;
	return true;
}

static bool all_done(const struct ir_run *r)
{
	return procs_done(r) && ir_net_done(r);
}

static bool all_ready(const struct ir_run *r)
{
	for (size_t p = 0; p < r->g->nproc; p++)
		if (!r->prt[p].ready)
			return false;
	return true;
}

static bool setup_failed(const struct ir_run *r)
{
	for (size_t p = 0; p < r->g->nproc; p++)
		if (r->prt[p].setup_failed ||
		    (r->prt[p].reaped && !r->t_go && !r->prt[p].remote))
			return true;
	return false;
}

static void supervise(struct ir_run *r, int sfd)
{
	size_t np = r->g->nproc;
	struct pollfd *pf = ir_xrealloc(NULL, (np + 5) * sizeof *pf);
	uint64_t next_prog = ir_now_ns() + PROGRESS_MS * 1000000ull;
	uint64_t next_watch = ir_now_ns() + WATCH_TICK_MS * 1000000ull;
	while (!all_done(r)) {
		ir_net_final(r, procs_done(r));
		if (!r->t_go && !r->stopping) {
			int gate = ir_net_gate(r, setup_failed(r), all_ready(r));
			if (gate < 0) {
				r->failed = true;
				request_stop(r);
				r->kill_at = ir_now_ns() + 2000 * 1000000ull;
			} else if (gate > 0) {
				r->t_go = ir_now_ns();
				send_ctrl(r, 'G');
			}
		}
		uint64_t now = ir_now_ns();
		if (r->kill_at && now >= r->kill_at && !r->killed) {
			r->killed = true;
			kill_all(r);
		}
		int timeout = -1;
		if (r->o.progress && r->t_go) {
			if (now >= next_prog) {
				ir_report_progress(r, false);
				next_prog = now + PROGRESS_MS * 1000000ull;
			}
			timeout = (int)((next_prog - now) / 1000000u) + 1;
		}
		if (r->kill_at && !r->killed) {
			int t = (int)((r->kill_at - now) / 1000000u) + 1;
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		int st = ir_status_timeout(r, now);
		if (st >= 0 && (timeout < 0 || st < timeout))
			timeout = st;
		if (r->watch && r->t_go && !r->killed) {
			if (now >= next_watch) {
				watch_tick(r);
				next_watch = now + WATCH_TICK_MS * 1000000ull;
			}
			int t = (int)((next_watch - now) / 1000000u) + 1;
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		nfds_t n = 0;
		pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (size_t p = 0; p < np; p++)
			pf[n++] = (struct pollfd){.fd = r->prt[p].status, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = ir_status_fd(r), .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = r->net.status, .events = POLLIN};
		size_t nterm = ir_term_pollfds(r, pf + n); /* kernels' output */
		n += nterm;
		if (poll(pf, n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[np + 1].revents)
			ir_status_serve(r);
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				on_signal(r, (int)si.ssi_signo);
		}
		for (size_t p = 0; p < np; p++)
			if (r->prt[p].status >= 0 && pf[p + 1].revents)
				read_status(r, p);
		if (r->net.status >= 0 && pf[np + 2].revents) {
			ir_net_read(r);
			if (r->net.peer_stop || r->failed)
				request_stop(r);
		}
		ir_term_poll(r, pf + n - nterm, nterm);
		reap(r); /* a SIGCHLD may have coalesced with an earlier one */
	}
	free(pf);
}

/* Start process p (again, after a restart): pipes, fork, runner. */
static int spawn_one(struct ir_run *r, int sfd, size_t p)
{
	struct ir_graph *g = r->g;
	{
		if (r->prt[p].reaped)
			return 0; /* on another host */
		int ctrl[2], st[2];
		if (pipe2(ctrl, O_CLOEXEC))
			return -errno;
		if (pipe2(st, O_CLOEXEC)) {
			int e = errno;
			close(ctrl[0]);
			close(ctrl[1]);
			return -e;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			int e = errno;
			close(ctrl[0]);
			close(ctrl[1]);
			close(st[0]);
			close(st[1]);
			return -e;
		}
		if (pid == 0) {
			close(sfd);
			if (ir_status_fd(r) >= 0)
				close(ir_status_fd(r));
			close(ctrl[1]);
			close(st[0]);
			for (size_t q = 0; q < g->nproc; q++) {
				if (q != p && r->prt[q].ctrl >= 0)
					close(r->prt[q].ctrl);
				if (q != p && r->prt[q].status >= 0)
					close(r->prt[q].status);
			}
			ir_term_child(r);
			ir_runner_main(r, p, ctrl[0], st[1]);
		}
		close(ctrl[0]);
		close(st[1]);
		fcntl(st[0], F_SETFL, O_NONBLOCK);
		r->prt[p].pid = pid;
		r->prt[p].ctrl = ctrl[1];
		r->prt[p].status = st[0];
	}
	return 0;
}

static int spawn(struct ir_run *r, int sfd)
{
	for (size_t p = 0; p < r->g->nproc; p++) {
		int rc = spawn_one(r, sfd, p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int spawn_sfd = -1; /* the supervisor's signalfd, for restarts */

/*
 * Process p died (its kernels are marked): start it again if its policy
 * says so and the window allows (restart.c); true when it was. Its held
 * channel ends are orphans meanwhile: neighbours wait for the new process,
 * which takes them over. What it held is lost, and counted.
 */
static bool restart(struct ir_run *r, size_t p)
{
	struct ir_graph *g = r->g;
	struct ir_process *gp = &g->proc[p];
	struct ir_proc_rt *pr = &r->prt[p];
	if (gp->policy == IR_RESTART_NO || r->stopping || !r->t_go || pr->killed ||
	    !r->buf)
		return false;
	bool failed = false;
	const char *who = NULL;
	for (size_t k = 0; k < g->nkernel; k++) {
		const struct ir_kernel_rt *kr = &r->krt[k];
		if (g->kernel[k].proc != p)
			continue;
		if (kr->state == IR_K_CRASHED || kr->state == IR_K_LOST ||
		    (kr->state == IR_K_RETURNED && kr->rc != 0)) {
			failed = true;
			if (!who || kr->state != IR_K_LOST)
				who = g->kernel[k].name;
		}
	}
	if (!failed)
		return false;
	uint64_t now = ir_now_ns(), since = now - gp->rwindow_ms * 1000000ull;
	unsigned recent = 0;
	for (unsigned i = 0; i < pr->restarts; i++)
		if (pr->rtimes[i] >= since || now < gp->rwindow_ms * 1000000ull)
			recent++;
	uint64_t lost = 0;
	ipc_buffer_reap_lost(r->buf, &lost);
	pr->lost += lost;
	if (recent >= gp->rmax) {
		fprintf(stderr, "ipcrun: process '%s' (kernel '%s') failed again: %u "
		        "restarts within %.0f s already (restart_max = %u); giving up\n",
		        gp->name, who, recent, (double)gp->rwindow_ms / 1000, gp->rmax);
		return false;
	}
	pr->rtimes = ir_xrealloc(pr->rtimes, (pr->restarts + 1) * sizeof *pr->rtimes);
	pr->rtimes[pr->restarts++] = now;
	fprintf(stderr, "ipcrun: restarting process '%s' (kernel '%s'; restart = %s, "
	        "%u of at most %u within %.0f s); %llu record%s it held lost\n",
	        gp->name, who, ir_restart_name(gp->policy), recent + 1, gp->rmax,
	        (double)gp->rwindow_ms / 1000, (unsigned long long)lost,
	        lost == 1 ? "" : "s");
	/* its kernels start over, except those that had returned 0 */
	for (size_t k = 0; k < g->nkernel; k++) {
		struct ir_kernel_rt *kr = &r->krt[k];
		if (g->kernel[k].proc != p || (kr->state == IR_K_RETURNED && kr->rc == 0))
			continue;
		kr->state = IR_K_PENDING;
		kr->rc = kr->signo = 0;
		kr->has_addr = kr->peer = false;
		kr->t_fail = 0;
		kr->where[0] = 0;
	}
	unsigned restarts = pr->restarts;
	uint64_t *rtimes = pr->rtimes, plost = pr->lost;
	*pr = (struct ir_proc_rt){.pid = -1, .ctrl = -1, .status = -1,
	                          .restarts = restarts, .rtimes = rtimes,
	                          .lost = plost, .restarting = true};
	int rc = spawn_one(r, spawn_sfd, p);
	if (rc < 0) {
		fprintf(stderr, "ipcrun: cannot restart process '%s': %s\n", gp->name,
		        strerror(-rc));
		pr->reaped = true;
		pr->restarting = false;
		return false;
	}
	return true;
}

static int exit_code(const struct ir_run *r)
{
	if (r->interrupts >= 2 || r->escalated)
		return 128 + r->stop_signal;
	bool failed = r->failed;
	for (size_t k = 0; k < r->g->nkernel; k++)
		if (r->krt[k].state != IR_K_RETURNED || r->krt[k].rc != 0)
			failed = true;
	if (failed)
		return IR_EXIT_FAILED;
	if (r->stop_signal)
		return 128 + r->stop_signal;
	return IR_EXIT_OK;
}

int ir_run(struct ir_graph *g, const struct ir_run_opts *o)
{
	struct ir_run r = {.g = g, .o = *o, .parent = getpid()};
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		rnd = (uint32_t)ir_now_ns() ^ (uint32_t)getpid() << 16;
	snprintf(r.handle, sizeof r.handle, "ipcrun.%d.%08x", (int)getpid(), rnd);
	r.bopts = (struct ipc_buffer_opts){
		.size = g->buffer, .shm = g->shm, .sem = g->sem, .wait = g->wait,
		.capacity = g->capacity,
	};
	r.krt = ir_xrealloc(NULL, g->nkernel * sizeof *r.krt);
	memset(r.krt, 0, g->nkernel * sizeof *r.krt);
	for (size_t k = 0; k < g->nkernel; k++) {
		size_t n = g->kernel[k].nport;
		r.krt[k].pst = ir_xrealloc(NULL, n * sizeof *r.krt[k].pst);
		memset(r.krt[k].pst, 0, n * sizeof *r.krt[k].pst);
	}
	/* shared with the kernel processes, which inherit it across fork */
	void *w = mmap(NULL, g->nkernel * sizeof *r.watch, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	r.watch = w == MAP_FAILED ? NULL : w;
	r.prt = ir_xrealloc(NULL, g->nproc * sizeof *r.prt);
	for (size_t p = 0; p < g->nproc; p++)
		r.prt[p] = (struct ir_proc_rt){.pid = -1, .ctrl = -1, .status = -1};
	ir_net_setup(&r);

	ir_gc_collect(false);

	/* From here, signals arrive through sfd only; children undo this. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1); /* mpirun forwards it: stop and drain */
	sigaddset(&set, SIGCHLD);
	signal(SIGINT, SIG_DFL); /* a background job inherits SIG_IGN */
	signal(SIGPIPE, SIG_IGN); /* a control pipe of a dead process */
	sigprocmask(SIG_BLOCK, &set, &old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int code = IR_EXIT_FAILED;
	if (sfd < 0) {
		fprintf(stderr, "ipcrun: signalfd: %s\n", strerror(errno));
		goto out_mask;
	}
	if (ir_gc_record(&r) < 0)
		goto out_sfd;
	r.t_start = ir_now_ns();
	r.buf = ipc_buffer_open(r.handle, &r.bopts);
	if (!r.buf) {
		fprintf(stderr, "ipcrun: cannot create the shared buffer %s: %s\n",
		        r.handle, strerror(errno));
		goto out_record;
	}
	ir_gc_record(&r); /* again, with the backend actually in use */
	ir_status_start(&r);
	spawn_sfd = sfd;
	ir_term_setup(&r);
	int rc = spawn(&r, sfd);
	if (rc == 0)
		rc = ir_net_spawn(&r, sfd);
	if (rc < 0) {
		fprintf(stderr, "ipcrun: cannot start the kernel processes: %s\n",
		        strerror(-rc));
		r.failed = true;
		kill_all(&r);
		for (size_t p = 0; p < g->nproc; p++)
			if (r.prt[p].pid > 0)
				waitpid(r.prt[p].pid, NULL, 0);
		if (rc == -ENOENT)
			r.net.verdict = -1; /* no bridge here: exit 2 */
	} else {
		if (r.o.verbose) {
			fprintf(stderr, "ipcrun: run %s (pid %d)\n", r.handle, (int)r.parent);
			for (size_t p = 0; p < g->nproc; p++)
				if (r.prt[p].pid > 0)
					fprintf(stderr, "ipcrun: process %s pid %d\n",
					        g->proc[p].name, (int)r.prt[p].pid);
		}
		supervise(&r, sfd);
	}
	ir_term_end(&r);
	r.t_end = ir_now_ns();
	ir_status_unlist(&r);
	ir_status_collect(&r); /* every kernel's counters, killed ones' too */
	if (r.o.progress)
		ir_report_progress(&r, true);
	if (r.o.stats && r.t_go)
		ir_report_stats(&r, stderr);
	ir_status_stop(&r);
	int crc = ipc_buffer_close(r.buf, true);
	if (crc < 0)
		fprintf(stderr, "ipcrun: closing the buffer %s: %s\n", r.handle,
		        ipc_strerror(crc));
	ir_report_failures(&r, stderr);
	ir_report_restarts(&r, stderr);
	code = ir_net_exit(&r, exit_code(&r));
	for (size_t p = 0; p < g->nproc; p++) {
		if (r.prt[p].ctrl >= 0)
			close(r.prt[p].ctrl);
		if (r.prt[p].status >= 0)
			close(r.prt[p].status);
	}
	if (r.net.ctrl >= 0)
		close(r.net.ctrl);
	if (r.net.status >= 0)
		close(r.net.status);
out_record:
	ir_gc_forget(&r);
out_sfd:
	close(sfd);
out_mask:
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (size_t k = 0; k < g->nkernel; k++)
		free(r.krt[k].pst);
	free(r.krt);
	for (size_t p = 0; p < g->nproc; p++)
		free(r.prt[p].rtimes);
	free(r.prt);
	if (r.watch)
		munmap(r.watch, g->nkernel * sizeof *r.watch);
	free(r.prog_sent);
	return code;
}

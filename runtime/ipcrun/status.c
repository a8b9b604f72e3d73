/*
 * The supervisor's side of `ipcrun status` and `ipcrun top` (see status.h
 * for the shared segment and the requests): the counters segment, the
 * run's socket in the state folder, and the answers, built from what the
 * supervisor knows (kernel results, processes, restarts), the buffer's
 * channel list (sent/received are the rings' own indexes) and the ports'
 * counters in the segment.
 *
 * Everything here runs on the supervisor's one thread, between polls: a
 * request is read with a short timeout and answered at once, so a client
 * that stalls costs the run at most REQ_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

#define REQ_TIMEOUT_MS 200
#define SAMPLE_EVERY_MS 1000
#define WATCHED_MS 10000
#define MIN_WINDOW_NS 200000000ull

/* Counters of one channel at one time. */
struct csample {
	uint64_t sent, recv, bytes, blk_tx, blk_rx;
	bool found;
};

struct sample {
	uint64_t t;            /* monotonic ns; 0: none */
	struct csample *c;     /* per connection */
};

struct ir_status {
	struct ipc_tls *tls;   /* the supervisor's, for the segment */
	void *seg;             /* the segment, or NULL */
	size_t nports;
	int lfd;               /* listening socket, or -1 */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sample cur, prev;
	uint64_t watched_until;
	uint64_t next_sample;
	time_t started;        /* wall clock */
};

/* Ports of one kernel take whole cache lines: kernels of different
 * processes never write to one line (no false sharing on the data path). */
#define PORT_ALIGN 64u

size_t ir_seg_port_off(const struct ir_graph *g, size_t k)
{
	size_t off = sizeof(struct ir_seg_hdr);
	for (size_t i = 0; i < k && i < g->nkernel; i++)
		off += (g->kernel[i].nport * sizeof(struct ipc_port) + PORT_ALIGN - 1) &
		       ~(size_t)(PORT_ALIGN - 1);
	return off;
}

static size_t seg_nports(const struct ir_graph *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nkernel; i++)
		n += g->kernel[i].nport;
	return n;
}

/* Kernel k's port i in the segment at seg. */
static struct ipc_port *seg_port(void *seg, const struct ir_graph *g, size_t k,
                                 size_t i)
{
	return (struct ipc_port *)((char *)seg + ir_seg_port_off(g, k)) + i;
}

static void seg_init(void *seg, void *arg)
{
	struct ir_seg_hdr *h = seg;
	h->magic = IR_SEG_MAGIC;
	h->nports = (uint32_t)(uintptr_t)arg;
	h->port_size = (uint32_t)sizeof(struct ipc_port);
}

struct ipc_port *ir_seg_ports(struct ipc_tls *t, const struct ir_graph *g,
                              size_t k)
{
	void *p;
	if (!t || ipc_segment_open(t, IR_SEG_ID, &p) != 0)
		return NULL;
	struct ir_seg_hdr *h = p;
	if (h->magic != IR_SEG_MAGIC || h->port_size != sizeof(struct ipc_port) ||
	    h->nports != seg_nports(g))
		return NULL;
	return seg_port(p, g, k, 0);
}

static int state_dir(char *out, size_t len)
{
	const char *d = getenv("IPCRUN_STATE_DIR");
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (d && *d)
		snprintf(out, len, "%s", d);
	else
		snprintf(out, len, "%s/ipcrun-%u", x && *x ? x : "/tmp",
		         (unsigned)getuid());
	struct stat st;
	if (lstat(out, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

/* The clients' view of the state folder: the same rule as gc.c's, and it
 * must be the user's own, mode 0700, or it is not read. */
int ir_status_dir(char *out, size_t len)
{
	return state_dir(out, len);
}

static uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* This instant's counters of every connection. */
static void take(struct ir_run *r, struct sample *s)
{
	const struct ir_graph *g = r->g;
	struct ir_status *st = r->status;
	if (!s->c)
		s->c = calloc(g->nconn ? g->nconn : 1, sizeof *s->c);
	if (!s->c)
		return;
	size_t cap = g->nconn + 16;
	struct ipc_channel_info *ci = calloc(cap, sizeof *ci);
	size_t n = ci && r->buf ? ipc_channel_list(r->buf, ci, cap) : 0;
	if (n > cap)
		n = cap;
	for (size_t c = 0; c < g->nconn; c++) {
		struct csample *cs = &s->c[c];
		cs->found = false;
		for (size_t i = 0; i < n; i++)
			if (ci[i].id == g->conn[c].id && ci[i].type == IPC_CHANNEL_SPSC) {
				cs->sent = ci[i].sent;
				cs->recv = ci[i].received;
				cs->found = true;
			}
		const struct ir_conn *cn = &g->conn[c];
		for (int dir = 0; dir < 2 && st->seg; dir++) {
			size_t k = dir ? cn->from : cn->to;
			const struct ir_kernel *gk = &g->kernel[k];
			for (size_t i = 0; i < gk->nport; i++) {
				if (gk->port[i].conn != c)
					continue;
				const struct ipc__port_stats *ps = &seg_port(st->seg, g, k, i)->st;
				if (dir) {
					cs->bytes = ld64(&ps->bytes);
					cs->blk_tx = ld64(&ps->blocked_ns);
				} else {
					cs->blk_rx = ld64(&ps->blocked_ns);
				}
			}
		}
	}
	free(ci);
	s->t = ir_now_ns();
}

static void sample_now(struct ir_run *r)
{
	struct ir_status *st = r->status;
	struct sample t = st->prev;
	st->prev = st->cur;
	st->cur = t;
	take(r, &st->cur);
}

/* ---- starting and stopping ---------------------------------------------- */

static void start_socket(struct ir_run *r)
{
	struct ir_status *st = r->status;
	/* beside the run's record (gc.c), in the folder gc.c chose and checked */
	if (!r->record[0])
		return;
	int n = snprintf(st->path, sizeof st->path, "%s.sock", r->record);
	if (n < 0 || (size_t)n >= sizeof st->path) {
		st->path[0] = 0;
		if (r->o.verbose)
			fprintf(stderr, "ipcrun: the state folder's path is too long for "
			        "a socket: `ipcrun status` will not see this run\n");
		return;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, st->path, (size_t)n + 1);
	unlink(st->path);
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc || listen(fd, 8)) {
		if (r->o.verbose)
			fprintf(stderr, "ipcrun: %s: %s: `ipcrun status` will not see this "
			        "run\n", st->path, strerror(errno));
		close(fd);
		st->path[0] = 0;
		return;
	}
	st->lfd = fd;
}

int ir_status_start(struct ir_run *r)
{
	const struct ir_graph *g = r->g;
	struct ir_status *st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	r->status = st;
	st->lfd = -1;
	st->started = time(NULL); /* shown as a date: not a wait */
	st->nports = seg_nports(g);
	st->tls = ipc_tls_open(r->buf, -1);
	if (st->tls) {
		size_t bytes = ir_seg_port_off(g, g->nkernel);
		int rc = ipc_segment_add(st->tls, IR_SEG_ID, bytes, seg_init,
		                         (void *)(uintptr_t)st->nports);
		if (rc == 0 && ir_seg_ports(st->tls, g, 0))
			ipc_segment_open(st->tls, IR_SEG_ID, &st->seg);
		else
			fprintf(stderr, "ipcrun: no room for the kernels' counters in the "
			        "buffer (%s): --stats and status will miss them\n",
			        ipc_strerror(rc));
	}
	start_socket(r);
	return 0;
}

/* Copy the ports' counters into the run's results (--stats), whatever the
 * kernels could still say: a killed kernel's counters are there too. */
void ir_status_collect(struct ir_run *r)
{
	const struct ir_graph *g = r->g;
	struct ir_status *st = r->status;
	if (!st || !st->seg)
		return;
	for (size_t k = 0; k < g->nkernel; k++) {
		for (size_t i = 0; i < g->kernel[k].nport; i++) {
			const struct ipc__port_stats *s = &seg_port(st->seg, g, k, i)->st;
			struct ipc__port_stats *d = &r->krt[k].pst[i];
			d->records = ld64(&s->records);
			d->bytes = ld64(&s->bytes);
			d->blocked_ns = ld64(&s->blocked_ns);
			d->hwm = ld64(&s->hwm);
		}
	}
}

/* No more requests: the socket goes (the run is no longer listed). */
void ir_status_unlist(struct ir_run *r)
{
	struct ir_status *st = r->status;
	if (!st)
		return;
	if (st->lfd >= 0) {
		close(st->lfd);
		st->lfd = -1;
	}
	if (st->path[0])
		unlink(st->path);
	st->path[0] = 0;
}

void ir_status_stop(struct ir_run *r)
{
	struct ir_status *st = r->status;
	if (!st)
		return;
	ir_status_unlist(r);
	if (st->tls) {
		if (st->seg)
			ipc_channel_close(st->tls, IR_SEG_ID);
		ipc_tls_close(st->tls);
	}
	free(st->cur.c);
	free(st->prev.c);
	free(st);
	r->status = NULL;
}

int ir_status_fd(const struct ir_run *r)
{
	return r->status ? r->status->lfd : -1;
}

int ir_status_timeout(struct ir_run *r, uint64_t now)
{
	struct ir_status *st = r->status;
	if (!st || now >= st->watched_until)
		return -1;
	if (now >= st->next_sample) {
		sample_now(r);
		st->next_sample = now + SAMPLE_EVERY_MS * 1000000ull;
	}
	return (int)((st->next_sample - now) / 1000000u) + 1;
}

/* ---- what is said ------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *run_state(const struct ir_run *r)
{
	if (!r->t_go)
		return "starting";
	if (r->stopping)
		return "stopping";
	for (size_t p = 0; p < r->g->nproc; p++)
		if (r->prt[p].restarting)
			return "restarting";
	return "running";
}

/* CPU seconds of process pid so far (user + system), or -1. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, stime = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	                 &ut, &stime) != 2)
		return -1;
	return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

struct view {
	struct sample now;
	const struct sample *ref;   /* rates from here; NULL: none yet */
	double dt;                  /* seconds between ref and now */
	struct ipc_channel_info *ci;
	size_t nci;
	const struct ipc_channel_info **chan; /* per connection, or NULL */
	bool *bneck;                /* per connection */
	char (*kstate)[96];         /* per kernel */
	const char **blocked_on;    /* per kernel: a port name, or NULL */
};

static double rate(const struct view *v, uint64_t a, uint64_t b)
{
	return v->ref && v->dt > 0 && b >= a ? (double)(b - a) / v->dt : 0;
}

/* Share of the window the producer of connection c spent waiting for
 * room, 0..1; -1 when not measured. */
static double tx_blocked(const struct view *v, size_t c)
{
	if (!v->ref || !v->ref->c || !v->now.c)
		return -1;
	double x = rate(v, v->ref->c[c].blk_tx, v->now.c[c].blk_tx) / 1e9;
	return x > 1 ? 1 : x;
}

/* Connection c's producer is held back by its consumer. */
static bool press(const struct view *v, size_t c)
{
	const struct ipc_channel_info *ci = v->chan[c];
	if (!ci || !ci->consumer || !ci->capacity)
		return false;
	return ci->pending * 10 >= (uint64_t)ci->capacity * 9 || tx_blocked(v, c) >= 0.5;
}

static void view_build(struct ir_run *r, struct view *v)
{
	const struct ir_graph *g = r->g;
	struct ir_status *st = r->status;
	memset(v, 0, sizeof *v);
	take(r, &v->now);
	uint64_t t = v->now.t;
	if (st->cur.t && t - st->cur.t >= MIN_WINDOW_NS)
		v->ref = &st->cur;
	else if (st->prev.t && t - st->prev.t >= MIN_WINDOW_NS)
		v->ref = &st->prev;
	if (v->ref)
		v->dt = (double)(t - v->ref->t) / 1e9;
	size_t cap = g->nconn + 16;
	v->ci = calloc(cap, sizeof *v->ci);
	v->nci = v->ci && r->buf ? ipc_channel_list(r->buf, v->ci, cap) : 0;
	if (v->nci > cap)
		v->nci = cap;
	v->chan = calloc(g->nconn + 1, sizeof *v->chan);
	v->bneck = calloc(g->nconn + 1, sizeof *v->bneck);
	v->kstate = calloc(g->nkernel + 1, sizeof *v->kstate);
	v->blocked_on = calloc(g->nkernel + 1, sizeof *v->blocked_on);
	if (!v->chan || !v->bneck || !v->kstate || !v->blocked_on)
		return;
	for (size_t c = 0; c < g->nconn; c++)
		for (size_t i = 0; i < v->nci; i++)
			if (v->ci[i].id == g->conn[c].id && v->ci[i].type == IPC_CHANNEL_SPSC)
				v->chan[c] = &v->ci[i];
	for (size_t k = 0; k < g->nkernel; k++) {
		const struct ir_kernel_rt *kr = &r->krt[k];
		const struct ir_kernel *gk = &g->kernel[k];
		const struct ir_proc_rt *pr = &r->prt[gk->proc];
		char *s = v->kstate[k];
		switch (kr->state) {
		case IR_K_RETURNED:
			if (kr->rc == 0)
				snprintf(s, sizeof v->kstate[k], "done");
			else
				snprintf(s, sizeof v->kstate[k], "failed (returned %d)", kr->rc);
			continue;
		case IR_K_CRASHED:
			snprintf(s, sizeof v->kstate[k], "crashed (signal %d)", kr->signo);
			continue;
		case IR_K_LOST:
			snprintf(s, sizeof v->kstate[k], "died");
			continue;
		default:
			break;
		}
		if (pr->restarting) {
			snprintf(s, sizeof v->kstate[k], "restarting");
			continue;
		}
		if (!r->t_go) {
			snprintf(s, sizeof v->kstate[k], "starting");
			continue;
		}
		/* running: blocked on a full output, or waiting on empty inputs */
		const char *full = NULL, *empty = NULL;
		size_t nempty = 0;
		for (size_t i = 0; i < gk->nport; i++) {
			const struct ipc_channel_info *ci = v->chan[gk->port[i].conn];
			if (!ci)
				continue;
			if (gk->port[i].out && ci->consumer && ci->pending >= ci->capacity)
				full = full ? full : gk->port[i].name;
			if (!gk->port[i].out && ci->pending == 0 && ci->producer) {
				empty = empty ? empty : gk->port[i].name;
				nempty++;
			}
		}
		if (full) {
			snprintf(s, sizeof v->kstate[k], "blocked on %s (full)", full);
			v->blocked_on[k] = full;
		} else if (gk->nin && nempty == gk->nin) {
			snprintf(s, sizeof v->kstate[k], "waiting on %s (empty)", empty);
			v->blocked_on[k] = empty;
		} else {
			snprintf(s, sizeof v->kstate[k], "running");
		}
	}
	/* The bottleneck: a channel whose producer waits for room (it is full
	 * now, or its producer spent half the window blocked) while its
	 * consumer is busy: running, and not itself waiting for room on its
	 * own outputs (else the cause is further downstream). */
	for (size_t c = 0; c < g->nconn; c++) {
		size_t to = g->conn[c].to;
		if (!press(v, c) || r->krt[to].state != IR_K_PENDING || !r->t_go ||
		    v->blocked_on[to] || r->prt[g->kernel[to].proc].restarting)
			continue;
		bool downstream_full = false;
		for (size_t d = 0; d < g->nconn; d++)
			if (g->conn[d].from == to && press(v, d))
				downstream_full = true;
		v->bneck[c] = !downstream_full;
	}
}

/* Blocked nanoseconds per second as a share of the window, 0..1 (a wait
 * is counted when it ends, so one window may get more than its length). */
static double frac(double ns_per_s)
{
	double x = ns_per_s / 1e9;
	return x > 1 ? 1 : x < 0 ? 0 : x;
}

static void view_free(struct view *v)
{
	free(v->now.c);
	free(v->ci);
	free(v->chan);
	free(v->bneck);
	free(v->kstate);
	free(v->blocked_on);
}

static unsigned total_restarts(const struct ir_run *r)
{
	unsigned n = 0;
	for (size_t p = 0; p < r->g->nproc; p++)
		n += r->prt[p].restarts;
	return n;
}

static uint64_t total_lost(const struct ir_run *r)
{
	uint64_t n = 0;
	for (size_t p = 0; p < r->g->nproc; p++)
		n += r->prt[p].lost;
	return n;
}

static double age(const struct ir_run *r)
{
	return (double)(ir_now_ns() - r->t_start) / 1e9;
}

static void answer_summary(struct ir_run *r, FILE *f, bool json)
{
	const struct ir_graph *g = r->g;
	if (!json) {
		fprintf(f, "%s\t%s\t%d\t%.0f\t%s\t%zu\t%u\n", g->name, g->file,
		        (int)r->parent, age(r), run_state(r), g->nkernel,
		        total_restarts(r));
		return;
	}
	fputs("{\"name\": ", f);
	json_str(f, g->name);
	fputs(", \"topology\": ", f);
	json_str(f, g->file);
	fprintf(f, ", \"pid\": %d, \"handle\": ", (int)r->parent);
	json_str(f, r->handle);
	fprintf(f, ", \"started\": %lld, \"age_s\": %.3f, \"state\": \"%s\", "
	        "\"kernels\": %zu, \"processes\": %zu, \"channels\": %zu, "
	        "\"restarts\": %u, \"lost_records\": %" PRIu64 "}\n",
	        (long long)r->status->started, age(r), run_state(r), g->nkernel,
	        g->nproc, g->nconn, total_restarts(r), total_lost(r));
}

static void answer_json(struct ir_run *r, FILE *f)
{
	const struct ir_graph *g = r->g;
	struct view v;
	view_build(r, &v);
	fputs("{\n  \"name\": ", f);
	json_str(f, g->name);
	fputs(", \"topology\": ", f);
	json_str(f, g->file);
	fprintf(f, ", \"pid\": %d, \"handle\": ", (int)r->parent);
	json_str(f, r->handle);
	fprintf(f, ",\n  \"started\": %lld, \"age_s\": %.3f, \"state\": \"%s\", "
	        "\"restarts\": %u, \"lost_records\": %" PRIu64 ", \"rate_window_s\": %.3f,\n",
	        (long long)r->status->started, age(r), run_state(r),
	        total_restarts(r), total_lost(r), v.dt);
	fputs("  \"processes\": [", f);
	for (size_t p = 0; p < g->nproc; p++) {
		const struct ir_proc_rt *pr = &r->prt[p];
		fprintf(f, "%s\n    {\"name\": ", p ? "," : "");
		json_str(f, g->proc[p].name);
		double cpu = pr->reaped ? -1 : proc_cpu(pr->pid);
		fprintf(f, ", \"pid\": %d, \"alive\": %s, \"cpu_s\": ", (int)pr->pid,
		        pr->reaped ? "false" : "true");
		if (cpu < 0)
			fputs("null", f);
		else
			fprintf(f, "%.2f", cpu);
		fprintf(f, ", \"restarts\": %u, \"lost_records\": %" PRIu64 "}",
		        pr->restarts, pr->lost);
	}
	fputs("\n  ],\n  \"kernels\": [", f);
	for (size_t k = 0; k < g->nkernel; k++) {
		const struct ir_kernel *gk = &g->kernel[k];
		const struct ir_kernel_rt *kr = &r->krt[k];
		fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
		json_str(f, gk->name);
		fputs(", \"process\": ", f);
		json_str(f, g->proc[gk->proc].name);
		fprintf(f, ", \"pid\": %d, \"state\": ", (int)r->prt[gk->proc].pid);
		json_str(f, v.kstate ? v.kstate[k] : "");
		fputs(", \"blocked_on\": ", f);
		if (v.blocked_on && v.blocked_on[k])
			json_str(f, v.blocked_on[k]);
		else
			fputs("null", f);
		fprintf(f, ", \"rc\": %d, \"signal\": %d, \"restarts\": %u, \"ports\": [",
		        kr->state == IR_K_RETURNED ? kr->rc : 0,
		        kr->state == IR_K_CRASHED || kr->state == IR_K_LOST ? kr->signo : 0,
		        r->prt[gk->proc].restarts);
		for (size_t i = 0; i < gk->nport; i++) {
			const struct ipc__port_stats *ps = r->status->seg ?
				&seg_port(r->status->seg, g, k, i)->st : &kr->pst[i];
			const struct ir_conn *c = &g->conn[gk->port[i].conn];
			fprintf(f, "%s{\"name\": ", i ? ", " : "");
			json_str(f, gk->port[i].name);
			fprintf(f, ", \"dir\": \"%s\", \"channel\": %" PRIu64 ", \"records\": %"
			        PRIu64 ", \"bytes\": %" PRIu64 ", \"blocked_s\": %.6f}",
			        gk->port[i].out ? "out" : "in", c->id, ld64(&ps->records),
			        ld64(&ps->bytes), (double)ld64(&ps->blocked_ns) / 1e9);
		}
		fputs("]}", f);
	}
	fputs("\n  ],\n  \"channels\": [", f);
	for (size_t c = 0; c < g->nconn; c++) {
		const struct ir_conn *cn = &g->conn[c];
		const struct ipc_channel_info *ci = v.chan ? v.chan[c] : NULL;
		const struct csample *now = v.now.c ? &v.now.c[c] : NULL;
		const struct csample *ref = v.ref && v.ref->c ? &v.ref->c[c] : NULL;
		char from[2 * IR_NAME_MAX + 2], to[2 * IR_NAME_MAX + 2];
		snprintf(from, sizeof from, "%s.%s", cn->fk, cn->fp);
		snprintf(to, sizeof to, "%s.%s", cn->tk, cn->tp);
		fprintf(f, "%s\n    {\"id\": %" PRIu64 ", \"from\": ", c ? "," : "", cn->id);
		json_str(f, from);
		fputs(", \"to\": ", f);
		json_str(f, to);
		uint32_t cap = ci ? ci->capacity : cn->capacity;
		uint64_t pend = ci ? ci->pending : 0;
		fprintf(f, ", \"exists\": %s, \"capacity\": %u, \"pending\": %" PRIu64
		        ", \"fill\": %.3f", ci ? "true" : "false", cap, pend,
		        cap ? (double)pend / cap : 0);
		if (now) {
			bool r_ok = ref && ref->found && now->found;
			fprintf(f, ", \"sent\": %" PRIu64 ", \"received\": %" PRIu64
			        ", \"bytes\": %" PRIu64 ", \"blocked_send_s\": %.6f"
			        ", \"blocked_recv_s\": %.6f", now->sent, now->recv, now->bytes,
			        (double)now->blk_tx / 1e9, (double)now->blk_rx / 1e9);
			fprintf(f, ", \"records_per_s\": %.1f, \"bytes_per_s\": %.1f"
			        ", \"blocked_send_frac\": %.3f, \"blocked_recv_frac\": %.3f",
			        r_ok ? rate(&v, ref->sent, now->sent) : 0,
			        ref ? rate(&v, ref->bytes, now->bytes) : 0,
			        ref ? frac(rate(&v, ref->blk_tx, now->blk_tx)) : 0,
			        ref ? frac(rate(&v, ref->blk_rx, now->blk_rx)) : 0);
		}
		fprintf(f, ", \"producer\": %s, \"consumer\": %s, \"closed\": %s, "
		        "\"aborted\": %s, \"bottleneck\": %s}",
		        ci && ci->producer ? "true" : "false",
		        ci && ci->consumer ? "true" : "false",
		        ci && ci->closed ? "true" : "false",
		        ci && ci->aborted ? "true" : "false",
		        v.bneck && v.bneck[c] ? "true" : "false");
	}
	fputs("\n  ]\n}\n", f);
	view_free(&v);
}

static void human(double x, char *out, size_t len)
{
	if (x >= 1e9)
		snprintf(out, len, "%.2fG", x / 1e9);
	else if (x >= 1e6)
		snprintf(out, len, "%.2fM", x / 1e6);
	else if (x >= 1e3)
		snprintf(out, len, "%.1fk", x / 1e3);
	else
		snprintf(out, len, "%.0f", x);
}

/* The text of `status RUN` (top: false) or one screen of `top` (true):
 * the run, its kernels, its channels; top marks the bottleneck in reverse
 * video and stops at rows lines. */
static void answer_text(struct ir_run *r, FILE *f, int cols, int rows, bool top)
{
	const struct ir_graph *g = r->g;
	struct view v;
	view_build(r, &v);
	int line = 0;
	if (cols < 40)
		cols = 40;
	if (cols > 400)
		cols = 400;
	const char *rev = top ? "\033[7m" : "", *off = top ? "\033[0m" : "";
#define ROOM() (!top || rows <= 0 || line < rows)
	fprintf(f, "run %s (%s), pid %d, up %.0f s, %s; restarts %u, lost records %"
	        PRIu64 "%s\n", g->name, g->file, (int)r->parent, age(r), run_state(r),
	        total_restarts(r), total_lost(r),
	        v.ref ? "" : " (rates: not measured yet)");
	line++;
	if (ROOM()) {
		fprintf(f, "\n%-20s %-12s %8s %7s %s\n", "KERNEL", "PROCESS", "PID",
		        "CPU", "STATE");
		line += 2;
	}
	for (size_t k = 0; k < g->nkernel && ROOM(); k++) {
		const struct ir_kernel *gk = &g->kernel[k];
		const struct ir_proc_rt *pr = &r->prt[gk->proc];
		bool hot = false;
		for (size_t c = 0; c < g->nconn; c++)
			if (v.bneck && v.bneck[c] && g->conn[c].to == k)
				hot = true;
		double cpu = pr->reaped ? -1 : proc_cpu(pr->pid);
		char cpus[16] = "-";
		if (cpu >= 0)
			snprintf(cpus, sizeof cpus, "%.1fs", cpu);
		char restarts[32] = "";
		if (pr->restarts)
			snprintf(restarts, sizeof restarts, ", restarted %u", pr->restarts);
		fprintf(f, "%s%-20s %-12s %8d %7s %s%s%s%s\n", hot ? rev : "", gk->name,
		        g->proc[gk->proc].name, (int)pr->pid, cpus,
		        v.kstate ? v.kstate[k] : "", restarts, hot ? "  <- bottleneck" : "",
		        hot ? off : "");
		line++;
	}
	if (ROOM()) {
		fprintf(f, "\n%-*s %9s %9s %6s %11s %7s %7s\n", cols > 100 ? 36 : 28,
		        "CHANNEL", "REC/S", "BYTES/S", "FILL", "RECORDS", "BLK-TX",
		        "BLK-RX");
		line += 2;
	}
	for (size_t c = 0; c < g->nconn && ROOM(); c++) {
		const struct ir_conn *cn = &g->conn[c];
		const struct ipc_channel_info *ci = v.chan ? v.chan[c] : NULL;
		const struct csample *now = v.now.c ? &v.now.c[c] : NULL;
		const struct csample *ref = v.ref && v.ref->c ? &v.ref->c[c] : NULL;
		char name[128], rs[16] = "-", bs[16] = "-", fill[16] = "-";
		char btx[16] = "-", brx[16] = "-";
		snprintf(name, sizeof name, "%s.%s->%s.%s", cn->fk, cn->fp, cn->tk, cn->tp);
		if (now && ref && ref->found && now->found) {
			human(rate(&v, ref->sent, now->sent), rs, sizeof rs);
			human(rate(&v, ref->bytes, now->bytes), bs, sizeof bs);
			snprintf(btx, sizeof btx, "%.0f%%", frac(rate(&v, ref->blk_tx, now->blk_tx)) * 100);
			snprintf(brx, sizeof brx, "%.0f%%", frac(rate(&v, ref->blk_rx, now->blk_rx)) * 100);
		}
		if (ci && ci->capacity)
			snprintf(fill, sizeof fill, "%.0f%%", 100.0 * (double)ci->pending /
			         ci->capacity);
		else if (!ci)
			snprintf(fill, sizeof fill, "gone");
		bool hot = v.bneck && v.bneck[c];
		fprintf(f, "%s%-*.*s %9s %9s %6s %11" PRIu64 " %7s %7s%s%s\n",
		        hot ? rev : "", cols > 100 ? 36 : 28, cols > 100 ? 36 : 28, name,
		        rs, bs, fill, now ? now->sent : 0, btx, brx,
		        hot ? "  <- bottleneck" : "", hot ? off : "");
		line++;
	}
#undef ROOM
	view_free(&v);
}

/* One request on connection fd: read its line, check the peer, answer. */
static void serve_one(struct ir_run *r, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || cr.uid != getuid())
		return;
	char req[128] = "";
	size_t n = 0;
	uint64_t deadline = ir_now_ns() + REQ_TIMEOUT_MS * 1000000ull;
	while (n < sizeof req - 1 && !memchr(req, '\n', n)) {
		uint64_t now = ir_now_ns();
		if (now >= deadline)
			return;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) <= 0)
			continue;
		ssize_t got = read(fd, req + n, sizeof req - 1 - n);
		if (got <= 0)
			return;
		n += (size_t)got;
	}
	req[n] = 0;
	char *nl = strchr(req, '\n');
	if (nl)
		*nl = 0;
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	if (!f)
		return;
	int cols = 80, rows = 24;
	r->status->watched_until = ir_now_ns() + WATCHED_MS * 1000000ull;
	if (strcmp(req, "summary") == 0) {
		answer_summary(r, f, false);
	} else if (strcmp(req, "summary-json") == 0) {
		answer_summary(r, f, true);
	} else if (strcmp(req, "sample") == 0) {
		sample_now(r);
		r->status->next_sample = ir_now_ns() + SAMPLE_EVERY_MS * 1000000ull;
		fputs("ok\n", f);
	} else if (strcmp(req, "json") == 0) {
		answer_json(r, f);
	} else if (sscanf(req, "text %d", &cols) == 1) {
		answer_text(r, f, cols, 0, false);
	} else if (sscanf(req, "top %d %d", &cols, &rows) == 2) {
		answer_text(r, f, cols, rows, true);
	} else {
		fprintf(f, "error: unknown request '%.40s'\n", req);
	}
	fclose(f);
	/* the answer goes out within REQ_TIMEOUT_MS or not at all */
	size_t off = 0;
	while (off < tlen && ir_now_ns() < deadline + REQ_TIMEOUT_MS * 1000000ull) {
		ssize_t w = write(fd, text + off, tlen - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		poll(&p, 1, 10);
	}
	free(text);
}

void ir_status_serve(struct ir_run *r)
{
	struct ir_status *st = r->status;
	if (!st || st->lfd < 0)
		return;
	for (int i = 0; i < 8; i++) {
		int fd = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		serve_one(r, fd);
		close(fd);
	}
}

/*
 * This host's part of a graph across hosts, supervisor side (no MPI here).
 *
 * Under an MPI launcher (mpirun, srun: OMPI_COMM_WORLD_RANK/SIZE,
 * PMI_RANK/PMI_SIZE, SLURM_PROCID/SLURM_STEP_NUM_TASKS) with `[graph] hosts`, rank r
 * runs the processes placed on hosts[r] and one more child, the bridge
 * ipcrun-net (net_mpi.c), which carries every bridged edge with a local end
 * here. The job size must equal the number of hosts (else exit 2 before
 * anything starts). The bridge is a separate executable beside ipcrun, so
 * that neither ipcrun nor the kernel processes ever load libmpi: ipcrun
 * builds and runs single-host graphs on a machine without MPI, and MPI_Init
 * happens in a fresh process image rather than in a fork of one that has
 * threads and libraries of its own.
 *
 * Start: once every local process said R and the bridge said R, ipcrun tells
 * the bridge B (ready) or F<why> (a process could not start); the bridge
 * agrees with every other host (MPI_Allgather) and answers G (go) or F
 * (some host cannot start: every host exits 2, naming it). Then 'S'/'X' on
 * its control pipe stops every host (X: because a kernel failed here), and
 * a peer's stop comes back as "S <failed> <rank>".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcrun.h"

#define NET_TIMEOUT_MS 10000

static int env_int(const char *name, int *out)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return 0;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < 0 || n > INT_MAX)
		return -1;
	*out = (int)n;
	return 1;
}

int ir_net_launcher(int *rank, int *size)
{
	static const char *const vars[][2] = {
		{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
		{"PMI_RANK", "PMI_SIZE"},
		{"PMIX_RANK", "OMPI_COMM_WORLD_SIZE"},
		/* an srun step (a batch script's own shell has no step size) */
		{"SLURM_PROCID", "SLURM_STEP_NUM_TASKS"},
	};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		int r = 0, s = 0;
		int a = env_int(vars[i][0], &r), b = env_int(vars[i][1], &s);
		if (a == 1 && b == 1 && s > 0 && r < s) {
			*rank = r;
			*size = s;
			return 1;
		}
	}
	return 0;
}

static char *host_list(const struct ir_graph *g, int size)
{
	size_t cap = (size_t)size * (IR_NAME_MAX + 2) + 1, o = 0;
	char *s = ir_xrealloc(NULL, cap);
	s[0] = 0;
	for (int i = 0; i < size; i++) {
		char tmp[32];
		const char *h = g->nhost == (size_t)size ? g->host[i] : tmp;
		snprintf(tmp, sizeof tmp, "rank%d", i);
		o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? "," : "", h);
	}
	return s;
}

static const char *net_exe(void)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/ipcrun-net", ir_exe_dir());
	return path;
}

int ir_net_check(const struct ir_graph *g, bool loaded)
{
	int rank, size;
	if (!ir_net_launcher(&rank, &size))
		return 0;
	if (size == 1 && (!loaded || g->nhost < 2))
		return 0; /* one rank of a one-host graph: as without mpirun */
	if (loaded && !g->nhost) {
		fprintf(stderr, "ipcrun: rank %d of %d: %s has no hosts, so every rank "
		        "would run the whole graph; add 'hosts = NAME, ...' (%d names, "
		        "in rank order) under [graph], or run it without mpirun\n",
		        rank, size, g->file, size);
		return IR_EXIT_USAGE;
	}
	if (loaded && g->nhost != (size_t)size) {
		fprintf(stderr, "ipcrun: the job has %d ranks but %s names %zu hosts; "
		        "start it with mpirun -n %zu (one rank per host); nothing was "
		        "started\n", size, g->file, g->nhost, g->nhost);
		return IR_EXIT_USAGE;
	}
	if (loaded)
		return 0;
	/* this host cannot even load the topology: the others wait for it in
	 * the start barrier, so join it with a "no" */
	char why[480] = "bad topology (its errors are on that host's stderr)";
	if (g->ndiag)
		snprintf(why, sizeof why, "%s:%d: %s", g->file, g->diag[0].line,
		         g->diag[0].msg);
	if (access(net_exe(), X_OK) != 0)
		return IR_EXIT_USAGE;
	char *hosts = host_list(g, size);
	char rs[16];
	snprintf(rs, sizeof rs, "%d", rank);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl(net_exe(), "ipcrun-net", "fail", rs, hosts, why, (char *)NULL);
		_exit(127);
	}
	free(hosts);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return IR_EXIT_USAGE;
}

void ir_net_setup(struct ir_run *r)
{
	struct ir_graph *g = r->g;
	struct ir_net_rt *n = &r->net;
	*n = (struct ir_net_rt){.pid = -1, .ctrl = -1, .status = -1};
	int rank, size;
	if (g->by_host) {
		/* ipcrun --host: the other hosts' parts are started by hand */
		for (size_t p = 0; p < g->nproc; p++)
			if (g->proc[p].hidx != g->me)
				r->prt[p].ready = r->prt[p].reaped = r->prt[p].remote = true;
		for (size_t k = 0; k < g->nkernel; k++)
			if (g->proc[g->kernel[k].proc].hidx != g->me) {
				r->krt[k].remote = true;
				r->krt[k].state = IR_K_RETURNED;
			}
		return;
	}
	if (g->nhost < 2 || !ir_net_launcher(&rank, &size) ||
	    (size_t)size != g->nhost)
		return;
	n->on = true;
	n->rank = rank;
	/* what runs on the other hosts is theirs: never started here */
	for (size_t p = 0; p < g->nproc; p++)
		if (g->proc[p].hidx != (size_t)rank)
			r->prt[p].ready = r->prt[p].reaped = r->prt[p].remote = true;
	for (size_t k = 0; k < g->nkernel; k++)
		if (g->proc[g->kernel[k].proc].hidx != (size_t)rank) {
			r->krt[k].remote = true;
			r->krt[k].state = IR_K_RETURNED;
		}
}

const char *ir_net_host(const struct ir_run *r)
{
	return r->net.on ? r->g->host[r->net.rank] : NULL;
}

int ir_net_spawn(struct ir_run *r, int sfd)
{
	struct ir_net_rt *n = &r->net;
	struct ir_graph *g = r->g;
	if (!n->on)
		return 0;
	if (access(net_exe(), X_OK) != 0) {
		fprintf(stderr, "ipcrun: host '%s' (rank %d): %s is missing: this "
		        "ipcrun was built without MPI (install libopenmpi-dev and "
		        "rebuild)\n", g->host[n->rank], n->rank, net_exe());
		return -ENOENT;
	}
	int ctrl[2], st[2];
	if (pipe(ctrl))
		return -errno;
	if (pipe2(st, O_CLOEXEC)) {
		int e = errno;
		close(ctrl[0]);
		close(ctrl[1]);
		return -e;
	}
	fcntl(ctrl[1], F_SETFD, FD_CLOEXEC);
	size_t argc = 0, cap = 16 + g->nconn;
	char **argv = ir_xrealloc(NULL, cap * sizeof *argv);
	char num[8][32];
	argv[argc++] = "ipcrun-net";
	argv[argc++] = "run";
	argv[argc++] = r->handle;
	snprintf(num[0], sizeof num[0], "%d", (int)ipc_buffer_shm_kind(r->buf));
	snprintf(num[1], sizeof num[1], "%d", (int)ipc_buffer_sem_kind(r->buf));
	snprintf(num[2], sizeof num[2], "%d", ctrl[0]);
	snprintf(num[3], sizeof num[3], "%d", st[1]);
	snprintf(num[4], sizeof num[4], "%d", n->rank);
	int tmo = NET_TIMEOUT_MS;
	if (env_int("IPCRUN_NET_TIMEOUT_MS", &tmo) != 1 || tmo <= 0)
		tmo = NET_TIMEOUT_MS;
	snprintf(num[5], sizeof num[5], "%d", tmo);
	for (int i = 0; i < 4; i++)
		argv[argc++] = num[i];
	argv[argc++] = num[4];
	char *hosts = host_list(g, (int)g->nhost);
	argv[argc++] = hosts;
	argv[argc++] = num[5];
	size_t first = argc;
	for (size_t i = 0; i < g->nconn; i++) {
		const struct ir_conn *c = &g->conn[i];
		size_t hf = g->proc[g->kernel[c->from].proc].hidx;
		size_t ht = g->proc[g->kernel[c->to].proc].hidx;
		if (!c->bridged || (hf != (size_t)n->rank && ht != (size_t)n->rank))
			continue;
		bool tx = hf == (size_t)n->rank;
		char spec[256];
		snprintf(spec, sizeof spec, "%c:%zu:%llu:%zu:%u:%u:%s.%s->%s.%s",
		         tx ? 't' : 'r', i, (unsigned long long)c->id, tx ? ht : hf,
		         c->window, c->capacity, c->fk, c->fp, c->tk, c->tp);
		argv[argc++] = ir_strdup(spec);
	}
	argv[argc] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(sfd);
		fcntl(st[1], F_SETFD, 0); /* the bridge's status pipe survives exec */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_IGN); /* ipcrun decides, as for kernels */
		signal(SIGUSR1, SIG_IGN);
		signal(SIGPIPE, SIG_DFL);
		execv(net_exe(), argv);
		fprintf(stderr, "ipcrun: cannot start %s: %s\n", net_exe(),
		        strerror(errno));
		_exit(127);
	}
	int e = errno;
	for (size_t i = first; i < argc; i++)
		free(argv[i]);
	free(argv);
	free(hosts);
	close(ctrl[0]);
	close(st[1]);
	if (pid < 0) {
		close(ctrl[1]);
		close(st[0]);
		return -e;
	}
	fcntl(st[0], F_SETFL, O_NONBLOCK);
	n->pid = pid;
	n->ctrl = ctrl[1];
	n->status = st[0];
	if (r->o.verbose)
		fprintf(stderr, "ipcrun: process @net pid %d\n", (int)pid);
	return 0;
}

static void to_net(struct ir_net_rt *n, const char *s)
{
	if (n->ctrl < 0)
		return;
	size_t len = strlen(s);
	ssize_t w;
	do
		w = write(n->ctrl, s, len);
	while (w < 0 && errno == EINTR);
}

int ir_net_gate(struct ir_run *r, bool bad, bool ready)
{
	struct ir_net_rt *n = &r->net;
	if (!n->on)
		return bad ? -1 : ready ? 1 : 0;
	if (n->verdict)
		return n->verdict;
	if (n->reaped)
		return -1;
	if (!n->ready || n->told)
		return 0;
	if (bad) {
		to_net(n, "Fa kernel process could not start (its errors are on that "
		       "host's stderr)\n");
		n->told = true;
	} else if (ready) {
		to_net(n, "B");
		n->told = true;
	}
	return 0;
}

void ir_net_stop(struct ir_run *r)
{
	if (r->net.on && r->net.verdict > 0)
		to_net(&r->net, r->failed ? "X" : "S");
}

static void net_line(struct ir_run *r, char *line)
{
	struct ir_net_rt *n = &r->net;
	const char *me = r->g->host[n->rank];
	int failed = 0, from = -1;
	switch (line[0]) {
	case 'R':
		n->ready = true;
		break;
	case 'G':
		n->verdict = 1;
		break;
	case 'F':
		n->verdict = -1;
		n->said = true;
		break;
	case 'E':
		n->said = true;
		r->failed = true;
		break;
	case 'S':
		if (sscanf(line, "S %d %d", &failed, &from) == 2) {
			if (failed)
				r->failed = true;
			bool seen = from >= 0 && (size_t)from < r->g->nhost &&
			            (n->told_by[from / 8] & (1u << (from % 8)));
			if (from >= 0 && (size_t)from < r->g->nhost && !seen)
				fprintf(stderr, "ipcrun: host '%s': stopping the graph: host "
				        "'%s' (rank %d) %s\n", me, r->g->host[from], from,
				        failed ? "had a kernel fail" : "asked");
			if (from >= 0 && (size_t)from < r->g->nhost)
				n->told_by[from / 8] |= (uint8_t)(1u << (from % 8));
			n->peer_stop = true;
		}
		break;
	default:
		break;
	}
}

void ir_net_read(struct ir_run *r)
{
	struct ir_net_rt *n = &r->net;
	for (;;) {
		ssize_t k = read(n->status, n->buf + n->len, sizeof n->buf - 1 - n->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(n->status);
				n->status = -1;
			}
			return;
		}
		n->len += (size_t)k;
		n->buf[n->len] = 0;
		char *s = n->buf, *nl;
		while ((nl = strchr(s, '\n'))) {
			*nl = 0;
			net_line(r, s);
			s = nl + 1;
		}
		n->len -= (size_t)(s - n->buf);
		memmove(n->buf, s, n->len);
		if (n->len == sizeof n->buf - 1)
			n->len = 0;
	}
}

bool ir_net_reap(struct ir_run *r, pid_t pid, int ws)
{
	struct ir_net_rt *n = &r->net;
	if (!n->on || pid != n->pid || n->reaped)
		return false;
	if (n->status >= 0)
		ir_net_read(r);
	n->reaped = true;
	if (n->ctrl >= 0) {
		close(n->ctrl);
		n->ctrl = -1;
	}
	if (n->status >= 0) {
		close(n->status);
		n->status = -1;
	}
	bool clean = WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	if (clean || (n->verdict < 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 2))
		return true;
	r->failed = true;
	if (!n->said) {
		if (WIFSIGNALED(ws))
			fprintf(stderr, "ipcrun: host '%s': the bridge (@net, pid %d) was "
			        "killed by signal %d (%s)\n", r->g->host[n->rank], (int)pid,
			        WTERMSIG(ws), strsignal(WTERMSIG(ws)));
		else
			fprintf(stderr, "ipcrun: host '%s': the bridge (@net, pid %d) "
			        "exited with status %d\n", r->g->host[n->rank], (int)pid,
			        WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	}
	return true;
}

void ir_net_final(struct ir_run *r, bool local_done)
{
	struct ir_net_rt *n = &r->net;
	if (!n->on || !local_done || n->final_told || n->verdict <= 0)
		return;
	n->final_told = true;
	bool failed = r->failed;
	for (size_t k = 0; k < r->g->nkernel; k++)
		if (!r->krt[k].remote &&
		    (r->krt[k].state != IR_K_RETURNED || r->krt[k].rc != 0))
			failed = true;
	to_net(n, failed ? "Z1" : "Z0");
}

bool ir_net_done(const struct ir_run *r)
{
	return !r->net.on || r->net.reaped || r->net.pid < 0;
}

void ir_net_kill(struct ir_run *r)
{
	if (r->net.on && r->net.pid > 0 && !r->net.reaped)
		kill(r->net.pid, SIGKILL);
}

int ir_net_exit(const struct ir_run *r, int code)
{
	if (r->net.on && r->net.verdict < 0)
		return IR_EXIT_USAGE;
	return code;
}

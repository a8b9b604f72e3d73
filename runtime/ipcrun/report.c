/*
 * What a run tells its user: the live --progress line (records/s per channel,
 * sampled from the buffer's channel list), the --stats table at the end (per
 * channel and per kernel, from the counters each kernel thread sent back),
 * and one line per failed kernel naming its process and code or signal, the
 * root causes first and their consequences after, marked as such.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcrun.h"

static void human(double v, char *out, size_t len)
{
	if (v >= 1e9)
		snprintf(out, len, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.1fk", v / 1e3);
	else
		snprintf(out, len, "%.0f", v);
}

void ir_report_progress(struct ir_run *r, bool final)
{
	const struct ir_graph *g = r->g;
	if (final) {
		ir_term_clear(r);
		return;
	}
	if (!r->buf || g->nconn == 0)
		return;
	uint64_t now = ir_now_ns();
	if (!r->prog_sent) {
		r->prog_sent = ir_xrealloc(NULL, g->nconn * sizeof *r->prog_sent);
		memset(r->prog_sent, 0, g->nconn * sizeof *r->prog_sent);
		r->prog_t = r->t_go;
	}
	/* in a file, one plain line every few seconds: the rates over them */
	if (!r->prog_tty && now - r->prog_t < IR_PROGRESS_PLAIN_MS * 1000000ull)
		return;
	size_t cap = g->nconn + 16;
	struct ipc_channel_info *ci = ir_xrealloc(NULL, cap * sizeof *ci);
	size_t n = ipc_channel_list(r->buf, ci, cap);
	if (n > cap)
		n = cap;
	double dt = (double)(now - r->prog_t) / 1e9;
	if (dt <= 0)
		dt = 1e-9;
	/* the whole line; ir_term_show cuts it to the terminal */
	char line[1024];
	int o = snprintf(line, sizeof line, "%6.1fs",
	                 (double)(now - r->t_go) / 1e9);
	for (size_t c = 0; c < g->nconn; c++) {
		uint64_t sent = r->prog_sent[c];
		bool found = false;
		for (size_t i = 0; i < n; i++)
			if (ci[i].id == g->conn[c].id && ci[i].type == IPC_CHANNEL_SPSC) {
				sent = ci[i].sent;
				found = true;
			}
		char rate[32];
		human(found ? (double)(sent - r->prog_sent[c]) / dt : 0, rate,
		      sizeof rate);
		r->prog_sent[c] = sent;
		int w = snprintf(line + o, sizeof line - (size_t)o, " | %s.%s %s/s",
		                 g->conn[c].fk, g->conn[c].fp, found ? rate : "-");
		if (w < 0 || (size_t)(o + w) >= sizeof line)
			break;
		o += w;
	}
	r->prog_t = now;
	free(ci);
	ir_term_show(r, line);
}

void ir_report_stats(const struct ir_run *r, FILE *f)
{
	const struct ir_graph *g = r->g;
	double secs = (double)((r->t_end > r->t_go ? r->t_end : r->t_go) - r->t_go) / 1e9;
	fprintf(f, "ipcrun: %s: %.3f s\n", g->name, secs);
	fprintf(f, "%-32s %12s %14s %8s %10s %10s\n", "channel", "records", "bytes",
	        "hwm", "blk-send", "blk-recv");
	for (size_t c = 0; c < g->nconn; c++) {
		const struct ir_conn *cn = &g->conn[c];
		struct ipc__port_stats tx = {0}, rx = {0};
		for (int dir = 0; dir < 2; dir++) {
			size_t k = dir ? cn->from : cn->to;
			const struct ir_kernel *gk = &g->kernel[k];
			for (size_t i = 0; i < gk->nport; i++)
				if (gk->port[i].conn == c)
					*(dir ? &tx : &rx) = r->krt[k].pst[i];
		}
		char name[96];
		snprintf(name, sizeof name, "%s.%s->%s.%s", cn->fk, cn->fp, cn->tk,
		         cn->tp);
		uint64_t hwm = tx.hwm > rx.hwm ? tx.hwm : rx.hwm;
		/* a producer that died reported nothing: its consumer's count */
		if (rx.records > tx.records) {
			tx.records = rx.records;
			tx.bytes = rx.bytes;
		}
		fprintf(f, "%-32s %12" PRIu64 " %14" PRIu64 " %8" PRIu64
		        " %9.3fs %9.3fs\n", name, tx.records, tx.bytes, hwm,
		        (double)tx.blocked_ns / 1e9, (double)rx.blocked_ns / 1e9);
	}
	fprintf(f, "%-20s %-12s %10s %8s\n", "kernel", "process", "cpu", "result");
	for (size_t k = 0; k < g->nkernel; k++) {
		const struct ir_kernel_rt *kr = &r->krt[k];
		char res[32];
		if (kr->remote)
			continue;
		switch (kr->state) {
		case IR_K_RETURNED: snprintf(res, sizeof res, "%d", kr->rc); break;
		case IR_K_CRASHED: snprintf(res, sizeof res, "signal %d", kr->signo); break;
		case IR_K_LOST: snprintf(res, sizeof res, "lost"); break;
		default: snprintf(res, sizeof res, "-"); break;
		}
		fprintf(f, "%-20s %-12s %9.3fs %8s\n", g->kernel[k].name,
		        g->proc[g->kernel[k].proc].name, (double)kr->cpu_ns / 1e9, res);
	}
	bool any = false;
	for (size_t p = 0; p < g->nproc; p++)
		any |= r->prt[p].restarts || r->prt[p].lost;
	if (any) {
		fprintf(f, "%-20s %-12s %10s %8s\n", "process", "restart", "restarts",
		        "lost");
		for (size_t p = 0; p < g->nproc; p++)
			fprintf(f, "%-20s %-12s %10u %8llu\n", g->proc[p].name,
			        ir_restart_name(g->proc[p].policy), r->prt[p].restarts,
			        (unsigned long long)r->prt[p].lost);
	}
}

/* One kernel's failure, or "" when it did not fail. */
static void describe(const struct ir_run *r, size_t k, char *out, size_t len)
{
	const struct ir_graph *g = r->g;
	const struct ir_kernel_rt *kr = &r->krt[k];
	const struct ir_kernel *gk = &g->kernel[k];
	const struct ir_proc_rt *pr = &r->prt[gk->proc];
	/* across hosts, every line also names the host: "(process 'p',
	 * host 'h', pid N)" */
	char pn[2 * IR_NAME_MAX + 16];
	const char *host = ir_proc_host(g, gk->proc);
	snprintf(pn, sizeof pn, "%s%s%s", g->proc[gk->proc].name,
	         host ? "', host '" : "", host ? host : "");
	out[0] = 0;
	if (kr->setup_failed || kr->remote)
		return; /* reported when it happened, or by its host */
	switch (kr->state) {
	case IR_K_RETURNED:
		if (kr->rc != 0)
			snprintf(out, len, "kernel '%s' (process '%s') failed: returned %d",
			         gk->name, pn, kr->rc);
		break;
	case IR_K_CRASHED: {
		char at[64] = "";
		if (kr->has_addr)
			snprintf(at, sizeof at, " at address 0x%llx",
			         (unsigned long long)kr->addr);
		snprintf(out, len, "kernel '%s' (process '%s', pid %d) crashed: "
		         "signal %d (%s)%s%s%s", gk->name, pn, (int)pr->pid, kr->signo,
		         strsignal(kr->signo), at, kr->where[0] ? " in " : "", kr->where);
		break;
	}
	case IR_K_LOST:
		if (pr->killed && r->escalated)
			snprintf(out, len, "kernel '%s' (process '%s') killed: the "
			         "graph was not draining", gk->name, pn);
		else if (pr->killed && r->interrupts >= 2)
			snprintf(out, len, "kernel '%s' (process '%s') killed on the "
			         "second interrupt", gk->name, pn);
		else if (pr->killed)
			snprintf(out, len, "kernel '%s' (process '%s') killed by ipcrun: "
			         "still running %d ms after the graph was stopped",
			         gk->name, pn, 500);
		else if (kr->signo)
			snprintf(out, len, "kernel '%s' (process '%s', pid %d) died: "
			         "killed by signal %d (%s)", gk->name, pn, (int)pr->pid,
			         kr->signo, strsignal(kr->signo));
		else
			snprintf(out, len, "kernel '%s' (process '%s', pid %d) died: its "
			         "process exited with status %d before the kernel returned",
			         gk->name, pn, (int)pr->pid, kr->rc);
		break;
	default:
		if (r->t_go)
			snprintf(out, len, "kernel '%s' (process '%s') did not report its "
			         "end", gk->name, pn);
		break;
	}
}

/* Did kernel k fail only because another did: a port of it saw its peer die
 * or fail, ipcrun killed it while stopping the graph, or it died with its
 * process because a kernel beside it crashed? */
static bool consequence(const struct ir_run *r, size_t k)
{
	const struct ir_graph *g = r->g;
	const struct ir_kernel_rt *kr = &r->krt[k];
	const struct ir_proc_rt *pr = &r->prt[g->kernel[k].proc];
	switch (kr->state) {
	case IR_K_RETURNED:
		return kr->peer;
	case IR_K_LOST:
		if (pr->killed)
			return r->interrupts < 2;
		for (size_t j = 0; j < g->nkernel; j++)
			if (j != k && g->kernel[j].proc == g->kernel[k].proc &&
			    r->krt[j].state == IR_K_CRASHED)
				return true;
		return false;
	case IR_K_CRASHED:
		return false;
	default:
		return true;
	}
}

/*
 * The failures, root causes first (by the time they happened: a crash is
 * timed by the crashing thread, a return by the kernel's thread, a death by
 * its reaping), then their consequences, marked as such. A run whose only
 * failures look like consequences (nothing else to blame) prints them plain.
 */
void ir_report_restarts(const struct ir_run *r, FILE *f)
{
	const struct ir_graph *g = r->g;
	for (size_t p = 0; p < g->nproc; p++) {
		const struct ir_proc_rt *pr = &r->prt[p];
		if (!pr->restarts && (!pr->lost || g->proc[p].policy == IR_RESTART_NO))
			continue;
		fprintf(f, "ipcrun: process '%s' was restarted %u time%s (restart = %s); "
		        "%llu record%s lost\n", g->proc[p].name, pr->restarts,
		        pr->restarts == 1 ? "" : "s", ir_restart_name(g->proc[p].policy),
		        (unsigned long long)pr->lost, pr->lost == 1 ? "" : "s");
	}
}

int ir_report_failures(const struct ir_run *r, FILE *f)
{
	const struct ir_graph *g = r->g;
	if (r->net.verdict < 0)
		return 0; /* a host could not start: no kernel ran anywhere */
	size_t *idx = ir_xrealloc(NULL, (g->nkernel + 1) * sizeof *idx);
	size_t n = 0, roots = 0;
	char line[768];
	for (size_t k = 0; k < g->nkernel; k++) {
		describe(r, k, line, sizeof line);
		if (!line[0])
			continue;
		idx[n++] = k;
		if (!consequence(r, k))
			roots++;
	}
	/* insertion sort: roots first, each group by time (unknown last),
	 * then topology order */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			size_t a = idx[j - 1], b = idx[j];
			bool ca = roots && consequence(r, a), cb = roots && consequence(r, b);
			uint64_t ta = r->krt[a].t_fail ? r->krt[a].t_fail : UINT64_MAX;
			uint64_t tb = r->krt[b].t_fail ? r->krt[b].t_fail : UINT64_MAX;
			if (ca < cb || (ca == cb && ta <= tb))
				break;
			idx[j - 1] = b;
			idx[j] = a;
		}
	for (size_t i = 0; i < n; i++) {
		const struct ir_kernel_rt *kr = &r->krt[idx[i]];
		bool c = roots && consequence(r, idx[i]);
		/* the kernel's process printed this very line when it happened
		 * (runner.c), before any of its consequences could */
		if (kr->state == IR_K_RETURNED && !kr->peer)
			continue;
		describe(r, idx[i], line, sizeof line);
		fprintf(f, "ipcrun: %s%s\n", c ? "  consequence: " : "", line);
	}
	free(idx);
	return (int)n;
}

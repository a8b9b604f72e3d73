/*
 * Showing a resolved graph: `ipcrun --check` (processes, threads, channels
 * with ids and capacities) and `ipcrun --dot` (Graphviz, one cluster per
 * process). Both print to f and start nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ipcrun.h"

void ir_format_size(uint64_t n, char *out, size_t len)
{
	static const char unit[] = "KMGT";
	int u = -1;
	while (n >= 1024 && n % 1024 == 0 && u < 3) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, len, "%" PRIu64, n);
	else
		snprintf(out, len, "%" PRIu64 "%c", n, unit[u]);
}

static const char *wait_name(enum ipc_wait_mode w)
{
	switch (w) {
	case IPC_WAIT_SPIN: return "spin";
	case IPC_WAIT_BLOCK: return "block";
	case IPC_WAIT_HYBRID: return "hybrid";
	default: return "default";
	}
}

static const char *shm_name(enum ipc_shm_kind k)
{
	switch (k) {
	case IPC_SHM_POSIX: return "posix";
	case IPC_SHM_SYSV: return "sysv";
	case IPC_SHM_MEMFD: return "memfd";
	default: return "default";
	}
}

static const char *sem_name(enum ipc_sem_kind k)
{
	switch (k) {
	case IPC_SEM_POSIX: return "posix";
	case IPC_SEM_SYSV: return "sysv";
	default: return "default";
	}
}

static void print_value(const struct ir_value *v, FILE *f)
{
	fprintf(f, "%s:", ir_type_name(v->type));
	switch (v->type) {
	case IR_I8: case IR_I16: case IR_I32: case IR_I64:
		fprintf(f, "%" PRId64, v->v.i);
		break;
	case IR_U8: case IR_U16: case IR_U32: case IR_U64:
		fprintf(f, "%" PRIu64, v->v.u);
		break;
	case IR_F32: case IR_F64:
		fprintf(f, "%g", v->v.d);
		break;
	case IR_STR:
		fputc('"', f);
		for (const char *c = v->s; *c; c++)
			fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
		fputc('"', f);
		break;
	default:
		break;
	}
}

static void print_kernel(const struct ir_graph *g, const struct ir_kernel *k,
                         FILE *f)
{
	fprintf(f, "    kernel %s: %s", k->name, k->function.val);
	if (k->func) {
		fprintf(f, " %s(", ir_type_name(k->ret));
		for (size_t i = 0; i < k->nparam; i++)
			fprintf(f, "%s%s", i ? ", " : "", ir_type_name(k->param[i]));
		fputc(')', f);
	}
	if (k->lib < g->nlib && g->lib[k->lib].path)
		fprintf(f, " from %s", g->lib[k->lib].path);
	else
		fprintf(f, " from %s", k->library.val);
	fputc('\n', f);
	if (k->narg) {
		fputs("      args ", f);
		for (size_t i = 0; i < k->narg; i++) {
			if (i)
				fputs(", ", f);
			print_value(&k->arg[i], f);
		}
		fputc('\n', f);
	}
	for (size_t i = 0; i < k->nport; i++)
		fprintf(f, "      %-3s %-10s channel %" PRIu64 "\n",
		        k->port[i].out ? "out" : "in", k->port[i].name,
		        g->conn[k->port[i].conn].id);
}

/* One line per replicated kernel: what `replicas` expanded into. */
static void print_replicas(const struct ir_graph *g, FILE *f)
{
	for (size_t i = 0; i < g->nkernel; i++) {
		const struct ir_kernel *k = &g->kernel[i];
		if (k->rep != 0)
			continue;
		size_t len = strlen(k->name) - 1; /* "NAME#" */
		size_t n = 0;
		bool merged = false;
		for (size_t j = 0; j < g->nkernel; j++) {
			const char *o = g->kernel[j].name;
			if (strncmp(o, k->name, len) != 0)
				continue;
			n += g->kernel[j].rep >= 0;
			merged |= strcmp(o + len, "merge") == 0;
		}
		int b = (int)len - 1;
		fprintf(f, "  replicas of %.*s (line %d): %.*s#0..%.*s#%zu, split %s "
		        "by %.*s#split", b, k->name, k->replicas.line, b, k->name, b,
		        k->name, n - 1, k->split.val ? k->split.val : "rr", b, k->name);
		if (merged)
			fprintf(f, ", merged by %.*s#merge (order %s)", b, k->name,
			        k->seq ? "keep" : "any");
		fputc('\n', f);
	}
}

void ir_print_check(const struct ir_graph *g, FILE *f)
{
	char size[32];
	ir_format_size(g->buffer, size, sizeof size);
	fprintf(f, "graph %s (%s): buffer %s, shm %s, sem %s, wait %s, "
	        "capacity %" PRIu32 ", batch %" PRIu32 ", linger %" PRIu64 "us\n",
	        g->name, g->file, size, shm_name(g->shm), sem_name(g->sem),
	        wait_name(g->wait), g->capacity, g->batch, g->linger_ns / 1000);
	fprintf(f, "%zu process%s, %zu kernel%s (one thread each), %zu channel%s%s\n",
	        g->nproc, g->nproc == 1 ? "" : "es", g->nkernel,
	        g->nkernel == 1 ? "" : "s", g->nconn, g->nconn == 1 ? "" : "s",
	        g->threads ? " (--threads)" : "");
	print_replicas(g, f);
	for (size_t h = 0; h < (g->nhost ? g->nhost : 1); h++) {
		size_t np = 0;
		for (size_t p = 0; p < g->nproc; p++)
			np += g->proc[p].hidx == h;
		if (g->nhost)
			fprintf(f, "  host %s (rank %zu): %zu process%s%s\n", g->host[h], h,
			        np, np == 1 ? "" : "es", np ? "" : " (runs nothing)");
		for (size_t p = 0; p < g->nproc; p++) {
			if (g->proc[p].hidx != h)
				continue;
			fprintf(f, "  %sprocess %s: %zu thread%s", g->nhost ? "  " : "",
			        g->proc[p].name, g->proc[p].nkernel,
			        g->proc[p].nkernel == 1 ? "" : "s");
			if (g->proc[p].policy != IR_RESTART_NO)
				fprintf(f, ", restart = %s (at most %u within %.3g s)",
				        ir_restart_name(g->proc[p].policy), g->proc[p].rmax,
				        (double)g->proc[p].rwindow_ms / 1000);
			fputc('\n', f);
			for (size_t i = 0; i < g->nkernel; i++)
				if (g->kernel[i].proc == p)
					print_kernel(g, &g->kernel[i], f);
		}
	}
	if (g->nconn)
		fputs("  channels:\n", f);
	for (size_t i = 0; i < g->nconn; i++) {
		const struct ir_conn *c = &g->conn[i];
		fprintf(f, "    %" PRIu64 ": %s.%s -> %s.%s capacity %" PRIu32
		        " batch %" PRIu32 " wait %s (%s -> %s)", c->id, c->fk, c->fp,
		        c->tk, c->tp, c->capacity, c->batch, wait_name(c->wait),
		        g->proc[g->kernel[c->from].proc].name,
		        g->proc[g->kernel[c->to].proc].name);
		if (c->bridged)
			fprintf(f, " bridged %s -> %s window %" PRIu32 "%s",
			        g->host[c->hfrom], g->host[c->hto], c->window,
			        g->by_host ? " (ZeroMQ)" : "");
		fputc('\n', f);
	}
}

static void print_dot_process(const struct ir_graph *g, size_t p,
                              const char *in, FILE *f)
{
	fprintf(f, "%s  subgraph \"cluster_%s\" {\n%s    label=\"process %s\";\n",
	        in, g->proc[p].name, in, g->proc[p].name);
	for (size_t i = 0; i < g->nkernel; i++)
		if (g->kernel[i].proc == p)
			fprintf(f, "%s    \"%s\" [label=\"%s\\n%s\"];\n", in,
			        g->kernel[i].name, g->kernel[i].name,
			        g->kernel[i].function.val);
	fprintf(f, "%s  }\n", in);
}

void ir_print_dot(const struct ir_graph *g, FILE *f)
{
	fprintf(f, "digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box];\n",
	        g->name);
	const char *in = g->nhost ? "  " : "";
	for (size_t h = 0; h < g->nhost; h++) {
		fprintf(f, "  subgraph \"cluster_host_%s\" {\n    label=\"host %s "
		        "(rank %zu)\";\n    style=bold;\n", g->host[h], g->host[h], h);
		for (size_t p = 0; p < g->nproc; p++)
			if (g->proc[p].hidx == h)
				print_dot_process(g, p, in, f);
		fputs("  }\n", f);
	}
	for (size_t p = 0; !g->nhost && p < g->nproc; p++)
		print_dot_process(g, p, in, f);
	for (size_t i = 0; i < g->nconn; i++) {
		const struct ir_conn *c = &g->conn[i];
		if (c->bridged)
			fprintf(f, "  \"%s\" -> \"%s\" [label=\"%s -> %s (%" PRIu32
			        ", bridged, window %" PRIu32 ")\", style=dashed, "
			        "color=blue];\n", c->fk, c->tk, c->fp, c->tp, c->capacity,
			        c->window);
		else
			fprintf(f, "  \"%s\" -> \"%s\" [label=\"%s -> %s (%" PRIu32
			        ")\"];\n", c->fk, c->tk, c->fp, c->tp, c->capacity);
	}
	fputs("}\n", f);
}

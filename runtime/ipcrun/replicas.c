/*
 * Replicated kernels: `replicas = N` on a kernel section, with `split = rr |
 * hash` and `order = keep | any`, rewrites the parsed graph before any check:
 *
 *   X.p -> W.in, W.out -> Y.q      (W with replicas = 3, process = P)
 *
 * becomes
 *
 *   X.p -> W#split.in
 *   W#split.out0 -> W#0.in ... W#split.out2 -> W#2.in
 *   W#0.out -> W#merge.in0 ... W#2.out -> W#merge.in2
 *   W#merge.out -> Y.q
 *
 * W#i runs in process P#i (one process per replica) when W has a process,
 * else as a thread of 'main'; W#split and W#merge run in P (or 'main'). The
 * inserted connections take the capacity and wait mode of the connection they
 * replace, and its line, so that errors point at what the user wrote.
 *
 * The split is the stock split_rr / split_hash, the merge the stock merge
 * (first come, first served). With order = keep they are seq_split_rr /
 * seq_split_hash and merge_ordered (kernels/ordered.c): the split stamps a
 * sequence number on every record, the replicas carry it (ipcrun's function
 * kernel driver, or the kernel API for actor kernels: W#i.seq), and the merge
 * restores the input order; with a hash split the merge learns where each
 * record went from an extra connection W#split.route -> W#merge.route.
 *
 * Names with '#' cannot be written in a topology, so the inserted names never
 * clash with the user's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcrun.h"

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof buf, f, ap);
	va_end(ap);
	return ir_strdup(buf);
}

static void set(struct ir_key *k, char *val, int line)
{
	free(k->val);
	k->val = val;
	k->line = line;
}

static void dup_key(struct ir_key *d, const struct ir_key *s)
{
	d->val = ir_strdup(s->val);
	d->line = s->line;
}

/* A new kernel section; returns its index (g->kernel may move). */
static size_t add_kernel(struct ir_graph *g, char *name, int line)
{
	g->kernel = ir_xrealloc(g->kernel, (g->nkernel + 1) * sizeof *g->kernel);
	struct ir_kernel *k = &g->kernel[g->nkernel];
	memset(k, 0, sizeof *k);
	k->name = name;
	k->line = line;
	k->lib = SIZE_MAX;
	k->rep = -1;
	return g->nkernel++;
}

static void add_conn(struct ir_graph *g, char *fk, char *fp, char *tk,
                     char *tp, const struct ir_conn *like)
{
	g->conn = ir_xrealloc(g->conn, (g->nconn + 1) * sizeof *g->conn);
	g->conn[g->nconn++] = (struct ir_conn){
		.fk = fk, .fp = fp, .tk = tk, .tp = tp, .line = like->line,
		.capacity = like->capacity, .wait = like->wait};
}

static void add_process(struct ir_graph *g, const char *name, int line)
{
	for (size_t i = 0; i < g->nproc; i++)
		if (strcmp(g->proc[i].name, name) == 0)
			return; /* two replicated kernels of one process share P#i */
	g->proc = ir_xrealloc(g->proc, (g->nproc + 1) * sizeof *g->proc);
	g->proc[g->nproc++] = (struct ir_process){.name = ir_strdup(name),
	                                          .line = line};
}

static void set_stock(struct ir_kernel *k, const char *function, int line,
                      const struct ir_key *process)
{
	set(&k->library, ir_strdup("libipckernels.so"), line);
	set(&k->function, ir_strdup(function), line);
	if (process->val)
		dup_key(&k->process, process);
}

/* The connections of kernel name, as input (to) or output; at most max
 * indexes in idx. Returns how many there are. */
static size_t conns_of(const struct ir_graph *g, const char *name, bool to,
                       size_t *idx, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nconn; i++)
		if (strcmp(to ? g->conn[i].tk : g->conn[i].fk, name) == 0) {
			if (n < max)
				idx[n] = i;
			n++;
		}
	return n;
}

static void expand_one(struct ir_graph *g, size_t ki)
{
	struct ir_kernel *k = &g->kernel[ki];
	uint64_t n;
	int rline = k->replicas.line;
	if (ir_parse_uint(k->replicas.val, IR_MAX_REPLICAS, &n) || n == 0) {
		ir_diag(g, rline, "replicas '%s' must be a number from 1 to %d",
		        k->replicas.val, IR_MAX_REPLICAS);
		return;
	}
	bool hash = false, keep = false;
	if (k->split.val) {
		hash = strcmp(k->split.val, "hash") == 0;
		if (!hash && strcmp(k->split.val, "rr") != 0) {
			ir_diag(g, k->split.line, "split '%s' must be rr (round-robin) "
			        "or hash (equal records to one replica)", k->split.val);
			return;
		}
	}
	if (k->order.val) {
		keep = strcmp(k->order.val, "keep") == 0;
		if (!keep && strcmp(k->order.val, "any") != 0) {
			ir_diag(g, k->order.line, "order '%s' must be keep (the input's "
			        "order) or any (first come, first served)", k->order.val);
			return;
		}
	}
	size_t in[4], out[4];
	size_t nin = conns_of(g, k->name, true, in, 4);
	size_t nout = conns_of(g, k->name, false, out, 4);
	if (nin == 1 && nout >= 1 && in[0] == out[0])
		return; /* a self-loop: ir_check_liveness says so */
	if (nin != 1) {
		if (nin == 0)
			ir_diag(g, rline, "kernel '%s' has no input to split among its "
			        "replicas; replicate a kernel with one input (or remove "
			        "'replicas')", k->name);
		else
			ir_diag(g, rline, "kernel '%s' has %zu inputs (connected at lines "
			        "%d and %d%s); only a kernel with one input can be "
			        "replicated: replicate the kernels that feed it instead, "
			        "or remove 'replicas'", k->name, nin, g->conn[in[0]].line,
			        g->conn[in[1]].line, nin > 2 ? ", ..." : "");
		return;
	}
	if (nout > 1) {
		ir_diag(g, rline, "kernel '%s' has %zu outputs (connected at lines %d "
		        "and %d%s); a replicated kernel has at most one output: "
		        "remove 'replicas', or give it one output and fan out after "
		        "the merge", k->name, nout, g->conn[out[0]].line,
		        g->conn[out[1]].line, nout > 2 ? ", ..." : "");
		return;
	}
	if (n == 1)
		return; /* nothing to expand */
	if (g->nkernel + n + 1 > IR_MAX_KERNELS || g->nconn + 2 * n + 1 >
	    IR_MAX_CONNS || (k->process.val && g->nproc + n > IR_MAX_PROCESSES)) {
		ir_diag(g, rline, "%llu replicas of '%s' make more than %d kernels, "
		        "%d processes or %d connections", (unsigned long long)n,
		        k->name, IR_MAX_KERNELS, IR_MAX_PROCESSES, IR_MAX_CONNS);
		return;
	}
	char *base = ir_strdup(k->name);
	struct ir_key proc = {0};
	if (k->process.val)
		dup_key(&proc, &k->process);
	bool merge = nout == 1;
	keep = keep && merge; /* a replicated sink has nothing to order */

	/* the replicas: this section becomes base#0, copies are base#1.. */
	size_t first = ki;
	for (uint64_t i = 0; i < n; i++) {
		size_t r = i ? add_kernel(g, NULL, g->kernel[first].line) : first;
		struct ir_kernel *o = &g->kernel[first], *c = &g->kernel[r];
		if (i) {
			struct ir_key *from[] = {&o->library, &o->function, &o->args,
			                         &o->signature, &o->in, &o->out};
			struct ir_key *to[] = {&c->library, &c->function, &c->args,
			                       &c->signature, &c->in, &c->out};
			for (size_t j = 0; j < sizeof from / sizeof from[0]; j++)
				if (from[j]->val)
					dup_key(to[j], from[j]);
		}
		free(c->name);
		c->name = fmt("%s#%llu", base, (unsigned long long)i);
		c->rep = (int)i;
		c->seq = keep;
		if (proc.val) {
			char *pn = fmt("%s#%llu", proc.val, (unsigned long long)i);
			add_process(g, pn, proc.line);
			set(&c->process, pn, proc.line);
		}
	}
	size_t s = add_kernel(g, fmt("%s#split", base), rline);
	set_stock(&g->kernel[s], keep ? (hash ? "seq_split_hash" : "seq_split_rr")
	          : (hash ? "split_hash" : "split_rr"), rline, &proc);

	/* the input now feeds the split, which feeds every replica */
	struct ir_conn cin = g->conn[in[0]];
	char *port = cin.tp;
	g->conn[in[0]].tk = fmt("%s#split", base);
	g->conn[in[0]].tp = ir_strdup("in");
	free(cin.tk);
	for (uint64_t i = 0; i < n; i++)
		add_conn(g, fmt("%s#split", base), fmt("out%llu", (unsigned long long)i),
		         fmt("%s#%llu", base, (unsigned long long)i), ir_strdup(port),
		         &cin);
	free(port);

	if (merge) {
		size_t m = add_kernel(g, fmt("%s#merge", base), rline);
		set_stock(&g->kernel[m], keep ? "merge_ordered" : "merge", rline,
		          &proc);
		struct ir_conn cout = g->conn[out[0]];
		char *op = cout.fp;
		g->conn[out[0]].fk = fmt("%s#merge", base);
		g->conn[out[0]].fp = ir_strdup("out");
		free(cout.fk);
		for (uint64_t i = 0; i < n; i++)
			add_conn(g, fmt("%s#%llu", base, (unsigned long long)i),
			         ir_strdup(op), fmt("%s#merge", base),
			         fmt("in%llu", (unsigned long long)i), &cout);
		free(op);
		if (keep && hash)
			add_conn(g, fmt("%s#split", base), ir_strdup("route"),
			         fmt("%s#merge", base), ir_strdup("route"), &cin);
	}
	free(proc.val);
	free(base);
}

void ir_replicas_expand(struct ir_graph *g)
{
	size_t n0 = g->nkernel;
	for (size_t i = 0; i < n0; i++) {
		struct ir_kernel *k = &g->kernel[i];
		if (k->replicas.val) {
			expand_one(g, i);
			continue;
		}
		if (k->split.val || k->order.val)
			ir_diag(g, k->split.val ? k->split.line : k->order.line,
			        "'%s' applies to replicated kernels; add 'replicas = N' "
			        "to [kernel:%s] or remove it", k->split.val ? "split" :
			        "order", k->name);
	}
}

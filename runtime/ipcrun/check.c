/*
 * The whole-graph checks: every value, name, library, symbol, port and
 * connection of a parsed topology, before anything is created. Each error
 * names the line it comes from and how to fix it; all of them are collected.
 * On success the graph is resolved: processes, kernel types and args, sorted
 * ports, channel ids and capacities.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcrun.h"

static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > IR_NAME_MAX || (!isalpha((unsigned char)*s) && *s != '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static void check_graph_keys(struct ir_graph *g)
{
	if (g->gname.val) {
		g->name = ir_strdup(g->gname.val);
		bool ok = *g->name && strlen(g->name) <= 64;
		for (const char *c = g->name; *c; c++)
			ok &= isprint((unsigned char)*c) != 0;
		if (!ok)
			ir_diag(g, g->gname.line, "name '%s' must be 1 to 64 printable "
			        "characters", g->gname.val);
	} else if (strcmp(g->file, "<stdin>") == 0) {
		g->name = ir_strdup("stdin");
	} else {
		const char *b = strrchr(g->file, '/');
		b = b ? b + 1 : g->file;
		const char *dot = strrchr(b, '.');
		g->name = dot && dot > b ? ir_strndup(b, (size_t)(dot - b)) : ir_strdup(b);
	}
	g->buffer = IPC_BUFFER_SIZE_DEFAULT;
	if (g->gbuffer.val) {
		uint64_t v;
		int rc = ir_parse_size(g->gbuffer.val, &v);
		if (rc)
			ir_diag(g, g->gbuffer.line, "buffer '%s' is not a size (a number of "
			        "bytes with an optional K, M or G suffix, e.g. 64M)",
			        g->gbuffer.val);
		else if (v < (1u << 20) || v > (64ull << 30))
			ir_diag(g, g->gbuffer.line, "buffer '%s' must be from 1M to 64G",
			        g->gbuffer.val);
		else
			g->buffer = v;
	}
	g->shm = IPC_SHM_DEFAULT;
	if (g->gshm.val) {
		const char *v = g->gshm.val;
		g->shm = !strcmp(v, "posix") ? IPC_SHM_POSIX :
		         !strcmp(v, "sysv") ? IPC_SHM_SYSV :
		         !strcmp(v, "memfd") ? IPC_SHM_MEMFD : IPC_SHM_DEFAULT;
		if (!g->shm)
			ir_diag(g, g->gshm.line, "shm '%s' must be posix, sysv or memfd", v);
	}
	g->sem = IPC_SEM_DEFAULT;
	if (g->gsem.val) {
		const char *v = g->gsem.val;
		g->sem = !strcmp(v, "posix") ? IPC_SEM_POSIX :
		         !strcmp(v, "sysv") ? IPC_SEM_SYSV : IPC_SEM_DEFAULT;
		if (!g->sem)
			ir_diag(g, g->gsem.line, "sem '%s' must be posix or sysv", v);
	}
	g->capacity = IPC_CHANNEL_CAPACITY_DEFAULT;
	if (g->gcapacity.val) {
		uint64_t v;
		if (ir_parse_uint(g->gcapacity.val, IR_CAPACITY_MAX, &v) || v == 0)
			ir_diag(g, g->gcapacity.line, "capacity '%s' must be a number of "
			        "records from 1 to %u", g->gcapacity.val, IR_CAPACITY_MAX);
		else
			g->capacity = (uint32_t)v;
	}
	g->stall_ms = IR_STALL_DEFAULT_MS;
	if (g->gstall.val && ir_parse_duration_ms(g->gstall.val, &g->stall_ms))
		ir_diag(g, g->gstall.line, "stall_timeout '%s' must be a duration "
		        "such as 5s, 500ms or 1m, at most a day (0: no watchdog)",
		        g->gstall.val);
	g->batch = IR_BATCH_DEFAULT;
	if (g->gbatch.val) {
		uint64_t v;
		if (ir_parse_size(g->gbatch.val, &v) || v > IR_BATCH_MAX)
			ir_diag(g, g->gbatch.line, "batch '%s' must be a size in bytes from "
			        "0 (one item per record) to 16M", g->gbatch.val);
		else
			g->batch = (uint32_t)v;
	}
	g->linger_ns = (uint64_t)IR_LINGER_DEFAULT_US * 1000;
	if (g->glinger.val) {
		/* a duration: 500us, 1ms, 0.5ms, 2s; a bare number is microseconds */
		const char *v = g->glinger.val;
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		double mul = !strcmp(end, "") || !strcmp(end, "us") ? 1 :
		             !strcmp(end, "ms") ? 1e3 : !strcmp(end, "s") ? 1e6 : -1;
		if (errno || end == v || mul < 0 || !(d * mul >= 1) ||
		    d * mul > IR_LINGER_MAX_US)
			ir_diag(g, g->glinger.line, "linger '%s' must be a duration from "
			        "1us to 10s (e.g. 500us, 1ms)", v);
		else
			g->linger_ns = (uint64_t)(d * mul * 1000);
	}
	g->wait = IPC_WAIT_DEFAULT; /* auto: decided in ir_check */
	if (g->gwait.val && strcmp(g->gwait.val, "auto") != 0) {
		const char *v = g->gwait.val;
		g->wait = !strcmp(v, "spin") ? IPC_WAIT_SPIN :
		          !strcmp(v, "block") ? IPC_WAIT_BLOCK :
		          !strcmp(v, "hybrid") ? IPC_WAIT_HYBRID : IPC_WAIT_DEFAULT;
		if (!g->wait)
			ir_diag(g, g->gwait.line, "wait '%s' must be auto, spin, block or hybrid",
			        v);
	}
}

static size_t find_proc(const struct ir_graph *g, const char *name)
{
	for (size_t i = 0; i < g->nproc; i++)
		if (strcmp(g->proc[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static size_t add_proc(struct ir_graph *g, const char *name)
{
	g->proc = ir_xrealloc(g->proc, (g->nproc + 1) * sizeof *g->proc);
	g->proc[g->nproc] = (struct ir_process){.name = ir_strdup(name)};
	return g->nproc++;
}

static void check_processes(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nkernel; i++) {
		struct ir_kernel *k = &g->kernel[i];
		const char *p = k->process.val ? k->process.val : "main";
		size_t j = find_proc(g, p);
		if (j == SIZE_MAX && strcmp(p, "main") == 0)
			j = add_proc(g, "main");
		if (j == SIZE_MAX) {
			const char **names = ir_xrealloc(NULL, (g->nproc + 1) * sizeof *names);
			for (size_t n = 0; n < g->nproc; n++)
				names[n] = g->proc[n].name;
			names[g->nproc] = "main";
			const char *hint = ir_suggest(p, names, g->nproc + 1);
			free(names);
			if (hint)
				ir_diag(g, k->process.line, "unknown process '%s'; did you mean "
				        "'%s'?", p, hint);
			else
				ir_diag(g, k->process.line, "unknown process '%s'; add a "
				        "[process:%s] section (or leave 'process' out to run in "
				        "process 'main')", p, p);
			k->proc = 0;
			continue;
		}
		k->proc = j;
		g->proc[j].nkernel++;
	}
	for (size_t j = 0; j < g->nproc; j++)
		if (g->proc[j].nkernel == 0 && g->proc[j].line)
			ir_diag(g, g->proc[j].line, "process '%s' has no kernels; remove the "
			        "section or set 'process = %s' in a [kernel:...] section",
			        g->proc[j].name, g->proc[j].name);
}

/* --threads: every kernel in one process, "main". */
static void collapse_processes(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nproc; i++) {
		free(g->proc[i].name);
		free(g->proc[i].host.val);
	}
	g->nproc = 0;
	add_proc(g, "main");
	g->proc[0].nkernel = g->nkernel;
	for (size_t i = 0; i < g->nkernel; i++)
		g->kernel[i].proc = 0;
}

static bool c_ident(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static void check_kernel_keys(struct ir_graph *g, struct ir_kernel *k)
{
	char err[256];
	if (!k->library.val || !*k->library.val)
		ir_diag(g, k->library.val ? k->library.line : k->line, "[kernel:%s] "
		        "needs 'library = ...' (a .so path, or a name such as "
		        "libipckernels.so)", k->name);
	if (!k->function.val || !*k->function.val)
		ir_diag(g, k->function.val ? k->function.line : k->line, "[kernel:%s] "
		        "needs 'function = ...' (the C function to run)", k->name);
	else if (!c_ident(k->function.val) || strlen(k->function.val) > 200)
		ir_diag(g, k->function.line, "function '%s' is not a C identifier",
		        k->function.val);
	if (k->signature.val) {
		if (ir_parse_signature(k->signature.val, &k->ret, k->param, &k->nparam,
		                       err, sizeof err))
			ir_diag(g, k->signature.line, "signature '%s': %s; write it as "
			        "RESULT(TYPE, ...), e.g. i64(i64)", k->signature.val, err);
		else
			k->func = true;
		if (k->args.val)
			ir_diag(g, k->args.line, "a function kernel (with 'signature') "
			        "takes no args; remove 'args' or 'signature'");
		if (k->in.val || k->out.val)
			ir_diag(g, k->in.val ? k->in.line : k->out.line, "a function "
			        "kernel's ports are in0, in1, ... and out; remove '%s'",
			        k->in.val ? "in" : "out");
		return;
	}
	struct { struct ir_key *key; struct ir_portset *ps; const char *n; } d[] = {
		{&k->in, &k->pin, "in"}, {&k->out, &k->pout, "out"}};
	for (int i = 0; i < 2; i++) {
		if (!d[i].key->val)
			continue;
		if (ir_portset_parse(d[i].ps, d[i].key->val, err, sizeof err))
			ir_diag(g, d[i].key->line, "%s '%s': %s", d[i].n, d[i].key->val,
			        err);
	}
	/* declaring either direction makes both known */
	if (k->in.val || k->out.val)
		k->pin.known = k->pout.known = true;
}

static void function_ports(struct ir_kernel *k)
{
	ir_portset_free(&k->pin);
	ir_portset_free(&k->pout);
	k->pin.known = k->pout.known = true;
	k->pin.n = k->nparam;
	k->pin.name = ir_xrealloc(NULL, k->nparam * sizeof *k->pin.name);
	k->pin.mode = ir_xrealloc(NULL, k->nparam);
	for (size_t i = 0; i < k->nparam; i++) {
		char n[32];
		snprintf(n, sizeof n, "in%zu", i);
		k->pin.name[i] = ir_strdup(n);
		k->pin.mode[i] = 0;
	}
	if (k->ret != IR_VOID) {
		k->pout.n = 1;
		k->pout.name = ir_xrealloc(NULL, sizeof *k->pout.name);
		k->pout.mode = ir_xrealloc(NULL, 1);
		k->pout.name[0] = ir_strdup("out");
		k->pout.mode[0] = 0;
	}
}

/* The spec's ports and arg types; returns the number of spec args or -1. */
static int apply_spec(struct ir_graph *g, struct ir_kernel *k,
                      enum ir_type *types)
{
	const struct ipc_kernel_spec *s = k->spec;
	char err[256];
	if (k->func) {
		ir_diag(g, k->signature.line, "'%s' is an actor kernel (its library "
		        "declares IPC_KERNEL for it); remove 'signature'",
		        k->function.val);
		return -1;
	}
	if (k->in.val || k->out.val) {
		ir_diag(g, k->in.val ? k->in.line : k->out.line, "the ports of '%s' "
		        "come from its library (in: \"%s\", out: \"%s\"); remove '%s'",
		        k->function.val, s->in ? s->in : "", s->out ? s->out : "",
		        k->in.val ? "in" : "out");
		return -1;
	}
	if (ir_portset_parse(&k->pin, s->in ? s->in : "", err, sizeof err) ||
	    ir_portset_parse(&k->pout, s->out ? s->out : "", err, sizeof err)) {
		ir_diag(g, k->function.line, "the library's IPC_KERNEL spec of '%s' "
		        "has bad ports: %s; fix the library", k->function.val, err);
		return -1;
	}
	int n = 0;
	const char *p = s->args ? s->args : "";
	while (*p) {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		const char *b = p;
		while (*p && *p != ',' && !isspace((unsigned char)*p))
			p++;
		if (p == b)
			break;
		enum ir_type t = ir_type_parse(b, (size_t)(p - b));
		if (t == IR_NONE || t == IR_VOID || t == IR_BOOL || n == IR_MAX_ARGS) {
			ir_diag(g, k->function.line, "the library's IPC_KERNEL spec of '%s' "
			        "has bad args \"%s\"; fix the library", k->function.val,
			        s->args);
			return -1;
		}
		types[n++] = t;
	}
	return n;
}

static void check_args(struct ir_graph *g, struct ir_kernel *k)
{
	enum ir_type spec_t[IR_MAX_ARGS];
	int nspec = -1;
	if (k->spec) {
		nspec = apply_spec(g, k, spec_t);
		if (nspec < 0)
			return;
	}
	if (k->func)
		return;
	char err[256];
	struct ir_arg_token *a = NULL;
	size_t n = 0;
	if (k->args.val && ir_split_args(k->args.val, &a, &n, err, sizeof err)) {
		ir_diag(g, k->args.line, "args: %s; write them as TYPE:VALUE, ... "
		        "e.g. u64:1000, str:\"a, b\"", err);
		return;
	}
	int line = k->args.val ? k->args.line : k->line;
	if (nspec >= 0 && (size_t)nspec != n) {
		char want[160] = "";
		for (int i = 0; i < nspec; i++) {
			strncat(want, i ? ", " : "", sizeof want - strlen(want) - 1);
			strncat(want, ir_type_name(spec_t[i]), sizeof want - strlen(want) - 1);
		}
		ir_diag(g, line, "'%s' takes %d arg%s (%s), %zu given",
		        k->function.val, nspec, nspec == 1 ? "" : "s",
		        nspec ? want : "none", n);
		ir_free_args(a, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		enum ir_type t = IR_NONE;
		if (a[i].type)
			t = ir_type_parse(a[i].type, strlen(a[i].type));
		if (nspec >= 0) {
			if (t != IR_NONE && t != spec_t[i]) {
				ir_diag(g, line, "arg %zu is %s, but '%s' takes %s there",
				        i + 1, a[i].type, k->function.val,
				        ir_type_name(spec_t[i]));
				continue;
			}
			t = spec_t[i];
		} else if (t == IR_NONE) {
			ir_diag(g, line, "arg %zu ('%s') needs a type: write TYPE:%s, TYPE "
			        "one of i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 str (no "
			        "IPC_KERNEL spec of '%s' gives it)", i + 1, a[i].value,
			        a[i].value, k->function.val ? k->function.val : "?");
			continue;
		}
		const char *why = "";
		if (ir_parse_value(t, a[i].value, &k->arg[k->narg], &why))
			ir_diag(g, line, "arg %zu: '%s' is %s for %s", i + 1, a[i].value,
			        why, ir_type_name(t));
		else
			k->narg++;
	}
	ir_free_args(a, n);
}

static size_t find_kernel(const struct ir_graph *g, const char *name)
{
	for (size_t i = 0; i < g->nkernel; i++)
		if (strcmp(g->kernel[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static bool resolve_end(struct ir_graph *g, struct ir_conn *c, bool to)
{
	const char *kn = to ? c->tk : c->fk, *pn = to ? c->tp : c->fp;
	size_t k = find_kernel(g, kn);
	if (k == SIZE_MAX) {
		const char **names = ir_xrealloc(NULL, (g->nkernel + 1) * sizeof *names);
		for (size_t i = 0; i < g->nkernel; i++)
			names[i] = g->kernel[i].name;
		const char *hint = ir_suggest(kn, names, g->nkernel);
		free(names);
		if (hint)
			ir_diag(g, c->line, "unknown kernel '%s' in '%s.%s'; did you mean "
			        "'%s'?", kn, kn, pn, hint);
		else
			ir_diag(g, c->line, "unknown kernel '%s' in '%s.%s'; define it in "
			        "a [kernel:%s] section", kn, kn, pn, kn);
		return false;
	}
	if (!port_name_ok(pn)) {
		ir_diag(g, c->line, "'%s' is not a port name (letters, digits and "
		        "'_', at most %d)", pn, IR_NAME_MAX);
		return false;
	}
	struct ir_kernel *kk = &g->kernel[k];
	const struct ir_portset *want = to ? &kk->pin : &kk->pout;
	const struct ir_portset *other = to ? &kk->pout : &kk->pin;
	if (want->known && ir_portset_match(want, pn) < 0) {
		char list[256];
		ir_portset_format(want, list, sizeof list);
		if (other->known && ir_portset_match(other, pn) >= 0)
			ir_diag(g, c->line, "'%s.%s' is an %s port; a connection goes "
			        "from an output (left of '->') to an input (right)", kn, pn,
			        to ? "output" : "input");
		else
			ir_diag(g, c->line, "kernel '%s' has no %s port '%s' (its %ss: %s)",
			        kn, to ? "input" : "output", pn, to ? "input" : "output",
			        list);
		return false;
	}
	if (to)
		c->to = k;
	else
		c->from = k;
	return true;
}

static void check_connections(struct ir_graph *g)
{
	bool *ok = ir_xrealloc(NULL, g->nconn + 1);
	/* per end: an end that resolved is connected, whatever the other end
	 * (whose error is reported) */
	bool *end_ok = ir_xrealloc(NULL, 2 * g->nconn + 2);
	for (size_t i = 0; i < g->nconn; i++) {
		struct ir_conn *c = &g->conn[i];
		bool a = resolve_end(g, c, false);
		bool b = resolve_end(g, c, true);
		ok[i] = a && b;
		end_ok[2 * i] = a;
		end_ok[2 * i + 1] = b;
		bool own_capacity = c->capacity != 0;
		if (!c->capacity)
			c->capacity = g->capacity;
		if (!c->wait)
			c->wait = g->wait;
		if (!c->batch_set)
			c->batch = g->batch;
		if ((uint64_t)c->batch * 4 > g->buffer) {
			ir_diag(g, c->line, "batch %u is more than a quarter of the buffer "
			        "(%llu bytes): lower batch or raise [graph] buffer",
			        c->batch, (unsigned long long)g->buffer);
		} else if (c->batch && !own_capacity) {
			/* Batches in flight on every channel together stay within
			 * half the buffer: otherwise full queues hold all the memory
			 * and every producer waits for memory that only they would
			 * free (a deadlock). A connection's own capacity= is kept. */
			uint64_t fit = g->buffer / 2 / (g->nconn ? g->nconn : 1) /
			               ((uint64_t)c->batch + 64);
			if (fit < 4)
				fit = 4;
			if (fit < c->capacity)
				c->capacity = (uint32_t)fit;
		}
		c->id = i + 1;
		if (!ok[i])
			continue;
		for (size_t j = 0; j < i; j++) {
			struct ir_conn *d = &g->conn[j];
			if (!ok[j])
				continue;
			if (d->from == c->from && !strcmp(d->fp, c->fp))
				ir_diag(g, c->line, "output '%s.%s' is connected twice (first "
				        "at line %d); fan out with a stock split or broadcast "
				        "kernel", c->fk, c->fp, d->line);
			if (d->to == c->to && !strcmp(d->tp, c->tp))
				ir_diag(g, c->line, "input '%s.%s' is connected twice (first "
				        "at line %d); fan in with a stock merge kernel", c->tk,
				        c->tp, d->line);
			if (d->to == c->from && !strcmp(d->tp, c->fp))
				ir_diag(g, c->line, "port '%s.%s' is used as an output here and "
				        "as an input at line %d; give them different names",
				        c->fk, c->fp, d->line);
			if (d->from == c->to && !strcmp(d->fp, c->tp))
				ir_diag(g, c->line, "port '%s.%s' is used as an input here and "
				        "as an output at line %d; give them different names",
				        c->tk, c->tp, d->line);
		}
	}
	/* every known, non-optional port is connected; families without gaps */
	for (size_t k = 0; k < g->nkernel; k++) {
		struct ir_kernel *kk = &g->kernel[k];
		for (int dir = 0; dir < 2; dir++) {
			const struct ir_portset *ps = dir ? &kk->pout : &kk->pin;
			for (size_t e = 0; ps->known && e < ps->n; e++) {
				size_t count = 0, max = 0;
				bool exact = false;
				for (size_t i = 0; i < g->nconn; i++) {
					struct ir_conn *c = &g->conn[i];
					if (!end_ok[2 * i + (dir ? 0 : 1)] ||
					    (dir ? c->from : c->to) != k)
						continue;
					const char *pn = dir ? c->fp : c->tp;
					if (ir_portset_match(ps, pn) != (int)e)
						continue;
					count++;
					if (ps->mode[e] == '*') {
						/* at most IR_MAX_CONNS members, so a longer
						 * index (which could overflow) is an error */
						const char *ix = pn + strlen(ps->name[e]);
						size_t idx = strlen(ix) > 9 ? SIZE_MAX :
						             (size_t)strtoull(ix, NULL, 10);
						if (idx >= IR_MAX_CONNS) {
							ir_diag(g, c->line, "port '%s.%s' is out of range: "
							        "a port family has at most %d members "
							        "(%s0..%s%d)", kk->name, pn, IR_MAX_CONNS,
							        ps->name[e], ps->name[e], IR_MAX_CONNS - 1);
							count--;
							continue;
						}
						if (idx + 1 > max)
							max = idx + 1;
					} else {
						exact = true;
					}
				}
				const char *io = dir ? "output" : "input";
				if (ps->mode[e] == 0 && !exact && dir)
					ir_diag_after(g, kk->line, "output '%s.%s' is never connected; "
					              "add 'connect = %s.%s -> KERNEL.PORT' under "
					              "[connections]", kk->name, ps->name[e], kk->name,
					              ps->name[e]);
				else if (ps->mode[e] == 0 && !exact)
					ir_diag_after(g, kk->line, "input '%s.%s' is never connected; "
					              "add 'connect = KERNEL.PORT -> %s.%s' under "
					              "[connections]", kk->name, ps->name[e], kk->name,
					              ps->name[e]);
				else if (ps->mode[e] == '*' && count == 0)
					ir_diag_after(g, kk->line, "'%s' needs at least one %s %s0; "
					              "connect %s.%s0", kk->name, io, ps->name[e],
					              kk->name, ps->name[e]);
				else if (ps->mode[e] == '*' && max != count)
					ir_diag_after(g, kk->line, "%ss %s0..%s%zu of '%s' must all be "
					              "connected, without gaps (%zu of %zu are)", io,
					              ps->name[e], ps->name[e], max - 1, kk->name, count,
					              max);
			}
		}
	}
	free(ok);
	free(end_ok);
}

static int port_cmp(const void *a, const void *b)
{
	const struct ir_port *x = a, *y = b;
	if (x->out != y->out)
		return x->out ? 1 : -1;
	return ipc__port_name_cmp(x->name, y->name);
}

static void build_ports(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nconn; i++) {
		struct ir_conn *c = &g->conn[i];
		for (int dir = 0; dir < 2; dir++) {
			struct ir_kernel *k = &g->kernel[dir ? c->from : c->to];
			k->port = ir_xrealloc(k->port, (k->nport + 1) * sizeof *k->port);
			k->port[k->nport++] = (struct ir_port){
				ir_strdup(dir ? c->fp : c->tp), dir == 1, i};
			if (!dir)
				k->nin++;
		}
	}
	for (size_t k = 0; k < g->nkernel; k++)
		if (g->kernel[k].nport > 1)
			qsort(g->kernel[k].port, g->kernel[k].nport,
			      sizeof(struct ir_port), port_cmp);
}

/* ---- liveness: graphs that can never run ----
 * A self-loop (a kernel's output feeding its own input), and a cycle that
 * nothing outside it feeds: every kernel in it waits for input from the
 * others, so none starts (a function kernel waits for a record on every
 * input; an actor kernel that sends before it receives would still feed a
 * cycle whose every member is its own source, which a topology should not
 * rely on). Tarjan's strongly connected components over the connections. */
struct scc {
	const struct ir_graph *g;
	size_t *index, *low, *stack, *comp;
	bool *on;
	size_t next, sp, ncomp;
};

static void scc_visit(struct scc *s, size_t v)
{
	s->index[v] = s->low[v] = ++s->next;
	s->stack[s->sp++] = v;
	s->on[v] = true;
	for (size_t i = 0; i < s->g->nconn; i++) {
		const struct ir_conn *c = &s->g->conn[i];
		if (c->from != v)
			continue;
		size_t w = c->to;
		if (!s->index[w]) {
			scc_visit(s, w);
			if (s->low[w] < s->low[v])
				s->low[v] = s->low[w];
		} else if (s->on[w] && s->index[w] < s->low[v]) {
			s->low[v] = s->index[w];
		}
	}
	if (s->low[v] == s->index[v]) {
		size_t w;
		do {
			w = s->stack[--s->sp];
			s->on[w] = false;
			s->comp[w] = s->ncomp;
		} while (w != v);
		s->ncomp++;
	}
}

static void check_liveness(struct ir_graph *g)
{
	size_t n = g->nkernel;
	struct scc s = {.g = g};
	s.index = ir_xrealloc(NULL, n * sizeof *s.index);
	s.low = ir_xrealloc(NULL, n * sizeof *s.low);
	s.stack = ir_xrealloc(NULL, n * sizeof *s.stack);
	s.comp = ir_xrealloc(NULL, n * sizeof *s.comp);
	s.on = ir_xrealloc(NULL, n * sizeof *s.on);
	memset(s.index, 0, n * sizeof *s.index);
	memset(s.on, 0, n * sizeof *s.on);
	for (size_t i = 0; i < g->nconn; i++) {
		const struct ir_conn *c = &g->conn[i];
		if (c->from == c->to)
			ir_diag(g, c->line, "'%s.%s -> %s.%s' feeds kernel '%s' its own "
			        "output: it waits for input only it could send, so it "
			        "never starts; connect the output to another kernel",
			        c->fk, c->fp, c->tk, c->tp, c->fk);
	}
	for (size_t v = 0; v < n; v++)
		if (!s.index[v])
			scc_visit(&s, v);
	for (size_t comp = 0; comp < s.ncomp; comp++) {
		size_t members = 0, first = SIZE_MAX;
		bool fed = false;
		for (size_t v = 0; v < n; v++)
			if (s.comp[v] == comp && members++ == 0)
				first = v;
		if (members < 2)
			continue;
		int line = 0;
		char path[512] = "";
		for (size_t i = 0; i < g->nconn; i++) {
			const struct ir_conn *c = &g->conn[i];
			if (s.comp[c->to] != comp)
				continue;
			if (s.comp[c->from] != comp) {
				fed = true;
				break;
			}
			if (!line || c->line < line)
				line = c->line;
		}
		if (fed)
			continue;
		/* name the cycle: the members in kernel order */
		for (size_t v = first; v < n; v++)
			if (s.comp[v] == comp) {
				size_t l = strlen(path);
				snprintf(path + l, sizeof path - l, "%s'%s'", l ? ", " : "",
				         g->kernel[v].name);
			}
		ir_diag(g, line, "kernels %s form a cycle that nothing outside it "
		        "feeds: each waits for input from another, so none ever "
		        "starts; feed the cycle from a source (through a merge) or "
		        "break it", path);
	}
	free(s.index);
	free(s.low);
	free(s.stack);
	free(s.comp);
	free(s.on);
}

int ir_check(struct ir_graph *g, const struct ir_load_opts *o)
{
	check_graph_keys(g);
	if (g->nkernel == 0)
		ir_diag(g, -1, "no kernels; add a [kernel:NAME] section with library "
		        "and function");
	ir_replicas_expand(g);
	check_processes(g);
	ir_restart_resolve(g);
	for (size_t i = 0; i < g->nkernel; i++)
		check_kernel_keys(g, &g->kernel[i]);
	if (o->load)
		ir_libs_resolve(g);
	for (size_t i = 0; i < g->nkernel; i++) {
		struct ir_kernel *k = &g->kernel[i];
		if (k->func)
			function_ports(k);
		/* without its library, what its args should be is unknown */
		if (!o->load || k->fn)
			check_args(g, k);
	}
	check_connections(g);
	ir_hosts_check(g);
	if (g->ndiag)
		return -1;
	check_liveness(g);
	if (g->ndiag)
		return -1;
	/* auto: spinning pays only while every kernel can have a core; with
	 * more kernels than cores a waiting kernel had better sleep at once
	 * (measured: a 4-process pipeline on 2 cores runs 2x faster so). */
	if (g->wait == IPC_WAIT_DEFAULT) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		g->wait = cpus > 0 && g->nkernel > (size_t)cpus ? IPC_WAIT_BLOCK : IPC_WAIT_HYBRID;
	}
	if (o->host && ir_hosts_localize(g, o->host))
		return -1;
	if (g->threads && g->nhost > 1)
		ir_hosts_collapse(g);
	else if (g->threads)
		collapse_processes(g);
	build_ports(g);
	return 0;
}

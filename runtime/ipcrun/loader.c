/*
 * Reading a topology: inih parses the keys; our reader hands it one line at a
 * time, which gives every key its line number and lets us handle what inih
 * does not:
 *  - line length: inih reads at most IR_LINE_MAX characters a line and would
 *    silently split a longer one; we report it instead;
 *  - empty sections: inih calls its handler only for keys, so a section
 *    header is recognised here, when the reader sees it;
 *  - continuation lines: inih treats an indented line as the continuation of
 *    the previous value; we strip leading blanks so that every line stands on
 *    its own (an indented key is just a key);
 *  - NUL bytes, a key outside any section, a line that is not "key = value".
 * Errors are collected (up to max_diags) so that one run shows all of them.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcrun.h"

enum sec_kind { SEC_NONE, SEC_GRAPH, SEC_PROCESS, SEC_KERNEL, SEC_CONN, SEC_BAD };

struct parse {
	struct ir_graph *g;
	const char *text;
	size_t len, pos;
	int line;
	enum sec_kind sec;
	size_t idx;         /* kernel or process index */
	bool outside_seen;  /* a key outside sections was reported */
	bool limit_seen;
};

static const char *const sections[] = {"graph", "process", "kernel",
                                       "connections"};
static const char *const graph_keys[] = {"name", "buffer", "shm", "sem",
                                         "capacity", "wait", "stall_timeout",
                                         "hosts", "curve", "batch", "linger"};
#define NGRAPH_KEYS (sizeof graph_keys / sizeof graph_keys[0])
static const char *const kernel_keys[] = {"library", "function", "process",
                                          "args", "signature", "in", "out",
                                          "replicas", "split", "order"};
#define NKERNEL_KEYS (sizeof kernel_keys / sizeof kernel_keys[0])

static void vdiag(struct ir_graph *g, int line, bool after, const char *fmt,
                  va_list ap) __attribute__((format(printf, 4, 0)));

static void vdiag(struct ir_graph *g, int line, bool after, const char *fmt,
                  va_list ap)
{
	/* a value whose parameter could not be expanded was kept as written:
	 * what the checks say about it would only repeat that error */
	for (size_t i = 0; line > 0 && i < g->nquiet; i++)
		if (g->quiet_line[i] == line)
			return;
	if (g->ndiag >= (g->max_diag ? g->max_diag : 50)) {
		g->diag_truncated = true;
		return;
	}
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	g->diag = ir_xrealloc(g->diag, (g->ndiag + 1) * sizeof *g->diag);
	g->diag[g->ndiag].file = line >= 0 ? ir_strdup(g->file) : NULL;
	g->diag[g->ndiag].line = line;
	g->diag[g->ndiag].msg = ir_strdup(buf);
	g->diag[g->ndiag].after = after;
	g->ndiag++;
}

void ir_diag(struct ir_graph *g, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(g, line, false, fmt, ap);
	va_end(ap);
}

void ir_diag_after(struct ir_graph *g, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(g, line, true, fmt, ap);
	va_end(ap);
}

static int diag_cmp(const void *a, const void *b)
{
	const struct ir_diag *x = a, *y = b;
	return (x->line > y->line) - (x->line < y->line);
}

void ir_diags_print(const struct ir_graph *g, FILE *f)
{
	/* causes first, then what may follow from them (ir_diag_after); each
	 * group in line order; a stable copy so that equal lines keep their
	 * order */
	struct ir_diag *d = ir_xrealloc(NULL, g->ndiag * sizeof *d);
	size_t n = 0, causes = 0;
	for (int pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < g->ndiag; i++)
			if (g->diag[i].after == (pass >= 2) &&
			    (g->diag[i].line <= 0) == (pass % 2 == 0))
				d[n++] = g->diag[i];
	for (size_t i = 0; i < n; i++)
		causes += !d[i].after;
	/* insertion sort keeps equal lines in order (qsort would not) */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && d[j - 1].after == d[j].after &&
		     diag_cmp(&d[j - 1], &d[j]) > 0; j--) {
			struct ir_diag t = d[j];
			d[j] = d[j - 1];
			d[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (d[i].line > 0 && d[i].after && causes)
			fprintf(f, "%s:%d: error: %s (this may follow from an error "
			        "above)\n", d[i].file, d[i].line, d[i].msg);
		else if (d[i].line > 0)
			fprintf(f, "%s:%d: error: %s\n", d[i].file, d[i].line, d[i].msg);
		else if (d[i].line == 0)
			fprintf(f, "ipcrun: -D: error: %s\n", d[i].msg);
		else
			fprintf(f, "%s: error: %s\n", g->file, d[i].msg);
	}
	if (g->diag_truncated)
		fprintf(f, "%s: too many errors; fix these first\n", g->file);
	free(d);
}

static void set_key(struct parse *p, struct ir_key *k, const char *name,
                    const char *value)
{
	if (k->val) {
		ir_diag(p->g, p->line, "'%s' is set twice (first at line %d); keep "
		        "one", name, k->line);
		return;
	}
	k->val = ir_strdup(value);
	k->line = p->line;
}

static void unknown_key(struct parse *p, const char *name, const char *where,
                        const char *const *keys, size_t n)
{
	const char *hint = ir_suggest(name, keys, n);
	char list[256] = "";
	for (size_t i = 0; i < n; i++) {
		strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
		strncat(list, keys[i], sizeof list - strlen(list) - 1);
	}
	if (hint)
		ir_diag(p->g, p->line, "unknown key '%s' in %s; did you mean '%s'?",
		        name, where, hint);
	else
		ir_diag(p->g, p->line, "unknown key '%s' in %s (keys: %s)", name,
		        where, list);
}

/* "a.p -> b.q capacity=N batch=B wait=W" */
static void parse_connect(struct parse *p, const char *value)
{
	struct ir_graph *g = p->g;
	if (g->nconn == IR_MAX_CONNS) {
		if (!p->limit_seen)
			ir_diag(g, p->line, "more than %d connections", IR_MAX_CONNS);
		p->limit_seen = true;
		return;
	}
	const char *arrow = strstr(value, "->");
	if (!arrow) {
		ir_diag(g, p->line, "a connection is 'kernel.port -> kernel.port', "
		        "with '->'");
		return;
	}
	char *leftbuf = ir_strndup(value, (size_t)(arrow - value));
	char *left = ir_trim(leftbuf);
	char *rest = ir_strdup(arrow + 2);
	char *save = NULL;
	char *right = strtok_r(rest, " \t", &save);
	struct ir_conn c = {.line = p->line};
	bool ok = true;
	char *ends[2] = {left, right};
	for (int i = 0; i < 2 && ok; i++) {
		char *e = ends[i];
		char *dot = e ? strchr(e, '.') : NULL;
		if (!e || !*e || !dot || dot == e || !dot[1] || strchr(dot + 1, '.')) {
			ir_diag(g, p->line, "'%s' is not kernel.port; a connection is "
			        "'kernel.port -> kernel.port'", e && *e ? e : "");
			ok = false;
			break;
		}
		char **k = i ? &c.tk : &c.fk, **pt = i ? &c.tp : &c.fp;
		*k = ir_strndup(e, (size_t)(dot - e));
		*pt = ir_strdup(dot + 1);
	}
	for (char *opt; ok && (opt = strtok_r(NULL, " \t", &save));) {
		uint64_t v;
		if (strncmp(opt, "capacity=", 9) == 0) {
			if (c.capacity) {
				ir_diag(g, p->line, "capacity is given twice");
				ok = false;
			} else if (ir_parse_uint(opt + 9, IR_CAPACITY_MAX, &v) || v == 0) {
				ir_diag(g, p->line, "capacity '%s' must be a number of records "
				        "from 1 to %u", opt + 9, IR_CAPACITY_MAX);
				ok = false;
			} else {
				c.capacity = (uint32_t)v;
			}
		} else if (strncmp(opt, "batch=", 6) == 0) {
			if (c.batch_set) {
				ir_diag(g, p->line, "batch is given twice");
				ok = false;
			} else if (ir_parse_size(opt + 6, &v) || v > IR_BATCH_MAX) {
				ir_diag(g, p->line, "batch '%s' must be a size in bytes from 0 "
				        "(one item per record) to 16M", opt + 6);
				ok = false;
			} else {
				c.batch = (uint32_t)v;
				c.batch_set = true;
			}
		} else if (strncmp(opt, "wait=", 5) == 0) {
			const char *w = opt + 5;
			c.wait = !strcmp(w, "spin") ? IPC_WAIT_SPIN :
			         !strcmp(w, "block") ? IPC_WAIT_BLOCK :
			         !strcmp(w, "hybrid") ? IPC_WAIT_HYBRID : IPC_WAIT_DEFAULT;
			if (!c.wait) {
				ir_diag(g, p->line, "wait '%s' must be spin, block or hybrid", w);
				ok = false;
			}
		} else if (strncmp(opt, "window=", 7) == 0) {
			if (c.window) {
				ir_diag(g, p->line, "window is given twice");
				ok = false;
			} else if (ir_parse_uint(opt + 7, IR_WINDOW_MAX, &v) || v == 0) {
				ir_diag(g, p->line, "window '%s' must be a number of frames "
				        "from 1 to %d", opt + 7, IR_WINDOW_MAX);
				ok = false;
			} else {
				c.window = (uint32_t)v;
			}
		} else {
			ir_diag(g, p->line, "unknown connection option '%s' (options: "
			        "capacity=N, batch=BYTES, wait=spin|block|hybrid, window=N)", opt);
			ok = false;
		}
	}
	free(leftbuf);
	free(rest);
	if (!ok) {
		free(c.fk);
		free(c.fp);
		free(c.tk);
		free(c.tp);
		return;
	}
	g->conn = ir_xrealloc(g->conn, (g->nconn + 1) * sizeof *g->conn);
	g->conn[g->nconn++] = c;
}

/* A parameter's value: TOPDIR, else the last -D NAME=..., else the
 * environment. */
static const char *param_lookup(void *ctx, const char *name)
{
	struct ir_graph *g = ctx;
	if (strcmp(name, "TOPDIR") == 0)
		return g->topdir;
	size_t nl = strlen(name);
	const char *v = NULL;
	for (size_t i = 0; i < g->ndefines; i++) {
		const char *d = g->defines[i];
		const char *eq = strchr(d, '=');
		if (!eq)
			continue;
		/* the name as -D gives it, blanks around it ignored */
		const char *a = d, *b = eq;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if ((size_t)(b - a) == nl && !memcmp(a, name, nl)) {
			v = eq + 1;
			if (g->define_used)
				g->define_used[i] = true;
		}
	}
	return v ? v : getenv(name);
}

static int handler_expanded(struct parse *p, const char *name,
                            const char *value);

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
	struct parse *p = user;
	(void)section; /* ours is exact; inih truncates long section names */
	if (p->sec == SEC_BAD || !strstr(value, "${"))
		return handler_expanded(p, name, value);
	char err[256], *v;
	if (ir_expand(value, param_lookup, p->g, &v, err, sizeof err)) {
		struct ir_graph *g = p->g;
		ir_diag(g, p->line, "%s", err);
		g->quiet_line = ir_xrealloc(g->quiet_line, (g->nquiet + 1) *
		                            sizeof *g->quiet_line);
		g->quiet_line[g->nquiet++] = p->line;
		return handler_expanded(p, name, value); /* as written */
	}
	char *t = ir_trim(v);
	int rc = handler_expanded(p, name, t);
	free(v);
	return rc;
}

static int handler_expanded(struct parse *p, const char *name,
                            const char *value)
{
	struct ir_graph *g = p->g;
	switch (p->sec) {
	case SEC_NONE:
		if (!p->outside_seen)
			ir_diag(g, p->line, "'%s' is outside any section; put it under "
			        "[graph], [kernel:NAME] or [connections]", name);
		p->outside_seen = true;
		break;
	case SEC_BAD:
		break; /* the section header was reported */
	case SEC_GRAPH: {
		struct ir_key *k[] = {&g->gname, &g->gbuffer, &g->gshm, &g->gsem,
		                      &g->gcapacity, &g->gwait, &g->gstall,
		                      &g->ghosts, &g->gcurve, &g->gbatch, &g->glinger};
		for (size_t i = 0; i < NGRAPH_KEYS; i++)
			if (strcmp(name, graph_keys[i]) == 0) {
				set_key(p, k[i], name, value);
				return 1;
			}
		unknown_key(p, name, "[graph]", graph_keys, NGRAPH_KEYS);
		break;
	}
	case SEC_KERNEL: {
		struct ir_kernel *kn = &g->kernel[p->idx];
		struct ir_key *k[] = {&kn->library, &kn->function, &kn->process,
		                      &kn->args, &kn->signature, &kn->in, &kn->out,
		                      &kn->replicas, &kn->split, &kn->order};
		for (size_t i = 0; i < NKERNEL_KEYS; i++)
			if (strcmp(name, kernel_keys[i]) == 0) {
				set_key(p, k[i], name, value);
				return 1;
			}
		char where[64];
		snprintf(where, sizeof where, "[kernel:%s]", kn->name);
		unknown_key(p, name, where, kernel_keys, NKERNEL_KEYS);
		break;
	}
	case SEC_PROCESS: {
		static const char *const proc_keys[] = {"host", "restart", "restart_max",
		                                        "restart_window"};
		struct ir_process *pr = &g->proc[p->idx];
		struct ir_key *k[] = {&pr->host, &pr->restart, &pr->restart_max,
		                      &pr->restart_window};
		for (size_t i = 0; i < 4; i++)
			if (strcmp(name, proc_keys[i]) == 0) {
				set_key(p, k[i], name, value);
				return 1;
			}
		const char *hint = ir_suggest(name, proc_keys, 4);
		if (hint)
			ir_diag(g, p->line, "unknown key '%s' in [process:%s]; did you mean "
			        "'%s'?", name, pr->name, hint);
		else
			ir_diag(g, p->line, "unknown key '%s' in [process:%s] (it takes "
			        "host, restart, restart_max, restart_window); to put a kernel in "
			        "it, set 'process = %s' in its [kernel:...] section", name,
			        pr->name, pr->name);
		break;
	}
	case SEC_CONN:
		if (strcmp(name, "connect") == 0) {
			parse_connect(p, value);
		} else {
			const char *keys[] = {"connect"};
			unknown_key(p, name, "[connections]", keys, 1);
		}
		break;
	}
	return 1;
}

/* A "[kind:name]" line, already stripped of leading blanks. */
static void section_header(struct parse *p, const char *line)
{
	struct ir_graph *g = p->g;
	p->sec = SEC_BAD;
	const char *close = strchr(line, ']');
	if (!close) {
		ir_diag(g, p->line, "a section header needs its closing ']'");
		return;
	}
	const char *after = close + 1;
	while (isspace((unsigned char)*after))
		after++;
	if (*after && *after != ';' && *after != '#') {
		ir_diag(g, p->line, "unexpected '%s' after the section header", after);
		return;
	}
	char *inner = ir_strndup(line + 1, (size_t)(close - line - 1));
	char *colon = strchr(inner, ':');
	char *name = NULL;
	if (colon) {
		*colon = 0;
		name = ir_trim(colon + 1);
	}
	char *kind = ir_trim(inner);
	if (!strcmp(kind, "graph") || !strcmp(kind, "connections")) {
		if (name) {
			ir_diag(g, p->line, "[%s] takes no name; write [%s]", kind, kind);
		} else if (kind[0] == 'c') {
			p->sec = SEC_CONN; /* several [connections] sections add up */
		} else if (g->graph_line) {
			ir_diag(g, p->line, "a second [graph] section (the first is at "
			        "line %d); merge them", g->graph_line);
		} else {
			g->graph_line = p->line;
			p->sec = SEC_GRAPH;
		}
	} else if (!strcmp(kind, "process") || !strcmp(kind, "kernel")) {
		bool kern = kind[0] == 'k';
		if (!name || !*name) {
			ir_diag(g, p->line, "[%s] needs a name: [%s:NAME]", kind, kind);
		} else if (!ir_name_ok(name)) {
			ir_diag(g, p->line, "'%s' is not a valid %s name (a letter or '_', "
			        "then letters, digits, '_' or '-'; at most %d)",
			        name, kind, IR_NAME_MAX);
		} else {
			size_t n = kern ? g->nkernel : g->nproc;
			for (size_t i = 0; i < n; i++) {
				const char *other = kern ? g->kernel[i].name : g->proc[i].name;
				int ol = kern ? g->kernel[i].line : g->proc[i].line;
				if (strcmp(other, name) == 0) {
					ir_diag(g, p->line, "%s '%s' is defined twice (first at "
					        "line %d); rename one", kind, name, ol);
					free(inner);
					return;
				}
			}
			if (n == (kern ? IR_MAX_KERNELS : IR_MAX_PROCESSES)) {
				/* said once, at the first section over the limit */
				bool *said = kern ? &g->over_kernels : &g->over_procs;
				if (!*said)
					ir_diag(g, p->line, "more than %d %s: [%s:%s] and every "
					        "%s section after it are over the limit; run "
					        "the graph as several topologies", kern ?
					        IR_MAX_KERNELS : IR_MAX_PROCESSES, kern ?
					        "kernels" : "processes", kind, name, kind);
				*said = true;
			} else if (kern) {
				g->kernel = ir_xrealloc(g->kernel, (n + 1) * sizeof *g->kernel);
				memset(&g->kernel[n], 0, sizeof g->kernel[n]);
				g->kernel[n].name = ir_strdup(name);
				g->kernel[n].line = p->line;
				g->kernel[n].lib = SIZE_MAX;
				g->kernel[n].rep = -1;
				g->nkernel++;
				p->sec = SEC_KERNEL;
				p->idx = n;
			} else {
				g->proc = ir_xrealloc(g->proc, (n + 1) * sizeof *g->proc);
				memset(&g->proc[n], 0, sizeof g->proc[n]);
				g->proc[n].name = ir_strdup(name);
				g->proc[n].line = p->line;
				g->nproc++;
				p->sec = SEC_PROCESS;
				p->idx = n;
			}
		}
	} else {
		const char *hint = ir_suggest(kind, sections, 4);
		if (hint)
			ir_diag(g, p->line, "unknown section [%s%s%s]; did you mean "
			        "[%s%s]?", kind, name ? ":" : "", name ? name : "", hint,
			        strcmp(hint, "process") && strcmp(hint, "kernel") ? "" :
			        ":NAME");
		else
			ir_diag(g, p->line, "unknown section [%s%s%s] (sections: [graph], "
			        "[process:NAME], [kernel:NAME], [connections])", kind,
			        name ? ":" : "", name ? name : "");
	}
	free(inner);
}

/* inih's reader: the next line into str (num bytes), or NULL at the end. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	if (p->pos >= p->len)
		return NULL;
	const char *b = p->text + p->pos;
	const char *nl = memchr(b, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - b) : p->len - p->pos;
	p->pos += n + (nl ? 1 : 0);
	p->line++;
	if (n && b[n - 1] == '\r')
		n--;
	if (p->line == 1 && n >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3)) {
		b += 3;
		n -= 3;
	}
	str[0] = 0;
	if (memchr(b, 0, n)) {
		ir_diag(p->g, p->line, "a NUL byte; a topology is a text file");
		return str;
	}
	while (n && (*b == ' ' || *b == '\t')) {
		b++;
		n--;
	}
	if (n > IR_LINE_MAX || (int)n >= num) {
		ir_diag(p->g, p->line, "the line is %zu characters long; the limit is "
		        "%d (shorten names or paths)", n, IR_LINE_MAX);
		return str;
	}
	memcpy(str, b, n);
	str[n] = 0;
	if (n == 0 || str[0] == ';' || str[0] == '#')
		return str;
	if (str[0] == '[') {
		section_header(p, str);
		return str;
	}
	/* inih splits at the first '=' or ':' before an inline comment */
	const char *eq = strpbrk(str, "=:");
	const char *cm = strstr(str, " ;");
	const char *cm2 = strstr(str, "\t;");
	if (cm2 && (!cm || cm2 < cm))
		cm = cm2;
	if (!eq || (cm && cm < eq) || eq == str) {
		ir_diag(p->g, p->line, "expected 'key = value'%s",
		        eq == str ? " (the key is missing)" : "");
		str[0] = 0;
	}
	return str;
}

int ir_parse(struct ir_graph *g, const char *file, const char *text, size_t len)
{
	if (!g->file)
		g->file = ir_strdup(file);
	if (!g->dir) {
		const char *slash = strrchr(file, '/');
		g->dir = slash ? ir_strndup(file, (size_t)(slash - file + 1))
		               : ir_strdup("");
	}
	if (!g->topdir) {
		char *abs = realpath(*g->dir ? g->dir : ".", NULL);
		if (!abs) {
			size_t n = strlen(g->dir);
			abs = n > 1 ? ir_strndup(g->dir, n - 1) : ir_strdup(n ? "/" : ".");
		}
		g->topdir = abs;
	}
	struct parse p = {.g = g, .text = text, .len = len};
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (rc < 0)
		ir_diag(g, -1, "cannot parse (inih error %d)", rc);
	else if (rc > 0) {
		bool seen = false;
		for (size_t i = 0; i < g->ndiag; i++)
			seen |= g->diag[i].line == rc;
		if (!seen)
			ir_diag(g, rc, "inih cannot parse this line");
	}
	return g->ndiag ? -1 : 0;
}

static void apply_defines(struct ir_graph *g, const struct ir_load_opts *o)
{
	struct ir_key *k[] = {&g->gname, &g->gbuffer, &g->gshm, &g->gsem,
	                      &g->gcapacity, &g->gwait, &g->gstall,
	                      &g->ghosts, &g->gcurve, &g->gbatch, &g->glinger};
	for (size_t i = 0; i < o->ndefines; i++) {
		const char *d = o->defines[i];
		const char *eq = strchr(d, '=');
		if (!eq || eq == d) {
			ir_diag(g, 0, "'%s' is not key=value", d);
			continue;
		}
		char *keybuf = ir_strndup(d, (size_t)(eq - d));
		char *key = ir_trim(keybuf);
		size_t j;
		for (j = 0; j < NGRAPH_KEYS && strcmp(key, graph_keys[j]); j++)
			;
		if (j == NGRAPH_KEYS) {
			/* not a [graph] key: a parameter, which the topology must use */
			const char *hint = ir_suggest(key, graph_keys, NGRAPH_KEYS);
			if (!ir_param_name_ok(key, strlen(key)))
				ir_diag(g, 0, "'%s' is neither a [graph] key nor a parameter "
				        "name (letters, digits and '_')", key);
			else if (!strcmp(key, "TOPDIR"))
				ir_diag(g, 0, "TOPDIR is the topology's folder; it cannot be "
				        "set with -D");
			else if ((!g->define_used || !g->define_used[i]) && hint)
				ir_diag(g, 0, "unknown [graph] key '%s'; did you mean '%s'? "
				        "(nor does the topology use a parameter ${%s})", key,
				        hint, key);
			else if (!g->define_used || !g->define_used[i])
				ir_diag(g, 0, "'%s' is neither a [graph] key (name, buffer, "
				        "shm, sem, capacity, wait, stall_timeout, hosts, curve, "
				        "batch, linger) nor a parameter the topology uses (as "
				        "${%s})", key, key);
		} else {
			char *tmp = ir_strdup(eq + 1);
			free(k[j]->val);
			k[j]->val = ir_strdup(ir_trim(tmp));
			k[j]->line = 0;
			free(tmp);
		}
		free(keybuf);
	}
}

int ir_load_mem(struct ir_graph *g, const char *file, const char *text,
                size_t len, const struct ir_load_opts *o)
{
	g->max_diag = o->max_diags;
	g->threads = o->threads;
	g->defines = o->defines;
	g->ndefines = o->ndefines;
	free(g->define_used);
	g->define_used = o->ndefines ? ir_xrealloc(NULL, o->ndefines) : NULL;
	if (o->ndefines)
		memset(g->define_used, 0, o->ndefines);
	ir_parse(g, file, text, len);
	apply_defines(g, o);
	return ir_check(g, o);
}

int ir_load_file(struct ir_graph *g, const char *path,
                 const struct ir_load_opts *o)
{
	/* "-": standard input; relative paths and ${TOPDIR} are then the
	 * working folder */
	bool in = strcmp(path, "-") == 0;
	FILE *f = in ? stdin : fopen(path, "rb");
	if (in) {
		char *cwd = getcwd(NULL, 0);
		if (cwd) {
			size_t n = strlen(cwd);
			g->dir = ir_xrealloc(NULL, n + 2);
			memcpy(g->dir, cwd, n);
			strcpy(g->dir + n, n && cwd[n - 1] == '/' ? "" : "/");
			g->topdir = cwd;
		}
		path = "<stdin>";
	}
	if (!f) {
		fprintf(stderr, "ipcrun: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? 2 * cap : 8192;
			text = ir_xrealloc(text, cap);
		}
		size_t n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		if (len > (16u << 20)) {
			if (!in)
				fclose(f);
			free(text);
			fprintf(stderr, "ipcrun: %s: larger than 16 MiB; is it a "
			        "topology?\n", path);
			return -1;
		}
	}
	bool err = ferror(f);
	if (!in)
		fclose(f);
	if (err) {
		free(text);
		fprintf(stderr, "ipcrun: cannot read %s\n", path);
		return -1;
	}
	int rc = ir_load_mem(g, path, text, len, o);
	free(text);
	return rc;
}

static void free_key(struct ir_key *k)
{
	free(k->val);
	k->val = NULL;
}

void ir_graph_free(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nkernel; i++) {
		struct ir_kernel *k = &g->kernel[i];
		free(k->name);
		struct ir_key *keys[] = {&k->library, &k->function, &k->process,
		                         &k->args, &k->signature, &k->in, &k->out,
		                         &k->replicas, &k->split, &k->order};
		for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
			free_key(keys[j]);
		for (size_t j = 0; j < k->narg; j++)
			free(k->arg[j].s);
		ir_portset_free(&k->pin);
		ir_portset_free(&k->pout);
		for (size_t j = 0; j < k->nport; j++)
			free(k->port[j].name);
		free(k->port);
	}
	free(g->kernel);
	for (size_t i = 0; i < g->nproc; i++) {
		free(g->proc[i].name);
		free_key(&g->proc[i].restart);
		free_key(&g->proc[i].restart_max);
		free_key(&g->proc[i].restart_window);
		free_key(&g->proc[i].host);
	}
	free(g->proc);
	ir_hosts_free(g);
	for (size_t i = 0; i < g->nconn; i++) {
		free(g->conn[i].fk);
		free(g->conn[i].fp);
		free(g->conn[i].tk);
		free(g->conn[i].tp);
	}
	free(g->conn);
	ir_libs_close(g);
	free(g->lib);
	struct ir_key *gk[] = {&g->gname, &g->gbuffer, &g->gshm, &g->gsem,
	                       &g->gcapacity, &g->gwait, &g->gstall, &g->ghosts,
	                       &g->gcurve, &g->gbatch, &g->glinger};
	for (size_t j = 0; j < sizeof gk / sizeof gk[0]; j++)
		free_key(gk[j]);
	for (size_t i = 0; i < g->ndiag; i++) {
		free(g->diag[i].file);
		free(g->diag[i].msg);
	}
	free(g->diag);
	free(g->name);
	free(g->file);
	free(g->dir);
	free(g->topdir);
	free(g->define_used);
	free(g->quiet_line);
	memset(g, 0, sizeof *g);
}

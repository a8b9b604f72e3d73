/*
 * One topology across hosts (SCALE_OUT.md 5.1): `[graph] hosts = a, b, ...`
 * names the hosts in launcher rank order, `host = NAME` on a [process:NAME]
 * places it (default: the first host; the implicit process "main" too), and
 * a connection whose ends are on different hosts is a bridged edge, which
 * may take `window=N`. Checked here like every other key; which host this
 * ipcrun is comes later, at run time (net.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcrun.h"

static size_t find_host(const struct ir_graph *g, const char *name)
{
	for (size_t i = 0; i < g->nhost; i++)
		if (strcmp(g->host[i], name) == 0)
			return i;
	return SIZE_MAX;
}

static void parse_hosts(struct ir_graph *g)
{
	const struct ir_key *k = &g->ghosts;
	char *list = ir_strdup(k->val), *save = NULL;
	bool empty = true;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *name = ir_trim(t);
		char *at = strchr(name, '@');
		empty = false;
		if (at) {
			/* name@address:port, for ipcrun --host (ZeroMQ bridges) */
			*at++ = 0;
			char *colon = strrchr(at, ':');
			char *end = NULL;
			unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
			if (!colon || colon == at || !end || *end || port == 0 ||
			    port > 65535 - IR_MAX_CONNS || strlen(at) > 200) {
				ir_diag(g, k->line, "'%s@%s' is not NAME@ADDRESS:PORT (the port "
				        "of its first edge, 1 to %d), e.g. worker@10.0.0.2:7100",
				        name, at, 65535 - IR_MAX_CONNS);
				continue;
			}
		}
		if (!ir_name_ok(name)) {
			ir_diag(g, k->line, "'%s' is not a valid host name (a letter or "
			        "'_', then letters, digits, '_' or '-'; at most %d); hosts "
			        "are names in rank order, e.g. hosts = head, worker",
			        name, IR_NAME_MAX);
			continue;
		}
		if (find_host(g, name) != SIZE_MAX) {
			ir_diag(g, k->line, "host '%s' is listed twice; each host is one "
			        "rank of the job", name);
			continue;
		}
		if (g->nhost == IR_MAX_HOSTS) {
			ir_diag(g, k->line, "more than %d hosts", IR_MAX_HOSTS);
			break;
		}
		g->host = ir_xrealloc(g->host, (g->nhost + 1) * sizeof *g->host);
		g->host_addr = ir_xrealloc(g->host_addr,
		                           (g->nhost + 1) * sizeof *g->host_addr);
		g->host_addr[g->nhost] = at ? ir_strdup(at) : NULL;
		g->host[g->nhost++] = ir_strdup(name);
	}
	if (empty)
		ir_diag(g, k->line, "hosts is empty; write hosts = NAME, ... (host "
		        "names in rank order) or remove it");
	free(list);
}

static void place_processes(struct ir_graph *g)
{
	for (size_t p = 0; p < g->nproc; p++) {
		struct ir_process *pr = &g->proc[p];
		pr->hidx = 0;
		if (!pr->host.val)
			continue;
		if (!g->ghosts.val) {
			ir_diag(g, pr->host.line, "host '%s' but the graph has no hosts; "
			        "add 'hosts = %s, ...' under [graph] (host names in rank "
			        "order)", pr->host.val, pr->host.val);
			continue;
		}
		size_t h = find_host(g, pr->host.val);
		if (h != SIZE_MAX) {
			pr->hidx = h;
			continue;
		}
		const char *hint = ir_suggest(pr->host.val,
		                              (const char *const *)g->host, g->nhost);
		char list[512] = "";
		for (size_t i = 0; i < g->nhost; i++) {
			strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
			strncat(list, g->host[i], sizeof list - strlen(list) - 1);
		}
		if (hint)
			ir_diag(g, pr->host.line, "unknown host '%s'; did you mean '%s'?",
			        pr->host.val, hint);
		else
			ir_diag(g, pr->host.line, "unknown host '%s' (hosts: %s); add it "
			        "to [graph] hosts", pr->host.val, list);
	}
}

void ir_hosts_check(struct ir_graph *g)
{
	if (g->ghosts.val)
		parse_hosts(g);
	if (g->gcurve.val)
		g->curve = ir_strdup(g->gcurve.val);
	place_processes(g);
	for (size_t i = 0; i < g->nconn; i++) {
		struct ir_conn *c = &g->conn[i];
		if (c->from >= g->nkernel || c->to >= g->nkernel)
			continue; /* an unresolved end, reported */
		size_t pf = g->kernel[c->from].proc, pt = g->kernel[c->to].proc;
		if (pf >= g->nproc || pt >= g->nproc)
			continue;
		c->hfrom = g->proc[pf].hidx;
		c->hto = g->proc[pt].hidx;
		c->bridged = c->hfrom != c->hto;
		if (c->window && !c->bridged)
			ir_diag(g, c->line, "window= applies to an edge between hosts; "
			        "%s.%s -> %s.%s stays on one host: remove it (capacity=N "
			        "sizes a local channel)", c->fk, c->fp, c->tk, c->tp);
		if (!c->window)
			c->window = IR_WINDOW_DEFAULT;
	}
}

/* --threads with hosts: one process per host, "main" on the first and
 * "main-HOST" on the others, so that each host still runs its own part. */
void ir_hosts_collapse(struct ir_graph *g)
{
	size_t *hk = ir_xrealloc(NULL, g->nkernel * sizeof *hk + 1);
	for (size_t k = 0; k < g->nkernel; k++)
		hk[k] = g->proc[g->kernel[k].proc].hidx;
	for (size_t i = 0; i < g->nproc; i++) {
		free(g->proc[i].name);
		free(g->proc[i].host.val);
	}
	g->proc = ir_xrealloc(g->proc, g->nhost * sizeof *g->proc);
	g->nproc = 0;
	for (size_t h = 0; h < g->nhost; h++) {
		size_t n = 0;
		for (size_t k = 0; k < g->nkernel; k++)
			n += hk[k] == h;
		if (!n)
			continue;
		char name[IR_NAME_MAX + 8];
		if (h == 0)
			snprintf(name, sizeof name, "main");
		else
			snprintf(name, sizeof name, "main-%s", g->host[h]);
		g->proc[g->nproc] = (struct ir_process){.name = ir_strdup(name),
		                                        .nkernel = n, .hidx = h};
		for (size_t k = 0; k < g->nkernel; k++)
			if (hk[k] == h)
				g->kernel[k].proc = g->nproc;
		g->nproc++;
	}
	free(hk);
}

const char *ir_proc_host(const struct ir_graph *g, size_t proc)
{
	if (!g->nhost || proc >= g->nproc)
		return NULL;
	return g->host[g->proc[proc].hidx];
}

void ir_hosts_free(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nhost; i++) {
		free(g->host[i]);
		free(g->host_addr[i]);
	}
	free(g->host);
	free(g->host_addr);
	free(g->curve);
	g->curve = NULL;
	g->host = NULL;
	g->host_addr = NULL;
	g->nhost = 0;
}

/*
 * ipcrun --host NAME (the ZeroMQ engine): this ipcrun runs only host NAME's
 * part; every bridged edge with an end here gets a bridge kernel of
 * libipcnet.so in a process "@net" of this host in place of its remote end:
 * zmq_tx where this host produces (it connects to the consumer's host),
 * zmq_rx where it consumes (it binds ADDRESS:PORT+edge of this host).
 * Called after every check passed, before the ports are built.
 */
static void add_value(struct ir_kernel *k, enum ir_type t, const char *s,
                      uint64_t u)
{
	struct ir_value *v = &k->arg[k->narg++];
	*v = (struct ir_value){.type = t};
	if (t == IR_STR)
		v->s = ir_strdup(s);
	else
		v->v.u = u;
}

int ir_hosts_localize(struct ir_graph *g, const char *me)
{
	size_t h = find_host(g, me);
	if (!g->nhost || h == SIZE_MAX) {
		ir_diag(g, -1, "--host %s: %s", me, g->nhost ? "no such host in "
		        "[graph] hosts" : "the graph has no [graph] hosts");
		return -1;
	}
	g->me = h;
	g->by_host = true;
	size_t net = SIZE_MAX;
	for (size_t i = 0; i < g->nconn; i++) {
		struct ir_conn *c = &g->conn[i];
		size_t hf = g->proc[g->kernel[c->from].proc].hidx;
		size_t ht = g->proc[g->kernel[c->to].proc].hidx;
		if (!c->bridged || (hf != h && ht != h))
			continue;
		bool tx = hf == h;
		size_t peer = tx ? ht : hf, rxhost = ht;
		if (!g->host_addr[rxhost] || !g->host_addr[peer]) {
			ir_diag(g, g->ghosts.line, "--host needs an address for host '%s': "
			        "write hosts = ..., %s@ADDRESS:PORT, ...",
			        g->host_addr[rxhost] ? g->host[peer] : g->host[rxhost],
			        g->host_addr[rxhost] ? g->host[peer] : g->host[rxhost]);
			return -1;
		}
		if (net == SIZE_MAX) {
			g->proc = ir_xrealloc(g->proc, (g->nproc + 1) * sizeof *g->proc);
			g->proc[g->nproc] = (struct ir_process){.name = ir_strdup("@net"),
			                                        .hidx = h};
			net = g->nproc++;
		}
		/* endpoint: the consumer host's address, port + edge index */
		char ep[300], name[32];
		const char *a = g->host_addr[rxhost];
		const char *colon = strrchr(a, ':');
		unsigned long port = strtoul(colon + 1, NULL, 10) + i;
		snprintf(ep, sizeof ep, "tcp://%.*s:%lu", (int)(colon - a), a, port);
		snprintf(name, sizeof name, "@%s%zu", tx ? "tx" : "rx", i);
		g->kernel = ir_xrealloc(g->kernel, (g->nkernel + 1) * sizeof *g->kernel);
		struct ir_kernel *k = &g->kernel[g->nkernel];
		memset(k, 0, sizeof *k);
		k->name = ir_strdup(name);
		k->library.val = ir_strdup("libipcnet.so");
		k->function.val = ir_strdup(tx ? "zmq_tx" : "zmq_rx");
		k->proc = net;
		k->lib = SIZE_MAX;
		add_value(k, IR_STR, ep, 0);
		add_value(k, IR_U64, NULL, i);
		add_value(k, IR_U64, NULL, c->window);
		add_value(k, IR_STR, g->curve ? g->curve : "", 0);
		add_value(k, IR_STR, g->host[h], 0);
		add_value(k, IR_STR, g->host[peer], 0);
		g->proc[net].nkernel++;
		size_t kn = g->nkernel++;
		if (tx) {
			c->to = kn;
			free(c->tk);
			free(c->tp);
			c->tk = ir_strdup(name);
			c->tp = ir_strdup("in");
		} else {
			c->from = kn;
			free(c->fk);
			free(c->fp);
			c->fk = ir_strdup(name);
			c->fp = ir_strdup("out");
		}
	}
	return ir_libs_resolve(g);
}

/*
 * Restart policies of [process:NAME] (config/README.md):
 *
 *   restart        = no | on-failure | always     (no)
 *   restart_max    = restarts allowed within the window  (5)
 *   restart_window = a duration: 90, 90s, 500ms, 2m, 1h  (60s)
 *
 * on-failure: the process died (a kernel crashed, it was killed, it exited
 * before its kernels returned). always: also when one of its kernels
 * returned non-zero. A restart is one more within the window; the one that
 * would exceed restart_max gives up: the graph stops and ipcrun exits 1.
 * No restart once the graph is stopping (Ctrl-C, another failure).
 *
 * What happens around a restart lives in run.c (the supervisor), runner.c
 * (attaching with ipc_channel_takeover and holding every end) and the
 * library (takeover.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcrun.h"

#define DEFAULT_MAX 5
#define DEFAULT_WINDOW_MS 60000
#define MAX_MAX 10000

const char *ir_restart_name(enum ir_restart p)
{
	switch (p) {
	case IR_RESTART_ON_FAILURE: return "on-failure";
	case IR_RESTART_ALWAYS: return "always";
	default: return "no";
	}
}

/* "90", "90s", "500ms", "2m", "1h" -> milliseconds; -1 if malformed. */
static int64_t parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -1;
	double ms;
	if (*end == 0 || strcmp(end, "s") == 0)
		ms = v * 1000;
	else if (strcmp(end, "ms") == 0)
		ms = v;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		ms = v * 60000;
	else if (strcmp(end, "h") == 0)
		ms = v * 3600000;
	else
		return -1;
	return ms >= 1 && ms <= 7 * 24 * 3600000.0 ? (int64_t)ms : -1;
}

void ir_restart_resolve(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nproc; i++) {
		struct ir_process *p = &g->proc[i];
		p->policy = IR_RESTART_NO;
		p->rmax = DEFAULT_MAX;
		p->rwindow_ms = DEFAULT_WINDOW_MS;
		const char *v = p->restart.val;
		if (v) {
			if (strcmp(v, "no") == 0)
				p->policy = IR_RESTART_NO;
			else if (strcmp(v, "on-failure") == 0)
				p->policy = IR_RESTART_ON_FAILURE;
			else if (strcmp(v, "always") == 0)
				p->policy = IR_RESTART_ALWAYS;
			else {
				static const char *const names[] = {"no", "on-failure", "always"};
				const char *hint = ir_suggest(v, names, 3);
				ir_diag(g, p->restart.line, "restart '%s' must be no, on-failure "
				        "or always%s%s%s", v, hint ? "; did you mean '" : "",
				        hint ? hint : "", hint ? "'?" : "");
			}
		}
		if ((v = p->restart_max.val)) {
			uint64_t n;
			if (ir_parse_uint(v, MAX_MAX, &n) < 0 || n == 0)
				ir_diag(g, p->restart_max.line, "restart_max '%s' must be a "
				        "whole number from 1 to %d", v, MAX_MAX);
			else
				p->rmax = (unsigned)n;
		}
		if ((v = p->restart_window.val)) {
			int64_t ms = parse_duration(v);
			if (ms < 0)
				ir_diag(g, p->restart_window.line, "restart_window '%s' must be a "
				        "duration such as 60s, 500ms, 5m or 1h (up to a week)", v);
			else
				p->rwindow_ms = (uint64_t)ms;
		}
		if (p->policy == IR_RESTART_NO &&
		    (p->restart_max.val || p->restart_window.val))
			ir_diag(g, p->restart_max.val ? p->restart_max.line :
			        p->restart_window.line, "restart_max and restart_window of "
			        "[process:%s] need 'restart = on-failure' or 'restart = "
			        "always'", p->name);
		/* parsed: the text is not needed any more (--threads replaces
		 * the processes without freeing their keys) */
		struct ir_key *keys[] = {&p->restart, &p->restart_max, &p->restart_window};
		for (size_t j = 0; j < 3; j++) {
			free(keys[j]->val);
			keys[j]->val = NULL;
		}
	}
}

/*
 * Kernel libraries: a `library` with a '/' is a path (relative to the
 * topology's folder); a bare name is looked up in $IPC_KERNEL_PATH (a
 * colon-separated list of folders), then beside ipcrun's own installation
 * (<bindir>/../lib), then on the system's library path (dlopen's search).
 * Each library is loaded once, RTLD_NOW so that a missing symbol shows up
 * before anything runs, and RTLD_LOCAL so that kernels cannot collide.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcrun.h"

const char *ir_exe_dir(void)
{
	static char dir[PATH_MAX];
	if (!dir[0]) {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
		if (n <= 0) {
			strcpy(dir, ".");
		} else {
			dir[n] = 0;
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = 0;
		}
	}
	return dir;
}

static void *open_in(const char *dir, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", dir, name);
	if (access(path, R_OK) != 0)
		return NULL;
	return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* Load library `name`; on failure *why says what went wrong. */
static void *load(const struct ir_graph *g, const char *name, char **path,
                  char *why, size_t whylen)
{
	char buf[PATH_MAX + 256];
	void *dl = NULL;
	if (strchr(name, '/')) {
		snprintf(buf, sizeof buf, "%s%s", name[0] == '/' ? "" : g->dir, name);
		dl = dlopen(buf, RTLD_NOW | RTLD_LOCAL);
		if (!dl) {
			const char *e = dlerror();
			snprintf(why, whylen, "%s", e ? e : "dlopen failed");
			return NULL;
		}
		*path = ir_strdup(buf);
		return dl;
	}
	const char *env = getenv("IPC_KERNEL_PATH");
	if (env && *env) {
		char *list = ir_strdup(env), *save = NULL;
		for (char *d = strtok_r(list, ":", &save); d && !dl;
		     d = strtok_r(NULL, ":", &save))
			dl = open_in(d, name, buf, sizeof buf);
		free(list);
	}
	if (!dl) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/../lib", ir_exe_dir());
		dl = open_in(dir, name, buf, sizeof buf);
	}
	if (!dl) {
		dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
		snprintf(buf, sizeof buf, "%s", name);
	}
	if (!dl) {
		const char *e = dlerror();
		snprintf(why, whylen, "%s", e ? e : "not found");
		return NULL;
	}
	*path = ir_strdup(buf);
	return dl;
}

int ir_libs_resolve(struct ir_graph *g)
{
	int bad = 0;
	for (size_t i = 0; i < g->nkernel; i++) {
		struct ir_kernel *k = &g->kernel[i];
		if (!k->library.val || !k->function.val)
			continue;
		size_t l;
		for (l = 0; l < g->nlib; l++)
			if (strcmp(g->lib[l].name, k->library.val) == 0)
				break;
		if (l == g->nlib) {
			char why[512];
			char *path = NULL;
			dlerror();
			void *dl = load(g, k->library.val, &path, why, sizeof why);
			g->lib = ir_xrealloc(g->lib, (g->nlib + 1) * sizeof *g->lib);
			g->lib[l] = (struct ir_lib){ir_strdup(k->library.val), path, dl};
			g->nlib++;
			char alt[PATH_MAX];
			if (!dl && ir_suggest_library(g, k->library.val, alt, sizeof alt))
				ir_diag(g, k->library.line, "cannot load library '%s': %s; "
				        "did you mean '%s'?", k->library.val, why, alt);
			else if (!dl)
				ir_diag(g, k->library.line, "cannot load library '%s': %s; "
				        "give a path with a '/' (relative to the topology's "
				        "folder), or put the library in IPC_KERNEL_PATH or "
				        "beside ipcrun's installed kernels", k->library.val, why);
			if (!dl)
				bad++;
		}
		k->lib = l;
		if (!g->lib[l].dl)
			continue; /* reported once, where it was first named */
		dlerror();
		k->fn = dlsym(g->lib[l].dl, k->function.val);
		char alt[256];
		if (!k->fn && ir_suggest_function(g->lib[l].dl, k->function.val, alt,
		                                  sizeof alt)) {
			ir_diag(g, k->function.line, "library '%s' has no function '%s'; "
			        "did you mean '%s'?", k->library.val, k->function.val, alt);
			bad++;
			continue;
		}
		if (!k->fn) {
			ir_diag(g, k->function.line, "library '%s' has no function '%s'; "
			        "check the name (and that it is exported: "
			        "nm -D --defined-only %s)", k->library.val,
			        k->function.val, g->lib[l].path);
			bad++;
			continue;
		}
		char sym[256];
		snprintf(sym, sizeof sym, "ipc_kernel_spec_%s", k->function.val);
		k->spec = dlsym(g->lib[l].dl, sym);
	}
	return bad ? -1 : 0;
}

void ir_libs_close(struct ir_graph *g)
{
	for (size_t i = 0; i < g->nlib; i++) {
		if (g->lib[i].dl)
			dlclose(g->lib[i].dl);
		free(g->lib[i].name);
		free(g->lib[i].path);
	}
	g->nlib = 0;
}

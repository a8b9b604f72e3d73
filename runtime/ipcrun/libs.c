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
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Whether path is a file dlopen may read: 1 a regular file, 0 absent or
 * unreadable, -1 something else (a FIFO would block dlopen forever, a
 * device is no library): why says which. */
static int regular(const char *path, char *why, size_t whylen)
{
	struct stat st;
	if (stat(path, &st) != 0 || access(path, R_OK) != 0)
		return 0;
	if (S_ISREG(st.st_mode))
		return 1;
	snprintf(why, whylen, "%s is %s, not a shared library file (name the "
	         ".so itself)", path,
	         S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ?
	         "a folder" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ?
	         "a device" : S_ISSOCK(st.st_mode) ? "a socket" :
	         "not a regular file");
	return -1;
}

static void *open_in(const char *dir, const char *name, char *path, size_t len,
                     char *why, size_t whylen, bool *bad)
{
	snprintf(path, len, "%s/%s", dir, name);
	int r = regular(path, why, whylen);
	if (r < 0)
		*bad = true;
	if (r <= 0)
		return NULL;
	return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

void *ir_libs_open(const char *dir, const char *name, char **path, char *why,
                   size_t whylen)
{
	char buf[PATH_MAX + 256];
	void *dl = NULL;
	bool bad = false;
	why[0] = 0;
	if (strchr(name, '/')) {
		snprintf(buf, sizeof buf, "%s%s", name[0] == '/' ? "" : dir, name);
		if (regular(buf, why, whylen) < 0)
			return NULL;
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
		for (char *d = strtok_r(list, ":", &save); d && !dl && !bad;
		     d = strtok_r(NULL, ":", &save))
			dl = open_in(d, name, buf, sizeof buf, why, whylen, &bad);
		free(list);
	}
	if (!dl && !bad) {
		char dir2[PATH_MAX];
		snprintf(dir2, sizeof dir2, "%s/../lib", ir_exe_dir());
		dl = open_in(dir2, name, buf, sizeof buf, why, whylen, &bad);
	}
	if (bad)
		return NULL;
	if (!dl) {
		dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
		snprintf(buf, sizeof buf, "%s", name);
	}
	if (!dl) {
		const char *e = dlerror();
		snprintf(why, whylen, "%s", e ? e : "not found");
		return NULL;
	}
	/* the file actually loaded, wherever the search found it */
	struct link_map *lm = NULL;
	if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0])
		snprintf(buf, sizeof buf, "%s", lm->l_name);
	*path = ir_strdup(buf);
	return dl;
}

/* The ELF type of the symbol at addr, as dladdr1 finds it: STT_FUNC for a
 * function; -1 when it cannot tell. */
static int symbol_type(void *addr, const char *name)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    !info.dli_sname || strcmp(info.dli_sname, name) != 0)
		return -1;
	return ELF64_ST_TYPE(sym->st_info) /* the same for ELF32 */;
}

static const char *type_name(int t)
{
	switch (t) {
	case STT_OBJECT: return "a variable (an ELF data object)";
	case STT_TLS: return "a thread-local variable";
	case STT_SECTION: return "a section";
	case STT_FILE: return "a file name";
	case STT_COMMON: return "a common block";
	default: return "not a function";
	}
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
			void *dl = ir_libs_open(g->dir, k->library.val, &path, why,
			                        sizeof why);
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
		int t = symbol_type(k->fn, k->function.val);
		if (t >= 0 && t != STT_FUNC && t != STT_GNU_IFUNC) {
			ir_diag(g, k->function.line, "'%s' in library '%s' is %s, not a "
			        "function; name one of its functions (ipcrun --list %s "
			        "lists them)", k->function.val, k->library.val,
			        type_name(t), k->library.val);
			k->fn = NULL;
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

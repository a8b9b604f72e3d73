/*
 * ipcrun --list LIBRARY: what a kernel library offers, as gst-inspect does
 * for GStreamer: each kernel declared with IPC_KERNEL, with its ports, the
 * types of its args and its doc string; and the library's other exported
 * functions (function kernels need a `signature`, actor kernels without a
 * spec take whatever ports their connections name).
 *
 * The kernels are found in the library's dynamic symbol table, read from
 * the file dlopen loaded (ELF section headers, .dynsym and its string
 * table, every offset checked against the file's size); the specs
 * themselves are read through dlsym, as ipcrun reads them for a run.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipcrun.h"

#define SPEC_PREFIX "ipc_kernel_spec_"

struct syms {
	char **kern;   /* kernel names with a spec */
	size_t nkern;
	char **func;   /* other exported functions */
	size_t nfunc;
};

static void push(char ***v, size_t *n, const char *s)
{
	*v = ir_xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = ir_strdup(s);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_range(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

/* The exported symbols of the ELF file at path. 0, or a message in why. */
static int read_dynsym(const char *path, struct syms *out, char *why,
                       size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size < sizeof(ElfW(Ehdr))) {
		snprintf(why, whylen, "%s: not an ELF shared library", path);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int rc = -1;
	const ElfW(Ehdr) *eh = (const void *)m;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
	    eh->e_shentsize != sizeof(ElfW(Shdr)) ||
	    !in_range(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(ElfW(Shdr)))) {
		snprintf(why, whylen, "%s: not an ELF shared library of this machine",
		         path);
		goto out;
	}
	const ElfW(Shdr) *sh = (const void *)(m + eh->e_shoff);
	const ElfW(Shdr) *dyn = NULL;
	for (size_t i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_DYNSYM)
			dyn = &sh[i];
	if (!dyn || dyn->sh_entsize != sizeof(ElfW(Sym)) ||
	    dyn->sh_link >= eh->e_shnum ||
	    !in_range(size, dyn->sh_offset, dyn->sh_size)) {
		snprintf(why, whylen, "%s: no dynamic symbol table", path);
		goto out;
	}
	const ElfW(Shdr) *strs = &sh[dyn->sh_link];
	if (!in_range(size, strs->sh_offset, strs->sh_size) || strs->sh_size == 0 ||
	    m[strs->sh_offset + strs->sh_size - 1] != 0) {
		snprintf(why, whylen, "%s: a bad string table", path);
		goto out;
	}
	const char *str = (const char *)m + strs->sh_offset;
	const ElfW(Sym) *sym = (const void *)(m + dyn->sh_offset);
	size_t nsym = dyn->sh_size / sizeof *sym;
	for (size_t i = 1; i < nsym; i++) {
		const ElfW(Sym) *s = &sym[i];
		int bind = ELF64_ST_BIND(s->st_info), type = ELF64_ST_TYPE(s->st_info);
		if (s->st_shndx == SHN_UNDEF || s->st_name >= strs->sh_size ||
		    (bind != STB_GLOBAL && bind != STB_WEAK) ||
		    ELF64_ST_VISIBILITY(s->st_other) != STV_DEFAULT)
			continue;
		const char *name = str + s->st_name;
		if (type == STT_OBJECT && strncmp(name, SPEC_PREFIX,
		                                  strlen(SPEC_PREFIX)) == 0 &&
		    name[strlen(SPEC_PREFIX)])
			push(&out->kern, &out->nkern, name + strlen(SPEC_PREFIX));
		else if ((type == STT_FUNC || type == STT_GNU_IFUNC) &&
		         strcmp(name, "_init") != 0 && strcmp(name, "_fini") != 0)
			push(&out->func, &out->nfunc, name);
	}
	rc = 0;
out:
	munmap((void *)m, size);
	return rc;
}

/* text, indented by ind, wrapped at 78 columns */
static void wrap(FILE *f, const char *text, int ind)
{
	int col = 0;
	const char *p = text;
	while (*p) {
		while (*p == ' ' || *p == '\n')
			p++;
		size_t w = strcspn(p, " \n");
		if (!w)
			break;
		if (col && col + 1 + (int)w > 78) {
			fputc('\n', f);
			col = 0;
		}
		if (!col)
			col = fprintf(f, "%*s", ind, "");
		else
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)w, p);
		p += w;
	}
	if (col)
		fputc('\n', f);
}

static void ports(FILE *f, const char *label, const char *spec)
{
	fprintf(f, "      %-5s ", label);
	if (!spec || !*spec) {
		fputs("none\n", f);
		return;
	}
	struct ir_portset ps = {0};
	char err[128];
	if (ir_portset_parse(&ps, spec, err, sizeof err) != 0) {
		fprintf(f, "%s (unreadable: %s)\n", spec, err);
		return;
	}
	for (size_t i = 0; i < ps.n; i++) {
		fprintf(f, "%s%s", i ? ", " : "", ps.name[i]);
		if (ps.mode[i] == '*')
			fprintf(f, "0, %s1, ... (at least one)", ps.name[i]);
		else if (ps.mode[i] == '?')
			fputs(" (optional)", f);
	}
	fputc('\n', f);
	ir_portset_free(&ps);
}

/* Keep only the entry named only in v (none when it is not there). */
static void keep_only(char **v, size_t *n, const char *only)
{
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(v[i], only) == 0)
			v[k++] = v[i];
		else
			free(v[i]);
	}
	*n = k;
}

int ir_list_library(const char *name, const char *only, FILE *f)
{
	char why[PATH_MAX + 512];
	char *path = NULL;
	dlerror();
	void *dl = ir_libs_open("", name, &path, why, sizeof why);
	if (!dl) {
		fprintf(stderr, "ipcrun: --list: cannot load library '%s': %s\n", name,
		        why);
		return IR_EXIT_USAGE;
	}
	struct syms s = {0};
	if (read_dynsym(path, &s, why, sizeof why) != 0) {
		fprintf(stderr, "ipcrun: --list: %s\n", why);
		dlclose(dl);
		free(path);
		return IR_EXIT_USAGE;
	}
	if (s.nkern > 1)
		qsort(s.kern, s.nkern, sizeof *s.kern, by_name);
	if (s.nfunc > 1)
		qsort(s.func, s.nfunc, sizeof *s.func, by_name);
	if (only) {
		/* one kernel or function: the closest name when it is not there */
		size_t nall = s.nkern + s.nfunc;
		const char **all = ir_xrealloc(NULL, (nall + 1) * sizeof *all);
		for (size_t i = 0; i < s.nkern; i++)
			all[i] = s.kern[i];
		for (size_t i = 0; i < s.nfunc; i++)
			all[s.nkern + i] = s.func[i];
		const char *near = ir_suggest(only, all, nall);
		char hint[300] = "";
		if (near)
			snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
		keep_only(s.kern, &s.nkern, only);
		keep_only(s.func, &s.nfunc, only);
		free(all);
		if (!s.nkern && !s.nfunc) {
			fprintf(stderr, "ipcrun: --list: library '%s' has no kernel or "
			        "function '%s'%s\n", name, only, near ? hint : "");
			free(s.kern);
			free(s.func);
			dlclose(dl);
			free(path);
			return IR_EXIT_USAGE;
		}
	}
	char *real = realpath(path, NULL);
	fprintf(f, "%s: %s\n", name, real ? real : path);
	free(real);
	if (s.nkern) {
		fprintf(f, "%zu kernel%s with an IPC_KERNEL spec (actor kernels):\n",
		        s.nkern, s.nkern == 1 ? "" : "s");
		for (size_t i = 0; i < s.nkern; i++) {
			char sym[256];
			snprintf(sym, sizeof sym, SPEC_PREFIX "%s", s.kern[i]);
			const struct ipc_kernel_spec *sp = dlsym(dl, sym);
			fprintf(f, "\n  %s\n", s.kern[i]);
			if (!sp)
				continue;
			if (sp->doc && *sp->doc)
				wrap(f, sp->doc, 6);
			ports(f, "in:", sp->in);
			ports(f, "out:", sp->out);
			fprintf(f, "      %-5s ", "args:");
			if (!sp->args || !*sp->args)
				fputs("none", f);
			for (const char *a = sp->args; a && *a; a++) {
				if (*a == ',')
					fputs(", ", f);
				else if (*a != ' ')
					fputc(*a, f);
			}
			fputc('\n', f);
		}
	}
	/* the kernels' own functions are not listed again */
	size_t nother = 0;
	for (size_t i = 0; i < s.nfunc; i++) {
		bool kernel = s.nkern && bsearch(&s.func[i], s.kern, s.nkern,
		                                 sizeof *s.kern, by_name) != NULL;
		if (kernel) {
			free(s.func[i]);
			continue;
		}
		s.func[nother++] = s.func[i];
	}
	if (nother) {
		fprintf(f, "%s%zu %sexported function%s (function kernels, given a "
		        "signature):\n", s.nkern ? "\n" : "", nother,
		        s.nkern ? "other " : "", nother == 1 ? "" : "s");
		for (size_t i = 0; i < nother; i++)
			fprintf(f, "  %s\n", s.func[i]);
	} else if (!s.nkern) {
		fputs("no kernel and no exported function\n", f);
	}
	for (size_t i = 0; i < s.nkern; i++)
		free(s.kern[i]);
	for (size_t i = 0; i < nother; i++)
		free(s.func[i]);
	free(s.kern);
	free(s.func);
	dlclose(dl);
	free(path);
	return IR_EXIT_OK;
}

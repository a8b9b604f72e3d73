/*
 * "Did you mean" for kernel libraries and functions (libs.c's errors):
 *
 *   - a function: the closest name (edit distance, ir_suggest) among the
 *     functions the loaded library exports, read from its dynamic symbol
 *     table through the loader's link map (no second open of the file);
 *   - a library: the closest file name among the shared objects of the
 *     folders that name would have been looked up in (the path's own folder
 *     for a path; IPC_KERNEL_PATH and ipcrun's <prefix>/lib for a bare name).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcrun.h"

/* This process's ELF class (what ElfW() picks, spelt out for the linters) */
#if UINTPTR_MAX > 0xffffffffu
typedef Elf64_Dyn dyn_t;
typedef Elf64_Sym sym_t;
typedef Elf64_Addr addr_t;
typedef Elf64_Word word_t;
#else
typedef Elf32_Dyn dyn_t;
typedef Elf32_Sym sym_t;
typedef Elf32_Addr addr_t;
typedef Elf32_Word word_t;
#endif

struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = ir_xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = ir_strdup(name);
}

static const char *names_best(struct names *s, const char *word, char *out,
                              size_t len)
{
	const char *best = ir_suggest(word, (const char *const *)s->v, s->n);
	if (best)
		snprintf(out, len, "%s", best);
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct names){0};
	return best ? out : NULL;
}

/* A dynamic-section address: the loader has usually relocated it already. */
static const void *dyn_ptr(const struct link_map *lm, addr_t v)
{
	return (const void *)(v < lm->l_addr ? v + lm->l_addr : v);
}

/* How many entries the dynamic symbol table has, from its hash table. */
static size_t dynsym_count(const struct link_map *lm, const word_t *hash,
                           const uint32_t *gnu)
{
	if (hash)
		return hash[1]; /* nchain */
	if (!gnu)
		return 0;
	uint32_t nbuckets = gnu[0], symoffset = gnu[1], bloom = gnu[2];
	const uint32_t *buckets =
		(const uint32_t *)((const addr_t *)(gnu + 4) + bloom);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	(void)lm;
	return (size_t)last + 1;
}

const char *ir_suggest_function(void *dl, const char *name, char *out,
                                size_t len)
{
	struct link_map *lm = NULL;
	if (!dl || dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_ld)
		return NULL;
	const sym_t *sym = NULL;
	const char *str = NULL;
	const word_t *hash = NULL;
	const uint32_t *gnu = NULL;
	size_t strsz = 0;
	for (const dyn_t *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: sym = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_STRTAB: str = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_STRSZ: strsz = d->d_un.d_val; break;
		case DT_HASH: hash = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_GNU_HASH: gnu = dyn_ptr(lm, d->d_un.d_ptr); break;
		default: break;
		}
	}
	if (!sym || !str)
		return NULL;
	size_t n = dynsym_count(lm, hash, gnu);
	struct names s = {0};
	for (size_t i = 1; i < n && i < 1000000; i++) {
		if (sym[i].st_shndx == SHN_UNDEF || sym[i].st_name >= strsz ||
		    (sym[i].st_info & 0xf) != STT_FUNC ||
		    (sym[i].st_info >> 4) == STB_LOCAL)
			continue;
		names_add(&s, str + sym[i].st_name);
	}
	return names_best(&s, name, out, len);
}

static void scan_dir(struct names *s, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".so"))
			names_add(s, e->d_name);
	closedir(d);
}

const char *ir_suggest_library(const struct ir_graph *g, const char *name,
                               char *out, size_t len)
{
	struct names s = {0};
	const char *slash = strrchr(name, '/');
	if (slash) {
		/* the same folder, the same way the name was written */
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s%.*s", name[0] == '/' ? "" : g->dir,
		         (int)(slash - name), name);
		scan_dir(&s, dir);
		char base[PATH_MAX];
		const char *best = names_best(&s, slash + 1, base, sizeof base);
		if (!best)
			return NULL;
		snprintf(out, len, "%.*s/%s", (int)(slash - name), name, base);
		return out;
	}
	const char *env = getenv("IPC_KERNEL_PATH");
	if (env && *env) {
		char *list = ir_strdup(env), *save = NULL;
		for (char *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
			scan_dir(&s, d);
		free(list);
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/../lib", ir_exe_dir());
	scan_dir(&s, dir);
	return names_best(&s, name, out, len);
}

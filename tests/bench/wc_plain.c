/*
 * The demo's word count (config/demo.ini) as one single-threaded C program:
 * what a user would write instead of a graph. bench_items runs it beside
 * ipcrun on the same text to get the ratio README quotes.
 *
 *     wc_plain FILE TIMES TOP
 *
 * Reads FILE TIMES times in 256 KiB blocks, splits it into words the way
 * tokenize does (maximal runs of ASCII letters and digits, lower-cased; a
 * word longer than 256 bytes continues as another word), counts them in an
 * open-addressing table and prints the TOP most frequent as top_sink does.
 * It uses word_count's tricks (a table of word characters, the hash
 * computed as the word is read), so that the ratio measures the graph, not
 * a better loop.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct slot {
	uint64_t hash, count;
	char *key;
	size_t len;
};

static struct slot *tab;
static size_t cap = 1024, used;

/* 64-bit FNV-1a, computed byte by byte as the words are read */
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static void grow(void)
{
	struct slot *old = tab;
	size_t ocap = cap;
	cap *= 2;
	tab = calloc(cap, sizeof *tab);
	if (!tab)
		exit(1);
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].key)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (tab[j].key)
			j = (j + 1) & (cap - 1);
		tab[j] = old[i];
	}
	free(old);
}

/* w's count + 1; h = fnv1a(w, n), computed by the caller as it reads w */
static void add(const char *w, size_t n, uint64_t h)
{
	if ((used + 1) * 2 > cap)
		grow();
	size_t j = h & (cap - 1);
	for (; tab[j].key; j = (j + 1) & (cap - 1))
		if (tab[j].hash == h && tab[j].len == n && !memcmp(tab[j].key, w, n)) {
			tab[j].count++;
			return;
		}
	tab[j].key = malloc(n ? n : 1);
	if (!tab[j].key)
		exit(1);
	memcpy(tab[j].key, w, n);
	tab[j] = (struct slot){h, 1, tab[j].key, n};
	used++;
}

static int by_count(const void *pa, const void *pb)
{
	const struct slot *a = pa, *b = pb;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Word characters, lower-cased; 0 for the rest (one load a character, as
 * word_count does). */
static unsigned char word_char[256];

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: wc_plain FILE TIMES TOP\n");
		return 2;
	}
	long times = atol(argv[2]), top = atol(argv[3]);
	static char buf[256 << 10];
	char word[256];
	size_t len = 0;
	uint64_t total = 0;
	uint64_t h = FNV_OFFSET;
	tab = calloc(cap, sizeof *tab);
	if (!tab)
		return 1;
	for (int c = 0; c < 256; c++)
		word_char[c] = (unsigned char)((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		                               ? c
		                               : c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : 0);
	for (long t = 0; t < times; t++) {
		int fd = open(argv[1], O_RDONLY);
		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		ssize_t got;
		while ((got = read(fd, buf, sizeof buf)) > 0) {
			for (ssize_t i = 0; i < got; i++) {
				unsigned char c = word_char[(unsigned char)buf[i]];
				if (c) {
					if (len == sizeof word) {
						add(word, len, h);
						total++;
						len = 0;
						h = FNV_OFFSET;
					}
					word[len++] = (char)c;
					h = (h ^ c) * FNV_PRIME;
				} else if (len) {
					add(word, len, h);
					total++;
					len = 0;
					h = FNV_OFFSET;
				}
			}
		}
		close(fd);
		if (len) { /* a file's end ends a word, as a line's end does */
			add(word, len, h);
			total++;
			len = 0;
			h = FNV_OFFSET;
		}
	}
	struct slot *rows = malloc((used + 1) * sizeof *rows);
	size_t m = 0;
	for (size_t i = 0; i < cap; i++)
		if (tab[i].key)
			rows[m++] = tab[i];
	qsort(rows, m, sizeof *rows, by_count);
	if (top <= 0 || (size_t)top > m)
		top = (long)m;
	printf("top %ld of %zu keys:\n", top, m);
	for (long i = 0; i < top; i++)
		printf("%4ld %12" PRIu64 "  %.*s\n", i + 1, rows[i].count, (int)rows[i].len,
		       rows[i].key);
	printf("summary: %" PRIu64 " counted (%zu distinct)\n", total, m);
	return 0;
}

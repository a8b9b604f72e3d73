/*
 * Transforms: one input "in", one output "out". They drain their input to
 * the end whatever happens downstream, except that a consumer leaving
 * (-EPIPE) stops them.
 */
#include "kx.h"

#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

IPC_KERNEL(tokenize, "in", "out", "",
           "splits text items into lower-case words of ASCII letters and "
           "digits, one text item each");
KX_EXPORT int tokenize(struct ipc_kernel *k);

IPC_KERNEL(grep_filter, "in", "out", "str",
           "forwards the text items that match a POSIX extended regex");
KX_EXPORT int grep_filter(struct ipc_kernel *k, const char *pattern);

IPC_KERNEL(keyed_count, "in", "out", "",
           "counts equal items; at the end emits one \"<count> <key>\" text item per key");
KX_EXPORT int keyed_count(struct ipc_kernel *k);

IPC_KERNEL(word_count, "in", "out", "",
           "counts the words of text items as tokenize splits them; at the end "
           "emits one \"<count> <word>\" text item per word");
KX_EXPORT int word_count(struct ipc_kernel *k);

/* Word characters (ASCII letters and digits), lower-cased; 0 for the rest:
 * one load a character instead of three range tests and a case test. Filled
 * when the library is loaded. */
static unsigned char word_char[256];

__attribute__((constructor)) static void word_char_init(void)
{
	for (int c = 0; c < 256; c++)
		word_char[c] = (unsigned char)((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		                               ? c
		                               : c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : 0);
}

/* Longest word: a longer run of word characters continues as another word,
 * as a line longer than a terminal wraps (rare, and never lost). */
#define WORD_MAX 256

/* The next word of s[*i, n), lower-cased into word (room for WORD_MAX
 * bytes): returns its length (0: none left), moves *i past it and sets *hash
 * to its kx__fnv1a (computed as it is read; inlined, a caller that ignores
 * it pays nothing). What tokenize emits and word_count counts, so that the
 * two always agree. */
static inline size_t next_word(const unsigned char *s, size_t n, size_t *i, char *word,
                               uint64_t *hash)
{
	size_t j = *i, len = 0;
	uint64_t h = KX_FNV_OFFSET;

	unsigned char c;

	while (j < n && !word_char[s[j]])
		j++;
	for (; j < n && len < WORD_MAX && (c = word_char[s[j]]) != 0; j++) {
		word[len++] = (char)c;
		h = (h ^ c) * KX_FNV_PRIME;
	}
	*i = j;
	*hash = h;
	return len;
}

/* Hand every word of every text item of in to fn (the word, room for a NUL
 * after its len bytes, and its kx__fnv1a) until the input ends (then what
 * kx__input_end says) or fn returns other than KX_DONE. Inlined into each
 * kernel with its fn, so that a word costs no indirect call. */
static inline enum kx_end each_word(struct ipc_kernel *k, struct ipc_port *in,
                                    enum kx_end (*fn)(void *ctx, char *word, size_t len,
                                                      uint64_t hash),
                                    void *ctx)
{
	char word[WORD_MAX + 1];

	for (;;) {
		const void *item;
		size_t n, len, i = 0;
		uint64_t h;
		int rc = ipc_next(in, &item, &n);

		if (rc != 0)
			return kx__input_end(k, "in", rc);
		n = kx__text_len(item, n);
		while ((len = next_word(item, n, &i, word, &h)) > 0) {
			enum kx_end e = fn(ctx, word, len, h);

			if (e != KX_DONE)
				return e;
		}
	}
}

struct tokenize_ctx {
	struct ipc_kernel *k;
	struct ipc_port *out;
};

static enum kx_end tokenize_word(void *ctx, char *word, size_t len, uint64_t hash)
{
	struct tokenize_ctx *t = ctx;

	(void)hash;
	word[len] = '\0';
	return kx__emit(t->k, t->out, word, len + 1);
}

int tokenize(struct ipc_kernel *k)
{
	struct tokenize_ctx t = {k, kx__need_out(k, "out")};
	struct ipc_port *in = kx__need_in(k, "in");

	if (!in || !t.out)
		return 1;
	return kx__end(k, each_word(k, in, tokenize_word, &t));
}

int grep_filter(struct ipc_kernel *k, const char *pattern)
{
	struct ipc_port *in = kx__need_in(k, "in"), *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;
	char *line = NULL;
	size_t line_cap = 0;
	regex_t re;
	int rc;

	if (!in || !out)
		return 1;
	rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char msg[256];

		regerror(rc, &re, msg, sizeof msg);
		kx__errorf(k, "bad pattern '%s': %s", pattern, msg);
		return 1;
	}
	while (e == KX_DONE) {
		const char *text;
		const void *item;
		size_t n;

		rc = ipc_next(in, &item, &n);
		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		text = item;
		if (n == 0 || text[n - 1] != '\0') {
			/* Not a text item: match a NUL-terminated copy. */
			if (n + 1 > line_cap) {
				char *p = realloc(line, n + 1);

				if (!p) {
					kx__errorf(k, "out of memory");
					e = KX_FAILED;
					break;
				}
				line = p;
				line_cap = n + 1;
			}
			memcpy(line, item, n);
			line[n] = '\0';
			text = line;
		}
		if (regexec(&re, text, 0, NULL, 0) == 0)
			e = kx__emit(k, out, item, n);
	}
	regfree(&re);
	free(line);
	return kx__end(k, e);
}

/* Emit "<count> <key>" for every key. */
static enum kx_end counter_send(struct ipc_kernel *k, struct ipc_port *out,
                                const struct kx_counter *c)
{
	enum kx_end e = KX_DONE;
	char *text = NULL;
	size_t cap = 0;

	for (size_t i = 0; i < c->cap && e == KX_DONE; i++) {
		const struct kx_count_slot *s = &c->slots[i];
		char num[24];
		int nl;

		if (!s->used)
			continue;
		nl = snprintf(num, sizeof num, "%" PRIu64 " ", s->count);
		if ((size_t)nl + s->len + 1 > cap) {
			size_t want = (size_t)nl + s->len + 1 + 64;
			char *p = realloc(text, want);

			if (!p) {
				kx__errorf(k, "out of memory");
				e = KX_FAILED;
				break;
			}
			text = p;
			cap = want;
		}
		memcpy(text, num, (size_t)nl);
		memcpy(text + nl, c->arena + s->key, s->len);
		text[(size_t)nl + s->len] = '\0';
		e = kx__emit(k, out, text, (size_t)nl + s->len + 1);
	}
	free(text);
	return e;
}

int keyed_count(struct ipc_kernel *k)
{
	struct ipc_port *in = kx__need_in(k, "in"), *out = kx__need_out(k, "out");
	struct kx_counter c = {0};
	enum kx_end e = KX_DONE;

	if (!in || !out)
		return 1;
	for (;;) {
		const void *item;
		size_t n;
		int rc = ipc_next(in, &item, &n);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		if (!kx__counter_add(&c, item, kx__text_len(item, n), 1)) {
			kx__errorf(k, "out of memory counting keys");
			e = KX_FAILED;
			break;
		}
	}
	if (e == KX_DONE)
		e = counter_send(k, out, &c);
	kx__counter_free(&c);
	return kx__end(k, e);
}

/* tokenize and keyed_count in one kernel: words are counted where they are
 * found, and only the counts travel (a combiner, in MapReduce's terms). The
 * words are those tokenize emits, so the counts equal tokenize ->
 * keyed_count's. */
struct word_count_ctx {
	struct ipc_kernel *k;
	struct kx_counter c;
};

static enum kx_end count_word(void *ctx, char *word, size_t len, uint64_t hash)
{
	struct word_count_ctx *w = ctx;

	if (kx__counter_add_hashed(&w->c, word, len, hash, 1))
		return KX_DONE;
	kx__errorf(w->k, "out of memory counting words");
	return KX_FAILED;
}

int word_count(struct ipc_kernel *k)
{
	struct ipc_port *in = kx__need_in(k, "in"), *out = kx__need_out(k, "out");
	struct word_count_ctx w = {.k = k};
	enum kx_end e;

	if (!in || !out)
		return 1;
	e = each_word(k, in, count_word, &w);
	if (e == KX_DONE)
		e = counter_send(k, out, &w.c);
	kx__counter_free(&w.c);
	return kx__end(k, e);
}

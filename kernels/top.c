/*
 * top_sink: the end of a word count. It adds up "<count> <key>" items (what
 * keyed_count sends; partial counts of one key from several workers add up),
 * and at the end prints the n largest counts and a summary.
 */
#include "kx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

IPC_KERNEL(top_sink, "in", "", "u64",
           "adds up \"<count> <key>\" items, prints the n largest (0: all) and a summary");
KX_EXPORT int top_sink(struct ipc_kernel *k, uint64_t n);

struct top {
	struct kx_counter counts;
	uint64_t items;   /* received */
	uint64_t total;
	struct ipc_kernel *k;
};

/* Parse "<count> <key>"; an item without a count counts as "1 <item>". */
static bool top_add(struct top *t, const char *rec, size_t n)
{
	size_t len = kx__text_len(rec, n), i = 0;
	uint64_t count = 0;

	while (i < len && rec[i] >= '0' && rec[i] <= '9' && count <= UINT64_MAX / 10)
		count = count * 10 + (uint64_t)(rec[i++] - '0');
	if (i == 0 || i == len || rec[i] != ' ') {
		count = 1;
		i = 0;
	} else {
		i++;
	}
	t->items++;
	t->total += count;
	if (!kx__counter_add(&t->counts, rec + i, len - i, count)) {
		kx__errorf(t->k, "out of memory counting keys");
		return false;
	}
	return true;
}

/* One key to print: the sort needs no arena, so no context. */
struct top_row {
	const char *key;
	size_t len;
	uint64_t count;
};

/* Largest count first; equal counts in byte order of the key (as LC_ALL=C
 * sort does). */
static int by_count(const void *pa, const void *pb)
{
	const struct top_row *a = pa, *b = pb;
	int c;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static bool top_print(struct top *t, uint64_t n, double seconds)
{
	const struct kx_counter *c = &t->counts;
	struct top_row *rows = malloc((c->used + 1) * sizeof *rows);
	size_t m = 0;

	if (!rows) {
		kx__errorf(t->k, "out of memory sorting keys");
		return false;
	}
	for (size_t i = 0; i < c->cap; i++) {
		const struct kx_count_slot *s = &c->slots[i];

		if (s->used)
			rows[m++] = (struct top_row){c->arena + s->key, s->len, s->count};
	}
	qsort(rows, m, sizeof *rows, by_count);
	if (n == 0 || n > m)
		n = m;
	printf("top %" PRIu64 " of %zu keys:\n", n, m);
	for (size_t i = 0; i < n; i++)
		printf("%4zu %12" PRIu64 "  %.*s\n", i + 1, rows[i].count,
		       (int)rows[i].len, rows[i].key);
	printf("summary: %" PRIu64 " counted (%zu distinct) from %" PRIu64
	       " items in %.3f s: %.0f/s\n", t->total, m, t->items, seconds,
	       seconds > 0 ? (double)t->total / seconds : 0.0);
	fflush(stdout);
	free(rows);
	return true;
}

int top_sink(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *in = kx__need_in(k, "in");
	struct top t = {.k = k};
	enum kx_end e = KX_DONE;
	double start = kx__now();

	if (!in)
		return 1;
	for (;;) {
		const void *item;
		size_t size;
		int rc = ipc_next(in, &item, &size);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		if (!top_add(&t, item, size)) {
			e = KX_FAILED;
			break;
		}
	}
	if (e == KX_DONE && !top_print(&t, n, kx__now() - start))
		e = KX_FAILED;
	kx__counter_free(&t.counts);
	return kx__end(k, e);
}

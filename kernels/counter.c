/* A counter of byte-string keys for keyed_count and top_sink: an
 * open-addressing hash table (linear probing) whose keys are copied into one
 * growing arena, so a key costs its bytes plus one slot. */
#include "kx.h"

#include <stdlib.h>
#include <string.h>

static bool counter_grow(struct kx_counter *c)
{
	size_t cap = c->cap ? c->cap * 2 : 1024;
	struct kx_count_slot *slots = calloc(cap, sizeof *slots);

	if (!slots)
		return false;
	for (size_t i = 0; i < c->cap; i++) {
		const struct kx_count_slot *s = &c->slots[i];
		size_t j;

		if (!s->used)
			continue;
		for (j = s->hash & (cap - 1); slots[j].used; j = (j + 1) & (cap - 1))
			;
		slots[j] = *s;
	}
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	return true;
}

bool kx__counter_add(struct kx_counter *c, const char *key, size_t len,
                     uint64_t inc)
{
	return kx__counter_add_hashed(c, key, len, kx__fnv1a(key, len), inc);
}

bool kx__counter_add_hashed(struct kx_counter *c, const char *key, size_t len,
                            uint64_t h, uint64_t inc)
{
	size_t j;

	if ((c->used + 1) * 2 > c->cap && !counter_grow(c))
		return false;
	for (j = h & (c->cap - 1); c->slots[j].used; j = (j + 1) & (c->cap - 1)) {
		struct kx_count_slot *s = &c->slots[j];

		if (s->hash == h && s->len == len &&
		    memcmp(c->arena + s->key, key, len) == 0) {
			s->count += inc;
			return true;
		}
	}
	if (c->arena_cap - c->arena_len < len) {
		size_t cap = c->arena_cap ? c->arena_cap : 65536;
		char *p;

		while (cap - c->arena_len < len)
			cap *= 2;
		p = realloc(c->arena, cap);
		if (!p)
			return false;
		c->arena = p;
		c->arena_cap = cap;
	}
	memcpy(c->arena + c->arena_len, key, len);
	c->slots[j] = (struct kx_count_slot){
		.hash = h, .count = inc, .key = c->arena_len, .len = len, .used = true,
	};
	c->arena_len += len;
	c->used++;
	return true;
}

void kx__counter_free(struct kx_counter *c)
{
	free(c->slots);
	free(c->arena);
	*c = (struct kx_counter){0};
}

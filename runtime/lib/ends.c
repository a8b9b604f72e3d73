/*
 * The per-thread table of channel ends and segments: open addressing on
 * (id, role), with the end last used in each role first (internal.h,
 * ipc__end_find). Private to its TLS: no lock. Layer 3 (README, "Project
 * layout and development").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ---- the TLS end map: open addressing on (id, role) --------------------- */

static uint32_t end_hash(uint64_t id, uint8_t role)
{
	return (uint32_t)(((id ^ ((uint64_t)role << 61)) * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

struct ipc__end *ipc__end_lookup(struct ipc_tls *t, uint64_t id, uint8_t role)
{
	struct ipc__end *e;
	for (uint32_t i = end_hash(id, role) & (t->ends_cap - 1);; i = (i + 1) & (t->ends_cap - 1)) {
		e = &t->ends[i];
		if (e->used == 0)
			return NULL;
		if (e->used == 1 && e->id == id && e->role == role)
			return t->last[role & 3] = e;
	}
}

/* Rehash into a table with room for twice the live ends: the same size
 * when closed ends' tombstones filled it, so that adding and closing ends
 * forever never grows it. */
static int ends_rehash(struct ipc_tls *t)
{
	uint32_t live = 0, cap = t->ends_cap;
	for (uint32_t i = 0; i < t->ends_cap; i++)
		live += t->ends[i].used == 1;
	if ((live + 1) * 4 > cap)
		cap *= 2;
	if (cap < 16)
		cap = 16;
	struct ipc__end *old = t->ends, *n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->ends_cap; i++) {
		if (old[i].used != 1)
			continue;
		uint32_t j = end_hash(old[i].id, old[i].role) & (cap - 1);
		while (n[j].used)
			j = (j + 1) & (cap - 1);
		n[j] = old[i];
	}
	t->ends = n;
	t->ends_cap = cap;
	t->ends_used = live;
	memset(t->last, 0, sizeof(t->last));
	free(old);
	return 0;
}

struct ipc__end *ipc__end_add(struct ipc_tls *t, uint64_t id, uint8_t role)
{
	if ((t->ends_used + 1) * 2 > t->ends_cap && ends_rehash(t))
		return NULL;
	uint32_t i = end_hash(id, role) & (t->ends_cap - 1);
	while (t->ends[i].used == 1)
		i = (i + 1) & (t->ends_cap - 1);
	struct ipc__end *e = &t->ends[i];
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->role = role;
	e->used = 1;
	e->pidfd = -1;
	t->ends_used++;
	return t->last[role & 3] = e;
}

void ipc__end_del(struct ipc_tls *t, struct ipc__end *e)
{
	e->used = 2; /* tombstone: ends_used counts it until the next rehash */
	if (e->pidfd >= 0)
		close(e->pidfd);
	e->pidfd = -1;
	e->c = NULL;
	e->seg = NULL;
	if (t->last[e->role & 3] == e)
		t->last[e->role & 3] = NULL;
}

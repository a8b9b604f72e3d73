/*
 * Unit tests of the raw SPSC ring (runtime/lib/ring.h) on private memory:
 * FIFO order against a reference queue, capacity limits, free-running
 * indices across the 2^64 wrap, a corrupt tail, and two threads passing
 * values in order (also run under ThreadSanitizer).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

struct ring {
	struct ipc__ring_idx idx;
	ipc_a64 *slot;
	uint64_t mask, cap;
};

static void ring_new(struct ring *r, uint64_t cap, uint64_t start)
{
	uint64_t slots = ipc__ring_slots(cap);

	memset(&r->idx, 0, sizeof(r->idx));
	atomic_init(&r->idx.tail, start);
	atomic_init(&r->idx.head, start);
	r->slot = calloc(slots, sizeof(*r->slot));
	assert_non_null(r->slot);
	r->mask = slots - 1;
	r->cap = cap;
}

static void test_ring_slots_next_power_of_two(void **state)
{
	(void)state;
	assert_int_equal(ipc__ring_slots(1), 1);
	assert_int_equal(ipc__ring_slots(2), 2);
	assert_int_equal(ipc__ring_slots(3), 4);
	assert_int_equal(ipc__ring_slots(1000), 1024);
	assert_int_equal(ipc__ring_slots(1024), 1024);
	assert_int_equal(ipc__ring_slots(1025), 2048);
	assert_int_equal((uint64_t)alignof(struct ipc__ring_idx), 64);
	assert_int_equal(offsetof(struct ipc__ring_idx, head) -
	                 offsetof(struct ipc__ring_idx, tail), 64);
}

static void check_fifo(uint64_t cap, uint64_t start, uint64_t seed)
{
	struct ring r;
	struct ipc__ring_view p, c;
	uint64_t rng = seed, next_in = 1, next_out = 1;

	ring_new(&r, cap, start);
	ipc__ring_view_init(&p, &r.idx, r.slot, r.mask, cap, true);
	ipc__ring_view_init(&c, &r.idx, r.slot, r.mask, cap, false);
	assert_true(ipc__ring_empty(&c));
	/* fill exactly to capacity */
	for (uint64_t i = 0; i < cap; i++) {
		assert_false(ipc__ring_full(&p));
		ipc__ring_put(&p, next_in++, false);
	}
	assert_true(ipc__ring_full(&p));
	assert_int_equal(ipc__ring_count(&r.idx), cap);
	for (uint64_t i = 0; i < cap; i++) {
		assert_false(ipc__ring_empty(&c));
		assert_int_equal(ipc__ring_get(&c, i % 2 == 0), next_out++);
	}
	assert_true(ipc__ring_empty(&c));
	assert_false(ipc__ring_full(&p));
	/* random bursts against the reference (next_in - next_out in flight) */
	for (int round = 0; round < 5000; round++) {
		uint64_t n = tu_rand_range(&rng, 0, cap);
		for (uint64_t i = 0; i < n; i++) {
			bool full = next_in - next_out == cap;
			assert_int_equal(ipc__ring_full(&p), full);
			if (full)
				break;
			ipc__ring_put(&p, next_in++, round % 3 == 0);
		}
		assert_int_equal(ipc__ring_count(&r.idx), next_in - next_out);
		n = tu_rand_range(&rng, 0, cap);
		for (uint64_t i = 0; i < n; i++) {
			bool empty = next_in == next_out;
			assert_int_equal(ipc__ring_empty(&c), empty);
			if (empty)
				break;
			assert_int_equal(ipc__ring_get(&c, round % 5 == 0), next_out++);
		}
	}
	/* a view opened later sees the same state */
	{
		struct ipc__ring_view c2;
		ipc__ring_view_init(&c2, &r.idx, r.slot, r.mask, cap, false);
		while (next_out < next_in) {
			assert_false(ipc__ring_empty(&c2));
			assert_int_equal(ipc__ring_get(&c2, false), next_out++);
		}
		assert_true(ipc__ring_empty(&c2));
	}
	free(r.slot);
}

static void test_ring_fifo_order_matches_reference(void **state)
{
	(void)state;
	check_fifo(1, 0, tu_seed());
	check_fifo(5, 0, tu_seed() + 1);      /* capacity below the slot count */
	check_fifo(64, 0, tu_seed() + 2);
	check_fifo(1000, 0, tu_seed() + 3);
}

static void test_ring_indices_wrap_2p64_in_order(void **state)
{
	(void)state;
	check_fifo(8, UINT64_MAX - 20, tu_seed());
	check_fifo(7, UINT64_MAX - 3, tu_seed() + 1);
}

static void test_ring_corrupt_tail_reads_empty(void **state)
{
	struct ring r;
	struct ipc__ring_view p, c;

	(void)state;
	ring_new(&r, 8, 100);
	ipc__ring_view_init(&p, &r.idx, r.slot, r.mask, 8, true);
	ipc__ring_view_init(&c, &r.idx, r.slot, r.mask, 8, false);
	/* the consumer trusts slots, not tail: a wild tail shows nothing */
	atomic_store(&r.idx.tail, 100 + r.mask + 2); /* more than the ring holds */
	assert_true(ipc__ring_empty(&c));
	assert_false(ipc__ring_slot_corrupt(&c));    /* a wild tail proves nothing */
	atomic_store(&r.idx.tail, 99);               /* behind head */
	assert_true(ipc__ring_empty(&c));
	assert_false(ipc__ring_slot_corrupt(&c));
	atomic_store(&r.idx.tail, 101);              /* says a slot was filled */
	assert_true(ipc__ring_empty(&c));
	assert_true(ipc__ring_slot_corrupt(&c));     /* ... that holds nothing */
	/* a value of the wrong lap is no value */
	atomic_store(&r.idx.tail, 100);
	atomic_store(&r.slot[100 & r.mask], 7);
	assert_true(ipc__ring_empty(&c));
	ipc__ring_put(&p, 7, false);
	assert_false(ipc__ring_empty(&c));
	assert_false(ipc__ring_slot_corrupt(&c));
	assert_int_equal(ipc__ring_get(&c, false), 7);
	assert_true(ipc__ring_empty(&c));
	free(r.slot);
}

/* A value a slot can carry (non-zero, below 2^48), scrambled. */
static uint64_t ring_val(uint64_t v)
{
	return ((v * 0x9e3779b97f4a7c15ull) & IPC__RING_VALUE_MASK) | 1;
}

struct pair {
	struct ring r;
	uint64_t count;
	bool seq_cst;
};

static void *ring_producer(void *arg)
{
	struct pair *x = arg;
	struct ipc__ring_view p;

	ipc__ring_view_init(&p, &x->r.idx, x->r.slot, x->r.mask, x->r.cap, true);
	for (uint64_t v = 1; v <= x->count; v++) {
		uint32_t spins = 0;
		while (ipc__ring_full(&p))
			if (++spins % 64 == 0)
				sched_yield();
		ipc__ring_put(&p, ring_val(v), x->seq_cst);
	}
	return NULL;
}

static void two_threads(uint64_t cap, uint64_t count, bool seq_cst)
{
	struct pair x = { .count = count, .seq_cst = seq_cst };
	struct ipc__ring_view c;
	pthread_t th;

	ring_new(&x.r, cap, 0);
	ipc__ring_view_init(&c, &x.r.idx, x.r.slot, x.r.mask, cap, false);
	assert_int_equal(pthread_create(&th, NULL, ring_producer, &x), 0);
	for (uint64_t v = 1; v <= count; v++) {
		uint32_t spins = 0;
		uint64_t got;
		while (ipc__ring_empty(&c))
			if (++spins % 64 == 0)
				sched_yield();
		got = ipc__ring_get(&c, seq_cst);
		if (got != ring_val(v))
			fail_msg("value %llu: got %llx", (unsigned long long)v,
			         (unsigned long long)got);
	}
	pthread_join(th, NULL);
	assert_true(ipc__ring_empty(&c));
	assert_int_equal(ipc__ring_count(&x.r.idx), 0);
	free(x.r.slot);
}

static void test_ring_two_threads_in_order(void **state)
{
	uint64_t n = tu_arg("ring_values", TU_SANITIZED ? 1u << 18 : 1u << 20);

	(void)state;
	two_threads(1024, n, false);
	two_threads(3, n / 4, false);
	two_threads(64, n / 4, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_slots_next_power_of_two),
		cmocka_unit_test(test_ring_fifo_order_matches_reference),
		cmocka_unit_test(test_ring_indices_wrap_2p64_in_order),
		cmocka_unit_test(test_ring_corrupt_tail_reads_empty),
		cmocka_unit_test(test_ring_two_threads_in_order),
	};

	tu_init(argc, argv);
	tu_watchdog(120);
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}

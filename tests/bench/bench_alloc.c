/*
 * Allocation benchmark (issue 2, acceptance 2): 64-byte records allocated and
 * freed per second by libipc (ipc_record_alloc / ipc_record_free on a channel
 * added as producer) and by glibc malloc / free, in the same run.
 *
 *  - single thread, "pairs": allocate one record, write it, free it;
 *  - single thread, "batch": allocate 256, write each, free them in the order
 *    they were allocated (FIFO, what channel traffic does);
 *  - cross thread: one thread allocates and writes, a second thread reads and
 *    frees. Pointers travel through a small SPSC ring of this file (not an
 *    ipc channel), so that the figure is the allocator's and the same queue
 *    cost is paid by both allocators.
 *
 * The two allocators take turns within every run (single thread: ten short
 * slices each, alternating; cross thread: one after the other, the order
 * alternating between runs), so that noise from the machine falls on both
 * alike; "others" is the CPU other processes used during each run. IPC_BENCH_ONLY="libipc single*" (a shell pattern on
 * "<allocator> <case>") runs only the matching cases, e.g. under perf.
 */
#include "bench_util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <ipc/buffer.h>

#define REC 64
#define BATCH 256
#define CHAN 1
#define RING 4096 /* pointers in the cross-thread ring (power of two) */

enum alloc_kind { A_IPC, A_MALLOC };
static const char *const kind_name[] = { "libipc", "glibc malloc" };

struct lib {
	struct ipc_buffer *b;
	struct ipc_tls *t[2]; /* allocating thread, freeing thread */
	char handle[IPC_HANDLE_MAX + 1];
};

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_alloc: %s: %s\n", what, ipc_strerror(err));
	exit(1);
}

static void lib_open(struct lib *l)
{
	struct ipc_buffer_opts o = { .size = 64u << 20 };
	int rc = ipc_buffer_gen_handle(l->handle, sizeof l->handle);
	if (rc)
		die("ipc_buffer_gen_handle", rc);
	l->b = ipc_buffer_open(l->handle, &o);
	if (!l->b)
		die("ipc_buffer_open", -errno);
	for (int i = 0; i < 2; i++) {
		l->t[i] = ipc_tls_open(l->b, i + 1);
		if (!l->t[i])
			die("ipc_tls_open", -errno);
	}
	rc = ipc_channel_add(l->t[0], CHAN, IPC_PRODUCER);
	if (rc)
		die("ipc_channel_add", rc);
}

static void lib_close(struct lib *l)
{
	ipc_tls_close(l->t[1]);
	ipc_tls_close(l->t[0]);
	ipc_buffer_close(l->b, true);
	if (ipc_buffer_gc(l->handle, IPC_SHM_DEFAULT) > 0)
		fprintf(stderr, "bench_alloc: buffer %s was left behind\n", l->handle);
}

static inline void *do_alloc(struct lib *l, enum alloc_kind k)
{
	void *p = k == A_IPC ? ipc_record_alloc(l->t[0], REC, CHAN) : malloc(REC);
	if (!p)
		die("allocation failed", -errno);
	return p;
}

static inline void do_free(struct lib *l, enum alloc_kind k, int tls, void *p)
{
	if (k == A_IPC)
		ipc_record_free(l->t[tls], p);
	else
		free(p);
}

/* Allocate and free records for about secs seconds on one thread; adds the
 * records done and the time taken to *n and *t. */
static void single_slice(struct lib *l, enum alloc_kind k, bool batch, double secs,
                         uint64_t *n, double *t)
{
	void *v[BATCH];
	uint64_t done = 0;
	double t0 = bench_now(), now;
	do {
		for (int rep = 0; rep < 16; rep++) {
			if (batch) {
				for (int i = 0; i < BATCH; i++) {
					v[i] = do_alloc(l, k);
					*(uint64_t *)v[i] = done + (uint64_t)i;
					bench_escape(v[i]);
				}
				for (int i = 0; i < BATCH; i++)
					do_free(l, k, 0, v[i]);
			} else {
				for (int i = 0; i < BATCH; i++) {
					void *p = do_alloc(l, k);
					*(uint64_t *)p = done + (uint64_t)i;
					bench_escape(p);
					do_free(l, k, 0, p);
				}
			}
			done += BATCH;
		}
		now = bench_now();
	} while (now - t0 < secs);
	*n += done;
	*t += now - t0;
}

/*
 * One run of both allocators on one thread: SLICES short slices of each,
 * alternating, so that both see the same machine (a neighbour's load or a
 * frequency change hits both). rate[k] = records/s of allocator k.
 */
#define SLICES 10
static void single_run(struct lib *l, bool batch, int run, const bool sel[2],
                       double rate[2])
{
	uint64_t n[2] = { 0, 0 }, junk = 0;
	double t[2] = { 0, 0 }, tj = 0, slice = bench_seconds() / SLICES;
	for (int k = 0; k < 2; k++)
		if (sel[k])
			single_slice(l, (enum alloc_kind)k, batch, bench_warmup() / 2, &junk, &tj);
	for (int i = 0; i < 2 * SLICES; i++) {
		int k = (i + run) % 2;
		if (sel[k])
			single_slice(l, (enum alloc_kind)k, batch, slice, &n[k], &t[k]);
	}
	for (int k = 0; k < 2; k++)
		rate[k] = sel[k] ? (double)n[k] / t[k] : -1;
}

/* A single-producer single-consumer ring of pointers (this file's own). */
struct ring {
	_Alignas(64) _Atomic uint64_t tail; /* written by the producer */
	_Alignas(64) _Atomic uint64_t head; /* written by the consumer */
	_Alignas(64) _Atomic uint32_t stop; /* written once by the consumer */
	_Alignas(64) void *slot[RING];
};

struct xctx {
	struct lib *l;
	enum alloc_kind k;
	struct ring *r;
	struct bench_barrier bar;
	double rate;
	bool bad;
};

static void wait_a_bit(unsigned *spins)
{
	if (++*spins % 128 == 0)
		sched_yield();
	else
		bench_cpu_relax();
}

static void x_producer(struct xctx *c)
{
	struct ring *r = c->r;
	uint64_t tail = 0, head = 0;
	unsigned spins = 0;
	bench_barrier_wait(&c->bar, 2);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		/* pairs with the consumer's release of head: slots before head
		 * are free to reuse */
		if (tail - head == RING) {
			head = atomic_load_explicit(&r->head, memory_order_acquire);
			if (tail - head == RING) {
				wait_a_bit(&spins);
				continue;
			}
		}
		void *p = do_alloc(c->l, c->k);
		*(uint64_t *)p = tail;
		r->slot[tail % RING] = p;
		/* pairs with the consumer's acquire of tail: publishes the slot
		 * and the record's contents */
		atomic_store_explicit(&r->tail, ++tail, memory_order_release);
	}
	atomic_store_explicit(&r->tail, tail | (UINT64_C(1) << 63),
	                      memory_order_release);
}

static void x_consumer(struct xctx *c)
{
	struct ring *r = c->r;
	uint64_t head = 0, tail = 0, n = 0, end = UINT64_MAX;
	unsigned spins = 0;
	int phase = 0; /* 0 warm-up, 1 measuring, 2 draining */
	double dur = bench_seconds(), start = 0, warm;
	bench_barrier_wait(&c->bar, 2);
	warm = bench_now() + bench_warmup();
	while (head != end) {
		if (head == tail) {
			uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (t >> 63) {
				end = t & ~(UINT64_C(1) << 63);
				t = end;
			}
			tail = t;
			if (head == tail) {
				wait_a_bit(&spins);
				continue;
			}
		}
		void *p = r->slot[head % RING];
		if (*(uint64_t *)p != head)
			c->bad = true;
		do_free(c->l, c->k, 1, p);
		atomic_store_explicit(&r->head, ++head, memory_order_release);
		if (++n % 1024 == 0 && phase < 2) {
			double now = bench_now();
			if (phase == 0 && now >= warm) {
				start = now;
				n = 0;
				phase = 1;
			} else if (phase == 1 && now - start >= dur) {
				atomic_store_explicit(&r->stop, 1, memory_order_relaxed);
				c->rate = (double)n / (now - start);
				phase = 2; /* drain the rest without counting */
			}
		}
	}
}

static void x_role(void *arg, int side)
{
	if (side == 0)
		x_producer(arg);
	else
		x_consumer(arg);
}

static double cross(struct lib *l, enum alloc_kind k)
{
	struct ring *r = aligned_alloc(64, sizeof *r);
	if (!r)
		die("aligned_alloc", -ENOMEM);
	memset(r, 0, sizeof *r);
	struct xctx c = { .l = l, .k = k, .r = r };
	bench_run_pair(false, x_role, &c, NULL, 0);
	free(r);
	if (c.bad) {
		fprintf(stderr, "bench_alloc: cross-thread records arrived corrupt\n");
		exit(1);
	}
	return c.rate;
}

enum { C_PAIRS, C_BATCH, C_CROSS, NCASE };
static const char *const case_name[] = {
	"single thread, alloc+free pairs",
	"single thread, batches of 256 (FIFO free)",
	"cross thread (alloc in A, free in B)",
};

int main(void)
{
	int runs = bench_runs();
	double v[NCASE][2][BENCH_MAX_RUNS], others[NCASE][BENCH_MAX_RUNS];
	struct lib l;

	bench_print_header("Allocation: 64-byte records, libipc vs glibc malloc");
	lib_open(&l);
	for (int c = 0; c < NCASE; c++) {
		bool sel[2];
		for (int k = 0; k < 2; k++)
			sel[k] = bench_selected("%s %s", kind_name[k], case_name[c]);
		for (int r = 0; r < runs; r++) {
			struct bench_load ld;
			double rate[2];
			bench_load_begin(&ld);
			if (c != C_CROSS) {
				single_run(&l, c == C_BATCH, r, sel, rate);
			} else {
				for (int i = 0; i < 2; i++) {
					int k = (i + r) % 2;
					rate[k] = sel[k] ? cross(&l, (enum alloc_kind)k) : -1;
				}
			}
			others[c][r] = bench_load_others(&ld);
			for (int k = 0; k < 2; k++)
				v[c][k][r] = rate[k];
		}
		printf("%-42s", case_name[c]);
		for (int k = 0; k < 2; k++) {
			printf("  %s:", kind_name[k]);
			for (int r = 0; r < runs; r++)
				printf(v[c][k][r] < 0 ? " -" : " %.1f", v[c][k][r] / 1e6);
		}
		printf("  (M/s per run)  others:");
		for (int r = 0; r < runs; r++)
			printf(" %.2f", others[c][r]);
		printf("\n");
		fflush(stdout);
	}
	struct ipc_buffer_stats st;
	if (ipc_buffer_stats(l.b, &st) == 0 && st.record_count != 0)
		fprintf(stderr, "bench_alloc: %llu records still live after the runs\n",
		        (unsigned long long)st.record_count);
	lib_close(&l);

	struct bench_table t;
	double pairs_ratio = -1;
	bench_table_init(&t, "case|libipc (records/s)|glibc malloc (records/s)|"
	                     "libipc / malloc (median of per-run ratios)");
	for (int c = 0; c < NCASE; c++) {
		char a[32], b[32];
		double ratio[BENCH_MAX_RUNS];
		for (int r = 0; r < runs; r++)
			ratio[r] = v[c][A_MALLOC][r] > 0 ? v[c][A_IPC][r] / v[c][A_MALLOC][r] : -1;
		double q = bench_median(ratio, runs);
		double mi = bench_median(v[c][A_IPC], runs);
		double mm = bench_median(v[c][A_MALLOC], runs);
		if (mi < 0 || mm < 0) {
			bench_table_addf(&t, "%s|%s|%s|-", case_name[c],
			                 mi < 0 ? "skipped" : bench_fmt_rate(a, sizeof a, mi),
			                 mm < 0 ? "skipped" : bench_fmt_rate(b, sizeof b, mm));
			continue;
		}
		if (c == C_PAIRS)
			pairs_ratio = q;
		bench_table_addf(&t, "%s|%s|%s|%.2fx", case_name[c],
		                 bench_fmt_rate(a, sizeof a, mi), bench_fmt_rate(b, sizeof b, mm), q);
	}
	bench_table_print(&t, "Allocation of 64-byte records (allocate + write + free)");

	bench_table_init(&t, "goal|measured|met");
	if (pairs_ratio >= 0)
		bench_table_addf(&t, "single-thread alloc+free >= glibc malloc|%.2fx|%s",
		                 pairs_ratio, pairs_ratio >= 1 ? "yes" : "**no**");
	bench_table_print(&t, "Allocation goal (issue 2)");
	return 0;
}

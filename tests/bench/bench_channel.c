/*
 * Channel throughput (issue 3): records of 8 B .. 1 MiB between two threads
 * and between two processes, over an ipc channel in spin and hybrid wait
 * modes, and the same work over a pipe and a UNIX stream socket in the same
 * run.
 *
 * Per record, ipc: the producer allocates it in the shared buffer, fills it
 * (sequence number + pattern), sends it (ipc_record_send_wait); the consumer
 * receives it (ipc_record_recv_wait), reads every byte (a checksum, and the
 * sequence is checked), frees it. Pipe and socket: the producer fills a
 * private buffer and writes it whole; the consumer reads the record whole
 * into a private buffer and reads every byte the same way.
 *
 * Everything is measured at the consumer: after a warm-up it counts records
 * for bench_seconds(), then raises "stop"; the producer stops, closes (end of
 * stream), and the consumer drains. Between processes each child opens the
 * buffer by handle after fork; a fresh buffer is used for every run.
 *
 * Also: 64-byte records between two processes pinned to one CPU (what an
 * oversubscribed machine does to each transport), and two bare reference
 * rings without any allocator (what this machine allows at all).
 *
 * IPC_BENCH_ONLY="processes 64 B ipc*" (a shell pattern) runs only the cases
 * whose label matches, e.g. under perf.
 */
#include "bench_ipc.h"
#include "bench_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* T_RING and T_SLOT are references, not competitors: see ring_producer. */
enum tp { T_SPIN, T_HYBRID, T_PIPE, T_SOCK, NT, T_RING = NT, T_SLOT };
static const char *const tp_name[NT + 2] = { "ipc spin", "ipc hybrid", "pipe", "socket",
	                                     "index ring", "slot ring" };

#define CHAN 1
#define NSIZE 5
static const size_t sizes[NSIZE] = { 8, 64, 4096, 65536, 1u << 20 };

#define RSLOTS 1024

/* The reference rings: 64-byte slots in shared memory. */
struct rawring {
	_Alignas(64) _Atomic uint64_t tail;   /* producer */
	_Alignas(64) _Atomic uint64_t head;   /* consumer */
	_Alignas(64) _Atomic uint32_t closed; /* producer, once */
	_Alignas(64) unsigned char slot[RSLOTS][64];
};

struct tctx {
	struct rawring ring;
	_Alignas(64) struct bench_barrier bar;
	_Alignas(64) _Atomic uint32_t stop; /* consumer -> producer, once */
	_Alignas(64) enum tp tp;
	size_t size;
	uint32_t capacity;
	struct bench_ipc_run run;
	int wfd, rfd;
	/* results, written by their side at the end */
	double rate;      /* consumer: records/s */
	uint64_t retries; /* producer: allocations retried on ENOMEM */
	uint64_t sink;
	int failed[2];
	int pin;              /* CPU for both sides, or -1 */
	long sleeps[2];       /* voluntary context switches per side */
	long preempts[2];     /* involuntary ones */
};

/* Counts records at the consumer: warm-up, then bench_seconds() of counting,
 * then it raises stop. */
struct meter {
	double warm_end, start, dur;
	uint64_t n, mask;
	int phase; /* 0 warm-up, 1 counting, 2 draining */
};

static void meter_init(struct meter *m, size_t size)
{
	m->dur = bench_seconds();
	m->warm_end = bench_now() + bench_warmup();
	m->start = 0;
	m->n = 0;
	m->mask = size <= 256 ? 63 : size <= 8192 ? 7 : 0;
	m->phase = 0;
}

static void meter_check(struct meter *m, struct tctx *c)
{
	double now = bench_now();
	if (m->phase == 0 && now >= m->warm_end) {
		m->start = now;
		m->n = 0;
		m->phase = 1;
	} else if (m->phase == 1 && now - m->start >= m->dur) {
		c->rate = (double)m->n / (now - m->start);
		m->phase = 2;
		atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
	}
}

static inline void meter_tick(struct meter *m, struct tctx *c)
{
	if ((++m->n & m->mask) == 0 && m->phase < 2)
		meter_check(m, c);
}

static bool stopped(struct tctx *c)
{
	return atomic_load_explicit(&c->stop, memory_order_relaxed) != 0;
}

static void ipc_producer(struct tctx *c)
{
	struct bench_ipc_end e;
	enum ipc_wait_mode w = c->tp == T_SPIN ? IPC_WAIT_SPIN : IPC_WAIT_HYBRID;
	int rc = bench_ipc_open(&e, &c->run, 0);
	bool open = rc == 0;
	if (open)
		rc = bench_ipc_add(&e, CHAN, IPC_PRODUCER, w, c->capacity);
	bench_barrier_wait(&c->bar, 2);
	if (rc) {
		c->failed[0] = 1;
		if (open)
			bench_ipc_close(&e);
		return;
	}
	for (uint64_t seq = 0; !stopped(c); seq++) {
		void *r = bench_ipc_alloc(&e, c->size, CHAN, &c->retries);
		if (!r) {
			c->failed[0] = 1;
			break;
		}
		bench_fill(r, c->size, seq);
		rc = ipc_record_send_wait(e.t, CHAN, &r, -1);
		if (rc != IPC_TX_SUCCESS) {
			fprintf(stderr, "bench: send: %s\n", ipc_strerror(rc));
			ipc_record_free(e.t, r);
			c->failed[0] = 1;
			break;
		}
	}
	ipc_channel_close(e.t, CHAN);
	bench_ipc_close(&e);
}

static void ipc_consumer(struct tctx *c)
{
	struct bench_ipc_end e;
	struct meter m;
	enum ipc_wait_mode w = c->tp == T_SPIN ? IPC_WAIT_SPIN : IPC_WAIT_HYBRID;
	uint64_t sink = 0, seq = 0;
	int rc = bench_ipc_open(&e, &c->run, 1);
	bool open = rc == 0;
	if (open)
		rc = bench_ipc_add(&e, CHAN, IPC_CONSUMER, w, c->capacity);
	bench_barrier_wait(&c->bar, 2);
	if (rc) {
		c->failed[1] = 1;
		atomic_store(&c->stop, 1);
		if (open)
			bench_ipc_close(&e);
		return;
	}
	meter_init(&m, c->size);
	for (;; seq++) {
		void *r;
		rc = ipc_record_recv_wait(e.t, CHAN, &r, -1);
		if (rc == IPC_TX_EOF)
			break;
		if (rc != IPC_TX_SUCCESS) {
			fprintf(stderr, "bench: recv: %s\n", ipc_strerror(rc));
			c->failed[1] = 1;
			break;
		}
		if (!bench_read(r, c->size, seq, &sink) || ipc_record_size(r) != c->size) {
			fprintf(stderr, "bench: record %llu corrupt or out of order\n",
			        (unsigned long long)seq);
			c->failed[1] = 1;
		}
		ipc_record_free(e.t, r);
		meter_tick(&m, c);
	}
	if (m.phase < 2)
		c->failed[1] = 1;
	atomic_store(&c->stop, 1);
	c->sink = sink;
	ipc_channel_close(e.t, CHAN);
	bench_ipc_close(&e);
}

static void fd_producer(struct tctx *c)
{
	void *buf = malloc(c->size);
	bench_barrier_wait(&c->bar, 2);
	for (uint64_t seq = 0; buf && !stopped(c); seq++) {
		bench_fill(buf, c->size, seq);
		if (bench_write_full(c->wfd, buf, c->size) != 0) {
			perror("bench: write");
			c->failed[0] = 1;
			break;
		}
	}
	if (!buf)
		c->failed[0] = 1;
	free(buf);
	close(c->wfd);
}

static void fd_consumer(struct tctx *c)
{
	void *buf = malloc(c->size);
	struct meter m;
	uint64_t sink = 0, seq = 0;
	bench_barrier_wait(&c->bar, 2);
	meter_init(&m, c->size);
	for (; buf; seq++) {
		int rc = bench_read_full(c->rfd, buf, c->size);
		if (rc == 0)
			break;
		if (rc < 0) {
			perror("bench: read");
			c->failed[1] = 1;
			break;
		}
		if (!bench_read(buf, c->size, seq, &sink))
			c->failed[1] = 1;
		meter_tick(&m, c);
	}
	if (m.phase < 2 || !buf)
		c->failed[1] = 1;
	atomic_store(&c->stop, 1);
	c->sink = sink;
	free(buf);
	close(c->rfd);
}

/*
 * What the hardware allows, for reference: an SPSC ring of 64-byte slots in
 * shared memory, indices on their own lines and cached by each side, the
 * record written and read in place (no allocator, no free, no offsets, no
 * checks). Same fill and read as the other transports.
 */
static void ring_producer(struct tctx *c)
{
	struct rawring *q = &c->ring;
	uint64_t tail = 0, head = 0;
	bench_barrier_wait(&c->bar, 2);
	while (!stopped(c)) {
		if (tail - head == RSLOTS) {
			/* pairs with the consumer's release of head: it is done
			 * with the slots below head */
			head = atomic_load_explicit(&q->head, memory_order_acquire);
			if (tail - head == RSLOTS) {
				bench_cpu_relax();
				continue;
			}
		}
		bench_fill(q->slot[tail % RSLOTS], c->size, tail);
		/* pairs with the consumer's acquire of tail: publishes the slot */
		atomic_store_explicit(&q->tail, ++tail, memory_order_release);
	}
	atomic_store_explicit(&q->closed, 1, memory_order_release);
}

static void ring_consumer(struct tctx *c)
{
	struct rawring *q = &c->ring;
	struct meter m;
	uint64_t head = 0, tail = 0, sink = 0;
	bench_barrier_wait(&c->bar, 2);
	meter_init(&m, c->size);
	for (;;) {
		if (head == tail) {
			tail = atomic_load_explicit(&q->tail, memory_order_acquire);
			if (head == tail) {
				/* closed is stored after the last tail: re-read tail */
				if (atomic_load_explicit(&q->closed, memory_order_acquire) &&
				    head == atomic_load_explicit(&q->tail, memory_order_acquire))
					break;
				bench_cpu_relax();
				continue;
			}
		}
		if (!bench_read(q->slot[head % RSLOTS], c->size, head, &sink))
			c->failed[1] = 1;
		atomic_store_explicit(&q->head, ++head, memory_order_release);
		meter_tick(&m, c);
	}
	if (m.phase < 2)
		c->failed[1] = 1;
	atomic_store(&c->stop, 1);
	c->sink = sink;
}

/*
 * The same ring without a shared tail: the slot's first word, stored last
 * with release, holds seq + 1 and so says both "full" and which lap; the
 * consumer never reads an index the producer keeps writing and never writes
 * the slot; it publishes head only every SLOT_BATCH records (FastForward /
 * B-Queue style). Records of 8..64 bytes; the first word is the sequence
 * number bench_read checks (plus one).
 */
#define SLOT_BATCH 64

static _Atomic uint64_t *slot_word(struct rawring *q, uint64_t i)
{
	return (_Atomic uint64_t *)(void *)q->slot[i % RSLOTS];
}

static void slot_producer(struct tctx *c)
{
	struct rawring *q = &c->ring;
	uint64_t tail = 0, head = 0;
	bench_barrier_wait(&c->bar, 2);
	while (!stopped(c)) {
		if (tail - head == RSLOTS) {
			/* pairs with the consumer's release of head */
			head = atomic_load_explicit(&q->head, memory_order_acquire);
			if (tail - head == RSLOTS) {
				bench_cpu_relax();
				continue;
			}
		}
		unsigned char *p = q->slot[tail % RSLOTS];
		if (c->size > 8)
			memset(p + 8, 0xA5, c->size - 8);
		/* pairs with the consumer's acquire of the word: publishes the
		 * rest of the slot */
		atomic_store_explicit(slot_word(q, tail), tail + 1, memory_order_release);
		tail++;
	}
	atomic_store_explicit(&q->tail, tail, memory_order_release);
	atomic_store_explicit(&q->closed, 1, memory_order_release);
}

static void slot_consumer(struct tctx *c)
{
	struct rawring *q = &c->ring;
	struct meter m;
	uint64_t head = 0, sink = 0;
	bench_barrier_wait(&c->bar, 2);
	meter_init(&m, c->size);
	for (;;) {
		uint64_t w = atomic_load_explicit(slot_word(q, head), memory_order_acquire);
		if (w != head + 1) {
			/* closed is stored after the last slot and tail */
			if (atomic_load_explicit(&q->closed, memory_order_acquire) &&
			    head == atomic_load_explicit(&q->tail, memory_order_acquire))
				break;
			bench_cpu_relax();
			continue;
		}
		if (!bench_read(q->slot[head % RSLOTS], c->size, head + 1, &sink))
			c->failed[1] = 1;
		/* pairs with the producer's acquire of head: the slots below
		 * it may be overwritten */
		if (++head % SLOT_BATCH == 0)
			atomic_store_explicit(&q->head, head, memory_order_release);
		meter_tick(&m, c);
	}
	if (m.phase < 2)
		c->failed[1] = 1;
	atomic_store(&c->stop, 1);
	c->sink = sink;
}

static void tp_role(void *arg, int side)
{
	struct tctx *c = arg;
	long v0, i0, v1, i1;
	bench_pin(c->pin);
	bench_csw(&v0, &i0);
	if (c->tp == T_PIPE || c->tp == T_SOCK) {
		if (side == 0)
			fd_producer(c);
		else
			fd_consumer(c);
	} else if (c->tp == T_RING) {
		if (side == 0)
			ring_producer(c);
		else
			ring_consumer(c);
	} else if (c->tp == T_SLOT) {
		if (side == 0)
			slot_producer(c);
		else
			slot_consumer(c);
	} else if (side == 0) {
		ipc_producer(c);
	} else {
		ipc_consumer(c);
	}
	bench_csw(&v1, &i1);
	c->sleeps[side] = v1 - v0;
	c->preempts[side] = i1 - i0;
}

static uint32_t capacity_for(size_t size)
{
	size_t cap = (16u << 20) / size;
	return cap > 1024 ? 1024 : cap < 16 ? 16 : (uint32_t)cap;
}

static size_t buffer_for(size_t size)
{
	return size >= (1u << 20) ? 256u << 20 : 64u << 20;
}

enum place { PL_THREADS, PL_PROCS, PL_ONECPU, NPL };
static const char *const pl_name[NPL] = { "threads", "processes", "one-cpu" };

/* One measured run; records/s, or 0 on failure. */
static double run_one(struct tctx *c, enum tp tp, size_t size, enum place pl)
{
	struct bench_fds fds = { .n = 0, .keep = { { -1 }, { -1 } } };
	bool procs = pl != PL_THREADS;
	memset(c, 0, sizeof *c);
	c->pin = pl == PL_ONECPU ? 0 : -1;
	c->tp = tp;
	c->size = size;
	c->capacity = capacity_for(size);
	c->wfd = c->rfd = -1;
	if (tp == T_PIPE || tp == T_SOCK) {
		int fd[2];
		int rc = tp == T_PIPE ? pipe(fd) : socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
		if (rc) {
			perror("bench: pipe/socketpair");
			exit(1);
		}
		c->rfd = fd[0];
		c->wfd = fd[1];
		fds = (struct bench_fds){ .fd = { fd[0], fd[1] }, .n = 2,
		                          .keep = { { fd[1], -1 }, { fd[0], -1 } } };
	} else if (tp != T_RING && tp != T_SLOT) {
		bench_ipc_run_begin(&c->run, buffer_for(size), procs);
	}
	int rc = bench_run_pair(procs, tp_role, c, &fds, 10 + 4 * bench_seconds());
	if (tp == T_SPIN || tp == T_HYBRID)
		bench_ipc_run_end(&c->run);
	if (c->retries)
		fprintf(stderr, "bench: %s %zu B: %llu allocations waited for memory\n",
		        tp_name[tp], size, (unsigned long long)c->retries);
	if (rc || c->failed[0] || c->failed[1]) {
		fprintf(stderr, "bench: %s %zu B %s: run failed\n", tp_name[tp], size,
		        procs ? "processes" : "threads");
		return 0;
	}
	return c->rate;
}

static void cell_str(char *out, size_t len, double rate, size_t size)
{
	char a[24];
	if (rate <= 0) {
		snprintf(out, len, rate < 0 ? "skipped" : "failed");
		return;
	}
	snprintf(out, len, "%s/s, %.2f GB/s", bench_fmt_rate(a, sizeof a, rate),
	         rate * (double)size / 1e9);
}

static void ratio_str(char *out, size_t len, double a, double b)
{
	if (a <= 0 || b <= 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.1fx", a / b);
}

/* The cases: every size, transport and placement, then 64-byte records
 * between two processes that share one CPU (what an oversubscribed machine
 * does to a spinning channel). */
struct tcase {
	enum place pl;
	size_t size;
	enum tp tp;
	double v[BENCH_MAX_RUNS];
	long sleeps[BENCH_MAX_RUNS], preempts[BENCH_MAX_RUNS];
	double others[BENCH_MAX_RUNS]; /* CPUs used by other processes meanwhile */
	double med; /* records/s; 0 failed, -1 not selected */
};
#define NCASE (2 * NSIZE * NT + NT + 8)
static struct tcase cases[NCASE];

static struct tcase *find_case(enum place pl, size_t size, enum tp tp)
{
	for (int i = 0; i < NCASE; i++)
		if (cases[i].pl == pl && cases[i].size == size && cases[i].tp == tp)
			return &cases[i];
	return NULL;
}

static double med_of(enum place pl, size_t size, enum tp tp)
{
	struct tcase *k = find_case(pl, size, tp);
	return k ? k->med : -1;
}

static void print_place(enum place pl, const char *title)
{
	struct bench_table t;
	char sz[16];
	bench_table_init(&t, "record|ipc spin|ipc hybrid|pipe|socket|spin / pipe|"
	                     "spin / socket|hybrid / pipe|hybrid / socket");
	for (int s = 0; s < NSIZE; s++) {
		char cs[NT][48], q[4][16];
		double x[NT];
		bool any = false;
		for (int tp = 0; tp < NT; tp++) {
			x[tp] = med_of(pl, sizes[s], (enum tp)tp);
			cell_str(cs[tp], sizeof cs[tp], x[tp], sizes[s]);
			any |= x[tp] >= 0;
		}
		if (!any)
			continue;
		ratio_str(q[0], sizeof q[0], x[T_SPIN], x[T_PIPE]);
		ratio_str(q[1], sizeof q[1], x[T_SPIN], x[T_SOCK]);
		ratio_str(q[2], sizeof q[2], x[T_HYBRID], x[T_PIPE]);
		ratio_str(q[3], sizeof q[3], x[T_HYBRID], x[T_SOCK]);
		bench_table_addf(&t, "%s|%s|%s|%s|%s|%s|%s|%s|%s",
		                 bench_fmt_size(sz, sizeof sz, sizes[s]), cs[0], cs[1], cs[2],
		                 cs[3], q[0], q[1], q[2], q[3]);
	}
	bench_table_print(&t, title);
}

static void make_cases(void)
{
	int n = 0;
	for (int p = PL_THREADS; p <= PL_PROCS; p++)
		for (int s = 0; s < NSIZE; s++)
			for (int tp = 0; tp < NT; tp++)
				cases[n++] = (struct tcase){ .pl = (enum place)p, .size = sizes[s],
				                             .tp = (enum tp)tp };
	for (int tp = 0; tp < NT; tp++)
		cases[n++] = (struct tcase){ .pl = PL_ONECPU, .size = 64, .tp = (enum tp)tp };
	for (int p = PL_THREADS; p <= PL_PROCS; p++)
		for (int s = 0; s < 2; s++)
			for (int tp = T_RING; tp <= T_SLOT; tp++)
				cases[n++] = (struct tcase){ .pl = (enum place)p,
				                             .size = sizes[s], .tp = (enum tp)tp };
}

/* Every round runs every selected case once; a run disturbed by other
 * processes is run again once. Returns how many were. */
static int run_rounds(struct tctx *c)
{
	int runs = bench_runs(), retried = 0;
	char sz[16];
	for (int r = 0; r < runs; r++) {
		for (int k = 0; k < NCASE; k++) {
			struct tcase *x = &cases[r % 2 ? NCASE - 1 - k : k];
			x->v[r] = -1;
			if (!bench_selected("%s %s %s", pl_name[x->pl],
			                    bench_fmt_size(sz, sizeof sz, x->size), tp_name[x->tp]))
				continue;
			for (int attempt = 0;; attempt++) {
				struct bench_load ld;
				bench_load_begin(&ld);
				x->v[r] = run_one(c, x->tp, x->size, x->pl);
				x->others[r] = bench_load_others(&ld);
				if (x->others[r] < BENCH_DISTURBED || attempt == 1 ||
				    !bench_retry_allowed())
					break;
				retried++;
				bench_wait_quiet();
			}
			x->sleeps[r] = c->sleeps[0] + c->sleeps[1];
			x->preempts[r] = c->preempts[0] + c->preempts[1];
		}
		printf("round %d of %d done\n", r + 1, runs);
		fflush(stdout);
	}
	return retried;
}

static void print_runs(int retried)
{
	int runs = bench_runs();
	char sz[16], a[24];
	printf("\nper run: records/s [voluntary/involuntary context switches of both "
	       "sides; CPUs used by other processes meanwhile]\n"
	       "%d runs disturbed by other processes (> %.2f CPU) were run again\n",
	       retried, BENCH_DISTURBED);
	for (int k = 0; k < NCASE; k++) {
		struct tcase *x = &cases[k];
		double tmp[BENCH_MAX_RUNS];
		memcpy(tmp, x->v, sizeof tmp);
		x->med = bench_median(tmp, runs);
		if (x->med < 0)
			continue;
		printf("%-9s %7s %-10s", pl_name[x->pl], bench_fmt_size(sz, sizeof sz, x->size),
		       tp_name[x->tp]);
		for (int r = 0; r < runs; r++)
			printf("  %9s/s [%ld/%ld; %.2f]", bench_fmt_rate(a, sizeof a, x->v[r]),
			       x->sleeps[r], x->preempts[r], x->others[r]);
		printf("\n");
	}
}

static void print_reference(void)
{
	struct bench_table g;
	char sz[16];
	bench_table_init(&g, "placement|record|index ring|slot ring|ipc spin / index ring|"
	                     "ipc spin / slot ring|slot ring / pipe");
	for (int p = PL_THREADS; p <= PL_PROCS; p++)
		for (int s = 0; s < 2; s++) {
			double ring = med_of((enum place)p, sizes[s], T_RING);
			double slot = med_of((enum place)p, sizes[s], T_SLOT);
			double spin = med_of((enum place)p, sizes[s], T_SPIN);
			char cs[2][48], q[3][16];
			if (ring < 0 && slot < 0)
				continue;
			cell_str(cs[0], sizeof cs[0], ring, sizes[s]);
			cell_str(cs[1], sizeof cs[1], slot, sizes[s]);
			ratio_str(q[0], sizeof q[0], spin, ring);
			ratio_str(q[1], sizeof q[1], spin, slot);
			ratio_str(q[2], sizeof q[2], slot, med_of((enum place)p, sizes[s], T_PIPE));
			bench_table_addf(&g, "%s|%s|%s|%s|%s|%s|%s", pl_name[p],
			                 bench_fmt_size(sz, sizeof sz, sizes[s]), cs[0], cs[1], q[0],
			                 q[1], q[2]);
		}
	bench_table_print(&g, "Reference: bare SPSC rings of 64-byte slots in shared memory, "
	                      "no allocator (what this machine allows)");
	if (g.nrow)
		printf("index ring: tail and head published on every record, each side "
		       "caching the other's;\nslot ring: no shared tail, a slot's first word "
		       "says it is full, head published every %d records.\n", SLOT_BATCH);
}

static void print_goals(void)
{
	struct bench_table g;
	bench_table_init(&g, "goal (64 B records, two processes)|measured|met");
	for (int tp = T_SPIN; tp <= T_HYBRID; tp++) {
		double v = med_of(PL_PROCS, 64, (enum tp)tp), pipe_v = med_of(PL_PROCS, 64, T_PIPE);
		if (v < 0 || pipe_v < 0)
			continue;
		if (v == 0 || pipe_v == 0) {
			bench_table_addf(&g, "%s >= 20 M records/s and >= 15x pipe|failed|**no**",
			                 tp_name[tp]);
			continue;
		}
		bench_table_addf(&g, "%s >= 20 M records/s|%.2f M/s|%s", tp_name[tp], v / 1e6,
		                 v >= 20e6 ? "yes" : "**no**");
		bench_table_addf(&g, "%s >= 15x pipe|%.1fx (pipe %.2f M/s)|%s", tp_name[tp],
		                 v / pipe_v, pipe_v / 1e6, v >= 15 * pipe_v ? "yes" : "**no**");
	}
	bench_table_print(&g, "Throughput goals (issue 3)");
}

int main(void)
{
	struct tctx *c = bench_shared_alloc(sizeof *c);

	make_cases();
	bench_print_header("Channel throughput: ipc channel vs pipe vs UNIX socket");
	printf("per record: allocate, fill, send, receive, read every byte, free "
	       "(pipe/socket: fill, write, read, read every byte);\n"
	       "GB/s = 10^9 payload bytes per second; channel capacity "
	       "min(1024, 16 MiB / size) records, at least 16;\n"
	       "buffer 64 MiB (256 MiB for 1 MiB records); one-cpu: both processes "
	       "pinned to CPU 0.\n"
	       "Each round runs every case once (alternating order), so a burst of "
	       "load from elsewhere hits one run of a case, not all of them;\n"
	       "a run during which other processes used > %.2f CPU is run once more, "
	       "after waiting for a quiet machine\n(IPC_BENCH_RETRIES, default 20, such "
	       "retries; IPC_BENCH_WAIT, default 20 s of waiting in all).\n\n",
	       BENCH_DISTURBED);
	int retried = run_rounds(c);
	bench_shared_free(c, sizeof *c);
	print_runs(retried);
	print_place(PL_THREADS, "Throughput between two threads (records/s, GB/s)");
	print_place(PL_PROCS, "Throughput between two processes (records/s, GB/s)");
	print_place(PL_ONECPU, "Throughput between two processes on one CPU (oversubscribed)");
	print_reference();
	print_goals();

	int failed = 0;
	for (int k = 0; k < NCASE; k++)
		for (int r = 0; r < bench_runs(); r++)
			failed += cases[k].v[r] == 0;
	if (failed)
		fprintf(stderr, "bench_channel: %d runs failed\n", failed);
	return failed != 0;
}

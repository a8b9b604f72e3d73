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
 */
#include "bench_ipc.h"
#include "bench_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum tp { T_SPIN, T_HYBRID, T_PIPE, T_SOCK, NT };
static const char *const tp_name[NT] = { "ipc spin", "ipc hybrid", "pipe", "socket" };

#define CHAN 1
#define NSIZE 5
static const size_t sizes[NSIZE] = { 8, 64, 4096, 65536, 1u << 20 };

struct tctx {
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

static void tp_role(void *arg, int side)
{
	struct tctx *c = arg;
	if (c->tp == T_PIPE || c->tp == T_SOCK) {
		if (side == 0)
			fd_producer(c);
		else
			fd_consumer(c);
	} else if (side == 0) {
		ipc_producer(c);
	} else {
		ipc_consumer(c);
	}
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

/* One measured run; records/s, or 0 on failure. */
static double run_one(struct tctx *c, enum tp tp, size_t size, bool procs)
{
	struct bench_fds fds = { .n = 0, .keep = { { -1 }, { -1 } } };
	memset(c, 0, sizeof *c);
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
	} else {
		bench_ipc_run_begin(&c->run, buffer_for(size), procs);
	}
	int rc = bench_run_pair(procs, tp_role, c, &fds, 10 + 4 * bench_seconds());
	if (tp != T_PIPE && tp != T_SOCK)
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

struct cell {
	double v[BENCH_MAX_RUNS];
	double med;
};

static void cell_str(char *out, size_t len, double rate, size_t size)
{
	char a[24];
	if (rate <= 0) {
		snprintf(out, len, "failed");
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

int main(void)
{
	static struct cell res[2][NSIZE][NT];
	int runs = bench_runs();
	struct tctx *c = bench_shared_alloc(sizeof *c);
	char sz[16];

	bench_print_header("Channel throughput: ipc channel vs pipe vs UNIX socket");
	printf("per record: allocate, fill, send, receive, read every byte, free "
	       "(pipe/socket: fill, write, read, read every byte);\n"
	       "GB/s = 10^9 payload bytes per second; channel capacity "
	       "min(1024, 16 MiB / size) records, at least 16;\n"
	       "buffer 64 MiB (256 MiB for 1 MiB records)\n\n");
	for (int p = 0; p < 2; p++) {
		bool procs = p == 1;
		for (int s = 0; s < NSIZE; s++) {
			for (int r = 0; r < runs; r++)
				for (int i = 0; i < NT; i++) {
					enum tp tp = (enum tp)((i + r) % NT);
					res[p][s][tp].v[r] = run_one(c, tp, sizes[s], procs);
				}
			printf("%-9s %7s:", procs ? "processes" : "threads",
			       bench_fmt_size(sz, sizeof sz, sizes[s]));
			for (int tp = 0; tp < NT; tp++) {
				double tmp[BENCH_MAX_RUNS];
				printf("  %s", tp_name[tp]);
				for (int r = 0; r < runs; r++) {
					char a[24];
					printf(" %s", bench_fmt_rate(a, sizeof a, res[p][s][tp].v[r]));
				}
				memcpy(tmp, res[p][s][tp].v, sizeof tmp);
				res[p][s][tp].med = bench_median(tmp, runs);
			}
			printf("  (records/s per run)\n");
			fflush(stdout);
		}
	}
	bench_shared_free(c, sizeof *c);

	for (int p = 0; p < 2; p++) {
		struct bench_table t;
		bench_table_init(&t, "record|ipc spin|ipc hybrid|pipe|socket|spin / pipe|"
		                     "spin / socket|hybrid / pipe|hybrid / socket");
		for (int s = 0; s < NSIZE; s++) {
			char cs[NT][48], q[4][16];
			struct cell *x = res[p][s];
			for (int tp = 0; tp < NT; tp++)
				cell_str(cs[tp], sizeof cs[tp], x[tp].med, sizes[s]);
			ratio_str(q[0], sizeof q[0], x[T_SPIN].med, x[T_PIPE].med);
			ratio_str(q[1], sizeof q[1], x[T_SPIN].med, x[T_SOCK].med);
			ratio_str(q[2], sizeof q[2], x[T_HYBRID].med, x[T_PIPE].med);
			ratio_str(q[3], sizeof q[3], x[T_HYBRID].med, x[T_SOCK].med);
			bench_table_addf(&t, "%s|%s|%s|%s|%s|%s|%s|%s|%s",
			                 bench_fmt_size(sz, sizeof sz, sizes[s]), cs[0], cs[1],
			                 cs[2], cs[3], q[0], q[1], q[2], q[3]);
		}
		bench_table_print(&t, p ? "Throughput between two processes (records/s, GB/s)"
		                        : "Throughput between two threads (records/s, GB/s)");
	}

	struct bench_table g;
	bench_table_init(&g, "goal (64 B records, two processes)|measured|met");
	for (int tp = T_SPIN; tp <= T_HYBRID; tp++) {
		struct cell *x = res[1][1];
		double v = x[tp].med, pipe_v = x[T_PIPE].med;
		if (v <= 0 || pipe_v <= 0) {
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
	return 0;
}

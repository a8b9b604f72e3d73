/*
 * Helpers shared by the benchmarks: clocks, medians, run sizing, record
 * fill/read, a two-sided runner (two threads or two forked processes), fd
 * I/O for the pipe and socket baselines, and Markdown tables.
 *
 * Every benchmark sizes its loops by time, not by count: each case runs for
 * bench_seconds() (env IPC_BENCH_SECONDS, default 0.3) after a short warm-up,
 * bench_runs() times (env IPC_BENCH_RUNS, default 3), and reports medians.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_RUNS 15

/* CLOCK_MONOTONIC in seconds (shared by every process of the machine). */
double bench_now(void);
/* CPU time of the calling thread, seconds. */
double bench_thread_cpu(void);
/* Seconds per measured run, warm-up seconds, number of runs. */
double bench_seconds(void);
double bench_warmup(void);
int bench_runs(void);
/* false when env IPC_BENCH_ONLY holds a shell pattern that the case label
 * (printf-style) does not match. */
bool bench_selected(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Median of n values (n >= 1); v is reordered. */
double bench_median(double *v, int n);

/* "Intel ... | 2 CPUs | Linux 6.1" on one line, for titles. */
const char *bench_machine(void);
/* Print the machine block unless run-bench.sh already did. */
void bench_print_header(const char *title);

/* Write a record: seq in its first min(n, 8) bytes, a pattern elsewhere. */
void bench_fill(void *p, size_t n, uint64_t seq);
/* Read every byte of a record (a checksum, added to *sink); returns false
 * when its first bytes do not hold seq (modulo 2^(8n) for n < 8) or its
 * last byte lost the pattern. */
bool bench_read(const void *p, size_t n, uint64_t seq, uint64_t *sink);
/* Keep p (and what it points to) alive for the optimiser. */
static inline void bench_escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

/* Pin the calling thread to one CPU (cpu < 0: leave it). */
void bench_pin(int cpu);
/* Context switches of the calling thread so far: voluntary (it slept) and
 * involuntary (it was preempted). */
void bench_csw(long *vol, long *invol);

/* How much CPU other processes of the machine used while a run went on:
 * /proc/stat's busy time minus this process's (and its waited-for
 * children's) CPU time, in CPUs (0.5 = half a CPU on average). */
struct bench_load {
	double wall, busy, self;
};
void bench_load_begin(struct bench_load *l);
double bench_load_others(const struct bench_load *l);
/* A run disturbed by more than this much CPU of others is run again once,
 * while the retry budget (IPC_BENCH_RETRIES, default 20) lasts, after
 * waiting for the machine to calm down. */
#define BENCH_DISTURBED 0.25
bool bench_retry_allowed(void);
/* Sleep (no CPU) until other processes used < 0.1 CPU over 100 ms, or the
 * wait budget (IPC_BENCH_WAIT seconds per binary, default 20) is spent. */
void bench_wait_quiet(void);

/* A two-party start line in (possibly shared) memory. */
struct bench_barrier {
	_Atomic uint32_t arrived;
};
void bench_barrier_wait(struct bench_barrier *bar, uint32_t parties);

/* Anonymous memory shared with forked children (zeroed), and its release. */
void *bench_shared_alloc(size_t n);
void bench_shared_free(void *p, size_t n);

/*
 * Run role(ctx, 0) and role(ctx, 1) at once: as two threads of this process
 * (procs false) or as two forked children (procs true; ctx must then come
 * from bench_shared_alloc, and results travel back through it). fds lists
 * descriptors to close: in each child every one not in keep[side], and in the
 * parent all of them after forking (threads close their own). A child that
 * has not finished after timeout_s seconds is killed. Returns 0, or -1 when
 * a child failed or was killed.
 */
struct bench_fds {
	int fd[8];
	int n;
	int keep[2][4]; /* per side, -1 terminated when shorter */
};
int bench_run_pair(bool procs, void (*role)(void *ctx, int side), void *ctx,
                   const struct bench_fds *fds, double timeout_s);

/* Write or read exactly n bytes. read returns 1 on success, 0 on EOF at
 * the first byte, -1 on error or EOF in the middle. */
int bench_write_full(int fd, const void *p, size_t n);
int bench_read_full(int fd, void *p, size_t n);

/* Human units. */
const char *bench_fmt_rate(char *out, size_t len, double per_s);
const char *bench_fmt_size(char *out, size_t len, size_t bytes);
const char *bench_fmt_ns(char *out, size_t len, double ns);

/* A Markdown table printed with padded columns. */
#define BENCH_TAB_COLS 12
#define BENCH_TAB_ROWS 48
#define BENCH_TAB_CELL 64
struct bench_table {
	int ncol, nrow;
	char head[BENCH_TAB_COLS][BENCH_TAB_CELL];
	char cell[BENCH_TAB_ROWS][BENCH_TAB_COLS][BENCH_TAB_CELL];
};
/* heads: column titles separated by '|'. */
void bench_table_init(struct bench_table *t, const char *heads);
/* One row: printf-style, cells separated by '|'. */
void bench_table_addf(struct bench_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print under a "### title" heading; nothing when the table has no row. */
void bench_table_print(const struct bench_table *t, const char *title);

#endif /* BENCH_UTIL_H */

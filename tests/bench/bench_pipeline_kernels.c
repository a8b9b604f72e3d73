/*
 * Kernels of the pipeline benchmark (libbenchkernels.so): a source of
 * fixed-size records carrying a counter, a zero-copy pass-through, and a
 * sink that checks count and sum.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ipc/kernel.h>

int b_src(struct ipc_kernel *k, uint64_t n, uint64_t size);
int b_pass(struct ipc_kernel *k);
int b_sink(struct ipc_kernel *k);

IPC_KERNEL(b_src, "", "out", "u64, u64", "n records of size bytes");
IPC_KERNEL(b_pass, "in", "out", "", "forwards every record");
IPC_KERNEL(b_sink, "in", "", "", "prints count and sum");

int b_src(struct ipc_kernel *k, uint64_t n, uint64_t size)
{
	struct ipc_port *out = ipc_out(k, "out");
	if (size < sizeof(uint64_t))
		return 2;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t *r = ipc_alloc(out, size);
		if (!r)
			return 1;
		*r = i;
		if (ipc_send(out, r))
			return 1;
	}
	return 0;
}

int b_pass(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	void *r;
	size_t n;
	int rc;
	while ((rc = ipc_recv(in, &r, &n)) == 0)
		if (ipc_send(out, r))
			return 1;
	return rc == IPC_TX_EOF ? 0 : 1;
}

int b_sink(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	int rc;
	uint64_t count = 0, sum = 0;
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		count++;
		sum += *(uint64_t *)r;
		ipc_release(in, r);
	}
	printf("count=%" PRIu64 " sum=%" PRIu64 "\n", count, sum);
	fflush(stdout);
	return rc == IPC_TX_EOF ? 0 : 1;
}

/* ---- bench_items: three i64(i64) functions, and trickle latency ---------- */

#include <time.h>

int64_t b_inc(int64_t x);
int64_t b_dbl(int64_t x);
int64_t b_mix(int64_t x);
int b_trickle(struct ipc_kernel *k, uint64_t n, uint64_t period_us);
int b_latency(struct ipc_kernel *k);

int64_t b_inc(int64_t x)
{
	return x + 1;
}

int64_t b_dbl(int64_t x)
{
	return x * 2;
}

int64_t b_mix(int64_t x)
{
	return x ^ 0x5555;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

IPC_KERNEL(b_trickle, "", "out", "u64, u64",
           "n items, one every period_us: each the time it was emitted (ns)");
IPC_KERNEL(b_latency, "in", "", "",
           "prints p50 and p99 of now minus each item (ns)");

int b_trickle(struct ipc_kernel *k, uint64_t n, uint64_t period_us)
{
	struct ipc_port *out = ipc_out(k, "out");
	uint64_t next = mono_ns();
	for (uint64_t i = 0; i < n && !ipc_stopping(k); i++) {
		next += period_us * 1000;
		uint64_t t;
		while ((t = mono_ns()) < next) {
			uint64_t d = next - t;
			struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
			nanosleep(&ts, NULL);
		}
		t = mono_ns();
		if (ipc_emit(out, &t, sizeof t))
			return 1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int b_latency(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	uint64_t *lat = NULL;
	size_t n = 0, cap = 0;
	const void *item;
	size_t size;
	int rc;
	while ((rc = ipc_next(in, &item, &size)) == 0) {
		uint64_t t0, now = mono_ns();
		if (size != sizeof t0)
			return 1;
		memcpy(&t0, item, sizeof t0);
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint64_t *p = realloc(lat, cap * sizeof *p);
			if (!p)
				return 1;
			lat = p;
		}
		lat[n++] = now - t0;
	}
	if (n == 0) {
		free(lat);
		return 1;
	}
	qsort(lat, n, sizeof *lat, cmp_u64);
	printf("latency items=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n,
	       (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3,
	       (double)lat[n - 1] / 1e3);
	fflush(stdout);
	free(lat);
	return rc == IPC_TX_EOF ? 0 : 1;
}

/* ---- bench_items: 8-byte items one at a time, and summed ---------------- */

int b_seq_each(struct ipc_kernel *k, uint64_t n);
int b_sum_each(struct ipc_kernel *k);
int b_sum_many(struct ipc_kernel *k);

IPC_KERNEL(b_seq_each, "", "out", "u64",
           "the 8-byte integers 0..n-1, an ipc_emit call each");
IPC_KERNEL(b_sum_each, "in", "", "",
           "sums 8-byte items, an ipc_next call each; prints items and sum");
IPC_KERNEL(b_sum_many, "in", "", "",
           "sums 8-byte items a run at a time (ipc_next_many); prints items and sum");

int b_seq_each(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n; i++)
		if (ipc_emit(out, &i, sizeof i))
			return 1;
	return 0;
}

static int sum_done(int rc, uint64_t count, uint64_t sum)
{
	printf("sum: items=%" PRIu64 " sum=%" PRIu64 "\n", count, sum);
	fflush(stdout);
	return rc == IPC_TX_EOF ? 0 : 1;
}

int b_sum_each(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	const void *item;
	size_t n;
	int rc;
	uint64_t count = 0, sum = 0, v;
	while ((rc = ipc_next(in, &item, &n)) == 0) {
		if (n != sizeof v)
			return 1;
		memcpy(&v, item, sizeof v);
		count++;
		sum += v;
	}
	return sum_done(rc, count, sum);
}

int b_sum_many(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	const void *items;
	size_t w, m;
	int rc;
	uint64_t count = 0, sum = 0;
	while ((rc = ipc_next_many(in, &items, &w, &m)) == 0) {
		if (w != sizeof(uint64_t))
			return 1;
		const uint64_t *v = items; /* 8-byte aligned: ipc_next's promise */
		for (size_t i = 0; i < m; i++)
			sum += v[i];
		count += m;
	}
	return sum_done(rc, count, sum);
}

/*
 * Kernels for the replica tests (t_ipcrun_replicas.sh), in
 * libtestkernels.so beside testkernels.c.
 *
 * Delays are "random" per item (a hash of its value), so that replicas
 * finish items out of order: most items take about 2 us, one in 32 takes
 * about 2 ms, 1000 times longer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipc/kernel.h>

int64_t f_jitter(int64_t x);
int64_t f_busy(int64_t x);
int t_jitter_pass(struct ipc_kernel *k);
int t_die_at(struct ipc_kernel *k, int64_t at);
int t_hold(struct ipc_kernel *k);
int t_tail_pass(struct ipc_kernel *k);

IPC_KERNEL(t_jitter_pass, "in", "out", "",
           "i64 records after a random delay: drops multiples of 5, sends "
           "x + 1000000000 first for multiples of 7");
IPC_KERNEL(t_tail_pass, "in", "out", "",
           "forwards every record; at the end sends -(records it forwarded) as i64");
IPC_KERNEL(t_hold, "in", "out", "",
           "holds every i64 record back until its input ends, then sends them");
IPC_KERNEL(t_die_at, "in", "out", "i64",
           "forwards i64 records; the process dies of SIGKILL at value `at`");

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	while (now_ns() < end)
		;
}

static void jitter(int64_t x)
{
	if (mix((uint64_t)x) % 32 == 0) {
		struct timespec ts = {0, 2000000};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	} else {
		spin_ns(2000);
	}
}

/* x squared, after a random delay. */
int64_t f_jitter(int64_t x)
{
	jitter(x);
	return x * x;
}

/* About 3 us of arithmetic (no clock), then a value depending on all of
 * it: the CPU-bound kernel of the replica benchmark. */
int64_t f_busy(int64_t x)
{
	uint64_t h = (uint64_t)x;
	for (int i = 0; i < 600; i++)
		h = mix(h);
	return (int64_t)(h >> 1);
}

int t_jitter_pass(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	const void *r;
	size_t n;
	int rc;
	while ((rc = ipc_next(in, &r, &n)) == 0) {
		int64_t x;
		if (n != sizeof x) {
			fprintf(stderr, "%s: an item of %zu bytes\n",
			        ipc_kernel_name(k), n);
			return 1;
		}
		memcpy(&x, r, sizeof x);
		jitter(x);
		if (x % 7 == 0) {
			int64_t c = x + 1000000000;
			if (ipc_emit(out, &c, sizeof c))
				return 0;
		}
		if (x % 5 != 0 && ipc_emit(out, &x, sizeof x))
			return 0;
	}
	return rc == IPC_TX_EOF ? 0 : 1;
}

int t_die_at(struct ipc_kernel *k, int64_t at)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	const void *r;
	size_t n;
	int rc;
	while ((rc = ipc_next(in, &r, &n)) == 0) {
		int64_t x = 0;
		if (n == sizeof x)
			memcpy(&x, r, sizeof x);
		if (x == at)
			raise(SIGKILL); /* SIGKILL: the process dies, no handler runs */
		if (ipc_emit(out, r, n))
			return 0;
	}
	return rc == IPC_TX_EOF ? 0 : 1;
}

int t_hold(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	int64_t *v = NULL;
	size_t nv = 0, cap = 0;
	const void *r;
	size_t n;
	int rc;
	while ((rc = ipc_next(in, &r, &n)) == 0) {
		if (nv == cap) {
			cap = cap ? 2 * cap : 1024;
			int64_t *nvp = realloc(v, cap * sizeof *v);
			if (!nvp) {
				free(v);
				return 1;
			}
			v = nvp;
		}
		v[nv] = 0;
		memcpy(&v[nv++], r, n < sizeof *v ? n : sizeof *v);
	}
	for (size_t i = 0; rc == IPC_TX_EOF && i < nv; i++)
		if (ipc_emit(out, &v[i], sizeof v[i]))
			break;
	free(v);
	return rc == IPC_TX_EOF ? 0 : 1;
}

int t_tail_pass(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	int64_t count = 0;
	const void *r;
	size_t n;
	int rc;
	while ((rc = ipc_next(in, &r, &n)) == 0) {
		if (ipc_emit(out, r, n))
			return 0;
		count++;
	}
	if (rc != IPC_TX_EOF)
		return 1;
	int64_t m = -count;
	ipc_emit(out, &m, sizeof m);
	return 0;
}

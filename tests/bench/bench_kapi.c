/*
 * The kernel layer's own cost: 64-byte records from one thread to another
 * through the raw library (ipc_record_alloc / send / recv / free) and
 * through the kernel API (ipc_alloc / ipc_send / ipc_recv / ipc_release, on
 * kernels built as ipcrun builds them), in the same run, interleaved, each
 * ROUNDS times; medians and their ratio (goal: kernel API >= 0.8x raw).
 *
 *     bench_kapi [records [rounds]]     default 4000000 5
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipc/buffer.h>
#include <ipc/kernel.h>

#include "kernel_impl.h"

#define SIZE 64

static uint64_t g_n;
static struct ipc_buffer *g_b;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct side {
	uint64_t id;
	bool kapi;
	uint64_t sum;
	int rc;
};

static void kernel_of(struct ipc_kernel *k, struct ipc_port *p, struct ipc_tls *t,
                      uint64_t id, bool out)
{
	memset(k, 0, sizeof *k);
	memset(p, 0, sizeof *p);
	k->name = out ? "src" : "sink";
	k->tls = t;
	k->port = p;
	k->nin = !out;
	k->nout = out;
	*p = (struct ipc_port){.k = k, .name = out ? "out" : "in", .id = id,
	                       .out = out, .capacity = 1024};
}

static void *producer(void *arg)
{
	struct side *s = arg;
	struct ipc_tls *t = ipc_tls_open(g_b, 1);
	struct ipc_kernel k;
	struct ipc_port p;
	ipc_channel_add(t, s->id, IPC_PRODUCER);
	kernel_of(&k, &p, t, s->id, true);
	for (uint64_t i = 0; i < g_n; i++) {
		if (s->kapi) {
			uint64_t *r = ipc_alloc(&p, SIZE);
			if (!r || (*r = i, ipc_send(&p, r)))
				s->rc = 1;
		} else {
			void *r = ipc_record_alloc_wait(t, SIZE, s->id, -1);
			if (!r) {
				s->rc = 1;
				break;
			}
			*(uint64_t *)r = i;
			if (ipc_record_send_wait(t, s->id, &r, -1))
				s->rc = 1;
		}
	}
	ipc__kernel_finish(&k);
	ipc_channel_close(t, s->id);
	ipc_tls_close(t);
	return NULL;
}

static void *consumer(void *arg)
{
	struct side *s = arg;
	struct ipc_tls *t = ipc_tls_open(g_b, 2);
	struct ipc_kernel k;
	struct ipc_port p;
	ipc_channel_add(t, s->id, IPC_CONSUMER);
	kernel_of(&k, &p, t, s->id, false);
	for (;;) {
		void *r;
		size_t n;
		int rc = s->kapi ? ipc_recv(&p, &r, &n) : ipc_record_recv_wait(t, s->id, &r, -1);
		if (rc)
			break;
		s->sum += *(uint64_t *)r;
		if (s->kapi)
			ipc_release(&p, r);
		else
			ipc_record_free(t, r);
	}
	ipc__kernel_finish(&k);
	ipc_channel_close(t, s->id);
	ipc_tls_close(t);
	return NULL;
}

static double one(bool kapi, uint64_t id)
{
	struct side ps = {.id = id, .kapi = kapi}, cs = {.id = id, .kapi = kapi};
	pthread_t a, b;
	double t0 = now();
	pthread_create(&b, NULL, consumer, &cs);
	pthread_create(&a, NULL, producer, &ps);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	double t = now() - t0;
	if (ps.rc || cs.sum != g_n * (g_n - 1) / 2) {
		fprintf(stderr, "bench_kapi: wrong sum\n");
		exit(1);
	}
	return (double)g_n / t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	g_n = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	char h[IPC_HANDLE_MAX + 1];
	ipc_buffer_gen_handle(h, sizeof h);
	struct ipc_buffer_opts o = {.size = 64u << 20};
	g_b = ipc_buffer_open(h, &o);
	if (!g_b)
		return 1;
	double raw[64], kapi[64];
	if (rounds > 64)
		rounds = 64;
	for (int r = 0; r < rounds; r++) {
		raw[r] = one(false, 10 + 2 * (uint64_t)r);
		kapi[r] = one(true, 11 + 2 * (uint64_t)r);
	}
	qsort(raw, (size_t)rounds, sizeof *raw, cmp);
	qsort(kapi, (size_t)rounds, sizeof *kapi, cmp);
	double mr = raw[rounds / 2], mk = kapi[rounds / 2];
	printf("### Kernel API vs the raw library (64 B records, two threads, median of %d)\n\n",
	       rounds);
	printf("| path | records/s | vs raw |\n|---|--:|--:|\n");
	printf("| raw: ipc_record_alloc/send/recv/free | %.1f M | 1.00x |\n", mr / 1e6);
	printf("| kernel API: ipc_alloc/send/recv/release | %.1f M | %.2fx |\n", mk / 1e6,
	       mk / mr);
	ipc_buffer_close(g_b, true);
	return 0;
}

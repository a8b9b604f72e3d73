/* Helpers shared by the stock kernels: sending, ends of streams, hashes. */
#include "kx.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void kx__errorf(struct ipc_kernel *k, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One write per message so lines of concurrent kernels do not mix. */
	fprintf(stderr, "%s: %s\n", ipc_kernel_name(k), msg);
	fflush(stderr);
}

void *kx__alloc_ex(struct ipc_kernel *k, struct ipc_port *out, size_t n,
                   bool source)
{
	const struct timespec ms = {0, 1000000};
	double give_up = 0;

	for (;;) {
		void *rec = ipc_alloc(out, n);

		if (rec)
			return rec;
		if (errno != ENOMEM) {
			kx__errorf(k, "cannot allocate a record of %zu bytes: %s",
			           n, strerror(errno));
			return NULL;
		}
		/* The buffer is full of records downstream has not released
		 * yet: wait for it to catch up. A source stops instead when
		 * the graph is stopping; others still drain. */
		if (source && ipc_stopping(k))
			return NULL;
		if (give_up == 0) {
			give_up = kx__now() + KX_ALLOC_PATIENCE_S;
		} else if (kx__now() > give_up) {
			kx__errorf(k, "the buffer stayed full for %d s: "
			              "raise [graph] buffer", KX_ALLOC_PATIENCE_S);
			return NULL;
		}
		nanosleep(&ms, NULL);
	}
}

enum kx_end kx__send(struct ipc_kernel *k, struct ipc_port *out, void *rec)
{
	int rc = ipc_send(out, rec);

	if (rc == 0)
		return KX_DONE;
	if (rc == -EPIPE)
		return KX_GONE;
	kx__errorf(k, "send on %s failed: %s", ipc_port_name(out),
	           ipc_strerror(rc));
	return KX_FAILED;
}

enum kx_end kx__emit_failed(struct ipc_kernel *k, struct ipc_port *out, int rc)
{
	if (rc == -EPIPE)
		return KX_GONE;
	kx__errorf(k, "emit on %s failed: %s", ipc_port_name(out),
	           ipc_strerror(rc));
	return KX_FAILED;
}

/* Why an allocation returned NULL, as an end. */
static enum kx_end alloc_failed(struct ipc_kernel *k, bool source)
{
	return source && ipc_stopping(k) ? KX_DONE : KX_FAILED;
}

enum kx_end kx__send_copy(struct ipc_kernel *k, struct ipc_port *out,
                          const void *src, size_t n, bool source)
{
	void *rec = kx__alloc_ex(k, out, n, source);

	if (!rec)
		return alloc_failed(k, source);
	memcpy(rec, src, n);
	return kx__send(k, out, rec);
}

enum kx_end kx__send_text(struct ipc_kernel *k, struct ipc_port *out,
                          const char *text, size_t len, bool source)
{
	char *rec = kx__alloc_ex(k, out, len + 1, source);

	if (!rec)
		return alloc_failed(k, source);
	memcpy(rec, text, len);
	rec[len] = '\0';
	return kx__send(k, out, rec);
}

enum kx_end kx__input_end(struct ipc_kernel *k, const char *port, int rc)
{
	if (rc == IPC_TX_EOF)
		return KX_DONE;
	if (rc == IPC_TX_ABORTED)
		return KX_ABORTED;
	kx__errorf(k, "receive on %s failed: %s", port, ipc_strerror(rc));
	return KX_FAILED;
}

int kx__end(struct ipc_kernel *k, enum kx_end e)
{
	switch (e) {
	case KX_DONE:
	case KX_GONE:
		return 0;
	case KX_ABORTED:
		kx__errorf(k, "an input was aborted (its producer failed or died); "
		              "stopping without a result");
		return 1;
	case KX_FAILED:
		break;
	}
	return 1;
}

struct ipc_port *kx__need_in(struct ipc_kernel *k, const char *port)
{
	struct ipc_port *p = ipc_in(k, port);

	if (!p)
		kx__errorf(k, "input port '%s' is not connected", port);
	return p;
}

struct ipc_port *kx__need_out(struct ipc_kernel *k, const char *port)
{
	struct ipc_port *p = ipc_out(k, port);

	if (!p)
		kx__errorf(k, "output port '%s' is not connected", port);
	return p;
}

size_t kx__text_len(const char *rec, size_t n)
{
	return n > 0 && rec[n - 1] == '\0' ? n - 1 : n;
}

uint64_t kx__fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = KX_FNV_OFFSET;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= KX_FNV_PRIME;
	}
	return h;
}

/* Table-driven CRC-32, reflected polynomial 0xEDB88320; the table is built
 * once, on first use, by whichever kernel thread gets there first. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int j = 0; j < 8; j++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t kx__crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = crc_table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

double kx__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

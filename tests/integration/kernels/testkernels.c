/*
 * Kernels for ipcrun's integration tests (libtestkernels.so): sources,
 * sinks and transforms with checkable output, actor kernels taking every
 * arg type, function kernels of several signatures, and kernels that fail,
 * crash or run until stopped.
 *
 * Numbers travel as records of exactly their size; text as NUL-terminated
 * records. Sinks print to stdout, one line per record or a summary.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ipc/kernel.h>

/* Prototypes: these are the library's API, looked up with dlsym. */
int t_seq(struct ipc_kernel *k, uint64_t n);
int t_seq_i64(struct ipc_kernel *k, int64_t from, uint64_t n);
int t_seq_i32(struct ipc_kernel *k, int32_t from, uint64_t n);
int t_seq_f64(struct ipc_kernel *k, double from, double step, uint64_t n);
int t_words(struct ipc_kernel *k, const char *words);
int t_pass(struct ipc_kernel *k);
int t_pass_pid(struct ipc_kernel *k, const char *pidfile);
int t_print(struct ipc_kernel *k, const char *type);
int t_count(struct ipc_kernel *k);
int t_args(struct ipc_kernel *k, int8_t a, int16_t b, int32_t c, int64_t d,
           uint8_t e, uint16_t f, uint32_t g, uint64_t h, float i, double j,
           const char *s);
int t_args_spec(struct ipc_kernel *k, int64_t a, double b, const char *s);
int t_fail(struct ipc_kernel *k, int32_t code);
int t_segv(struct ipc_kernel *k, uint64_t after, const char *stampfile);
int t_segv_once(struct ipc_kernel *k, uint64_t after, const char *markfile);
int t_fail_once(struct ipc_kernel *k, uint64_t after, const char *markfile);
int t_slow_source(struct ipc_kernel *k, uint64_t period_us, const char *pidfile);
int t_slow_sink(struct ipc_kernel *k, uint64_t delay_us);
int t_nonstop(struct ipc_kernel *k, uint64_t period_us);
int t_stopping(struct ipc_kernel *k);
int64_t f_square(int64_t x);
double f_half(double x);
char *f_upper(char *s);
const char *f_greet(const char *s);
uint32_t f_len(const char *s);
int64_t f_add(int64_t a, int64_t b);
double f_mix(int32_t a, double b);
bool f_even(int64_t x);
void f_show(int64_t x);

IPC_KERNEL(t_seq, "", "out", "u64", "0, 1, ... n-1 as u64 records");
IPC_KERNEL(t_pass, "in", "out", "", "forwards every record");
IPC_KERNEL(t_count, "in", "", "", "prints count and sum of u64 records");
IPC_KERNEL(t_args_spec, "", "", "i64, f64, str", "prints its args");

static int send_copy(struct ipc_port *out, const void *src, size_t n)
{
	void *r = ipc_alloc(out, n);
	if (!r)
		return -errno;
	memcpy(r, src, n);
	return ipc_send(out, r);
}

/* Writes TEXT to PATH through PATH.tmp and a rename, so readers see the
 * whole file or none. Only ever a regular file: a path naming anything else
 * (a device such as /dev/null, a FIFO, a folder) is left alone, so a test
 * topology that names one cannot replace it. */
static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "testkernels: %s is not a regular file: not written\n", path);
		return;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

static int end_of(const char *name, int rc)
{
	if (rc == IPC_TX_EOF)
		return 0;
	fprintf(stderr, "%s: input ended with %d (%s)\n", name, rc,
	        rc == IPC_TX_ABORTED ? "aborted" : "error");
	return 1;
}

int t_seq(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n && !ipc_stopping(k); i++)
		if (send_copy(out, &i, sizeof i))
			return 0;
	return 0;
}

int t_seq_i64(struct ipc_kernel *k, int64_t from, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n; i++) {
		int64_t v = from + (int64_t)i;
		if (send_copy(out, &v, sizeof v))
			return 0;
	}
	return 0;
}

int t_seq_i32(struct ipc_kernel *k, int32_t from, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n; i++) {
		int32_t v = from + (int32_t)i;
		if (send_copy(out, &v, sizeof v))
			return 0;
	}
	return 0;
}

int t_seq_f64(struct ipc_kernel *k, double from, double step, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n; i++) {
		double v = from + step * (double)i;
		if (send_copy(out, &v, sizeof v))
			return 0;
	}
	return 0;
}

int t_words(struct ipc_kernel *k, const char *words)
{
	struct ipc_port *out = ipc_out(k, "out");
	const char *p = words;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		char *r = ipc_alloc(out, n + 1);
		if (!r)
			return 1;
		memcpy(r, p, n);
		r[n] = 0;
		if (ipc_send(out, r))
			return 0;
		p += n;
	}
	return 0;
}

int t_pass(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	void *r;
	size_t n;
	int rc;
	while ((rc = ipc_recv(in, &r, &n)) == 0)
		if (ipc_send(out, r))
			return 0;
	return end_of(ipc_kernel_name(k), rc);
}

int t_pass_pid(struct ipc_kernel *k, const char *pidfile)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	void *r;
	size_t n;
	int rc;
	bool told = false;
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		if (ipc_send(out, r))
			return 0;
		if (!told) {
			char buf[32];
			snprintf(buf, sizeof buf, "%d\n", (int)getpid());
			write_file(pidfile, buf);
			told = true;
		}
	}
	return end_of(ipc_kernel_name(k), rc);
}

/* Print every record of "in" as `type` (i64 i32 u64 u32 f64 str). */
int t_print(struct ipc_kernel *k, const char *type)
{
	struct ipc_port *in = ipc_in(k, "in");
	const void *r; /* items: what function kernels emit, many to a record */
	size_t n;
	int rc;
	while ((rc = ipc_next(in, &r, &n)) == 0) {
		if (!strcmp(type, "i64") && n == 8)
			printf("%" PRId64 "\n", *(const int64_t *)r);
		else if (!strcmp(type, "u64") && n == 8)
			printf("%" PRIu64 "\n", *(const uint64_t *)r);
		else if (!strcmp(type, "i32") && n == 4)
			printf("%" PRId32 "\n", *(const int32_t *)r);
		else if (!strcmp(type, "u32") && n == 4)
			printf("%" PRIu32 "\n", *(const uint32_t *)r);
		else if (!strcmp(type, "f64") && n == 8)
			printf("%g\n", *(const double *)r);
		else if (!strcmp(type, "str") && n > 0 && ((const char *)r)[n - 1] == 0)
			printf("%s\n", (const char *)r);
		else
			printf("? %zu bytes\n", n);
	}
	fflush(stdout);
	return end_of(ipc_kernel_name(k), rc);
}

int t_count(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	int rc;
	uint64_t count = 0, sum = 0;
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		count++;
		if (n == 8)
			sum += *(uint64_t *)r;
		ipc_release(in, r);
	}
	printf("count=%" PRIu64 " sum=%" PRIu64 "\n", count, sum);
	fflush(stdout);
	return end_of(ipc_kernel_name(k), rc);
}

int t_args(struct ipc_kernel *k, int8_t a, int16_t b, int32_t c, int64_t d,
           uint8_t e, uint16_t f, uint32_t g, uint64_t h, float i, double j,
           const char *s)
{
	printf("%s: i8=%d i16=%d i32=%" PRId32 " i64=%" PRId64 " u8=%u u16=%u "
	       "u32=%" PRIu32 " u64=%" PRIu64 " f32=%.3f f64=%.6g str=[%s]\n",
	       ipc_kernel_name(k), a, b, c, d, e, f, g, h, (double)i, j, s);
	fflush(stdout);
	return 0;
}

int t_args_spec(struct ipc_kernel *k, int64_t a, double b, const char *s)
{
	printf("%s: %" PRId64 " %g [%s]\n", ipc_kernel_name(k), a, b, s);
	fflush(stdout);
	return 0;
}

/* Drain "in" if connected, then return code. */
int t_fail(struct ipc_kernel *k, int32_t code)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	while (in && ipc_recv(in, &r, &n) == 0)
		ipc_release(in, r);
	return code;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Forward `after` records, note the time in stampfile, then fault. */
int t_segv(struct ipc_kernel *k, uint64_t after, const char *stampfile)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	void *r;
	size_t n;
	for (uint64_t i = 0; i < after; i++) {
		if (ipc_recv(in, &r, &n))
			return 1;
		if (ipc_send(out, r))
			return 1;
	}
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRIu64 "\n", realtime_ns());
	write_file(stampfile, buf);
	volatile uintptr_t bad = 16; /* not NULL: a real fault, not UBSan's */
	*(volatile int *)bad = 1;
	return 0;
}

/* The first time (markfile absent): create markfile, forward `after`
 * records, take one more and fault while holding it (a lost record). Every
 * later time: forward everything. For restart = on-failure. */
int t_segv_once(struct ipc_kernel *k, uint64_t after, const char *markfile)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	bool first = access(markfile, F_OK) != 0;
	void *r;
	size_t n;
	if (first)
		write_file(markfile, "crashed\n");
	for (uint64_t i = 0; !first || i < after; i++) {
		int rc = ipc_recv(in, &r, &n);
		if (rc == IPC_TX_EOF)
			return 0;
		if (rc)
			return 1;
		if (ipc_send(out, r))
			return 1;
	}
	if (ipc_recv(in, &r, &n))
		return 1;
	volatile uintptr_t bad = 16;
	*(volatile int *)bad = 1;
	return 0;
}

/* The first time (markfile absent): create markfile, forward `after`
 * records and return 1. Every later time: forward everything. For
 * restart = always. */
int t_fail_once(struct ipc_kernel *k, uint64_t after, const char *markfile)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	bool first = access(markfile, F_OK) != 0;
	void *r;
	size_t n;
	if (first)
		write_file(markfile, "failed\n");
	for (uint64_t i = 0; !first || i < after; i++) {
		int rc = ipc_recv(in, &r, &n);
		if (rc == IPC_TX_EOF)
			return 0;
		if (rc)
			return 2;
		if (ipc_send(out, r))
			return 2;
	}
	return 1;
}

/* A counter paced by period_us until ipc_stopping(); writes its pid to
 * pidfile once the first record is sent. */
int t_slow_source(struct ipc_kernel *k, uint64_t period_us, const char *pidfile)
{
	struct ipc_port *out = ipc_out(k, "out");
	uint64_t i;
	for (i = 0; !ipc_stopping(k); i++) {
		if (send_copy(out, &i, sizeof i))
			return 0;
		if (i == 0) {
			char buf[32];
			snprintf(buf, sizeof buf, "%d\n", (int)getpid());
			write_file(pidfile, buf);
		}
		if (period_us)
			usleep((useconds_t)period_us);
	}
	printf("sent %" PRIu64 " records\n", i);
	fflush(stdout);
	return 0;
}

/* A paced counter that ignores ipc_stopping(): it ends only when its
 * consumer is gone, and says how. */
int t_nonstop(struct ipc_kernel *k, uint64_t period_us)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0;; i++) {
		int rc = send_copy(out, &i, sizeof i);
		if (rc) {
			fprintf(stderr, "%s: send returned %d (%s)\n", ipc_kernel_name(k),
			        rc, strerror(-rc));
			return 0;
		}
		usleep((useconds_t)period_us);
	}
}

int t_slow_sink(struct ipc_kernel *k, uint64_t delay_us)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	int rc;
	uint64_t count = 0;
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		count++;
		ipc_release(in, r);
		usleep((useconds_t)delay_us);
	}
	printf("slow sink: %" PRIu64 " records\n", count);
	fflush(stdout);
	return end_of(ipc_kernel_name(k), rc);
}

/* No ports: returns once the graph is stopped. */
int t_stopping(struct ipc_kernel *k)
{
	while (!ipc_stopping(k))
		usleep(1000);
	return 0;
}

int64_t f_square(int64_t x)
{
	return x * x;
}

double f_half(double x)
{
	return x / 2;
}

char *f_upper(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

const char *f_greet(const char *s)
{
	static _Thread_local char buf[128];
	snprintf(buf, sizeof buf, "hello, %s", s);
	return buf;
}

uint32_t f_len(const char *s)
{
	return (uint32_t)strlen(s);
}

int64_t f_add(int64_t a, int64_t b)
{
	return a + b;
}

double f_mix(int32_t a, double b)
{
	return a * b;
}

bool f_even(int64_t x)
{
	return x % 2 == 0;
}

void f_show(int64_t x)
{
	printf("show %" PRId64 "\n", x);
}

/* Across hosts (t_hosts.sh): a sink that leaves after n records, so that
 * its producer on another host sees -EPIPE. */
int t_take(struct ipc_kernel *k, uint64_t n);
int t_take(struct ipc_kernel *k, uint64_t n)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t len;
	uint64_t count = 0;
	while (count < n && ipc_recv(in, &r, &len) == 0) {
		count++;
		ipc_release(in, r);
	}
	printf("took %" PRIu64 " records\n", count);
	fflush(stdout);
	return 0;
}

/* A source and a slow sink that keep their counts in a file (every 256
 * records and at the end), so that a test reads how far the source ran
 * ahead of the sink (t_hosts.sh: back-pressure across hosts). */
int t_seq_log(struct ipc_kernel *k, uint64_t n, const char *file);
int t_seq_log(struct ipc_kernel *k, uint64_t n, const char *file)
{
	struct ipc_port *out = ipc_out(k, "out");
	char text[32];
	uint64_t i;
	for (i = 0; i < n && !ipc_stopping(k); i++) {
		if (send_copy(out, &i, sizeof i))
			break;
		if (i % 256 == 0) {
			snprintf(text, sizeof text, "%" PRIu64 "\n", i + 1);
			write_file(file, text);
		}
	}
	snprintf(text, sizeof text, "%" PRIu64 "\n", i);
	write_file(file, text);
	return 0;
}

int t_slow_sink_log(struct ipc_kernel *k, uint64_t delay_us, const char *file);
int t_slow_sink_log(struct ipc_kernel *k, uint64_t delay_us, const char *file)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	int rc;
	uint64_t count = 0;
	char text[32];
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		count++;
		ipc_release(in, r);
		if (count % 256 == 0) {
			snprintf(text, sizeof text, "%" PRIu64 "\n", count);
			write_file(file, text);
		}
		usleep((useconds_t)delay_us);
	}
	printf("slow sink: %" PRIu64 " records\n", count);
	fflush(stdout);
	return end_of(ipc_kernel_name(k), rc);
}

/* Latency across hosts (bench_hosts.sh): n records holding their send time
 * (CLOCK_MONOTONIC, meaningful when both "hosts" share one machine), one
 * every period_us, so that each crosses an idle bridge; the sink prints the
 * median and the worst one-way time. */
static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int t_stamp_source(struct ipc_kernel *k, uint64_t period_us, uint64_t n);
int t_stamp_source(struct ipc_kernel *k, uint64_t period_us, uint64_t n)
{
	struct ipc_port *out = ipc_out(k, "out");
	for (uint64_t i = 0; i < n && !ipc_stopping(k); i++) {
		usleep((useconds_t)period_us);
		uint64_t t = mono_ns();
		if (send_copy(out, &t, sizeof t))
			break;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int t_latency_sink(struct ipc_kernel *k);
int t_latency_sink(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	uint64_t lat[4096];
	size_t n = 0, len;
	void *r;
	int rc;
	while ((rc = ipc_recv(in, &r, &len)) == 0) {
		uint64_t now = mono_ns(), t;
		if (len == sizeof t && n < sizeof lat / sizeof lat[0]) {
			memcpy(&t, r, sizeof t);
			lat[n++] = now - t;
		}
		ipc_release(in, r);
	}
	if (n) {
		qsort(lat, n, sizeof lat[0], cmp_u64);
		printf("latency median %.1f us worst %.1f us over %zu records\n",
		       (double)lat[n / 2] / 1e3, (double)lat[n - 1] / 1e3, n);
	}
	fflush(stdout);
	return end_of(ipc_kernel_name(k), rc);
}

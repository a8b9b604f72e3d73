/* Shared benchmark helpers; see bench_util.h. */
#include "bench_util.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double env_double(const char *name, double def, double lo, double hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	double v = strtod(s, &end);
	if (*end || v < lo || v > hi)
		return def;
	return v;
}

double bench_seconds(void)
{
	return env_double("IPC_BENCH_SECONDS", 0.3, 0.01, 30.0);
}

double bench_warmup(void)
{
	double s = bench_seconds() / 6;
	return s < 0.05 ? s : 0.05;
}

int bench_runs(void)
{
	return (int)env_double("IPC_BENCH_RUNS", 3, 1, BENCH_MAX_RUNS);
}

bool bench_selected(const char *fmt, ...)
{
	const char *pat = getenv("IPC_BENCH_ONLY");
	char label[128];
	va_list ap;
	if (!pat || !*pat)
		return true;
	va_start(ap, fmt);
	vsnprintf(label, sizeof label, fmt, ap);
	va_end(ap);
	return fnmatch(pat, label, 0) == 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char *bench_machine(void)
{
	static char out[256];
	char model[128] = "unknown CPU", line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "model name", 10) == 0) {
			const char *c = strchr(line, ':');
			if (c) {
				c += 1 + (c[1] == ' ');
				snprintf(model, sizeof model, "%.*s",
				         (int)strcspn(c, "\n"), c);
			}
			break;
		}
	}
	if (f)
		fclose(f);
	struct utsname u;
	if (uname(&u) != 0)
		strcpy(u.release, "?");
	snprintf(out, sizeof out, "%s | %ld CPUs | Linux %s", model,
	         sysconf(_SC_NPROCESSORS_ONLN), u.release);
	return out;
}

void bench_print_header(const char *title)
{
	printf("## %s\n\n", title);
	if (!getenv("IPC_BENCH_MACHINE_SHOWN"))
		printf("machine: %s\n", bench_machine());
	printf("method: %d runs of %.2f s each (after %.2f s warm-up), medians\n\n",
	       bench_runs(), bench_seconds(), bench_warmup());
	fflush(stdout);
}

void bench_fill(void *p, size_t n, uint64_t seq)
{
	unsigned char *c = p;
	if (n > 8)
		memset(c + 8, 0xA5, n - 8);
	memcpy(c, &seq, n < 8 ? n : 8); /* little-endian: low bytes first */
}

bool bench_read(const void *p, size_t n, uint64_t seq, uint64_t *sink)
{
	const unsigned char *c = p;
	uint64_t sum = 0, first = 0;
	size_t words = n / 8, i;
	for (i = 0; i < words; i++) {
		uint64_t w;
		memcpy(&w, c + 8 * i, 8);
		sum += w;
	}
	for (i = words * 8; i < n; i++)
		sum += c[i];
	*sink += sum;
	memcpy(&first, c, n < 8 ? n : 8);
	if (n < 8)
		seq &= (UINT64_C(1) << (8 * n)) - 1;
	return first == seq && (n <= 8 || c[n - 1] == 0xA5);
}

void bench_pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		perror("bench: sched_setaffinity");
}

void bench_csw(long *vol, long *invol)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		memset(&ru, 0, sizeof ru);
	*vol = ru.ru_nvcsw;
	*invol = ru.ru_nivcsw;
}

static double proc_stat_busy(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return 0;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
	       (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
	                b.ru_stime.tv_sec) +
	       (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
	                b.ru_stime.tv_usec) * 1e-6;
}

void bench_load_begin(struct bench_load *l)
{
	l->wall = bench_now();
	l->busy = proc_stat_busy();
	l->self = self_cpu();
}

double bench_load_others(const struct bench_load *l)
{
	double wall = bench_now() - l->wall;
	double others = (proc_stat_busy() - l->busy) - (self_cpu() - l->self);
	return wall > 0 && others > 0 ? others / wall : 0;
}

bool bench_retry_allowed(void)
{
	static int left = -1;
	if (left < 0)
		left = (int)env_double("IPC_BENCH_RETRIES", 20, 0, 1000);
	return left > 0 ? (left--, true) : false;
}

void bench_wait_quiet(void)
{
	static double left = -1;
	const struct timespec tick = { 0, 100000000 };
	if (left < 0)
		left = env_double("IPC_BENCH_WAIT", 20, 0, 600);
	while (left > 0) {
		double busy = proc_stat_busy(), t0 = bench_now();
		nanosleep(&tick, NULL);
		double dt = bench_now() - t0;
		left -= dt;
		if ((proc_stat_busy() - busy) / dt < 0.1)
			return;
	}
}

void bench_barrier_wait(struct bench_barrier *bar, uint32_t parties)
{
	atomic_fetch_add_explicit(&bar->arrived, 1, memory_order_acq_rel);
	unsigned spins = 0;
	while (atomic_load_explicit(&bar->arrived, memory_order_acquire) < parties) {
		if (++spins % 64 == 0)
			sched_yield();
		else
			bench_cpu_relax();
	}
}

void *bench_shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	               -1, 0);
	if (p == MAP_FAILED) {
		perror("bench: mmap");
		exit(1);
	}
	return p;
}

void bench_shared_free(void *p, size_t n)
{
	munmap(p, n);
}

struct thread_arg {
	void (*role)(void *ctx, int side);
	void *ctx;
	int side;
};

static void *thread_main(void *arg)
{
	struct thread_arg *a = arg;
	a->role(a->ctx, a->side);
	return NULL;
}

static bool kept(const struct bench_fds *fds, int side, int fd)
{
	for (int i = 0; i < 4 && fds->keep[side][i] >= 0; i++)
		if (fds->keep[side][i] == fd)
			return true;
	return false;
}

static int run_threads(void (*role)(void *ctx, int side), void *ctx)
{
	pthread_t th[2];
	struct thread_arg a[2];
	for (int s = 0; s < 2; s++) {
		a[s] = (struct thread_arg){ role, ctx, s };
		if (pthread_create(&th[s], NULL, thread_main, &a[s]) != 0) {
			perror("bench: pthread_create");
			exit(1);
		}
	}
	for (int s = 0; s < 2; s++)
		pthread_join(th[s], NULL);
	return 0;
}

static int run_procs(void (*role)(void *ctx, int side), void *ctx,
                     const struct bench_fds *fds, double timeout_s)
{
	pid_t parent = getpid(), pid[2];
	int rc = 0;
	fflush(NULL);
	for (int s = 0; s < 2; s++) {
		pid[s] = fork();
		if (pid[s] < 0) {
			perror("bench: fork");
			exit(1);
		}
		if (pid[s] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(3);
			alarm((unsigned)timeout_s + 1);
			for (int i = 0; fds && i < fds->n; i++)
				if (!kept(fds, s, fds->fd[i]))
					close(fds->fd[i]);
			role(ctx, s);
			fflush(NULL);
			_exit(0);
		}
	}
	for (int i = 0; fds && i < fds->n; i++)
		close(fds->fd[i]);
	for (int s = 0; s < 2; s++) {
		int st;
		while (waitpid(pid[s], &st, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(st)) {
			fprintf(stderr, "bench: side %d killed by signal %d%s\n", s,
			        WTERMSIG(st),
			        WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
			rc = -1;
		} else if (WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench: side %d exited with %d\n", s,
			        WEXITSTATUS(st));
			rc = -1;
		}
	}
	return rc;
}

int bench_run_pair(bool procs, void (*role)(void *ctx, int side), void *ctx,
                   const struct bench_fds *fds, double timeout_s)
{
	return procs ? run_procs(role, ctx, fds, timeout_s) : run_threads(role, ctx);
}

int bench_write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int bench_read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

const char *bench_fmt_rate(char *out, size_t len, double v)
{
	if (v >= 1e9)
		snprintf(out, len, "%.2f G", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, len, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.1f k", v / 1e3);
	else
		snprintf(out, len, "%.0f", v);
	return out;
}

const char *bench_fmt_size(char *out, size_t len, size_t b)
{
	if (b >= (1u << 20) && b % (1u << 20) == 0)
		snprintf(out, len, "%zu MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(out, len, "%zu KiB", b >> 10);
	else
		snprintf(out, len, "%zu B", b);
	return out;
}

const char *bench_fmt_ns(char *out, size_t len, double ns)
{
	if (ns >= 1e6)
		snprintf(out, len, "%.2f ms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(out, len, "%.2f us", ns / 1e3);
	else
		snprintf(out, len, "%.0f ns", ns);
	return out;
}

static int split_cells(char (*dst)[BENCH_TAB_CELL], const char *src)
{
	int n = 0;
	for (;;) {
		size_t k = strcspn(src, "|");
		if (n < BENCH_TAB_COLS)
			snprintf(dst[n++], BENCH_TAB_CELL, "%.*s", (int)k, src);
		if (!src[k])
			return n;
		src += k + 1;
	}
}

void bench_table_init(struct bench_table *t, const char *heads)
{
	memset(t, 0, sizeof *t);
	t->ncol = split_cells(t->head, heads);
}

void bench_table_addf(struct bench_table *t, const char *fmt, ...)
{
	char line[BENCH_TAB_COLS * BENCH_TAB_CELL];
	va_list ap;
	if (t->nrow == BENCH_TAB_ROWS)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	split_cells(t->cell[t->nrow++], line);
}

void bench_table_print(const struct bench_table *t, const char *title)
{
	int w[BENCH_TAB_COLS];
	if (t->nrow == 0)
		return; /* every case of it was left out by IPC_BENCH_ONLY */
	for (int c = 0; c < t->ncol; c++) {
		w[c] = (int)strlen(t->head[c]);
		for (int r = 0; r < t->nrow; r++) {
			int l = (int)strlen(t->cell[r][c]);
			w[c] = l > w[c] ? l : w[c];
		}
		w[c] = w[c] < 3 ? 3 : w[c];
	}
	/* figures (a cell starting with a digit) align right, text left */
	bool left[BENCH_TAB_COLS];
	for (int c = 0; c < t->ncol; c++) {
		left[c] = true;
		for (int r = 0; c > 0 && r < t->nrow; r++)
			if (t->cell[r][c][0] >= '0' && t->cell[r][c][0] <= '9')
				left[c] = false;
	}
	printf("\n### %s\n\n|", title);
	for (int c = 0; c < t->ncol; c++)
		printf(left[c] ? " %-*s |" : " %*s |", w[c], t->head[c]);
	printf("\n|");
	for (int c = 0; c < t->ncol; c++) {
		putchar(left[c] ? ':' : ' ');
		for (int i = 0; i < w[c]; i++)
			putchar('-');
		printf("%s|", left[c] ? " " : ":");
	}
	printf("\n");
	for (int r = 0; r < t->nrow; r++) {
		printf("|");
		for (int c = 0; c < t->ncol; c++)
			printf(left[c] ? " %-*s |" : " %*s |", w[c], t->cell[r][c]);
		printf("\n");
	}
	printf("\n");
	fflush(stdout);
}

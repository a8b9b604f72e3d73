/*
 * Records per second through a 4-stage pipeline (source -> pass -> pass ->
 * sink), each stage its own process:
 *   ipcrun    kernels of libbenchkernels.so wired by ipcrun (zero-copy SPSC
 *             channels in one shared buffer), wait = block and capacity =
 *             8192: four busy processes on a small machine do best when a
 *             side that must wait sleeps at once;
 *   ipcrun-default  the same topology with the [graph] defaults (hybrid
 *             wait, capacity 1024), for reference;
 *   pipes     the same 4 stages as processes joined by pipes, one read() and
 *             one write() per record (message at a time, like the kernels);
 *   pipes-buf the same with stdio buffering (64 KiB): batching that a
 *             message-passing graph cannot assume, shown for reference.
 * Same record size (64 bytes by default), same count, same run; each case
 * ROUNDS times, interleaved, and the median reported. Every run checks the
 * sink's count and sum.
 *
 *   bench_pipeline [records [size [rounds]]]    default 2000000 64 3
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void full_write(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(1);
		c += w;
		n -= (size_t)w;
	}
}

static int full_read(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return got ? -1 : 0;
		got += (size_t)r;
	}
	return 1;
}

/* stage 0 source, 1-2 pass, 3 sink; in/out: fds (or -1) */
static void pipe_stage(int stage, int in, int out, uint64_t n, size_t size,
                       bool buffered, int result)
{
	char *rec = calloc(1, size);
	FILE *fi = NULL, *fo = NULL;
	if (buffered) {
		if (in >= 0) {
			fi = fdopen(in, "r");
			setvbuf(fi, NULL, _IOFBF, 1 << 16);
		}
		if (out >= 0) {
			fo = fdopen(out, "w");
			setvbuf(fo, NULL, _IOFBF, 1 << 16);
		}
	}
	uint64_t count = 0, sum = 0;
	if (stage == 0) {
		for (uint64_t i = 0; i < n; i++) {
			memcpy(rec, &i, sizeof i);
			if (fo)
				fwrite(rec, size, 1, fo);
			else
				full_write(out, rec, size);
		}
	} else {
		for (;;) {
			int r = fi ? (int)fread(rec, size, 1, fi) : full_read(in, rec, size);
			if (r <= 0)
				break;
			if (stage == 3) {
				uint64_t v;
				memcpy(&v, rec, sizeof v);
				count++;
				sum += v;
			} else if (fo) {
				fwrite(rec, size, 1, fo);
			} else {
				full_write(out, rec, size);
			}
		}
	}
	if (fo)
		fclose(fo);
	if (stage == 3) {
		char line[96];
		int len = snprintf(line, sizeof line, "count=%" PRIu64 " sum=%" PRIu64 "\n",
		                   count, sum);
		full_write(result, line, (size_t)len);
	}
	_exit(0);
}

/* Run one case; returns seconds, or -1. The sink's line goes to out. */
static double run_pipes(uint64_t n, size_t size, bool buffered, char *out,
                        size_t outlen)
{
	int res[2];
	if (pipe(res))
		return -1;
	int fds[3][2];
	for (int i = 0; i < 3; i++)
		if (pipe(fds[i]))
			return -1;
	double t0 = now();
	pid_t pid[4];
	for (int s = 0; s < 4; s++) {
		pid[s] = fork();
		if (pid[s] == 0) {
			int in = s > 0 ? fds[s - 1][0] : -1;
			int o = s < 3 ? fds[s][1] : -1;
			for (int i = 0; i < 3; i++) {
				if (fds[i][0] != in)
					close(fds[i][0]);
				if (fds[i][1] != o)
					close(fds[i][1]);
			}
			close(res[0]);
			pipe_stage(s, in, o, n, size, buffered, res[1]);
		}
	}
	for (int i = 0; i < 3; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	close(res[1]);
	for (int s = 0; s < 4; s++)
		waitpid(pid[s], NULL, 0);
	double t = now() - t0;
	ssize_t r = read(res[0], out, outlen - 1);
	out[r > 0 ? r : 0] = 0;
	close(res[0]);
	return t;
}

static double run_ipcrun(const char *ipcrun, const char *ini, bool tuned,
                         char *out, size_t outlen)
{
	int res[2];
	if (pipe(res))
		return -1;
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(res[1], 1);
		close(res[0]);
		close(res[1]);
		if (tuned)
			execl(ipcrun, ipcrun, "--no-progress", "-D", "wait=block", "-D",
			      "capacity=8192", ini, (char *)NULL);
		else
			execl(ipcrun, ipcrun, "--no-progress", ini, (char *)NULL);
		_exit(127);
	}
	close(res[1]);
	size_t got = 0;
	ssize_t r;
	while ((r = read(res[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(res[0]);
	int st;
	waitpid(pid, &st, 0);
	double t = now() - t0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -1;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	int rounds = argc > 3 ? atoi(argv[3]) : 3;
	if (n == 0 || size < 8 || rounds < 1 || rounds > 15) {
		fprintf(stderr, "usage: bench_pipeline [records [size>=8 [rounds]]]\n");
		return 2;
	}
	char dir[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", dir, sizeof dir - 1);
	if (l <= 0)
		return 1;
	dir[l] = 0;
	*strrchr(dir, '/') = 0;
	char ipcrun[PATH_MAX + 32], ini[] = "/tmp/bench_pipeline.XXXXXX";
	snprintf(ipcrun, sizeof ipcrun, "%s/../bin/ipcrun", dir);
	int fd = mkstemp(ini);
	if (fd < 0)
		return 1;
	FILE *f = fdopen(fd, "w");
	fprintf(f, "[graph]\nname = bench_pipeline\nbuffer = 64M\n"
	        "[process:p0]\n[process:p1]\n[process:p2]\n[process:p3]\n");
	const char *fn[4] = {"b_src", "b_pass", "b_pass", "b_sink"};
	for (int s = 0; s < 4; s++) {
		fprintf(f, "[kernel:s%d]\nlibrary = %s/libbenchkernels.so\nfunction = %s\n"
		        "process = p%d\n", s, dir, fn[s], s);
		if (s == 0)
			fprintf(f, "args = %" PRIu64 ", %zu\n", n, size);
	}
	fprintf(f, "[connections]\nconnect = s0.out -> s1.in\n"
	        "connect = s1.out -> s2.in\nconnect = s2.out -> s3.in\n");
	fclose(f);

	char want[96];
	snprintf(want, sizeof want, "count=%" PRIu64 " sum=%" PRIu64 "\n", n,
	         n * (n - 1) / 2);
	const char *names[4] = {"ipcrun", "ipcrun-default", "pipes", "pipes-buf"};
	double t[4][15];
	int bad = 0;
	for (int r = 0; r < rounds; r++)
		for (int c = 0; c < 4; c++) {
			char out[256];
			t[c][r] = c < 2 ? run_ipcrun(ipcrun, ini, c == 0, out, sizeof out)
			                : run_pipes(n, size, c == 3, out, sizeof out);
			if (t[c][r] < 0 || strcmp(out, want) != 0) {
				fprintf(stderr, "bench_pipeline: %s round %d: wrong result: %s",
				        names[c], r, out);
				bad = 1;
			}
		}
	unlink(ini);
	printf("pipeline of 4 processes, %" PRIu64 " records of %zu bytes, median of %d\n",
	       n, size, rounds);
	double med[4];
	for (int c = 0; c < 4; c++) {
		qsort(t[c], (size_t)rounds, sizeof(double), cmp_double);
		med[c] = t[c][rounds / 2];
		printf("  %-15s %8.3f s  %12.0f records/s\n", names[c], med[c],
		       (double)n / med[c]);
	}
	printf("  ipcrun vs pipes (record at a time): %.1fx (defaults: %.1fx); "
	       "vs buffered pipes: %.1fx\n", med[2] / med[0], med[2] / med[1],
	       med[3] / med[0]);
	return bad;
}

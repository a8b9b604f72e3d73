/*
 * The baselines of bench_items' 8-byte case: N 8-byte values from one
 * process to another through a pipe, the reader checking count and sum.
 * Prints "items=N seconds=S".
 *
 *     pipe_items N          stdio buffering: an fwrite / fread per value
 *                           (64 KiB buffers)
 *     pipe_items N bulk     arrays: write / read of 64 KiB at a time
 */
#include <errno.h>
#include <inttypes.h>
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

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	int fd[2];
	if (pipe(fd))
		return 1;
	bool bulk = argc > 2 && strcmp(argv[2], "bulk") == 0;
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0 && bulk) {
		close(fd[0]);
		static uint64_t a[8192];
		for (uint64_t i = 0; i < n;) {
			size_t m = n - i < 8192 ? (size_t)(n - i) : 8192;
			for (size_t j = 0; j < m; j++)
				a[j] = i + j;
			const char *p = (const char *)a;
			size_t left = m * sizeof a[0];
			while (left) {
				ssize_t w = write(fd[1], p, left);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					_exit(1);
				p += w;
				left -= (size_t)w;
			}
			i += m;
		}
		_exit(0);
	}
	if (pid == 0) {
		close(fd[0]);
		FILE *f = fdopen(fd[1], "w");
		static char buf[65536];
		setvbuf(f, buf, _IOFBF, sizeof buf);
		for (uint64_t i = 0; i < n; i++)
			if (fwrite(&i, sizeof i, 1, f) != 1)
				_exit(1);
		_exit(fclose(f) ? 1 : 0);
	}
	close(fd[1]);
	uint64_t v, count = 0, sum = 0;
	if (bulk) {
		static uint64_t a[8192];
		size_t have = 0; /* bytes in a */
		for (;;) {
			ssize_t r = read(fd[0], (char *)a + have, sizeof a - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			have += (size_t)r;
			size_t m = have / sizeof a[0];
			for (size_t j = 0; j < m; j++)
				sum += a[j];
			count += m;
			memmove(a, (char *)a + m * sizeof a[0], have - m * sizeof a[0]);
			have -= m * sizeof a[0];
		}
	} else {
		FILE *f = fdopen(fd[0], "r");
		static char buf[65536];
		setvbuf(f, buf, _IOFBF, sizeof buf);
		while (fread(&v, sizeof v, 1, f) == 1) {
			count++;
			sum += v;
		}
	}
	int st;
	waitpid(pid, &st, 0);
	double t = now() - t0;
	if (count != n || sum != (n ? n * (n - 1) / 2 : 0) || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		fprintf(stderr, "pipe_items: got %" PRIu64 " items\n", count);
		return 1;
	}
	printf("items=%" PRIu64 " seconds=%.4f\n", n, t);
	return 0;
}

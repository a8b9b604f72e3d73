/*
 * The baseline of bench_items' 8-byte case: N 8-byte values from one process
 * to another through a pipe with stdio buffering (fwrite / fread, 64 KiB
 * buffers), the reader checking count and sum. Prints "items=N seconds=S".
 *
 *     pipe_items N
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
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
	FILE *f = fdopen(fd[0], "r");
	static char buf[65536];
	setvbuf(f, buf, _IOFBF, sizeof buf);
	uint64_t v, count = 0, sum = 0;
	while (fread(&v, sizeof v, 1, f) == 1) {
		count++;
		sum += v;
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

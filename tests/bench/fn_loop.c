/*
 * The baseline of bench_items' function case: the three functions of the
 * 3-stage pipeline (b_inc, b_dbl, b_mix from libbenchkernels.so, found with
 * dlsym as ipcrun finds them) called in one loop over 0 .. N-1, the results
 * summed. Prints "items=N seconds=S sum=X".
 *
 *     fn_loop LIBRARY N
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int64_t (*fn)(int64_t);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fn_loop LIBRARY N\n");
		return 2;
	}
	void *dl = dlopen(argv[1], RTLD_NOW);
	if (!dl) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	fn f1, f2, f3;
	*(void **)&f1 = dlsym(dl, "b_inc");
	*(void **)&f2 = dlsym(dl, "b_dbl");
	*(void **)&f3 = dlsym(dl, "b_mix");
	if (!f1 || !f2 || !f3)
		return 1;
	int64_t n = strtoll(argv[2], NULL, 10), sum = 0;
	double t0 = now();
	for (int64_t i = 0; i < n; i++)
		sum += f3(f2(f1(i)));
	printf("items=%" PRId64 " seconds=%.4f sum=%" PRId64 "\n", n, now() - t0, sum);
	return 0;
}

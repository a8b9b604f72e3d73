/*
 * A kernel library of your own: one function kernel and one actor kernel.
 * Build it with the Makefile beside this file (pkg-config finds libipc),
 * then run the topology: ipcrun squares.ini
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ipc/kernel.h>

/*
 * A function kernel: a plain C function, no ipc types at all. The topology
 * declares its signature (signature = i64(i64)); ipcrun takes one item from
 * in0, calls the function and emits the result on out (items travel many to
 * a record: the function is called in a loop over each batch).
 */
int64_t square(int64_t x);

int64_t square(int64_t x)
{
	return x * x;
}

/*
 * An actor kernel: it owns its loop and reaches its ports by name. It takes
 * 8-byte integers on "in" and emits their running total, starting from
 * start, on "out". IPC_KERNEL tells ipcrun its ports and argument types, so
 * that a topology that gets them wrong is rejected before anything runs.
 */
IPC_KERNEL(running_sum, "in", "out", "i64",
           "emits the running total of the 8-byte integers it receives");
int running_sum(struct ipc_kernel *k, int64_t start);

int running_sum(struct ipc_kernel *k, int64_t start)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	int64_t total = start;

	if (!in || !out)
		return 1;
	for (;;) {
		const void *item;
		size_t n;
		int64_t v;
		int rc = ipc_next(in, &item, &n); /* valid until the next call */

		if (rc == IPC_TX_EOF)
			return 0; /* upstream finished: so do we (out closes) */
		if (rc != 0) {
			/* IPC_TX_ABORTED: upstream died; say so and fail rather
			 * than pass on a partial total as if it were complete. */
			fprintf(stderr, "%s: input ended: %s\n",
			        ipc_kernel_name(k), ipc_strerror(rc));
			return 1;
		}
		if (n != sizeof v) {
			fprintf(stderr, "%s: expected 8-byte items, got %zu bytes\n",
			        ipc_kernel_name(k), n);
			return 1;
		}
		memcpy(&v, item, sizeof v);
		total += v;
		if (ipc_emit(out, &total, sizeof total) != 0)
			return 0; /* -EPIPE: downstream left; nothing more to do */
	}
}

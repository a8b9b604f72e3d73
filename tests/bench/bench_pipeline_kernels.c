/*
 * Kernels of the pipeline benchmark (libbenchkernels.so): a source of
 * fixed-size records carrying a counter, a zero-copy pass-through, and a
 * sink that checks count and sum.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <ipc/kernel.h>

int b_src(struct ipc_kernel *k, uint64_t n, uint64_t size);
int b_pass(struct ipc_kernel *k);
int b_sink(struct ipc_kernel *k);

IPC_KERNEL(b_src, "", "out", "u64, u64", "n records of size bytes");
IPC_KERNEL(b_pass, "in", "out", "", "forwards every record");
IPC_KERNEL(b_sink, "in", "", "", "prints count and sum");

int b_src(struct ipc_kernel *k, uint64_t n, uint64_t size)
{
	struct ipc_port *out = ipc_out(k, "out");
	if (size < sizeof(uint64_t))
		return 2;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t *r = ipc_alloc(out, size);
		if (!r)
			return 1;
		*r = i;
		if (ipc_send(out, r))
			return 1;
	}
	return 0;
}

int b_pass(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in"), *out = ipc_out(k, "out");
	void *r;
	size_t n;
	int rc;
	while ((rc = ipc_recv(in, &r, &n)) == 0)
		if (ipc_send(out, r))
			return 1;
	return rc == IPC_TX_EOF ? 0 : 1;
}

int b_sink(struct ipc_kernel *k)
{
	struct ipc_port *in = ipc_in(k, "in");
	void *r;
	size_t n;
	int rc;
	uint64_t count = 0, sum = 0;
	while ((rc = ipc_recv(in, &r, &n)) == 0) {
		count++;
		sum += *(uint64_t *)r;
		ipc_release(in, r);
	}
	printf("count=%" PRIu64 " sum=%" PRIu64 "\n", count, sum);
	fflush(stdout);
	return rc == IPC_TX_EOF ? 0 : 1;
}

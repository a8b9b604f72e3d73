/*
 * The kernel API: what a kernel run by ipcrun sees. A kernel never calls the
 * allocator or names a channel; it reaches its ports by name.
 *
 * An actor kernel is a function in a shared library, run on its own thread:
 *
 *     int NAME(struct ipc_kernel *k, ... typed args from the topology ...);
 *
 * returning 0 on success. When it returns, its output channels close and
 * downstream sees IPC_TX_EOF after draining them.
 */
#ifndef IPC_KERNEL_H
#define IPC_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/buffer.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct ipc_kernel;
struct ipc_port;

/* A connected port by name, or NULL if the topology does not connect it. */
struct ipc_port *ipc_in(struct ipc_kernel *k, const char *port);
struct ipc_port *ipc_out(struct ipc_kernel *k, const char *port);

/* A record of n bytes in the shared buffer, to fill and send on out. NULL
 * with errno set when n is 0 or the buffer is exhausted. */
void *ipc_alloc(struct ipc_port *out, size_t n);

/* Hand rec over (the kernel must not touch it afterwards); blocks while the
 * channel is full. rec may come from ipc_alloc, or be a record received on
 * an input and not released: forwarding it copies nothing. Returns 0, or
 * -EPIPE when the consumer is gone (rec is freed then). */
int ipc_send(struct ipc_port *out, void *rec);

/* The next record and its size; blocks while the channel is empty. Returns
 * 0, IPC_TX_EOF or IPC_TX_ABORTED at the end, or a negative errno. */
int ipc_recv(struct ipc_port *in, void **rec, size_t *n);

/* Done with a received record. */
void ipc_release(struct ipc_port *in, void *rec);

/* The graph is being stopped (Ctrl-C): a source should return. */
bool ipc_stopping(struct ipc_kernel *k);

/* This instance's name in the topology. */
const char *ipc_kernel_name(struct ipc_kernel *k);

/* Number of connected ports in one direction, and the i-th of them (in the
 * order of their names: in0, in1, ... sort as numbers). */
size_t ipc_port_count(struct ipc_kernel *k, bool out);
struct ipc_port *ipc_port_at(struct ipc_kernel *k, bool out, size_t i);
const char *ipc_port_name(const struct ipc_port *p);

/* As ipc_recv, without blocking: IPC_TX_RETRY when the channel is empty. */
int ipc_try_recv(struct ipc_port *in, void **rec, size_t *n);

/* The next record from whichever input port has one (fairly, round-robin);
 * blocks while all are empty. *from says which port. Returns 0, or IPC_TX_EOF
 * once every input has ended (IPC_TX_ABORTED if one of them was aborted). */
int ipc_recv_any(struct ipc_kernel *k, struct ipc_port **from, void **rec,
                 size_t *n);

/*
 * What a kernel library says about a kernel, so that ipcrun can check a
 * topology before starting anything. Declare it beside the function:
 *
 *     IPC_KERNEL(seq_source, "", "out", "u64", "counts from 0 to N-1");
 *
 * in / out: comma-separated port names; "name*" stands for name0, name1, ...
 * (any number, at least one, numbered without gaps); "name?" is a port the
 * topology may leave unconnected (ipc_in / ipc_out return NULL then); every
 * other port must be connected. args: comma-separated types the topology's
 * args must have (i8 ... u64 f32 f64 str), "" for none. ipcrun looks the
 * spec up as the symbol ipc_kernel_spec_<function>; a kernel without one is
 * accepted with whatever ports its connections name.
 */
struct ipc_kernel_spec {
	const char *in;
	const char *out;
	const char *args;
	const char *doc;
};

#define IPC_KERNEL(fn, in_, out_, args_, doc_)                                  \
	extern const struct ipc_kernel_spec ipc_kernel_spec_##fn;              \
	__attribute__((visibility("default")))                                 \
	const struct ipc_kernel_spec ipc_kernel_spec_##fn = {in_, out_, args_, doc_}

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* IPC_KERNEL_H */

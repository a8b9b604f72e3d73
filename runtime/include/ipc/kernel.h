/*
 * The kernel API: what a kernel run by ipcrun sees. A kernel never calls the
 * allocator or names a channel; it reaches its ports by name.
 *
 * An actor kernel is a function in a shared library, run on its own thread:
 *
 *     int NAME(struct ipc_kernel *k, ... typed args from the topology ...);
 *
 * returning 0 on success. When it returns 0, its open batches go out, its
 * output channels close and downstream sees IPC_TX_EOF after draining them.
 * When it returns non-zero (or its process dies), its outputs are aborted:
 * downstream drains what was sent, then sees IPC_TX_ABORTED, so that a
 * partial stream is never taken for a whole one.
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

/* A record of n bytes in the shared buffer, to fill and send on out. While
 * the buffer is full it sends this kernel's open batches and waits for
 * downstream to free records, up to 30 s (env IPC_ALLOC_PATIENCE_MS); then,
 * or at once for a bad n (0 or above a quarter of the buffer), NULL with
 * errno set: ENOMEM (the message on stderr names the kernel and the fix),
 * EINVAL. A record may be sent shorter than allocated: ipc_trim. */
void *ipc_alloc(struct ipc_port *out, size_t n);

/* Shorten rec, allocated on out and not sent yet, to its first n bytes
 * (1 <= n <= its size): the consumer sees a record of n bytes. Returns 0 or
 * -EINVAL. */
int ipc_trim(struct ipc_port *out, void *rec, size_t n);

/* Hand rec over (the kernel must not touch it afterwards); blocks while the
 * channel is full. The port's open batch of items goes first, so order is
 * kept between ipc_emit and ipc_send. rec may come from ipc_alloc, or be a record received on
 * an input and not released: forwarding it copies nothing. Returns 0, or
 * -EPIPE when the consumer is gone (rec is freed then). */
int ipc_send(struct ipc_port *out, void *rec);

/* The next record and its size; blocks while the channel is empty (after
 * sending this kernel's open batches). On a batched connection the record
 * may be a batch of items (see "Items" below). Returns 0, IPC_TX_EOF or
 * IPC_TX_ABORTED at the end, or a negative errno. */
int ipc_recv(struct ipc_port *in, void **rec, size_t *n);

/* Done with a received record. (Items from ipc_next are not released by
 * the kernel: ipc_next does it.) */
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
 * Items: many to a record.
 *
 * A connection carries items, packed many to a record (a batch) so that a
 * stream of small items does not pay a hand-off per item. The topology sets
 * the batch size in bytes per connection (`batch=` on a connect line, else
 * [graph] batch); 0 sends every item as a record of its own.
 *
 * A batch goes out when the next item would not fit, at ipc_flush, when an
 * item goes out with ipc_send on the same port (order is kept), when the
 * kernel returns (EOF flushes), when the kernel goes to wait (for input, on
 * a full channel, or for memory), and at the latest `linger` ([graph], a
 * duration, 500 us by default) after its first item, even when the kernel
 * is busy in its own code or asleep (a thread of the process sends it then).
 * So an item waits at most about linger before it leaves its producer. A
 * sparse stream pays no linger at all: a batch goes out with its first item
 * when the port's previous batch opened a linger or more earlier and held a
 * single item (a trickle, or the first item after a pause).
 *
 * A producer killed mid-stream: every batch it sent is delivered whole, in
 * order, once, and then IPC_TX_ABORTED; the items of its open batch (emitted
 * since that batch began: at most `batch` bytes, at most about linger's
 * worth, or a full batch it was waiting to send on a full channel) are lost
 * with it. (tests/stress/stress_items_kill.c checks all of it.)
 *
 * Concurrency: the item functions, like the rest of this API, are called by
 * the kernel's own thread only.
 */

/* Append one item of n bytes (0 allowed) to out's open batch. Blocks as
 * ipc_send does when a batch goes out and the channel is full, and as
 * ipc_alloc does while the buffer is full. An item larger than the batch
 * goes out as a record of its own, after the open batch. Returns 0, -EPIPE
 * when the consumer is gone, -ENOMEM when the buffer stayed full (see
 * ipc_alloc), -EINVAL (not an output port, item NULL with n > 0, n above
 * IPC_ITEM_MAX, or an item larger than a batch that is also too large for a
 * record of this buffer: see ipc_alloc). */
int ipc_emit(struct ipc_port *out, const void *item, size_t n);

/* ipc_emit of the text s and its NUL (an item of strlen(s) + 1 bytes), so
 * that a consumer can use it in place as a C string. */
int ipc_emit_text(struct ipc_port *out, const char *s);

/* Send out's open batch now, waiting while the channel is full. Returns 0
 * (also when nothing was open), -EPIPE or -EINVAL. */
int ipc_flush(struct ipc_port *out);

/* The next item of in: *item points at its n bytes, valid until the next
 * ipc_next on this port (the record holding it is released then). Blocks
 * while the channel is empty (after sending this kernel's open batches).
 * Returns 0, IPC_TX_EOF or IPC_TX_ABORTED at the end, -EBADMSG for a batch
 * record whose items overrun it (the rest of that record is dropped), or a
 * negative errno. A record sent with ipc_send (not a batch) is one item.
 * Items of a batch are 4-byte aligned, and when every item of a batch has
 * the same size w, at offsets multiple of w from a 16-byte aligned start (so
 * 8-byte numbers read in place). */
int ipc_next(struct ipc_port *in, const void **item, size_t *n);

/* Many items of one size at once, for kernels that make or take arrays (a
 * source of numbers, a sink that sums them): the same stream as calls of
 * ipc_emit / ipc_next one item at a time, without a call per item.
 *
 * ipc_emit_many: ipc_emit of count items of width bytes each, items[0],
 * items[width], ... (copied into the open batches; width 0 emits count empty
 * items). Returns 0 when all were emitted; on an error (the codes of
 * ipc_emit) the items before the failing one were emitted, the rest not.
 *
 * ipc_next_many: ipc_next, and with it the items of the same record that
 * follow it back to back with the same size: *items points at *count >= 1
 * items of *width bytes each (the first is what ipc_next would return; a
 * batch of items of one size yields everything it has left, any other
 * record one item). Valid until the next ipc_next or ipc_next_many on this
 * port. Returns what ipc_next returns, and -EINVAL for a NULL argument.
 *
 * Runs are as long as the producer made them: a batch holds items of one
 * size only until an item of another size comes (then it holds them all
 * with their lengths, and yields them one at a time), and empty items come
 * one per call. A stream of one item size gets whole batches. */
int ipc_emit_many(struct ipc_port *out, const void *items, size_t width, size_t count);
int ipc_next_many(struct ipc_port *in, const void **items, size_t *width, size_t *count);

/* Largest item: a record of its own in a buffer of 16 GiB at least. */
#define IPC_ITEM_MAX (UINT32_C(0xffffffff) - 16)

/*
 * The batch record layout, what ipc_recv returns on a batched connection
 * (and what a kernel may build itself and send with ipc_send):
 *
 *     offset 0   struct ipc_batch_hdr (16 bytes, host byte order)
 *     offset 16  the items:
 *                width > 0: count items of width bytes, back to back
 *                width == 0: per item, a uint32_t length, its bytes, then
 *                            zero bytes up to a multiple of 4
 *
 * bytes counts the item area; the record is at least 16 + bytes long (it
 * may be longer when it could not be shortened). A record is a batch when
 * it is at least 16 bytes, starts with IPC_BATCH_MAGIC, bytes fits and, for
 * width > 0, count * width == bytes. A producer never sends a batch with no
 * items; ipc_emit wraps an item that would look like a batch (or an empty
 * item on a connection without batches) in a batch of one, so what
 * ipc_next yields is always what was emitted.
 */
#define IPC_BATCH_MAGIC UINT32_C(0x31425049) /* "IPB1" in little endian */
struct ipc_batch_hdr {
	uint32_t magic;
	uint32_t count;  /* items */
	uint32_t width;  /* bytes of every item, or 0: items carry a length */
	uint32_t bytes;  /* bytes of the item area */
};

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

/*
 * Routing: fan-out (split, broadcast) and fan-in (merge). The number of
 * outputs or inputs is however many out0, out1, ... (in0, in1, ...) the
 * topology connects. Split and broadcast route items (each output packs
 * its own batches); merge forwards whole records (batches), so a batch
 * crosses it without being copied.
 */
#include "kx.h"

#include <stdlib.h>

IPC_KERNEL(split_rr, "in", "out*", "",
           "emits items to out0, out1, ... in turn (round-robin)");
KX_EXPORT int split_rr(struct ipc_kernel *k);

IPC_KERNEL(split_hash, "in", "out*", "",
           "emits each item to one output chosen by a hash of its bytes");
KX_EXPORT int split_hash(struct ipc_kernel *k);

IPC_KERNEL(broadcast, "in", "out*", "",
           "emits every item to every output");
KX_EXPORT int broadcast(struct ipc_kernel *k);

IPC_KERNEL(merge, "in*", "out", "",
           "forwards records (whole batches) from all inputs, as they come, "
           "to out, without copying");
KX_EXPORT int merge(struct ipc_kernel *k);

/* The connected outputs, in port order; NULL after a message if none. */
static struct ipc_port **outputs(struct ipc_kernel *k, size_t *count)
{
	size_t n = ipc_port_count(k, true);
	struct ipc_port **outs;

	if (n == 0) {
		kx__errorf(k, "no output port is connected (out0, out1, ...)");
		return NULL;
	}
	outs = calloc(n, sizeof *outs);
	if (!outs) {
		kx__errorf(k, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		outs[i] = ipc_port_at(k, true, i);
	*count = n;
	return outs;
}

enum split_mode { SPLIT_RR, SPLIT_HASH };

static int split(struct ipc_kernel *k, enum split_mode mode)
{
	struct ipc_port *in = kx__need_in(k, "in");
	struct ipc_port **outs;
	enum kx_end e = KX_DONE;
	size_t n = 0, next = 0;

	if (!in || !(outs = outputs(k, &n)))
		return 1;
	while (e == KX_DONE) {
		const void *item;
		size_t size, to;
		int rc = ipc_next(in, &item, &size);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		if (mode == SPLIT_HASH) {
			/* the hash scaled to [0, n): a multiply, not a division */
			to = (size_t)(((unsigned __int128)kx__fnv1a(item, kx__text_len(item, size)) *
			               n) >> 64);
		} else {
			to = next;
			next = next + 1 == n ? 0 : next + 1;
		}
		e = kx__emit(k, outs[to], item, size);
	}
	free(outs);
	return kx__end(k, e);
}

int split_rr(struct ipc_kernel *k)
{
	return split(k, SPLIT_RR);
}

int split_hash(struct ipc_kernel *k)
{
	return split(k, SPLIT_HASH);
}

int broadcast(struct ipc_kernel *k)
{
	struct ipc_port *in = kx__need_in(k, "in");
	struct ipc_port **outs;
	enum kx_end e = KX_DONE;
	size_t n = 0;

	if (!in || !(outs = outputs(k, &n)))
		return 1;
	while (e == KX_DONE) {
		const void *item;
		size_t size;
		int rc = ipc_next(in, &item, &size);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		for (size_t i = 0; i < n && e == KX_DONE; i++)
			e = kx__emit(k, outs[i], item, size);
	}
	free(outs);
	return kx__end(k, e);
}

int merge(struct ipc_kernel *k)
{
	struct ipc_port *out = kx__need_out(k, "out");
	enum kx_end e = KX_DONE;

	if (!out)
		return 1;
	if (ipc_port_count(k, false) == 0) {
		kx__errorf(k, "no input port is connected (in0, in1, ...)");
		return 1;
	}
	while (e == KX_DONE) {
		struct ipc_port *from;
		void *rec;
		size_t size;
		int rc = ipc_recv_any(k, &from, &rec, &size);

		if (rc != 0) {
			e = kx__input_end(k, "in*", rc);
			break;
		}
		e = kx__send(k, out, rec);
	}
	return kx__end(k, e);
}

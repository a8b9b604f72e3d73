/*
 * The kernel API's private state, shared by libipc's kernel.c (which
 * implements <ipc/kernel.h>) and ipcrun (which builds kernels, attaches their
 * channels and collects their counters). Not installed.
 *
 * A struct ipc_kernel belongs to the one thread that runs the kernel: none of
 * its fields is touched by another thread while the kernel runs, except the
 * stop flag, which ipcrun's runner sets and kernels read.
 */
#ifndef IPC_KERNEL_IMPL_H
#define IPC_KERNEL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/kernel.h>

#include "atomic.h"

/* Counters of one port, kept by the thread that runs its kernel. */
struct ipc__port_stats {
	uint64_t records;    /* sent (output) or received (input) */
	uint64_t bytes;      /* their sizes as asked for at allocation */
	uint64_t blocked_ns; /* time spent waiting while full / empty */
	uint64_t hwm;        /* highest queue length seen (sampled) */
};

/* An output's open batch (see <ipc/kernel.h>, "Items"). */
struct ipc__bout {
	char *rec;            /* the batch record, NULL when none is open */
	char *data;           /* rec + 16: the item area */
	uint32_t cap;         /* bytes of the item area */
	uint32_t used;        /* bytes used */
	uint32_t count;       /* items */
	uint32_t width;       /* every item so far has this size (fixed
	                         layout); 0: items carry their length */
	ipc_a64 open_ns;      /* when its first item came; 0: none open. Read
	                         by the linger thread */
	uint64_t prev_open_ns; /* when the previous batch opened */
	uint32_t prev_count;  /* items the previous batch held when sent */
	bool eager;           /* the previous batch opened a linger or more
	                         before this one and held one item (a sparse
	                         stream): this one goes out with its first item */
};

/* An input's current record, as ipc_next walks it. */
struct ipc__bin {
	void *rec;            /* the record being walked, released when used up */
	const char *p, *end;  /* next item, end of the item area */
	uint32_t left;        /* items still to yield */
	uint32_t width;       /* as struct ipc_batch_hdr */
};

struct ipc_port {
	struct ipc_kernel *k;
	const char *name;     /* owned by whoever built the kernel */
	uint64_t id;          /* channel id in the buffer */
	bool out;             /* producer end */
	int end;              /* 0 while open; IPC_TX_EOF / IPC_TX_ABORTED /
	                         -EPIPE once that end has finished */
	uint32_t capacity;    /* channel capacity, for the high-water mark */
	uint32_t sample;      /* sends since the queue length was sampled */
	struct ipc__port_stats st;
	bool seq;             /* records carry a sequence header (seq.h) */
	uint32_t batch;       /* bytes of items per batch record; 0: a record
	                         per item */
	struct ipc__bout bo;  /* outputs */
	struct ipc__bin bi;   /* inputs */
};

struct ipc_kernel {
	const char *name;
	struct ipc_tls *tls;
	/* Inputs first, then outputs, each group sorted by name with digit runs
	 * compared as numbers (in2 < in10). */
	struct ipc_port *port;
	size_t nin, nout;
	const ipc_a32 *stop;  /* non-zero: the graph is being stopped */
	size_t rr;            /* next input ipc_recv_any tries first */
	/* ordered replicas (seq.h): the input being processed and the output
	 * held back until it is known whether it is that input's last */
	uint64_t seq_cur;
	int seq_state;        /* 0 none yet, 1 processing seq_cur, 2 input
	                         ended, 3 seq_cur finished */
	void *seq_held;       /* user pointer of the held record */
	struct ipc_port *seq_held_port;
	/* NULL, or where the kernel says which port it waits on (index + 1,
	 * 0 while it runs): ipcrun's watchdog reads it from another process */
	ipc_a32 *waiting;
	/* Items: the linger thread of the process may send this kernel's open
	 * batches while the kernel is outside the API. The kernel marks busy
	 * around every call that touches its ports or TLS; the thread sets
	 * steal, issues a process-wide memory barrier (membarrier), and takes
	 * the kernel only if busy is clear (then clears steal when done). */
	uint64_t linger_ns;   /* 0: the default (1 ms) */
	ipc_a32 busy, steal;
	bool lingering;       /* registered with the linger thread */
	struct ipc_kernel *lnext;
};

/* Send what an ordered replica holds back, marked as the last output of
 * its current input (kernel.c). ipcrun calls it when the kernel returns. */
__attribute__((visibility("default")))
void ipc__kernel_seq_flush(struct ipc_kernel *k);


/* Whole runs of fixed-width items, for ipcrun's function kernels (a loop
 * over a batch without a call per item). Visible to ipcrun only.
 *
 * ipc__next_run: after ipc_next returned an item of w bytes at *p, the
 * items of w bytes that follow it contiguously in the same batch, taken now
 * (as if ipc_next had returned each): returns how many (0: none).
 *
 * ipc__emit_room: room for items of w bytes in out's open batch, opening
 * one if needed: returns where the next goes and *room >= 1, or NULL with
 * *room = 0 when out takes a record per item or w does not fit a batch
 * (emit with ipc_emit then), or NULL with errno set on failure (*room = 1).
 * The kernel calls nothing else of the API until ipc__emit_commit, which
 * appends the first m (<= room) items written there and returns 0, or the
 * error of sending the batch at once (a sparse stream's: see open_batch). */
__attribute__((visibility("default")))
size_t ipc__next_run(struct ipc_port *in, size_t w, const void **p);
__attribute__((visibility("default")))
void *ipc__emit_room(struct ipc_port *out, size_t w, size_t *room);
__attribute__((visibility("default")))
int ipc__emit_commit(struct ipc_port *out, size_t w, size_t m);

/* Before the kernel starts (ipcrun calls this on the kernel's thread once
 * its ports are attached, before the start barrier): a kernel with a
 * batched output joins the process's linger thread now, so that the first
 * emit does not pay for starting it (and for registering membarrier, which
 * can wait for an RCU grace period: 16-26 ms measured here). */
__attribute__((visibility("default"))) void ipc__kernel_ready(struct ipc_kernel *k);

/* After the kernel returned (ipcrun calls this before closing its ports):
 * send every open batch (waiting while a channel is full; EOF flushes),
 * release what ipc_next still holds, leave the linger thread. */
__attribute__((visibility("default"))) void ipc__kernel_finish(struct ipc_kernel *k);

/* Order of port names used for ipc_port_at: digit runs compare as numbers
 * (leading zeros ignored, then the longer run is larger). Returns <0, 0 or
 * >0 as strcmp does. Inline because ipcrun sorts with the same order. */
static inline int ipc__port_name_cmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			while (*a == '0' && a[1] >= '0' && a[1] <= '9')
				a++;
			while (*b == '0' && b[1] >= '0' && b[1] <= '9')
				b++;
			size_t la = 0, lb = 0;
			while (a[la] >= '0' && a[la] <= '9')
				la++;
			while (b[lb] >= '0' && b[lb] <= '9')
				lb++;
			if (la != lb)
				return la < lb ? -1 : 1;
			for (size_t i = 0; i < la; i++)
				if (a[i] != b[i])
					return a[i] < b[i] ? -1 : 1;
			a += la;
			b += lb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

#endif /* IPC_KERNEL_IMPL_H */
